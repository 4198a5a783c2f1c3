"""Interop with a real Postfix (Debian package), both directions, with
STARTTLS on both sides:

    dnsmasq 127.0.0.1:DNS    a.test  MX mx.a.test  (127.0.0.2, Tern A)
                             pf.test MX mx.pf.test (127.0.0.5, Postfix)
    Tern A  127.0.0.2   alias x@a.test -> carol@pf.test
    Tern B  127.0.0.3   bob@b.test
    Postfix 127.0.0.5   smtpd on PORT (self-signed cert, TLS "may"),
                        pf.test -> virtual(8) Maildir, b.test -> transport
                        smtp:[127.0.0.3]:PORT (Tern B), smtp TLS "may"

Tern -> Postfix: the file in carol's Maildir ends with the original bytes
(LF line ends, as Postfix stores them).  Postfix -> Tern: `tern mail cat`
at B shows Postfix's Received: and the original bytes.

Postfix runs from a temp folder (config, queue, data, log), like
bench/smtp/postfix-peer.sh; its master needs root.  Skipped when Postfix
is not installed or we are not root.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import SMTPRaw, timeout
from test_outbound import (DNSMASQ, FAST, HOST_A, HOST_B, Peer, free_udp, inbox_with,
                           pick_world_ports, send, wait_for)

HOST_PF = "127.0.0.5"
POSTFIX = "/usr/sbin/postfix"
OPENSSL = shutil.which("openssl")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(POSTFIX),
                       reason="postfix is not installed (bench/smtp/postfix-peer.sh installs it)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="Postfix's master must run as root"),
    pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq is not installed"),
    pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed"),
]


def port_free(host, port):
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class DNS:
    def __init__(self, port):
        self.logpath = tempfile.mktemp(prefix="tern-dnsmasq-pf-", suffix=".log")
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--port=%d" % port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--local=/test/", "--user=root",
                "--mx-host=a.test,mx.a.test,10", "--host-record=mx.a.test,%s" % HOST_A,
                "--mx-host=b.test,mx.b.test,10", "--host-record=mx.b.test,%s" % HOST_B,
                "--mx-host=pf.test,mx.pf.test,10", "--host-record=mx.pf.test,%s" % HOST_PF]
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and free_udp(port):
            assert self.proc.poll() is None, open(self.logpath).read()
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


class Postfix:
    """A Postfix instance from a temp folder."""

    def __init__(self, host, port, relay_to):
        self.dir = tempfile.mkdtemp(prefix="tern-postfix-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "conf")
        self.mail = os.path.join(self.dir, "mail")
        self.logpath = os.path.join(self.dir, "postfix.log")
        os.makedirs(self.conf)
        os.makedirs(os.path.join(self.dir, "queue"))
        os.makedirs(os.path.join(self.dir, "data"))
        shutil.chown(os.path.join(self.dir, "data"), "postfix", "postfix")
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.mail, "carol", "Maildir", sub))
        subprocess.run(["chown", "-R", "5000:5000", self.mail], check=True)
        subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem", "-out",
                        "cert.pem", "-days", "2", "-subj", "/CN=mx.pf.test", "-addext",
                        "subjectAltName=DNS:mx.pf.test"], cwd=self.conf, check=True,
                       capture_output=True)
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            f.write("carol@pf.test carol/Maildir/\n")
        with open(os.path.join(self.conf, "transport"), "w") as f:
            f.write("b.test smtp:[%s]:%d\n" % relay_to)
        d = self.dir
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
config_directory = {d}/conf
queue_directory = {d}/queue
data_directory = {d}/data
meta_directory = /etc/postfix
myhostname = mx.pf.test
mydomain = pf.test
myorigin = $myhostname
mydestination = localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = $myhostname ESMTP
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
maillog_file_prefixes = {d}
maillog_file = {d}/postfix.log
smtp_dns_support_level = disabled
smtp_host_lookup = native
transport_maps = hash:{d}/conf/transport
virtual_mailbox_domains = pf.test
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = hash:{d}/conf/vmailbox
virtual_uid_maps = static:5000
virtual_gid_maps = static:5000
virtual_minimum_uid = 5000
virtual_transport = virtual
smtpd_tls_security_level = may
smtpd_tls_cert_file = {d}/conf/cert.pem
smtpd_tls_key_file = {d}/conf/key.pem
smtpd_tls_received_header = yes
smtp_tls_security_level = may
smtp_tls_loglevel = 1
""".format(d=d, host=host))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write("""{host}:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""".format(host=host, port=port))
        for m in ("vmailbox", "transport"):
            subprocess.run(["postmap", "-c", self.conf, "hash:%s/%s" % (self.conf, m)],
                           check=True)
        subprocess.run([POSTFIX, "-c", self.conf, "check"], capture_output=True)
        r = subprocess.run([POSTFIX, "-c", self.conf, "start"], capture_output=True)
        assert r.returncode == 0, (r, self.log())
        self.host, self.port = host, port
        deadline = time.monotonic() + timeout(10)
        while port_free(host, port):
            assert time.monotonic() < deadline, "postfix does not listen: %s" % self.log()
            time.sleep(0.1)

    def log(self):
        try:
            return open(self.logpath, "rb").read().decode("utf-8", "replace")
        except OSError:
            return ""

    def maildir(self, user):
        d = os.path.join(self.mail, user, "Maildir", "new")
        return [os.path.join(d, n) for n in sorted(os.listdir(d))]

    def stop(self):
        subprocess.run([POSTFIX, "-c", self.conf, "stop"], capture_output=True)
        pidf = os.path.join(self.dir, "queue", "pid", "master.pid")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                pid = int(open(pidf).read().strip())
                os.kill(pid, 0)
            except (OSError, ValueError):
                break
            time.sleep(0.1)
        else:
            subprocess.run([POSTFIX, "-c", self.conf, "abort"], capture_output=True)

    def cleanup(self, keep):
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def pfworld(tern_bin, request):
    for _ in range(20):
        base, dns_port = pick_world_ports()
        if port_free(HOST_PF, base + 25):
            break
    w = type("W", (), {})()
    w.base = base
    w.dns = DNS(dns_port)
    w.peers = []
    w.pf = None

    def peer(host, domain, users):
        p = Peer(tern_bin, host, domain, base, dns_port, users)
        w.peers.append(p)
        p.start()
        return p

    w.peer = peer
    try:
        w.pf = Postfix(HOST_PF, base + 25, (HOST_B, base + 25))
        yield w
    finally:
        failed = request.session.testsfailed > 0
        if w.pf:
            w.pf.stop()
            w.pf.cleanup(failed)
        for p in w.peers:
            p.stop()
            p.check_log()
            p.cleanup(keep=failed)
        w.dns.stop()


def test_tern_to_postfix(pfworld):
    a = pfworld.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "carol@pf.test")
    # send() writes the body as is: "..leading" is a stuffed ".leading".
    body = "Line one.\r\n..leading dot\r\nLast line.\r\n"
    msg, mid = send(a, "x@a.test", "to postfix", body=body,
                    extra="Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n")
    msg = msg.replace(b"\r\n..leading", b"\r\n.leading")
    files = wait_for(lambda: pfworld.pf.maildir("carol"), 20,
                     "the message in Postfix's Maildir (log: %s)" % pfworld.pf.logpath)
    assert len(files) == 1
    got = open(files[0], "rb").read()
    # Postfix's own lines on top, then Tern A's Received:, then the bytes.
    assert got.startswith(b"Return-Path: <alice@a.test>\nX-Original-To: carol@pf.test\n"
                          b"Delivered-To: carol@pf.test\n"
                          b"Received: from mx.a.test (localhost [127.0.0.1])\n"
                          b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"), \
        repr(got[:600])
    assert re.search(rb"\n\tby mx\.pf\.test \(Postfix\) with ESMTPS id [0-9A-F]+\n"
                     rb"\tfor <carol@pf\.test>; ", got), got[:600]
    tern_received = got.index(b"\nReceived: from client.example.net") + 1
    assert b"by mx.a.test (Tern) with ESMTP id" in got[tern_received:tern_received + 200]
    assert got.endswith(msg.replace(b"\r\n", b"\n")), got[-300:]
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue at A")
    trace = a.cli_ok("trace", mid).stdout.decode()
    # Postfix offers CHUNKING, so the message went as one BDAT chunk
    # (RFC 3030): Postfix's reply to BDAT names the octets it took, which
    # are the size of the queued message.
    m = re.search(r"attempt   carol@pf\.test via mx\.pf\.test \[127\.0\.0\.5\]: "
                  r"250 2\.0\.0 Ok: (\d+) bytes queued as [0-9A-F]+\n"
                  r" +TLS 1\.3, certificate not verified: self-signed certificate, "
                  r"cipher TLS_AES_256_GCM_SHA384\n", trace)
    assert m, trace
    assert re.match(r"Message 1 from alice@a\.test, %s bytes," % m.group(1), trace), trace


def test_postfix_to_tern(pfworld):
    b = pfworld.peer(HOST_B, "b.test", ["bob@b.test"])
    mid = "<%s@pf.test>" % uuid.uuid4().hex
    msg = ("From: Carol <carol@pf.test>\r\nTo: Bob <bob@b.test>\r\nSubject: from postfix\r\n"
           "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\nMessage-ID: %s\r\n\r\n"
           "Hello from Postfix.\r\n..dot stuffed\r\n" % mid).encode()
    with SMTPRaw(HOST_PF, pfworld.pf.port) as c:
        assert c.banner == (220, ["mx.pf.test ESMTP"])
        c.ehlo()
        assert c.cmd("MAIL FROM:<carol@pf.test>")[0] == 250
        code, lines = c.cmd("RCPT TO:<bob@b.test>")
        assert code == 250, lines
        assert c.cmd("DATA")[0] == 354
        c.send(msg + b".\r\n")
        code, lines = c.read_reply()
        assert code == 250, lines
        c.cmd("QUIT")
    rows = inbox_with(b, "bob@b.test", "from postfix", seconds=30)
    stored = b.mail_cat("bob@b.test", "INBOX", rows[0]["UID"])
    # B's Received: says Postfix came over TLS (ESMTPS), then Postfix's own.
    assert re.match(rb"Return-Path: <carol@pf\.test>\r\nReceived: from mx\.pf\.test "
                    rb"\(\[127\.0\.0\.1\]\)\r\n\tby mx\.b\.test \(Tern\) with ESMTPS\r\n"
                    rb"\t\(using TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384\) id [0-9a-z]+\r\n"
                    rb"\tfor <bob@b\.test>; [^\r\n]+\r\n"
                    rb"Received: from client\.example\.net \(localhost \[127\.0\.0\.1\]\)\r\n"
                    rb"\tby mx\.pf\.test \(Postfix\) with ESMTP id [0-9A-F]+\r\n"
                    rb"\tfor <bob@b\.test>; ", stored), repr(stored[:600])
    # Postfix changes nothing in the message itself (Date and Message-ID given);
    # the leading dot arrives unstuffed on both hops.
    assert stored.endswith(msg.replace(b"\r\n..dot", b"\r\n.dot")), repr(stored[-300:])
    log = pfworld.pf.log()
    assert re.search(r"TLS connection established to \[?127\.0\.0\.3\]?\S*: TLSv1\.3", log), \
        log[-2000:]
