"""DKIM keys and signing (issue 15 items 1 and 2): `tern domain add` makes
an Ed25519 and an RSA-2048 key, `tern domain dns` prints their records,
every message that leaves for another server carries one signature per
key, and an independent verifier (dkimpy, Debian's python3-dkim, with
PyNaCl for Ed25519) accepts both, fed the records `tern domain dns`
printed.  Rotation keeps the old records published until retired.

Messages wait in DATA/queue/ (the resolver is a dead port), so the test
reads exactly the bytes the queue will send.
"""

import os
import re
import smtplib
import subprocess
import ssl
import time

import dkim
import pytest

from conftest import HOST, PASSWORD, timeout

ALICE = "alice@example.test"

CONF = {
    "dns.resolver": "127.0.0.1:9",
    "queue.timeout.dns": "30s",
}


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def port_of(srv, key):
    m = re.fullmatch(r"(.*):(\d+)", srv.read_config()[key])
    assert m, key
    return int(m.group(2))


def dns_records(srv, domain):
    """{owner name: TXT text} of the DKIM records `tern domain dns` prints
    (the strings of one record joined, as a resolver would)."""
    out = srv.cli_ok("domain", "dns", domain).stdout.decode()
    recs = {}
    for m in re.finditer(r"^(\S+\._domainkey\.\S+) IN TXT (\(.*?\)|\"[^\"]*\")", out,
                         re.M | re.S):
        recs[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return out, recs


def submit(srv, token, rcpt="far@remote.example", frm=ALICE):
    msg = ("From: Alice <%s>\r\nTo: <%s>\r\nSubject: dkim %s\r\n"
           "Message-ID: <%s@client.example>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
           "\r\nHello,\r\n\r\nthis is %s.\r\n" % (frm, rcpt, token, token, token)).encode()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(HOST, port_of(srv, "submission.listen"), timeout=timeout(10)) as c:
        c.starttls(context=ctx)
        c.login(ALICE, PASSWORD)
        c.sendmail(ALICE, [rcpt], msg)
    return msg


def queued_bytes(srv, token):
    deadline = time.monotonic() + timeout(5)
    while True:
        for path in srv.files_under("queue"):
            with open(path, "rb") as f:
                data = f.read()
            if token.encode() in data:
                return data
        assert time.monotonic() < deadline, "no queue file with %s" % token
        time.sleep(0.02)


def verify_all(data, recs):
    """dkimpy's verdict on each DKIM-Signature, top down: [(ok, tags)]."""
    def dnsfunc(name, timeout=5):
        return recs.get(name.decode().rstrip(".") + ".", "").encode()

    d = dkim.DKIM(data)
    n = len(re.findall(rb"(?mi)^DKIM-Signature:", data.split(b"\r\n\r\n", 1)[0]))
    out = []
    for i in range(n):
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
        except dkim.DKIMException:  # dkimpy raises for a body hash mismatch
            ok = False
        out.append((ok, dict(d.signature_fields or {})))
    return out


def test_domain_add_makes_two_keys_and_dns_prints_them(srv):
    out = srv.cli_ok("dkim", "list", "example.test").stdout.decode().splitlines()
    day = time.strftime("%Y%m%d", time.gmtime())
    assert sorted(l.split()[1:4] for l in out) == [
        ["ed-" + day, "ed25519", "active"], ["rsa-" + day, "rsa", "active"]], out
    for sel in ("ed-" + day, "rsa-" + day):
        path = os.path.join(srv.data, "dkim", "example.test", sel + ".pem")
        assert os.stat(path).st_mode & 0o777 == 0o600
    text, recs = dns_records(srv, "example.test")
    assert set(recs) == {"ed-%s._domainkey.example.test." % day,
                         "rsa-%s._domainkey.example.test." % day}
    assert recs["ed-%s._domainkey.example.test." % day].startswith("v=DKIM1; k=ed25519; p=")
    assert recs["rsa-%s._domainkey.example.test." % day].startswith("v=DKIM1; k=rsa; p=")
    # every string of a zone file TXT record fits in 255 octets
    assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', text))
    assert "example.test. IN MX 10 mx.example.test." in text
    assert 'example.test. IN TXT "v=spf1 mx -all"' in text
    assert '_dmarc.example.test. IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@example.test"' in text
    assert ("_submission._tcp.example.test. IN SRV 0 1 %d mx.example.test."
            % port_of(srv, "submission.listen")) in text
    assert ("_imaps._tcp.example.test. IN SRV 0 1 %d mx.example.test."
            % port_of(srv, "imaps.listen")) in text
    assert "PTR" in text


def test_submitted_mail_is_signed_with_both_keys(srv):
    token = "signed-%d" % os.getpid()
    sent = submit(srv, token)
    data = queued_bytes(srv, token)
    _, recs = dns_records(srv, "example.test")
    results = verify_all(data, recs)
    assert len(results) == 2, data[:2000]
    assert all(ok for ok, _ in results), results
    algos = sorted(t[b"a"] for _, t in results)
    assert algos == [b"ed25519-sha256", b"rsa-sha256"]
    for _, t in results:
        assert t[b"d"] == b"example.test"
        assert t[b"c"] == b"relaxed/relaxed"
        assert b"l" not in t
        h = [x.strip().lower() for x in t[b"h"].split(b":")]
        # over-signed: each present name once more than it appears
        for name in (b"from", b"to", b"subject", b"date", b"message-id"):
            assert h.count(name) == 2, h
    # the message itself is what was submitted, after our header fields
    assert data.endswith(sent.split(b"\r\n\r\n", 1)[1])
    # one altered body byte, or one header byte: both fail
    bad_body = data.replace(b"this is " + token.encode(), b"this is X" + token.encode()[1:])
    assert not any(ok for ok, _ in verify_all(bad_body, recs))
    bad_head = data.replace(b"Subject: dkim", b"Subject: DKIM")
    assert not any(ok for ok, _ in verify_all(bad_head, recs))


def test_forwarded_alias_mail_is_signed_by_the_alias_domain(srv):
    srv.cli_ok("alias", "add", "fwd@example.test", "someone@remote.example", "--force")
    token = "forwarded-%d" % os.getpid()
    msg = ("From: <writer@elsewhere.example>\r\nTo: <fwd@example.test>\r\n"
           "Subject: %s\r\nMessage-ID: <%s@elsewhere.example>\r\n\r\nhi\r\n"
           % (token, token)).encode()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as c:
        c.sendmail("writer@elsewhere.example", ["fwd@example.test"], msg)
    data = queued_bytes(srv, token)
    _, recs = dns_records(srv, "example.test")
    results = verify_all(data, recs)
    assert len(results) == 2 and all(ok for ok, _ in results), results
    assert {t[b"d"] for _, t in results} == {b"example.test"}


def test_rotate_then_retire(make_server):
    s = make_server(conf=CONF)
    day = time.strftime("%Y%m%d", time.gmtime())
    out = s.cli_ok("dkim", "rotate", "example.test").stdout.decode()
    assert "ed-%s-2" % day in out and "rsa-%s-2" % day in out, out
    rows = [l.split() for l in s.cli_ok("dkim", "list", "example.test").stdout.decode().splitlines()]
    state = {r[1]: r[3] for r in rows}
    assert state == {"ed-%s-2" % day: "active", "rsa-%s-2" % day: "active",
                     "ed-" + day: "published", "rsa-" + day: "published"}, rows
    # the old records stay in `domain dns` until retired; new mail is
    # signed with the new keys only
    _, recs = dns_records(s, "example.test")
    assert len(recs) == 4
    token = "rotated-%d" % os.getpid()
    submit(s, token)
    results = verify_all(queued_bytes(s, token), recs)
    assert sorted(t[b"s"].decode() for _, t in results) == ["ed-%s-2" % day, "rsa-%s-2" % day]
    assert all(ok for ok, _ in results)
    # an active key cannot be retired; the published ones can
    r = s.cli("dkim", "retire", "example.test", "ed-%s-2" % day)
    assert r.returncode == 1 and b"still signs" in r.stderr, r
    out = s.cli_ok("dkim", "retire", "example.test").stdout.decode()
    assert out.count("retired") == 2, out
    _, recs = dns_records(s, "example.test")
    assert sorted(recs) == ["ed-%s-2._domainkey.example.test." % day,
                            "rsa-%s-2._domainkey.example.test." % day]
    assert not os.path.exists(os.path.join(s.data, "dkim", "example.test", "ed-%s.pem" % day))
    r = s.cli("dkim", "rotate", "nosuch.example")
    assert r.returncode == 1 and b"no such domain nosuch.example" in r.stderr, r


def test_domain_remove_removes_its_keys(make_server):
    s = make_server(conf=CONF, start=False)
    s.cli_ok("domain", "add", "gone.example")
    keydir = os.path.join(s.data, "dkim", "gone.example")
    assert len(os.listdir(keydir)) == 2
    s.cli_ok("domain", "remove", "gone.example")
    assert not os.path.exists(keydir)
    assert s.cli_ok("dkim", "list").stdout.decode().count("gone.example") == 0


OPENDKIM = "/usr/sbin/opendkim"


@pytest.mark.skipif(not os.path.exists(OPENDKIM), reason="opendkim is not installed")
def test_opendkim_verifies_what_tern_signs(srv, tmp_path):
    """OpenDKIM (Debian's opendkim, in its test mode `-t`, with the records
    `tern domain dns` prints as TestDNSData) verifies both signatures of a
    submitted message, and fails a tampered copy."""
    token = "odkv-%d" % os.getpid()
    submit(srv, token)
    data = queued_bytes(srv, token)
    _, recs = dns_records(srv, "example.test")
    dnsfile = tmp_path / "dns"
    dnsfile.write_text("".join("%s %s\n" % (name.rstrip("."), txt) for name, txt in recs.items()))
    conf = tmp_path / "opendkim.conf"
    conf.write_text("Mode v\nTestDNSData file:%s\nLogResults yes\nSyslog no\n"
                    "MinimumKeyBits 1024\nAlwaysAddARHeader yes\n" % dnsfile)

    def opendkim(msg):
        path = tmp_path / "msg.eml"
        path.write_bytes(msg.replace(b"\r\n", b"\n"))
        return subprocess.run([OPENDKIM, "-x", str(conf), "-t", str(path)],
                              capture_output=True, text=True, timeout=timeout(30))

    # OpenDKIM reports the first signature it finds: check each on its own
    head, _, body = data.partition(b"\r\n\r\n")
    fields = re.findall(rb"DKIM-Signature:[^\r]*\r\n(?:[ \t][^\r]*\r\n)*", head + b"\r\n")
    assert len(fields) == 2
    for keep in fields:
        other = [f for f in fields if f is not keep][0]
        one = data.replace(other, b"", 1)
        sel = re.search(rb"s=([a-z0-9-]+)", keep).group(1).decode()
        r = opendkim(one)
        assert re.search(r"verification \(s=%s,? d=example\.test, .*\) succeeded" % sel,
                         r.stdout + r.stderr), (r.stdout, r.stderr)
        bad = opendkim(one.replace(b"this is " + token.encode(),
                                   b"this is X" + token.encode()[1:]))
        assert re.search(r"verification \(s=%s,? d=example\.test.*\) failed" % sel,
                         bad.stdout + bad.stderr), (bad.stdout, bad.stderr)
