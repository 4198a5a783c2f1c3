"""`tern domain check DOMAIN` (issue 15 item 1): asks DNS, through the
configured resolver (a dnsmasq here), whether the records `tern domain
dns` prints are published and right, and says record by record what is
fine, missing or wrong.  Our own signed test message is checked as a
receiver would: SPF for the host's address, both DKIM keys, DMARC."""

import os
import re
import subprocess
import tempfile
import time

import pytest

from conftest import sanitizer_report, timeout
from test_spf_cli import DNSMASQ, free_port, pick_port

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")


def dkim_records(srv, domain):
    out = srv.cli_ok("domain", "dns", domain).stdout.decode()
    recs = {}
    for m in re.finditer(r"^(\S+)\._domainkey\.\S+ IN TXT (\(.*?\)|\"[^\"]*\")", out, re.M | re.S):
        recs[m.group(1)] = re.findall(r'"([^"]*)"', m.group(2))
    return recs


def start_dnsmasq(records):
    port = pick_port()
    logpath = tempfile.mktemp(prefix="tern-dnsmasq-dc-", suffix=".log")
    log = open(logpath, "wb")
    args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--port=%d" % port,
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--local=/test/", "--local=/example.org/", "--local=/in-addr.arpa/"] + \
        (["--user=root"] if os.geteuid() == 0 else []) + records
    proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while free_port(port):
        assert proc.poll() is None, open(logpath).read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc, port, log, logpath


def test_domain_check_all_in_place_and_problems(make_server):
    s = make_server(start=False)
    recs = dkim_records(s, "example.test")
    assert len(recs) == 2
    records = [
        "--mx-host=example.test,mx.example.test,10",
        "--host-record=mx.example.test,192.0.2.10",
        "--ptr-record=10.2.0.192.in-addr.arpa,mx.example.test",
        "--txt-record=example.test,v=spf1 mx -all",
        "--txt-record=_dmarc.example.test,v=DMARC1; p=none; rua=mailto:postmaster@example.test",
    ] + ["--txt-record=%s._domainkey.example.test,%s" % (sel, ",".join(parts))
         for sel, parts in recs.items()]
    proc, port, log, logpath = start_dnsmasq(records)
    try:
        s.set_config({"dns.resolver": "127.0.0.1:%d" % port, "mailauth.timeout": "5s"})
        r = s.cli("domain", "check", "example.test")
        assert not sanitizer_report(r.stderr.decode()), r.stderr
        out = r.stdout.decode()
        assert r.returncode == 0, out
        lines = out.splitlines()
        assert lines[0].startswith("Checking example.test through the resolver 127.0.0.1:")
        assert "ok       MX: mail for example.test goes to mx.example.test" in lines
        assert "ok       SPF: 192.0.2.10 may send for example.test" in lines
        for sel in recs:
            assert "ok       DKIM: %s._domainkey.example.test is published and matches" % sel \
                in lines, out
        assert any(l.startswith("note     DMARC: passes, with p=none") for l in lines), out
        assert "ok       PTR: 192.0.2.10 is mx.example.test, and mx.example.test resolves " \
            "back to it" in lines, out
        assert lines[-1] == "Everything example.test needs is in place."

        # example.org: nothing published at all
        r = s.cli("domain", "check", "example.org")
        out = r.stdout.decode()
        assert r.returncode == 1, out
        assert ("PROBLEM  MX: example.org has no MX record; other servers will not bring its "
                "mail here. Publish: example.org. IN MX 10 mx.example.test.") in out, out
        assert "PROBLEM  SPF: none for mail from example.org at 192.0.2.10" in out, out
        assert re.search(r"PROBLEM  DKIM: ed-\d+\._domainkey\.example\.org: permerror", out), out
        assert "PROBLEM  DMARC: example.org publishes no policy" in out, out
        assert re.search(r"^\d+ problems: fix the records above, then run this again\.$", out,
                         re.M), out
        r = s.cli("domain", "check", "nosuch.example")
        assert r.returncode == 1 and b"no such domain nosuch.example" in r.stderr
    finally:
        proc.terminate()
        proc.wait(5)
        log.close()
        os.unlink(logpath)
