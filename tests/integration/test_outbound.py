"""Outbound delivery: DNS (a real dnsmasq on loopback), the queue runner,
the SMTP client, retries, bounces (RFC 3464 DSNs) and `tern queue`/`tern trace`.

The world of these tests:

    dnsmasq on 127.0.0.1:DNS   a.test  MX 10 mx.a.test (127.0.0.2)
                               b.test  MX 10 mx.b.test (127.0.0.3)
                               null.test  Null MX (RFC 7505)
                               two.test   MX 10 dead.two.test (127.0.0.9, nobody
                                          listens), MX 20 mx.fake.test
                               fake.test, slow.test  MX -> 127.0.0.4 (a Python
                                          fake SMTP server, per test)
                               implicit.test  no MX, A 127.0.0.3
    Tern A on 127.0.0.2, Tern B on 127.0.0.3, both with port base N, so
    remote_smtp_port = N+25 reaches the other one.

Message entry is the SMTP receiver with alias targets that are remote
(x@a.test -> bob@b.test), since submission does not exist yet.
"""

import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from conftest import (STANDARD_PORTS, SMTPRaw, TernServer, _port_free, child_pids,
                      sanitizer_report, timeout, without_dkim, worker_port_bases)
from test_dkim import dns_records, verify_all

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
PASSWORD = "secret"
HOST_A, HOST_B, HOST_FAKE, HOST_DEAD = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.9"

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")

# Short times so that retries happen within a test.
FAST = {
    "workers": "1",
    "queue.retry_min": "1s",
    "queue.retry_max": "2s",
    "queue.timeout.connect": "3s",
    "queue.timeout.greeting": "3s",
    "queue.timeout.command": "2s",
    "queue.timeout.data_init": "3s",
    "queue.timeout.data_block": "3s",
    "queue.timeout.data_end": "3s",
    "queue.timeout.dns": "5s",
}


def free_udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_dns_port(port):
    """True if port is free on 127.0.0.1 for UDP and for TCP (dnsmasq
    listens on both)."""
    if not free_udp(port):
        return False
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_world_ports():
    """(port base N, dns port): N+25 and N+110 free on every test address."""
    import random
    bases = worker_port_bases()
    for _ in range(200):
        base = random.choice(bases)
        ok = True
        for host in (HOST_A, HOST_B, HOST_FAKE):
            for p in STANDARD_PORTS:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((host, base + p))
                except OSError:
                    ok = False
                finally:
                    s.close()
        dns = base + 53
        if ok and free_dns_port(dns):
            return base, dns
    raise RuntimeError("no free ports")


class DNS:
    """dnsmasq serving the test zones (only local data for .test)."""

    def __init__(self, port, extra=()):
        self.port = port
        self.logpath = tempfile.mktemp(prefix="tern-dnsmasq-", suffix=".log")
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--port=%d" % port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--local=/test/", "--user=root" if os.geteuid() == 0 else "--port=%d" % port,
                "--mx-host=a.test,mx.a.test,10", "--host-record=mx.a.test,%s" % HOST_A,
                "--mx-host=b.test,mx.b.test,10", "--host-record=mx.b.test,%s" % HOST_B,
                "--mx-host=null.test,.,0", "--host-record=null.test,%s" % HOST_B,
                "--mx-host=two.test,dead.two.test,10", "--mx-host=two.test,mx.fake.test,20",
                "--host-record=dead.two.test,%s" % HOST_DEAD,
                "--host-record=mx.fake.test,%s" % HOST_FAKE,
                "--mx-host=fake.test,mx.fake.test,10", "--mx-host=slow.test,mx.fake.test,10",
                "--host-record=implicit.test,%s" % HOST_B] + list(extra)
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited: %s" % open(self.logpath).read())
            if not free_udp(port):
                return
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
        os.unlink(self.logpath)


class Peer(TernServer):
    """A Tern instance for one domain on its own loopback address."""

    def __init__(self, tern_bin, host, domain, base, dns_port, users, conf=None):
        self.bin = tern_bin
        self.base = tempfile.mkdtemp(prefix="tern-ob-%s-" % domain.split(".")[0])
        os.chmod(self.base, 0o755)
        self.dir = self.base
        self.conf = os.path.join(self.dir, "tern.conf")
        self.data = os.path.join(self.dir, "data")
        self.logpath = os.path.join(self.dir, "serve.log")
        self.host = host
        self.proc = None
        self.allow_worker_deaths = False
        self.port_base = base
        self.domain = domain
        r = self.cli_noconf("init", self.dir, "--address", host, "--port-base", str(base),
                            "--domain", domain, "--hostname", "mx." + domain,
                            "--resolver", "127.0.0.1:%d" % dns_port)
        assert r.returncode == 0, "tern init failed: %r" % (r,)
        values = dict(FAST)
        values["remote_smtp_port"] = str(base + 25)
        # The peers serve mail only: fewer listening ports, fewer chances
        # that another test's outgoing connection holds one of them.
        values["http.listen"] = ""
        values["https.listen"] = ""
        values.update(conf or {})
        self.set_config(values)
        self.smtp_port = self._smtp_port()
        for u in users:
            self.cli_ok("user", "add", u, "--password", PASSWORD)

    def _move_ports(self):
        pytest.fail("port base %d is taken on %s" % (self.port_base, self.host))

    def queue_rows(self):
        """`tern queue list` as dicts."""
        out = self.cli_ok("queue", "list").stdout.decode()
        lines = [l for l in out.split("\n") if l]
        head = lines[0].split("\t")
        return [dict(zip(head, l.split("\t"))) for l in lines[1:]]


class World:
    def __init__(self, tern_bin):
        self.tern_bin = tern_bin
        self.base, self.dns_port = pick_world_ports()
        self.dns = DNS(self.dns_port)
        self.peers = []
        self.fakes = []

    def peer(self, host, domain, users, conf=None, start=True):
        p = Peer(self.tern_bin, host, domain, self.base, self.dns_port, users, conf)
        self.peers.append(p)
        if start:
            p.start()
        return p

    def fake(self, script):
        f = FakeSMTP(HOST_FAKE, self.base + 25, script)
        self.fakes.append(f)
        return f

    def finish(self, failed):
        errors = []
        for f in self.fakes:
            f.stop()
        for p in self.peers:
            try:
                p.stop()
                p.check_log()
            except BaseException as e:  # pytest.fail raises
                errors.append(str(e))
            p.cleanup(keep=bool(errors) or failed)
        self.dns.stop()
        if errors:
            pytest.fail("\n".join(errors))


@pytest.fixture
def world(tern_bin, request):
    w = World(tern_bin)
    yield w
    w.finish(request.session.testsfailed > 0)


# ------------------------------------------------------------ fake remote

class FakeSMTP:
    """A scripted SMTP server.  script(conn_no, cmd) returns the reply line
    (or None to stay silent); it records every command and message."""

    def __init__(self, host, port, script):
        self.script = script
        self.commands = []      # (connection number, line)
        self.messages = []      # (connection number, bytes)
        self.connections = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with outer.lock:
                    outer.connections += 1
                    n = outer.connections
                self.request.settimeout(30)
                try:
                    self.wfile.write(b"220 fake.test ESMTP\r\n")
                    while True:
                        line = self.rfile.readline()
                        if not line:
                            return
                        cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
                        with outer.lock:
                            outer.commands.append((n, cmd))
                        if cmd.upper().startswith("BDAT "):
                            # RFC 3030: the chunk follows the command line.
                            parts = cmd.split()
                            chunk = self.rfile.read(int(parts[1]))
                            with outer.lock:
                                outer.messages.append((n, chunk))
                            reply = outer.script(n, cmd)
                        elif cmd.upper() == "DATA":
                            reply = outer.script(n, cmd)
                            self.wfile.write(reply.encode() + b"\r\n")
                            if not reply.startswith("354"):
                                continue
                            body = b""
                            while True:
                                l = self.rfile.readline()
                                if not l or l == b".\r\n":
                                    break
                                body += l
                            with outer.lock:
                                outer.messages.append((n, body))
                            reply = outer.script(n, ".")
                        else:
                            reply = outer.script(n, cmd)
                        if reply is None:
                            time.sleep(30)
                            return
                        self.wfile.write(reply.encode() + b"\r\n")
                        if cmd.upper() == "QUIT":
                            return
                except OSError:
                    return

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def normal_reply(cmd):
    c = cmd.upper()
    if c.startswith("EHLO"):
        return "250-fake.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1000000"
    if c == "DATA":
        return "354 go ahead"
    if c == ".":
        return "250 2.0.0 Ok: queued"
    if c == "QUIT":
        return "221 2.0.0 bye"
    return "250 2.1.0 Ok"


# --------------------------------------------------------------- helpers

def send(peer, rcpt, subject, sender="alice@a.test", body="Hello there.\r\n", extra=""):
    """Sends one message to peer over SMTP; returns the message bytes."""
    mid = "<%s@a.test>" % uuid.uuid4().hex
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: %s\r\n%s\r\n%s"
           % (sender, rcpt, subject, mid, extra, body)).encode()
    with SMTPRaw(peer.host, peer.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
        code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
        assert code == 250, lines
        assert c.cmd("DATA")[0] == 354
        c.send(msg + b".\r\n")
        code, lines = c.read_reply()
        assert code == 250, lines
        c.cmd("QUIT")
    return msg, mid


def wait_for(pred, seconds, what):
    deadline = time.monotonic() + timeout(seconds)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for %s" % what)
        time.sleep(0.1)


def inbox_with(peer, user, token, n=1, seconds=15):
    return wait_for(lambda: (lambda rows: rows if len(rows) >= n else None)(
        peer.find_messages(user, token)), seconds, "%d message(s) %r for %s" % (n, token, user))


def dsn_parts(raw):
    """Splits a DSN into (header, [part bodies]) with its boundary."""
    text = raw.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    m = re.search(r'boundary="([^"]+)"', head)
    assert m, "no boundary in %r" % head
    b = m.group(1)
    parts = body.split("--" + b)
    assert parts[-1].strip() == "--", "no closing boundary: %r" % parts[-1][:200]
    return head, [p[2:] for p in parts[1:-1]]


def fields(block):
    """'Key: value' lines of a block into (key, value) pairs."""
    out = []
    for line in block.split("\r\n"):
        if ":" in line and not line.startswith((" ", "\t")):
            k, v = line.split(":", 1)
            out.append((k, v.strip()))
    return out


def unsigned_part(orig):
    """A DSN's returned-message part with the DKIM signatures of the
    returned message (Tern signed it when it queued it: two keys) taken
    out."""
    part_head, sep, inner = orig.partition("\r\n\r\n")
    inner, n_sigs = without_dkim(inner)
    assert n_sigs == 2, orig[:600]
    return part_head + sep + inner


# ------------------------------------------------------------------ tests

def test_remote_delivery(world):
    b = world.peer(HOST_B, "b.test", ["bob@b.test"])
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")
    msg, mid = send(a, "x@a.test", "remote one")
    rows = inbox_with(b, "bob@b.test", "remote one")
    stored = b.mail_cat("bob@b.test", "INBOX", rows[0]["UID"])
    # A signed it with both its keys (test_dkim.py checks the signatures).
    stored, n_sigs = without_dkim(stored)
    assert n_sigs == 2
    # B's own trace lines, then A's Received:, then the original bytes.
    # (the client does not bind a source address: the kernel picks 127.0.0.1)
    assert re.match(rb"Return-Path: <alice@a\.test>\r\nReceived: from mx\.a\.test \(\[127\.0\.0\.1\]\)"
                    rb"\r\n\tby mx\.b\.test \(Tern\) with ESMTPS\r\n"
                    rb"\t\(using TLSv1\.3 with cipher [A-Z0-9_]+\) id ", stored), stored[:300]
    second = stored.index(b"\r\nReceived: from ") + 2
    assert stored[second:].startswith(b"Received: from ")
    assert b"by mx.a.test (Tern)" in stored[second:second + 300]
    assert stored.endswith(msg), stored[-300:]
    # Queue is empty, the journey is recorded.
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    out = a.cli_ok("trace", mid).stdout.decode()
    assert "bob@b.test" in out and "delivered" in out, out
    assert re.search(r"mx\.b\.test \[%s\]" % re.escape(HOST_B), out), out
    assert "250 2.0.0 Ok: queued as " in out, out


def test_implicit_mx(world):
    b = world.peer(HOST_B, "implicit.test", ["bob@implicit.test"])
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@implicit.test")
    send(a, "x@a.test", "implicit one")
    inbox_with(b, "bob@implicit.test", "implicit one")


def test_unknown_user_bounces_to_sender(world):
    b = world.peer(HOST_B, "b.test", ["bob@b.test"])
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "y@a.test", "nobody@b.test")
    msg, mid = send(a, "y@a.test", "to nobody")
    rows = inbox_with(a, "alice@a.test", "Undelivered Mail Returned to Sender")
    raw = a.mail_cat("alice@a.test", "INBOX", rows[0]["UID"])
    assert raw.startswith(b"Return-Path: <>\r\n"), raw[:100]
    head, parts = dsn_parts(raw)
    hf = dict(fields(head))
    assert hf["From"] == "Mail Delivery System <MAILER-DAEMON@mx.a.test>"
    assert hf["To"] == "<alice@a.test>"
    assert hf["Auto-Submitted"] == "auto-replied"
    assert re.search(r"Content-Type: multipart/report; report-type=delivery-status;", head)
    assert len(parts) == 3
    text, status, orig = parts
    assert text.startswith("Content-Description: Notification\r\n"
                           "Content-Type: text/plain; charset=us-ascii\r\n\r\n")
    reply = "550 5.1.1 <nobody@b.test>: Recipient address rejected: User unknown"
    assert "<nobody@b.test>\r\n    The mail server mx.b.test [%s] answered:\r\n" % HOST_B in text
    assert reply in text.replace("\r\n        ", " ")
    assert "The address does not exist at the receiving domain." in \
        text.replace("\r\n        ", " ")
    assert status.startswith("Content-Description: Delivery report\r\n"
                             "Content-Type: message/delivery-status\r\n\r\n")
    blocks = status.split("\r\n\r\n")
    per_msg = dict(fields(blocks[1]))
    assert per_msg["Reporting-MTA"] == "dns; mx.a.test"
    assert "Arrival-Date" in per_msg
    rc = fields(blocks[2])
    keys = [k for k, _ in rc]
    assert keys == ["Final-Recipient", "Action", "Status", "Remote-MTA", "Diagnostic-Code",
                    "Last-Attempt-Date"], rc
    rc = dict(rc)
    assert rc["Final-Recipient"] == "rfc822; nobody@b.test"
    assert rc["Action"] == "failed"
    assert rc["Status"] == "5.1.1"
    assert rc["Remote-MTA"] == "dns; mx.b.test"
    assert rc["Diagnostic-Code"] == "smtp; " + reply
    orig = unsigned_part(orig)
    assert orig.startswith("Content-Description: Undelivered Message Headers\r\n"
                           "Content-Type: text/rfc822-headers\r\n\r\nReceived: from ")
    assert "Message-ID: %s\r\n" % mid in orig
    assert "Hello there." not in orig  # headers only (RET=HDRS)
    # Nothing left in A's queue; the trace explains.
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    out = a.cli_ok("trace", "nobody@b.test").stdout.decode()
    assert "bounced" in out and reply in out, out
    assert "The address does not exist at the receiving domain." in out


def test_deferred_then_delivered_when_b_starts(world):
    b = world.peer(HOST_B, "b.test", ["bob@b.test"], start=False)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")
    msg, mid = send(a, "x@a.test", "while b is down")
    rows = wait_for(lambda: [r for r in a.queue_rows() if int(r["ATTEMPTS"]) >= 1], 10,
                    "a failed attempt")
    assert rows[0]["STATE"] == "deferred"
    assert rows[0]["RCPT"] == "bob@b.test"
    assert "connection refused" in rows[0]["LAST_REPLY"], rows
    b.start()
    inbox_with(b, "bob@b.test", "while b is down", seconds=15)
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    out = a.cli_ok("trace", mid).stdout.decode()
    assert "deferred" in out and "connection refused" in out and "delivered" in out, out


def test_null_mx_bounces_at_once(world):
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "n@a.test", "someone@null.test")
    send(a, "n@a.test", "to null mx")
    rows = inbox_with(a, "alice@a.test", "Undelivered Mail", seconds=10)
    raw = a.mail_cat("alice@a.test", "INBOX", rows[0]["UID"]).decode()
    assert "Final-Recipient: rfc822; someone@null.test\r\nAction: failed\r\nStatus: 5.1.10\r\n" in raw
    assert "Diagnostic-Code: X-Tern; the domain null.test accepts no mail (Null MX, RFC 7505)" in raw
    assert "accepts no email at all" in raw.replace("\r\n        ", " ")


def test_nxdomain_bounces(world):
    """The bounce and the trace name the resolver that said the domain does
    not exist (dns.resolver: the test's dnsmasq), so that a broken resolver
    does not read like a typing mistake."""
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "n@a.test", "someone@nowhere.test")
    msg, mid = send(a, "n@a.test", "to nxdomain")
    rows = inbox_with(a, "alice@a.test", "Undelivered Mail", seconds=10)
    raw = a.mail_cat("alice@a.test", "INBOX", rows[0]["UID"]).decode()
    resolver = "127.0.0.1:%d" % world.dns_port
    why = "the DNS resolver %s says the domain nowhere.test does not exist (NXDOMAIN)" % resolver
    plain = ("The DNS resolver %s says that the recipient's domain nowhere.test does not exist "
             "in DNS. Check the part of the address after the @ for typing mistakes. If it is "
             "spelled correctly, that resolver is probably giving wrong answers: the "
             "administrator of this mail server should check it." % resolver)
    assert "Status: 5.1.2\r\n" in raw
    assert "Diagnostic-Code: X-Tern; %s\r\n" % why in raw, raw
    text = raw.replace("\r\n        ", " ")  # the wrapped lines joined
    assert "<someone@nowhere.test>\r\n    What happened: %s\r\n    In plain words: %s\r\n" \
        % (why, plain) in text, raw
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    out = a.cli_ok("trace", mid).stdout.decode()
    assert re.search(r"  attempt   someone@nowhere\.test %s\n" % re.escape(why), out), out
    assert "    In plain words: %s\n" % plain in out, out
    # The bounce itself was delivered locally, and its journey says where.
    dsn_id = re.search(r"\r\nMessage-ID: <([^>]+)>\r\n", raw).group(1)
    out = a.cli_ok("trace", dsn_id).stdout.decode()
    assert re.match(r"Message \d+ from <>, \d+ bytes, Message-ID %s\n" % re.escape(dsn_id),
                    out), out
    assert re.search(r"\n  [-0-9]+ [:0-9]+  delivered alice@a\.test to alice@a\.test's "
                     r"mailbox, folder INBOX\n", out), out


def test_resolver_failure_names_the_resolver(world):
    """The test DNS server serves .test only and refuses the rest: the
    deferral says which resolver failed, and the message waits."""
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "e@a.test", "someone@elsewhere.example")
    msg, mid = send(a, "e@a.test", "to a refused domain")
    rows = wait_for(lambda: [r for r in a.queue_rows() if int(r["ATTEMPTS"]) >= 1], 10,
                    "a failed attempt")
    assert rows[0]["STATE"] in ("deferred", "sending"), rows
    resolver = "127.0.0.1:%d" % world.dns_port
    why = ("the DNS resolver %s failed to look up MX of elsewhere.example (temporary DNS "
           "failure: server failure)" % resolver)
    out = a.cli_ok("trace", mid).stdout.decode()
    assert re.search(r"  attempt   someone@elsewhere\.example %s\n                       "
                     r"In plain words: The DNS resolver %s could not look up the mail servers "
                     r"of the recipient's domain right now\. This is usually temporary; delivery "
                     r"is retried automatically\. If it keeps happening, the administrator of "
                     r"this mail server should check that resolver\.\n"
                     % (re.escape(why), re.escape(resolver)), out), out
    a.cli_ok("queue", "remove", rows[0]["ID"])


def test_special_use_name_is_not_blamed_on_the_resolver(world):
    """libunbound answers .invalid itself: the reason says so instead of
    naming the resolver, and the plain words point at the address."""
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "i@a.test", "someone@host.invalid")
    msg, mid = send(a, "i@a.test", "to invalid")
    inbox_with(a, "alice@a.test", "Undelivered Mail", seconds=10)
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    out = a.cli_ok("trace", mid).stdout.decode()
    assert "  Now: someone@host.invalid bounced\n    Last reply: the domain host.invalid does " \
        "not exist: it is a special-use name (RFC 6761) that no DNS server is asked about " \
        "(NXDOMAIN)\n    In plain words: The recipient's domain does not exist in DNS. Check " \
        "the part of the address after the @ for typing mistakes.\n" in out, out
    assert "resolver" not in out, out


def test_trace_local_and_remote(world):
    """One message to an alias with a local and a remote target: its trace
    shows the local delivery (account, folder, alias) alongside the remote
    attempt."""
    b = world.peer(HOST_B, "b.test", ["bob@b.test"])
    a = world.peer(HOST_A, "a.test", ["alice@a.test", "carol@a.test"])
    a.cli_ok("alias", "add", "both@a.test", "carol@a.test", "bob@b.test")
    msg, mid = send(a, "both@a.test", "local and remote")
    inbox_with(b, "bob@b.test", "local and remote")
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    out = a.cli_ok("trace", mid).stdout.decode()
    lines = [re.sub(r"^  [-0-9]+ [:0-9]+  ", "", l) for l in out.split("\n")[2:]]
    # Written in the queue's own transaction: the local delivery first.
    assert lines[0] == "delivered both@a.test to carol@a.test's mailbox, folder INBOX " \
        "(through alias both@a.test)", out
    assert lines[1] == "queued    bob@b.test from alice@a.test", out
    assert lines[2].startswith("attempt   bob@b.test via mx.b.test [%s]: 250 " % HOST_B), out
    assert "Now: bob@b.test delivered" in out, out
    # Found by the final account as well.
    assert a.cli_ok("trace", "carol@a.test").stdout.decode() == out


def test_451_is_retried(world):
    state = {"rcpts": 0}

    def script(n, cmd):
        if cmd.upper().startswith("RCPT"):
            state["rcpts"] += 1
            if state["rcpts"] == 1:
                return "451 4.7.1 Greylisted, try again later"
        return normal_reply(cmd)

    fake = world.fake(script)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "f@a.test", "carol@fake.test")
    msg, mid = send(a, "f@a.test", "greylisted")
    wait_for(lambda: fake.messages, 15, "the retry to arrive")
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    cmds = [c for _, c in fake.commands]
    # First connection: MAIL and RCPT in one write (PIPELINING), refused RCPT,
    # so no DATA but RSET; the retry delivers.
    first = [c for n, c in fake.commands if n == 1]
    assert first[0] == "EHLO mx.a.test"
    assert re.fullmatch(r"MAIL FROM:<alice@a\.test> SIZE=\d+", first[1]), first
    assert first[2] == "RCPT TO:<carol@fake.test>"
    assert first[3] == "RSET", first
    assert cmds.count("DATA") == 1
    n, body = fake.messages[0]
    assert body.endswith(msg), body[-200:]
    out = a.cli_ok("trace", mid).stdout.decode()
    assert "451 4.7.1 Greylisted, try again later" in out
    assert "greylisting" in out, out


def test_second_mx_when_first_is_dead(world):
    fake = world.fake(lambda n, cmd: normal_reply(cmd))
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "t@a.test", "dave@two.test")
    msg, mid = send(a, "t@a.test", "two mx")
    wait_for(lambda: fake.messages, 15, "delivery through the second MX")
    assert fake.messages[0][1].endswith(msg)
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    assert a.wait_log(r"action=connect mx=dead\.two\.test ip=127\.0\.0\.9 result=failed")
    out = a.cli_ok("trace", mid).stdout.decode()
    assert "mx.fake.test [%s]" % HOST_FAKE in out, out


def test_slow_remote_times_out_and_is_retried(world):
    def script(n, cmd):
        if n == 1 and cmd.upper().startswith("MAIL"):
            return None  # say nothing: the client must time out
        return normal_reply(cmd)

    fake = world.fake(script)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "s@a.test", "erin@slow.test")
    t0 = time.monotonic()
    msg, mid = send(a, "s@a.test", "slow remote")
    wait_for(lambda: fake.messages, 20, "delivery after the timeout")
    assert time.monotonic() - t0 >= 2  # queue.timeout.command
    assert fake.connections >= 2
    out = a.cli_ok("trace", mid).stdout.decode()
    assert "timeout" in out, out


def test_kill9_with_full_queue_delivers_each_once(world):
    b = world.peer(HOST_B, "b.test", ["bob@b.test"], start=False)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")
    run = uuid.uuid4().hex[:8]
    n = 20
    for i in range(n):
        send(a, "x@a.test", "crash %s n%02d" % (run, i))
    wait_for(lambda: len(a.queue_rows()) == n, 10, "%d queued" % n)
    a.kill9()
    b.start()
    a.start()
    rows = inbox_with(b, "bob@b.test", "crash %s" % run, n=n, seconds=30)
    time.sleep(1.5)  # anything sent twice would show up now
    rows = b.find_messages("bob@b.test", "crash %s" % run)
    subjects = sorted(r["SUBJECT"] for r in rows)
    assert subjects == sorted("crash %s n%02d" % (run, i) for i in range(n)), subjects
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")


def test_kill9_during_delivery_loses_nothing(world):
    """kill -9 while the runner delivers: nothing is lost; at most the one
    transaction whose 250 was not recorded yet is sent again."""
    b = world.peer(HOST_B, "b.test", ["bob@b.test"], start=False)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")
    run = uuid.uuid4().hex[:8]
    n = 30
    for i in range(n):
        send(a, "x@a.test", "mid %s n%02d" % (run, i))
    a.kill9()
    b.start()
    a.start()
    wait_for(lambda: b.find_messages("bob@b.test", "mid %s" % run), 15, "first delivery")
    a.kill9()
    a.start()
    inbox_with(b, "bob@b.test", "mid %s" % run, n=n, seconds=30)
    wait_for(lambda: a.queue_rows() == [], 10, "empty queue")
    rows = b.find_messages("bob@b.test", "mid %s" % run)
    subjects = [r["SUBJECT"] for r in rows]
    assert set(subjects) == {"mid %s n%02d" % (run, i) for i in range(n)}
    dups = len(subjects) - len(set(subjects))
    assert dups <= 5, "%d duplicates (at most the transactions in flight)" % dups


def test_queue_cli(world):
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")   # B is not running
    msg, mid = send(a, "x@a.test", "cli test")
    rows = wait_for(lambda: [r for r in a.queue_rows() if int(r["ATTEMPTS"]) >= 1], 10,
                    "an attempt")
    qid = rows[0]["ID"]
    assert list(rows[0].keys()) == ["ID", "STATE", "ATTEMPTS", "NEXT", "SENDER", "RCPT",
                                    "LAST_REPLY"]
    assert rows[0]["SENDER"] == "alice@a.test"
    show = a.cli_ok("queue", "show", qid).stdout.decode()
    assert "Message-ID: %s" % mid[1:-1] in show and "bob@b.test" in show, show
    assert a.cli_ok("queue", "hold", qid).stdout.decode() == "queue: %s held (1 recipient)\n" % qid
    assert a.queue_rows()[0]["STATE"] == "hold"
    time.sleep(2.5)
    attempts = a.queue_rows()[0]["ATTEMPTS"]
    time.sleep(2.5)
    assert a.queue_rows()[0]["ATTEMPTS"] == attempts, "a held message was tried"
    assert a.cli_ok("queue", "release", qid).stdout.decode() == \
        "queue: %s released (1 recipient)\n" % qid
    assert a.queue_rows()[0]["STATE"] in ("deferred", "sending")
    assert a.cli_ok("queue", "retry", qid).returncode == 0
    assert a.cli_ok("queue", "remove", qid).stdout.decode() == \
        "queue: %s removed (1 recipient)\n" % qid
    assert a.queue_rows() == []
    assert a.files_under("queue") == []
    out = a.cli_ok("trace", qid).stdout.decode()
    assert "removed" in out, out
    r = a.cli("queue", "show", "999999")
    assert r.returncode == 1 and b"no queued message 999999" in r.stderr, r
    r = a.cli("queue", "frob")
    assert r.returncode == 2, r
    r = a.cli("trace", "nothing-like-this@nowhere.example")
    assert r.returncode == 1 and b"no message matches" in r.stderr, r


def test_old_database_is_upgraded(world):
    """A server.db from before outbound delivery (queue tables of schema 1
    without the new columns and log) is upgraded at the next open, and its
    queued rows still show."""
    import sqlite3
    a = world.peer(HOST_A, "a.test", ["alice@a.test"], start=False)
    db = sqlite3.connect(os.path.join(a.data, "server.db"))
    db.execute("DROP TABLE queue_log")
    db.execute("DROP INDEX queue_rcpts_rcpt")
    db.execute("DROP INDEX queue_rcpts_dsn")
    for t, cols in (("queue_messages", ("msgid", "received", "size", "done")),
                    ("queue_rcpts", ("updated", "status", "remote", "dsn", "warned"))):
        for c in cols:
            db.execute("ALTER TABLE %s DROP COLUMN %s" % (t, c))
    db.execute("INSERT INTO queue_messages (id, file, sender, created) VALUES (7, 'x', 'old@a.test', 1)")
    db.execute("INSERT INTO queue_rcpts (message_id, rcpt, state, attempts, next_attempt, last_reply)"
               " VALUES (7, 'bob@b.test', 'hold', 2, 5, 'old reply')")
    db.commit()
    db.close()
    rows = a.queue_rows()
    assert [(r["ID"], r["STATE"], r["ATTEMPTS"], r["SENDER"], r["RCPT"], r["LAST_REPLY"])
            for r in rows] == [("7", "hold", "2", "old@a.test", "bob@b.test", "old reply")]
    db = sqlite3.connect(os.path.join(a.data, "server.db"))
    cols = [r[1] for r in db.execute("PRAGMA table_info(queue_rcpts)")]
    db.close()
    assert cols[-5:] == ["updated", "status", "remote", "dsn", "warned"], cols


def test_delay_notice_once_then_bounce_at_lifetime(world):
    a = world.peer(HOST_A, "a.test", ["alice@a.test"],
                   conf={"queue.delay_warning": "2s", "queue.lifetime": "6s"})
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")   # B never runs
    msg, mid = send(a, "x@a.test", "slowly failing")
    rows = inbox_with(a, "alice@a.test", "Delayed Mail (still being retried)", seconds=10)
    raw = a.mail_cat("alice@a.test", "INBOX", rows[0]["UID"]).decode()
    assert "Final-Recipient: rfc822; bob@b.test\r\nAction: delayed\r\nStatus: 4.4.1\r\n" in raw
    assert "Will-Retry-Until: " in raw
    rows = inbox_with(a, "alice@a.test", "Undelivered Mail Returned to Sender", seconds=15)
    raw = a.mail_cat("alice@a.test", "INBOX", rows[0]["UID"]).decode()
    assert "Action: failed\r\nStatus: 4.4.7\r\n" in raw, raw
    assert "connection refused" in raw
    assert "within the time allowed" in raw.replace("\r\n        ", " ")
    assert len(a.find_messages("alice@a.test", "Delayed Mail")) == 1
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    assert a.files_under("queue") == []


def test_unreachable_destination_is_not_hammered(world):
    """Several messages waiting for one unreachable host: each attempt is
    one connection per address, not a reconnect loop (a connection that
    found every address dead used to be replaced by a new one at once)."""
    world.peer(HOST_B, "b.test", ["bob@b.test"], start=False)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")
    for i in range(4):
        send(a, "x@a.test", "hammer %d" % i)
    wait_for(lambda: len([r for r in a.queue_rows() if int(r["ATTEMPTS"]) >= 1]) == 4, 10,
             "a failed attempt for every message")
    before = a.log().count("action=connect mx=")
    time.sleep(3)
    failed = a.log().count("action=connect mx=") - before
    # retry_min 1s, retry_max 2s: a few attempts in 3 s, each one connect
    # per waiting job at most (queue.max_per_destination = 5).
    assert failed <= 20, "%d connection attempts in 3 s" % failed
    rows = a.queue_rows()  # still queued (deferred, or being tried again)
    assert len(rows) == 4 and not any(r["STATE"] in ("delivered", "bounced") for r in rows), rows


def no_8bitmime_reply(cmd):
    if cmd.upper().startswith("EHLO"):
        return "250-fake.test\r\n250-PIPELINING\r\n250 SIZE 1000000"
    return normal_reply(cmd)


def test_8bit_body_is_converted_for_a_server_without_8bitmime(world):
    """RFC 6152 3: a relay whose next hop lacks 8BITMIME converts the
    message to 7-bit; here a plain 8-bit text body becomes
    quoted-printable, with the MIME fields that say so."""
    fake = world.fake(lambda n, cmd: no_8bitmime_reply(cmd))
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "f@a.test", "carol@fake.test")
    msg, mid = send(a, "f@a.test", "eight bit", body="Caf\u00e9 au lait = 1 \r\nend\r\n")
    wait_for(lambda: fake.messages, 15, "the converted message")
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    n, body = fake.messages[0]
    head, _, _ = msg.partition(b"\r\n\r\n")
    want = (head + b"\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=unknown-8bit\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"Caf=C3=A9 au lait =3D 1=20\r\nend\r\n")
    # A's signatures were made again over the converted form: they verify.
    _, recs = dns_records(a, "a.test")
    results = verify_all(body, recs)
    assert len(results) == 2 and all(ok for ok, _ in results), results
    sent = body
    body, _ = without_dkim(body)
    assert body.startswith(b"Received: "), body[:100]
    assert body.endswith(want), body[-400:]
    assert all(b < 0x80 for b in sent)
    mail = [c for k, c in fake.commands if k == n and c.startswith("MAIL")]
    # No BODY=8BITMIME, and SIZE is the size of what was sent (dot-stuffing
    # aside: no line starts with a dot here).
    assert mail == ["MAIL FROM:<alice@a.test> SIZE=%d" % len(sent)], mail
    assert a.wait_log(r"action=7bit mx=mx\.fake\.test size=%d" % len(sent))


def test_8bit_header_for_a_server_without_8bitmime_bounces(world):
    """An 8-bit header cannot be made 7-bit (that needs SMTPUTF8): the
    sender gets a bounce that says so, and nothing is sent."""
    fake = world.fake(lambda n, cmd: no_8bitmime_reply(cmd))
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "f@a.test", "carol@fake.test")
    send(a, "f@a.test", "caf\u00e9 in the subject")
    rows = inbox_with(a, "alice@a.test", "Undelivered Mail", seconds=15)
    raw = a.mail_cat("alice@a.test", "INBOX", rows[0]["UID"]).decode("utf-8", "replace")
    assert "Final-Recipient: rfc822; carol@fake.test\r\nAction: failed\r\nStatus: 5.6.3\r\n" \
        in raw, raw[:3000]
    text = raw.replace("\r\n        ", " ")
    assert "does not support 8BITMIME, and it cannot be converted to 7-bit" in text, text[:3000]
    assert "header contains 8-bit" in text, text[:3000]
    assert fake.messages == []
    assert not any(c.startswith(("MAIL", "DATA", "BDAT")) for _, c in fake.commands)


def test_connection_reused_for_another_domain_on_the_same_mx(world):
    """fake.test and slow.test both have mx.fake.test as their MX: the
    connection that delivered one domain's mail carries the other's too
    (reuse per MX host, as for domains hosted by one provider)."""
    def script(n, cmd):
        c = cmd.upper()
        if n == 1 and c == ".":
            time.sleep(0.5)  # both domains' jobs are waiting by now
        if n >= 2 and c.startswith("EHLO"):
            time.sleep(2)    # any second connection is slow to get going
        return normal_reply(cmd)

    fake = world.fake(script)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "m@a.test", "carol@fake.test", "erin@slow.test")
    msg, mid = send(a, "m@a.test", "shared mx")
    wait_for(lambda: len(fake.messages) == 2, 15, "both copies")
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    assert [n for n, _ in fake.messages] == [1, 1], fake.messages
    first = [c for n, c in fake.commands if n == 1]
    rcpts = sorted(c for c in first if c.startswith("RCPT"))
    assert rcpts == ["RCPT TO:<carol@fake.test>", "RCPT TO:<erin@slow.test>"], first
    assert len([c for c in first if c.startswith("MAIL")]) == 2, first
    assert a.wait_log(r"action=reuse mx=mx\.fake\.test ip=%s from=(fake|slow)\.test"
                      % re.escape(HOST_FAKE))
    for _, body in fake.messages:
        assert body.endswith(msg)


def test_reload_applies_a_new_resolver(world):
    """dns.resolver changed + SIGHUP: the queue runner asks the new one
    (issue 27): a message stuck on a dead resolver is delivered after the
    reload, without a restart."""
    b = world.peer(HOST_B, "b.test", ["bob@b.test"])
    dead = "127.0.0.1:%d" % (world.base + 54)  # nothing listens there
    a = world.peer(HOST_A, "a.test", ["alice@a.test"],
                   conf={"dns.resolver": dead, "queue.timeout.dns": "2s"})
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")
    msg, mid = send(a, "x@a.test", "resolver swap")
    wait_for(lambda: [r for r in a.queue_rows() if int(r["ATTEMPTS"]) >= 1], 15,
             "a failed attempt on the dead resolver")
    a.set_config({"dns.resolver": "127.0.0.1:%d" % world.dns_port})
    os.kill(a.pid, signal.SIGHUP)
    assert a.wait_log(r"queue\[\d+\] queue action=reload key=dns\.resolver "
                      r"resolver=127\.0\.0\.1:%d" % world.dns_port, 5)
    a.cli_ok("queue", "retry", a.queue_rows()[0]["ID"])
    inbox_with(b, "bob@b.test", "resolver swap", seconds=15)
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
