// The pure parts of writing mail (web/src/compose.ts): run with
// `node --test tests/web/` (tests/integration/test_webmail.py runs it too).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";

const web = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web");
const require = createRequire(join(web, "package.json"));
const esbuild = require("esbuild");
const dir = mkdtempSync(join(web, "node_modules", ".tern-test-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const out = join(dir, "compose.mjs");
esbuild.buildSync({ entryPoints: [join(web, "src", "compose.ts")], bundle: true,
  format: "esm", platform: "node", outfile: out, logLevel: "error" });
const c = await import(out);

test("address lists: bare, named, quoted names with commas, bad entries", () => {
  assert.deepEqual(c.parseAddresses(' bob@example.test, Carol Doe <carol@x.example>; ' +
    '"Last, First" <lf@y.example>,, "A \\"q\\"" <q@z.example>'), {
    addrs: [{ name: null, email: "bob@example.test" },
      { name: "Carol Doe", email: "carol@x.example" },
      { name: "Last, First", email: "lf@y.example" },
      { name: 'A "q"', email: "q@z.example" }],
    bad: [] });
  assert.deepEqual(c.parseAddresses("bob, x@y, <a b@c.example>, ok@d.example, a@b@c.example"), {
    addrs: [{ name: null, email: "ok@d.example" }], bad: ["bob", "x@y", "<a b@c.example>", "a@b@c.example"] });
  assert.deepEqual(c.parseAddresses("  "), { addrs: [], bad: [] });
});

test("reply quote: attribution line, quoted lines, quoted quotes", () => {
  assert.equal(c.quoteReply("Hi\r\n\r\n> earlier\r\nBye\r\n\r\n", "Carol", "Mon, 7 Dec 2026 10:00"),
    "On Mon, 7 Dec 2026 10:00, Carol wrote:\n> Hi\n>\n>> earlier\n> Bye\n");
});

test("reply references", () => {
  assert.deepEqual(c.replyRefs(["<m3@x>"], ["<m1@x>", "<m2@x>"], ["<m2@x>"]),
    { inReplyTo: ["<m3@x>"], references: ["<m1@x>", "<m2@x>", "<m3@x>"] });
  assert.deepEqual(c.replyRefs(["<m2@x>"], null, ["<m1@x>"]),
    { inReplyTo: ["<m2@x>"], references: ["<m1@x>", "<m2@x>"] });
  assert.deepEqual(c.replyRefs(["<m1@x>"], null, null), { inReplyTo: ["<m1@x>"], references: ["<m1@x>"] });
  assert.deepEqual(c.replyRefs(null, null, null), { inReplyTo: null, references: null });
});

test("signature swap keeps what the user typed", () => {
  const body = "Hello Bob,\n\nsee you.\n";
  const a = c.swapSignature(body, "", "Alice\nTern Inc.\n");
  assert.equal(a, body + "\n-- \nAlice\nTern Inc.");
  const b = c.swapSignature(a, "Alice\nTern Inc.\n", "A. (personal)");
  assert.equal(b, body + "\n-- \nA. (personal)");
  assert.equal(c.swapSignature(b, "A. (personal)", ""), body);
  // the user edited the signature: left alone
  const edited = body + "\n-- \nA. (on the phone)";
  assert.equal(c.swapSignature(edited, "A. (personal)", "Alice"), edited);
});
