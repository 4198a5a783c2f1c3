"""TLS: SMTP STARTTLS (RFC 3207), POP3 STLS (RFC 2595), implicit TLS on
pop3s (RFC 8314), the protocol/cipher policy, SNI, reload on SIGHUP and
start-up errors (docs/security.md, docs/smtp.md, docs/pop3.md).

Clients: openssl s_client, Python's ssl/smtplib/poplib and raw sockets for
the STARTTLS injection tests.  Certificates other than the one `tern init`
makes are made with openssl in the tests (conftest.make_cert).
"""
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import (HOST, HOSTNAME, SMTPRaw, make_cert, parse_received, split_stored,
                      timeout)

PASSWORD = "secret"
ALICE = "alice@example.test"
SENDER = "sender@client.example"
MODULE_CONF = {"workers": 2, "allow_plaintext_loopback": "no", "auth.scram_plus": "yes"}
PLAINTEXT_REFUSED = b"-ERR [AUTH] Plaintext authentication disallowed without TLS"
TLS12_CIPHERS = {"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
                 "ECDHE-ECDSA-AES128-GCM-SHA256"}


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def client_ctx(**kw):
    """A client context that accepts our self-signed certificates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def s_client(port, *args, starttls=None, input=b"QUIT\n", wait=10):
    """Runs openssl s_client -brief against us, sending input (lines; -crlf,
    and -ign_eof so that it waits for the server to close); returns (rc,
    stdout, stderr)."""
    cmd = ["openssl", "s_client", "-connect", "%s:%d" % (HOST, port), "-brief", "-crlf",
           "-ign_eof"]
    if starttls:
        cmd += ["-starttls", starttls]
    cmd += list(args)
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout(wait))
    return (r.returncode, r.stdout.decode("utf-8", "replace"),
            r.stderr.decode("utf-8", "replace"))


def peer_cn(stderr):
    m = re.search(r"^Peer certificate: (.*)$", stderr, re.M)
    assert m, "no peer certificate in s_client output:\n%s" % stderr
    return m.group(1).strip()


def listeners(srv):
    """(name, port, s_client -starttls value) of every TLS entry point."""
    return [("smtp", srv.smtp_port, "smtp"), ("pop3", srv.pop3_port, "pop3"),
            ("pop3s", srv.pop3s_port, None)]


def new_token():
    return uuid.uuid4().hex


def smtp_send_tls(srv, token, rcpt=ALICE):
    """Delivers one message over STARTTLS with smtplib."""
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: tls %s\r\n\r\nHello over TLS.\r\n"
           % (SENDER, rcpt, token)).encode()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.ehlo("client.example.net")
        assert s.has_extn("starttls")
        code, text = s.starttls(context=client_ctx())
        assert (code, text) == (220, b"2.0.0 Ready to start TLS")
        s.ehlo("client.example.net")
        assert not s.has_extn("starttls")
        assert s.sendmail(SENDER, [rcpt], msg) == {}
    return msg


class Raw:
    """A raw line client that can switch to TLS in place."""

    def __init__(self, port, ctx=None):
        self.sock = socket.create_connection((HOST, port), timeout=timeout(10))
        if ctx is not None:
            self.sock = ctx.wrap_socket(self.sock)
        self.buf = b""

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
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server (pending %r)" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def smtp_reply(self):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line[3:4] == b" ":
                return lines

    def pending(self, wait=0.5):
        """Bytes the server sent that nobody read yet."""
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

    def starttls(self, ctx=None, server_hostname=None):
        assert self.buf == b"", "unread bytes before TLS: %r" % self.buf
        self.sock = (ctx or client_ctx()).wrap_socket(self.sock, server_hostname=server_hostname)


def pop3_multi(c):
    lines = []
    while True:
        line = c.line()
        if line == b".":
            return lines
        lines.append(line)


# ------------------------------------------------------ s_client, policy

@pytest.mark.parametrize("which", ["smtp", "pop3", "pop3s"])
def test_s_client_tls13(srv, which):
    name, port, starttls = [l for l in listeners(srv) if l[0] == which][0]
    rc, out, err = s_client(port, starttls=starttls)
    assert "CONNECTION ESTABLISHED" in err, err
    assert "Protocol version: TLSv1.3" in err, err
    assert peer_cn(err) == "CN = " + HOSTNAME
    # the protocol answers over TLS
    if which == "smtp":
        assert "221 2.0.0 Bye" in out, out
    else:
        assert "+OK Bye" in out, out


@pytest.mark.parametrize("which", ["smtp", "pop3", "pop3s"])
def test_tls12_uses_ecdhe_aead(srv, which):
    name, port, starttls = [l for l in listeners(srv) if l[0] == which][0]
    rc, out, err = s_client(port, "-tls1_2", starttls=starttls)
    assert "Protocol version: TLSv1.2" in err, err
    m = re.search(r"^Ciphersuite: (\S+)", err, re.M)
    assert m and m.group(1) == "ECDHE-ECDSA-AES256-GCM-SHA384", err  # server preference
    # CBC and non-ECDHE suites are refused even if the client offers only them
    for cipher in ("ECDHE-ECDSA-AES128-SHA", "AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-SHA384"):
        rc, out, err = s_client(port, "-tls1_2", "-cipher", cipher, starttls=starttls)
        assert "CONNECTION ESTABLISHED" not in err, (cipher, err)
        assert rc != 0


@pytest.mark.parametrize("which", ["smtp", "pop3", "pop3s"])
@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_protocols_refused(srv, which, version):
    name, port, starttls = [l for l in listeners(srv) if l[0] == which][0]
    # SECLEVEL=0 so that the client really offers TLS 1.0/1.1: the refusal
    # must come from the server
    rc, out, err = s_client(port, version, "-cipher", "DEFAULT@SECLEVEL=0",
                            starttls=starttls)
    assert rc != 0
    assert "CONNECTION ESTABLISHED" not in err
    assert "alert protocol version" in err, err


def test_groups_are_x25519_and_p256(srv):
    for group, ok in (("X25519", True), ("P-256", True), ("P-384", False)):
        rc, out, err = s_client(srv.pop3s_port, "-groups", group)
        assert ("CONNECTION ESTABLISHED" in err) == ok, (group, err)


def test_no_renegotiation(srv):
    p = subprocess.Popen(["openssl", "s_client", "-connect", "%s:%d" % (HOST, srv.pop3s_port),
                          "-brief", "-crlf", "-tls1_2"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(timeout(1))
        p.stdin.write(b"R\n")  # s_client's "renegotiate" command
        p.stdin.flush()
        time.sleep(timeout(1))
        out, err = p.communicate(timeout=timeout(10))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = err.decode("utf-8", "replace")
    assert "CONNECTION ESTABLISHED" in err and "RENEGOTIATING" in err
    assert "no renegotiation" in err, err


def test_session_resumes_on_any_worker(srv):
    """Tickets are encrypted with a key all workers share: every reconnect
    resumes, whichever worker accepts it."""
    ctx = client_ctx()
    with socket.create_connection((HOST, srv.pop3s_port), timeout=timeout(10)) as raw:
        with ctx.wrap_socket(raw) as s:
            s.recv(100)  # the greeting; the TLS 1.3 ticket came before it
            s.sendall(b"QUIT\r\n")
            s.recv(100)
            session = s.session
    assert session is not None and session.has_ticket
    for _ in range(8):
        with socket.create_connection((HOST, srv.pop3s_port), timeout=timeout(10)) as raw:
            with ctx.wrap_socket(raw, session=session) as s:
                assert s.recv(100).startswith(b"+OK")
                assert s.session_reused
                s.sendall(b"QUIT\r\n")
                s.recv(100)
    lines = srv.wait_log(r"pop3 session=\S+ client=\S+ action=tls .* resumed=yes", 3)
    assert len(lines) >= 8
    workers = {re.search(r"(worker\d+)\[", l).group(1) for l in lines}
    assert workers  # which workers served them (both, usually)


# ------------------------------------------------------------------ SMTP

def test_smtp_starttls_delivery_received_header(srv):
    tok = new_token()
    msg = smtp_send_tls(srv, tok)
    stored = srv.fetch_one(ALICE, tok)
    received, rest = split_stored(stored, SENDER)
    f = parse_received(received)
    assert f["proto"] == "ESMTPS"
    assert f["tls_version"] == "TLSv1.3"
    assert f["tls_cipher"] == "TLS_AES_256_GCM_SHA384"
    assert f["helo"] == "client.example.net" and f["for"] == ALICE
    assert rest == msg
    lines = srv.wait_log(r"smtp id=%s .* tls=TLSv1\.3 result=250" % f["id"], 3)
    assert len(lines) == 1, srv.log()[-3000:]


def test_smtp_plain_delivery_says_esmtp_and_tls_no(srv):
    tok = new_token()
    msg = ("Subject: plain %s\r\n\r\nx\r\n" % tok).encode()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        assert s.sendmail(SENDER, [ALICE], msg) == {}
    f = parse_received(split_stored(srv.fetch_one(ALICE, tok), SENDER)[0])
    assert f["proto"] == "ESMTP" and f["tls_version"] is None
    assert srv.wait_log(r"smtp id=%s .* tls=no result=250" % f["id"], 3)


def test_smtp_starttls_resets_state_and_misuse(srv):
    with Raw(srv.smtp_port) as c:
        assert c.line().startswith(b"220 ")
        c.send(b"EHLO client.example.net\r\n")
        ehlo = c.smtp_reply()
        assert b"250-STARTTLS" in ehlo
        c.send(b"STARTTLS now\r\n")
        assert c.smtp_reply() == [b"501 5.5.4 Syntax error in parameters"]
        c.send(b"MAIL FROM:<%s>\r\n" % SENDER.encode())
        assert c.smtp_reply() == [b"250 2.1.0 Ok"]
        c.send(b"STARTTLS\r\n")
        assert c.smtp_reply() == [b"220 2.0.0 Ready to start TLS"]
        c.starttls()
        # RFC 3207 4.2: back to the state after the greeting
        c.send(b"MAIL FROM:<%s>\r\n" % SENDER.encode())
        assert c.smtp_reply() == [b"503 5.5.1 Error: send HELO/EHLO first"]
        c.send(b"EHLO client.example.net\r\n")
        ehlo = c.smtp_reply()
        assert ehlo[0] == b"250-" + HOSTNAME.encode()
        assert b"250-STARTTLS" not in ehlo and ehlo[-1] == b"250 ENHANCEDSTATUSCODES"
        c.send(b"STARTTLS\r\n")
        assert c.smtp_reply() == [b"503 5.5.1 Error: TLS already active"]
        c.send(b"MAIL FROM:<%s>\r\n" % SENDER.encode())
        assert c.smtp_reply() == [b"250 2.1.0 Ok"]  # no nested MAIL: the old one is gone
        c.send(b"QUIT\r\n")
        assert c.smtp_reply() == [b"221 2.0.0 Bye"]


def test_smtp_starttls_injection_is_discarded(srv):
    """CVE-2011-0411 class: a command sent with STARTTLS in one packet must
    not be run after the handshake."""
    with Raw(srv.smtp_port) as c:
        c.line()
        c.send(b"EHLO client.example.net\r\n")
        c.smtp_reply()
        c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.net>\r\n")
        assert c.smtp_reply() == [b"220 2.0.0 Ready to start TLS"]
        assert c.pending(0.5) == b""  # RSET not answered in plaintext
        c.starttls()
        assert c.pending(0.7) == b""  # nor after the handshake
        c.send(b"EHLO client.example.net\r\n")
        ehlo = c.smtp_reply()
        assert ehlo[0] == b"250-" + HOSTNAME.encode(), ehlo
        c.send(b"MAIL FROM:<%s>\r\n" % SENDER.encode())
        assert c.smtp_reply() == [b"250 2.1.0 Ok"]  # the injected MAIL never ran
        c.send(b"QUIT\r\n")
        assert c.smtp_reply() == [b"221 2.0.0 Bye"]
    assert srv.wait_log(r"smtp session=\S+ client=\S+ action=starttls dropped=\d+", 3)


def test_smtp_plaintext_after_starttls_fails_handshake(srv):
    with Raw(srv.smtp_port) as c:
        c.line()
        c.send(b"STARTTLS\r\n")
        assert c.smtp_reply() == [b"220 2.0.0 Ready to start TLS"]
        c.send(b"RSET\r\n")  # a client that does not speak TLS after all
        c.sock.settimeout(timeout(5))
        data = b""
        try:
            while True:
                chunk = c.sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert b"250" not in data  # RSET never answered; the session is closed
    assert srv.wait_log(r"smtp session=\S+ client=\S+ action=tls result=failed error=", 3)


# ------------------------------------------------------------------ POP3

def test_pop3_capa_stls_and_login_after_tls(srv):
    tok = new_token()
    msg = smtp_send_tls(srv, tok)
    p = poplib.POP3(HOST, srv.pop3_port, timeout=timeout(10))
    try:
        caps = p.capa()
        assert "STLS" in caps and "USER" not in caps and caps["SASL"] == ["SCRAM-SHA-256"]
        with pytest.raises(poplib.error_proto) as e:
            p.user(ALICE)
        assert str(e.value) == str(PLAINTEXT_REFUSED)
        assert p.stls(context=client_ctx()) == b"+OK Begin TLS negotiation"
        caps = p.capa()
        assert "STLS" not in caps and "USER" in caps
        assert caps["SASL"] == ["PLAIN", "LOGIN", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"]
        assert p.user(ALICE) == b"+OK Send PASS"
        assert p.pass_(PASSWORD).startswith(b"+OK Logged in")
        n = len(p.list()[1])
        resp, lines, octets = p.retr(n)
        assert resp.startswith(b"+OK")
        body = b"\r\n".join(lines) + b"\r\n"
        assert body.endswith(msg)
        assert b"with ESMTPS" in body
    finally:
        p.quit()


def test_pop3_auth_plain_after_stls(srv):
    import base64
    with Raw(srv.pop3_port) as c:
        assert c.line().startswith(b"+OK")
        c.send(b"AUTH PLAIN\r\n")
        assert c.line() == PLAINTEXT_REFUSED
        c.send(b"STLS\r\n")
        assert c.line() == b"+OK Begin TLS negotiation"
        c.starttls()
        ir = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + PASSWORD.encode())
        c.send(b"AUTH PLAIN " + ir + b"\r\n")
        assert c.line().startswith(b"+OK Logged in")
        c.send(b"STLS\r\n")
        assert c.line() == b"-ERR Command not valid after login"
        c.send(b"QUIT\r\n")
        assert c.line() == b"+OK Bye"


def test_pop3_stls_injection_is_discarded(srv):
    with Raw(srv.pop3_port) as c:
        assert c.line().startswith(b"+OK")
        c.send(b"STLS\r\nCAPA\r\nUSER " + ALICE.encode() + b"\r\n")
        assert c.line() == b"+OK Begin TLS negotiation"
        assert c.pending(0.5) == b""
        c.starttls()
        assert c.pending(0.7) == b""  # CAPA never answered
        c.send(b"PASS " + PASSWORD.encode() + b"\r\n")
        assert c.line() == b"-ERR Send USER first"  # the injected USER is forgotten
        c.send(b"STLS\r\n")
        assert c.line() == b"-ERR Command not permitted when TLS active"
        c.send(b"QUIT\r\n")
        assert c.line() == b"+OK Bye"
    assert srv.wait_log(r"pop3 session=\S+ client=\S+ action=stls dropped=\d+", 3)


def test_pop3s_implicit_tls_login_retr(srv):
    tok = new_token()
    msg = smtp_send_tls(srv, tok)
    p = poplib.POP3_SSL(HOST, srv.pop3s_port, context=client_ctx(), timeout=timeout(10))
    try:
        assert p.getwelcome() == b"+OK Tern POP3 server ready"
        caps = p.capa()
        assert "STLS" not in caps and "USER" in caps
        assert p.user(ALICE) == b"+OK Send PASS"
        assert p.pass_(PASSWORD).startswith(b"+OK Logged in")
        n = len(p.list()[1])
        resp, lines, octets = p.retr(n)
        assert (b"\r\n".join(lines) + b"\r\n").endswith(msg)
    finally:
        p.quit()
    with Raw(srv.pop3s_port, ctx=client_ctx()) as c:
        assert c.line() == b"+OK Tern POP3 server ready"
        c.send(b"STLS\r\n")
        assert c.line() == b"-ERR Command not permitted when TLS active"


def test_pop3s_plaintext_client_is_dropped(srv):
    with socket.create_connection((HOST, srv.pop3s_port), timeout=timeout(10)) as s:
        s.sendall(b"CAPA\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert b"+OK" not in data


# ------------------------------------------------------------------- SNI

def test_sni_selects_certificate(make_server):
    srv = make_server(start=False)
    domains = os.path.join(srv.dir, "tls", "domains")
    make_cert(os.path.join(domains, "mail.example.org"), "mail.example.org")
    make_cert(os.path.join(domains, "*.example.net"), "wild.example.net",
              names=("*.example.net",), key="rsa")
    with open(os.path.join(domains, "README"), "w") as f:
        f.write("not a domain folder\n")
    srv.set_config({"tls.sni_dir": "tls/domains"})
    srv.start()
    for port, starttls in ((srv.pop3s_port, None), (srv.smtp_port, "smtp"),
                           (srv.pop3_port, "pop3")):
        cases = [("mail.example.org", "CN = mail.example.org"),
                 ("MAIL.Example.ORG", "CN = mail.example.org"),
                 ("imap.example.net", "CN = wild.example.net"),
                 ("a.b.example.net", "CN = " + HOSTNAME),
                 ("unknown.example.com", "CN = " + HOSTNAME)]
        for name, want in cases:
            rc, out, err = s_client(port, "-servername", name, starttls=starttls,
                                    )
            assert "CONNECTION ESTABLISHED" in err, (name, err)
            assert peer_cn(err) == want, (port, name, err)
        rc, out, err = s_client(port, "-noservername", starttls=starttls)
        assert peer_cn(err) == "CN = " + HOSTNAME
    assert srv.wait_log(r"action=tls version=TLSv1\.3 .* sni=mail\.example\.org", 3)


# ------------------------------------------------------------------ reload

def wait_tls_reload(srv, result, n_before, want):
    deadline = time.monotonic() + timeout(5)
    while time.monotonic() < deadline:
        lines = [l for l in srv.log().splitlines() if "tls action=reload result=" + result in l]
        if len(lines) - n_before >= want:
            return lines[n_before:]
        time.sleep(0.05)
    pytest.fail("no %d 'tls action=reload result=%s' lines:\n%s"
                % (want, result, srv.log()[-3000:]))


def count_log(srv, text):
    return sum(1 for l in srv.log().splitlines() if text in l)


def test_sighup_replaces_certificate_keeps_connections(make_server):
    srv = make_server(conf={"workers": 2})
    tls_dir = os.path.join(srv.dir, "tls")
    # an open TLS session of each kind
    old_smtp = smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10))
    old_smtp.ehlo("client.example.net")
    old_smtp.starttls(context=client_ctx())
    old_smtp.ehlo("client.example.net")
    old_pop = Raw(srv.pop3s_port, ctx=client_ctx())
    assert old_pop.line().startswith(b"+OK")
    old_cert = old_pop.sock.getpeercert(binary_form=True)

    # replace the default pair (as an admin would: new files, then HUP)
    staging = os.path.join(srv.dir, "staging")
    cert, key = make_cert(staging, "renewed.example.test")
    shutil.copy(cert, os.path.join(tls_dir, "cert.pem"))
    shutil.copy(key, os.path.join(tls_dir, "key.pem"))
    n = count_log(srv, "tls action=reload result=ok")
    os.kill(srv.pid, signal.SIGHUP)
    # the master and both workers
    wait_tls_reload(srv, "ok", n, 3)

    # new connections see the new certificate, on every listener
    for port, starttls in ((srv.pop3s_port, None), (srv.smtp_port, "smtp")):
        rc, out, err = s_client(port, starttls=starttls)
        assert peer_cn(err) == "CN = renewed.example.test", err
    # the old connections still work, with the old certificate
    assert old_pop.sock.getpeercert(binary_form=True) == old_cert
    old_pop.send(b"CAPA\r\n")
    assert old_pop.line() == b"+OK Capability list follows"
    assert b"USER" in pop3_multi(old_pop)
    old_pop.send(b"QUIT\r\n")
    assert old_pop.line() == b"+OK Bye"
    old_pop.close()
    tok = new_token()
    assert old_smtp.sendmail(SENDER, [ALICE], ("Subject: %s\r\n\r\nx\r\n" % tok).encode()) == {}
    old_smtp.quit()
    assert srv.find_messages(ALICE, tok)

    # a broken reload (key of another certificate) keeps the renewed pair
    other_cert, other_key = make_cert(os.path.join(srv.dir, "other"), "other.example.test")
    shutil.copy(other_key, os.path.join(tls_dir, "key.pem"))
    n = count_log(srv, "tls action=reload result=failed")
    os.kill(srv.pid, signal.SIGHUP)
    lines = wait_tls_reload(srv, "failed", n, 1)
    assert os.path.join(tls_dir, "key.pem") in lines[0]
    assert "does not match" in lines[0] and "old certificates kept" in lines[0]
    rc, out, err = s_client(srv.pop3s_port)
    assert peer_cn(err) == "CN = renewed.example.test"
    assert srv.alive()


# ------------------------------------------------------- start-up errors

def serve_fails(srv):
    r = subprocess.run([srv.bin, "-c", srv.conf, "serve"], capture_output=True,
                       timeout=timeout(20), stdin=subprocess.DEVNULL)
    return r.returncode, r.stderr.decode("utf-8", "replace")


def test_startup_missing_key(make_server):
    srv = make_server(start=False)
    key = os.path.join(srv.dir, "tls", "key.pem")
    os.unlink(key)
    code, err = serve_fails(srv)
    assert code == 2, err
    assert "tls.key = %s: No such file or directory" % key in err


def test_startup_mismatched_pair(make_server):
    srv = make_server(start=False)
    cert, key = make_cert(os.path.join(srv.dir, "other"), "other.example.test")
    shutil.copy(key, os.path.join(srv.dir, "tls", "key.pem"))
    code, err = serve_fails(srv)
    assert code == 2, err
    assert ("tls.key = %s: the key does not match the certificate %s"
            % (os.path.join(srv.dir, "tls", "key.pem"),
               os.path.join(srv.dir, "tls", "cert.pem"))) in err


def test_startup_bad_pem_and_bad_sni_folder(make_server):
    srv = make_server(start=False)
    cert = os.path.join(srv.dir, "tls", "cert.pem")
    with open(cert, "w") as f:
        f.write("this is not PEM\n")
    code, err = serve_fails(srv)
    assert code == 2 and "tls.cert = %s: no PEM certificate in the file" % cert in err, err
    # an SNI domain with a missing key
    srv2 = make_server(start=False)
    d = os.path.join(srv2.dir, "tls", "domains", "mail.example.org")
    make_cert(d, "mail.example.org")
    os.unlink(os.path.join(d, "key.pem"))
    srv2.set_config({"tls.sni_dir": "tls/domains"})
    code, err = serve_fails(srv2)
    assert code == 2 and os.path.join(d, "key.pem") + ": No such file or directory" in err, err


def test_startup_pop3s_needs_certificate(make_server):
    srv = make_server(start=False)
    srv.set_config({"tls.cert": "", "tls.key": "", "submissions.listen": "",
                    "imaps.listen": ""})
    code, err = serve_fails(srv)
    assert code == 2, err
    assert "pop3s.listen needs a certificate (tls.cert and tls.key)" in err


def test_no_certificate_no_starttls(make_server):
    srv = make_server(conf={"tls.cert": "", "tls.key": "", "pop3s.listen": "",
                            "submissions.listen": "", "imaps.listen": "",
                            "https.listen": ""})
    with SMTPRaw(srv.host, srv.smtp_port) as s:
        lines = s.ehlo()
        assert "STARTTLS" not in lines
        assert s.cmd("STARTTLS") == (502, ["5.5.1 Error: command not implemented"])
    with Raw(srv.pop3_port) as c:
        c.line()
        c.send(b"CAPA\r\n")
        assert c.line().startswith(b"+OK")
        assert b"STLS" not in pop3_multi(c)
        c.send(b"STLS\r\n")
        assert c.line() == b"-ERR Command not supported"


def test_worker_cannot_read_key_but_tls_works(make_server):
    """Keys stay root-only (0600): the master reads them for the workers."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    srv = make_server(start=False)
    assert srv.read_config()["user"] not in ("", "root")
    for name in ("cert.pem", "key.pem"):
        path = os.path.join(srv.dir, "tls", name)
        os.chown(path, 0, 0)
        os.chmod(path, 0o600)
    srv.start()
    rc, out, err = s_client(srv.pop3s_port)
    assert "CONNECTION ESTABLISHED" in err and "+OK Bye" in out
    # and after a reload too
    n = count_log(srv, "tls action=reload result=ok")
    os.kill(srv.pid, signal.SIGHUP)
    wait_tls_reload(srv, "ok", n, 1)
    rc, out, err = s_client(srv.smtp_port, starttls="smtp")
    assert "CONNECTION ESTABLISHED" in err and "221 2.0.0 Bye" in out
