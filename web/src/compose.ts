// The pure parts of writing mail (docs/webmail.md "Not yet": the compose
// pane that uses them is still to come): address lists as typed, the
// quoted text and headers of a reply, the signature block swapped when
// the identity changes.  No DOM, unit-tested in tests/web/compose.test.mjs.

export interface Addr { name: string | null; email: string; }

// An addr-spec as the compose pane accepts it: no space, quote, comma,
// angle bracket or parenthesis; a dotted domain.
const EMAIL_RE = /^[^\s@<>()",;:\\[\]]+@[a-z0-9-]+(\.[a-z0-9-]+)+$/i;

// Splits at commas and semicolons outside quotes and angle brackets.
function splitList(text: string): string[] {
  const parts: string[] = [];
  let cur = "", quoted = false, angle = false;
  for (const ch of text) {
    if (ch === '"' && !angle) quoted = !quoted;
    else if (ch === "<" && !quoted) angle = true;
    else if (ch === ">" && !quoted) angle = false;
    if ((ch === "," || ch === ";") && !quoted && !angle) { parts.push(cur); cur = ""; continue; }
    cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

// `a@b.example, Name <c@d.example>, "Last, First" <e@f.example>`: the
// addresses, and the entries that are not one (shown to the user).
export function parseAddresses(text: string): { addrs: Addr[]; bad: string[] } {
  const addrs: Addr[] = [], bad: string[] = [];
  for (const part of splitList(text)) {
    const m = /^(.*?)\s*<([^<>]*)>$/.exec(part);
    const email = (m ? m[2] : part).trim();
    let name: string | null = m ? m[1].trim() : null;
    if (name && name.length >= 2 && name.startsWith('"') && name.endsWith('"'))
      name = name.slice(1, -1).replace(/\\(.)/g, "$1");
    if (!EMAIL_RE.test(email) || (name !== null && /[<>]/.test(name))) { bad.push(part); continue; }
    addrs.push({ name: name || null, email });
  }
  return { addrs, bad };
}

// The body of a reply: an attribution line, then the original's lines
// quoted (">" and a space, or ">" alone before a line already quoted).
export function quoteReply(original: string, who: string, date: string): string {
  const lines = original.replace(/\r\n/g, "\n").replace(/\n+$/, "").split("\n");
  const quoted = lines.map((l) => (l.startsWith(">") ? ">" + l : l === "" ? ">" : "> " + l));
  return `On ${date}, ${who} wrote:\n` + quoted.join("\n") + "\n";
}

// In-Reply-To and References of a reply (RFC 5322 3.6.4): the parent's
// Message-ID; its References (or In-Reply-To) followed by that id.
export function replyRefs(messageId: string[] | null, references: string[] | null,
  inReplyTo: string[] | null): { inReplyTo: string[] | null; references: string[] | null } {
  if (!messageId || messageId.length !== 1) return { inReplyTo: null, references: null };
  const before = references ?? (inReplyTo && inReplyTo.length === 1 ? inReplyTo : []);
  return { inReplyTo: [messageId[0]], references: [...before, messageId[0]] };
}

const DELIM = "\n-- \n";

// The signature block for sig ("" none).
export function signatureBlock(sig: string): string {
  return sig === "" ? "" : DELIM + sig.replace(/\r\n/g, "\n").replace(/\n+$/, "");
}

// body with the block of oldSig at its end replaced by newSig's; when the
// user edited or removed the old block, body is kept as it is (unless the
// old identity had none: then the new block is added).
export function swapSignature(body: string, oldSig: string, newSig: string): string {
  const oldB = signatureBlock(oldSig), newB = signatureBlock(newSig);
  if (oldB === "") return body + newB;
  if (body.endsWith(oldB)) return body.slice(0, body.length - oldB.length) + newB;
  return body;
}
