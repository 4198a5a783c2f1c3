"""The IMAP server through the real protocol (docs/imap.md is the contract).

One server serves the module (workers = 2, so notifications cross worker
processes; allow_plaintext_loopback = yes, so passwords go without TLS;
TLS is tested in test_imap_tls.py).  Each
test uses a fresh account, so tests do not see each other's mail.  Replies
are checked byte for byte with a raw client (IMAPRaw); imaplib is used where
exact bytes are not the point.
"""

import base64
import imaplib
import os
import re
import smtplib
import socket
import time
import uuid

import pytest

from conftest import HOST, socket_owner, timeout

PASSWORD = "secret"
# The module server sees many deliberate login failures from 127.0.0.1:
# cap the limiter's growing delay (docs/config.md auth.*) so they stay quick.
MODULE_CONF = {"workers": 2, "allow_plaintext_loopback": "yes", "auth.fail_delay_max_ms": "1000",
               "auth.block_after": "0"}
SENDER = "sender@client.example"
MAX_ERRORS = 10  # smtp.max_errors as written by `tern init`

CAPS = ("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS"
        " MULTIAPPEND MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH SEARCHRES"
        " STATUS=SIZE UTF8=ACCEPT SORT CONDSTORE QRESYNC THREAD=ORDEREDSUBJECT THREAD=REFERENCES"
        " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE COMPRESS=DEFLATE OBJECTID"
        " CREATE-SPECIAL-USE WITHIN SORT=DISPLAY ESORT UNAUTHENTICATE PREVIEW"
        " ACL LIST-MYRIGHTS")
SYSFLAGS = r"\Answered \Flagged \Deleted \Seen \Draft"


# ------------------------------------------------------------ helpers

class IMAPRaw:
    """A bare IMAP client: exact bytes in and out.  Literals in replies are
    kept inline ("{3}\\r\\nabc") in the returned lines."""

    def __init__(self, port, host=HOST, timeout_s=10):
        self.sock = socket.create_connection((host, port), timeout=timeout(timeout_s))
        self.buf = b""
        self.greeting = self.line()
        self.n = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection (pending %r)" % self.buf)
        self.buf += chunk

    def line(self):
        """One response line with its literals inline, without the final CRLF."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            out += line
            m = re.search(rb"~?\{(\d+)\}$", line)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def tag(self):
        self.n += 1
        return "t%d" % self.n

    def cmd(self, text, tag=None):
        """Sends "TAG text"; returns (untagged lines, tagged line), the
        tagged line without its tag."""
        tag = tag or self.tag()
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        lines = []
        tb = tag.encode() + b" "
        while True:
            ln = self.line()
            if ln.startswith(tb):
                return lines, ln[len(tb):]
            lines.append(ln)

    def ok(self, text):
        lines, done = self.cmd(text)
        assert done.startswith(b"OK"), (text, lines, done)
        return lines

    def login(self, user, password=PASSWORD):
        lines, done = self.cmd("LOGIN %s %s" % (user, password))
        assert done.startswith(b"OK [CAPABILITY "), done
        return done

    def pending(self, wait=0.3):
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except (socket.timeout, BlockingIOError):
            pass
        finally:
            self.sock.settimeout(timeout(10))
        data, self.buf = self.buf, b""
        return data

    def closed_by_server(self, wait=5):
        self.sock.settimeout(timeout(wait))
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(timeout(10))


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def new_user(srv):
    user = "u%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    return user


def deliver(srv, rcpt, subject, body="Hello.\r\n", extra=""):
    msg = ("From: Sender <%s>\r\nTo: %s\r\nSubject: %s\r\n%s\r\n%s"
           % (SENDER, rcpt, subject, extra, body))
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.sendmail(SENDER, [rcpt], msg.encode())


def client(srv, user=None):
    c = IMAPRaw(srv.imap_port)
    if user:
        c.login(user)
    return c


def append(c, mbox, msg, flags="", date=""):
    if isinstance(msg, str):
        msg = msg.encode()
    args = mbox
    if flags:
        args += " (%s)" % flags
    if date:
        args += ' "%s"' % date
    tag = c.tag()
    c.send(("%s APPEND %s {%d+}\r\n" % (tag, args, len(msg))).encode() + msg + b"\r\n")
    lines, done = c.until(tag)
    m = re.match(rb"OK \[APPENDUID (\d+) (\d+)\] Append completed", done)
    assert m, (lines, done)
    return int(m.group(2))


def cached_structures(srv, user, where="1"):
    """Rows of the account's imap_cache table (cached ENVELOPE/BODY/
    BODYSTRUCTURE strings and SEARCH header text) matching where."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(srv.data, "server.db"), uri=True)
    try:
        aid = db.execute("SELECT id FROM accounts WHERE address = ?", (user,)).fetchone()[0]
    finally:
        db.close()
    path = os.path.join(srv.data, "accounts", "%02d" % (aid % 100), str(aid), "account.db")
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("SELECT count(*) FROM imap_cache WHERE " + where).fetchone()[0]
    finally:
        db.close()


MSG1 = ("From: Alice <alice@example.test>\r\n"
        "To: Bob <bob@example.test>\r\n"
        "Subject: Lunch plans\r\n"
        "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
        "Message-ID: <m1@example.test>\r\n"
        "\r\n"
        "Shall we meet at noon?\r\n")


# ------------------------------------------------------ greeting, auth

def test_greeting_and_capability(srv):
    with client(srv) as c:
        assert c.greeting == ("* OK [CAPABILITY %s STARTTLS AUTH=PLAIN AUTH=LOGIN "
                              "AUTH=SCRAM-SHA-256] Tern IMAP server ready" % CAPS).encode()
        lines, done = c.cmd("CAPABILITY")
        assert lines == [("* CAPABILITY %s STARTTLS AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256"
                          % CAPS).encode()]
        assert done == b"OK Capability completed"
        lines, done = c.cmd("noop")
        assert (lines, done) == ([], b"OK NOOP completed")
        lines, done = c.cmd("LOGOUT")
        assert lines == [b"* BYE Logging out"]
        assert done == b"OK Logout completed"
        assert c.closed_by_server()


def test_login_ok_and_capability_after(srv):
    user = new_user(srv)
    with client(srv) as c:
        assert c.login(user) == ("OK [CAPABILITY %s] Logged in" % CAPS).encode()
        lines, done = c.cmd("CAPABILITY")
        assert lines == [("* CAPABILITY %s" % CAPS).encode()]
        # LOGIN is not valid any more
        assert c.cmd("LOGIN a b") == ([], b"BAD Command not valid in this state")


def test_login_quoted_and_literal(srv):
    user = new_user(srv)
    with client(srv) as c:
        c.send('a1 LOGIN "%s" {6}\r\n' % user)
        assert c.line() == b"+ Ready for literal data"
        c.send("secret\r\n")
        lines, done = c.until("a1")
        assert done.startswith(b"OK [CAPABILITY ")


def test_login_failure_delay_and_limit(srv):
    user = new_user(srv)
    with client(srv) as c:
        for i in range(3):
            t0 = time.monotonic()
            lines, done = c.cmd("LOGIN %s wrong" % user)
            assert done == b"NO [AUTHENTICATIONFAILED] Authentication failed"
            # the limiter's delay: auth.fail_delay_ms (500), doubling
            assert time.monotonic() - t0 >= 0.45
        assert c.line() == b"* BYE Too many failed logins"
        assert c.closed_by_server()
    with client(srv) as c:
        lines, done = c.cmd("LOGIN nobody@example.test secret")
        assert done == b"NO [AUTHENTICATIONFAILED] Authentication failed"


def test_authenticate_plain(srv):
    user = new_user(srv)
    ir = base64.b64encode(b"\0" + user.encode() + b"\0" + PASSWORD.encode()).decode()
    with client(srv) as c:
        lines, done = c.cmd("AUTHENTICATE PLAIN " + ir)
        assert done == ("OK [CAPABILITY %s] Logged in" % CAPS).encode()
    with client(srv) as c:
        c.send("a AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send(ir + "\r\n")
        lines, done = c.until("a")
        assert done.startswith(b"OK [CAPABILITY")
    with client(srv) as c:
        c.send("a AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send("*\r\n")
        assert c.until("a") == ([], b"BAD Authentication cancelled")
        assert c.cmd("AUTHENTICATE PLAIN !!!!") == ([], b"BAD Invalid base64 data")
        assert c.cmd("AUTHENTICATE CRAM-MD5") == (
            [], b"NO Unsupported authentication mechanism")
    # imaplib's own AUTHENTICATE (no SASL-IR)
    m = imaplib.IMAP4(HOST, srv.imap_port)
    typ, _ = m.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" + b"secret")
    assert typ == "OK"
    m.logout()


def test_plaintext_refused_without_loopback_permission(make_server):
    s = make_server(conf={"allow_plaintext_loopback": "no"})
    with IMAPRaw(s.imap_port) as c:
        assert c.greeting == ("* OK [CAPABILITY %s STARTTLS LOGINDISABLED AUTH=SCRAM-SHA-256]"
                              " Tern IMAP server ready" % CAPS).encode()
        lines, done = c.cmd("LOGIN alice@example.test secret")
        assert done == b"NO [PRIVACYREQUIRED] Plaintext authentication disallowed without TLS"
        lines, done = c.cmd("AUTHENTICATE PLAIN AGEAYg==")
        assert done == b"NO [PRIVACYREQUIRED] Plaintext authentication disallowed without TLS"


# ------------------------------------------------------------ bad input

def test_bad_commands(srv):
    user = new_user(srv)
    with client(srv) as c:
        assert c.cmd("FROB") == ([], b"BAD Unknown command")
        assert c.cmd("SELECT INBOX") == ([], b"BAD Log in first")
        c.send("\r\n")
        assert c.line() == b"* BAD Invalid tag"
        c.send("+x NOOP\r\n")
        assert c.line() == b"* BAD Invalid tag"
        assert c.cmd("NOOP (") == ([], b"BAD Unbalanced parenthesis")
        assert c.cmd('LOGIN "unterminated') == ([], b"BAD Invalid quoted string")
    with client(srv, user) as c:
        assert c.cmd("FETCH 1 FLAGS") == ([], b"BAD Select a mailbox first")
        assert c.cmd("UID FROB 1") == ([], b"BAD Unknown command")
        assert c.cmd("UID LIST") == ([], b"BAD Unknown command")
    with client(srv, user) as c:
        c.ok("SELECT INBOX")
        append(c, "INBOX", MSG1)
        assert c.cmd("FETCH 0 FLAGS") == ([], b"BAD Invalid sequence set")
        assert c.cmd("FETCH 1:x FLAGS") == ([], b"BAD Invalid sequence set")
        assert c.cmd("FETCH 2 FLAGS") == ([], b"BAD Invalid message sequence number")
        assert c.cmd("FETCH 1 (FLAGS") == ([], b"BAD Unbalanced parenthesis")
        assert c.cmd("FETCH 1 FROB") == ([], b"BAD Invalid FETCH items")
        assert c.cmd("FETCH 1 BODY[1.0]") == ([], b"BAD Invalid FETCH items")
        assert c.cmd("STORE 1 FLAGS (\\Bogus)") == ([], b"BAD Invalid flags")
    with client(srv, user) as c:
        c.ok("SELECT INBOX")
        assert c.cmd("SEARCH FROB") == ([], b"BAD Unknown search key")
        assert c.cmd("SEARCH BEFORE 32-Jan-2020") == ([], b"BAD Invalid date")
        # UID sets may name UIDs that do not exist
        assert c.cmd("UID FETCH 999 FLAGS") == ([], b"OK Fetch completed")
        nest = "(" * 40 + ")" * 40
        assert c.cmd("SEARCH " + nest) == ([], b"BAD Too deeply nested")
        # still usable
        assert c.cmd("NOOP") == ([], b"OK NOOP completed")


def test_too_many_errors(srv):
    with client(srv) as c:
        for _ in range(MAX_ERRORS - 1):
            assert c.cmd("FROB") == ([], b"BAD Unknown command")
        c.send("t FROB\r\n")
        assert c.line() == b"t BAD Unknown command"
        assert c.line() == b"* BYE Too many errors, closing connection"
        assert c.closed_by_server()


def test_preauth_flood(srv):
    with client(srv) as c:
        c.send("a NOOP\r\n" * 40)
        got = c.pending(1.0)
        assert got.count(b"a OK NOOP completed\r\n") == 30
        assert got.endswith(b"* BYE Too many commands before login\r\n")
        assert c.closed_by_server()


def test_line_too_long(srv):
    """imap.max_line (64K by default), before and after login: a longer
    line gets a tagged BAD, its rest is skipped, and the session goes on."""
    with client(srv) as c:
        c.send("a NOOP " + "x" * 70000 + "\r\n")
        assert c.line() == b"a BAD Command line too long"
        assert c.cmd("NOOP") == ([], b"OK NOOP completed")
    user = new_user(srv)
    with client(srv, user) as c:
        # sent in pieces: the tag is kept though the line's bytes are not
        c.send("b NOOP " + "x" * 40000)
        c.send("y" * 40000 + "\r\n")
        assert c.line() == b"b BAD Command line too long"
        assert c.cmd("NOOP") == ([], b"OK NOOP completed")
        # a skipped line announcing a non-synchronizing literal cannot be
        # resynchronised
        c.send("c APPEND INBOX " + "x" * 70000 + " {5+}\r\nhello\r\n")
        assert c.line() == b"* BYE Line too long"
        assert c.closed_by_server()
    with client(srv) as c:
        # a client that keeps sending garbage is dropped
        c.send("a NOOP " + "x" * (16 * 65536 + 10))
        assert c.line() == b"* BYE Line too long"
        assert c.closed_by_server()
    with client(srv) as c:
        for _ in range(MAX_ERRORS - 1):
            c.send("a NOOP " + "x" * 70000 + "\r\n")
            assert c.line() == b"a BAD Command line too long"
        c.send("a NOOP " + "x" * 70000 + "\r\n")
        assert c.line() == b"a BAD Command line too long"
        assert c.line() == b"* BYE Too many errors, closing connection"
        assert c.closed_by_server()


def test_long_id_line(srv):
    """RFC 2971's limits (30 pairs, values of 1024 octets): a 31 KB line."""
    pairs = " ".join('"field%02d" "%s"' % (i, chr(ord("a") + i % 26) * 1024)
                     for i in range(30))
    line = "ID (%s)" % pairs
    assert 31000 < len(line) < 32 * 1024
    with client(srv) as c:
        lines, done = c.cmd(line)
        assert done == b"OK ID completed"
        assert len(lines) == 1 and lines[0].startswith(b"* ID (")
        assert c.cmd("NOOP") == ([], b"OK NOOP completed")
    user = new_user(srv)
    with client(srv, user) as c:
        lines, done = c.cmd(line)
        assert done == b"OK ID completed"
        assert c.cmd("NOOP") == ([], b"OK NOOP completed")


def test_max_line_configurable(make_server):
    srv = make_server(conf=dict(MODULE_CONF, **{"imap.max_line": "128K"}))
    with client(srv) as c:
        lines, done = c.cmd('ID ("x" "%s")' % ("v" * 1000))
        assert done == b"OK ID completed"
        c.send("a NOOP " + "x" * 100000 + "\r\n")  # read and parsed whole
        assert c.line() == b"a BAD No arguments expected"
        c.send("a NOOP " + "x" * 140000 + "\r\n")
        assert c.line() == b"a BAD Command line too long"


def test_literal_limits(srv):
    with client(srv) as c:
        # before login literals are at most 8 KiB
        assert c.cmd("LOGIN {9000}") == ([], b"NO [TOOBIG] Literal too big")
        assert c.cmd("NOOP") == ([], b"OK NOOP completed")
        c.send("a LOGIN {9000+}\r\n")
        assert c.line() == b"* BYE [TOOBIG] Literal too big"
        assert c.closed_by_server()
    user = new_user(srv)
    with client(srv, user) as c:
        # smtp.max_message_size (50M as written by tern init)
        assert c.cmd("APPEND INBOX {52428801}") == ([], b"NO [TOOBIG] Literal too big")
        c.send("a APPEND INBOX {52428801+}\r\n")
        assert c.line() == b"* BYE [TOOBIG] Literal too big"
        assert c.closed_by_server()


def test_nul_in_command(srv):
    with client(srv) as c:
        c.send(b"a NO\0OP\r\n")
        assert c.line() == b"a BAD NUL byte in command"


# ------------------------------------------------------ simple commands

def test_enable_id_namespace(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        assert c.cmd("ENABLE FOO") == ([b"* ENABLED"], b"OK Enabled")
        assert c.cmd("ENABLE UTF8=ACCEPT") == ([b"* ENABLED UTF8=ACCEPT"], b"OK Enabled")
        assert c.cmd("ENABLE IMAP4rev2") == ([b"* ENABLED IMAP4rev2"], b"OK Enabled")
        assert c.cmd("ENABLE IMAP4rev2") == ([b"* ENABLED"], b"OK Enabled")
        assert c.cmd('ID ("name" "test" "version" "1")') == (
            [b'* ID ("name" "Tern")'], b"OK ID completed")
        assert c.cmd("ID NIL") == ([b'* ID ("name" "Tern")'], b"OK ID completed")
        assert c.cmd("ID (\"name\")") == ([], b"BAD Invalid ID parameters")
        assert c.cmd("NAMESPACE") == ([b'* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL'],
                                      b"OK Namespace completed")


# ------------------------------------------------------------ mailboxes

def test_select_examine(srv):
    user = new_user(srv)
    deliver(srv, user, "one")
    deliver(srv, user, "two")
    with client(srv, user) as c:
        lines, done = c.cmd("SELECT INBOX")
        assert done == b"OK [READ-WRITE] SELECT completed"
        uv = re.search(rb"UIDVALIDITY (\d+)", b"\n".join(lines)).group(1)
        mid = re.search(rb"MAILBOXID \((M\d+)\)", b"\n".join(lines)).group(1)
        assert lines == [
            b"* 2 EXISTS", b"* 2 RECENT",
            ("* FLAGS (%s)" % SYSFLAGS).encode(),
            ("* OK [PERMANENTFLAGS (%s \\*)] Flags permitted" % SYSFLAGS).encode(),
            b"* OK [UNSEEN 1] First unseen",
            b"* OK [UIDVALIDITY " + uv + b"] UIDs valid",
            b"* OK [MAILBOXID (" + mid + b")] Ok",
            b"* OK [UIDNEXT 3] Predicted next UID",
        ]
        lines, done = c.cmd("EXAMINE inbox")
        assert done == b"OK [READ-ONLY] EXAMINE completed"
        assert b"* OK [PERMANENTFLAGS ()] Read-only mailbox" in lines
        assert b"* 0 RECENT" in lines  # the SELECT above took them
        assert c.cmd("STORE 1 +FLAGS (\\Seen)") == ([], b"NO [READ-ONLY] Mailbox is read-only")
        # rev2: no RECENT, no UNSEEN, a LIST line, [CLOSED] for the previous one
        c.ok("ENABLE IMAP4rev2")
        lines, done = c.cmd("SELECT INBOX")
        assert lines[0] == b"* OK [CLOSED] Previous mailbox closed"
        assert b"* 0 RECENT" not in lines
        assert lines[-1] == b'* LIST () "/" "INBOX"'
        assert c.cmd("SELECT Nope") == ([b"* OK [CLOSED] Previous mailbox closed"],
                                        b"NO [NONEXISTENT] Mailbox does not exist")
        # a failed SELECT leaves no mailbox selected
        assert c.cmd("FETCH 1 FLAGS") == ([], b"BAD Select a mailbox first")


def test_create_delete_rename_subscribe(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        c.ok("CREATE Projects/2024/")
        lines, done = c.cmd("CREATE projects/2024")  # case matters
        assert lines == [] and re.fullmatch(rb"OK \[MAILBOXID \(M\d+\)\] Create completed", done)
        assert c.cmd("CREATE Projects") == ([], b"NO [ALREADYEXISTS] Mailbox already exists")
        assert c.cmd("CREATE inbox") == ([], b"NO [ALREADYEXISTS] Mailbox already exists")
        lines = c.ok('LIST "" "Projects*"')
        assert lines == [b'* LIST (\\HasChildren) "/" "Projects"',
                         b'* LIST (\\HasNoChildren) "/" "Projects/2024"']
        lines = c.ok('LIST "" "%"')
        assert b'* LIST (\\HasChildren) "/" "Projects"' in lines
        assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in lines
        assert not any(b"2024" in l for l in lines)
        lines = c.ok('LIST "Projects/" "%"')
        assert lines == [b'* LIST (\\HasNoChildren) "/" "Projects/2024"']
        assert c.cmd('LIST "" ""') == ([b'* LIST (\\Noselect) "/" ""'], b"OK List completed")
        c.ok("RENAME Projects Work")
        assert c.ok('LIST "" "Work*"') == [b'* LIST (\\HasChildren) "/" "Work"',
                                           b'* LIST (\\HasNoChildren) "/" "Work/2024"']
        assert c.cmd("RENAME Nope X") == ([], b"NO [NONEXISTENT] Mailbox does not exist")
        assert c.cmd("RENAME Work Sent") == (
            [], b"NO [ALREADYEXISTS] Target mailbox already exists")
        c.ok("SUBSCRIBE Work")
        assert c.ok('LSUB "" "W*"') == [b'* LSUB () "/" "Work"']
        assert c.ok('LIST (SUBSCRIBED) "" "W*"') == [
            b'* LIST (\\HasChildren \\Subscribed) "/" "Work"']
        assert c.ok('LIST "" "W*" RETURN (SUBSCRIBED CHILDREN)') == [
            b'* LIST (\\HasChildren \\Subscribed) "/" "Work"',
            b'* LIST (\\HasNoChildren) "/" "Work/2024"']
        c.ok("UNSUBSCRIBE Work")
        c.ok("SUBSCRIBE Work/2024")
        assert c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "W%"') == [
            b'* LIST (\\HasChildren) "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))']
        assert c.ok('LIST (SPECIAL-USE) "" "*"') == [
            b'* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
            b'* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
            b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
            b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
            b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"']
        assert c.cmd('LIST (FOO) "" "*"') == ([], b"BAD Unknown LIST selection option")
        assert c.cmd("DELETE Work") == (
            [], b"NO [HASCHILDREN] Mailbox has children, delete them first")
        c.ok("DELETE Work/2024")
        assert c.cmd("DELETE Work/2024") == ([], b"NO [NONEXISTENT] Mailbox does not exist")
        c.ok("DELETE Work")
        assert c.cmd("DELETE INBOX") == ([], b"NO [CANNOT] INBOX cannot be deleted")
        # a name no mailbox has may be subscribed (test_imap_subscriptions.py)
        assert c.cmd("SUBSCRIBE Nope") == ([], b"OK Subscribe completed")


def test_rename_inbox(srv):
    user = new_user(srv)
    deliver(srv, user, "old inbox mail")
    with client(srv, user) as c:
        c.ok("RENAME INBOX Old")
        assert c.ok("STATUS INBOX (MESSAGES)") == [b"* STATUS \"INBOX\" (MESSAGES 0)"]
        assert c.ok("STATUS Old (MESSAGES)") == [b"* STATUS \"Old\" (MESSAGES 1)"]


def test_mailbox_names_mutf7_and_utf8(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        c.ok("CREATE Entw&APw-rfe")
        assert c.ok('LIST "" "Entw*"') == [b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"']
        assert c.cmd("CREATE &AGE-") == ([], b"NO [CANNOT] Invalid mailbox name")
        assert c.cmd("CREATE &Jjo") == ([], b"NO [CANNOT] Invalid mailbox name")
        c.ok("ENABLE UTF8=ACCEPT")
        lines = c.ok('LIST "" "Entw*"')
        assert lines == ['* LIST (\\HasNoChildren) "/" {9}\r\nEntwürfe'.encode()]
        c.send('a SELECT "Entw\xfcrfe"\r\n'.encode("utf-8"))
        lines, done = c.until("a")
        assert done == b"OK [READ-WRITE] SELECT completed"


def test_atom_mailbox_names(srv):
    """RFC 9051 9: an atom excludes only atom-specials; "[", "}" and "~"
    are ATOM-CHARs (and "~" alone does not start a literal8)."""
    atom = "!#$&'+,-.0123456789:;<=>?@^_`|[}"
    user = new_user(srv)
    with client(srv, user) as c:
        assert c.cmd("SELECT " + atom) == ([], b"NO [NONEXISTENT] Mailbox does not exist")
        assert c.cmd("STATUS %s (MESSAGES)" % atom) == (
            [], b"NO [NONEXISTENT] Mailbox does not exist")
        assert c.cmd('LIST "" ' + atom + "%*") == ([], b"OK List completed")
        assert c.cmd("SELECT ~foo") == ([], b"NO [NONEXISTENT] Mailbox does not exist")
        assert c.cmd("EXAMINE a[b") == ([], b"NO [NONEXISTENT] Mailbox does not exist")
        # that one is not valid modified UTF-7 ("&'"), so none can exist;
        # one that is can be created and used
        name = "a[b}~c"
        c.ok("CREATE " + name)
        assert c.ok('LIST "" a[b%*') == [
            ('* LIST (\\HasNoChildren) "/" "%s"' % name).encode()]
        lines, done = c.cmd("SELECT " + name)
        assert done == b"OK [READ-WRITE] SELECT completed"
        # sections still take their brackets, with spaces inside
        c.ok("APPEND %s {%d+}\r\n%s" % (name, len(MSG1), MSG1))
        lines = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject)]")
        assert lines == [b"* 1 FETCH (BODY[HEADER.FIELDS (Subject)] {24}\r\n"
                         b"Subject: Lunch plans\r\n\r\n)"]
        assert c.cmd("FETCH 1 BODY[HEADER") == ([], b"BAD Invalid FETCH items")


def test_status_and_list_status(srv):
    user = new_user(srv)
    deliver(srv, user, "s1")
    deliver(srv, user, "s2")
    with client(srv, user) as c:
        c.ok("SELECT INBOX")
        c.ok("STORE 1 +FLAGS (\\Seen \\Deleted)")
        lines = c.ok("STATUS INBOX (MESSAGES UNSEEN DELETED RECENT UIDNEXT)")
        assert lines == [b'* STATUS "INBOX" (MESSAGES 2 UNSEEN 1 DELETED 1 RECENT 0 UIDNEXT 3)']
        lines = c.ok("STATUS INBOX (SIZE)")
        size = int(re.search(rb"SIZE (\d+)", lines[0]).group(1))
        assert size > 200
        assert c.cmd("STATUS INBOX (FOO)") == (
            [], b"BAD STATUS needs a mailbox and a list of items")
        assert c.cmd("STATUS Nope (MESSAGES)") == (
            [], b"NO [NONEXISTENT] Mailbox does not exist")
        lines = c.ok('LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN))')
        assert lines == [b'* LIST (\\HasNoChildren) "/" "INBOX"',
                         b'* STATUS "INBOX" (MESSAGES 2 UNSEEN 1)']


# --------------------------------------------------------------- APPEND

def test_append(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        uid = append(c, "INBOX", MSG1, flags="\\Seen $Work", date="17-Jul-1996 02:44:25 -0700")
        assert uid == 1
        c.ok("SELECT INBOX")
        lines = c.ok("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
        assert lines == [('* 1 FETCH (FLAGS (\\Seen \\Recent $Work) INTERNALDATE "17-Jul-1996 09:44:25'
                          ' +0000" RFC822.SIZE %d)' % len(MSG1)).encode()]
        # synchronizing literal; bare LF made CRLF
        c.send("a APPEND INBOX {8}\r\n")
        assert c.line() == b"+ Ready for literal data"
        c.send("x: y\n\nz\n\r\n")
        lines, done = c.until("a")
        assert lines == [b"* 2 EXISTS", b"* 2 RECENT"]
        assert re.fullmatch(rb"OK \[APPENDUID \d+ 2\] Append completed", done)
        lines = c.ok("FETCH 2 (RFC822.SIZE BODY.PEEK[])")
        assert lines == [b"* 2 FETCH (RFC822.SIZE 11 BODY[] {11}\r\nx: y\r\n\r\nz\r\n)"]
        assert c.cmd("APPEND Nope {1+}\r\nx") == ([], b"NO [TRYCREATE] Mailbox does not exist")
        assert c.cmd("APPEND INBOX {0+}\r\n") == ([], b"NO Empty messages are not stored")
        assert c.cmd('APPEND INBOX "bad date" {1+}\r\nx') == ([], b"BAD Invalid date-time")
        assert c.cmd("APPEND INBOX (\\Foo) {1+}\r\nx") == ([], b"BAD Invalid flags")
        lines, done = c.cmd("APPEND INBOX ~{3+}\r\na\0b")
        assert done.startswith(b"OK [APPENDUID")
        assert c.cmd("APPEND INBOX {3+}\r\na\0b") == (
            [], b"BAD NUL in message: use a literal8 (~{n})")


def test_multiappend(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        lines, done = c.cmd("STATUS INBOX (UIDVALIDITY)")
        uv = re.search(rb"UIDVALIDITY (\d+)", lines[0]).group(1)
        # three messages, one transaction; flags and dates per message
        lines, done = c.cmd('APPEND INBOX (\\Seen) {6+}\r\nA: 1\r\n'
                            ' "01-Jan-2020 00:00:00 +0000" {6+}\r\nA: 2\r\n {6+}\r\nA: 3\r\n')
        assert (lines, done) == ([], b"OK [APPENDUID " + uv + b" 1:3] Append completed")
        c.ok("SELECT INBOX")
        assert c.ok("FETCH 1:3 (FLAGS INTERNALDATE)")[:2] == [
            b'* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE "' +
            re.search(rb'INTERNALDATE "([^"]+)"', c.ok("FETCH 1 INTERNALDATE")[0]).group(1) +
            b'")',
            b'* 2 FETCH (FLAGS (\\Recent) INTERNALDATE "01-Jan-2020 00:00:00 +0000")']
        # all or nothing: a bad flag in the second message stores none
        assert c.cmd("APPEND INBOX {6+}\r\nA: 4\r\n (\\Bad) {6+}\r\nA: 5\r\n") == (
            [], b"BAD Invalid flags")
        assert c.cmd("APPEND INBOX {6+}\r\nA: 4\r\n {0+}\r\n") == (
            [], b"NO Empty messages are not stored")
        assert c.ok("STATUS INBOX (MESSAGES)") == [b'* STATUS "INBOX" (MESSAGES 3)']


# ---------------------------------------------------------------- FETCH

MIME_MSG = ("From: a@example.test\r\n"
            "Subject: parts\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
            "\r\n"
            "preamble\r\n"
            "--XX\r\n"
            "Content-Type: text/plain\r\n"
            "\r\n"
            "part one\r\n"
            "--XX\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "\r\n"
            "AAECAw==\r\n"
            "--XX--\r\n")


def test_fetch_items(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        append(c, "INBOX", MSG1)
        append(c, "INBOX", MIME_MSG)
        c.ok("SELECT INBOX")
        hdr, text = MSG1.split("\r\n\r\n", 1)
        hdr += "\r\n\r\n"
        lines = c.ok("FETCH 1 (UID BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
        assert lines == [("* 1 FETCH (UID 1 BODY[HEADER] {%d}\r\n%s BODY[TEXT] {%d}\r\n%s)"
                          % (len(hdr), hdr, len(text), text)).encode()]
        lines = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject FROM)])")
        want = "From: Alice <alice@example.test>\r\nSubject: Lunch plans\r\n\r\n"
        assert lines == [("* 1 FETCH (BODY[HEADER.FIELDS (Subject FROM)] {%d}\r\n%s)"
                          % (len(want), want)).encode()]
        lines = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (From To Date Message-ID)])")
        want = "Subject: Lunch plans\r\n\r\n"
        assert lines == [("* 1 FETCH (BODY[HEADER.FIELDS.NOT (From To Date Message-ID)]"
                          " {%d}\r\n%s)" % (len(want), want)).encode()]
        lines = c.ok("FETCH 1 (BODY.PEEK[]<0.4> BODY.PEEK[TEXT]<6.100>)")
        assert lines == [b"* 1 FETCH (BODY[]<0> {4}\r\nFrom BODY[TEXT]<6> {18}\r\n"
                         b"we meet at noon?\r\n)"]
        lines = c.ok("FETCH 1 BODY.PEEK[]<9999.10>")
        assert lines == [b"* 1 FETCH (BODY[]<9999> {0}\r\n)"]
        # RFC822.HEADER does not set \Seen
        lines = c.ok("FETCH 1 RFC822.HEADER")
        assert lines == [("* 1 FETCH (RFC822.HEADER {%d}\r\n%s)" % (len(hdr), hdr)).encode()]
        lines = c.ok("FETCH 1 FLAGS")
        assert lines == [b"* 1 FETCH (FLAGS (\\Recent))"]
        # BODY[] sets \Seen and reports FLAGS in the same response
        lines = c.ok("FETCH 1 BODY[]")
        assert lines == [("* 1 FETCH (BODY[] {%d}\r\n%s FLAGS (\\Seen \\Recent))"
                          % (len(MSG1), MSG1)).encode()]
        lines = c.ok("FETCH 1 (FLAGS RFC822)")
        assert lines == [("* 1 FETCH (FLAGS (\\Seen \\Recent) RFC822 {%d}\r\n%s)"
                          % (len(MSG1), MSG1)).encode()]
        # MIME parts
        lines = c.ok("FETCH 2 (BODY.PEEK[1] BODY.PEEK[1.MIME] BINARY.PEEK[2] BINARY.SIZE[2])")
        assert lines == [b"* 2 FETCH (BODY[1] {8}\r\npart one BODY[1.MIME] {28}\r\n"
                         b"Content-Type: text/plain\r\n\r\n BINARY[2] ~{4}\r\n\x00\x01\x02\x03"
                         b" BINARY.SIZE[2] 4)"]
        lines = c.ok("FETCH 2 BODY.PEEK[3]")
        assert lines == [b"* 2 FETCH (BODY[3] {0}\r\n)"]
        # ENVELOPE and BODYSTRUCTURE come from the cache the second time
        first = c.ok("FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)")
        assert cached_structures(srv, user) == 1
        assert first == c.ok("FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)")
        assert first == [
            b'* 1 FETCH (ENVELOPE ("Tue, 1 Jul 2003 10:52:37 +0200" "Lunch plans" '
            b'(("Alice" NIL "alice" "example.test")) (("Alice" NIL "alice" "example.test")) '
            b'(("Alice" NIL "alice" "example.test")) (("Bob" NIL "bob" "example.test")) '
            b'NIL NIL NIL "<m1@example.test>") '
            b'BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 24 1) '
            b'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 24 1 '
            b'NIL NIL NIL NIL))']
        # macros
        lines = c.ok("FETCH 1 FAST")
        assert re.fullmatch(rb'\* 1 FETCH \(FLAGS \(\\Seen \\Recent\) INTERNALDATE "[^"]+" '
                            rb'RFC822.SIZE %d\)' % len(MSG1), lines[0])
        lines = c.ok("FETCH 1:2 ALL")
        assert len(lines) == 2 and b"ENVELOPE (" in lines[1]
        lines = c.ok("UID FETCH 2 FLAGS")
        assert lines == [b"* 2 FETCH (UID 2 FLAGS (\\Recent))"]
        lines = c.ok("UID FETCH 1:* UID")
        assert lines == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 2)"]
        # EXAMINE: nothing becomes \Seen
        c.ok("EXAMINE INBOX")
        lines = c.ok("FETCH 2 (BODY[1])")
        assert lines == [b"* 2 FETCH (BODY[1] {8}\r\npart one)"]
        c.ok("SELECT INBOX")
        # the first SELECT took \Recent: not recent in a second one
        assert c.ok("FETCH 2 FLAGS") == [b"* 2 FETCH (FLAGS ())"]


def test_fetch_imaplib_peek(srv):
    user = new_user(srv)
    deliver(srv, user, "peek me")
    m = imaplib.IMAP4(HOST, srv.imap_port)
    m.login(user, PASSWORD)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and b"Subject: peek me" in data[0][1]
    assert m.fetch("1", "(FLAGS)")[1] == [b"1 (FLAGS (\\Recent))"]
    typ, data = m.fetch("1", "(BODY[TEXT])")
    assert data[0][1] == b"Hello.\r\n"
    assert m.fetch("1", "(FLAGS)")[1] == [b"1 (FLAGS (\\Seen \\Recent))"]
    m.logout()


# --------------------------------------------------------- STORE etc.

def test_store(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        for i in range(3):
            append(c, "INBOX", MSG1)
        c.ok("SELECT INBOX")
        assert c.ok("STORE 1:2 +FLAGS (\\Flagged $Label1)") == [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)",
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)]"
            b" Flags permitted",
            b"* 1 FETCH (FLAGS (\\Flagged \\Recent $Label1))",
            b"* 2 FETCH (FLAGS (\\Flagged \\Recent $Label1))"]
        assert c.ok("STORE 1 -FLAGS ($Label1)") == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))"]
        assert c.ok("STORE 2 FLAGS.SILENT (\\Answered)") == []
        assert c.ok("UID STORE 2:3 +FLAGS \\Seen") == [
            b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Answered \\Recent))",
            b"* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))"]
        assert c.ok("FETCH 1:3 FLAGS") == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))",
                                           b"* 2 FETCH (FLAGS (\\Seen \\Answered \\Recent))",
                                           b"* 3 FETCH (FLAGS (\\Seen \\Recent))"]
        assert c.cmd("STORE 1 FROB (\\Seen)") == ([], b"BAD Unknown STORE item")
        # \Recent cannot be stored or taken away (RFC 3501 2.3.2)
        assert c.ok("STORE 3 FLAGS (\\Recent)") == [b"* 3 FETCH (FLAGS (\\Recent))"]


def test_copy_move_expunge(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        for i in range(5):
            append(c, "INBOX", MSG1)
        lines, done = c.cmd("SELECT INBOX")
        uv = re.search(rb"UIDVALIDITY (\d+)", b"\n".join(lines)).group(1)
        lines, done = c.cmd("STATUS Archive (UIDVALIDITY)")
        auv = re.search(rb"UIDVALIDITY (\d+)", lines[0]).group(1)
        assert c.cmd("COPY 1:2 Archive") == ([], b"OK [COPYUID " + auv + b" 1:2 1:2] Copy completed")
        assert c.cmd("COPY 1 Nope") == ([], b"NO [TRYCREATE] Mailbox does not exist")
        assert c.cmd("UID COPY 3,5 Archive") == (
            [], b"OK [COPYUID " + auv + b" 3,5 3:4] Copy completed")
        assert c.cmd("CHECK") == ([], b"OK Check completed")
        lines, done = c.cmd("MOVE 2,4 Archive")
        assert lines == [b"* OK [COPYUID " + auv + b" 2,4 5:6] Moved",
                         b"* 4 EXPUNGE", b"* 2 EXPUNGE"]
        assert done == b"OK Move completed"
        # the view is now uids 1,3,5
        assert c.ok("FETCH 1:* UID") == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)",
                                         b"* 3 FETCH (UID 5)"]
        lines, done = c.cmd("UID MOVE 5 Trash")
        assert lines[1:] == [b"* 3 EXPUNGE"]
        c.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        # UID EXPUNGE only touches the given UIDs
        assert c.cmd("UID EXPUNGE 3") == ([b"* 2 EXPUNGE"], b"OK Expunge completed")
        assert c.cmd("EXPUNGE") == ([b"* 1 EXPUNGE"], b"OK Expunge completed")
        assert c.ok("STATUS INBOX (MESSAGES)") == [b'* STATUS "INBOX" (MESSAGES 0)']
        c.ok("SELECT Archive")
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert c.cmd("CLOSE") == ([], b"OK Close completed")
        assert c.ok("STATUS Archive (MESSAGES)") == [b'* STATUS "Archive" (MESSAGES 5)']
        c.ok("SELECT Archive")
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert c.cmd("UNSELECT") == ([], b"OK Unselect completed")
        assert c.ok("STATUS Archive (MESSAGES)") == [b'* STATUS "Archive" (MESSAGES 5)']


# ---------------------------------------------------------------- SEARCH

def test_search(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        append(c, "INBOX", MSG1, flags="\\Seen", date="01-Feb-2020 10:00:00 +0000")
        append(c, "INBOX", "From: carol@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n"
               "Date: 3 Mar 2021 08:00:00 +0000\r\n\r\nBig budget report\r\n" + "x" * 2000,
               flags="$Work", date="05-Mar-2021 10:00:00 +0000")
        append(c, "INBOX", "Subject: third\r\n\r\nnothing\r\n", flags="\\Flagged \\Deleted")
        c.ok("SELECT INBOX")
        cases = {
            "ALL": b"* SEARCH 1 2 3",
            "SEEN": b"* SEARCH 1",
            "UNSEEN": b"* SEARCH 2 3",
            "FLAGGED DELETED": b"* SEARCH 3",
            "UNFLAGGED": b"* SEARCH 1 2",
            "UNDELETED UNANSWERED": b"* SEARCH 1 2",
            "ANSWERED": b"* SEARCH",
            "DRAFT": b"* SEARCH",
            "UNDRAFT": b"* SEARCH 1 2 3",
            "KEYWORD $work": b"* SEARCH 2",
            "UNKEYWORD $Work": b"* SEARCH 1 3",
            "FROM alice": b"* SEARCH 1",
            "FROM CAROL": b"* SEARCH 2",
            "TO bob": b"* SEARCH 1",
            "CC bob": b"* SEARCH",
            "BCC bob": b"* SEARCH",
            'SUBJECT "lunch"': b"* SEARCH 1",
            "SUBJECT grüße".encode("utf-8").decode("latin-1"): None,
            'HEADER Message-ID "<m1@"': b"* SEARCH 1",
            'HEADER Message-ID ""': b"* SEARCH 1",
            "BODY budget": b"* SEARCH 2",
            "TEXT budget": b"* SEARCH 2",
            "TEXT Lunch": b"* SEARCH 1",
            "BEFORE 1-Mar-2021": b"* SEARCH 1",
            "ON 5-Mar-2021": b"* SEARCH 2",
            "SINCE 1-Mar-2021": b"* SEARCH 2 3",
            "SENTBEFORE 1-Jan-2010": b"* SEARCH 1",
            "SENTON 3-Mar-2021": b"* SEARCH 2",
            "SENTSINCE 1-Jan-2010": b"* SEARCH 2",
            "LARGER 1000": b"* SEARCH 2",
            "SMALLER 100": b"* SEARCH 3",
            "NOT SEEN": b"* SEARCH 2 3",
            "OR SEEN FLAGGED": b"* SEARCH 1 3",
            "(SEEN) OR (FLAGGED) (UNKEYWORD $Work)": b"* SEARCH 1",
            "(SEEN) OR (FLAGGED) (KEYWORD $Work)": b"* SEARCH",
            "2:*": b"* SEARCH 2 3",
            "UID 1,3": b"* SEARCH 1 3",
            "NEW": b"* SEARCH 2 3",
            "OLD": b"* SEARCH",
            "RECENT": b"* SEARCH 1 2 3",
            "NOT OLD": b"* SEARCH 1 2 3",
            "CHARSET UTF-8 SUBJECT lunch": b"* SEARCH 1",
            "CHARSET us-ascii ALL": b"* SEARCH 1 2 3",
        }
        for keys, want in cases.items():
            if want is None:
                continue
            lines, done = c.cmd("SEARCH " + keys)
            assert (keys, lines, done) == (keys, [want], b"OK Search completed")
        # UTF-8 search on the RFC 2047-decoded subject
        c.send("a SEARCH CHARSET UTF-8 SUBJECT {6+}\r\n".encode() + "grüß".encode() + b"\r\n")
        assert c.until("a") == ([b"* SEARCH 2"], b"OK Search completed")
        # case-insensitive beyond ASCII (simple Unicode case folding)
        c.send("b SEARCH CHARSET UTF-8 SUBJECT {4+}\r\n".encode() + "GRÜ".encode() + b"\r\n")
        assert c.until("b") == ([b"* SEARCH 2"], b"OK Search completed")
        assert c.cmd("SEARCH CHARSET KOI8-R ALL") == (
            [], b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
        assert c.cmd("UID SEARCH 2:3") == ([b"* SEARCH 2 3"], b"OK Search completed")
        tag = c.tag()
        assert c.cmd("SEARCH RETURN (MIN MAX COUNT ALL) NOT DELETED", tag) == (
            [('* ESEARCH (TAG "%s") MIN 1 MAX 2 ALL 1:2 COUNT 2' % tag).encode()],
            b"OK Search completed")
        tag = c.tag()
        assert c.cmd("UID SEARCH RETURN () ALL", tag) == (
            [('* ESEARCH (TAG "%s") UID ALL 1:3' % tag).encode()], b"OK Search completed")
        tag = c.tag()
        assert c.cmd("SEARCH RETURN (COUNT MIN) ANSWERED", tag) == (
            [('* ESEARCH (TAG "%s") COUNT 0' % tag).encode()], b"OK Search completed")
        # SEARCHRES (RFC 5182): SAVE alone answers nothing; "$" is the result
        assert c.cmd("SEARCH RETURN (SAVE) OR SEEN FLAGGED") == (
            [], b"OK Search completed, result saved")
        assert c.ok("FETCH $ UID") == [b"* 1 FETCH (UID 1)", b"* 3 FETCH (UID 3)"]
        assert c.ok("UID FETCH $ UID") == [b"* 1 FETCH (UID 1)", b"* 3 FETCH (UID 3)"]
        assert c.cmd("SEARCH $ NOT DELETED") == ([b"* SEARCH 1"], b"OK Search completed")
        tag = c.tag()
        assert c.cmd("SEARCH RETURN (SAVE MAX) ALL", tag) == (
            [('* ESEARCH (TAG "%s") MAX 3' % tag).encode()], b"OK Search completed")
        assert c.cmd("UID SEARCH UID $") == ([b"* SEARCH 3"], b"OK Search completed")
        # a failed SEARCH with SAVE empties it
        assert c.cmd("SEARCH RETURN (SAVE) FROB") == ([], b"BAD Unknown search key")
        assert c.ok("FETCH $ UID") == []
        c.ok("ENABLE IMAP4rev2")
        tag = c.tag()
        assert c.cmd("SEARCH SEEN", tag) == (
            [('* ESEARCH (TAG "%s") ALL 1' % tag).encode()], b"OK Search completed")


def test_search_address_comments(srv):
    """RFC 9051 6.4.4 FROM/TO/CC/BCC: comments and folding white space
    inside an addr-spec (RFC 5322 3.4.1) mean the same address."""
    user = new_user(srv)
    froms = ["Real Name <user-from@domain.org>",
             "user-from@domain.org",
             "user-from@domain.org (trailing)",
             "<user-from (comment)@ (comment) domain.org>",
             "Name <user-from\r\n (folded)@\r\n domain.org>",
             "other@domain.org (user-from@domain.org is not this)",
             "user-from@domain.net"]
    with client(srv, user) as c:
        for i, f in enumerate(froms):
            append(c, "INBOX", "From: %s\r\nTo: x (c) @ y.example, <z@ (c)w.example>\r\n"
                   "Cc: g: cc (a) @ (b) h.example;\r\nSubject: %d\r\n\r\nb\r\n" % (f, i))
        c.ok("SELECT INBOX")
        # the trailing comment itself names user-from@domain.org (substring)
        assert c.ok("SEARCH FROM user-from@domain.org") == [b"* SEARCH 1 2 3 4 5 6"]
        assert c.ok("SEARCH FROM <user-from@domain.org>") == [b"* SEARCH 1 2 3 4 5"]
        assert c.ok("SEARCH FROM <user-from") == [b"* SEARCH 1 2 3 4 5 7"]
        assert c.ok("SEARCH TO x@y.example") == [b"* SEARCH 1 2 3 4 5 6 7"]
        assert c.ok("SEARCH TO z@w.example") == [b"* SEARCH 1 2 3 4 5 6 7"]
        assert c.ok("SEARCH CC cc@h.example") == [b"* SEARCH 1 2 3 4 5 6 7"]
        assert c.ok("SEARCH FROM user-from@domain.net") == [b"* SEARCH 7"]
        assert c.ok("SEARCH SUBJECT user-from@domain.org") == [b"* SEARCH"]


def test_search_headers_cached(srv):
    """Header keys on 200 messages with encoded-word subjects: the same UIDs
    when the header text comes from the files (first search, or after
    FETCH cached only the ENVELOPE) and from the cache (later searches)."""
    user = new_user(srv)
    with client(srv, user) as c:
        for i in range(1, 201):
            if i == 7:  # a decoded newline must not make a field "X-Fake"
                subj = "=?UTF-8?Q?x=0AX-Fake:_zebra?="
            elif i == 11:  # too big for the cache
                subj = "big one\r\nX-Big: " + "\r\n ".join(["y" * 70] * 300)
            elif i % 3 == 0:
                subj = "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_n=C2=B0%d?=" % i
            elif i % 3 == 1:
                subj = "=?UTF-8?B?%s?=" % base64.b64encode(
                    ("Привет %d" % i).encode()).decode()
            else:
                subj = "plain %d" % i
            frm = "carol@example.org" if i % 5 == 0 else "alice@example.test"
            msg = ("From: %s\r\nSubject: %s\r\nDate: %d Jan 2022 10:00:00 +0000\r\n"
                   "\r\nbody %d\r\n" % (frm, subj, i % 28 + 1, i))
            assert append(c, "INBOX", msg) == i
        c.ok("SELECT INBOX")

        def usearch(key, arg=None):
            tag = c.tag()
            data = ("%s UID SEARCH %s" % (tag, key)).encode()
            if arg is not None:
                a = arg.encode()
                data += b" {%d+}\r\n" % len(a) + a
            c.send(data + b"\r\n")
            lines, done = c.until(tag)
            assert done == b"OK Search completed", (key, lines, done)
            assert len(lines) == 1 and lines[0].startswith(b"* SEARCH"), (key, lines)
            return [int(x) for x in lines[0].split()[2:]]

        greet = list(range(3, 201, 3))
        privet = [i for i in range(1, 201, 3) if i != 7]
        cases = [
            ("CHARSET UTF-8 SUBJECT", "grüße", greet),
            ("CHARSET UTF-8 SUBJECT", "ПРИВЕТ", privet),
            ("CHARSET UTF-8 SUBJECT", "n°150", [150]),
            ("SUBJECT", "plain 2", [2, 20, 23, 26, 29, 200]),
            ("FROM", "CAROL", list(range(5, 201, 5))),
            ("SUBJECT", "zebra", [7]),
            ("HEADER X-Fake", "zebra", []),
            ("HEADER X-Fake", "", []),
            ("SUBJECT", "big one", [11]),
            ("HEADER X-Big", "yyy yyy", [11]),
            ("HEADER Subject", "", list(range(1, 201))),
            ("TO", "", []),
            ("SENTON 5-Jan-2022 SUBJECT", "", [4, 32, 60, 88, 116, 144, 172, 200]),
            ("CHARSET UTF-8 OR FROM carol SUBJECT", "Grüße n°1",
             sorted(set(range(5, 201, 5)) | {12, 15, 18} | set(range(102, 199, 3)))),
        ]
        # 1: from the files; FETCH then caches ENVELOPE without header text
        # for 1:50; 2: those read again; 3: everything from the cache
        for rnd in range(3):
            for key, arg, want in cases:
                assert (rnd, key, arg, usearch(key, arg)) == (rnd, key, arg, want)
            if rnd == 0:
                assert len(c.ok("FETCH 1:50 ENVELOPE")) == 50
        # the searches filled the header text of every message's cache row
        assert cached_structures(srv, user, "headers IS NOT NULL") == 200


# --------------------------------------------- several sessions, IDLE

def test_two_sessions_flags_and_expunge(srv):
    user = new_user(srv)
    for i in range(3):
        deliver(srv, user, "multi %d" % i)
    with client(srv, user) as a, client(srv, user) as b:
        a.ok("SELECT INBOX")
        b.ok("SELECT INBOX")
        a.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
        # b learns about the flag change at its next command
        assert b.cmd("NOOP") == ([b"* 2 FETCH (UID 2 FLAGS (\\Flagged))"], b"OK NOOP completed")
        a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert a.cmd("EXPUNGE") == ([b"* 1 EXPUNGE"], b"OK Expunge completed")
        # no EXPUNGE during FETCH: b still sees 3 messages, numbered as before
        lines, done = b.cmd("FETCH 1:3 UID")
        assert lines == [b"* 2 FETCH (UID 2)", b"* 3 FETCH (UID 3)"]
        assert done == b"NO [EXPUNGEISSUED] Some messages were expunged"
        lines, done = b.cmd("SEARCH ALL")
        assert lines == [b"* SEARCH 2 3"]
        # ...but at NOOP it arrives
        assert b.cmd("NOOP") == ([b"* 1 EXPUNGE"], b"OK NOOP completed")
        assert b.ok("FETCH 1:* UID") == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)"]
        # a new message shows as EXISTS in both
        deliver(srv, user, "multi new")
        # (a selected first: uids 2 and 3 are recent there, and now 4)
        assert a.cmd("NOOP") == ([b"* 3 EXISTS", b"* 3 RECENT"], b"OK NOOP completed")
        assert b.cmd("UID FETCH 4 UID") == ([b"* 3 EXISTS", b"* 0 RECENT",
                                             b"* 3 FETCH (UID 4)"], b"OK Fetch completed")


def test_keyword_announcements(srv):
    """RFC 9051 7.3.5 / RFC 3501 7.2.6: a keyword new to the mailbox is in
    an untagged FLAGS and PERMANENTFLAGS before any FETCH showing it, in
    every session that has the mailbox selected."""
    sysf = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

    def flags(kw):
        k = "".join(" " + w for w in kw)
        return [("* FLAGS (%s%s)" % (sysf, k)).encode(),
                ("* OK [PERMANENTFLAGS (%s%s \\*)] Flags permitted" % (sysf, k)).encode()]

    user = new_user(srv)
    with client(srv, user) as c:
        append(c, "INBOX", MSG1, flags="$Old")
        append(c, "INBOX", MSG1)
        c.ok("CREATE Other")
        append(c, "Other", MSG1, flags="$Copied")
    with client(srv, user) as a, client(srv, user) as b, client(srv, user) as e:
        # SELECT and EXAMINE list the keywords already there
        lines = a.ok("SELECT INBOX")
        assert flags(["$Old"])[0] in lines and flags(["$Old"])[1] in lines
        b.ok("SELECT INBOX")
        lines = e.ok("EXAMINE INBOX")
        assert ("* FLAGS (%s $Old)" % sysf).encode() in lines
        assert b"* OK [PERMANENTFLAGS ()] Read-only mailbox" in lines
        # STORE by a: its own FETCH answer comes after the announcement
        # (a selected first: the messages are recent there only)
        lines = a.ok("STORE 2 +FLAGS ($Label5)")
        assert lines == flags(["$Old", "$Label5"]) + [
            b"* 2 FETCH (FLAGS (\\Recent $Label5))"]
        # b (and e, read-only) learn it before the FETCH that shows it
        assert b.ok("NOOP") == flags(["$Old", "$Label5"]) + [
            b"* 2 FETCH (UID 2 FLAGS ($Label5))"]
        assert e.ok("NOOP") == [("* FLAGS (%s $Old $Label5)" % sysf).encode(),
                                b"* OK [PERMANENTFLAGS ()] Read-only mailbox",
                                b"* 2 FETCH (UID 2 FLAGS ($Label5))"]
        # once only
        a.ok("STORE 1 +FLAGS.SILENT ($Label5)")
        assert b.ok("NOOP") == [b"* 1 FETCH (UID 1 FLAGS ($Old $Label5))"]
        # COPY into the selected mailbox by the same session
        a.ok("SELECT Other")
        lines = a.ok("COPY 1 INBOX")
        a.ok("SELECT INBOX")
        lines = b.ok("NOOP")
        assert lines == flags(["$Old", "$Label5", "$Copied"]) + [
            b"* 3 EXISTS", b"* 0 RECENT"]
        b.ok("SELECT Other")
        lines = b.ok("COPY 1 INBOX")
        b.ok("SELECT INBOX")
        # a's SELECT took uid 3, b's uid 4
        assert a.ok("NOOP") == [b"* 4 EXISTS", b"* 1 RECENT"]
        # APPEND by the session that has the mailbox selected
        lines = a.ok("APPEND INBOX ($New1 $Old) {%d+}\r\n%s" % (len(MSG1), MSG1))
        assert lines == flags(["$Old", "$Label5", "$Copied", "$New1"]) + [
            b"* 5 EXISTS", b"* 2 RECENT"]
        lines = a.ok("FETCH 3:5 FLAGS")
        assert lines == [b"* 3 FETCH (FLAGS (\\Recent $Copied))", b"* 4 FETCH (FLAGS ($Copied))",
                         b"* 5 FETCH (FLAGS (\\Recent $New1 $Old))"]


def test_idle_wakes_on_smtp_delivery(srv):
    """IDLE gets EXISTS at once, whichever worker takes the SMTP session."""
    user = new_user(srv)
    workers = srv.workers()
    seen_other = False
    with client(srv, user) as c:
        c.ok("SELECT INBOX")
        n = 0
        for attempt in range(20):  # (1/2)^20: never all on one of 2 workers by chance
            c.send("i IDLE\r\n")
            assert c.line() == b"+ idling"
            idle_pid = None
            t0 = time.monotonic()
            s = smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10))
            smtp_pid = socket_owner(workers, srv.smtp_port, s.sock.getsockname()[1])
            idle_pid = socket_owner(workers, srv.imap_port, c.sock.getsockname()[1])
            s.sendmail(SENDER, [user], b"Subject: idle %d\r\n\r\nx\r\n" % attempt)
            s.quit()
            n += 1
            assert c.line() == b"* %d EXISTS" % n
            assert c.line() == b"* %d RECENT" % n  # each new one is recent here
            assert time.monotonic() - t0 < timeout(3)
            c.send("DONE\r\n")
            assert c.line() == b"i OK Idle completed"
            if smtp_pid and idle_pid and smtp_pid != idle_pid:
                seen_other = True
                if attempt >= 1:
                    break
        assert seen_other, "every SMTP session landed on the IMAP session's worker"


def test_idle_flag_change_from_other_session(srv):
    user = new_user(srv)
    deliver(srv, user, "flagme")
    with client(srv, user) as a, client(srv, user) as b:
        a.ok("SELECT INBOX")
        b.ok("SELECT INBOX")
        a.send("i IDLE\r\n")
        assert a.line() == b"+ idling"
        b.ok("STORE 1 +FLAGS.SILENT (\\Answered)")
        assert a.line() == b"* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent))"
        b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert a.line() == b"* 1 FETCH (UID 1 FLAGS (\\Answered \\Deleted \\Recent))"
        b.ok("EXPUNGE")
        assert a.line() == b"* 1 EXPUNGE"
        a.send("DONE\r\n")
        assert a.line() == b"i OK Idle completed"
        a.send("j IDLE\r\n")
        assert a.line() == b"+ idling"
        a.send("NOPE\r\n")
        assert a.line() == b"j BAD Expected DONE"


def test_deleted_selected_mailbox(srv):
    user = new_user(srv)
    with client(srv, user) as a, client(srv, user) as b:
        a.ok("CREATE Tmp")
        a.ok("SELECT Tmp")
        b.ok("DELETE Tmp")
        a.send("n NOOP\r\n")
        assert a.line() == b"* BYE The selected mailbox was deleted"
        assert a.closed_by_server()


def test_fetch_big_message_exact(srv):
    """A big message (sent from its file) comes back byte for byte, with
    the exact RFC822.SIZE, and other items around it stay in order."""
    user = new_user(srv)
    body = b"".join(b"line %06d of a big message\r\n" % i for i in range(12000))
    msg = b"From: a@example.test\r\nSubject: big\r\n\r\n" + body
    with client(srv, user) as c:
        append(c, "INBOX", msg)
        append(c, "INBOX", MSG1)
        c.ok("SELECT INBOX")
        lines, done = c.cmd("FETCH 1:2 (UID RFC822.SIZE BODY[] FLAGS)")
        assert done == b"OK Fetch completed"
        assert lines == [
            b"* 1 FETCH (UID 1 RFC822.SIZE %d BODY[] {%d}\r\n%s FLAGS (\\Seen \\Recent))"
            % (len(msg), len(msg), msg),
            b"* 2 FETCH (UID 2 RFC822.SIZE %d BODY[] {%d}\r\n%s FLAGS (\\Seen \\Recent))"
            % (len(MSG1), len(MSG1), MSG1.encode())]
        lines = c.ok("FETCH 1 (RFC822 BODY.PEEK[TEXT]<0.20>)")
        assert lines == [b"* 1 FETCH (RFC822 {%d}\r\n%s BODY[TEXT]<0> {20}\r\n%s)"
                         % (len(msg), msg, body[:20])]


def test_fetch_nul_bytes(srv):
    """RFC 9051 4.3: an ordinary {n} literal carries no NUL.  Outside
    BINARY every NUL of the stored message is sent as 0x80 (same length);
    BINARY[] sends it as it is, in a literal8."""
    user = new_user(srv)
    head = b"From: a@example.test\r\nSubject: n\0l\r\nX-Z: \0\0\r\n\r\n"
    body = b"one\0two\r\n"
    msg = head + body
    big = head + b"".join(b"line %06d of a big message\r\n" % i for i in range(12000)) + body

    def clean(b):
        return b.replace(b"\0", b"\x80")

    with client(srv, user) as c:
        for m in (msg, big):  # stored through APPEND's literal8 (RFC 3516)
            c.send(b"a APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(m), m))
            lines, done = c.until("a")
            assert done.startswith(b"OK [APPENDUID "), done
        c.ok("SELECT INBOX")
        lines = c.ok("FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] RFC822.SIZE)")
        assert lines == [b"* 1 FETCH (BODY[HEADER] {%d}\r\n%s BODY[TEXT] {%d}\r\n%s"
                         b" BODY[1] {%d}\r\n%s RFC822.SIZE %d)"
                         % (len(head), clean(head), len(body), clean(body), len(body),
                            clean(body), len(msg))]
        lines = c.ok("FETCH 1 (RFC822.HEADER BODY.PEEK[HEADER.FIELDS (Subject)])")
        subj = b"Subject: n\x80l\r\n\r\n"
        assert lines == [b"* 1 FETCH (RFC822.HEADER {%d}\r\n%s"
                         b" BODY[HEADER.FIELDS (Subject)] {%d}\r\n%s)"
                         % (len(head), clean(head), len(subj), subj)]
        lines = c.ok("FETCH 1 (BODY.PEEK[]<0.30> RFC822)")
        assert lines == [b"* 1 FETCH (BODY[]<0> {30}\r\n%s RFC822 {%d}\r\n%s FLAGS (\\Seen \\Recent))"
                         % (clean(msg[:30]), len(msg), clean(msg))]
        # a big message is normally sent from its file: not this one
        lines = c.ok("FETCH 2 BODY.PEEK[]")
        assert lines == [b"* 2 FETCH (BODY[] {%d}\r\n%s)" % (len(big), clean(big))]
        # BINARY keeps the NULs, in a literal8
        lines = c.ok("FETCH 1 BINARY.PEEK[1]")
        assert lines == [b"* 1 FETCH (BINARY[1] ~{%d}\r\n%s)" % (len(body), body)]
        for ln in lines:
            assert b"\0" not in ln.replace(b"~{%d}\r\n%s" % (len(body), body), b"")


def test_shutdown_says_bye(make_server):
    s = make_server(conf=MODULE_CONF)
    user = new_user(s)
    c = IMAPRaw(s.imap_port)
    c.login(user)
    c.ok("SELECT INBOX")
    c.send("i IDLE\r\n")
    assert c.line() == b"+ idling"
    s.stop()
    assert c.line() == b"* BYE Server shutting down"
    assert c.closed_by_server()
    c.close()


def test_fetch_backpressure_and_pipelining(srv):
    """A FETCH bigger than the output buffer waits for a slow reader, and a
    command pipelined behind it is answered after it, in order."""
    user = new_user(srv)
    body = b"x" * 20000 + b"\r\n"
    with client(srv, user) as c:
        tag = c.tag()
        parts = []
        for i in range(200):
            m = b"Subject: %d\r\n\r\n%s" % (i, body)
            parts.append(b"%s%d APPEND INBOX {%d+}\r\n%s\r\n" % (tag.encode(), i, len(m), m))
        msgs = b"".join(parts)
        c.send(msgs)
        for i in range(200):
            lines, done = c.until("%s%d" % (tag, i))
            assert done.startswith(b"OK [APPENDUID"), done
        c.ok("SELECT INBOX")
        c.send("f FETCH 1:* (UID BODY.PEEK[])\r\nn NOOP\r\n")
        time.sleep(0.5)  # let the server fill its output and wait
        lines, done = c.until("f")
        assert done == b"OK Fetch completed"
        assert len(lines) == 200
        for i, line in enumerate(lines):
            want = b"Subject: %d\r\n\r\n%s" % (i, body)
            assert line == b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)" % (
                i + 1, i + 1, len(want), want)
        assert c.until("n") == ([], b"OK NOOP completed")
