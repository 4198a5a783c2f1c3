"""The web app's sign-in (docs/webmail.md "Sessions") over HTTPS against a
real server: POST /jmap/web/login, the session cookie and its attributes,
JMAP by cookie with the CSRF header (and refused without it), GET
/jmap/web/session, sign out and sign out everywhere.

Client: Python's http.client (Debian's python3, no extra package).
"""
import json
import re

import pytest

from conftest import PASSWORD
from test_app_passwords import add_app
from test_jmap_core import ALICE, BOB, CORE, request

COOKIE = "__Host-tern_session"


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"auth.fail_delay_ms": "10", "auth.fail_delay_max_ms": "20"})
    s.start()
    return s


def login(srv, user=ALICE, password=PASSWORD, ctype="application/json"):
    body = json.dumps({"username": user, "password": password}).encode()
    return request(srv, "POST", "/jmap/web/login", body=body,
                   headers={"Content-Type": ctype}, auth=False)


def signed_in(srv, user=ALICE):
    return signed_in_with(srv, user, PASSWORD)


def signed_in_with(srv, user, password):
    st, h, data = login(srv, user, password)
    assert st == 200, data
    cookie = h["set-cookie"]
    name, _, rest = cookie.partition("=")
    assert name == COOKIE
    value, _, attrs = rest.partition(";")
    assert len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    assert [a.strip() for a in attrs.split(";")] == [
        "Secure", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=1209600"]
    j = json.loads(data)
    assert j["username"] == user
    assert len(j["csrfToken"]) == 64
    return "%s=%s" % (COOKIE, value), j["csrfToken"]


def echo(srv, cookie, csrf=None):
    h = {"Content-Type": "application/json", "Cookie": "theme=dark; " + cookie}
    if csrf is not None:
        h["X-Tern-CSRF"] = csrf
    body = json.dumps({"using": [CORE], "methodCalls": [["Core/echo", {"hello": 1}, "0"]]})
    return request(srv, "POST", "/jmap/api/", body=body.encode(), headers=h, auth=False)


def test_login_cookie_and_jmap_with_csrf(srv):
    cookie, csrf = signed_in(srv)
    st, h, data = echo(srv, cookie, csrf)
    assert st == 200, data
    assert json.loads(data)["methodResponses"] == [["Core/echo", {"hello": 1}, "0"]]
    # the session resource by cookie too, with its username
    st, h, data = request(srv, "GET", "/jmap/session", auth=False,
                          headers={"Cookie": cookie, "X-Tern-CSRF": csrf})
    assert st == 200 and json.loads(data)["username"] == ALICE
    # a page reload gets the token back from the cookie alone
    st, h, data = request(srv, "GET", "/jmap/web/session", auth=False, headers={"Cookie": cookie})
    assert st == 200
    assert json.loads(data) == {"username": ALICE, "csrfToken": csrf}


def test_csrf_header_required(srv):
    cookie, csrf = signed_in(srv)
    for bad in (None, "", "0" * 64, csrf[:-1], csrf.upper()):
        st, h, data = echo(srv, cookie, bad)
        assert st == 403, (bad, data)
        assert "X-Tern-CSRF" in json.loads(data)["detail"]
    # another session's token is not this one's
    _, other = signed_in(srv)
    st, _, _ = echo(srv, cookie, other)
    assert st == 403
    assert srv.wait_log("action=csrf_refused user=%s" % ALICE)


def test_wrong_password_and_bad_bodies(srv):
    st, h, data = login(srv, ALICE, "wrong")
    assert st == 401
    assert "www-authenticate" not in h  # no browser password dialog
    assert "set-cookie" not in h
    # a form (what a cross-site page can post) is refused
    st, h, _ = login(srv, ctype="application/x-www-form-urlencoded")
    assert st == 400 and "set-cookie" not in h
    st, h, _ = login(srv, ctype="text/plain")
    assert st == 400
    for body in (b"", b"{", b'{"username": "a"}', b'{"username": 1, "password": "x"}',
                 b'{"username": "alice@example.test", "password": "a\\u0000b"}'):
        st, _, _ = request(srv, "POST", "/jmap/web/login", body=body,
                           headers={"Content-Type": "application/json"}, auth=False)
        assert st == 400, body
    st, h, _ = request(srv, "GET", "/jmap/web/login", auth=False)
    assert st == 405 and h["allow"] == "POST"


def test_bad_or_unknown_cookie(srv):
    for cookie in (COOKIE + "=" + "ab" * 32, COOKIE + "=zz", COOKIE + "="):
        st, h, data = echo(srv, cookie, "0" * 64)
        assert st == 401, cookie
        assert "www-authenticate" not in h
        assert h["set-cookie"].startswith(COOKIE + "=; ")
    # no cookie and no Authorization: the Basic challenge as before
    st, h, _ = request(srv, "GET", "/jmap/session", auth=False)
    assert st == 401 and h["www-authenticate"].startswith("Basic")


def test_logout_ends_this_session_only(srv):
    c1, t1 = signed_in(srv)
    c2, t2 = signed_in(srv)
    # sign out needs the CSRF header too
    st, _, _ = request(srv, "POST", "/jmap/web/logout", auth=False, headers={"Cookie": c1})
    assert st == 403
    st, h, _ = request(srv, "POST", "/jmap/web/logout", auth=False,
                       headers={"Cookie": c1, "X-Tern-CSRF": t1})
    assert st == 200 and h["set-cookie"].startswith(COOKIE + "=; ")
    assert echo(srv, c1, t1)[0] == 401
    assert echo(srv, c2, t2)[0] == 200


def test_logout_everywhere(srv):
    a1, ta1 = signed_in(srv)
    a2, ta2 = signed_in(srv)
    b, tb = signed_in(srv, BOB)
    st, _, _ = request(srv, "POST", "/jmap/web/logout-all", auth=False,
                       headers={"Cookie": a1, "X-Tern-CSRF": ta1})
    assert st == 200
    assert echo(srv, a1, ta1)[0] == 401
    assert echo(srv, a2, ta2)[0] == 401
    assert echo(srv, b, tb)[0] == 200  # another account's sessions stay


def test_new_password_ends_sessions(srv):
    cookie, csrf = signed_in(srv, BOB)
    assert echo(srv, cookie, csrf)[0] == 200
    srv.cli_ok("user", "passwd", BOB, "--password", "another-pass-1")
    try:
        assert echo(srv, cookie, csrf)[0] == 401
    finally:
        srv.cli_ok("user", "passwd", BOB, "--password", PASSWORD)


def test_app_password_signs_in(srv):
    pw = add_app(srv, ALICE, "web")
    cookie, csrf = signed_in_with(srv, ALICE, pw)
    assert echo(srv, cookie, csrf)[0] == 200
    # revoking the app password ends the session it opened
    srv.cli_ok("user", "app-password", "revoke", ALICE, "web")
    assert echo(srv, cookie, csrf)[0] == 401


# ------------------------------------------------------------ the web app

import os
import shutil
import signal
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEBROOT = os.path.join(ROOT, "build", "web")


def test_sanitizer_unit_tests():
    """tests/web/sanitize.test.mjs under node's test runner (jsdom)."""
    if not os.path.isdir(os.path.join(ROOT, "web", "node_modules")):
        pytest.fail("web/node_modules missing: run `make build`")
    r = subprocess.run(["node", "--test", os.path.join(ROOT, "tests", "web")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "# fail 0" in r.stdout


HTML_MAIL = """<html><head><script>document.title = 'XSS';</script></head>
<body onload="document.body.setAttribute('data-ran', 'onload')">
<p>Hello in <b>HTML</b>.</p>
<img src="https://img.remote.test/pixel.png" alt="">
<img src="x" onerror="document.body.setAttribute('data-ran', 'onerror')">
</body></html>
"""


def smtp_send(srv, rcpt, subject, body, headers=""):
    import smtplib
    from conftest import HOST, timeout
    msg = ("From: Carol <carol@elsewhere.test>\r\nTo: %s\r\nSubject: %s\r\n%s\r\n%s"
           % (rcpt, subject, headers, body.replace("\n", "\r\n")))
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.sendmail("carol@elsewhere.test", [rcpt], msg.encode())


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_driver(argv, art, seconds):
    """Runs the node driver in a process group of its own; whatever way it
    ends (done, timed out, the test interrupted), that group and chromium's
    (puppeteer starts chromium detached: the pid the driver wrote in
    art/chromium.pid leads a group) are killed.  (rc, stdout, stderr)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=seconds)
        return p.returncode, stdout, stderr
    except subprocess.TimeoutExpired:
        pytest.fail("the browser driver did not finish within %ds" % seconds)
    finally:
        kill_group(p.pid)
        pidfile = art / "chromium.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text())
            try:
                if os.getpgid(pid) == pid:
                    kill_group(pid)
            except ProcessLookupError:
                pass
        p.wait()


@pytest.fixture
def web_srv(make_server):
    if not os.path.isfile(os.path.join(WEBROOT, "app.js")):
        pytest.fail("no web app in %s: run `make build`" % WEBROOT)
    if shutil.which("chromium") is None:
        pytest.fail("chromium missing: scripts/install-deps.sh installs it")
    s = make_server(start=False)
    s.set_config({"http.webroot": WEBROOT, "allow_plaintext_loopback": "yes"})
    s.start()
    return s


def test_browser(web_srv, tmp_path):
    import imaplib
    from conftest import HOST, HOSTNAME, timeout
    from test_http import port_of
    srv = web_srv
    user = "web@example.test"
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    smtp_send(srv, user, "HTML test", HTML_MAIL,
              "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n")
    refs = ""
    for i in range(3):
        mid = "<t%d@elsewhere.test>" % i
        smtp_send(srv, user, "Thread topic" if i == 0 else "Re: Thread topic",
                  "Message %d of the thread, see https://example.org/%d\n" % (i + 1, i),
                  "Message-ID: %s\r\n%s" % (mid, refs))
        refs = "In-Reply-To: %s\r\nReferences: %s\r\n" % (mid, mid)
    m = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    m.login(user, PASSWORD)
    m.select("INBOX")
    for _ in range(100):
        if len(m.search(None, "ALL")[1][0].split()) == 4:
            break
        m.noop()
    assert len(m.search(None, "UNSEEN")[1][0].split()) == 4

    art = tmp_path / "screens"
    art.mkdir()
    url = "https://%s:%d/" % (HOSTNAME, port_of(srv, "https.listen"))
    rc, stdout, stderr = run_driver(["node", os.path.join(ROOT, "tests", "web", "browser.mjs"),
                                     url, user, PASSWORD, str(art)], art, timeout(120))
    assert rc == 0, stderr[-3000:]
    out = json.loads(stdout.strip().splitlines()[-1])
    assert "error" not in out, (out["error"], out.get("rows"))
    assert out["whoami"] == user
    assert out["inbox"]["unread"] == "4", out["inbox"]
    assert out["inbox"]["label"] == out["inbox"]["name"] + ", 4 unread"
    # one row per thread (the same second: either may come first)
    assert sorted((x["from"], x["subj"].replace("Re: ", "")) for x in out["rows"]) == [
        ("Carol", "HTML test"), ("Carol (3)", "Thread topic")], out["rows"]
    assert all(x["unread"] for x in out["rows"])
    # the cookie: HttpOnly (invisible to scripts), Secure, SameSite=Strict
    [c] = out["cookies"]
    assert (c["name"], c["httpOnly"], c["secure"], c["sameSite"]) == (COOKIE, True, True, "Strict")
    assert COOKIE not in out["documentCookie"]
    # all three messages of the thread, in order; all were unread: none collapsed
    assert [t["text"].split(",")[0] for t in out["thread"]] == [
        "Message 1 of the thread", "Message 2 of the thread", "Message 3 of the thread"]
    assert not any(t["collapsed"] for t in out["thread"])
    i = out["keyboard"][0]
    assert out["keyboard"] == [i, min(i + 1, 1), max(min(i + 1, 1) - 1, 0)]
    h = out["html"]
    assert h["sandbox"] == "allow-same-origin allow-popups allow-popups-to-escape-sandbox"
    assert "Hello in HTML." in h["text"]
    assert h["scripts"] == 0 and h["ran"] == "" and h["parentTitle"] == "Tern Mail", h
    assert h["remoteBefore"] == 0
    assert h["notice"].startswith("Remote images are blocked.")
    assert h["remoteAfter"] == ["https://img.remote.test/pixel.png"]
    assert out["phone"] == {"menu": "block", "folders": "none"}
    assert out["afterLogout"] == "Signed out."
    assert not re.search(r"\son\w+=|<script", h["body"], re.I), h["body"]
    # expected: the first /jmap/web/session (not signed in yet), the
    # favicon, the remote image's host (nothing listens); no CSP refusal
    # (the mail's handlers are renamed before parsing: defuseHandlers)
    expected = ("status of 401", "status of 404", "ERR_CONNECTION_REFUSED")
    assert [e for e in out["errors"] if not any(x in e for x in expected)] == [], out["errors"]
    # what the app did is in the store: the thread and the HTML mail read
    m.noop()
    assert m.search(None, "UNSEEN")[1] == [b""]
    m.logout()
    for name in ("1-list", "2-thread", "3-html-blocked", "4-html-allowed", "5-phone"):
        assert (art / (name + ".png")).stat().st_size > 1000
    # signed out: that cookie opens nothing
    st, _, _ = echo(srv, "%s=%s" % (COOKIE, c["value"]), "0" * 64)
    assert st == 401
