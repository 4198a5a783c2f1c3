"""App passwords (`tern user app-password add|list|revoke`; docs/security.md
"App passwords"): made by the CLI, printed once, and accepted wherever the
main password is (IMAP LOGIN and AUTHENTICATE, POP3 USER/PASS and AUTH,
SMTP submission AUTH PLAIN and LOGIN, ManageSieve AUTHENTICATE), with
their name in the log line and their last-used time in the listing;
revoked, they fail like any wrong password while the main one keeps
working; wrong ones count in the login limiter."""

import base64
import imaplib
import poplib
import re
import smtplib
import sqlite3
import ssl
import time
import uuid

import pytest

from conftest import HOST, PASSWORD, timeout
from test_managesieve import MS, port_of as ms_port

CONF = {
    "allow_plaintext_loopback": "yes",
    "auth.fail_delay_ms": "50",
    "auth.fail_delay_max_ms": "100",
    "auth.block_after": "0",
}
APP_RE = re.compile(r"^    ([2-9a-km-np-z]{4}(?:-[2-9a-km-np-z]{4}){3})$", re.M)
IMAP_FAIL = b"[AUTHENTICATIONFAILED] Authentication failed"


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def new_user(srv):
    user = "ap%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    return user


def add_app(srv, user, name):
    out = srv.cli_ok("user", "app-password", "add", user, name).stdout.decode()
    m = APP_RE.search(out)
    assert m, out
    assert out.startswith('app password "%s" added for %s:\n\n' % (name, user)), out
    return m.group(1)


def app_list(srv, user):
    out = srv.cli_ok("user", "app-password", "list", user).stdout.decode()
    return [l.split("\t") for l in out.splitlines()]


def port(srv, key):
    m = re.fullmatch(r"(.*):(\d+)", srv.read_config()[key])
    return int(m.group(2))


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def imap_login(srv, user, pw):
    c = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        typ, data = c.login(user, pw)
        return c, typ, data
    except imaplib.IMAP4.error as e:
        c.shutdown()
        return None, "NO", [str(e).encode()]


def imap_auth_plain(srv, user, pw):
    c = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        typ, _ = c.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, pw)).encode())
        return typ
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        c.shutdown()


def pop_user_pass(srv, user, pw):
    p = poplib.POP3(HOST, srv.pop3_port, timeout=timeout(10))
    try:
        p.user(user)
        return p.pass_(pw)
    except poplib.error_proto as e:
        return e.args[0]
    finally:
        p.close()


def pop_auth_plain(srv, user, pw):
    p = poplib.POP3(HOST, srv.pop3_port, timeout=timeout(10))
    try:
        ir = base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode()
        return p._shortcmd("AUTH PLAIN " + ir)
    except poplib.error_proto as e:
        return e.args[0]
    finally:
        p.close()


def smtp_auth(srv, user, pw, mech):
    s = smtplib.SMTP(HOST, port(srv, "submission.listen"), timeout=timeout(10))
    try:
        s.ehlo()
        s.starttls(context=tls_ctx())
        s.ehlo()
        s.user, s.password = user, pw
        try:
            return s.auth(mech, getattr(s, "auth_" + mech.lower()), initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code, e.smtp_error
    finally:
        s.close()


def sieve_auth(srv, user, pw):
    with MS(ms_port(srv)) as c:
        ir = base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode()
        return c.cmd('AUTHENTICATE "PLAIN" "%s"' % ir)


def ok_line(proto, user, mech, name):
    return (r'%s session=\S+ client=127\.0\.0\.1 action=auth mech=%s user=%s result=ok '
            r'app_password=%s$' % (proto, mech, re.escape(user), re.escape(name)))


# ---------------------------------------------------------------- CLI

def test_add_list_revoke_cli(srv):
    user = new_user(srv)
    assert app_list(srv, user) == []
    pw = add_app(srv, user, "phone")
    pw2 = add_app(srv, user, "laptop thunderbird")
    assert pw != pw2
    # oldest first, then by name
    rows = app_list(srv, user)
    assert rows == sorted(rows, key=lambda r: (r[2], r[0]))
    assert {r[0]: r[1] for r in rows} == {"phone": pw[:4], "laptop thunderbird": pw2[:4]}
    for r in rows:
        assert len(r) == 4
        assert re.fullmatch(r"created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", r[2]), r
        assert r[3] == "last used never"
    # neither the password nor its hash is ever shown again
    out = srv.cli_ok("user", "app-password", "list", user).stdout.decode()
    assert pw[5:] not in out and "$y$" not in out

    r = srv.cli("user", "app-password", "add", user, "phone")
    assert r.returncode == 1
    assert r.stderr.decode() == ('tern: user app-password add: %s: an app password named '
                                 '"phone" exists\n' % user)
    r = srv.cli("user", "app-password", "add", user, "bad\tname")
    assert r.returncode == 2
    assert r.stderr.decode().startswith("tern: user app-password add: NAME: 1 to 64 printable")
    r = srv.cli("user", "app-password", "add", "nobody@example.test", "phone")
    assert r.returncode == 1
    assert r.stderr.decode() == "tern: user app-password add: no such user nobody@example.test\n"
    r = srv.cli("user", "app-password", "list")
    assert r.returncode == 2

    out = srv.cli_ok("user", "app-password", "revoke", user, "phone").stdout.decode()
    assert out == 'app password "phone" of %s revoked\n' % user
    assert [r[0] for r in app_list(srv, user)] == ["laptop thunderbird"]
    r = srv.cli("user", "app-password", "revoke", user, "phone")
    assert r.returncode == 1
    assert r.stderr.decode() == ('tern: user app-password revoke: %s has no app password '
                                 'named "phone"\n' % user)


def test_at_most_twenty_per_user(srv):
    user = new_user(srv)
    for i in range(20):
        add_app(srv, user, "d%d" % i)
    r = srv.cli("user", "app-password", "add", user, "one too many")
    assert r.returncode == 1
    assert r.stderr.decode() == ("tern: user app-password add: %s: the account has 20 app "
                                 "passwords, the most it may have\n" % user)
    assert len(app_list(srv, user)) == 20


def test_removing_the_user_removes_its_app_passwords(srv):
    user = new_user(srv)
    pw = add_app(srv, user, "phone")
    srv.cli_ok("user", "remove", user)
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    assert app_list(srv, user) == []
    c, typ, data = imap_login(srv, user, pw)
    assert typ == "NO" and IMAP_FAIL in data[0]


# ------------------------------------------------------------ logins

def test_app_password_on_every_protocol(srv):
    user = new_user(srv)
    pw = add_app(srv, user, "phone")
    mark = srv.log_mark()

    c, typ, data = imap_login(srv, user, pw)
    assert typ == "OK", data
    assert c.select("INBOX")[0] == "OK"
    c.logout()
    # typed as a person might: upper case, no dashes
    c, typ, _ = imap_login(srv, user, pw.replace("-", "").upper())
    assert typ == "OK"
    c.logout()
    assert imap_auth_plain(srv, user, pw) == "OK"
    assert pop_user_pass(srv, user, pw).startswith(b"+OK")
    assert pop_auth_plain(srv, user, pw).startswith(b"+OK")
    for mech in ("PLAIN", "LOGIN"):
        code, _ = smtp_auth(srv, user, pw, mech)
        assert code == 235
    assert sieve_auth(srv, user, pw) == ([], 'OK "Logged in"')

    assert len(srv.wait_log(ok_line("imap", user, "PLAIN", "phone"), since=mark, count=3)) == 3
    assert len(srv.wait_log(ok_line("pop3", user, r"\S+", "phone"), since=mark, count=2)) == 2
    assert len(srv.wait_log(ok_line("smtp", user, "PLAIN", "phone"), since=mark)) == 1
    assert len(srv.wait_log(ok_line("smtp", user, "LOGIN", "phone"), since=mark)) == 1
    assert len(srv.wait_log(ok_line("managesieve", user, "PLAIN", "phone"), since=mark)) == 1

    # the main password: still works, and its log line names no app password
    c, typ, _ = imap_login(srv, user, PASSWORD)
    assert typ == "OK"
    c.logout()
    lines = srv.wait_log(r"imap session=\S+ client=\S+ action=auth mech=PLAIN user=%s "
                         r"result=ok$" % re.escape(user), since=mark)
    assert len(lines) == 1


def test_scram_takes_the_main_password_only(srv):
    """SCRAM's keys come from the main password (docs/security.md)."""
    from test_imap_tls import Scram
    user = new_user(srv)
    pw = add_app(srv, user, "phone")
    b64 = lambda b: base64.b64encode(b).decode()
    for password, want in ((pw, 'NO "Authentication failed"'), (PASSWORD, None)):
        with MS(ms_port(srv)) as c:
            sc = Scram(user, password)
            c.send('AUTHENTICATE "SCRAM-SHA-256" "%s"\r\n' % b64(sc.first()))
            m = re.fullmatch(r'"([A-Za-z0-9+/=]+)"', c.line())
            c.send('"%s"\r\n' % b64(sc.final(base64.b64decode(m.group(1)))))
            lines, final = c.response()
            if want:
                assert final == want
            else:
                assert final.startswith('OK (SASL "')


def test_last_used_shown_and_written_at_most_once_a_minute(srv):
    user = new_user(srv)
    pw = add_app(srv, user, "phone")
    before = int(time.time())
    c, typ, _ = imap_login(srv, user, pw)
    assert typ == "OK"
    c.logout()
    row = app_list(srv, user)[0]
    m = re.fullmatch(r"last used (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", row[3])
    assert m, row
    used = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) - time.timezone
    assert before - 1 <= used <= time.time() + 1

    db = sqlite3.connect(srv.data + "/server.db", timeout=timeout(10))
    try:
        def last_used():
            return db.execute("SELECT last_used FROM app_passwords WHERE name = 'phone' AND "
                              "account_id = (SELECT id FROM accounts WHERE address = ?)",
                              (user,)).fetchone()[0]

        def set_last_used(t):
            with db:
                db.execute("UPDATE app_passwords SET last_used = ? WHERE name = 'phone' AND "
                           "account_id = (SELECT id FROM accounts WHERE address = ?)",
                           (t, user))

        # 30 s ago: a login does not write it again
        t30 = int(time.time()) - 30
        set_last_used(t30)
        assert pop_user_pass(srv, user, pw).startswith(b"+OK")
        assert last_used() == t30
        # two minutes ago: it does
        t120 = int(time.time()) - 120
        set_last_used(t120)
        now = int(time.time())
        assert pop_user_pass(srv, user, pw).startswith(b"+OK")
        assert now <= last_used() <= int(time.time()) + 1
        # the main password leaves it alone
        set_last_used(t120)
        assert pop_user_pass(srv, user, PASSWORD).startswith(b"+OK")
        assert last_used() == t120
    finally:
        db.close()


def test_revoked_fails_like_a_wrong_password_open_sessions_stay(srv):
    user = new_user(srv)
    pw = add_app(srv, user, "phone")
    keep = add_app(srv, user, "laptop mail")
    open_imap, typ, _ = imap_login(srv, user, pw)
    assert typ == "OK"
    srv.cli_ok("user", "app-password", "revoke", user, "phone")

    c, typ, data = imap_login(srv, user, pw)
    assert typ == "NO" and IMAP_FAIL in data[0], data
    assert imap_auth_plain(srv, user, pw) == IMAP_FAIL.decode()
    assert pop_user_pass(srv, user, pw) == b"-ERR [AUTH] Authentication failed"
    assert pop_auth_plain(srv, user, pw) == b"-ERR [AUTH] Authentication failed"
    assert smtp_auth(srv, user, pw, "PLAIN") == \
        (535, b"5.7.8 Error: authentication credentials invalid")
    assert sieve_auth(srv, user, pw) == ([], 'NO "Authentication failed"')

    # the main password and the other app password keep working
    mark = srv.log_mark()
    for secret in (PASSWORD, keep):
        c, typ, _ = imap_login(srv, user, secret)
        assert typ == "OK"
        c.logout()
    # (its name escaped in the log line)
    assert srv.wait_log(ok_line("imap", user, "PLAIN", "laptop\\x20mail"), since=mark)
    # a session logged in with it before the revoke is not cut off
    assert open_imap.noop()[0] == "OK"
    assert open_imap.select("INBOX")[0] == "OK"
    open_imap.logout()


def test_wrong_app_password_counts_in_the_limiter(make_server):
    s = make_server(conf=dict(CONF, **{"auth.block_after": "3", "auth.block_time": "600"}))
    user = new_user(s)
    pw = add_app(s, user, "phone")
    # the right id, a wrong secret: a failure like any other
    wrong = pw[:5] + ("2222" if pw[5:9] != "2222" else "3333") + pw[9:]
    mark = s.log_mark()
    for _ in range(3):
        c, typ, data = imap_login(s, user, wrong)
        assert typ == "NO" and IMAP_FAIL in data[0]
    assert len(s.wait_log(r"action=auth_fail ip=127\.0\.0\.1 account=%s " % re.escape(user),
                          since=mark, count=3)) == 3
    out = s.cli_ok("auth", "status", user).stdout.decode()
    assert out.startswith("%s: 3 failures in the window" % user), out
    # the address is blocked now: even the right app password is refused
    c, typ, data = imap_login(s, user, pw)
    assert typ == "NO" and b"[UNAVAILABLE]" in data[0], data
    s.cli_ok("auth", "unblock", "127.0.0.1")
    c, typ, _ = imap_login(s, user, pw)
    assert typ == "OK"
    c.logout()
