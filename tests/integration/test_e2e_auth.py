"""Sender authentication end to end (issue 15): three Tern instances and a
DNS server (dnsmasq) publishing what `tern domain dns` says.

    A  a.test     127.0.0.2   alice@a.test sends
    B  b.test     127.0.0.3   bob@b.test; fwd@b.test forwards to C
    C  fake.test  127.0.0.4   carol@fake.test

Servers connect to each other from 127.0.0.1 (the kernel's choice), so B
and C check everyone (mailauth.trusted is empty) and SPF of a.test and
b.test allows 127.0.0.1.  A message from A arrives at B with spf, both
DKIM signatures and DMARC passing; a forged From: of a.test sent from
another address is refused at B; B forwards to C with SRS (SPF passes for
b.test at C) and its ARC seal (arc=pass at C); a bounce to B's SRS
address reaches alice at A.
"""

import os
import re
import smtplib
import time

import pytest

from conftest import timeout
from test_outbound import (DNS, HOST_A, HOST_B, HOST_FAKE, PASSWORD, Peer, pick_world_ports,
                           pytestmark, send, wait_for)  # noqa: F401

CHECKED = {"mailauth.trusted": "", "mailauth.timeout": "5s"}


def dkim_records(peer, domain):
    out = peer.cli_ok("domain", "dns", domain).stdout.decode()
    recs = []
    for m in re.finditer(r"^(\S+)\._domainkey\.(\S+)\. IN TXT (\(.*?\)|\"[^\"]*\")", out,
                         re.M | re.S):
        parts = re.findall(r'"([^"]*)"', m.group(3))
        recs.append("--txt-record=%s._domainkey.%s,%s" % (m.group(1), m.group(2), ",".join(parts)))
    return recs


@pytest.fixture
def trio(tern_bin, request):
    base, dns_port = pick_world_ports()
    a = Peer(tern_bin, HOST_A, "a.test", base, dns_port, ["alice@a.test"])
    b = Peer(tern_bin, HOST_B, "b.test", base, dns_port, ["bob@b.test"], conf=CHECKED)
    c = Peer(tern_bin, HOST_FAKE, "fake.test", base, dns_port, ["carol@fake.test"],
             conf=CHECKED)
    extra = ["--txt-record=a.test,v=spf1 ip4:127.0.0.1 -all",
             "--txt-record=_dmarc.a.test,v=DMARC1; p=reject",
             "--txt-record=b.test,v=spf1 ip4:127.0.0.1 -all"] + \
        dkim_records(a, "a.test") + dkim_records(b, "b.test")
    dns = DNS(dns_port, extra)
    peers = [a, b, c]
    for p in peers:
        p.start()
    yield a, b, c
    errors = []
    for p in peers:
        try:
            p.stop()
            p.check_log()
        except BaseException as e:  # pytest.fail raises
            errors.append(str(e))
        p.cleanup(keep=bool(errors) or request.session.testsfailed > 0)
    dns.stop()
    if errors:
        pytest.fail("\n".join(errors))


def ar_of(stored):
    m = re.search(rb"\r\nAuthentication-Results: (mx\.[a-z.]+;(?:\r\n\t[^\r]*)*)\r\n", stored)
    assert m, stored[:1500]
    return m.group(1).replace(b"\r\n\t", b" ")


def inbox(peer, user, token, mbox="INBOX"):
    deadline = time.monotonic() + timeout(20)
    while True:
        rows = peer.find_messages(user, token, mbox)
        if rows:
            return peer.mail_cat(user, mbox, rows[0]["UID"])
        assert time.monotonic() < deadline, peer.log()[-3000:]
        time.sleep(0.1)


def test_signed_mail_passes_forgery_refused_forward_srs_arc_bounce(trio):
    a, b, c = trio
    # A sends through its own aliases (its port 25 relays for nobody else)
    a.cli_ok("alias", "add", "tobob@a.test", "bob@b.test")
    a.cli_ok("alias", "add", "tofwd@a.test", "fwd@b.test", "--force")
    a.cli_ok("alias", "add", "tolost@a.test", "lost@b.test", "--force")
    # 1. A -> B: everything passes
    send(a, "tobob@a.test", "e2e one")
    stored = inbox(b, "bob@b.test", "e2e one")
    ar = ar_of(stored)
    assert re.match(rb"mx\.b\.test; spf=pass smtp\.mailfrom=alice@a\.test; "
                    rb"dkim=pass header\.d=a\.test header\.s=ed-\d+ header\.a=ed25519-sha256; "
                    rb"dkim=pass header\.d=a\.test header\.s=rsa-\d+ header\.a=rsa-sha256; "
                    rb"dmarc=pass \(p=reject dis=none\) header\.from=a\.test; arc=none$", ar), ar

    # 2. A forged From: a.test from another address: refused at B
    with smtplib.SMTP(HOST_B, b.smtp_port, timeout=timeout(20),
                      source_address=("127.0.0.5", 0)) as s:
        s.ehlo("forger.example")
        s.mail("ceo@a.test")
        s.rcpt("bob@b.test")
        code, text = s.data(b"From: <ceo@a.test>\r\nTo: <bob@b.test>\r\nSubject: e2e forged\r\n"
                            b"\r\npay this invoice\r\n")
    assert code == 550 and text.startswith(b"5.7.1 Message refused: the domain a.test"), text
    assert b.find_messages("bob@b.test", "e2e forged") == []

    # 3. A -> fwd@b.test -> C: SRS makes SPF pass for b.test, B's ARC seal passes,
    #    A's DKIM signatures still pass
    b.cli_ok("alias", "add", "fwd@b.test", "carol@fake.test", "--force")
    send(a, "tofwd@a.test", "e2e forwarded")
    stored = inbox(c, "carol@fake.test", "e2e forwarded")
    rp = stored.split(b"\r\n", 1)[0]
    assert re.match(rb"Return-Path: <SRS0=[a-z2-7]{4}=[a-z2-7]{2}=a\.test=alice@b\.test>$", rp), rp
    ar = ar_of(stored)
    assert re.match(rb"mx\.fake\.test; spf=pass smtp\.mailfrom=SRS0=\S+@b\.test; "
                    rb"dkim=pass header\.d=b\.test .*dkim=pass header\.d=a\.test .*"
                    rb"dmarc=pass \(p=reject dis=none\) header\.from=a\.test; "
                    rb"arc=pass header\.oldest-pass=0$", ar), ar

    # 4. A bounce to the SRS address (C does not know nobody@fake.test)
    #    reaches alice at A
    b.cli_ok("alias", "add", "lost@b.test", "nobody@fake.test", "--force")
    send(a, "tolost@a.test", "e2e lost")
    dsn = inbox(a, "alice@a.test", "Undelivered Mail Returned to Sender")
    assert b"nobody@fake.test" in dsn and b"e2e lost" in dsn
