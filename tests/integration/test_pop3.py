"""The POP3 server through the real protocol (docs/pop3.md is the contract).

One server serves the module (workers = 2, so the [IN-USE] lock is tested
across processes; allow_plaintext_loopback = yes, since there is no TLS
yet).  Each test works on a fresh account, so tests do not see each
other's mail.  Tests that need another config start their own server.
"""

import base64
import imaplib
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import HOST, RawClient, socket_owner, timeout

PASSWORD = "secret"
MODULE_CONF = {"workers": 2, "allow_plaintext_loopback": "yes"}
SENDER = "sender@client.example"
MAX_ERRORS = 10  # smtp.max_errors as written by `tern init`

CAPA_PLAINTEXT = ["TOP", "UIDL", "USER", "SASL PLAIN LOGIN SCRAM-SHA-256", "RESP-CODES", "AUTH-RESP-CODE",
                  "PIPELINING", "IMPLEMENTATION Tern"]
PLAINTEXT_REFUSED = b"-ERR [AUTH] Plaintext authentication disallowed without TLS"


# ------------------------------------------------------------ helpers

class POP3Raw(RawClient):
    """A bare POP3 client: exact bytes in and out."""

    def __init__(self, port, host=HOST, timeout_s=10, tls=False):
        super().__init__(host, port, timeout_s)
        if tls:  # implicit TLS (pop3s); our certificate is self-signed
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock)
        self.greeting = self.line()

    def exact(self, n):
        """The next n bytes exactly as sent."""
        parts, have = [self.buf], len(self.buf)
        while have < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection after %d of %d bytes"
                                      % (have, n))
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        self.buf = data[n:]
        return data[:n]

    def line(self):
        """One line from the server, without its CRLF."""
        line = self.raw_line()
        assert b"\n" not in line and b"\r" not in line, "bare CR/LF in a reply: %r" % line
        return line

    def cmd(self, line):
        """Sends one command (CRLF added); returns the status line."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        return self.line()

    def multi_raw(self):
        """The lines of a multi-line answer as sent (still dot-stuffed),
        up to but without the terminating "."."""
        lines = []
        while True:
            line = self.line()
            if line == b".":
                return lines
            lines.append(line)

    def multi(self):
        """The lines of a multi-line answer, dot-stuffing removed."""
        return [l[1:] if l.startswith(b".") else l for l in self.multi_raw()]

    def multi_cmd(self, line):
        status = self.cmd(line)
        assert status.startswith(b"+OK"), (line, status)
        return status, self.multi()

    def login(self, user, password=PASSWORD):
        r = self.cmd("USER " + user)
        assert r.startswith(b"+OK"), r
        r = self.cmd("PASS " + password)
        assert r.startswith(b"+OK"), r
        return r

    def closed_by_server(self, wait=5):
        self.sock.settimeout(timeout(wait))
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def body_bytes(lines):
    """Lines from a multi-line answer as the message bytes (CRLF lines)."""
    return b"".join(l + b"\r\n" for l in lines)


def stuffed(data):
    """data as a multi-line answer carries it (RFC 1939 3): CRLF line ends
    (a bare LF gets a CR), a "." doubled at the start of a line, a CRLF
    added if data does not end with one, then ".CRLF"."""
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    lines = data.split(b"\r\n")
    if lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines) + b".\r\n"


def top_of(data, n):
    """What TOP sends of data (CRLF lines): the header, the blank line and
    n body lines."""
    header, sep, body = data.partition(b"\r\n\r\n")
    assert sep
    lines = body.split(b"\r\n")
    if lines[-1] == b"":
        lines.pop()
    return header + sep + b"".join(l + b"\r\n" for l in lines[:n])


def imap_flags(srv, user):
    """{uid: flags text} of INBOX seen through IMAP (read-only select)."""
    m = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        m.login(user, PASSWORD)
        typ, _ = m.select("INBOX", readonly=True)
        assert typ == "OK"
        typ, data = m.fetch("1:*", "(UID FLAGS)")
        assert typ == "OK"
        out = {}
        for item in data:
            mt = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", item)
            assert mt, item
            out[int(mt.group(1))] = mt.group(2).decode()
        m.logout()
        return out
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def new_user(srv):
    user = "p%s@example.test" % uuid.uuid4().hex[:12]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    return user


def deliver(srv, user, subject, body="Hello.\r\n", n=1):
    """Delivers n messages to user through SMTP (one session); returns the
    subjects ("SUBJECT-i" when n > 1)."""
    subjects = []
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(30)) as s:
        for i in range(n):
            subj = subject if n == 1 else "%s-%d" % (subject, i)
            msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n%s" % (
                SENDER, user, subj, body)).encode("utf-8")
            s.sendmail(SENDER, [user], msg)
            subjects.append(subj)
    return subjects


def uidl_lines(srv, user):
    """The UIDL listing of a new session ("N UIDVALIDITY.UID" lines)."""
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        _, lines = c.multi_cmd("UIDL")
        c.cmd("QUIT")
    return lines


def stored(srv, user):
    """(uid, bytes) of every INBOX message, in UID order."""
    rows = srv.mail_list(user)
    return [(int(r["UID"]), srv.mail_cat(user, "INBOX", r["UID"])) for r in rows]


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


@pytest.fixture
def user(srv):
    return new_user(srv)


# ------------------------------------------------------ greeting, CAPA

def test_greeting_and_capa(srv):
    with POP3Raw(srv.pop3_port) as c:
        assert c.greeting.startswith(b"+OK")
        status, lines = c.multi_cmd("CAPA")
        # STLS: tern init makes a certificate (test_tls.py tests it)
        assert [l.decode() for l in lines] == CAPA_PLAINTEXT[:2] + ["STLS"] + CAPA_PLAINTEXT[2:]
        for absent in ("EXPIRE", "LOGIN-DELAY", "UTF8"):
            assert not any(l.decode().startswith(absent) for l in lines)
        assert c.cmd("QUIT").startswith(b"+OK")
        assert c.closed_by_server()


def test_capa_after_login_and_poplib(srv, user):
    deliver(srv, user, "poplib")
    p = poplib.POP3(HOST, srv.pop3_port, timeout=timeout(10))
    try:
        assert p.user(user).startswith(b"+OK")
        assert p.pass_(PASSWORD).startswith(b"+OK")
        caps = p.capa()
        assert "TOP" in caps and "UIDL" in caps and "PIPELINING" in caps
        assert caps["SASL"] == ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
        count, size = p.stat()
        assert count == 1
        data = stored(srv, user)[0][1]
        assert size == len(data)
        resp, lines, octets = p.retr(1)
        assert resp == b"+OK %d octets" % len(data)
        assert body_bytes(lines) == data
    finally:
        p.quit()


def test_plaintext_refused_without_config(make_server):
    """allow_plaintext_loopback = no (the default): no USER/PASS/AUTH, and
    CAPA does not offer them."""
    s = make_server(conf={"workers": 1})
    assert s.read_config()["allow_plaintext_loopback"] == "no"
    with POP3Raw(s.pop3_port) as c:
        _, lines = c.multi_cmd("CAPA")
        caps = [l.decode() for l in lines]
        # SCRAM reveals no password: offered without TLS (docs/pop3.md)
        assert "USER" not in caps and "SASL SCRAM-SHA-256" in caps
        assert "TOP" in caps and "RESP-CODES" in caps
        assert c.cmd("USER alice@example.test") == PLAINTEXT_REFUSED
        assert c.cmd("PASS secret") == PLAINTEXT_REFUSED
        assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0secret").decode()) \
            == PLAINTEXT_REFUSED
        assert c.cmd("AUTH PLAIN") == PLAINTEXT_REFUSED
        assert c.cmd("STAT").startswith(b"-ERR")
        assert c.cmd("QUIT").startswith(b"+OK")


# ------------------------------------------------------------- login

def test_user_name_case_insensitive(srv, user):
    with POP3Raw(srv.pop3_port) as c:
        assert c.login(user.upper()) == b"+OK Logged in, 0 messages (0 octets)"
        assert c.cmd("STAT") == b"+OK 0 0"
        assert c.cmd("QUIT") == b"+OK Bye"


def test_wrong_password_is_delayed(srv, user):
    with POP3Raw(srv.pop3_port) as c:
        assert c.cmd("USER " + user).startswith(b"+OK")
        t0 = time.monotonic()
        r = c.cmd("PASS wrong")
        elapsed = time.monotonic() - t0
        assert r.startswith(b"-ERR [AUTH]"), r
        # the limiter's delay: auth.fail_delay_ms (500) doubling per failure
        assert elapsed >= 0.45, elapsed
        # unknown user: the same answer, the same delay
        assert c.cmd("USER nobody-here@example.test").startswith(b"+OK")
        t0 = time.monotonic()
        r = c.cmd("PASS secret")
        assert r.startswith(b"-ERR [AUTH]"), r
        assert time.monotonic() - t0 >= 0.9
        # commands sent during the delay wait for it, then run in order
        c.send("USER %s\r\nPASS wrong\r\nNOOP\r\n" % user)
        t0 = time.monotonic()
        assert c.line().startswith(b"+OK")
        assert c.line().startswith(b"-ERR [AUTH]")
        assert time.monotonic() - t0 >= 0.9
        assert c.line().startswith(b"-ERR")  # NOOP before login
        # still usable: a right password logs in
        assert c.login(user).startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")


def test_pass_without_user_and_user_reset(srv, user):
    with POP3Raw(srv.pop3_port) as c:
        assert c.cmd("PASS " + PASSWORD).startswith(b"-ERR")
        assert c.cmd("USER " + user).startswith(b"+OK")
        assert c.cmd("CAPA").startswith(b"+OK")
        c.multi()
        # USER must be followed by PASS directly
        assert c.cmd("PASS " + PASSWORD).startswith(b"-ERR")
        assert c.login(user).startswith(b"+OK")


def plain(authcid, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, authcid, password)).encode()).decode()


def test_auth_plain_initial_response(srv, user):
    deliver(srv, user, "auth-ir")
    with POP3Raw(srv.pop3_port) as c:
        r = c.cmd("AUTH PLAIN " + plain(user, PASSWORD))
        assert r.startswith(b"+OK"), r
        assert c.cmd("STAT").startswith(b"+OK 1 ")
        # no second AUTH (RFC 5034 4)
        assert c.cmd("AUTH PLAIN " + plain(user, PASSWORD)).startswith(b"-ERR")
        assert c.cmd("QUIT").startswith(b"+OK")


def test_auth_plain_continuation(srv, user):
    with POP3Raw(srv.pop3_port) as c:
        assert c.cmd("auth plain") == b"+ "
        r = c.cmd(plain(user.upper(), PASSWORD, authzid=user))
        assert r.startswith(b"+OK"), r
        assert c.cmd("QUIT").startswith(b"+OK")


def test_auth_plain_failures(srv, user):
    with POP3Raw(srv.pop3_port) as c:
        # the mechanism list (RFC 1734 style)
        _, lines = c.multi_cmd("AUTH")
        assert lines == [b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"]
        assert c.cmd("AUTH CRAM-MD5").startswith(b"-ERR")
        # cancel
        assert c.cmd("AUTH PLAIN") == b"+ "
        assert c.cmd("*").startswith(b"-ERR")
        # not base64
        assert c.cmd("AUTH PLAIN") == b"+ "
        assert c.cmd("not base64!").startswith(b"-ERR")
        assert c.cmd("AUTH PLAIN %%%").startswith(b"-ERR")
        # wrong password: [AUTH] after the delay (500 ms after a first
        # failure, more if earlier tests failed from this address)
        t0 = time.monotonic()
        assert c.cmd("AUTH PLAIN " + plain(user, "wrong")).startswith(b"-ERR [AUTH]")
        assert time.monotonic() - t0 >= 0.45
        assert c.cmd("AUTH PLAIN") == b"+ "
        t0 = time.monotonic()
        assert c.cmd(plain(user, "wrong")).startswith(b"-ERR [AUTH]")
        assert time.monotonic() - t0 >= 0.9
        # another authorization identity (no proxy logins)
        assert c.cmd("AUTH PLAIN " + plain(user, PASSWORD, authzid="alice@example.test")) \
            .startswith(b"-ERR [AUTH]")
        # an empty response is no PLAIN message
        assert c.cmd("AUTH PLAIN =").startswith(b"-ERR")
        # the long continuation line allowance (512 with CRLF) is not a login
        assert c.cmd("AUTH PLAIN") == b"+ "
        assert c.cmd("A" * 600).startswith(b"-ERR")
        assert c.cmd("AUTH PLAIN " + plain(user, PASSWORD)).startswith(b"+OK")


# --------------------------------------------------- reading the maildrop

def test_stat_list_uidl_exact(srv, user):
    deliver(srv, user, "exact", n=3, body="Line one.\r\nLine two.\r\n")
    msgs = stored(srv, user)
    assert len(msgs) == 3
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        total = sum(len(m) for _, m in msgs)
        assert c.cmd("STAT") == b"+OK 3 %d" % total
        _, lines = c.multi_cmd("LIST")
        assert lines == [b"%d %d" % (i + 1, len(m)) for i, (_, m) in enumerate(msgs)]
        assert c.cmd("LIST 2") == b"+OK 2 %d" % len(msgs[1][1])
        _, uidls = c.multi_cmd("UIDL")
        assert len(uidls) == 3
        validity = None
        for i, line in enumerate(uidls):
            m = re.fullmatch(rb"(\d+) (\d+)\.(\d+)", line)
            assert m, line
            assert int(m.group(1)) == i + 1
            assert int(m.group(3)) == msgs[i][0]
            validity = validity or m.group(2)
            assert m.group(2) == validity
        assert c.cmd("UIDL 3") == b"+OK 3 " + uidls[2].split(b" ")[1]
        for i, (_, data) in enumerate(msgs):
            assert c.cmd("RETR %d" % (i + 1)) == b"+OK %d octets" % len(data)
            assert body_bytes(c.multi()) == data
        for bad in ("LIST 0", "LIST 4", "UIDL 9", "RETR 4", "TOP 0 1", "DELE 99",
                    "RETR 18446744073709551615"):
            assert c.cmd(bad) == b"-ERR No such message", bad
        assert c.cmd("NOOP") == b"+OK"
        assert c.cmd("QUIT") == b"+OK Bye"


def test_dot_stuffing_round_trip(srv, user):
    body = ".\r\n..\r\n.starts with a dot\r\n...three\r\nmid . dot\r\n. \r\nlast\r\n"
    deliver(srv, user, "dots", body=body)
    (_, data), = stored(srv, user)
    assert b"\r\n.starts with a dot\r\n" in data  # SMTP unstuffed it
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        assert c.cmd("RETR 1") == b"+OK %d octets" % len(data)
        raw = c.multi_raw()
        for line in raw:
            # every line that starts with "." is stuffed on the wire
            if line.startswith(b"."):
                assert line.startswith(b".."), line
        for wire in (b"..", b"...", b"..starts with a dot", b"....three", b".. "):
            assert wire in raw, wire
        assert body_bytes(l[1:] if l.startswith(b".") else l for l in raw) == data
        assert c.cmd("TOP 1 100").startswith(b"+OK")
        assert body_bytes(c.multi()) == data
        c.cmd("QUIT")


def test_top(srv, user):
    deliver(srv, user, "top", body="b1\r\n.b2\r\nb3\r\n")
    (_, data), = stored(srv, user)
    header, _, body = data.partition(b"\r\n\r\n")
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        _, lines = c.multi_cmd("TOP 1 0")
        assert body_bytes(lines) == header + b"\r\n\r\n"
        _, lines = c.multi_cmd("TOP 1 1")
        assert body_bytes(lines) == header + b"\r\n\r\nb1\r\n"
        _, lines = c.multi_cmd("TOP 1 2")
        assert body_bytes(lines) == header + b"\r\n\r\nb1\r\n.b2\r\n"
        _, lines = c.multi_cmd("TOP 1 3")
        assert body_bytes(lines) == data
        _, lines = c.multi_cmd("top 1 999999")
        assert body_bytes(lines) == data
        c.cmd("QUIT")
    # TOP does not mark the message read
    assert srv.mail_list(user)[0]["FLAGS"] == "-"


def test_retr_sets_seen(srv, user):
    deliver(srv, user, "seen", n=2)
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        c.multi_cmd("RETR 2")
        c.cmd("QUIT")
    rows = srv.mail_list(user)
    assert "\\Seen" not in rows[0]["FLAGS"]
    assert "\\Seen" in rows[1]["FLAGS"]


def test_retr_seen_stored_at_quit_seen_over_imap(srv, user):
    """RETR's \\Seen flags are stored together when the maildrop is
    released (docs/pop3.md), so IMAP sees them after QUIT."""
    deliver(srv, user, "seenq", n=3)
    uids = [uid for uid, _ in stored(srv, user)]
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        c.multi_cmd("RETR 1")
        c.multi_cmd("RETR 3")
        c.multi_cmd("RETR 1")
        c.multi_cmd("TOP 2 0")
        # not stored yet: one transaction at the end of the session
        assert all("\\Seen" not in r["FLAGS"] for r in srv.mail_list(user))
        assert c.cmd("QUIT") == b"+OK Bye"
    flags = imap_flags(srv, user)
    assert set(flags) == set(uids)
    assert "\\Seen" in flags[uids[0]].split()
    assert "\\Seen" not in flags[uids[1]].split()
    assert "\\Seen" in flags[uids[2]].split()


def test_retr_seen_stored_when_connection_drops(srv, user):
    """A session that ends without QUIT deletes nothing but still stores
    the \\Seen flags of what it retrieved."""
    deliver(srv, user, "seend", n=3)
    uids = [uid for uid, _ in stored(srv, user)]
    c = POP3Raw(srv.pop3_port)
    c.login(user)
    c.multi_cmd("RETR 2")
    assert c.cmd("DELE 3").startswith(b"+OK")
    c.close()
    deadline = time.monotonic() + timeout(5)
    while True:
        flags = imap_flags(srv, user)
        if "\\Seen" in flags.get(uids[1], "") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert set(flags) == set(uids)  # nothing deleted
    assert "\\Seen" in flags[uids[1]].split()
    assert "\\Seen" not in flags[uids[0]].split()
    assert "\\Seen" not in flags[uids[2]].split()


def dotty_body(n_lines):
    """A body where most lines start with "." (lines of 1 to 9 octets, so
    the server's 64 KiB read blocks end at every position of a line)."""
    parts = []
    for i in range(n_lines):
        k = i % 9
        if k == 0:
            parts.append(".")
        elif k == 1:
            parts.append("..")
        elif k == 4:
            parts.append("x" * k)
        else:
            parts.append("." + "d" * (k - 1))
    return "\r\n".join(parts) + "\r\n"


def test_many_dot_lines_retrieved_exactly(srv, user):
    """A 300 KB message with a "." at the start of most lines comes out
    byte for byte dot-stuffed, through RETR and TOP."""
    deliver(srv, user, "dotty", body=dotty_body(60000))
    (_, data), = stored(srv, user)
    assert len(data) > 300_000
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        c.send("RETR 1\r\nNOOP\r\n")
        want = b"+OK %d octets\r\n" % len(data) + stuffed(data)
        assert c.exact(len(want)) == want
        assert c.line() == b"+OK"
        for n in (0, 1, 2, 3, 30001, 59999, 60000, 99999):
            c.send("TOP 1 %d\r\n" % n)
            want = b"+OK Top of message follows\r\n" + stuffed(top_of(data, n))
            assert c.exact(len(want)) == want, n
        assert c.cmd("QUIT") == b"+OK Bye"


def test_bare_lf_in_file_gets_cr(srv, user):
    """A message file with bare LF line ends (not what Tern stores, but it
    must not break the framing) goes out with CRLF and dot-stuffed."""
    token = uuid.uuid4().hex
    deliver(srv, user, "barelf " + token, body=dotty_body(30000))
    paths = srv.message_files_with(token)
    assert len(paths) == 1
    with open(paths[0], "rb") as f:
        data = f.read()
    bare = data.replace(b"\r\n", b"\n")
    with open(paths[0], "wb") as f:
        f.write(bare)
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        c.send("RETR 1\r\n")
        want = b"+OK %d octets\r\n" % len(data) + stuffed(bare)
        assert c.exact(len(want)) == want
        c.send("TOP 1 7\r\n")
        want = b"+OK Top of message follows\r\n" + stuffed(top_of(data, 7))
        assert c.exact(len(want)) == want
        assert c.cmd("QUIT") == b"+OK Bye"


def test_large_message_over_tls_exact(srv, user):
    """A 3 MB message over pop3s (TLS) is sent byte for byte, with the
    commands pipelined behind it answered after it."""
    line = "y" * 200 + "\r\n"
    body = "".join((".%s" % line) if i % 5 == 0 else line for i in range(15000))
    deliver(srv, user, "tlsbig", body=body)
    (_, data), = stored(srv, user)
    assert len(data) > 3_000_000
    with POP3Raw(srv.pop3s_port, tls=True) as c:
        assert c.greeting == b"+OK Tern POP3 server ready"
        c.login(user)
        c.send("RETR 1\r\nNOOP\r\nTOP 1 2\r\n")
        time.sleep(0.3)  # the server waits on its output meanwhile
        want = b"+OK %d octets\r\n" % len(data) + stuffed(data)
        assert c.exact(len(want)) == want
        assert c.line() == b"+OK"
        want = b"+OK Top of message follows\r\n" + stuffed(top_of(data, 2))
        assert c.exact(len(want)) == want
        assert c.cmd("QUIT") == b"+OK Bye"
    assert "\\Seen" in srv.mail_list(user)[0]["FLAGS"]


def test_file_without_final_crlf(srv, user):
    """A message file that does not end in CRLF gets one before the "."."""
    token = uuid.uuid4().hex
    deliver(srv, user, "nocrlf " + token, body="no final line end\r\n")
    paths = srv.message_files_with(token)
    assert len(paths) == 1
    with open(paths[0], "rb") as f:
        data = f.read()
    assert data.endswith(b"no final line end\r\n")
    os.truncate(paths[0], len(data) - 2)
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        c.send("RETR 1\r\n")
        assert c.line().startswith(b"+OK")
        raw, c.buf = c.buf, b""
        while not raw.endswith(b"\r\n.\r\n"):
            chunk = c.sock.recv(65536)
            assert chunk
            raw += chunk
        assert raw.endswith(b"no final line end\r\n.\r\n")
        assert c.cmd("NOOP") == b"+OK"


def test_large_message_streams(srv, user):
    """A 5 MB message is sent exactly (streamed through backpressure) while
    the client reads slowly at first."""
    line = "x" * 998 + "\r\n"
    body = "".join((".%s" % line) if i % 7 == 0 else line for i in range(5000))
    deliver(srv, user, "large", body=body)
    (_, data), = stored(srv, user)
    assert len(data) > 5_000_000
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        c.send("RETR 1\r\nNOOP\r\n")  # pipelined behind a large answer
        time.sleep(0.5)
        assert c.line() == b"+OK %d octets" % len(data)
        assert body_bytes(c.multi()) == data
        assert c.line() == b"+OK"
        c.cmd("QUIT")


def test_pipelining(srv, user):
    deliver(srv, user, "pipe", n=2)
    msgs = stored(srv, user)
    with POP3Raw(srv.pop3_port) as c:
        c.send("USER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nRETR 1\r\nUIDL 2\r\nDELE 1\r\nSTAT\r\n"
               "RSET\r\nNOOP\r\nQUIT\r\n" % (user, PASSWORD))
        assert c.line().startswith(b"+OK")
        assert c.line().startswith(b"+OK Logged in, 2 messages")
        assert c.line() == b"+OK 2 %d" % sum(len(m) for _, m in msgs)
        assert c.line().startswith(b"+OK")
        assert len(c.multi()) == 2
        assert c.line() == b"+OK %d octets" % len(msgs[0][1])
        assert body_bytes(c.multi()) == msgs[0][1]
        assert re.fullmatch(rb"\+OK 2 \d+\.%d" % msgs[1][0], c.line())
        assert c.line().startswith(b"+OK")
        assert c.line() == b"+OK 1 %d" % len(msgs[1][1])
        assert c.line().startswith(b"+OK")
        assert c.line() == b"+OK"
        assert c.line() == b"+OK Bye"
        assert c.closed_by_server()
    assert len(srv.mail_list(user)) == 2


# ------------------------------------------------------ DELE, RSET, QUIT

def test_dele_quit_removes(srv, user):
    subjects = deliver(srv, user, "dele", n=3)
    token = uuid.uuid4().hex
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        assert c.cmd("DELE 2") == b"+OK Message 2 deleted"
        # a deleted message is gone for every command, the numbers stay
        assert c.cmd("DELE 2").startswith(b"-ERR")
        assert c.cmd("RETR 2").startswith(b"-ERR")
        assert c.cmd("TOP 2 0").startswith(b"-ERR")
        assert c.cmd("LIST 2").startswith(b"-ERR")
        assert c.cmd("UIDL 2").startswith(b"-ERR")
        _, lines = c.multi_cmd("LIST")
        assert [l.split()[0] for l in lines] == [b"1", b"3"]
        _, lines = c.multi_cmd("UIDL")
        assert [l.split()[0] for l in lines] == [b"1", b"3"]
        assert c.cmd("STAT").startswith(b"+OK 2 ")
        assert c.cmd("QUIT") == b"+OK Bye"
    left = [r["SUBJECT"] for r in srv.mail_list(user)]
    assert left == [subjects[0], subjects[2]]
    del token


def test_dele_without_quit_deletes_nothing(srv, user):
    deliver(srv, user, "drop", n=2)
    c = POP3Raw(srv.pop3_port)
    c.login(user)
    assert c.cmd("DELE 1").startswith(b"+OK")
    assert c.cmd("DELE 2").startswith(b"+OK")
    c.close()  # dropped, no QUIT
    # the lock is released at once and nothing was removed
    deadline = time.monotonic() + timeout(5)
    while True:
        with POP3Raw(srv.pop3_port) as c2:
            c2.cmd("USER " + user)
            r = c2.cmd("PASS " + PASSWORD)
            if r.startswith(b"+OK"):
                assert r.startswith(b"+OK Logged in, 2 messages")
                c2.cmd("QUIT")
                break
            assert b"[IN-USE]" in r and time.monotonic() < deadline, r
            time.sleep(0.1)
    assert len(srv.mail_list(user)) == 2


def test_rset(srv, user):
    deliver(srv, user, "rset", n=2)
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        c.cmd("DELE 1")
        assert c.cmd("STAT").startswith(b"+OK 1 ")
        assert c.cmd("RSET").startswith(b"+OK Maildrop has 2 messages")
        assert c.cmd("STAT").startswith(b"+OK 2 ")
        assert c.cmd("RETR 1").startswith(b"+OK")
        c.multi()
        assert c.cmd("QUIT") == b"+OK Bye"
    assert len(srv.mail_list(user)) == 2


def test_quit_before_login(srv):
    with POP3Raw(srv.pop3_port) as c:
        assert c.cmd("QUIT") == b"+OK Bye"
        assert c.closed_by_server()


# ------------------------------------------------------------- IN-USE

def test_in_use_across_workers(srv, user):
    deliver(srv, user, "inuse")
    first = POP3Raw(srv.pop3_port)
    first.login(user)
    workers = srv.workers()
    assert len(workers) == 2
    owner1 = socket_owner(workers, srv.pop3_port, first.sock.getsockname()[1])
    assert owner1 in workers
    # the same worker (or whichever takes it)
    with POP3Raw(srv.pop3_port) as c:
        c.cmd("USER " + user)
        t0 = time.monotonic()
        r = c.cmd("PASS " + PASSWORD)
        assert r.startswith(b"-ERR [IN-USE]"), r
        assert time.monotonic() - t0 < 0.9  # the password was right: no delay
        assert c.cmd("AUTH PLAIN " + plain(user, PASSWORD)).startswith(b"-ERR [IN-USE]")
        assert c.cmd("STAT").startswith(b"-ERR")  # still in AUTHORIZATION
    # A session on the other worker process.  Each worker accepts on its
    # own SO_REUSEPORT socket and the kernel picks one per connection, so
    # connect until one lands on the other worker.
    other = None
    for _ in range(64):
        c = POP3Raw(srv.pop3_port)
        if socket_owner(workers, srv.pop3_port, c.sock.getsockname()[1]) not in (None, owner1):
            other = c
            break
        c.close()
    assert other is not None, "no connection reached the second worker"
    with other as c:
        c.cmd("USER " + user)
        assert c.cmd("PASS " + PASSWORD).startswith(b"-ERR [IN-USE]")
        assert c.cmd("AUTH PLAIN " + plain(user, PASSWORD)).startswith(b"-ERR [IN-USE]")
    assert first.cmd("QUIT") == b"+OK Bye"
    first.close()
    with POP3Raw(srv.pop3_port) as c:
        assert c.login(user).startswith(b"+OK")
        c.cmd("QUIT")


# ----------------------------------------------- fixed list, UIDL stability

def test_message_list_fixed_at_login(srv, user):
    deliver(srv, user, "before", n=2)
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        stat = c.cmd("STAT")
        _, uidl1 = c.multi_cmd("UIDL")
        deliver(srv, user, "during")
        assert len(srv.mail_list(user)) == 3
        assert c.cmd("STAT") == stat
        _, uidl2 = c.multi_cmd("UIDL")
        assert uidl2 == uidl1
        assert c.cmd("RETR 3") == b"-ERR No such message"
        c.cmd("QUIT")
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        assert c.cmd("STAT").startswith(b"+OK 3 ")
        c.cmd("QUIT")


def test_uidl_stable_and_never_reused(srv, user):
    deliver(srv, user, "u", n=3)
    first = uidl_lines(srv, user)
    assert first == uidl_lines(srv, user)  # the same across sessions
    ids1 = [l.split()[1] for l in first]
    # delete the last one, deliver two more
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        c.cmd("DELE 3")
        c.cmd("QUIT")
    deliver(srv, user, "v", n=2)
    ids2 = [l.split()[1] for l in uidl_lines(srv, user)]
    assert ids2[:2] == ids1[:2]
    assert len(ids2) == 4
    assert ids1[2] not in ids2  # the expunged message's id is not reused
    assert len(set(ids2)) == 4
    uids = [int(r["UID"]) for r in srv.mail_list(user)]
    assert [int(i.split(b".")[1]) for i in ids2] == uids


# ----------------------------------------------------------- bad input

def test_wrong_state_commands(srv, user):
    with POP3Raw(srv.pop3_port) as c:
        for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL"):
            assert c.cmd(cmd).startswith(b"-ERR"), cmd
    # (a new session: each has its own error budget)
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        for cmd in ("USER " + user, "PASS x", "AUTH PLAIN"):
            assert c.cmd(cmd).startswith(b"-ERR"), cmd
        assert c.cmd("STAT").startswith(b"+OK")
        c.cmd("QUIT")


def test_non_numeric_and_bad_arguments(srv, user):
    deliver(srv, user, "args")
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        for cmd in ("RETR x", "RETR -1", "TOP 1 x", "TOP x 1", "DELE 1.0", "LIST a",
                    "UIDL +1", "RETR 99999999999999999999999"):
            assert c.cmd(cmd).startswith(b"-ERR"), cmd
        assert c.cmd("STAT").startswith(b"+OK 1 ")
    with POP3Raw(srv.pop3_port) as c:
        c.login(user)
        for cmd in ("RETR", "TOP 1", "LIST 1 2", "STAT 1", "DELE"):
            assert c.cmd(cmd).startswith(b"-ERR"), cmd
        assert c.cmd("STAT").startswith(b"+OK 1 ")


def test_unknown_command_and_too_many_errors(srv, user):
    with POP3Raw(srv.pop3_port) as c:
        for i in range(MAX_ERRORS - 1):
            assert c.cmd("XYZZY %d" % i) == b"-ERR Unknown command"
        assert c.cmd("CAPA").startswith(b"+OK")  # the session carries on
        c.multi()
        assert c.cmd("XYZZY") == b"-ERR Unknown command"
        assert c.line().startswith(b"-ERR Too many errors")
        assert c.closed_by_server()


def test_overlong_lines(srv, user):
    with POP3Raw(srv.pop3_port) as c:
        # 255 octets with CRLF: accepted
        assert c.cmd("CAPA" + " " * 249).startswith(b"+OK")
        c.multi()
        # 256: refused, and its tail is not read as a command
        assert c.cmd("CAPA" + " " * 250) == b"-ERR Line too long"
        assert c.cmd("USER " + "a" * 300 + "\r\nQUIT") == b"-ERR Line too long"
        # the "QUIT" above was on its own line: it closed the session
        assert c.line() == b"+OK Bye"
    with POP3Raw(srv.pop3_port) as c:
        c.send(b"X" * 100000 + b"\r\n")
        assert c.line() == b"-ERR Line too long"
        assert c.login(user).startswith(b"+OK")
        assert c.cmd("NOOP " + "1" * 300) == b"-ERR Line too long"
        assert c.cmd("NOOP") == b"+OK"
        assert c.cmd("NOOP\0") == b"-ERR NUL byte in command"
        c.cmd("QUIT")


# ------------------------------------------------------------ fetchmail

def fetchmail_bin():
    path = shutil.which("fetchmail")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "fetchmail"], capture_output=True, timeout=600,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        path = shutil.which("fetchmail")
    if path is None:
        pytest.skip("fetchmail is not installed and cannot be installed")
    return path


def run_fetchmail(fm, work, port, user, *extra):
    rc = os.path.join(work, "fetchmailrc")
    mbox = os.path.join(work, "mbox")
    with open(rc, "w") as f:
        f.write('poll %s with protocol POP3 port %d auth password\n'
                '    user "%s" there with password "%s"\n'
                '    sslproto \'\'\n'
                '    mda "cat >> %s"\n' % (HOST, port, user, PASSWORD, mbox))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=work, FETCHMAILHOME=work)
    return subprocess.run([fm, "--nosyslog", "--nodetach", "-f", rc,
                           "-i", os.path.join(work, "fetchids")] + list(extra),
                          capture_output=True, timeout=timeout(300), env=env, cwd=work)


def mbox_subjects(work):
    try:
        with open(os.path.join(work, "mbox"), "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return [], b""
    return re.findall(rb"^Subject: (\S+)\r?$", text, re.M), text


def test_fetchmail(srv, user):
    fm = fetchmail_bin()
    work = tempfile.mkdtemp(prefix="tern-fetchmail-")
    try:
        body = "first line\r\n.dot line\r\n..two dots\r\nlast\r\n"
        sent = deliver(srv, user, "fm", body=body, n=500)
        assert len(srv.mail_list(user)) == 500
        r = run_fetchmail(fm, work, srv.pop3_port, user)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        assert r.returncode == 0, out
        subjects, text = mbox_subjects(work)
        assert sorted(s.decode() for s in subjects) == sorted(sent), out[-2000:]
        # dot-stuffing undone by the client: the lines are as sent
        assert text.count(b"\n.dot line\r\n") + text.count(b"\n.dot line\n") == 500
        assert text.count(b"\n..two dots\r\n") + text.count(b"\n..two dots\n") == 500
        assert srv.mail_list(user) == []  # fetched and deleted

        # keep + uidl: new mail is fetched once, then never again
        sent2 = deliver(srv, user, "fmk", n=5)
        r = run_fetchmail(fm, work, srv.pop3_port, user, "--keep", "--uidl")
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        assert r.returncode == 0, out
        subjects, _ = mbox_subjects(work)
        assert sorted(s.decode() for s in subjects[500:]) == sorted(sent2)
        assert len(srv.mail_list(user)) == 5
        r = run_fetchmail(fm, work, srv.pop3_port, user, "--keep", "--uidl")
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        assert r.returncode == 1, out  # 1: no mail
        subjects, _ = mbox_subjects(work)
        assert len(subjects) == 505
        assert len(srv.mail_list(user)) == 5
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------- shutdown

def test_shutdown_deletes_nothing(make_server):
    s = make_server(conf={"workers": 1, "allow_plaintext_loopback": "yes"})
    user = new_user(s)
    deliver(s, user, "shutdown", n=2)
    c = POP3Raw(s.pop3_port)
    c.login(user)
    assert c.cmd("DELE 1").startswith(b"+OK")
    s.proc.send_signal(signal.SIGTERM)
    assert c.line() == b"-ERR [SYS/TEMP] Server shutting down"
    assert c.closed_by_server()
    c.close()
    s.stop()
    assert len(s.mail_list(user)) == 2
