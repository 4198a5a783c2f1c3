// A small JMAP client for the web app: the session cookie authenticates,
// the CSRF token goes in X-Tern-CSRF (docs/webmail.md "Sessions").
export const CORE = "urn:ietf:params:jmap:core";
export const MAIL = "urn:ietf:params:jmap:mail";

export class AuthError extends Error {}

export interface Session {
  username: string;
  accountId: string;
  apiUrl: string;
  downloadUrl: string;
  eventSourceUrl: string;
}

let csrf = "";

async function post(path: string, body: unknown): Promise<Response> {
  return fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Tern-CSRF": csrf },
    body: JSON.stringify(body),
  });
}

export async function login(username: string, password: string): Promise<void> {
  const r = await post("/jmap/web/login", { username, password });
  if (r.status === 401) throw new AuthError("Wrong address or password.");
  if (r.status === 429) throw new AuthError("Too many failed sign-ins: try again later.");
  if (!r.ok) throw new Error("Sign-in failed (" + r.status + ").");
  csrf = (await r.json()).csrfToken;
}

// The signed-in session after a reload: false if not signed in.
export async function resume(): Promise<boolean> {
  const r = await fetch("/jmap/web/session", { credentials: "same-origin" });
  if (!r.ok) return false;
  csrf = (await r.json()).csrfToken;
  return true;
}

export async function logout(everywhere: boolean): Promise<void> {
  await post(everywhere ? "/jmap/web/logout-all" : "/jmap/web/logout", {});
  csrf = "";
}

export async function session(): Promise<Session> {
  const r = await fetch("/jmap/session", {
    credentials: "same-origin", headers: { "X-Tern-CSRF": csrf },
  });
  if (r.status === 401) throw new AuthError("Signed out.");
  const s = await r.json();
  return {
    username: s.username,
    accountId: s.primaryAccounts[MAIL],
    apiUrl: s.apiUrl,
    downloadUrl: s.downloadUrl,
    eventSourceUrl: s.eventSourceUrl,
  };
}

export type Call = [string, Record<string, unknown>, string];

export async function call(s: Session, calls: Call[]): Promise<Call[]> {
  const r = await post(s.apiUrl, { using: [CORE, MAIL], methodCalls: calls });
  if (r.status === 401) throw new AuthError("Signed out.");
  if (!r.ok) throw new Error("Request failed (" + r.status + ").");
  const out: Call[] = (await r.json()).methodResponses;
  for (const m of out) if (m[0] === "error") throw new Error("JMAP error: " + m[1].type);
  return out;
}

export function downloadUrl(s: Session, blobId: string, name: string, type: string): string {
  return s.downloadUrl
    .replace("{accountId}", encodeURIComponent(s.accountId))
    .replace("{blobId}", encodeURIComponent(blobId))
    .replace("{name}", encodeURIComponent(name || "attachment"))
    .replace("{type}", encodeURIComponent(type || "application/octet-stream"));
}

export function eventSource(s: Session): EventSource {
  const u = s.eventSourceUrl.replace("{types}", "*").replace("{closeafter}", "no")
    .replace("{ping}", "60");
  return new EventSource(u, { withCredentials: true });
}
