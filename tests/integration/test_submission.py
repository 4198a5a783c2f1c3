"""Mail submission (RFC 6409) on submission.listen (587, STARTTLS) and
submissions.listen (465, implicit TLS, RFC 8314); SMTP AUTH (RFC 4954) with
PLAIN, LOGIN, SCRAM-SHA-256 and SCRAM-SHA-256-PLUS; the brute-force limiter
in SMTP and POP3; POP3 AUTH through the shared SASL code.

SCRAM (RFC 5802 / RFC 7677) is computed here with hashlib and hmac.  Python's
ssl module cannot export keying material, so SCRAM-SHA-256-PLUS is tested
with the tls-server-end-point binding (RFC 5929: SHA-256 of the server's
certificate); tls-exporter is covered by the unit tests of sasl.c only.
"""

import base64
import hashlib
import hmac
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import (HOST, HOSTNAME, PASSWORD, RawClient, SMTPRaw, parse_received,
                      split_stored, timeout)

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.org"

# For the shared server: never block (other tests fail on purpose), short
# delays; DNS that never answers keeps remote recipients in the queue.
BASE_CONF = {
    # these tests cover SCRAM-SHA-256-PLUS too, which is off by default
    # (test_scram_plus_off_by_default)
    "auth.scram_plus": "yes",
    "auth.fail_delay_ms": "50",
    "auth.fail_delay_max_ms": "100",
    "auth.block_after": "0",
    "dns.resolver": "127.0.0.1:9",
    "queue.timeout.dns": "30s",
}

AUTH_LINE_TLS = "AUTH PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS"


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def port_of(srv, key):
    m = re.fullmatch(r"(.*):(\d+)", srv.read_config()[key])
    assert m, key
    return int(m.group(2))


def plain(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class Sub(SMTPRaw):
    """Raw SMTP with TLS: implicit (465) or after starttls(); optionally
    from another loopback address (source)."""

    def __init__(self, port, implicit=False, source=None):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((HOST, port), timeout=timeout(10),
                                             source_address=src)
        self.buf = b""
        self.raw = []
        if implicit:
            self.sock = tls_ctx().wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.banner = self.read_reply()
        assert self.banner[0] == 220, self.banner

    def starttls(self):
        assert self.cmd("STARTTLS") == (220, ["2.0.0 Ready to start TLS"])
        assert self.buf == b""
        self.sock = tls_ctx().wrap_socket(self.sock, server_hostname=HOSTNAME)

    def auth_plain(self, user=ALICE, password=PASSWORD):
        return self.cmd("AUTH PLAIN " + plain(user, password))


def sub587(srv, source=None):
    c = Sub(port_of(srv, "submission.listen"), source=source)
    c.ehlo()
    c.starttls()
    return c


def sub465(srv, source=None):
    return Sub(port_of(srv, "submissions.listen"), implicit=True, source=source)


def authed(srv, implicit=True, user=ALICE):
    c = sub465(srv) if implicit else sub587(srv)
    c.ehlo()
    assert c.auth_plain(user) == (235, ["2.7.0 Authentication successful"])
    return c


def send_raw(c, sender, rcpts, msg):
    """MAIL, RCPT..., DATA with msg (bytes, CRLF lines); returns DATA's
    final reply."""
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    for r in rcpts:
        assert c.cmd("RCPT TO:<%s>" % r)[0] == 250, r
    assert c.cmd("DATA")[0] == 354
    c.send(msg + b".\r\n")
    return c.read_reply()


def stored_after_trace(srv, user, token):
    """The stored message of user containing token, without our
    Return-Path and Received: lines; plus the Received header."""
    raw = srv.fetch_one(user, token)
    received, rest = split_stored(raw, raw.split(b"<", 1)[1].split(b">", 1)[0])
    return received, rest


# ------------------------------------------------------------------ SCRAM

def saslname(user):
    return user.replace("=", "=3D").replace(",", "=2C")


class Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802), computed here."""

    def __init__(self, user, password, cbind_type=None, cbind_data=b""):
        self.password = password
        self.nonce = b64(os.urandom(18))
        if cbind_type:
            self.gs2 = "p=%s,," % cbind_type
        else:
            self.gs2 = "n,,"
        self.cbind_data = cbind_data
        self.first_bare = "n=%s,r=%s" % (saslname(user), self.nonce)

    def first(self):
        return self.gs2 + self.first_bare

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce)
        salt = base64.b64decode(attrs["s"])
        iters = int(attrs["i"])
        assert iters >= 4096
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        c = b64(self.gs2.encode() + self.cbind_data)
        without_proof = "c=%s,r=%s" % (c, attrs["r"])
        auth_msg = ",".join([self.first_bare, server_first, without_proof]).encode()
        sig = hmac.new(stored_key, auth_msg, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.expected_v = "v=" + b64(hmac.new(server_key, auth_msg, "sha256").digest())
        return without_proof + ",p=" + b64(proof)


def server_end_point(sock):
    """tls-server-end-point (RFC 5929): the certificate's hash with the hash
    of its signature algorithm (SHA-256 for `tern init`'s certificate)."""
    der = sock.getpeercert(binary_form=True)
    return hashlib.sha256(der).digest()


def smtp_scram(c, user=ALICE, password=PASSWORD, plus=False, cbind=None):
    """Runs AUTH SCRAM-SHA-256[-PLUS] on c; returns the final reply."""
    if plus:
        data = server_end_point(c.sock) if cbind is None else cbind
        sc = Scram(user, password, "tls-server-end-point", data)
        mech = "SCRAM-SHA-256-PLUS"
    else:
        sc = Scram(user, password)
        mech = "SCRAM-SHA-256"
    code, lines = c.cmd("AUTH %s %s" % (mech, b64(sc.first())))
    assert code == 334, (code, lines)
    server_first = base64.b64decode(lines[0]).decode()
    code, lines = c.cmd(b64(sc.final(server_first)))
    if code != 334:
        return code, lines
    # the server-final message comes as a last challenge (RFC 4954 4)
    assert base64.b64decode(lines[0]).decode() == sc.expected_v
    return c.cmd("")


# --------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(conf=BASE_CONF)
    s.cli_ok("alias", "add", "sales@example.test", ALICE)
    return s


# ---------------------------------------------------- listeners and EHLO

def test_587_requires_starttls_before_auth(srv):
    with Sub(port_of(srv, "submission.listen")) as c:
        ehlo = c.ehlo()
        assert "STARTTLS" in ehlo
        assert not any(l.startswith("AUTH") for l in ehlo)
        # plaintext mechanisms: 538 (RFC 4954 6); the others: STARTTLS first
        assert c.cmd("AUTH PLAIN " + plain(ALICE, PASSWORD)) == \
            (538, ["5.7.11 Encryption required for requested authentication mechanism"])
        assert c.cmd("AUTH LOGIN") == \
            (538, ["5.7.11 Encryption required for requested authentication mechanism"])
        assert c.cmd("AUTH SCRAM-SHA-256") == (530, ["5.7.0 Must issue a STARTTLS command first"])
        assert c.cmd("MAIL FROM:<%s>" % ALICE) == (530, ["5.7.0 Authentication required"])
        c.starttls()
        ehlo = c.ehlo()
        assert "STARTTLS" not in ehlo
        assert ehlo[-2:] == [AUTH_LINE_TLS, "ENHANCEDSTATUSCODES"]
        assert c.cmd("MAIL FROM:<%s>" % ALICE) == (530, ["5.7.0 Authentication required"])
        assert c.auth_plain() == (235, ["2.7.0 Authentication successful"])
        # not offered again once authenticated
        assert not any(l.startswith("AUTH") for l in c.ehlo())
        assert c.cmd("MAIL FROM:<%s>" % ALICE) == (250, ["2.1.0 Ok"])


def test_465_offers_auth_at_once(srv):
    with sub465(srv) as c:
        ehlo = c.ehlo()
        assert "STARTTLS" not in ehlo
        assert AUTH_LINE_TLS in ehlo
        assert c.cmd("MAIL FROM:<%s>" % ALICE) == (530, ["5.7.0 Authentication required"])


def test_port_25_has_no_auth_and_is_no_open_relay(srv):
    with SMTPRaw(HOST, srv.smtp_port) as c:
        ehlo = c.ehlo()
        assert not any(l.startswith("AUTH") for l in ehlo)
        assert c.cmd("AUTH PLAIN " + plain(ALICE, PASSWORD)) == \
            (502, ["5.5.1 Error: command not implemented"])
        assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 250
        assert c.cmd("RCPT TO:<someone@remote.example>") == \
            (554, ["5.7.1 <someone@remote.example>: Relay access denied"])
    # the same after STARTTLS
    with SMTPRaw(HOST, srv.smtp_port) as c:
        c.ehlo()
        assert c.cmd("STARTTLS")[0] == 220
        c.sock = tls_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)
        assert not any(l.startswith("AUTH") for l in c.ehlo())
        assert c.cmd("AUTH PLAIN " + plain(ALICE, PASSWORD))[0] == 502


def test_unauthenticated_submission_cannot_relay(srv):
    with sub465(srv) as c:
        c.ehlo()
        assert c.cmd("RCPT TO:<someone@remote.example>") == \
            (503, ["5.5.1 Error: need MAIL command"])
        assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 530


# ------------------------------------------------------------ AUTH replies

def test_auth_plain_and_login_exchanges(srv):
    with sub465(srv) as c:
        c.ehlo()
        # PLAIN without initial response: empty challenge "334 "
        assert c.cmd("AUTH PLAIN") == (334, [""])
        assert c.raw == ["334 "]
        assert c.cmd(plain(ALICE, PASSWORD)) == (235, ["2.7.0 Authentication successful"])
        assert c.cmd("AUTH PLAIN " + plain(ALICE, PASSWORD)) == \
            (503, ["5.5.1 Error: already authenticated"])
    with sub465(srv) as c:
        c.ehlo()
        assert c.cmd("AUTH LOGIN") == (334, [b64("Username:")])
        assert c.cmd(b64(ALICE)) == (334, [b64("Password:")])
        assert c.cmd(b64(PASSWORD)) == (235, ["2.7.0 Authentication successful"])


def test_auth_errors(srv):
    with sub465(srv) as c:
        c.ehlo()
        assert c.cmd("AUTH CRAM-MD5") == (504, ["5.5.4 Error: unrecognized authentication type"])
        assert c.cmd("AUTH PLAIN %%%") == (501, ["5.5.2 Error: invalid base64 data"])
        # "*" cancels (RFC 4954 4: 501)
        assert c.cmd("AUTH LOGIN") == (334, [b64("Username:")])
        assert c.cmd("*") == (501, ["5.7.0 Authentication cancelled"])
        # a response that is not base64
        assert c.cmd("AUTH PLAIN")[0] == 334
        assert c.cmd("not base64!") == (501, ["5.5.2 Error: invalid base64 data"])
        # a response line over the limit
        assert c.cmd("AUTH PLAIN")[0] == 334
        assert c.cmd("A" * 13000) == (500, ["5.5.6 Authentication Exchange line is too long"])
        # wrong password, unknown user, other authzid: 535 5.7.8
        t0 = time.monotonic()
        assert c.auth_plain(password="wrong") == \
            (535, ["5.7.8 Error: authentication credentials invalid"])
        assert time.monotonic() - t0 >= 0.04  # the limiter's delay
        assert c.auth_plain(user="nobody@example.test") == \
            (535, ["5.7.8 Error: authentication credentials invalid"])
    with sub465(srv) as c:
        c.ehlo()
        assert c.cmd("AUTH PLAIN " + plain(ALICE, PASSWORD, authzid=BOB))[0] == 535
        assert c.auth_plain() == (235, ["2.7.0 Authentication successful"])
        assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 250
        # AUTH is done already; and never inside a transaction
        assert c.cmd("AUTH PLAIN " + plain(ALICE, PASSWORD))[0] == 503
    with sub465(srv) as c:
        assert c.cmd("AUTH PLAIN " + plain(ALICE, PASSWORD)) == \
            (503, ["5.5.1 Error: send EHLO first"])
    log = srv.log()
    assert re.search(r"smtp session=\S+ client=127\.0\.0\.1 action=auth mech=PLAIN "
                     r"user=alice@example\.test result=failed reason=credentials", log)
    assert "action=auth_fail ip=127.0.0.1 account=nobody@example.test" in log


# --------------------------------------------------------------- smtplib

@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("port", ["587", "465"])
def test_smtplib_submits(srv, mech, port):
    token = "smtplib-%s-%s-%d" % (mech, port, os.getpid())
    if port == "587":
        s = smtplib.SMTP(HOST, port_of(srv, "submission.listen"), timeout=timeout(10))
        s.ehlo()
        s.starttls(context=tls_ctx())
    else:
        s = smtplib.SMTP_SSL(HOST, port_of(srv, "submissions.listen"), context=tls_ctx(),
                             timeout=timeout(10))
    try:
        s.ehlo()
        assert s.esmtp_features["auth"].split() == AUTH_LINE_TLS.split()[1:]
        s.user, s.password = ALICE, PASSWORD
        code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower()), initial_response_ok=True)
        assert code == 235
        msg = ("From: Alice <%s>\r\nTo: %s\r\nSubject: %s\r\n"
               "Message-ID: <%s@client.example>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
               "\r\nHello\r\n" % (ALICE, BOB, token, token)).encode()
        assert s.sendmail(ALICE, [BOB], msg) == {}
    finally:
        s.quit()
    received, rest = stored_after_trace(srv, BOB, token)
    assert rest == msg  # not altered
    d = parse_received(received)
    assert d["proto"] == "ESMTPSA"
    assert d["tls_version"] in ("TLSv1.3", "TLSv1.2")
    assert ALICE.encode() not in received  # the user is not revealed


def test_swaks_submits(srv):
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks is not installed (scripts/install-deps.sh)")
    for mode, key, mech in (("--tls", "submission.listen", "LOGIN"),
                            ("--tls-on-connect", "submissions.listen", "PLAIN")):
        token = "swaks-%s-%d" % (mech, os.getpid())
        r = subprocess.run(
            [swaks, "--server", "%s:%d" % (HOST, port_of(srv, key)), mode,
             "--auth", mech, "--auth-user", ALICE, "--auth-password", PASSWORD,
             "--from", ALICE, "--to", BOB, "--header", "Subject: " + token,
             "--helo", "client.example.net"],
            capture_output=True, timeout=timeout(30))
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode == 0, out
        assert "<~  235 2.7.0 Authentication successful" in out
        assert re.search(r"<~  250 2\.0\.0 Ok: queued as \S+", out), out
        received, _ = stored_after_trace(srv, BOB, token)
        assert parse_received(received)["proto"] == "ESMTPSA"


# ----------------------------------------------------------------- SCRAM

def test_scram_sha_256_over_starttls(srv):
    with sub587(srv) as c:
        c.ehlo()
        assert smtp_scram(c) == (235, ["2.7.0 Authentication successful"])
        assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 250


def test_scram_sha_256_without_initial_response(srv):
    with sub465(srv) as c:
        c.ehlo()
        sc = Scram(ALICE, PASSWORD)
        assert c.cmd("AUTH SCRAM-SHA-256") == (334, [""])
        code, lines = c.cmd(b64(sc.first()))
        assert code == 334
        code, lines = c.cmd(b64(sc.final(base64.b64decode(lines[0]).decode())))
        assert code == 334 and base64.b64decode(lines[0]).decode() == sc.expected_v
        # anything but an empty line after the server-final message fails
        assert c.cmd("eA==") == (501, ["5.5.2 Error: expected an empty response"])
        assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 530


def test_scram_wrong_password(srv):
    with sub465(srv) as c:
        c.ehlo()
        assert smtp_scram(c, password="wrong") == \
            (535, ["5.7.8 Error: authentication credentials invalid"])


def test_scram_plus_server_end_point(srv):
    with sub465(srv) as c:
        c.ehlo()
        assert smtp_scram(c, plus=True) == (235, ["2.7.0 Authentication successful"])
    with sub587(srv) as c:
        c.ehlo()
        assert smtp_scram(c, plus=True) == (235, ["2.7.0 Authentication successful"])
    # a binding that is not this connection's fails (a MITM would have another)
    with sub465(srv) as c:
        c.ehlo()
        assert smtp_scram(c, plus=True, cbind=b"\0" * 32)[0] == 535


def test_scram_downgrade_flag_refused(srv):
    """'y' says the client could bind but thinks we cannot: over TLS we
    advertise -PLUS, so this is a downgrade (RFC 5802 6)."""
    with sub465(srv) as c:
        c.ehlo()
        sc = Scram(ALICE, PASSWORD)
        sc.gs2 = "y,,"
        code, lines = c.cmd("AUTH SCRAM-SHA-256 " + b64(sc.first()))
        if code == 334:
            code, lines = c.cmd(b64(sc.final(base64.b64decode(lines[0]).decode())))
        assert code == 535, (code, lines)


# ------------------------------------------------------- sender checks

def test_envelope_sender_must_be_the_users(srv):
    with authed(srv) as c:
        assert c.cmd("MAIL FROM:<%s>" % BOB) == \
            (553, ["5.7.1 Sender address rejected: not owned by user %s" % ALICE])
        assert c.cmd("MAIL FROM:<>") == \
            (553, ["5.7.1 Sender address rejected: not owned by user %s" % ALICE])
        assert c.cmd("MAIL FROM:<%s>" % CAROL)[0] == 553
        assert c.cmd("MAIL FROM:<someone@remote.example>")[0] == 553
        # an alias of the user, plus-addressing, another case
        for ok in ("sales@example.test", "alice+news@example.test", "Alice@EXAMPLE.test"):
            assert c.cmd("MAIL FROM:<%s>" % ok) == (250, ["2.1.0 Ok"]), ok
            assert c.cmd("RSET")[0] == 250
    assert "action=mail user=alice@example.test from=<bob@example.test> result=refused" \
        in srv.log()


def test_from_header_must_be_the_users(srv):
    token = "fromcheck-%d" % os.getpid()
    with authed(srv) as c:
        bad = ("From: Bob <%s>\r\nSubject: %s\r\n\r\nspoof\r\n" % (BOB, token)).encode()
        assert send_raw(c, ALICE, [BOB], bad) == \
            (553, ["5.7.1 From: address <%s> not owned by user %s" % (BOB, ALICE)])
        # a second address in From: is checked too
        bad = ("From: %s, %s\r\nSubject: %s\r\n\r\nspoof\r\n" % (ALICE, BOB, token)).encode()
        assert send_raw(c, ALICE, [BOB], bad)[0] == 553
        bad = ("From: undisclosed-recipients:;\r\nSubject: %s\r\n\r\nx\r\n" % token).encode()
        assert send_raw(c, ALICE, [BOB], bad) == (553, ["5.7.1 From: header not understood"])
        good = ('From: "Sales, Team" (our shop) <sales@example.test>\r\n'
                "Subject: %s\r\n\r\nok\r\n" % token).encode()
        assert send_raw(c, "sales@example.test", [BOB], good)[0] == 250
    assert len(srv.find_messages(BOB, token)) == 1


def test_domain_senders_exception(make_server):
    s = make_server(conf=dict(BASE_CONF, **{"submission.domain_senders": ALICE}))
    with authed(s) as c:
        assert c.cmd("MAIL FROM:<anyone@example.test>")[0] == 250
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("MAIL FROM:<%s>" % CAROL)[0] == 553  # another domain
    with authed(s, user=BOB) as c:
        assert c.cmd("MAIL FROM:<anyone@example.test>")[0] == 553


# ------------------------------------------------- Message-ID and Date

def test_message_id_and_date_added_when_missing(srv):
    token = "noid-%d" % os.getpid()
    body = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nline 1\r\n..dot\r\n" %
            (ALICE, BOB, token)).encode()
    with authed(srv, implicit=False) as c:
        code, lines = send_raw(c, ALICE, [BOB], body)
        assert code == 250
        qid = lines[0].split()[-1]
    received, rest = stored_after_trace(srv, BOB, token)
    m = re.match(rb"Message-ID: <([^>]+)>\r\nDate: ([^\r\n]+)\r\n", rest)
    assert m, rest[:300]
    assert m.group(1) == ("%s@%s" % (qid, HOSTNAME)).encode()
    import email.utils
    when = email.utils.parsedate_to_datetime(m.group(2).decode())
    assert abs(when.timestamp() - time.time()) < 600
    # nothing else changed (the dot-stuffing is undone as always)
    assert rest[m.end():] == body.replace(b"..dot", b".dot")


def test_only_missing_date_added(srv):
    token = "nodate-%d" % os.getpid()
    body = ("Message-ID: <%s@client>\r\nFrom: %s\r\nSubject: %s\r\n\r\nx\r\n" %
            (token, ALICE, token)).encode()
    with authed(srv) as c:
        assert send_raw(c, ALICE, [BOB], body)[0] == 250
    _, rest = stored_after_trace(srv, BOB, token)
    assert re.match(rb"Date: [^\r\n]+\r\n", rest)
    assert rest.split(b"\r\n", 1)[1] == body


# ---------------------------------------------------------------- relay

def test_remote_recipient_is_queued(srv):
    token = "remote-%d" % os.getpid()
    msg = ("From: %s\r\nTo: far@remote.example\r\nSubject: %s\r\n"
           "Message-ID: <%s@c>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhi\r\n" %
           (ALICE, token, token)).encode()
    with authed(srv) as c:
        assert send_raw(c, ALICE, ["far@remote.example", BOB], msg)[0] == 250
    # local at once, remote in the queue
    assert len(srv.find_messages(BOB, token)) == 1
    out = srv.cli_ok("queue", "list").stdout.decode()
    rows = [l for l in out.splitlines() if "far@remote.example" in l]
    assert len(rows) == 1, out
    assert "alice@example.test" in rows[0]


# --------------------------------------------------------- brute force

def timed_auth(c, user, password):
    t0 = time.monotonic()
    r = c.auth_plain(user, password)
    return r, time.monotonic() - t0


def test_bruteforce_delay_grows_then_blocks(make_server):
    s = make_server(conf={"auth.fail_delay_ms": "300", "auth.fail_delay_max_ms": "1200",
                          "auth.block_after": "4", "auth.block_time": "60"})
    delays = []
    with sub465(s) as c:
        c.ehlo()
        # four users, so that no account reaches the limit: the IP does
        for i in range(4):
            r, dt = timed_auth(c, "guess%d@example.test" % i, "wrong")
            assert r == (535, ["5.7.8 Error: authentication credentials invalid"])
            delays.append(dt)
    # The limiter's delay doubles (0.3, 0.6, 1.2 s, at most 1.2): what it
    # chose is in the log; each answer took at least that (plus the
    # password check, whose time depends on the machine's load).
    chosen = [int(m) for m in re.findall(r"smtp session=\S+ client=127\.0\.0\.1 "
                                         r"action=auth_delay ms=(\d+)", s.log())]
    # (the fourth failure blocks the address: its answer is not delayed more)
    assert chosen[:3] == [300, 600, 1200] and len(chosen) == 4, chosen
    for ms, dt in zip(chosen[:3], delays):
        assert dt >= ms / 1000 - 0.02, (chosen, delays)
    # blocked now, even with the right password, and without a delay
    with sub465(s) as c:
        c.ehlo()
        r, dt = timed_auth(c, ALICE, PASSWORD)
        assert r == (454, ["4.7.0 Too many failed authentications, try again later"])
        assert dt < 1.0
        assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 530
    log = s.log()
    assert re.search(r"action=auth_block scope=ip ip=127\.0\.0\.1 ", log), log[-2000:]
    # refused as soon as the AUTH command came: before any username
    assert re.search(r"smtp session=\S+ client=127\.0\.0\.1 action=auth mech=PLAIN user=- "
                     r"result=blocked reason=brute_force_limit", log)
    # another IP is not affected
    with sub465(s, source="127.0.0.2") as c:
        c.ehlo()
        assert c.auth_plain() == (235, ["2.7.0 Authentication successful"])
    # and POP3 shares the limiter: 127.0.0.1 is blocked there too
    with POP3(s.pop3s_port, implicit=True) as p:
        assert p.cmd("USER " + ALICE).startswith(b"+OK")
        assert p.cmd("PASS " + PASSWORD) == \
            b"-ERR [SYS/TEMP] Too many failed logins, try again later"
    with POP3(s.pop3s_port, implicit=True, source="127.0.0.2") as p:
        assert p.cmd("USER " + ALICE).startswith(b"+OK")
        assert p.cmd("PASS " + PASSWORD).startswith(b"+OK Logged in")


def test_password_check_does_not_stall_other_sessions(srv):
    """While one client's password is checked (and delayed), another
    session on the same worker keeps answering."""
    with sub465(srv) as slow, sub465(srv) as fast:
        slow.ehlo()
        fast.ehlo()
        slow.send("AUTH PLAIN " + plain(ALICE, "wrong") + "\r\n")
        t0 = time.monotonic()
        for _ in range(5):
            assert fast.cmd("NOOP")[0] == 250
        assert time.monotonic() - t0 < 2
        assert slow.read_reply()[0] == 535


# ------------------------------------------------------------------ POP3

class POP3(RawClient):
    def __init__(self, port, implicit=False, source=None):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((HOST, port), timeout=timeout(10),
                                             source_address=src)
        self.buf = b""
        if implicit:
            self.sock = tls_ctx().wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.greeting = self.raw_line()
        assert self.greeting.startswith(b"+OK")

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.raw_line()

    def capa(self):
        assert self.cmd("CAPA").startswith(b"+OK")
        lines = []
        while True:
            l = self.raw_line()
            if l == b".":
                return [x.decode() for x in lines]
            lines.append(l)

    def stls(self):
        assert self.cmd("STLS") == b"+OK Begin TLS negotiation"
        self.sock = tls_ctx().wrap_socket(self.sock, server_hostname=HOSTNAME)


def pop3_scram(p, user=ALICE, password=PASSWORD, plus=False):
    if plus:
        sc = Scram(user, password, "tls-server-end-point", server_end_point(p.sock))
        mech = "SCRAM-SHA-256-PLUS"
    else:
        sc = Scram(user, password)
        mech = "SCRAM-SHA-256"
    r = p.cmd("AUTH " + mech)
    assert r == b"+ ", r
    r = p.cmd(b64(sc.first()))
    assert r.startswith(b"+ "), r
    r = p.cmd(b64(sc.final(base64.b64decode(r[2:]).decode())))
    if not r.startswith(b"+ "):
        return r
    assert base64.b64decode(r[2:]).decode() == sc.expected_v
    return p.cmd("")


def test_pop3_capa_sasl_lists(srv):
    with POP3(srv.pop3_port) as p:
        caps = p.capa()
        assert "USER" not in caps
        assert "SASL SCRAM-SHA-256" in caps
        r = p.cmd("AUTH PLAIN " + plain(ALICE, PASSWORD))
        assert r == b"-ERR [AUTH] Plaintext authentication disallowed without TLS"
        assert p.cmd("AUTH SCRAM-SHA-256-PLUS") == b"-ERR Unsupported authentication mechanism"
        p.stls()
        caps = p.capa()
        assert caps == ["TOP", "UIDL", "USER", "SASL " + AUTH_LINE_TLS[5:], "RESP-CODES",
                        "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION Tern"]
    with POP3(srv.pop3s_port, implicit=True) as p:
        assert "SASL " + AUTH_LINE_TLS[5:] in p.capa()
        assert p.cmd("AUTH") == b"+OK Mechanisms follow"
        mechs = []
        while True:
            l = p.raw_line()
            if l == b".":
                break
            mechs.append(l.decode())
        assert mechs == AUTH_LINE_TLS.split()[1:]


def test_pop3_scram_without_tls(srv):
    with POP3(srv.pop3_port) as p:
        assert pop3_scram(p).startswith(b"+OK Logged in")
        assert p.cmd("STAT").startswith(b"+OK")
        # no AUTH once logged in
        assert p.cmd("AUTH SCRAM-SHA-256").startswith(b"-ERR")


def test_pop3_scram_plus_and_failures(srv):
    with POP3(srv.pop3s_port, implicit=True) as p:
        assert pop3_scram(p, password="wrong") == b"-ERR [AUTH] Authentication failed"
        assert p.cmd("AUTH PLAIN " + plain(ALICE, "wrong")) == b"-ERR [AUTH] Authentication failed"
        assert p.cmd("AUTH LOGIN") == b"+ " + b64("Username:").encode()
        assert p.cmd("*") == b"-ERR Authentication cancelled"
        assert pop3_scram(p, plus=True).startswith(b"+OK Logged in")
    log = srv.log()
    assert re.search(r"pop3 session=\S+ client=127\.0\.0\.1 action=auth mech=SCRAM-SHA-256 "
                     r"user=alice@example\.test result=failed reason=credentials", log)
    assert re.search(r"pop3 session=\S+ client=127\.0\.0\.1 action=auth "
                     r"mech=SCRAM-SHA-256-PLUS user=alice@example\.test result=ok", log)


# ------------------------------------------- SCRAM-SHA-256-PLUS, off by default

def test_scram_plus_off_by_default(make_server):
    """Without auth.scram_plus, no listener offers SCRAM-SHA-256-PLUS
    (clients that pick it without a tls-exporter binding, such as mutt
    with GNU SASL, would fail), and asking for it is an unknown mechanism;
    SCRAM-SHA-256, PLAIN and LOGIN stay."""
    s = make_server(conf={"auth.block_after": "0"})
    for c in (sub587(s), sub465(s)):
        with c:
            code, lines = c.cmd("EHLO client.example")
            assert code == 250
            assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in lines
            assert not any("PLUS" in ln for ln in lines)
            assert c.cmd("AUTH SCRAM-SHA-256-PLUS") == (
                504, ["5.5.4 Error: unrecognized authentication type"])
    import imaplib
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", port_of(s, "imaps.listen"), ssl_context=ctx)
    caps = m.capabilities
    assert "AUTH=SCRAM-SHA-256" in caps and "AUTH=SCRAM-SHA-256-PLUS" not in caps
    m.logout()


@pytest.mark.parametrize("port", [587, 465])
def test_mutt_sends_with_default_settings(make_server, tmp_path, port):
    """Debian's mutt (GNU SASL) sends through submission with the
    defaults of `tern init` and of mutt: STARTTLS on 587, TLS on 465."""
    if shutil.which("mutt") is None:
        pytest.fail("mutt is not installed (scripts/install-deps.sh installs it)")
    s = make_server(conf={"auth.block_after": "0"})
    key = "submission.listen" if port == 587 else "submissions.listen"
    p = port_of(s, key)
    scheme = "smtp" if port == 587 else "smtps"
    cert = tmp_path / "trusted.pem"
    shutil.copy(os.path.join(s.dir, "tls", "cert.pem"), cert)
    rc = tmp_path / "muttrc"
    rc.write_text(
        'set from="%s"\n'
        'set use_from=yes\n'
        'set envelope_from=yes\n'
        'set smtp_url="%s://alice%%40example.test@localhost:%d/"\n'
        'set smtp_pass="%s"\n'
        'set ssl_starttls=yes\n'
        'set ssl_force_tls=yes\n'
        'set certificate_file="%s"\n'
        'set record=""\n'
        'set copy=no\n' % (ALICE, scheme, p, PASSWORD, cert))
    token = "mutt-%d-%s" % (port, uuid.uuid4().hex[:8])
    env = dict(os.environ, HOME=str(tmp_path), TERM="dumb")
    r = subprocess.run(["mutt", "-n", "-F", str(rc), "-s", token, BOB],
                       input=b"Sent by mutt.\n", capture_output=True, env=env,
                       timeout=timeout(60))
    assert r.returncode == 0, (r.stdout, r.stderr)
    deadline = time.monotonic() + timeout(10)
    while not s.find_messages(BOB, token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(s.find_messages(BOB, token)) == 1
    log = s.log()
    assert re.search(r"mech=(SCRAM-SHA-256|PLAIN|LOGIN) user=alice@example\.test result=ok",
                     log), "no successful AUTH line in the log"
