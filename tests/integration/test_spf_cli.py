"""`tern auth-check spf IP HELO SENDER`: the SPF evaluator (RFC 7208) with
real asynchronous DNS (libunbound) through dns.resolver, against a dnsmasq
on loopback serving these zones:

    a.test      TXT "v=spf1 " "ip4:1.2.3.0/24 -all exp=why.a.test"  (two strings)
    why.a.test  TXT "%{i} may not send for %{d} (%{s})"
    b.test      TXT "v=spf1 mx a:host.b.test include:a.test -all"
                MX mx.b.test (10.0.0.1), host.b.test A 10.0.0.2
    c.test      TXT "v=spf1 ptr -all";  4.3.2.1.in-addr.arpa PTR mail.c.test,
                mail.c.test A 1.2.3.4
    two.test    two SPF records
    nospf.test  only an A record
    helo.test   TXT "v=spf1 a -all", A 1.2.3.4
    d.test      TXT "v=spf1 exists:%{ir}.%{l}.bl.d.test -all"
                4.3.2.1.alice.bl.d.test A 127.0.0.2
    e.test      TXT "v=spf1 include:nospf.test -all"
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import sanitizer_report, timeout, worker_port_bases

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TERN = os.environ.get("TERN_BIN") or os.path.join(ROOT, "build", "tern")

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")


def free_port(port):
    """Free on 127.0.0.1 for UDP and TCP (dnsmasq listens on both)."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_port():
    import random
    bases = worker_port_bases()
    for _ in range(200):
        port = random.choice(bases) + 53
        if free_port(port):
            return port
    raise RuntimeError("no free port for dnsmasq")


RECORDS = [
    "--txt-record=a.test,v=spf1 ,ip4:1.2.3.0/24 -all exp=why.a.test",
    "--txt-record=why.a.test,%{i} may not send for %{d} (%{s})",
    "--txt-record=b.test,v=spf1 mx a:host.b.test include:a.test -all",
    "--mx-host=b.test,mx.b.test,10",
    "--host-record=mx.b.test,10.0.0.1",
    "--host-record=host.b.test,10.0.0.2",
    "--txt-record=c.test,v=spf1 ptr -all",
    "--ptr-record=4.3.2.1.in-addr.arpa,mail.c.test",
    "--host-record=mail.c.test,1.2.3.4",
    "--txt-record=two.test,v=spf1 -all",
    "--txt-record=two.test,v=spf1 +all",
    "--host-record=nospf.test,1.2.3.4",
    "--txt-record=helo.test,v=spf1 a -all",
    "--host-record=helo.test,1.2.3.4",
    "--txt-record=d.test,v=spf1 exists:%{ir}.%{l}.bl.d.test -all",
    "--host-record=4.3.2.1.alice.bl.d.test,127.0.0.2",
    "--txt-record=e.test,v=spf1 include:nospf.test -all",
]


@pytest.fixture(scope="module")
def world():
    port = pick_port()
    logpath = tempfile.mktemp(prefix="tern-dnsmasq-spf-", suffix=".log")
    log = open(logpath, "wb")
    args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--port=%d" % port,
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--local=/test/"] + (["--user=root"] if os.geteuid() == 0 else []) + RECORDS
    proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("dnsmasq exited: %s" % open(logpath).read())
        if not free_port(port):
            break
        time.sleep(0.05)
    base = tempfile.mkdtemp(prefix="tern-spf-")
    os.chmod(base, 0o755)
    confs = {}
    for name, resolver in (("ok", "127.0.0.1:%d" % port), ("dead", "127.0.0.1:9")):
        d = os.path.join(base, name)
        r = subprocess.run([TERN, "init", d, "--domain", "r.test", "--hostname", "mx.r.test",
                            "--resolver", resolver], capture_output=True, timeout=60)
        assert r.returncode == 0, r
        conf = os.path.join(d, "tern.conf")
        with open(conf, "a") as f:
            f.write("queue.timeout.dns = 2s\n")
        confs[name] = conf
    yield confs
    proc.terminate()
    proc.wait(5)
    log.close()
    os.unlink(logpath)
    shutil.rmtree(base, ignore_errors=True)


def check(conf, *args):
    r = subprocess.run([TERN, "-c", conf, "auth-check", "spf"] + list(args),
                       capture_output=True, text=True, timeout=timeout(60))
    marker = sanitizer_report(r.stderr)
    assert not marker, r.stderr
    return r


def fields(r):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(": ")
        out[k] = v
    return out


def test_pass_two_strings_joined(world):
    r = check(world["ok"], "1.2.3.4", "client.example", "user@a.test")
    assert r.stdout == ("result: pass\nidentity: mailfrom\ndomain: a.test\n"
                        "reason: a.test: 'ip4:1.2.3.0/24' matched\nqueries: 1\n")


def test_fail_with_explanation(world):
    f = fields(check(world["ok"], "5.6.7.8", "client.example", "user@a.test"))
    assert f["result"] == "fail"
    assert f["reason"] == "a.test: '-all' matched"
    assert f["explanation"] == "5.6.7.8 may not send for a.test (user@a.test)"
    assert f["queries"] == "2"


def test_mx_a_include(world):
    f = fields(check(world["ok"], "10.0.0.1", "client.example", "u@b.test"))
    assert (f["result"], f["reason"]) == ("pass", "b.test: 'mx' matched")
    f = fields(check(world["ok"], "10.0.0.2", "client.example", "u@b.test"))
    assert (f["result"], f["reason"]) == ("pass", "b.test: 'a:host.b.test' matched")
    f = fields(check(world["ok"], "1.2.3.9", "client.example", "u@b.test"))
    assert (f["result"], f["reason"]) == ("pass", "b.test: 'include:a.test' matched")
    f = fields(check(world["ok"], "10.0.0.3", "client.example", "u@b.test"))
    assert f["result"] == "fail"
    # Through include, a.test's exp is not used.
    assert "explanation" not in f


def test_ptr(world):
    f = fields(check(world["ok"], "1.2.3.4", "client.example", "u@c.test"))
    assert (f["result"], f["reason"]) == ("pass", "c.test: 'ptr' matched")
    f = fields(check(world["ok"], "1.2.3.5", "client.example", "u@c.test"))
    assert f["result"] == "fail"


def test_exists_with_macros(world):
    f = fields(check(world["ok"], "1.2.3.4", "client.example", "alice@d.test"))
    assert f["result"] == "pass"
    f = fields(check(world["ok"], "1.2.3.4", "client.example", "bob@d.test"))
    assert f["result"] == "fail"


def test_none_permerror(world):
    assert fields(check(world["ok"], "1.2.3.4", "c.example", "u@nospf.test"))["result"] == "none"
    assert fields(check(world["ok"], "1.2.3.4", "c.example", "u@nx.test"))["result"] == "none"
    f = fields(check(world["ok"], "1.2.3.4", "c.example", "u@two.test"))
    assert (f["result"], f["reason"]) == ("permerror", "two.test has 2 SPF records")
    f = fields(check(world["ok"], "1.2.3.4", "c.example", "u@e.test"))
    assert (f["result"], f["reason"]) == ("permerror", "include:nospf.test has no SPF record")


def test_helo_and_null_sender(world):
    f = fields(check(world["ok"], "1.2.3.4", "helo.test", "<>"))
    assert (f["result"], f["domain"]) == ("pass", "helo.test")
    f = fields(check(world["ok"], "--identity", "helo", "5.6.7.8", "helo.test", "u@a.test"))
    assert (f["result"], f["identity"], f["domain"]) == ("fail", "helo", "helo.test")
    f = fields(check(world["ok"], "1.2.3.4", "[1.2.3.4]", ""))
    assert (f["result"], f["queries"]) == ("none", "0")


def test_dns_failure_is_temperror(world):
    f = fields(check(world["dead"], "1.2.3.4", "client.example", "user@a.test"))
    assert f["result"] == "temperror"
    assert f["reason"] == "temporary DNS error looking up the TXT records of a.test"


def test_usage_errors(world):
    r = check(world["ok"], "not-an-ip", "h.example", "u@a.test")
    assert r.returncode == 2
    assert "\"not-an-ip\" is not an IPv4 or IPv6 address" in r.stderr
    r = check(world["ok"], "1.2.3.4", "h.example")
    assert r.returncode == 2
    r = check(world["ok"], "--identity", "rcpt", "1.2.3.4", "h.example", "u@a.test")
    assert r.returncode == 2
    r = subprocess.run([TERN, "-c", world["ok"], "auth-check", "dkim"], capture_output=True,
                       text=True, timeout=timeout(30))
    assert r.returncode == 2 and "unknown method \"dkim\"" in r.stderr
