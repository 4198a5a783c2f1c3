"""DMARC failure reports (RFC 7489 7.3 and 7.3.1, on the AFRF of RFC 6591
and the ARF of RFC 5965): with mailauth.failure_reports on, a message
that fails DMARC for a domain whose record has ruf= (and whose fo= asks)
gets one report, sent by the queue runner to the ruf= address, here an
alias of ours outside the reported domain (so its domain must authorize it,
7.1), which lands in alice's INBOX to be read back byte by byte.
"""

import os
import re
import time

import pytest

from conftest import timeout
from test_mailauth import CLIENT, message, send
from test_spf_cli import DNSMASQ, dnsmasq

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")

ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def dns():
    records = [
        # forged.test: nothing may send as it; failure reports wanted (fo=0)
        "--txt-record=forged.test,v=spf1 -all",
        "--txt-record=_dmarc.forged.test,v=DMARC1; p=quarantine; ruf=mailto:ruf@example.test",
        "--txt-record=forged.test._report._dmarc.example.test,v=DMARC1",
        # half.test: SPF passes, no DKIM; fo=1 asks for a report anyway
        "--txt-record=half.test,v=spf1 ip4:%s -all" % CLIENT,
        "--txt-record=_dmarc.half.test,v=DMARC1; p=reject; fo=1; ruf=mailto:ruf@example.test",
        "--txt-record=half.test._report._dmarc.example.test,v=DMARC1",
        # pass0.test: the same with fo=0: DMARC passes, no report
        "--txt-record=pass0.test,v=spf1 ip4:%s -all" % CLIENT,
        "--txt-record=_dmarc.pass0.test,v=DMARC1; p=reject; ruf=mailto:ruf@example.test",
        "--txt-record=pass0.test._report._dmarc.example.test,v=DMARC1",
        # noauth.test: its ruf address does not accept its reports (7.1)
        "--txt-record=noauth.test,v=spf1 -all",
        "--txt-record=_dmarc.noauth.test,v=DMARC1; p=none; ruf=mailto:ruf@example.test",
    ]
    with dnsmasq(records) as addr:
        yield addr


def conf(dns, **extra):
    c = {"dns.resolver": dns, "mailauth.timeout": "5s", "mailauth.report_interval": "1s",
         "mailauth.failure_reports": "yes"}
    c.update(extra)
    return c


def wait_report(s, subject):
    deadline = time.monotonic() + timeout(20)
    while True:
        rows = s.find_messages(ALICE, subject)
        if rows:
            return rows
        assert time.monotonic() < deadline, s.log()[-3000:]
        time.sleep(0.2)


def parts(raw):
    """The top-level header and the parts of a multipart message, split
    at its boundary (Python's email has no parser for
    message/feedback-report)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    m = re.search(rb'boundary="([^"]+)"', head)
    assert m, head
    b = b"--" + m.group(1)
    chunks = (b"\r\n" + body).split(b"\r\n" + b)
    assert chunks[-1].startswith(b"--"), chunks[-1]
    out = []
    for c in chunks[1:-1]:
        h, _, content = c.lstrip(b"\r\n").partition(b"\r\n\r\n")
        out.append((h, content))
    return head, out


def test_failure_report_for_a_forged_sender(make_server, dns):
    s = make_server(conf=conf(dns))
    s.cli_ok("alias", "add", "ruf@example.test", ALICE)
    token = "ruf-%d" % os.getpid()
    msg = message("boss@forged.test", token)
    assert send(s, "boss@forged.test", msg)[0] == 250
    rows = wait_report(s, "DMARC failure report for forged.test")
    assert len(rows) == 1, rows
    raw = s.mail_cat(ALICE, "INBOX", rows[0]["UID"])
    head, ps = parts(raw)
    assert b"\r\nTo: <ruf@example.test>\r\n" in b"\r\n" + head
    assert b"From: DMARC reports <postmaster@mx.example.test>\r\n" in head
    assert b"Subject: DMARC failure report for forged.test: mail from %s\r\n" % \
        CLIENT.encode() in head
    assert b"Content-Type: multipart/report; report-type=feedback-report;" in head
    assert [h for h, _ in ps] == [b"Content-Type: text/plain; charset=us-ascii",
                                  b"Content-Type: message/feedback-report",
                                  b"Content-Type: text/rfc822-headers"]
    assert b"did not pass DMARC: neither DKIM nor SPF passed for that domain" in ps[0][1]
    fb = ps[1][1].decode()
    lines = fb.split("\r\n")
    fields = [l for l in lines if l and not l[0].isspace()]
    names = [f.split(":", 1)[0] for f in fields]
    assert names == ["Feedback-Type", "User-Agent", "Version", "Original-Mail-From",
                     "Arrival-Date", "Source-IP", "Reported-Domain",
                     "Authentication-Results", "Auth-Failure", "Delivery-Result",
                     "Identity-Alignment", "SPF-DNS"], fb
    assert "Feedback-Type: auth-failure" in fields
    assert "Version: 1" in fields
    assert "Original-Mail-From: <boss@forged.test>" in fields
    assert "Source-IP: %s" % CLIENT in fields
    assert "Reported-Domain: forged.test" in fields
    assert "Auth-Failure: dmarc" in fields
    assert "Delivery-Result: spam" in fields  # p=quarantine: filed in Junk
    assert "Identity-Alignment: none" in fields
    assert "SPF-DNS: txt : forged.test : v=spf1 -all" in fields
    ar = fb[fb.index("Authentication-Results:"):fb.index("\r\nAuth-Failure:")]
    assert ar.startswith("Authentication-Results: mx.example.test;"), ar
    assert "spf=fail smtp.mailfrom=boss@forged.test" in ar and "dmarc=fail" in ar, ar
    # the original header section exactly, never the body
    assert ps[2][1] == msg.partition(b"\r\n\r\n")[0] + b"\r\n", ps[2][1]
    assert b"Hello from" not in raw
    assert s.wait_log(r"action=dmarc_failure_report domain=forged\.test result=kept")
    assert s.wait_log(r"queue action=dmarc_failure_report domain=forged\.test "
                      r"ruf=<ruf@example\.test> size=\d+ result=sent")
    # the forged message itself went to Junk, as p=quarantine asks
    assert s.find_messages(ALICE, token, "Junk")


def test_fo1_reports_a_partial_failure_fo0_does_not(make_server, dns):
    s = make_server(conf=conf(dns))
    s.cli_ok("alias", "add", "ruf@example.test", ALICE)
    token = "half-%d" % os.getpid()
    assert send(s, "news@half.test", message("news@half.test", token))[0] == 250
    assert send(s, "news@pass0.test", message("news@pass0.test", token + "-0"))[0] == 250
    rows = wait_report(s, "DMARC failure report for half.test")
    assert len(rows) == 1, rows
    _, ps = parts(s.mail_cat(ALICE, "INBOX", rows[0]["UID"]))
    fields = ps[1][1].decode().split("\r\n")
    assert "Identity-Alignment: spf" in fields
    assert "Delivery-Result: delivered" in fields  # DMARC passed: delivered
    assert "SPF-DNS: txt : half.test : v=spf1 ip4:%s -all" % CLIENT in fields
    assert b"SPF passed for that domain, DKIM did not" in ps[0][1]
    # pass0.test (fo=0) passed DMARC: no report was made
    assert s.wait_log(r"action=mailauth .*from_domain=pass0\.test")
    assert "domain=pass0.test" not in "".join(
        l for l in s.log().splitlines(True) if "dmarc_failure_report" in l)
    assert s.find_messages(ALICE, "DMARC failure report for pass0.test") == []


def test_limit_outside_address_and_default_off(make_server, dns):
    s = make_server(conf=conf(dns, **{"mailauth.failure_report_limit": "1"}))
    s.cli_ok("alias", "add", "ruf@example.test", ALICE)
    for i in range(2):
        assert send(s, "boss@forged.test", message("boss@forged.test", "lim-%d" % i))[0] == 250
    assert s.wait_log(r"action=dmarc_failure_report domain=forged\.test result=kept")
    assert s.wait_log(r"action=dmarc_failure_report domain=forged\.test result=limited "
                      r'why="mailauth\.failure_report_limit reports this hour already"')
    # example.test does not accept noauth.test's reports: none is sent
    assert send(s, "x@noauth.test", message("x@noauth.test", "noauth"))[0] == 250
    assert s.wait_log(r"queue action=dmarc_failure_report domain=noauth\.test "
                      r"ruf=<ruf@example\.test> result=skipped", seconds=timeout(10))
    assert s.find_messages(ALICE, "DMARC failure report for noauth.test") == []
    assert len(wait_report(s, "DMARC failure report for forged.test")) == 1
    # off by default: nothing is kept
    d = make_server(conf={"dns.resolver": dns, "mailauth.timeout": "5s"})
    assert send(d, "boss@forged.test", message("boss@forged.test", "off"))[0] == 250
    assert d.wait_log(r"action=mailauth .*from_domain=forged\.test")
    assert "dmarc_failure_report" not in d.log()
