"""Outbound STARTTLS (RFC 3207, opportunistic per RFC 7435): Tern A relays
to Tern B (or a scripted fake) and records per attempt the TLS version,
cipher and whether the certificate was verified; `tern trace` shows it.

Reuses the world of test_outbound.py (dnsmasq, Tern A on 127.0.0.2 for
a.test, Tern B on 127.0.0.3 for b.test, mx.fake.test on 127.0.0.4).
"""

import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import threading

import pytest

from test_outbound import (HOST_A, HOST_B, HOST_FAKE, PASSWORD, inbox_with, send, wait_for,
                           world)  # noqa: F401  (world is a fixture)

OPENSSL = shutil.which("openssl")

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


def openssl(*args, cwd):
    r = subprocess.run([OPENSSL] + list(args), cwd=cwd, capture_output=True)
    assert r.returncode == 0, r.stderr.decode()


@pytest.fixture
def pki():
    """A throw-away CA with a server certificate for mx.b.test and one for
    a wrong name.  Returns a dict of paths."""
    d = tempfile.mkdtemp(prefix="tern-pki-")
    os.chmod(d, 0o755)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Tern Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    out = {"dir": d, "ca": os.path.join(d, "ca.pem")}
    for tag, name in (("good", "mx.b.test"), ("wrong", "other.example")):
        with open(os.path.join(d, tag + ".ext"), "w") as f:
            f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n"
                    "basicConstraints=CA:FALSE\n" % name)
        openssl("req", *ec, "-keyout", tag + ".key", "-out", tag + ".csr",
                "-subj", "/CN=" + name, cwd=d)
        openssl("x509", "-req", "-in", tag + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", tag + ".pem", "-days", "2",
                "-extfile", tag + ".ext", cwd=d)
        for ext in ("key", "pem"):
            os.chmod(os.path.join(d, "%s.%s" % (tag, ext)), 0o644)
        out[tag] = (os.path.join(d, tag + ".pem"), os.path.join(d, tag + ".key"))
    os.chmod(out["ca"], 0o644)
    yield out
    shutil.rmtree(d, ignore_errors=True)


def attempt_tls_lines(trace):
    """The lines right after each "attempt" line of `tern trace` output."""
    lines = trace.split("\n")
    return [lines[i + 1].strip() for i, l in enumerate(lines)
            if re.search(r"\sattempt\s", l) and i + 1 < len(lines)]


def relay_one(world, b_conf=None, a_conf=None, subject="tls one"):
    """Sends one message A -> B; returns (A, B, stored bytes at B, trace)."""
    b = world.peer(HOST_B, "b.test", ["bob@b.test"], conf=b_conf)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"], conf=a_conf)
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")
    msg, mid = send(a, "x@a.test", subject)
    rows = inbox_with(b, "bob@b.test", subject)
    stored = b.mail_cat("bob@b.test", "INBOX", rows[0]["UID"])
    assert stored.endswith(msg), stored[-300:]
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    return a, b, stored, a.cli_ok("trace", mid).stdout.decode()


RECEIVED_TLS13 = (rb"Return-Path: <alice@a\.test>\r\nReceived: from mx\.a\.test \(\[127\.0\.0\.1\]\)"
                  rb"\r\n\tby mx\.b\.test \(Tern\) with ESMTPS\r\n"
                  rb"\t\(using TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384\) id [0-9a-z]+\r\n"
                  rb"\tfor <bob@b\.test>; ")


def test_self_signed_is_encrypted_not_verified(world):
    # B has the self-signed certificate `tern init` made for mx.b.test.
    a, b, stored, trace = relay_one(world)
    assert re.match(RECEIVED_TLS13, stored), repr(stored[:400])
    assert attempt_tls_lines(trace) == [
        "TLS 1.3, certificate not verified: self-signed certificate, "
        "cipher TLS_AES_256_GCM_SHA384"], trace
    assert "delivered" in trace, trace


def test_test_ca_verified(world, pki):
    cert, key = pki["good"]
    a, b, stored, trace = relay_one(world, b_conf={"tls.cert": cert, "tls.key": key},
                                    a_conf={"outbound.ca_file": pki["ca"]})
    assert re.match(RECEIVED_TLS13, stored), repr(stored[:400])
    assert attempt_tls_lines(trace) == [
        "TLS 1.3, certificate verified, cipher TLS_AES_256_GCM_SHA384"], trace
    # The connection log line says so as well.
    log = open(a.logpath, "rb").read().decode("utf-8", "replace")
    assert re.search(r"smtp-client peer=mx\.b\.test ip=127\.0\.0\.3 action=starttls "
                     r"version=TLSv1\.3 cipher=TLS_AES_256_GCM_SHA384 verified=yes", log), log


def test_test_ca_wrong_name_not_verified(world, pki):
    cert, key = pki["wrong"]
    a, b, stored, trace = relay_one(world, b_conf={"tls.cert": cert, "tls.key": key},
                                    a_conf={"outbound.ca_file": pki["ca"]})
    assert re.match(RECEIVED_TLS13, stored), repr(stored[:400])
    assert attempt_tls_lines(trace) == [
        "TLS 1.3, certificate not verified: hostname mismatch, "
        "cipher TLS_AES_256_GCM_SHA384"], trace


def test_outbound_tls_off(world):
    a, b, stored, trace = relay_one(world, a_conf={"outbound.tls": "off"})
    assert re.match(rb"Return-Path: <alice@a\.test>\r\nReceived: from mx\.a\.test "
                    rb"\(\[127\.0\.0\.1\]\)\r\n\tby mx\.b\.test \(Tern\) with ESMTP id ",
                    stored), stored[:300]
    assert attempt_tls_lines(trace) == ["no TLS (outbound TLS is off)"], trace


def test_bad_ca_file_is_refused_or_logged(world, tmp_path):
    # A CA file that cannot be loaded: outbound TLS is turned off and the
    # reason logged; mail still goes (in plaintext).
    bad = tmp_path / "bad-ca.pem"
    bad.write_bytes(b"not a certificate\n")
    os.chmod(str(tmp_path), 0o755)
    os.chmod(str(bad), 0o644)
    a, b, stored, trace = relay_one(world, a_conf={"outbound.ca_file": str(bad)})
    assert attempt_tls_lines(trace) == ["no TLS (outbound TLS is off)"], trace
    log = open(a.logpath, "rb").read().decode("utf-8", "replace")
    assert "queue action=tls_init error=\"outbound.ca_file = %s: cannot load" % bad in log, log


class BrokenTLS:
    """mx.fake.test: offers STARTTLS and says 220 to it, then answers the
    ClientHello with plaintext (connection 1).  Later connections offer
    STARTTLS too and accept one message in plaintext."""

    def __init__(self, host, port):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.commands = []   # (connection number, line)
        self.messages = []
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        n = 0
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            n += 1
            try:
                self.serve(n, c)
            except OSError:
                pass
            finally:
                c.close()

    def serve(self, n, c):
        c.settimeout(10)
        f = c.makefile("rb")

        def put(s):
            c.sendall(s.encode())

        put("220 fake.test ESMTP\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("latin-1")
            self.commands.append((n, cmd))
            u = cmd.upper()
            if u.startswith("EHLO"):
                put("250-fake.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            elif u == "STARTTLS":
                put("220 2.0.0 Ready to start TLS\r\n")
                c.recv(4096)  # the ClientHello
                put("554 5.0.0 this is not TLS\r\n")
                while c.recv(4096):
                    pass
                return
            elif u == "DATA":
                put("354 go ahead\r\n")
                body = b""
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                    body += l
                self.messages.append((n, body))
                put("250 2.0.0 Ok: queued\r\n")
            elif u == "QUIT":
                put("221 2.0.0 bye\r\n")
                return
            else:
                put("250 2.1.0 Ok\r\n")

    def stop(self):
        self.stopping = True
        self.lsock.close()
        self.thread.join(5)


def test_handshake_failure_retried_without_tls(world):
    fake = BrokenTLS(HOST_FAKE, world.base + 25)
    try:
        a = world.peer(HOST_A, "a.test", ["alice@a.test"])
        a.cli_ok("alias", "add", "f@a.test", "someone@fake.test")
        msg, mid = send(a, "f@a.test", "broken tls")
        wait_for(lambda: fake.messages, 15, "the message at the fake server")
        wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    finally:
        fake.stop()
    # Connection 1: EHLO, STARTTLS, handshake fails; connection 2 (same
    # address, at once): EHLO and the transaction in plaintext, no STARTTLS.
    assert [c for n, c in fake.commands if n == 1] == ["EHLO mx.a.test", "STARTTLS"]
    assert [c for n, c in fake.commands if n == 2] == [
        "EHLO mx.a.test", "MAIL FROM:<alice@a.test>", "RCPT TO:<someone@fake.test>", "DATA",
        "QUIT"]
    assert fake.messages[0][1].endswith(msg)
    trace = a.cli_ok("trace", mid).stdout.decode()
    tls = attempt_tls_lines(trace)
    assert len(tls) == 1, trace
    assert re.fullmatch(r"no TLS \(TLS handshake with mx\.fake\.test \[127\.0\.0\.4\] failed: "
                        r"[^)]+; sent without TLS\)", tls[0]), trace
    assert "someone@fake.test via mx.fake.test [127.0.0.4]: 250 2.0.0 Ok: queued" in trace, trace


# ----------------------------------------------------------- relay host

def relay_world(world, pki, tmp_path, password):
    """B (b.test, elsewhere.test and a.test's relay account alice@a.test)
    has the test CA's certificate for mx.b.test; A sends everything through
    B's submission port with AUTH (outbound.relay)."""
    cert, key = pki["good"]
    b = world.peer(HOST_B, "b.test", ["bob@b.test"],
                   conf={"tls.cert": cert, "tls.key": key})
    b.cli_ok("domain", "add", "a.test")
    b.cli_ok("domain", "add", "elsewhere.test")
    b.cli_ok("user", "add", "alice@a.test", "--password", PASSWORD)
    b.cli_ok("user", "add", "dave@elsewhere.test", "--password", PASSWORD)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"], start=False)
    # Readable by the unprivileged queue process (tests run as root).
    pw = pathlib.Path(a.dir) / "relay.pw"
    pw.write_text(password + "\n")
    os.chmod(str(pw), 0o644)
    a.set_config({"outbound.ca_file": pki["ca"],
                  "outbound.relay": "mx.b.test:%d" % (world.base + 587),
                  "outbound.relay_user": "alice@a.test",
                  "outbound.relay_password_file": str(pw)})
    a.start()
    # elsewhere.test is in no DNS zone: only the relay host can take it.
    a.cli_ok("alias", "add", "x@a.test", "dave@elsewhere.test")
    return a, b, pw


def test_relay_host_with_auth(world, pki, tmp_path):
    a, b, pw = relay_world(world, pki, tmp_path, PASSWORD)
    msg, mid = send(a, "x@a.test", "via the relay")
    rows = inbox_with(b, "dave@elsewhere.test", "via the relay")
    stored = b.mail_cat("dave@elsewhere.test", "INBOX", rows[0]["UID"])
    assert stored.endswith(msg), stored[-300:]
    # B took it on its submission port, over TLS, authenticated.
    assert re.match(rb"Return-Path: <alice@a\.test>\r\nReceived: from mx\.a\.test "
                    rb"\(\[127\.0\.0\.1\]\)\r\n\tby mx\.b\.test \(Tern\) with ESMTPSA\r\n",
                    stored), stored[:400]
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    trace = a.cli_ok("trace", mid).stdout.decode()
    assert re.search(r"attempt   dave@elsewhere\.test via mx\.b\.test \[127\.0\.0\.3\]: 250 ",
                     trace), trace
    assert attempt_tls_lines(trace) == [
        "TLS 1.3, certificate verified, cipher TLS_AES_256_GCM_SHA384"], trace
    log = open(a.logpath, "rb").read().decode("utf-8", "replace")
    assert PASSWORD not in log
    log = open(b.logpath, "rb").read().decode("utf-8", "replace")
    assert re.search(r"action=auth mech=PLAIN user=alice@a\.test result=ok", log), log


def test_relay_host_wrong_password_defers(world, pki, tmp_path):
    a, b, pw = relay_world(world, pki, tmp_path, "not the password")
    msg, mid = send(a, "x@a.test", "wrong password")

    def deferred():
        rows = a.queue_rows()
        return rows if rows and "refused our credentials" in \
            a.cli_ok("trace", mid).stdout.decode() else None
    wait_for(deferred, 15, "a deferral for the refused credentials")
    trace = a.cli_ok("trace", mid).stdout.decode()
    assert re.search(r"mx\.b\.test \[127\.0\.0\.3\] refused our credentials: 535 5\.7\.8 ",
                     trace), trace
    assert "bounced" not in trace
    assert "In plain words: The relay host this server sends all mail through" in trace, trace
    # Mended: the next retry goes through.
    pw.write_text(PASSWORD + "\n")
    rows = inbox_with(b, "dave@elsewhere.test", "wrong password", seconds=20)
    assert len(rows) == 1
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    assert a.find_messages("alice@a.test", "Undelivered") == []


def test_relay_host_unverified_gets_no_password(world, pki, tmp_path):
    """Without the CA, B's certificate does not verify: the password is
    not sent and the mail waits."""
    a, b, pw = relay_world(world, pki, tmp_path, PASSWORD)
    a.stop()
    a.set_config({"outbound.ca_file": ""})
    a.start()
    msg, mid = send(a, "x@a.test", "unverified relay")
    wait_for(lambda: "did not verify: the relay password is not sent" in
             a.cli_ok("trace", mid).stdout.decode(), 15, "the deferral")
    assert len(a.queue_rows()) == 1
    log = open(b.logpath, "rb").read().decode("utf-8", "replace")
    assert "action=auth " not in log and "action=auth_fail" not in log, log
