"""IMAP COMPRESS=DEFLATE (RFC 4978).

A client built on Python's zlib (raw deflate, as RFC 4978 says) talks to
Tern over plain IMAP and over imaps: the tagged OK is the last plain line,
everything after it is compressed both ways, a big FETCH arrives whole,
IDLE wakes up on a delivery, LOGOUT's last bytes arrive before the close.
Bad streams close only their own session.  mbsync, which uses COMPRESS
when offered, is exercised by test_imap_clients.py.
"""

import socket
import ssl
import uuid
import zlib

import pytest

from conftest import HOST, timeout

PASSWORD = "secret"
CONF = {"workers": 2, "allow_plaintext_loopback": "yes"}


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def new_user(srv):
    user = "z%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    return user


class Client:
    """An IMAP client that can switch on DEFLATE after a tagged OK."""

    def __init__(self, port, tls=False):
        s = socket.create_connection((HOST, port), timeout=timeout(20))
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        self.s = s
        self.comp = None
        self.decomp = None
        self.buf = b""
        self.wire_in = 0
        self.greeting = self.line()

    def send(self, data):
        if self.comp is not None:
            data = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.wire_in += len(chunk)
        if self.decomp is not None:
            chunk = self.decomp.decompress(chunk)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def cmd(self, tag, text):
        """Sends a command; the lines up to and with its tagged reply."""
        self.send(b"%s %s\r\n" % (tag, text))
        out = []
        while True:
            ln = self.line()
            out.append(ln)
            if ln.startswith(tag + b" "):
                return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def start_deflate(self):
        """COMPRESS DEFLATE; the OK comes plain, all after it compressed."""
        self.send(b"z COMPRESS DEFLATE\r\n")
        # the OK is the last uncompressed line: read it byte by byte from
        # the socket so nothing compressed is taken as plain
        line = b""
        while not line.endswith(b"\r\n"):
            b = self.s.recv(1)
            assert b, "closed before the COMPRESS reply"
            line += b
        assert line == b"z OK DEFLATE active\r\n", line
        assert self.buf == b""
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)

    def close(self):
        self.s.close()


def login(c, user):
    r = c.cmd(b"a", b"LOGIN %s %s" % (user.encode(), PASSWORD.encode()))
    assert r[-1].startswith(b"a OK"), r


def append(srv, user, msg):
    c = Client(srv.imap_port)
    login(c, user)
    c.send(b"b APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    while True:
        ln = c.line()
        if ln.startswith(b"b "):
            assert ln.startswith(b"b OK"), ln
            break
    c.close()


def test_capability_and_refusals(srv):
    user = new_user(srv)
    c = Client(srv.imap_port)
    assert b"COMPRESS=DEFLATE" in c.greeting
    # not before login (RFC 4978: an authenticated-state command)
    r = c.cmd(b"p", b"COMPRESS DEFLATE")
    assert r[-1] == b"p BAD Log in first\r\n", r
    login(c, user)
    assert c.cmd(b"q", b"COMPRESS GZIP")[-1] == b"q BAD COMPRESS takes one argument: DEFLATE\r\n"
    assert c.cmd(b"r", b"COMPRESS")[-1] == b"r BAD COMPRESS takes one argument: DEFLATE\r\n"
    c.start_deflate()
    # the second time: BAD, compressed like everything now
    assert c.cmd(b"s", b"COMPRESS DEFLATE")[-1] == b"s BAD COMPRESS is already active\r\n"
    assert c.cmd(b"t", b"NOOP")[-1] == b"t OK NOOP completed\r\n"
    c.close()


@pytest.mark.parametrize("tls", [False, True])
def test_fetch_idle_logout_compressed(srv, tls):
    user = new_user(srv)
    body = b"".join(b"line %06d of a long and repetitive body\r\n" % i for i in range(20000))
    msg = (b"From: a@example.test\r\nTo: %s\r\nSubject: big\r\n\r\n" % user.encode()) + body
    append(srv, user, msg)
    c = Client(srv.imaps_port if tls else srv.imap_port, tls=tls)
    login(c, user)
    c.start_deflate()
    r = c.cmd(b"a1", b"SELECT INBOX")
    assert b"* 1 EXISTS\r\n" in r and r[-1].startswith(b"a1 OK")
    before = c.wire_in
    c.send(b"a2 FETCH 1 BODY.PEEK[]\r\n")
    head = c.line()
    assert head == b"* 1 FETCH (BODY[] {%d}\r\n" % len(msg), head
    assert c.read_exact(len(msg)) == msg
    assert c.line() == b")\r\n"
    assert c.line().startswith(b"a2 OK")
    # the body is very repetitive: it came much smaller than it is
    assert c.wire_in - before < len(msg) // 5
    # IDLE: a delivery wakes the compressed session
    c.send(b"a3 IDLE\r\n")
    assert c.line() == b"+ idling\r\n"
    append(srv, user, b"From: b@example.test\r\nSubject: second\r\n\r\nhi\r\n")
    assert c.line() == b"* 2 EXISTS\r\n"
    c.send(b"DONE\r\n")
    ln = c.line()
    while not ln.startswith(b"a3 "):
        ln = c.line()
    assert ln == b"a3 OK Idle completed\r\n"
    # LOGOUT: BYE and OK arrive before the close
    r = c.cmd(b"a4", b"LOGOUT")
    assert r[0].startswith(b"* BYE") and r[-1] == b"a4 OK Logout completed\r\n", r
    with pytest.raises(EOFError):
        c.line()
    c.close()
    srv.wait_log(r"action=compress mechanism=DEFLATE")


def test_broken_stream_closes_only_that_session(srv):
    user = new_user(srv)
    other = Client(srv.imap_port)
    login(other, user)
    bad = Client(srv.imap_port)
    login(bad, user)
    bad.start_deflate()
    bad.comp = None  # send bytes that are not deflate
    bad.s.sendall(b"\xff\xff\xff\xff garbage that does not inflate\r\n")
    with pytest.raises((EOFError, ConnectionResetError)):
        while True:
            bad._fill()
    bad.close()
    assert other.cmd(b"o", b"NOOP")[-1] == b"o OK NOOP completed\r\n"
    other.close()


def test_deflate_bomb_is_bounded(srv):
    """50 MB of one byte, no line end, compressed to ~50 KB: the line
    bound of the reader applies to what inflates (BAD or BYE, never the
    whole thing in memory), and the server goes on."""
    user = new_user(srv)
    c = Client(srv.imap_port)
    login(c, user)
    c.start_deflate()
    comp = c.comp
    c.comp = None
    payload = comp.compress(b"x" * (50 * 1024 * 1024)) + comp.compress(b"\r\n")
    payload += comp.flush(zlib.Z_SYNC_FLUSH)
    assert len(payload) < 200 * 1024
    try:
        c.s.sendall(payload)
        got = []
        while True:
            ln = c.line()
            got.append(ln)
            if b"BAD" in ln or b"BYE" in ln:
                break
        assert b"too long" in got[-1], got
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass
    c.close()
    d = Client(srv.imap_port)
    login(d, user)
    assert d.cmd(b"n", b"NOOP")[-1] == b"n OK NOOP completed\r\n"
    d.close()
