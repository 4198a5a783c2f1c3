"""DMARC aggregate reports (issue 15 item 4, sending): every DMARC
evaluation of mail from a domain whose record has rua= is kept, and once
mailauth.report_interval has passed the queue runner sends one gzip'd
XML report (RFC 7489 appendix C) per domain to its rua address, here an
alias of ours (so the report lands in alice's INBOX, to be read back with
Python's email, gzip and xml modules).  The address is outside the
reported domain, so it gets the report only when its domain authorizes it
(7.1: rep.test._report._dmarc.example.test TXT "v=DMARC1").
"""

import email
import email.policy
import gzip
import io
import smtplib
import zipfile
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
import os
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import HOST, timeout
from test_mailauth import CLIENT, message, send
from test_spf_cli import DNSMASQ, dnsmasq

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")

ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def dns():
    records = [
        "--txt-record=rep.test,v=spf1 ip4:%s -all" % CLIENT,
        "--txt-record=_dmarc.rep.test,v=DMARC1; p=none; rua=mailto:reports@example.test",
        "--txt-record=rep.test._report._dmarc.example.test,v=DMARC1",
        "--txt-record=noauth.test,v=spf1 ip4:%s -all" % CLIENT,
        "--txt-record=_dmarc.noauth.test,v=DMARC1; p=none; rua=mailto:reports@example.test",
        "--txt-record=example.test,v=spf1 ip4:%s -all" % CLIENT,
        "--txt-record=_dmarc.example.test,v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test",
    ]
    with dnsmasq(records) as addr:
        yield addr


def test_aggregate_report_sent_to_an_authorized_rua(make_server, dns):
    s = make_server(conf={"dns.resolver": dns, "mailauth.timeout": "5s",
                          "mailauth.report_interval": "2s"})
    s.cli_ok("alias", "add", "reports@example.test", ALICE)
    token = "rep-%d" % os.getpid()
    for i in range(2):
        assert send(s, "news@rep.test", message("news@rep.test", "%s-%d" % (token, i)))[0] == 250
    assert send(s, "news@noauth.test", message("news@noauth.test", token + "-x"))[0] == 250
    deadline = time.monotonic() + timeout(20)
    while True:
        rows = s.find_messages(ALICE, "Report Domain: rep.test")
        if rows:
            break
        assert time.monotonic() < deadline, s.log()[-3000:]
        time.sleep(0.2)
    assert len(rows) == 1, rows
    raw = s.mail_cat(ALICE, "INBOX", rows[0]["UID"])
    msg = email.message_from_bytes(raw)
    assert msg["Subject"].startswith("Report Domain: rep.test Submitter: mx.example.test "
                                     "Report-ID: <"), msg["Subject"]
    assert msg["From"] == "DMARC reports <postmaster@mx.example.test>"
    parts = [p for p in msg.walk() if p.get_content_type() == "application/gzip"]
    assert len(parts) == 1
    fname = parts[0].get_filename()
    assert fname.startswith("mx.example.test!rep.test!") and fname.endswith(".xml.gz"), fname
    root = ET.fromstring(gzip.decompress(parts[0].get_payload(decode=True)))
    assert root.tag == "feedback"
    assert root.findtext("report_metadata/org_name") == "mx.example.test"
    begin = int(root.findtext("report_metadata/date_range/begin"))
    end = int(root.findtext("report_metadata/date_range/end"))
    assert begin <= end
    pp = root.find("policy_published")
    assert {c.tag: c.text for c in pp} == {"domain": "rep.test", "adkim": "r", "aspf": "r",
                                           "p": "none", "sp": "none", "pct": "100"}
    recs = root.findall("record")
    assert len(recs) == 1, ET.tostring(root)
    r = recs[0]
    assert r.findtext("row/source_ip") == CLIENT
    assert r.findtext("row/count") == "2"
    assert r.findtext("row/policy_evaluated/disposition") == "none"
    assert r.findtext("row/policy_evaluated/dkim") == "fail"
    assert r.findtext("row/policy_evaluated/spf") == "pass"
    assert r.findtext("identifiers/header_from") == "rep.test"
    assert r.find("auth_results/dkim") is None  # the messages were not signed
    assert r.findtext("auth_results/spf/domain") == "rep.test"
    assert r.findtext("auth_results/spf/result") == "pass"
    # noauth.test's report was not sent: example.test does not accept it
    assert s.wait_log(r"action=dmarc_report domain=noauth\.test rua=<reports@example\.test> "
                      r"result=skipped", seconds=timeout(10))
    assert s.find_messages(ALICE, "Report Domain: noauth.test") == []
    assert s.wait_log(r"action=dmarc_report domain=rep\.test rua=<reports@example\.test> "
                      r"size=\d+ result=sent")


GOOGLE_XML = b"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <report_id>1234567890</report_id>
    <date_range><begin>1796515200</begin><end>1796601599</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.test</domain><adkim>r</adkim><aspf>r</aspf>
    <p>quarantine</p><sp>quarantine</sp><pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>198.51.100.7</source_ip><count>3</count>
      <policy_evaluated><disposition>quarantine</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results><spf><domain>example.test</domain><result>fail</result></spf></auth_results>
  </record>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip><count>40</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results><dkim><domain>example.test</domain><result>pass</result></dkim>
      <spf><domain>example.test</domain><result>pass</result></spf></auth_results>
  </record>
</feedback>
"""


def test_reports_about_our_domain_are_read(make_server, dns):
    s = make_server(conf={"dns.resolver": dns, "mailauth.timeout": "5s",
                          "mailauth.report_interval": "2s"})
    # 1. Tern's own report: mail from example.test seen on port 25 is
    #    reported to postmaster@example.test (a gzip'd report).
    token = "own-%d" % os.getpid()
    assert send(s, "news@example.test", message("news@example.test", token))[0] == 250
    # 2. A zipped report as Google sends them.
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("google.com!example.test!1796515200!1796601599.xml", GOOGLE_XML)
    m = MIMEMultipart()
    m["From"] = "noreply-dmarc-support@google.com"
    m["To"] = "postmaster@example.test"
    m["Subject"] = "Report domain: example.test Submitter: google.com Report-ID: 1234567890"
    m.attach(MIMEText("This is an aggregate report from Google."))
    att = MIMEApplication(zbuf.getvalue(), "zip")
    att.add_header("Content-Disposition", "attachment",
                   filename="google.com!example.test!1796515200!1796601599.zip")
    m.attach(att)
    with smtplib.SMTP(HOST, s.smtp_port, timeout=timeout(10)) as c:
        c.sendmail("noreply-dmarc-support@google.com", ["postmaster@example.test"],
                   m.as_bytes(policy=email.policy.SMTP))
    deadline = time.monotonic() + timeout(20)
    while not s.find_messages(ALICE, "Report Domain: example.test Submitter: mx.example.test"):
        assert time.monotonic() < deadline, s.log()[-3000:]
        time.sleep(0.2)
    out = s.cli_ok("dmarc", "reports", "example.test").stdout.decode()
    lines = out.splitlines()
    assert "example.test: report by google.com, 2026-12-06 00:00 .. 2026-12-06 23:59 UTC " \
        "(id 1234567890)" in lines, out
    assert "  198.51.100.7  3 messages  FAIL (dkim fail, spf fail)  disposition quarantine  " \
        "from example.test" in lines, out
    assert "  192.0.2.10  40 messages  pass (dkim pass, spf pass)  disposition none  " \
        "from example.test" in lines, out
    assert any(l.startswith("example.test: report by mx.example.test, ") for l in lines), out
    assert "  %s  1 message  pass (dkim fail, spf pass)  disposition none  from example.test" \
        % CLIENT in lines, out
    assert lines[-1] == ("Summary for example.test: 2 reports, 44 messages, 3 failed DMARC "
                         "(someone else sends as the domain, or a server of yours is not "
                         "covered by SPF/DKIM)"), out
    r = s.cli_ok("dmarc", "reports", "example.org")
    assert r.stdout.decode() == ("example.org: no DMARC reports in the mailboxes "
                                 "postmaster@example.org reaches\n")
