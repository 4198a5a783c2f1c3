"""The login limiter (src/auth/authlimit.h) under concurrency, through IMAP
LOGIN from several loopback addresses (127.0.0.x stands in for other
clients): attempts sent at the same moment cannot pass the block, one
address's burst does not stall another's login, a stranger's failures do
not lock the owner out from a new address, and `tern auth` lifts a block.
"""

import re
import socket
import threading
import time

from conftest import HOST, PASSWORD, timeout

ALICE = "alice@example.test"
BOB = "bob@example.test"

CONF = {
    "auth.fail_delay_ms": "50",
    "auth.fail_delay_max_ms": "200",
    "auth.block_after": "10",
    "auth.block_time": "600",
    "auth.max_pending_per_ip": "8",
    "allow_plaintext_loopback": "yes",
}


class Imap:
    def __init__(self, port, source="127.0.0.1"):
        self.sock = socket.create_connection((HOST, port), timeout=timeout(60),
                                             source_address=(source, 0))
        self.buf = b""
        assert self.line().startswith(b"* OK")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, data):
        self.sock.sendall(data.encode())

    def tagged(self, tag):
        while True:
            line = self.line()
            if line.startswith(tag.encode() + b" "):
                return line

    def login(self, user, password, tag="a"):
        self.send('%s LOGIN "%s" "%s"\r\n' % (tag, user, password))
        return self.tagged(tag)

    def close(self):
        self.sock.close()


def connect_many(port, n, source="127.0.0.1"):
    return [Imap(port, source) for _ in range(n)]


def checked_failures(log, ip):
    """Password checks that ran and failed for ip (not refusals)."""
    return len(re.findall(r"imap session=\S+ client=%s action=auth mech=PLAIN user=\S+ "
                          r"result=failed reason=credentials" % re.escape(ip), log))


def wait_for(pred, what, secs=30, log=None):
    end = time.monotonic() + timeout(secs)
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s%s" % (what, "\n" + log()[-3000:] if log else ""))


def test_simultaneous_wrong_logins_cannot_pass_the_block(make_server):
    s = make_server(conf=CONF)
    conns = connect_many(s.imap_port, 300)
    right = conns.pop()
    # every wrong LOGIN is on the wire before any answer comes back
    for i, c in enumerate(conns):
        c.send('a LOGIN "%s" "wrong%d"\r\n' % (ALICE, i))
    # once the limiter has counted the block (checks or refusals) ...
    wait_for(lambda: "action=auth_block scope=ip ip=127.0.0.1 " in s.log(), "the block",
             log=s.log)
    # ... the right password is refused from there, without a check
    assert right.login(ALICE, PASSWORD) == \
        b"a NO [UNAVAILABLE] Too many failed logins, try again later"
    answers = [c.tagged("a") for c in conns]
    assert all(a.startswith(b"a NO ") for a in answers), set(answers)
    # at most block_after + max_pending_per_ip passwords were checked
    log = s.log()
    assert checked_failures(log, "127.0.0.1") <= 10 + 8, checked_failures(log, "127.0.0.1")
    refused = len(re.findall(r"client=127\.0\.0\.1 action=auth mech=PLAIN user=\S+ "
                             r"result=(?:failed reason=too_many_attempts|blocked)", log))
    assert refused >= 299 - 18
    # a refusal looks like a wrong password to the client
    assert b"a NO [AUTHENTICATIONFAILED] Authentication failed" in answers
    for c in conns + [right]:
        c.close()
    # another address is not affected
    c = Imap(s.imap_port, "127.0.0.2")
    assert c.login(ALICE, PASSWORD).startswith(b"a OK")
    c.close()


def test_login_from_another_address_during_a_burst(make_server):
    s = make_server(conf=dict(CONF, **{"auth.block_after": "0"}))
    conns = connect_many(s.imap_port, 300)
    legit = Imap(s.imap_port, "127.0.0.2")
    stop = threading.Event()

    def burst():
        # keep sending wrong logins on every connection until stopped
        n = 0
        while not stop.is_set():
            for c in conns:
                try:
                    c.send('a%d LOGIN "%s" "wrong"\r\n' % (n, BOB))
                except OSError:
                    pass  # the server may close an attacker's connection
            n += 1
            if n >= 20:
                break
            time.sleep(0.01)

    t = threading.Thread(target=burst)
    t.start()
    try:
        wait_for(lambda: checked_failures(s.log(), "127.0.0.1") >= 4, "the burst")
        t0 = time.monotonic()
        assert legit.login(ALICE, PASSWORD).startswith(b"a OK")
        took = time.monotonic() - t0
    finally:
        stop.set()
        t.join()
    assert took < timeout(1.0), took
    for c in conns + [legit]:
        c.close()


def test_owner_gets_in_from_a_new_address_and_unblock(make_server):
    s = make_server(conf=CONF)
    for i in range(10):
        c = Imap(s.imap_port, "127.0.0.1")
        assert c.login(ALICE, "wrong%d" % i, tag="t%d" % i) == \
            b"t%d NO [AUTHENTICATIONFAILED] Authentication failed" % i
        c.close()
    c = Imap(s.imap_port, "127.0.0.1")
    assert c.login(ALICE, PASSWORD) == \
        b"a NO [UNAVAILABLE] Too many failed logins, try again later"
    c.close()
    # the account is slowed, not blocked: its owner gets in from elsewhere
    other = Imap(s.imap_port, "127.0.0.4")
    assert other.login(ALICE, PASSWORD).startswith(b"a OK")
    other.close()
    # the admin sees the block and lifts it
    out = s.cli_ok("auth", "status", "127.0.0.1").stdout.decode()
    assert re.search(r"^127\.0\.0\.1: 0 failures in the window, blocked until \d{4}-", out,
                     re.M), out
    out = s.cli_ok("auth", "unblock", "127.0.0.1").stdout.decode()
    assert "127.0.0.1: failures cleared, block lifted" in out, out
    c = Imap(s.imap_port, "127.0.0.1")
    assert c.login(ALICE, PASSWORD).startswith(b"a OK")
    c.close()
    out = s.cli_ok("auth", "status", ALICE).stdout.decode()
    assert out.startswith(ALICE + ": 10 failures in the window"), out
    r = s.cli("auth", "unblock", "nonsense")
    assert r.returncode == 2
