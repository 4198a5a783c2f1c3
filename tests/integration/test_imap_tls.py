"""IMAP over TLS and IMAP authentication (docs/imap.md "TLS" and
"Authentication"): STARTTLS (RFC 9051 6.2.1, RFC 2595), implicit TLS on
imaps (RFC 8314), AUTHENTICATE with PLAIN, LOGIN, SCRAM-SHA-256 and
SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677, channel binding RFC 5929), SASL-IR
(RFC 4959), and the brute-force limiter (auth/authlimit.h).

The module's server refuses plaintext passwords without TLS
(allow_plaintext_loopback = no) and has short limiter delays and no blocks,
so failed logins in one test do not slow down the next; the limiter test
makes its own server.  SCRAM exchanges are computed here from RFC 5802
with hashlib/hmac.  Clients: raw sockets (exact bytes), imaplib, openssl
s_client and curl.
"""
import base64
import hashlib
import hmac
import imaplib
import os
import re
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import HOST, timeout

PASSWORD = "secret"
MODULE_CONF = {"workers": 2, "allow_plaintext_loopback": "no", "auth.scram_plus": "yes",
               "auth.fail_delay_ms": "50", "auth.fail_delay_max_ms": "100",
               "auth.block_after": "0"}

CAPS = ("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS"
        " MULTIAPPEND MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH SEARCHRES"
        " STATUS=SIZE UTF8=ACCEPT SORT CONDSTORE QRESYNC THREAD=ORDEREDSUBJECT THREAD=REFERENCES"
        " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE COMPRESS=DEFLATE OBJECTID"
        " CREATE-SPECIAL-USE WITHIN SORT=DISPLAY ESORT UNAUTHENTICATE PREVIEW"
        " ACL LIST-MYRIGHTS")
CAPS_PLAIN = CAPS + " STARTTLS LOGINDISABLED AUTH=SCRAM-SHA-256"
CAPS_TLS = CAPS + " AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-256-PLUS"
PRIVACY = b"NO [PRIVACYREQUIRED] Plaintext authentication disallowed without TLS"
FAILED = b"NO [AUTHENTICATIONFAILED] Authentication failed"


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def new_user(srv, password=PASSWORD):
    user = "t%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", password)
    return user


def client_ctx():
    """Accepts our self-signed certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


class Raw:
    """A bare IMAP client that can switch to TLS in place."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection((HOST, port), timeout=timeout(10))
        if tls:
            self.sock = client_ctx().wrap_socket(self.sock)
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

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
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server (pending %r)" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def tag(self):
        self.n += 1
        return "t%d" % self.n

    def until(self, tag):
        lines = []
        while True:
            ln = self.line()
            if ln.startswith(tag.encode() + b" "):
                return lines, ln[len(tag) + 1:]
            lines.append(ln)

    def cmd(self, text, tag=None):
        tag = tag or self.tag()
        self.send("%s %s\r\n" % (tag, text))
        return self.until(tag)

    def starttls(self):
        assert self.cmd("STARTTLS") == ([], b"OK Begin TLS negotiation now")
        assert self.buf == b""
        self.sock = client_ctx().wrap_socket(self.sock)

    def pending(self, wait=0.5):
        """What the server sent that nobody read yet."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
            pass
        finally:
            self.sock.settimeout(timeout(10))
        data, self.buf = self.buf, b""
        return data

    def closed_by_server(self, wait=5):
        self.sock.settimeout(timeout(wait))
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(timeout(10))


# ------------------------------------------------------------ SCRAM (RFC 5802)

class Scram:
    """The client side of one SCRAM-SHA-256(-PLUS) exchange.  cb: None for
    SCRAM-SHA-256 with gs2 flag "n" (or flag="y"), or (name, data) for
    -PLUS."""

    def __init__(self, user, password, cb=None, flag="n"):
        self.password = password
        self.nonce = b64(os.urandom(18))
        self.gs2 = ("p=%s" % cb[0] if cb else flag) + ",,"
        self.cbdata = cb[1] if cb else b""
        self.bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), self.nonce)
        self.server_sig = None

    def first(self):
        return (self.gs2 + self.bare).encode()

    def final(self, server_first, password=None, cbdata=None):
        server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce)
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        assert iters >= 4096
        salted = hashlib.pbkdf2_hmac("sha256", (password or self.password).encode(), salt,
                                     iters)
        ckey = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(ckey).digest()
        cbind = self.gs2.encode() + (self.cbdata if cbdata is None else cbdata)
        without_proof = "c=%s,r=%s" % (b64(cbind), attrs["r"])
        auth_msg = ("%s,%s,%s" % (self.bare, server_first, without_proof)).encode()
        sig = hmac.new(stored, auth_msg, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(ckey, sig))
        skey = hmac.new(salted, b"Server Key", "sha256").digest()
        self.server_sig = "v=" + b64(hmac.new(skey, auth_msg, "sha256").digest())
        return ("%s,p=%s" % (without_proof, b64(proof))).encode()


def server_end_point(sock):
    """tls-server-end-point (RFC 5929 4.1): the hash of our certificate with
    its signature's hash; `tern init` makes an ECDSA-with-SHA-256 one."""
    der = sock.getpeercert(binary_form=True)
    return hashlib.sha256(der).digest()


def challenge(c):
    ln = c.line()
    assert ln.startswith(b"+ "), ln
    return base64.b64decode(ln[2:])


def scram_raw(c, user, password=PASSWORD, mech="SCRAM-SHA-256", cb=None, flag="n",
              ir=False, wrong_cb=None):
    """Runs AUTHENTICATE SCRAM on a Raw client; returns the tagged reply."""
    sc = Scram(user, PASSWORD, cb=cb, flag=flag)
    tag = c.tag()
    if ir:
        c.send("%s AUTHENTICATE %s %s\r\n" % (tag, mech, b64(sc.first())))
    else:
        c.send("%s AUTHENTICATE %s\r\n" % (tag, mech))
        ln = c.line()
        if ln != b"+ ":
            assert ln.startswith(tag.encode() + b" "), ln
            return ln[len(tag) + 1:]
        c.send(b64(sc.first()) + "\r\n")
    ln = c.line()
    if not ln.startswith(b"+ "):
        assert ln.startswith(tag.encode() + b" "), ln
        return ln[len(tag) + 1:]
    c.send(b64(sc.final(base64.b64decode(ln[2:]), password, wrong_cb)) + "\r\n")
    ln = c.line()
    if not ln.startswith(b"+ "):
        assert ln.startswith(tag.encode() + b" "), ln
        return ln[len(tag) + 1:]
    # the server-final-message comes as a last challenge (RFC 9051 has no
    # data in the tagged OK), answered with an empty line
    assert base64.b64decode(ln[2:]).decode() == sc.server_sig
    c.send("\r\n")
    lines, done = c.until(tag)
    assert lines == []
    return done


# ------------------------------------------------------------ STARTTLS

def test_capability_before_and_after_starttls(srv):
    user = new_user(srv)
    with Raw(srv.imap_port) as c:
        assert c.greeting == ("* OK [CAPABILITY %s] Tern IMAP server ready"
                              % CAPS_PLAIN).encode()
        assert c.cmd("CAPABILITY") == ([("* CAPABILITY %s" % CAPS_PLAIN).encode()],
                                       b"OK Capability completed")
        assert c.cmd("STARTTLS extra") == ([], b"BAD STARTTLS takes no arguments")
        c.starttls()
        # no greeting after the handshake; STARTTLS gone, mechanisms shown
        assert c.cmd("CAPABILITY") == ([("* CAPABILITY %s" % CAPS_TLS).encode()],
                                       b"OK Capability completed")
        assert c.cmd("STARTTLS") == ([], b"BAD TLS is already active")
        assert c.cmd("LOGIN %s %s" % (user, PASSWORD)) == (
            [], ("OK [CAPABILITY %s] Logged in" % CAPS).encode())
        assert c.cmd("CAPABILITY") == ([("* CAPABILITY %s" % CAPS).encode()],
                                       b"OK Capability completed")
        assert c.cmd("STARTTLS") == ([], b"BAD Command not valid in this state")
        assert c.cmd("LOGOUT") == ([b"* BYE Logging out"], b"OK Logout completed")
    assert srv.wait_log(r"imap session=\S+ client=127\.0\.0\.1 action=tls version=TLSv1\.3 ", 3)
    assert srv.wait_log(r"imap session=\S+ client=127\.0\.0\.1 action=login user=%s "
                        r"mech=LOGIN tls=yes result=ok" % re.escape(user), 3)


def test_openssl_s_client_starttls(srv):
    user = new_user(srv)
    cmd = ["openssl", "s_client", "-connect", "%s:%d" % (HOST, srv.imap_port), "-starttls",
           "imap", "-brief", "-crlf", "-ign_eof"]
    inp = ("a LOGIN %s %s\nb SELECT INBOX\nc LOGOUT\n" % (user, PASSWORD)).encode()
    r = subprocess.run(cmd, input=inp, capture_output=True, timeout=timeout(20))
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    assert "CONNECTION ESTABLISHED" in err, err
    assert "Protocol version: TLSv1.3" in err, err
    assert ("a OK [CAPABILITY %s] Logged in\r\n" % CAPS) in out, out
    assert "b OK [READ-WRITE] SELECT completed\r\n" in out, out
    assert "* BYE Logging out\r\nc OK Logout completed\r\n" in out, out


def test_imaplib_starttls_then_login(srv):
    user = new_user(srv)
    m = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        assert "STARTTLS" in m.capabilities and "LOGINDISABLED" in m.capabilities
        typ, data = m.starttls(ssl_context=client_ctx())
        assert typ == "OK"
        assert "STARTTLS" not in m.capabilities
        assert "AUTH=SCRAM-SHA-256-PLUS" in m.capabilities
        typ, data = m.login(user, PASSWORD)
        assert (typ, data) == ("OK", [("[CAPABILITY %s] Logged in" % CAPS).encode()])
        assert m.select("INBOX") == ("OK", [b"0"])
    finally:
        m.logout()


def test_starttls_injection_is_discarded(srv):
    with Raw(srv.imap_port) as c:
        c.send(b"a STARTTLS\r\nb CAPABILITY\r\n")  # one packet
        assert c.line() == b"a OK Begin TLS negotiation now"
        c.sock = client_ctx().wrap_socket(c.sock)
        # "b" was plaintext sent before TLS: it is never answered
        assert c.pending() == b""
        assert c.cmd("CAPABILITY", tag="c") == ([("* CAPABILITY %s" % CAPS_TLS).encode()],
                                                b"OK Capability completed")
    assert srv.wait_log(r"imap session=\S+ client=\S+ action=starttls dropped=14 ", 3)


def test_plaintext_after_starttls_fails_the_handshake(srv):
    with Raw(srv.imap_port) as c:
        assert c.cmd("STARTTLS") == ([], b"OK Begin TLS negotiation now")
        c.send(b"b CAPABILITY\r\n")
        assert c.closed_by_server()
        assert c.buf == b""
    assert srv.wait_log(r"imap session=\S+ client=\S+ action=tls result=failed", 3)


def test_plaintext_refused_without_tls(srv):
    user = new_user(srv)
    with Raw(srv.imap_port) as c:
        assert c.cmd("LOGIN %s %s" % (user, PASSWORD)) == ([], PRIVACY)
        assert c.cmd("AUTHENTICATE PLAIN " + b64("\0%s\0%s" % (user, PASSWORD))) == (
            [], PRIVACY)
        assert c.cmd("AUTHENTICATE LOGIN") == ([], PRIVACY)
        assert c.cmd("AUTHENTICATE SCRAM-SHA-256-PLUS") == (
            [], b"NO [PRIVACYREQUIRED] SCRAM-SHA-256-PLUS needs TLS")
        assert c.cmd("AUTHENTICATE CRAM-MD5") == (
            [], b"NO Unsupported authentication mechanism")
        # not logged in by any of these
        assert c.cmd("SELECT INBOX") == ([], b"BAD Log in first")


# ------------------------------------------------------------ imaps

def test_imaps_greeting_and_imaplib(srv):
    user = new_user(srv)
    with Raw(srv.imaps_port, tls=True) as c:
        assert c.greeting == ("* OK [CAPABILITY %s] Tern IMAP server ready"
                              % CAPS_TLS).encode()
        assert c.cmd("STARTTLS") == ([], b"BAD TLS is already active")
    m = imaplib.IMAP4_SSL(HOST, srv.imaps_port, ssl_context=client_ctx(),
                          timeout=timeout(10))
    try:
        assert "STARTTLS" not in m.capabilities and "AUTH=PLAIN" in m.capabilities
        assert m.login(user, PASSWORD)[0] == "OK"
        assert m.select("INBOX") == ("OK", [b"0"])
    finally:
        m.logout()


def test_curl_imaps(srv):
    user = new_user(srv)
    r = subprocess.run(["curl", "-sS", "-k", "--max-time", str(timeout(15)), "--user",
                        "%s:%s" % (user, PASSWORD),
                        "imaps://%s:%d/" % (HOST, srv.imaps_port)],
                       capture_output=True, timeout=timeout(20))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
        '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
        '* LIST (\\HasNoChildren) "/" "INBOX"',
        '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
        '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
        '* LIST (\\HasNoChildren \\Trash) "/" "Trash"']
    # and a wrong password is an error for curl (exit 67: login denied)
    r = subprocess.run(["curl", "-sS", "-k", "--max-time", str(timeout(15)), "--user",
                        "%s:wrong" % user, "imaps://%s:%d/" % (HOST, srv.imaps_port)],
                       capture_output=True, timeout=timeout(20))
    assert r.returncode == 67, (r.returncode, r.stderr)


# ------------------------------------------------------------ AUTHENTICATE

def test_authenticate_plain_and_login_after_tls(srv):
    user = new_user(srv)
    ok = ("OK [CAPABILITY %s] Logged in" % CAPS).encode()
    with Raw(srv.imaps_port, tls=True) as c:
        assert c.cmd("AUTHENTICATE PLAIN " + b64("\0%s\0%s" % (user, PASSWORD))) == ([], ok)
    with Raw(srv.imaps_port, tls=True) as c:
        c.send("a AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send(b64("%s\0%s\0%s" % (user, user, PASSWORD)) + "\r\n")
        assert c.until("a") == ([], ok)
    with Raw(srv.imaps_port, tls=True) as c:
        c.send("a AUTHENTICATE LOGIN\r\n")
        assert challenge(c) == b"Username:"
        c.send(b64(user) + "\r\n")
        assert challenge(c) == b"Password:"
        c.send(b64(PASSWORD) + "\r\n")
        assert c.until("a") == ([], ok)
    # imaplib's own AUTHENTICATE (no SASL-IR)
    m = imaplib.IMAP4_SSL(HOST, srv.imaps_port, ssl_context=client_ctx(),
                          timeout=timeout(10))
    try:
        typ, _ = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, PASSWORD)).encode())
        assert typ == "OK"
    finally:
        m.logout()


def test_commands_pipelined_behind_login_wait_for_it(srv):
    user = new_user(srv)
    with Raw(srv.imaps_port, tls=True) as c:
        # a wrong password (answered after the limiter's delay), a right one
        # and a command, in one packet: answered in order
        c.send("a LOGIN %s wrong\r\nb LOGIN %s %s\r\nc SELECT INBOX\r\n"
               % (user, user, PASSWORD))
        assert c.until("a") == ([], FAILED)
        assert c.until("b") == ([], ("OK [CAPABILITY %s] Logged in" % CAPS).encode())
        assert c.until("c")[1] == b"OK [READ-WRITE] SELECT completed"
    with Raw(srv.imaps_port, tls=True) as c:
        # a cancel with a command behind it in the same packet
        c.send("a AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send("*\r\nb NOOP\r\n")
        assert c.until("a") == ([], b"BAD Authentication cancelled")
        assert c.until("b") == ([], b"OK NOOP completed")


def test_authenticate_failures_cancel_and_bad_base64(srv):
    user = new_user(srv)
    with Raw(srv.imaps_port, tls=True) as c:
        assert c.cmd("AUTHENTICATE PLAIN " + b64("\0%s\0wrong" % user)) == ([], FAILED)
        # another user's name as authorization identity
        assert c.cmd("AUTHENTICATE PLAIN " + b64("bob@example.test\0%s\0%s"
                                                 % (user, PASSWORD))) == ([], FAILED)
        c.send("a AUTHENTICATE SCRAM-SHA-256\r\n")
        assert c.line() == b"+ "
        c.send("*\r\n")
        assert c.until("a") == ([], b"BAD Authentication cancelled")
        assert c.cmd("AUTHENTICATE PLAIN !!!!") == ([], b"BAD Invalid base64 data")
        assert c.cmd("AUTHENTICATE PLAIN AAA=BBB") == ([], b"BAD Invalid base64 data")
        c.send("a AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send("=AAA\r\n")
        assert c.until("a") == ([], b"BAD Invalid base64 data")
        # a third failed check ends the connection
        assert c.cmd("LOGIN %s wrong" % user) == ([], FAILED)
        assert c.line() == b"* BYE Too many failed logins"
        assert c.closed_by_server()
    assert srv.wait_log(r"imap session=\S+ client=127\.0\.0\.1 action=auth mech=PLAIN "
                        r"user=%s result=failed reason=credentials" % re.escape(user), 3)


def test_scram_sha256_without_tls(srv):
    """SCRAM sends no password, so it is offered on the cleartext port."""
    user = new_user(srv)
    ok = ("OK [CAPABILITY %s] Logged in" % CAPS).encode()
    with Raw(srv.imap_port) as c:
        assert scram_raw(c, user) == ok
        assert c.cmd("SELECT INBOX")[1] == b"OK [READ-WRITE] SELECT completed"
    with Raw(srv.imap_port) as c:
        assert scram_raw(c, user, ir=True) == ok
    with Raw(srv.imap_port) as c:
        assert scram_raw(c, user, password="wrong") == FAILED
        # unknown users get the same exchange and answer
        assert scram_raw(c, "nobody-%s@example.test" % uuid.uuid4().hex[:6]) == FAILED
    assert srv.wait_log(r"imap session=\S+ client=127\.0\.0\.1 action=login user=%s "
                        r"mech=SCRAM-SHA-256 tls=no result=ok" % re.escape(user), 3)


def test_scram_sha256_imaplib_over_tls(srv):
    user = new_user(srv)
    # over TLS the server offers -PLUS, so a client that could bind says
    # "y" only if it cannot: "n" is the honest flag for a non-PLUS client
    sc = Scram(user, PASSWORD)
    steps = []

    def handler(data):
        steps.append(data)
        if len(steps) == 1:
            assert data == b""
            return sc.first()
        if len(steps) == 2:
            return sc.final(data)
        assert data.decode() == sc.server_sig
        return b""

    m = imaplib.IMAP4_SSL(HOST, srv.imaps_port, ssl_context=client_ctx(),
                          timeout=timeout(10))
    try:
        typ, data = m.authenticate("SCRAM-SHA-256", handler)
        assert (typ, data) == ("OK", [("[CAPABILITY %s] Logged in" % CAPS).encode()])
        assert len(steps) == 3
        assert m.select("INBOX") == ("OK", [b"0"])
    finally:
        m.logout()


def test_scram_sha256_plus_tls_server_end_point(srv):
    user = new_user(srv)
    ok = ("OK [CAPABILITY %s] Logged in" % CAPS).encode()
    with Raw(srv.imaps_port, tls=True) as c:
        cb = ("tls-server-end-point", server_end_point(c.sock))
        assert scram_raw(c, user, mech="SCRAM-SHA-256-PLUS", cb=cb) == ok
    with Raw(srv.imap_port) as c:  # after STARTTLS as well
        c.starttls()
        cb = ("tls-server-end-point", server_end_point(c.sock))
        assert scram_raw(c, user, mech="SCRAM-SHA-256-PLUS", cb=cb, ir=True) == ok
    with Raw(srv.imaps_port, tls=True) as c:
        # binding data of another connection (a man in the middle): refused
        cb = ("tls-server-end-point", server_end_point(c.sock))
        assert scram_raw(c, user, mech="SCRAM-SHA-256-PLUS", cb=cb,
                         wrong_cb=b"\0" * 32) == FAILED
        # "y" (client could bind but thinks we cannot) while we offer -PLUS:
        # a downgrade (RFC 5802 6)
        assert scram_raw(c, user, flag="y") == FAILED
    with Raw(srv.imap_port) as c:
        # without TLS "y" is fine: we offer no -PLUS there
        assert scram_raw(c, user, flag="y") == ok
    assert srv.wait_log(r"imap session=\S+ client=127\.0\.0\.1 action=login user=%s "
                        r"mech=SCRAM-SHA-256-PLUS tls=yes result=ok" % re.escape(user), 3)


# ------------------------------------------------------------ limiter

def test_wrong_passwords_slowed_then_blocked(make_server):
    s = make_server(conf={"allow_plaintext_loopback": "no", "auth.fail_delay_ms": "300",
                          "auth.fail_delay_max_ms": "1200", "auth.block_after": "4",
                          "auth.block_time": "60"})
    user = "alice@example.test"
    delays = []
    with Raw(s.imaps_port, tls=True) as c:
        for _ in range(2):
            t0 = time.monotonic()
            assert c.cmd("LOGIN %s wrong" % user) == ([], FAILED)
            delays.append(time.monotonic() - t0)
    with Raw(s.imaps_port, tls=True) as c:
        t0 = time.monotonic()
        assert c.cmd("AUTHENTICATE PLAIN " + b64("\0%s\0wrong" % user)) == ([], FAILED)
        delays.append(time.monotonic() - t0)
        t0 = time.monotonic()
        assert scram_raw(c, user, password="wrong") == FAILED  # the 4th: blocks
        delays.append(time.monotonic() - t0)
    # the delay doubles from auth.fail_delay_ms up to auth.fail_delay_max_ms
    for got, want in zip(delays, (0.3, 0.6, 1.2, 1.2)):
        assert got >= want - 0.05, delays
    assert delays[0] < timeout(1.0), delays
    # blocked: even the right password is refused at once, unchecked
    with Raw(s.imaps_port, tls=True) as c:
        t0 = time.monotonic()
        assert c.cmd("LOGIN %s %s" % (user, PASSWORD)) == (
            [], b"NO [UNAVAILABLE] Too many failed logins, try again later")
        assert time.monotonic() - t0 < timeout(0.5)
        assert scram_raw(c, user) == b"NO [UNAVAILABLE] Too many failed logins, try again later"
    # refused on the IP before the name is read: user=-
    assert s.wait_log(r"imap session=\S+ client=127\.0\.0\.1 action=auth mech=PLAIN "
                      r"user=- result=blocked reason=brute_force_limit", 3)
    # the limiter's own lines carry the IP and the account
    assert s.wait_log(r"action=auth_block scope=ip ip=127\.0\.0\.1 "
                      r"account=alice@example\.test seconds=60", 3)


# ------------------------------------------------------------ no certificate

def test_no_certificate_no_starttls_no_rev2(make_server):
    s = make_server(conf={"tls.cert": "", "tls.key": "", "imaps.listen": "",
                          "pop3s.listen": "", "submissions.listen": "", "https.listen": "",
                          "allow_plaintext_loopback": "yes"})
    caps = CAPS.replace(" IMAP4rev2", "")
    with Raw(s.imap_port) as c:
        assert c.greeting == ("* OK [CAPABILITY %s AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256]"
                              " Tern IMAP server ready" % caps).encode()
        assert c.cmd("STARTTLS") == ([], b"NO TLS is not configured on this server")
        user = "alice@example.test"
        assert c.cmd("LOGIN %s %s" % (user, PASSWORD)) == (
            [], ("OK [CAPABILITY %s] Logged in" % caps).encode())
        # IMAP4rev2 is not offered, so ENABLE ignores it
        assert c.cmd("ENABLE IMAP4rev2") == ([b"* ENABLED"], b"OK Enabled")
