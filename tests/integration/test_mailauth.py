"""Sender authentication on port 25 (issue 15 item 3): SPF, DKIM and DMARC
for every message from a client that is not trusted, with real DNS
(dnsmasq on loopback), one Authentication-Results field (RFC 8601) on top,
forged ones removed; DMARC p=reject refused at the end of DATA, p=
quarantine filed into Junk.  Messages are signed by dkimpy (Debian's
python3-dkim, Ed25519 with python3-nacl): an implementation nobody here
wrote.  Clients connect from 127.0.0.2 (mailauth.trusted is 127.0.0.1 and
::1 by default).

Zones:
    good.test   SPF ip4:127.0.0.2 -all; DMARC p=reject; DKIM key sel (Ed25519)
    forged.test SPF ip4:10.9.9.9 -all;  DMARC p=reject
    quar.test   SPF ip4:10.9.9.9 -all;  DMARC p=quarantine
    none.test   nothing (NXDOMAIN for every name)
"""

import atexit
import base64
import os
import re
import shutil
import smtplib
import subprocess
import tempfile

import dkim
import nacl.signing
import pytest

from conftest import HOST, timeout
from test_spf_cli import DNSMASQ, dnsmasq

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")

ALICE = "alice@example.test"
CLIENT = "127.0.0.2"
KEY = nacl.signing.SigningKey.generate()
PUB = base64.b64encode(bytes(KEY.verify_key)).decode()
SEED = base64.b64encode(bytes(KEY))

# An RSA key for OpenDKIM's signer (opendkim-testmsg), and its record.
ODK_DIR = tempfile.mkdtemp(prefix="tern-odk-")
atexit.register(shutil.rmtree, ODK_DIR, True)
ODK_KEY = os.path.join(ODK_DIR, "odk.pem")
subprocess.run(["openssl", "genrsa", "-out", ODK_KEY, "2048"], check=True, capture_output=True)
_der = subprocess.run(["openssl", "rsa", "-in", ODK_KEY, "-pubout", "-outform", "DER"],
                      check=True, capture_output=True).stdout
ODK_RECORD = "v=DKIM1; k=rsa; p=" + base64.b64encode(_der).decode()


@pytest.fixture(scope="module")
def dns():
    records = [
        "--txt-record=good.test,v=spf1 ip4:%s -all" % CLIENT,
        "--txt-record=_dmarc.good.test,v=DMARC1; p=reject",
        "--txt-record=sel._domainkey.good.test,v=DKIM1; k=ed25519; p=%s" % PUB,
        # dnsmasq joins the comma-separated parts as strings of one record
        "--txt-record=odk._domainkey.good.test," + ",".join(
            ODK_RECORD[i:i + 250] for i in range(0, len(ODK_RECORD), 250)),
        "--txt-record=forged.test,v=spf1 ip4:10.9.9.9 -all",
        "--txt-record=_dmarc.forged.test,v=DMARC1; p=reject",
        "--txt-record=quar.test,v=spf1 ip4:10.9.9.9 -all",
        "--txt-record=_dmarc.quar.test,v=DMARC1; p=quarantine",
    ]
    with dnsmasq(records) as server:
        yield server


@pytest.fixture(scope="module")
def srv(module_server, dns):
    return module_server(conf={"dns.resolver": dns, "mailauth.timeout": "5s"})


def message(frm, token, extra=b""):
    return (b"From: <" + frm.encode() + b">\r\nTo: <" + ALICE.encode() + b">\r\n"
            b"Subject: " + token.encode() + b"\r\nMessage-ID: <" + token.encode() +
            b"@client.example>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n" + extra +
            b"\r\nHello from " + frm.encode() + b".\r\n")


def signed(frm, token, extra=b""):
    msg = message(frm, token, extra)
    sig = dkim.sign(msg, b"sel", b"good.test", SEED, signature_algorithm=b"ed25519-sha256",
                    include_headers=[b"from", b"to", b"subject", b"message-id", b"date"])
    return sig + msg


def send(srv, sender, msg, source=CLIENT, helo="client.example"):
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(20),
                      source_address=(source, 0)) as c:
        c.ehlo(helo)
        c.mail(sender)
        c.rcpt(ALICE)
        code, text = c.data(msg)
        return code, text.decode()


def stored(srv, token, mbox="INBOX"):
    return srv.fetch_one(ALICE, token, mbox)


def auth_results(data):
    """The Authentication-Results field right after Return-Path, raw."""
    first, _, rest = data.partition(b"\r\n")
    assert first.startswith(b"Return-Path: "), data[:200]
    assert rest.startswith(b"Authentication-Results: "), data[:400]
    end = rest.index(b"\r\nReceived: ")
    return rest[:end + 2]


def test_signed_and_aligned_passes(srv):
    token = "good-%d" % os.getpid()
    assert send(srv, "alice@good.test", signed("alice@good.test", token))[0] == 250
    data = stored(srv, token)
    assert auth_results(data) == (
        b"Authentication-Results: mx.example.test;\r\n"
        b"\tspf=pass smtp.mailfrom=alice@good.test;\r\n"
        b"\tdkim=pass header.d=good.test header.s=sel header.a=ed25519-sha256;\r\n"
        b"\tdmarc=pass (p=reject dis=none) header.from=good.test;\r\n"
        b"\tarc=none\r\n")
    assert srv.wait_log(r"action=mailauth spf=pass dkim=pass dmarc=pass "
                        r"from_domain=good\.test disposition=deliver")


def test_forged_from_is_refused_and_the_session_goes_on(srv):
    token = "forged-%d" % os.getpid()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(20),
                      source_address=(CLIENT, 0)) as c:
        c.ehlo("client.example")
        c.mail("ceo@forged.test")
        c.rcpt(ALICE)
        code, text = c.data(message("ceo@forged.test", token))
        assert code == 550, text
        assert text.startswith(b"5.7.1 Message refused: the domain forged.test says"), text
        # the same session delivers the next (honest) message
        c.mail("someone@none.test")
        c.rcpt(ALICE)
        assert c.data(message("someone@none.test", token + "-next"))[0] == 250
    assert srv.find_messages(ALICE, token + "-next")
    assert [r for r in srv.find_messages(ALICE, token) if r["SUBJECT"] == token] == []
    assert srv.find_messages(ALICE, token, "Junk") == []


def test_a_bad_signature_fails_dkim(srv):
    token = "tampered-%d" % os.getpid()
    msg = signed("alice@good.test", token).replace(b"Hello from", b"Hullo from")
    # SPF still passes for good.test, so DMARC passes through SPF alignment
    assert send(srv, "alice@good.test", msg)[0] == 250
    ar = auth_results(stored(srv, token))
    assert b"\tdkim=fail header.d=good.test header.s=sel header.a=ed25519-sha256;\r\n" in ar
    assert b"\tdmarc=pass (p=reject dis=none) header.from=good.test;\r\n" in ar


def test_quarantine_goes_to_junk(srv):
    token = "quar-%d" % os.getpid()
    assert send(srv, "news@quar.test", message("news@quar.test", token))[0] == 250
    assert srv.find_messages(ALICE, token) == []
    ar = auth_results(stored(srv, token, "Junk"))
    assert ar == (b"Authentication-Results: mx.example.test;\r\n"
                  b"\tspf=fail smtp.mailfrom=news@quar.test;\r\n"
                  b"\tdkim=none;\r\n"
                  b"\tdmarc=fail (p=quarantine dis=quarantine) header.from=quar.test;\r\n"
                  b"\tarc=none\r\n")


def test_no_records_and_forged_results_removed(srv):
    token = "none-%d" % os.getpid()
    extra = (b"Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=x@none.test\r\n"
             b"Authentication-Results: other.example; dkim=pass header.d=none.test\r\n")
    assert send(srv, "someone@none.test", message("someone@none.test", token, extra))[0] == 250
    data = stored(srv, token)
    assert auth_results(data) == (b"Authentication-Results: mx.example.test;\r\n"
                                  b"\tspf=none smtp.mailfrom=someone@none.test;\r\n"
                                  b"\tdkim=none;\r\n"
                                  b"\tdmarc=none header.from=none.test;\r\n"
                                  b"\tarc=none\r\n")
    # the forged field claiming our name is gone; another server's stays
    assert data.count(b"Authentication-Results: mx.example.test;") == 1
    assert b"Authentication-Results: other.example; dkim=pass header.d=none.test\r\n" in data
    assert srv.wait_log(r"removed a forged Authentication-Results field")


def test_null_sender_checks_helo(srv):
    token = "bounce-%d" % os.getpid()
    # SPF checks postmaster@HELO (RFC 7208 2.4): none.test publishes nothing
    assert send(srv, "", message("mailer-daemon@none.test", token),
                helo="mta.none.test")[0] == 250
    ar = auth_results(stored(srv, token))
    assert ar.startswith(b"Authentication-Results: mx.example.test;\r\n"
                         b"\tspf=none smtp.helo=mta.none.test;\r\n"), ar


def test_trusted_clients_are_not_checked(srv):
    token = "trusted-%d" % os.getpid()
    assert send(srv, "ceo@forged.test", message("ceo@forged.test", token),
                source="127.0.0.1")[0] == 250
    data = stored(srv, token)
    assert b"Authentication-Results:" not in data


def test_dns_failure_is_temperror_and_the_mail_is_kept(make_server):
    s = make_server(conf={"dns.resolver": "127.0.0.1:9", "mailauth.timeout": "2s"})
    token = "temp-%d" % os.getpid()
    assert send(s, "ceo@forged.test", message("ceo@forged.test", token))[0] == 250
    ar = auth_results(stored(s, token))
    assert ar == (b"Authentication-Results: mx.example.test;\r\n"
                  b"\tspf=temperror smtp.mailfrom=ceo@forged.test;\r\n"
                  b"\tdkim=none;\r\n"
                  b"\tdmarc=temperror (p=none dis=none) header.from=forged.test;\r\n"
                  b"\tarc=none\r\n"), ar


def test_auth_check_message_says_what_serve_would_do(srv):
    token = "cli-%d" % os.getpid()
    r = srv.cli_ok("auth-check", "message", "--ip", CLIENT, "--helo", "client.example",
                   "--mail-from", "alice@good.test", input=signed("alice@good.test", token))
    assert r.stdout.decode() == (
        "Authentication-Results: mx.example.test;\r\n"
        "\tspf=pass smtp.mailfrom=alice@good.test;\r\n"
        "\tdkim=pass header.d=good.test header.s=sel header.a=ed25519-sha256;\r\n"
        "\tdmarc=pass (p=reject dis=none) header.from=good.test;\r\n"
        "\tarc=none\r\n"
        "dmarc-disposition: none\naction: deliver\n")
    r = srv.cli_ok("auth-check", "message", "--ip", CLIENT, "--helo", "client.example",
                   "--mail-from", "ceo@forged.test", input=message("ceo@forged.test", token))
    out = r.stdout.decode()
    assert "\tdmarc=fail (p=reject dis=reject) header.from=forged.test;\r\n" in out, out
    assert out.endswith("dmarc-disposition: reject\naction: reject\n"), out
    r = srv.cli("auth-check", "message", "--helo", "x", input=b"")
    assert r.returncode == 2 and b"--ip needs an IPv4 or IPv6 address" in r.stderr, r


def test_opendkim_rsa_sha1_signature_does_not_pass(srv):
    """OpenDKIM's test signer (opendkim-testmsg, Debian's opendkim-tools)
    signs with rsa-sha1 and c=relaxed/simple: Tern reads the signature and
    the key, and by RFC 8301 it does not pass; DMARC still passes by SPF."""
    token = "odk-%d" % os.getpid()
    msg = message("alice@good.test", token)
    r = subprocess.run(["opendkim-testmsg", "-C", "-d", "good.test", "-s", "odk", "-k", ODK_KEY],
                       input=msg, capture_output=True, timeout=timeout(30))
    assert r.returncode == 0, r.stderr
    signed_msg = r.stdout
    assert signed_msg.startswith(b"DKIM-Signature: v=1; a=rsa-sha1; c=relaxed/simple;")
    assert send(srv, "alice@good.test", signed_msg)[0] == 250
    ar = auth_results(stored(srv, token))
    assert b"\tdkim=fail header.d=good.test header.s=odk header.a=rsa-sha1;\r\n" in ar, ar
    assert b"\tdmarc=pass (p=reject dis=none) header.from=good.test;\r\n" in ar, ar


def test_forwarded_mail_is_arc_sealed(srv):
    """An alias of ours forwarding a checked message to another server adds
    our ARC set (i=1, cv=none: no chain came in) carrying our verdict;
    dkimpy's arc_verify accepts it with the keys `tern domain dns` prints,
    and our DKIM signatures still verify on top."""
    from test_dkim import dns_records, queued_bytes, verify_all
    srv.cli_ok("alias", "add", "fwd@example.test", "someone@remote.example", "--force")
    token = "arcfwd-%d" % os.getpid()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(20),
                      source_address=(CLIENT, 0)) as c:
        c.ehlo("client.example")
        c.mail("alice@good.test")
        c.rcpt("fwd@example.test")
        assert c.data(signed("alice@good.test", token + "b"))[0] == 250
    data = queued_bytes(srv, token + "b")
    _, recs = dns_records(srv, "example.test")

    def dnsfunc(name, timeout=5):
        name = name.decode().rstrip(".") + "."
        if name in recs:
            return recs[name].encode()
        if name == "sel._domainkey.good.test.":
            return ("v=DKIM1; k=ed25519; p=%s" % PUB).encode()
        return b""

    head = data.split(b"\r\n\r\n", 1)[0]
    assert re.search(rb"\r\nARC-Seal: i=1; a=rsa-sha256;.*cv=none", head), head[:3000]
    assert b"ARC-Authentication-Results: i=1; mx.example.test;" in head
    assert b"spf=pass smtp.mailfrom=alice@good.test" in head
    cv, results, reason = dkim.arc_verify(data, dnsfunc=dnsfunc)
    assert (cv, reason) == (dkim.CV_Pass, "success"), (results, reason)
    ours = [ok for ok, t in verify_all(data, recs) if t.get(b"d") == b"example.test"]
    assert ours == [True, True]


def test_sieve_redirect_is_arc_sealed(srv):
    """A Sieve redirect of a checked message to another server carries our
    ARC set too, and dkimpy accepts it."""
    from test_dkim import dns_records, queued_bytes
    script = os.path.join(srv.base, "redir.sieve")  # readable by the server's user
    with open(script, "w") as f:
        f.write('redirect "elsewhere@remote.example";\n')
    os.chmod(script, 0o644)
    srv.cli_ok("user", "add", "redir@example.test", "--password", "pw")
    srv.cli_ok("sieve", "put", "--activate", "redir@example.test", "r", str(script))
    token = "arcredir-%d" % os.getpid()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(20),
                      source_address=(CLIENT, 0)) as c:
        c.ehlo("client.example")
        c.mail("alice@good.test")
        c.rcpt("redir@example.test")
        assert c.data(signed("alice@good.test", token))[0] == 250
    data = queued_bytes(srv, token)
    _, recs = dns_records(srv, "example.test")

    def dnsfunc(name, timeout=5):
        name = name.decode().rstrip(".") + "."
        if name in recs:
            return recs[name].encode()
        return ("v=DKIM1; k=ed25519; p=%s" % PUB).encode() \
            if name == "sel._domainkey.good.test." else b""

    assert b"ARC-Seal: i=1; a=rsa-sha256;" in data.split(b"\r\n\r\n", 1)[0]
    cv, results, reason = dkim.arc_verify(data, dnsfunc=dnsfunc)
    assert (cv, reason) == (dkim.CV_Pass, "success"), (results, reason)


def test_dmarc_reject_action_per_domain(srv):
    """`tern domain set D --dmarc-reject junk|tag|default`: what mail for D
    that fails DMARC under p=reject gets; a message is refused only when
    every recipient's domain says reject."""
    def forged(token, rcpts):
        with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(20),
                          source_address=(CLIENT, 0)) as c:
            c.ehlo("client.example")
            c.mail("ceo@forged.test")
            for r in rcpts:
                c.rcpt(r)
            return c.data(message("ceo@forged.test", token))[0]

    r = srv.cli_ok("domain", "set", "example.test", "--dmarc-reject", "junk")
    assert r.stdout.decode() == "example.test: mail failing DMARC under p=reject: " \
        "delivered to Junk\n"
    token = "pdj-%d" % os.getpid()
    assert forged(token, [ALICE]) == 250
    assert srv.find_messages(ALICE, token) == []
    ar = auth_results(stored(srv, token, "Junk"))
    assert b"\tdmarc=fail (p=reject dis=reject) header.from=forged.test;\r\n" in ar, ar
    # example.org keeps the default (reject): with a recipient of each
    # domain the message is taken, and goes to Junk for both
    token = "pdm-%d" % os.getpid()
    assert forged(token, [ALICE, "carol@example.org"]) == 250
    assert len(srv.find_messages("carol@example.org", token, "Junk")) == 1
    assert len(srv.find_messages(ALICE, token, "Junk")) == 1
    srv.cli_ok("domain", "set", "example.test", "--dmarc-reject", "tag")
    token = "pdt-%d" % os.getpid()
    assert forged(token, [ALICE]) == 250
    assert len(srv.find_messages(ALICE, token)) == 1
    r = srv.cli_ok("domain", "set", "example.test", "--dmarc-reject", "default")
    assert b"as mailauth.dmarc_reject says (reject)" in r.stdout
    assert forged("pdd-%d" % os.getpid(), [ALICE]) == 550
    r = srv.cli("domain", "set", "example.test", "--dmarc-reject", "maybe")
    assert r.returncode == 2 and b"--dmarc-reject is reject, junk, tag or default" in r.stderr


def test_trusted_arc_sealer_overrides_dmarc_failure(make_server, dns):
    """mailauth.arc_trusted: a message that fails DMARC (p=reject) but has
    a passing ARC chain sealed by a trusted domain (say a mailing list) is
    delivered (RFC 8617 7.2 local policy); without the trust it is
    refused."""
    token = "arctrust-%d" % os.getpid()
    msg = message("ceo@forged.test", token)
    srv = make_server(conf={"dns.resolver": dns, "mailauth.timeout": "5s"})
    # good.test seals it (its RSA key odk is published), as a list would
    r = srv.cli("auth-check", "arc-seal", "--key", ODK_KEY, "--domain", "good.test",
                "--selector", "odk", "--results", "spf=pass smtp.mailfrom=ceo@forged.test",
                input=msg)
    assert r.returncode == 0, r.stderr
    sealed = r.stdout
    assert sealed.startswith(b"ARC-Seal: i=1;"), sealed[:200]
    assert send(srv, "list@good.test", sealed)[0] == 550
    srv.set_config({"mailauth.arc_trusted": "lists.example good.test"})
    srv.restart()
    assert send(srv, "list@good.test", sealed)[0] == 250
    ar = auth_results(stored(srv, token))
    assert b"\tdmarc=fail (p=reject dis=reject) header.from=forged.test;\r\n" in ar, ar
    assert b"\tarc=pass header.oldest-pass=0\r\n" in ar, ar
    assert srv.wait_log(r"action=mailauth .* disposition=deliver dmarc_override=arc:good\.test")
