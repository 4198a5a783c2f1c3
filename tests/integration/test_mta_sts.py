"""MTA-STS (RFC 8461) for outgoing mail: Tern A looks up _mta-sts.DOMAIN
through its resolver (dnsmasq), fetches the policy over HTTPS from a local
policy server (Python http.server + ssl, certificate from a test CA that A
trusts through outbound.ca_file, port outbound.mta_sts_port), caches it in
server.db, and applies it to the delivery to Tern B (b.test, mx.b.test on
127.0.0.3) or to a scripted fake without STARTTLS (fake.test, mx.fake.test
on 127.0.0.4).

The world of test_outbound.py, plus:

    _mta-sts.b.test     TXT "v=STSv1; id=ID"   (ID per test, changeable)
    _mta-sts.fake.test  TXT "v=STSv1; id=ID"
    mta-sts.b.test, mta-sts.fake.test  A 127.0.0.6 (the policy server)
"""

import hashlib
import http.server
import os
import re
import shutil
import smtplib
import socket
import ssl
import tempfile
import threading
import time
import uuid

import pytest

from test_outbound import (DNS, HOST_A, HOST_B, HOST_FAKE, World, inbox_with, normal_reply,
                           send, wait_for)
from test_outbound_tls import OPENSSL, BrokenTLS, attempt_tls_lines, openssl

HOST_POLICY = "127.0.0.6"

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


@pytest.fixture
def pki():
    """A test CA; certificates for mx.b.test, a wrong name, and the policy
    hosts; and a second CA that A does not trust."""
    d = tempfile.mkdtemp(prefix="tern-sts-pki-")
    os.chmod(d, 0o755)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    out = {"dir": d}
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                "-subj", "/CN=Tern Test " + ca, "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        os.chmod(os.path.join(d, ca + ".pem"), 0o644)
        out[ca] = os.path.join(d, ca + ".pem")
    for tag, names, ca in (("mx", "DNS:mx.b.test", "ca"), ("wrong", "DNS:other.example", "ca"),
                           ("fake", "DNS:mx.fake.test", "ca"),
                           ("mx-sts", "DNS:mx.b.test,DNS:mta-sts.b.test", "ca"),
                           ("sts", "DNS:mta-sts.b.test,DNS:mta-sts.fake.test", "ca"),
                           ("sts-untrusted", "DNS:mta-sts.b.test", "other-ca")):
        with open(os.path.join(d, tag + ".ext"), "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n"
                    "basicConstraints=CA:FALSE\n" % names)
        openssl("req", *ec, "-keyout", tag + ".key", "-out", tag + ".csr",
                "-subj", "/CN=" + tag, cwd=d)
        openssl("x509", "-req", "-in", tag + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", tag + ".pem", "-days", "2",
                "-extfile", tag + ".ext", cwd=d)
        for ext in ("key", "pem"):
            os.chmod(os.path.join(d, "%s.%s" % (tag, ext)), 0o644)
        out[tag] = (os.path.join(d, tag + ".pem"), os.path.join(d, tag + ".key"))
    yield out
    shutil.rmtree(d, ignore_errors=True)


class PolicyServer:
    """HTTPS on 127.0.0.6: GET /.well-known/mta-sts.txt answers
    policies[Host without port] (404 if none) with content_type; counts
    the requests per host."""

    def __init__(self, cert):
        self.policies = {}
        self.content_type = "text/plain"
        self.status = 200
        self.requests = []  # (host, path)
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                with outer.lock:
                    outer.requests.append((host, self.path))
                    body = outer.policies.get(host)
                    status, ctype = outer.status, outer.content_type
                if body is None or self.path != "/.well-known/mta-sts.txt":
                    status, body = 404, "not here\n"
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client refusing our certificate, on purpose

            def get_request(self):
                # TLS per connection, the handshake in the handler's thread.
                sock, addr = self.socket.accept()
                return outer.ctx.wrap_socket(sock, server_side=True,
                                             do_handshake_on_connect=False), addr

        self.httpd = Server((HOST_POLICY, 0), Handler)
        self.set_cert(cert)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set_cert(self, cert):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert[0], cert[1])
        self.ctx = ctx

    def count(self, host):
        with self.lock:
            return sum(1 for h, _ in self.requests if h == host)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sts_records(ids, hosts=None):
    recs = []
    for dom, i in ids.items():
        recs.append("--txt-record=_mta-sts.%s,v=STSv1; id=%s" % (dom, i))
        recs.append("--host-record=mta-sts.%s,%s" % (dom, (hosts or {}).get(dom, HOST_POLICY)))
    return recs


class StsWorld(World):
    def __init__(self, tern_bin, pki):
        super().__init__(tern_bin)
        self.pki = pki
        self.policy = PolicyServer(pki["sts"])
        self.set_ids({"b.test": "1", "fake.test": "1"})

    def set_ids(self, ids, hosts=None):
        """(Re)starts dnsmasq with these _mta-sts ids (and policy host
        addresses other than the policy server's)."""
        self.dns.stop()
        self.dns = DNS(self.dns_port, extra=sts_records(ids, hosts))

    def a(self, conf=None):
        c = {"outbound.ca_file": self.pki["ca"],
             "outbound.mta_sts_port": str(self.policy.port)}
        c.update(conf or {})
        a = self.peer(HOST_A, "a.test", ["alice@a.test"], conf=c)
        a.cli_ok("alias", "add", "x@a.test", "bob@b.test")
        a.cli_ok("alias", "add", "f@a.test", "someone@fake.test")
        return a

    def b(self, cert="mx"):
        c, k = self.pki[cert]
        return self.peer(HOST_B, "b.test", ["bob@b.test"], conf={"tls.cert": c, "tls.key": k})

    def finish(self, failed):
        self.policy.stop()
        super().finish(failed)


@pytest.fixture
def sts(tern_bin, pki, request):
    w = StsWorld(tern_bin, pki)
    yield w
    w.finish(request.session.testsfailed > 0)


def policy(mode, *mx, max_age=86400):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (
        mode, "".join("mx: %s\r\n" % m for m in mx), max_age)


def relay(a, b, subject):
    msg, mid = send(a, "x@a.test", subject)
    rows = inbox_with(b, "bob@b.test", subject)
    stored = b.mail_cat("bob@b.test", "INBOX", rows[0]["UID"])
    assert stored.endswith(msg), stored[-300:]
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    return a.cli_ok("trace", mid).stdout.decode()


def deferred(a, rcpt):
    """The queue row of rcpt once it has failed an attempt."""
    rows = wait_for(lambda: [r for r in a.queue_rows()
                             if r["RCPT"] == rcpt and int(r["ATTEMPTS"]) >= 1], 15,
                    "a failed attempt for %s" % rcpt)
    assert rows[0]["STATE"] == "deferred", rows
    return rows[0]


VERIFIED = "TLS 1.3, certificate verified, cipher TLS_AES_256_GCM_SHA384"


def test_enforce_delivers_over_verified_tls_and_caches(sts):
    sts.policy.policies["mta-sts.b.test"] = policy("enforce", "mx.b.test")
    b = sts.b()
    a = sts.a()
    trace = relay(a, b, "sts enforce one")
    assert attempt_tls_lines(trace) == [VERIFIED], trace
    assert sts.policy.requests == [("mta-sts.b.test", "/.well-known/mta-sts.txt")]
    assert a.wait_log(r'queue domain=b\.test action=mta-sts mode=enforce source=fetched id=1 '
                      r'mx="mx\.b\.test"')
    # The second message: the cached policy (server.db), no fetch.
    trace = relay(a, b, "sts enforce two")
    assert attempt_tls_lines(trace) == [VERIFIED], trace
    assert sts.policy.count("mta-sts.b.test") == 1
    assert a.wait_log(r'queue domain=b\.test action=mta-sts mode=enforce source=cache id=1 ')
    # It survives a restart of the server.
    a.restart()
    relay(a, b, "sts enforce three")
    assert sts.policy.count("mta-sts.b.test") == 1


def test_enforce_mx_not_in_policy_defers(sts):
    sts.policy.policies["mta-sts.b.test"] = policy("enforce", "mx.other.test", "*.b2.test")
    b = sts.b()
    a = sts.a()
    send(a, "x@a.test", "sts wrong mx")
    row = deferred(a, "bob@b.test")
    assert row["LAST_REPLY"] == ("MTA-STS policy of b.test (enforce): the MX host mx.b.test is "
                                 "not one the policy allows (mx: mx.other.test *.b2.test)"), row
    assert a.wait_log(r"queue domain=b\.test action=mta-sts mode=enforce mx=mx\.b\.test "
                      r"result=skipped")
    # Never connected to B.
    assert not re.search(r"action=connected mx=mx\.b\.test", a.log())
    assert b.find_messages("bob@b.test", "sts wrong mx") == []
    show = a.cli_ok("queue", "list").stdout.decode()
    assert "the MX host mx.b.test is not one the policy allows" in show, show


def test_enforce_without_starttls_defers(sts):
    sts.policy.policies["mta-sts.fake.test"] = policy("enforce", "mx.fake.test")
    fake = sts.fake(lambda n, cmd: normal_reply(cmd))  # no STARTTLS in its EHLO
    a = sts.a()
    send(a, "f@a.test", "sts no starttls")
    row = deferred(a, "someone@fake.test")
    assert row["LAST_REPLY"] == ("MTA-STS policy of fake.test (enforce): mx.fake.test "
                                 "[127.0.0.4] does not offer STARTTLS"), row
    # EHLO and QUIT only: no mail went out in plaintext.
    cmds = [c.split()[0].upper() for _, c in fake.commands]
    assert "MAIL" not in cmds and cmds[0] == "EHLO", fake.commands
    assert fake.messages == []


def test_enforce_wrong_certificate_defers_then_bounces(sts):
    sts.policy.policies["mta-sts.b.test"] = policy("enforce", "mx.b.test")
    b = sts.b(cert="wrong")
    a = sts.a({"queue.lifetime": "4s"})
    send(a, "x@a.test", "sts wrong cert")
    row = deferred(a, "bob@b.test")
    assert row["LAST_REPLY"] == ("MTA-STS policy of b.test (enforce): the certificate of "
                                 "mx.b.test [127.0.0.3] is not valid for it: hostname "
                                 "mismatch"), row
    assert b.find_messages("bob@b.test", "sts wrong cert") == []
    # At the end of queue.lifetime it bounces as usual, with the reason.
    dsn = inbox_with(a, "alice@a.test", "Undelivered Mail", seconds=20)
    raw = a.mail_cat("alice@a.test", "INBOX", dsn[0]["UID"]).decode()
    assert "Status: 4.4.7" in raw, raw
    assert "the certificate of mx.b.test [127.0.0.3] is not valid for it" in raw, raw
    assert b.find_messages("bob@b.test", "sts wrong cert") == []


def test_testing_mode_delivers_and_logs(sts):
    sts.policy.policies["mta-sts.b.test"] = policy("testing", "mx.other.test")
    b = sts.b(cert="wrong")
    a = sts.a()
    trace = relay(a, b, "sts testing")
    assert attempt_tls_lines(trace) == [
        "TLS 1.3, certificate not verified: hostname mismatch, cipher TLS_AES_256_GCM_SHA384"]
    assert a.wait_log(r'queue domain=b\.test action=mta-sts mode=testing mx=mx\.b\.test '
                      r'result=fail why="not an mx of the policy \(mx\.other\.test\)" '
                      r'note="tried anyway"')
    assert a.wait_log(r'queue domain=b\.test action=mta-sts mode=testing mx=mx\.b\.test '
                      r'ip=127\.0\.0\.3 result=fail why="the certificate of mx\.b\.test '
                      r'\[127\.0\.0\.3\] is not valid for it: hostname mismatch" '
                      r'note="delivered anyway"')


def test_max_age_and_id_change_refetch(sts):
    sts.policy.policies["mta-sts.b.test"] = policy("enforce", "mx.b.test", max_age=1)
    b = sts.b()
    a = sts.a()
    relay(a, b, "sts age one")
    assert sts.policy.count("mta-sts.b.test") == 1
    time.sleep(1.2)  # max_age 1: the cached policy expires with time alone
    relay(a, b, "sts age two")
    assert sts.policy.count("mta-sts.b.test") == 2
    # A long max_age: cached...
    sts.policy.policies["mta-sts.b.test"] = policy("enforce", "mx.b.test")
    time.sleep(1.2)
    relay(a, b, "sts age three")
    assert sts.policy.count("mta-sts.b.test") == 3
    relay(a, b, "sts age four")
    assert sts.policy.count("mta-sts.b.test") == 3
    # ...until the TXT record's id changes.
    sts.set_ids({"b.test": "20261207a", "fake.test": "1"})
    relay(a, b, "sts age five")
    assert sts.policy.count("mta-sts.b.test") == 4
    assert a.wait_log(r'queue domain=b\.test action=mta-sts mode=enforce source=fetched '
                      r'id=20261207a ')


@pytest.mark.parametrize("broken", ["untrusted", "404", "text/html", "invalid"])
def test_unusable_policy_means_no_policy(sts, broken):
    # RFC 8461 3.3: no policy can be fetched and none is cached: deliver
    # as though the domain had none (here: the policy would refuse B).
    sts.policy.policies["mta-sts.b.test"] = policy("enforce", "mx.other.test")
    if broken == "untrusted":
        sts.policy.set_cert(sts.pki["sts-untrusted"])
    elif broken == "404":
        sts.policy.status = 404
    elif broken == "text/html":
        sts.policy.content_type = "text/html"
    else:
        sts.policy.policies["mta-sts.b.test"] = "version: STSv1\r\nmode: enforce\r\n"
    b = sts.b()
    a = sts.a()
    relay(a, b, "sts broken " + broken)
    why = {"untrusted": r"cannot fetch https://mta-sts\.b\.test:\d+/\.well-known/mta-sts\.txt: "
                        r"SSL certificate problem: unable to get local issuer certificate",
           "404": r"https://mta-sts\.b\.test:\d+/\.well-known/mta-sts\.txt answered HTTP 404, "
                  r"not 200",
           "text/html": r"https://mta-sts\.b\.test:\d+/\.well-known/mta-sts\.txt is served as "
                        r"text/html, not text/plain",
           "invalid": r"the MTA-STS policy of b\.test is not valid: no max_age"}[broken]
    assert a.wait_log(r'queue domain=b\.test action=mta-sts result=\w+ why="%s"' % why), \
        a.log()[-3000:]
    assert a.wait_log(r'queue domain=b\.test action=mta-sts mode=- source="')
    # An untrusted certificate ends the handshake before any request.
    assert sts.policy.count("mta-sts.b.test") == (0 if broken == "untrusted" else 1)


def test_cached_policy_applies_when_the_record_is_gone(sts):
    sts.policy.policies["mta-sts.b.test"] = policy("enforce", "mx.b.test")
    b = sts.b(cert="wrong")
    a = sts.a()
    # First fetched while B's certificate is wrong: deferred.
    send(a, "x@a.test", "sts gone")
    deferred(a, "bob@b.test")
    assert sts.policy.count("mta-sts.b.test") == 1
    # The TXT record disappears and the policy host is down: the cached
    # policy still applies (RFC 8461 5.1).
    sts.set_ids({})
    sts.policy.policies.clear()
    mark = a.log_mark()
    assert a.wait_log(r"queue domain=b\.test action=mta-sts note=\"no MTA-STS record; the cached "
                      r"policy applies\"", seconds=10, since=mark)
    assert a.wait_log(r"queue id=\d+ rcpt=<bob@b\.test> result=deferred mx=mx\.b\.test",
                      seconds=10, since=mark)
    assert b.find_messages("bob@b.test", "sts gone") == []


def test_mta_sts_off(sts):
    sts.policy.policies["mta-sts.b.test"] = policy("enforce", "mx.other.test")
    b = sts.b()
    a = sts.a({"outbound.mta_sts": "no"})
    relay(a, b, "sts off")
    assert sts.policy.requests == []
    assert "action=mta-sts" not in a.log()


# ------------------------------------------------------- REQUIRETLS (RFC 8689)

def insecure_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def send_requiretls(peer, rcpt, subject, mail_params=("REQUIRETLS",), extra=""):
    """Sends one message to peer over STARTTLS with MAIL FROM params;
    returns (message bytes, Message-ID)."""
    mid = "<%s@a.test>" % uuid.uuid4().hex
    msg = ("From: <alice@a.test>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: %s\r\n%s\r\n"
           "Hello there.\r\n" % (rcpt, subject, mid, extra)).encode()
    with smtplib.SMTP(peer.host, peer.smtp_port, timeout=10) as c:
        c.ehlo("client.a.test")
        c.starttls(context=insecure_ctx())
        c.ehlo("client.a.test")
        assert c.has_extn("requiretls")
        code, resp = c.mail("alice@a.test", list(mail_params))
        assert code == 250, resp
        code, resp = c.rcpt(rcpt)
        assert code == 250, resp
        code, resp = c.data(msg)
        assert code == 250, resp
    return msg, mid


def test_requiretls_ehlo_keyword_after_starttls_only(sts):
    b = sts.b()
    with smtplib.SMTP(b.host, b.smtp_port, timeout=10) as c:
        code, resp = c.ehlo("client.a.test")
        assert code == 250 and b"STARTTLS" in resp and b"REQUIRETLS" not in resp, resp
        # Not advertised, so not accepted in plaintext.
        assert c.mail("alice@a.test", ["REQUIRETLS"]) == (555, b"5.5.4 Unsupported parameter")
        c.rset()
        c.starttls(context=insecure_ctx())
        code, resp = c.ehlo("client.a.test")
        assert code == 250 and b"\nREQUIRETLS\n" in resp, resp
        # No value allowed, once only.
        assert c.mail("alice@a.test", ["REQUIRETLS=YES"])[0] == 555
        assert c.mail("alice@a.test", ["REQUIRETLS", "REQUIRETLS"])[0] == 555
        assert c.mail("alice@a.test", ["REQUIRETLS"]) == (250, b"2.1.0 Ok")


def dsn_of(a, subject):
    rows = inbox_with(a, "alice@a.test", "Undelivered Mail", seconds=20)
    return a.mail_cat("alice@a.test", "INBOX", rows[0]["UID"]).decode()


def test_requiretls_to_peer_without_tls_bounces(sts):
    sts.policy.policies["mta-sts.fake.test"] = policy("enforce", "mx.fake.test")
    fake = sts.fake(lambda n, cmd: normal_reply(cmd))  # no STARTTLS
    a = sts.a()
    send_requiretls(a, "f@a.test", "rt no tls", ("REQUIRETLS", "RET=FULL"))
    assert a.wait_log(r"smtp id=\w+ .* requiretls=yes")
    raw = dsn_of(a, "rt no tls")
    # RFC 8689 4.2.1: 5.7.10 at once (no retries), with the reason.
    assert "Status: 5.7.10" in raw, raw
    assert ("REQUIRETLS: mx.fake.test [127.0.0.4] does not offer STARTTLS" in raw), raw
    assert "Action: failed" in raw, raw
    # RFC 8689 5: as with RET=HDRS, though RET=FULL was asked.
    assert "text/rfc822-headers" in raw and "message/rfc822" not in raw, raw
    assert "Hello there." not in raw.split("text/rfc822-headers", 1)[1], raw
    cmds = [c.split()[0].upper() for _, c in fake.commands]
    assert "MAIL" not in cmds, fake.commands
    assert a.queue_rows() == []


def test_requiretls_without_policy_bounces(sts):
    # No MTA-STS record, no DNSSEC: the MX cannot be validated, for good.
    sts.set_ids({"fake.test": "1"})
    b = sts.b()
    a = sts.a()
    send_requiretls(a, "x@a.test", "rt no policy")
    raw = dsn_of(a, "rt no policy")
    assert "Status: 5.7.10" in raw, raw
    assert re.search(r"REQUIRETLS: the MX host mx\.b\.test of b\.test cannot be validated: "
                     r"no MTA-STS\s+policy \(no MTA-STS record\), and DNSSEC is not\s+checked",
                     raw), raw
    assert b.find_messages("bob@b.test", "rt no policy") == []
    assert not re.search(r"action=connected mx=mx\.b\.test", a.log())


def test_requiretls_policy_fetch_failure_defers(sts):
    # A record but no policy to be had (404): that may mend, so it waits.
    b = sts.b()
    a = sts.a()
    send_requiretls(a, "x@a.test", "rt fetch fails")
    row = deferred(a, "bob@b.test")
    assert re.match(r"REQUIRETLS: the MX host mx\.b\.test of b\.test cannot be validated: no "
                    r"MTA-STS policy \(https://mta-sts\.b\.test:\d+/\.well-known/mta-sts\.txt "
                    r"answered HTTP 404, not 200\), and DNSSEC is not checked$",
                    row["LAST_REPLY"]), row
    assert b.find_messages("bob@b.test", "rt fetch fails") == []
    # RFC 8461 3.3: the retries do not fetch that id again for five
    # minutes; the reason stays the same.
    rows = wait_for(lambda: [r for r in a.queue_rows() if int(r["ATTEMPTS"]) >= 3], 15,
                    "three attempts")
    assert rows[0]["LAST_REPLY"] == row["LAST_REPLY"], rows
    assert sts.policy.count("mta-sts.b.test") == 1
    # A new id is fetched at once.
    sts.policy.policies["mta-sts.b.test"] = policy("testing", "mx.b.test")
    sts.set_ids({"b.test": "2", "fake.test": "1"})
    inbox_with(b, "bob@b.test", "rt fetch fails", seconds=20)
    assert sts.policy.count("mta-sts.b.test") == 2


def test_requiretls_relayed_with_requiretls(sts):
    sts.policy.policies["mta-sts.b.test"] = policy("testing", "mx.b.test")
    b = sts.b()
    a = sts.a()
    msg, mid = send_requiretls(a, "x@a.test", "rt relayed")
    rows = inbox_with(b, "bob@b.test", "rt relayed")
    assert b.mail_cat("bob@b.test", "INBOX", rows[0]["UID"]).endswith(msg)
    # B got it with REQUIRETLS on MAIL FROM, over verified TLS.
    assert b.wait_log(r"smtp id=\w+ session=\w+ client=127\.0\.0\.1 helo=mx\.a\.test "
                      r"from=<alice@a\.test> rcpt=<bob@b\.test> .*tls=TLSv1\.3 result=250 "
                      r"ms=\d+ requiretls=yes$")
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    trace = a.cli_ok("trace", mid).stdout.decode()
    assert attempt_tls_lines(trace) == [VERIFIED], trace


def test_requiretls_wrong_certificate_bounces(sts):
    sts.policy.policies["mta-sts.b.test"] = policy("testing", "mx.b.test")
    b = sts.b(cert="wrong")
    a = sts.a()
    send_requiretls(a, "x@a.test", "rt wrong cert")
    raw = dsn_of(a, "rt wrong cert")
    assert "Status: 5.7.10" in raw, raw
    assert re.search(r"REQUIRETLS: the certificate of mx\.b\.test \[127\.0\.0\.3\] is not\s+"
                     r"valid for it: hostname mismatch", raw), raw
    assert b.find_messages("bob@b.test", "rt wrong cert") == []


def test_tls_required_no_ignores_the_policy(sts):
    # RFC 8689 4.2.2: "TLS-Required: No" goes despite an enforced policy
    # the MX fails (a wrong certificate), still encrypted.
    sts.policy.policies["mta-sts.b.test"] = policy("enforce", "mx.b.test")
    b = sts.b(cert="wrong")
    a = sts.a()
    msg, mid = send(a, "x@a.test", "rt optional", extra="TLS-Required: No\r\n")
    rows = inbox_with(b, "bob@b.test", "rt optional")
    assert b.mail_cat("bob@b.test", "INBOX", rows[0]["UID"]).endswith(msg)
    assert a.wait_log(r'queue domain=b\.test action=mta-sts mode=- source="the message says '
                      r'TLS-Required: No"')
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    trace = a.cli_ok("trace", mid).stdout.decode()
    assert attempt_tls_lines(trace) == [
        "TLS 1.3, certificate not verified: hostname mismatch, cipher TLS_AES_256_GCM_SHA384"]
    # Without the header the same mail waits (enforce).
    send(a, "x@a.test", "rt not optional")
    assert "not valid for it" in deferred(a, "bob@b.test")["LAST_REPLY"]


class TLSFake(BrokenTLS):
    """mx.fake.test with STARTTLS (the test CA's certificate for its name)
    that does not offer REQUIRETLS: records commands per connection as
    (connection number, under TLS, line) and accepts messages."""

    def __init__(self, host, port, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert[0], cert[1])
        super().__init__(host, port)  # ssl.SSLError is an OSError: its run() copes

    def serve(self, n, c):
        c.settimeout(10)
        tls = False
        f = c.makefile("rb")
        c.sendall(b"220 fake.test ESMTP\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("latin-1")
            self.commands.append((n, tls, cmd))
            u = cmd.upper()
            if u.startswith("EHLO"):
                c.sendall(b"250-fake.test\r\n250-PIPELINING\r\n" +
                          (b"" if tls else b"250-STARTTLS\r\n") + b"250 8BITMIME\r\n")
            elif u == "STARTTLS" and not tls:
                c.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                c = self.ctx.wrap_socket(c, server_side=True)
                f = c.makefile("rb")
                tls = True
            elif u == "DATA":
                c.sendall(b"354 go ahead\r\n")
                body = b""
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                    body += l
                self.messages.append((n, tls, body))
                c.sendall(b"250 2.0.0 Ok: queued\r\n")
            elif u == "QUIT":
                c.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                c.sendall(b"250 2.1.0 Ok\r\n")


def test_requiretls_peer_without_requiretls_bounces_5730(sts):
    sts.policy.policies["mta-sts.fake.test"] = policy("enforce", "mx.fake.test")
    fake = TLSFake(HOST_FAKE, sts.base + 25, sts.pki["fake"])
    try:
        a = sts.a()
        # An ordinary message goes: verified TLS, as the policy asks.
        msg, mid = send(a, "f@a.test", "rt plain to fake")
        wait_for(lambda: fake.messages, 15, "the message at the fake server")
        assert fake.messages[0][1] is True and fake.messages[0][2].endswith(msg)
        wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
        assert attempt_tls_lines(a.cli_ok("trace", mid).stdout.decode()) == [VERIFIED]
        # A REQUIRETLS one does not: the fake does not offer REQUIRETLS.
        send_requiretls(a, "f@a.test", "rt to fake")
        raw = dsn_of(a, "rt to fake")
    finally:
        fake.stop()
    assert "Status: 5.7.30" in raw, raw
    assert "REQUIRETLS: mx.fake.test [127.0.0.4] does not offer REQUIRETLS" in raw, raw
    assert len(fake.messages) == 1, fake.messages
    # Its connection: EHLO, STARTTLS, EHLO under TLS, then QUIT: no MAIL.
    last = max(n for n, _, _ in fake.commands)
    assert [(t, c) for n, t, c in fake.commands if n == last] == [
        (False, "EHLO mx.a.test"), (False, "STARTTLS"), (True, "EHLO mx.a.test"),
        (True, "QUIT")], fake.commands


def fetch_policy(host, port, name, ca):
    """GET /.well-known/mta-sts.txt from host:port as name (SNI, Host),
    the certificate checked against ca: (status line, body bytes)."""
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as c:
            c.sendall(b"GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: %s\r\n\r\n" %
                      name.encode())
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


def test_policy_served_by_tern_itself(sts):
    # B serves its own policy (docs/http.md, mta_sts.mode) on its HTTPS
    # port with a certificate for mx.b.test and mta-sts.b.test, and
    # `tern domain dns` prints the records for it; A finds them, fetches
    # the policy, parses it and enforces it.
    cert, key = sts.pki["mx-sts"]
    https = sts.base + 443
    b = sts.peer(HOST_B, "b.test", ["bob@b.test"],
                 conf={"tls.cert": cert, "tls.key": key, "https.listen": "%s:%d" % (HOST_B, https),
                       "mta_sts.mode": "enforce", "mta_sts.max_age": "2d"})
    out = b.cli_ok("domain", "dns", "b.test").stdout.decode()
    m = re.search(r'^_mta-sts\.b\.test\. IN TXT "v=STSv1; id=([0-9a-f]{32})"$', out, re.M)
    assert m, out
    assert re.search(r"^mta-sts\.b\.test\. IN CNAME mx\.b\.test\.$", out, re.M), out
    assert re.search(r'^_smtp\._tls\.b\.test\. IN TXT "v=TLSRPTv1; '
                     r'rua=mailto:postmaster@b\.test"$', out, re.M), out
    # The id is the SHA-256 of the policy B serves.
    status, body = fetch_policy(HOST_B, https, "mta-sts.b.test", sts.pki["ca"])
    assert status == b"HTTP/1.0 200 OK" or status == b"HTTP/1.1 200 OK", status
    assert body == b"version: STSv1\r\nmode: enforce\r\nmx: mx.b.test\r\nmax_age: 172800\r\n"
    assert hashlib.sha256(body).hexdigest()[:32] == m.group(1)
    sts.set_ids({"b.test": m.group(1), "fake.test": "1"}, hosts={"b.test": HOST_B})
    a = sts.a({"outbound.mta_sts_port": str(https)})
    trace = relay(a, b, "sts from tern")
    assert attempt_tls_lines(trace) == [VERIFIED], trace
    assert a.wait_log(r'queue domain=b\.test action=mta-sts mode=enforce source=fetched id=%s '
                      r'mx="mx\.b\.test"' % m.group(1))
    assert sts.policy.requests == []
    # Without an HTTPS listener the MTA-STS records are commented out.
    out = a.cli_ok("domain", "dns", "a.test").stdout.decode()
    assert re.search(r'^; _mta-sts\.a\.test\. IN TXT "v=STSv1; id=[0-9a-f]{32}"$', out, re.M), out
    assert "; (commented out: https.listen is off, so the policy is not served)" in out
    assert re.search(r'^_smtp\._tls\.a\.test\. IN TXT ', out, re.M), out


def test_enforce_failed_handshake_is_not_retried_in_plaintext(sts):
    # Opportunistic TLS would reconnect at once without STARTTLS
    # (test_outbound_tls.py); an enforced policy never does.
    sts.policy.policies["mta-sts.fake.test"] = policy("enforce", "mx.fake.test")
    fake = BrokenTLS(HOST_FAKE, sts.base + 25)
    try:
        a = sts.a()
        send(a, "f@a.test", "sts broken tls")
        row = deferred(a, "someone@fake.test")
    finally:
        fake.stop()
    assert re.fullmatch(r"MTA-STS policy of fake\.test \(enforce\): TLS handshake with "
                        r"mx\.fake\.test \[127\.0\.0\.4\] failed: .+", row["LAST_REPLY"]), row
    assert [c for n, c in fake.commands if n == 1] == ["EHLO mx.a.test", "STARTTLS"]
    assert not [c for n, c in fake.commands if c.startswith("MAIL")], fake.commands
    assert fake.messages == []
