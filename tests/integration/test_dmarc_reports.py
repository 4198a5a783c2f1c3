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
import gzip
import os
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import timeout
from test_mailauth import CLIENT, message, send
from test_spf_cli import DNSMASQ, free_port, pick_port

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")

ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def dns():
    port = pick_port()
    logpath = tempfile.mktemp(prefix="tern-dnsmasq-rep-", suffix=".log")
    log = open(logpath, "wb")
    records = [
        "--txt-record=rep.test,v=spf1 ip4:%s -all" % CLIENT,
        "--txt-record=_dmarc.rep.test,v=DMARC1; p=none; rua=mailto:reports@example.test",
        "--txt-record=rep.test._report._dmarc.example.test,v=DMARC1",
        "--txt-record=noauth.test,v=spf1 ip4:%s -all" % CLIENT,
        "--txt-record=_dmarc.noauth.test,v=DMARC1; p=none; rua=mailto:reports@example.test",
    ]
    args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--port=%d" % port,
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--local=/test/"] + (["--user=root"] if os.geteuid() == 0 else []) + records
    proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while free_port(port):
        assert proc.poll() is None, open(logpath).read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield "127.0.0.1:%d" % port
    proc.terminate()
    proc.wait(5)
    log.close()
    os.unlink(logpath)


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
