// Tern's web app: sign-in, folders, the conversation list and the reader
// (docs/webmail.md).  Plain DOM; every string from mail goes in as text,
// HTML bodies only through sanitizeHtml into a sandboxed iframe.
import * as jmap from "./jmap";
import { linkify, sanitizeHtml } from "./sanitize";

interface Mailbox {
  id: string; name: string; parentId: string | null; role: string | null;
  sortOrder: number; unreadEmails: number; totalEmails: number;
}
interface Addr { name: string | null; email: string }
interface Email {
  id: string; threadId: string; mailboxIds: Record<string, boolean>;
  keywords: Record<string, boolean>; from: Addr[] | null; to?: Addr[] | null;
  subject: string | null; preview?: string; receivedAt: string; hasAttachment: boolean;
  htmlBody?: Part[]; textBody?: Part[]; attachments?: Part[];
  bodyValues?: Record<string, { value: string }>;
}
interface Part { partId: string | null; blobId: string; type: string; name: string | null; size: number; disposition: string | null }

const ROW = 64, PAGE = 50;
const $ = (id: string) => document.getElementById(id) as HTMLElement;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};

let S: jmap.Session;
let mailboxes: Mailbox[] = [];
let current = "";
let total = 0;
let ids: (string | undefined)[] = [];   // the list: first Email of each thread, by position
const emails = new Map<string, Email>();
const threadSize = new Map<string, number>();
const loading = new Map<number, Promise<void>>();
let selected = -1;
let openThread = "";
let openSig = "";   // the Emails shown in the reader
let events: EventSource | null = null;
const allowed = new Set<string>();     // Emails whose remote images the user allowed

function status(t: string) { $("status").textContent = t; }

function fail(e: unknown) {
  if (e instanceof jmap.AuthError) { showLogin(e.message); return; }
  status(String((e as Error).message || e));
}

// ------------------------------------------------------------- sign-in

function showLogin(msg = "") {
  events?.close();
  events = null;
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = msg;
  ($("login-user") as HTMLInputElement).focus();
}

async function start() {
  S = await jmap.session();
  $("login").hidden = true;
  $("app").hidden = false;
  $("whoami").textContent = S.username;
  await loadMailboxes();
  const inbox = mailboxes.find((m) => m.role === "inbox") || mailboxes[0];
  if (inbox) await selectMailbox(inbox.id);
  events = jmap.eventSource(S);
  events.addEventListener("state", () => { refresh().catch(fail); });
}

// -------------------------------------------------------------- folders

const ROLE_ORDER = ["inbox", "drafts", "sent", "archive", "junk", "trash"];

async function loadMailboxes() {
  const [[, r]] = await jmap.call(S, [["Mailbox/get", {
    accountId: S.accountId, ids: null,
    properties: ["name", "parentId", "role", "sortOrder", "unreadEmails", "totalEmails"],
  }, "m"]]);
  mailboxes = r.list as Mailbox[];
  renderMailboxes();
}

function mailboxOrder(a: Mailbox, b: Mailbox) {
  const ra = a.role ? ROLE_ORDER.indexOf(a.role) : 99, rb = b.role ? ROLE_ORDER.indexOf(b.role) : 99;
  return (ra < 0 ? 50 : ra) - (rb < 0 ? 50 : rb) || a.sortOrder - b.sortOrder || a.name.localeCompare(b.name);
}

function renderMailboxes() {
  const build = (parent: string | null): HTMLUListElement => {
    const ul = el("ul");
    for (const m of mailboxes.filter((x) => x.parentId === parent).sort(mailboxOrder)) {
      const li = el("li");
      const b = el("button", "folder");
      b.dataset.id = m.id;
      b.append(el("span", "name", m.name));
      if (m.unreadEmails > 0) b.append(el("span", "n", String(m.unreadEmails)));
      b.setAttribute("aria-label", m.name + (m.unreadEmails ? ", " + m.unreadEmails + " unread" : ""));
      if (m.id === current) b.setAttribute("aria-current", "true");
      b.onclick = () => { $("folders").classList.remove("open"); selectMailbox(m.id).catch(fail); };
      li.append(b);
      if (mailboxes.some((x) => x.parentId === m.id)) li.append(build(m.id));
      ul.append(li);
    }
    return ul;
  };
  const list = build(null);
  list.id = "folder-list";
  $("folder-list").replaceWith(list);
}

// ---------------------------------------------------------------- list

async function selectMailbox(id: string) {
  current = id;
  ids = [];
  total = 0;
  selected = -1;
  renderMailboxes();
  $("list").scrollTop = 0;
  await loadPage(0);
  render();
}

function query(position: number) {
  return {
    accountId: S.accountId, filter: { inMailbox: current },
    sort: [{ property: "receivedAt", isAscending: false }],
    collapseThreads: true, position, limit: PAGE, calculateTotal: true,
  };
}

const LIST_PROPS = ["threadId", "mailboxIds", "keywords", "from", "subject", "preview",
  "receivedAt", "hasAttachment"];

// One fetch per page at a time: the same promise to every caller.
function loadPage(page: number): Promise<void> {
  let p = loading.get(page);
  if (!p) {
    p = fetchPage(page).finally(() => loading.delete(page));
    loading.set(page, p);
  }
  return p;
}

async function fetchPage(page: number) {
  const box = current;
  {
    const r = await jmap.call(S, [
      ["Email/query", query(page * PAGE), "q"],
      ["Email/get", { accountId: S.accountId, properties: LIST_PROPS,
        "#ids": { resultOf: "q", name: "Email/query", path: "/ids" } }, "g"],
      ["Thread/get", { accountId: S.accountId,
        "#ids": { resultOf: "g", name: "Email/get", path: "/list/*/threadId" } }, "t"],
    ]);
    if (box !== current) return;
    const q = r[0][1], g = r[1][1], t = r[2][1];
    total = q.total as number;
    (q.ids as string[]).forEach((id, i) => { ids[(q.position as number) + i] = id; });
    for (const e of g.list as Email[]) emails.set(e.id, e);
    for (const th of t.list as { id: string; emailIds: string[] }[]) threadSize.set(th.id, th.emailIds.length);
  }
}

function fmtDate(iso: string) {
  const d = new Date(iso), now = new Date();
  return d.toDateString() === now.toDateString()
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { month: "short", day: "numeric", year: d.getFullYear() === now.getFullYear() ? undefined : "numeric" });
}

function who(a: Addr[] | null | undefined) {
  return a && a.length ? a.map((x) => x.name || x.email).join(", ") : "(no sender)";
}

// Virtual scrolling: only the rows in view are in the DOM; their pages are
// fetched when they come into view.
function render() {
  const list = $("list");
  $("list-spacer").style.height = total * ROW + "px";
  const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 5);
  const last = Math.min(total, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + 5);
  const rows = $("rows");
  rows.style.top = first * ROW + "px";
  rows.replaceChildren();
  for (let i = first; i < last; i++) {
    const id = ids[i];
    const pg = Math.floor(i / PAGE);
    if (id === undefined && !loading.has(pg)) loadPage(pg).then(render, fail);
    const e = id ? emails.get(id) : undefined;
    const li = el("li", "row");
    li.setAttribute("role", "option");
    li.dataset.i = String(i);
    li.setAttribute("aria-selected", String(i === selected));
    if (e) {
      if (!e.keywords.$seen) li.classList.add("unread");
      const n = threadSize.get(e.threadId) || 1;
      const l1 = el("div", "l1");
      l1.append(el("span", "from", who(e.from) + (n > 1 ? " (" + n + ")" : "")));
      if (e.hasAttachment) { const a = el("span", "att", "\u{1F4CE}"); a.setAttribute("aria-label", "attachment"); l1.append(a); }
      if (e.keywords.$flagged) { const f = el("span", "flag", "\u2691"); f.setAttribute("aria-label", "flagged"); l1.append(f); }
      l1.append(el("span", "date", fmtDate(e.receivedAt)));
      li.append(l1, el("div", "subj", e.subject || "(no subject)"), el("div", "prev", e.preview || ""));
      li.onclick = () => { select(i); openSelected().catch(fail); };
    }
    rows.append(li);
  }
  if (total === 0) rows.append(el("li", "row", "No messages."));
}

function select(i: number) {
  if (i < 0 || i >= total) return;
  selected = i;
  const list = $("list");
  if (i * ROW < list.scrollTop) list.scrollTop = i * ROW;
  else if ((i + 1) * ROW > list.scrollTop + list.clientHeight) list.scrollTop = (i + 1) * ROW - list.clientHeight;
  render();
}

async function refresh() {
  await loadMailboxes();
  const pages = new Set<number>();
  ids.forEach((_, i) => pages.add(Math.floor(i / PAGE)));
  ids = [];
  for (const p of pages.size ? pages : [0]) await loadPage(p);
  render();
  if (openThread) await showThread(openThread, false);
}

// --------------------------------------------------------------- reader

async function openSelected() {
  const id = ids[selected];
  const e = id && emails.get(id);
  if (!e) return;
  $("app").classList.add("reading");
  await showThread(e.threadId, true);
}

async function showThread(threadId: string, markRead: boolean) {
  openThread = threadId;
  const r = await jmap.call(S, [
    ["Thread/get", { accountId: S.accountId, ids: [threadId] }, "t"],
    ["Email/get", { accountId: S.accountId,
      "#ids": { resultOf: "t", name: "Thread/get", path: "/list/*/emailIds" },
      properties: ["threadId", "mailboxIds", "keywords", "from", "to", "cc", "subject",
        "receivedAt", "hasAttachment", "htmlBody", "textBody", "attachments", "bodyValues"],
      fetchHTMLBodyValues: true, fetchTextBodyValues: true, maxBodyValueBytes: 1 << 20 }, "g"],
  ]);
  if (openThread !== threadId) return;
  const msgs = (r[1][1].list as Email[]);
  const reader = $("reader");
  const sig = msgs.map((m) => m.id).join(" ");
  if (!markRead && sig === openSig && reader.querySelector(".actions")) {
    // a change elsewhere or to these flags: new buttons, the bodies stay
    reader.querySelector(".actions")!.replaceWith(actions(msgs));
    return;
  }
  openSig = sig;
  reader.replaceChildren();
  if (!msgs.length) { openThread = ""; return; }
  const h = el("h2", "", msgs[0].subject || "(no subject)");
  h.id = "reader-title";
  reader.setAttribute("aria-labelledby", "reader-title");
  reader.append(h, actions(msgs));
  msgs.forEach((m, i) => reader.append(message(m, !m.keywords.$seen || i === msgs.length - 1)));
  const unread = msgs.filter((m) => !m.keywords.$seen);
  if (markRead && unread.length) await setKeyword(unread, "$seen", true);
}

function actions(msgs: Email[]) {
  const bar = el("div", "actions");
  bar.setAttribute("role", "toolbar");
  bar.setAttribute("aria-label", "Conversation actions");
  const btn = (label: string, f: () => Promise<void>) => {
    const b = el("button", "", label);
    b.onclick = () => { f().catch(fail); };
    bar.append(b);
  };
  const anyUnread = msgs.some((m) => !m.keywords.$seen);
  btn(anyUnread ? "Mark read" : "Mark unread", () => setKeyword(msgs, "$seen", anyUnread));
  const flagged = msgs.some((m) => m.keywords.$flagged);
  btn(flagged ? "Unflag" : "Flag", () => setKeyword(msgs, "$flagged", !flagged));
  btn("Delete", () => remove(msgs));
  const sel = el("select");
  sel.setAttribute("aria-label", "Move to folder");
  sel.append(new Option("Move to\u2026", ""));
  for (const m of [...mailboxes].sort(mailboxOrder)) if (m.id !== current) sel.append(new Option(m.name, m.id));
  sel.onchange = () => { if (sel.value) move(msgs, sel.value).catch(fail); };
  bar.append(sel);
  return bar;
}

function message(m: Email, open: boolean) {
  const box = el("article", "msg" + (open ? "" : " collapsed"));
  const head = el("button", "mh");
  head.setAttribute("aria-expanded", String(open));
  head.append(el("strong", "", who(m.from)), el("span", "to", "to " + who(m.to)), el("span", "date", fmtDate(m.receivedAt)));
  head.onclick = () => {
    const c = box.classList.toggle("collapsed");
    head.setAttribute("aria-expanded", String(!c));
    if (!c) fitFrames(box);
  };
  const body = el("div", "mb");
  fillBody(body, m);
  box.append(head, body);
  return box;
}

function fillBody(body: HTMLElement, m: Email) {
  body.replaceChildren();
  const html = (m.htmlBody || []).find((p) => p.type === "text/html");
  if (html && html.partId && m.bodyValues?.[html.partId]) {
    const allow = allowed.has(m.id);
    const s = sanitizeHtml(m.bodyValues[html.partId].value, allow);
    if (s.blocked > 0 && !allow) {
      const note = el("div", "remote", "Remote images are blocked. ");
      const b = el("button", "", "Show images");
      b.onclick = () => { allowed.add(m.id); fillBody(body, m); };
      note.append(b);
      body.append(note);
    }
    const f = el("iframe");
    f.setAttribute("sandbox", "allow-same-origin allow-popups allow-popups-to-escape-sandbox");
    f.setAttribute("referrerpolicy", "no-referrer");
    f.title = "Message body";
    f.srcdoc = s.html;
    f.onload = () => fitFrame(f);
    body.append(f);
  } else {
    const pre = el("pre");
    for (const p of m.textBody || []) if (p.partId && m.bodyValues?.[p.partId]) pre.append(linkify(m.bodyValues[p.partId].value));
    body.append(pre);
  }
  const atts = (m.attachments || []);
  if (atts.length) {
    const ul = el("ul", "atts");
    ul.setAttribute("aria-label", "Attachments");
    for (const a of atts) {
      const li = el("li");
      const link = el("a", "", (a.name || "attachment") + " (" + Math.ceil(a.size / 1024) + " KB)");
      link.href = jmap.downloadUrl(S, a.blobId, a.name || "attachment", a.type);
      link.setAttribute("download", a.name || "attachment");
      li.append(link);
      ul.append(li);
    }
    body.append(ul);
  }
}

function fitFrame(f: HTMLIFrameElement) {
  const d = f.contentDocument;
  if (d && d.documentElement) f.style.height = d.documentElement.scrollHeight + 20 + "px";
}
function fitFrames(box: HTMLElement) { box.querySelectorAll("iframe").forEach((f) => fitFrame(f as HTMLIFrameElement)); }

// ------------------------------------------------------------- changes

async function update(msgs: Email[], patch: (m: Email) => Record<string, unknown>) {
  const upd: Record<string, unknown> = {};
  for (const m of msgs) upd[m.id] = patch(m);
  const [[, r]] = await jmap.call(S, [["Email/set", { accountId: S.accountId, update: upd }, "s"]]);
  if (r.notUpdated && Object.keys(r.notUpdated).length) status("Some messages could not be changed.");
  await refresh();
}

const setKeyword = (msgs: Email[], k: string, on: boolean) =>
  update(msgs, () => ({ ["keywords/" + k]: on ? true : null }));

async function move(msgs: Email[], to: string) {
  const here = msgs.filter((m) => m.mailboxIds[current]);
  await update(here.length ? here : msgs, () => ({ mailboxIds: { [to]: true } }));
  closeReader();
}

async function remove(msgs: Email[]) {
  const trash = mailboxes.find((m) => m.role === "trash");
  if (trash && current !== trash.id) return move(msgs, trash.id);
  if (!confirm("Delete these messages for good?")) return;
  await jmap.call(S, [["Email/set", { accountId: S.accountId, destroy: msgs.map((m) => m.id) }, "d"]]);
  closeReader();
  await refresh();
}

function closeReader() {
  openThread = "";
  $("reader").replaceChildren();
  $("app").classList.remove("reading");
}

function selectedThread(): Email[] | null {
  const id = ids[selected];
  const e = id && emails.get(id);
  return e ? [e] : null;
}

async function threadEmails(): Promise<Email[]> {
  const e = selectedThread();
  if (!e) return [];
  const [[, t], [, g]] = await jmap.call(S, [
    ["Thread/get", { accountId: S.accountId, ids: [e[0].threadId] }, "t"],
    ["Email/get", { accountId: S.accountId, properties: ["mailboxIds", "keywords", "threadId"],
      "#ids": { resultOf: "t", name: "Thread/get", path: "/list/*/emailIds" } }, "g"],
  ]);
  void t;
  return g.list as Email[];
}

// ------------------------------------------------------------ keyboard

function onKey(ev: KeyboardEvent) {
  const t = ev.target as HTMLElement;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const act = (p: Promise<void>) => { ev.preventDefault(); p.catch(fail); };
  switch (ev.key) {
    case "j": act(Promise.resolve(select(selected + 1))); break;
    case "k": act(Promise.resolve(select(Math.max(0, selected - 1)))); break;
    case "Enter": if (t.tagName !== "BUTTON" && t.tagName !== "A") act(openSelected()); break;
    case "e": {
      const archive = mailboxes.find((m) => m.role === "archive");
      if (archive) act(threadEmails().then((m) => m.length ? move(m, archive.id) : undefined));
      else status("No Archive folder.");
      break;
    }
    case "#": act(threadEmails().then((m) => m.length ? remove(m) : undefined)); break;
    case "Escape": closeReader(); break;
  }
}

// ----------------------------------------------------------------- main

function main() {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const u = ($("login-user") as HTMLInputElement).value.trim();
    const p = $("login-pass") as HTMLInputElement;
    jmap.login(u, p.value).then(() => { p.value = ""; return start(); })
      .catch((e) => { $("login-error").textContent = String(e.message || e); });
  });
  $("logout").onclick = () => { jmap.logout(false).finally(() => showLogin("Signed out.")); };
  $("logout-all").onclick = () => { jmap.logout(true).finally(() => showLogin("Signed out everywhere.")); };
  $("menu").onclick = () => $("folders").classList.toggle("open");
  $("list").addEventListener("scroll", () => requestAnimationFrame(render), { passive: true });
  window.addEventListener("resize", () => render());
  document.addEventListener("keydown", onKey);
  jmap.resume().then((ok) => (ok ? start() : showLogin())).catch(fail);
}

main();
