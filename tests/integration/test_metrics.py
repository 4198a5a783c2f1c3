"""GET /metrics on the admin listener and `tern status` (docs/admin.md
"Monitoring"): off by default, loopback only or HTTP Basic, the exposition
parsed by prometheus_client's parser, exact counter deltas after real mail,
logins and a deferred delivery, counters that outlive a worker, and the
status command's lines and exit codes."""
import imaplib
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import HOST, HOSTNAME, PASSWORD, make_cert, timeout

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_port(srv):
    m = re.fullmatch(r".*:(\d+)", srv.read_config()["metrics.listen"])
    return int(m.group(1))


def scrape(srv, path="/metrics", source=None, user=None, password=None, method="GET",
           scheme="http"):
    """curl against the admin listener: (status, headers text, body)."""
    args = ["curl", "-s", "-S", "-X", method, "-D", "-", "--max-time", str(timeout(10))]
    if scheme == "https":  # tern init's self-signed certificate
        args += ["--cacert", os.path.join(srv.dir, "tls", "cert.pem"),
                 "--resolve", "%s:%d:%s" % (HOSTNAME, metrics_port(srv), HOST)]
    if source:
        args += ["--interface", source]
    if user is not None:
        args += ["-u", "%s:%s" % (user, password)]
    args.append("%s://%s:%d%s" % (scheme, HOSTNAME if scheme == "https" else HOST,
                                  metrics_port(srv), path))
    r = subprocess.run(args, capture_output=True, timeout=timeout(20))
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.decode("utf-8").partition("\r\n\r\n")
    status = int(head.split()[1])
    return status, head, body


def values(srv, **kw):
    """{(sample name, sorted labels): value} of one scrape, parsed by the
    Prometheus client library's text parser."""
    status, head, body = scrape(srv, **kw)
    assert status == 200, (head, body)
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def v(vals, name, **labels):
    return vals[(name, tuple(sorted(labels.items())))]


def new_server(make, conf=None, **extra):
    """A server with metrics.listen at its port base + 5100 (set after
    init, since the port base is chosen there; + 9100, init's suggestion,
    is past 65535 for the highest bases), not started."""
    srv = make(conf=conf, start=False)
    srv.set_config(dict({"metrics.listen": "%s:%d" % (HOST, srv.port_base + 5100)}, **extra))
    return srv


MODULE_CONF = {"workers": 2, "allow_plaintext_loopback": "yes", "auth.fail_delay_ms": "0",
               "spam.greylist_spf_passes": "0"}


@pytest.fixture(scope="module")
def srv(module_server):
    s = new_server(module_server, MODULE_CONF)
    # every message to a remote address goes to a port where nothing listens
    s.set_config({"outbound.relay": "%s:%d" % (HOST, s.port_base + 2)})
    # a certificate that expires within the warning time (tern status)
    make_cert(os.path.join(s.dir, "tls", "domains", "soon.example.test"), "soon.example.test",
              days=5)
    s.set_config({"tls.sni_dir": "tls/domains"})
    s.cli_ok("alias", "add", "fwd@example.test", "someone@remote.test")
    s.cli_ok("domain", "set", "example.org", "--greylist", "on")
    s.start()
    return s


def test_off_by_default(make_server):
    srv = make_server()
    text = open(srv.conf, encoding="utf-8").read()
    # init names the key, commented out, at port base + 9100 (9100 when
    # that is past 65535)
    port = srv.port_base + 9100 if srv.port_base + 9100 <= 65535 else 9100
    assert "\n# metrics.listen = 127.0.0.1:%d\n" % port in text
    assert "metrics.listen" not in srv.read_config()
    if port != 9100:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, port), timeout=timeout(5)).close()
    assert "key=metrics.listen" not in srv.log()


def test_exposition_parses_with_types_and_histograms(srv):
    status, head, body = scrape(srv)
    assert status == 200
    assert re.search(r"(?im)^content-type: %s\r?$" % re.escape(CONTENT_TYPE), head), head
    fams = {f.name: f for f in text_string_to_metric_families(body)}
    want = {
        "tern_build_info": "gauge", "tern_uptime_seconds": "gauge",
        "tern_start_time_seconds": "gauge",
        "tern_connections": "counter", "tern_connections_open": "gauge",
        "tern_messages_received": "counter", "tern_messages_delivered": "counter",
        "tern_messages_relayed": "counter", "tern_messages_deferred": "counter",
        "tern_messages_bounced": "counter", "tern_queue_messages": "gauge",
        "tern_queue_recipients": "gauge", "tern_queue_oldest_age_seconds": "gauge",
        "tern_auth_attempts": "counter", "tern_spam_verdicts": "counter",
        "tern_greylist_deferrals": "counter", "tern_dns_failures": "counter",
        "tern_proxy_header_failures": "counter",
        "tern_dns_lookup_duration_seconds": "histogram",
        "tern_store_commit_duration_seconds": "histogram",
        "tern_process_resident_memory_bytes": "gauge",
    }
    assert {n: f.type for n, f in fams.items()} == want
    assert [s.labels for s in fams["tern_build_info"].samples] == [{"version": "0.1.0"}]
    for name in ("tern_dns_lookup_duration_seconds", "tern_store_commit_duration_seconds"):
        buckets = [s for s in fams[name].samples if s.name == name + "_bucket"]
        bounds = [float(s.labels["le"]) for s in buckets]
        assert bounds == sorted(bounds) and bounds[-1] == float("inf")
        counts = [s.value for s in buckets]
        assert counts == sorted(counts)
        count = [s.value for s in fams[name].samples if s.name == name + "_count"]
        assert count == [counts[-1]]
    mem = {tuple(sorted(s.labels.items())): s.value
           for s in fams["tern_process_resident_memory_bytes"].samples}
    assert sorted(mem) == [(("process", "master"),), (("process", "queue"),),
                           (("process", "worker"), ("worker", "1")),
                           (("process", "worker"), ("worker", "2"))]
    assert all(1 << 20 < b < 1 << 30 for b in mem.values()), mem


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian's prometheus package is the whole "
                           "server, ~96 MB; docs/dependencies.md)")
def test_promtool_check_metrics(srv):
    _, _, body = scrape(srv)
    r = subprocess.run(["promtool", "check", "metrics"], input=body.encode(),
                       capture_output=True, timeout=timeout(30))
    assert r.returncode == 0, r.stdout + r.stderr


def test_grafana_dashboard_uses_served_names(srv):
    """contrib/grafana-tern.json is valid JSON and every series its panels
    ask for is one the server serves."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "grafana-tern.json")
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(dash["panels"]) >= 10 and all(exprs)
    served = {name for name, _ in values(srv)}
    asked = set(re.findall(r"\b(tern_[a-z_]+)", " ".join(exprs)))
    assert asked and asked <= served, asked - served
    # the main series each have a panel
    for name in ("tern_connections_open", "tern_messages_received_total",
                 "tern_queue_messages", "tern_auth_attempts_total",
                 "tern_dns_lookup_duration_seconds_bucket",
                 "tern_store_commit_duration_seconds_bucket",
                 "tern_process_resident_memory_bytes"):
        assert name in asked, name


def test_mail_received_and_delivered_counts(srv):
    before = values(srv)
    # not from 127.0.0.1, which is trusted (mailauth.trusted): not scored
    with smtplib.SMTP(HOST, srv.smtp_port, source_address=("127.0.1.5", 0),
                      timeout=timeout(10)) as c:
        for i in range(3):
            c.sendmail("someone@remote.test", ["alice@example.test"],
                       "Subject: metrics %d\r\n\r\nbody\r\n" % i)
    after = values(srv)
    d = lambda name, **l: v(after, name, **l) - v(before, name, **l)  # noqa: E731
    assert d("tern_messages_received_total", via="smtp") == 3
    assert d("tern_messages_received_total", via="submission") == 0
    assert d("tern_messages_delivered_total") == 3
    assert d("tern_messages_relayed_total") == 0
    assert d("tern_spam_verdicts_total", verdict="ham") == 3
    assert d("tern_spam_verdicts_total", verdict="junk") == 0
    assert d("tern_connections_total", protocol="smtp", listener="smtp") == 1
    assert d("tern_connections_total", protocol="imap", listener="imap") == 0
    # each delivery committed account.db at least once, with its fsync
    assert d("tern_store_commit_duration_seconds_count") >= 3
    assert d("tern_store_commit_duration_seconds_sum") > 0
    assert len(srv.find_messages("alice@example.test", "metrics 2")) == 1


def test_greylisting_counted(srv):
    before = values(srv)
    # 127.0.0.1 is trusted (mailauth.trusted): never greylisted
    with smtplib.SMTP(HOST, srv.smtp_port, source_address=("127.0.1.2", 0),
                      timeout=timeout(10)) as c:
        c.ehlo("client.example.net")
        c.mail("news@sender.example")
        code, text = c.rcpt("carol@example.org")
        assert code == 451 and b"Greylisted" in text
        c.rset()
    after = values(srv)
    assert v(after, "tern_greylist_deferrals_total") - v(before, "tern_greylist_deferrals_total") == 1
    assert v(after, "tern_connections_total", protocol="smtp", listener="smtp") - \
        v(before, "tern_connections_total", protocol="smtp", listener="smtp") == 1


def test_connections_open_gauge(srv):
    c = socket.create_connection((HOST, srv.imap_port), timeout=timeout(5))
    try:
        assert c.recv(100).startswith(b"* OK")
        deadline = time.monotonic() + timeout(5)
        while True:  # sampled by the workers every second
            n = v(values(srv), "tern_connections_open", protocol="imap", listener="imap")
            if n == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert n == 1
    finally:
        c.close()


def test_failed_imap_logins_counted(srv):
    before = values(srv)
    for _ in range(2):
        m = imaplib.IMAP4(HOST, srv.imap_port)
        with pytest.raises(imaplib.IMAP4.error):
            m.login("alice@example.test", "wrong password")
        m.logout()
    m = imaplib.IMAP4(HOST, srv.imap_port)
    m.login("alice@example.test", PASSWORD)
    m.logout()
    after = values(srv)
    d = lambda **l: (v(after, "tern_auth_attempts_total", **l)  # noqa: E731
                     - v(before, "tern_auth_attempts_total", **l))
    assert d(protocol="imap", result="failure") == 2
    assert d(protocol="imap", result="success") == 1
    assert d(protocol="imap", result="blocked") == 0
    assert d(protocol="pop3", result="failure") == 0


def test_deferred_delivery_and_queue_gauges(srv):
    before = values(srv)
    assert v(before, "tern_queue_messages") == 0
    assert v(before, "tern_queue_oldest_age_seconds") == 0
    mark = srv.log_mark()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as c:
        c.sendmail("someone@remote.test", ["fwd@example.test"], "Subject: away\r\n\r\nx\r\n")
    assert srv.wait_log(r"queue id=\d+ rcpt=<someone@remote.test> result=deferred", 10,
                        since=mark)
    after = values(srv)
    assert v(after, "tern_messages_deferred_total") - v(before, "tern_messages_deferred_total") == 1
    assert v(after, "tern_messages_bounced_total") == v(before, "tern_messages_bounced_total")
    assert v(after, "tern_messages_relayed_total") == v(before, "tern_messages_relayed_total")
    assert v(after, "tern_queue_messages") == 1
    assert v(after, "tern_queue_recipients") == 1
    assert 0 <= v(after, "tern_queue_oldest_age_seconds") < 60


def test_loopback_only_without_password(srv):
    status, head, body = scrape(srv, source="127.0.0.2")
    assert status == 403, (head, body)
    assert "127.0.0.1" in body and "tern_" not in body
    assert scrape(srv, path="/")[0] == 404
    assert scrape(srv, path="/mail/config-v1.1.xml")[0] == 404  # no public route here
    assert scrape(srv, method="POST")[0] == 405
    # the admin listener's own connections are not counted as HTTP ones
    assert v(values(srv), "tern_connections_total", protocol="http", listener="http") == 0


def test_status_while_running(srv):
    r = srv.cli("status")
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr)
    lines = out.splitlines()
    assert lines[0].startswith("tern 0.1.0 is running: master pid %d, up " % srv.pid), out
    assert "processes: 2 workers" in lines
    workers = [l for l in lines if re.match(r"  worker [12] +pid \d+ +memory \d+\.\d MiB$", l)]
    assert len(workers) == 2, out
    assert sorted(int(re.search(r"pid (\d+)", l).group(1)) for l in workers) == \
        sorted(srv.workers())
    assert re.search(r"(?m)^  queue +pid %d +memory " % srv.queue_runner(), out), out
    assert re.search(r"(?m)^  smtp +127\.0\.0\.1:%d +\d+ open, [1-9]\d* since start$"
                     % srv.smtp_port, out), out
    assert re.search(r"(?m)^  metrics +127\.0\.0\.1:%d +GET /metrics$" % metrics_port(srv),
                     out), out
    assert re.search(r"(?m)^queue: 1 message \(1 recipient\), oldest queued \d+s ago$", out), out
    assert re.search(r"(?m)^messages: 4 received in the last hour; since start 4 received "
                     r"\(4 port 25, 0 submission\), 3 delivered locally, 0 relayed, "
                     r"1 deferred, 0 bounced$", out), out
    assert re.search(r"(?m)^logins: 2 failed, 0 blocked, 1 succeeded since start "
                     r"\(failed: imap 2\)$", out), out
    assert re.search(r"(?m)^  /\S+/tls/cert\.pem: /CN=\S+, expires \d{4}-\d\d-\d\d \d\d:\d\d "
                     r"UTC \(in \d+ days\)$", out), out
    assert re.search(r"(?m)^  /\S+/soon\.example\.test/cert\.pem: /CN=soon\.example\.test, "
                     r"expires .* \(in [45] days\)$", out), out
    assert re.search(r"(?m)^  warning: \S+soon\.example\.test/cert\.pem expires in less than "
                     r"14 days: renew it$", out), out
    assert len(re.findall(r"(?m)^  warning:", out)) == 1, out
    # the same as JSON
    r = srv.cli("status", "--json")
    assert r.returncode == 0
    j = json.loads(r.stdout)
    assert j["running"] is True and j["version"] == "0.1.0" and j["master_pid"] == srv.pid
    assert sorted(p["pid"] for p in j["processes"] if p["process"] == "worker") == \
        sorted(srv.workers())
    assert all(p["rss_bytes"] > 1 << 20 for p in j["processes"])
    smtp = [l for l in j["listeners"] if l["listener"] == "smtp"]
    assert smtp == [{"listener": "smtp", "address": "127.0.0.1:%d" % srv.smtp_port,
                     "open": smtp[0]["open"], "total": smtp[0]["total"]}]
    assert j["queue"]["messages"] == 1 and j["queue"]["recipients"] == 1
    assert j["messages"] == {"received_last_hour": 4, "received_smtp": 4,
                             "received_submission": 0, "delivered": 3, "relayed": 0,
                             "deferred": 1, "bounced": 0}
    assert j["logins"]["imap"] == {"success": 1, "failure": 2, "blocked": 0}
    soon = [c for c in j["certificates"] if "soon.example.test" in c["path"]]
    assert len(soon) == 1 and soon[0]["warning"] is True and soon[0]["days_left"] in (4, 5)
    assert [c["warning"] for c in j["certificates"]].count(True) == 1


def test_counters_survive_a_worker_restart(srv):
    before = values(srv)
    srv.allow_worker_deaths = True
    victim = sorted(srv.workers())[0]
    mark = srv.log_mark()
    os.kill(victim, signal.SIGKILL)
    assert srv.wait_log(r"worker\d\[\d+\] worker action=start", 10, since=mark)
    deadline = time.monotonic() + timeout(5)
    while victim in srv.workers() or len(srv.workers()) != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    after = values(srv)
    for name, labels in (("tern_messages_received_total", {"via": "smtp"}),
                         ("tern_messages_delivered_total", {}),
                         ("tern_messages_deferred_total", {}),
                         ("tern_auth_attempts_total", {"protocol": "imap", "result": "failure"})):
        assert v(after, name, **labels) == v(before, name, **labels) > 0, name
    assert v(after, "tern_start_time_seconds") == v(before, "tern_start_time_seconds")
    # the new worker is in the memory gauges, the dead one is not
    assert len([k for k in after if k[0] == "tern_process_resident_memory_bytes"]) == 4
    r = srv.cli("status")
    assert r.returncode == 0
    assert str(victim) not in r.stdout.decode()


def test_password_basic_auth_and_reload(make_server):
    srv = new_server(make_server, **{"metrics.password": "sesame"})
    srv.start()
    status, head, _ = scrape(srv)
    assert status == 401
    assert re.search(r'(?im)^www-authenticate: Basic realm="tern metrics"', head), head
    assert scrape(srv, user="metrics", password="wrong")[0] == 401
    assert scrape(srv, user="admin", password="sesame")[0] == 401
    assert scrape(srv, user="metrics", password="sesame")[0] == 200
    # with a password, other addresses may scrape too
    assert scrape(srv, source="127.0.0.2", user="metrics", password="sesame")[0] == 200
    assert scrape(srv, source="127.0.0.2")[0] == 401
    v(values(srv, user="metrics", password="sesame"), "tern_uptime_seconds")
    # metrics.password is reloaded on SIGHUP
    srv.set_config({"metrics.password": "new-sesame"})
    n = len(srv.children()) + 1
    mark = srv.log_mark()
    os.kill(srv.pid, signal.SIGHUP)
    assert len(srv.wait_log(r"\] reload result=ok", 10, since=mark, count=n)) == n
    assert scrape(srv, user="metrics", password="sesame")[0] == 401
    assert scrape(srv, user="metrics", password="new-sesame")[0] == 200


def test_status_exit_codes_when_not_running(make_server):
    srv = new_server(make_server)
    r = srv.cli("status")
    assert r.returncode == 1
    assert r.stdout.decode() == "tern is not running (no %s/metrics.table: `tern serve` " \
        "makes it)\n" % srv.data
    assert json.loads(srv.cli("status", "--json").stdout)["running"] is False
    srv.start()
    pid = srv.pid
    assert srv.cli("status").returncode == 0
    srv.stop()
    r = srv.cli("status")
    assert r.returncode == 1
    assert r.stdout.decode() == "tern is not running (its master, pid %d, is gone)\n" % pid
    assert srv.cli("status", "extra").returncode == 2
    r = srv.cli("status", "--help")
    assert r.returncode == 0
    assert r.stdout.decode().startswith("usage: tern [-c FILE] status [--json]\n")
    r = srv.cli("status", "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {
        "running": False, "reason": "its master, pid %d, is gone" % pid}
    assert srv.cli("status", "--json", "--bogus").returncode == 2


def test_https_with_metrics_tls(make_server):
    srv = new_server(make_server, **{"metrics.tls": "yes", "metrics.password": "sesame"})
    srv.start()
    status, head, body = scrape(srv, scheme="https", user="metrics", password="sesame")
    assert status == 200 and "tern_build_info" in body
    assert re.search(r"(?im)^strict-transport-security: ", head), head
    assert scrape(srv, scheme="https")[0] == 401
    # plain HTTP on it gets no answer: the TLS handshake comes first
    r = subprocess.run(["curl", "-s", "--max-time", str(timeout(2)),
                        "http://%s:%d/metrics" % (HOST, metrics_port(srv))],
                       capture_output=True, timeout=timeout(20))
    assert r.returncode != 0 and b"tern_" not in r.stdout


def test_dns_lookups_timed_and_failures_counted(make_server):
    """The queue's MX lookup through a resolver that never answers: one
    lookup in the histogram, one DNS failure, one deferral."""
    # MTA-STS off: its _mta-sts TXT lookup would be a second one (counted too)
    srv = new_server(make_server, **{"queue.timeout.dns": "2s", "outbound.mta_sts": "no"})
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind((HOST, 0))  # takes the queries, answers none
    try:
        srv.set_config({"dns.resolver": "%s:%d" % (HOST, dead.getsockname()[1])})
        srv.cli_ok("alias", "add", "fwd@example.test", "someone@remote.test")
        srv.start()
        before = values(srv)
        mark = srv.log_mark()
        with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as c:
            c.sendmail("a@remote.test", ["fwd@example.test"], "Subject: dns\r\n\r\nx\r\n")
        assert srv.wait_log(r"rcpt=<someone@remote.test> result=deferred", 20, since=mark)
        after = values(srv)
    finally:
        dead.close()
    d = lambda name: v(after, name) - v(before, name)  # noqa: E731
    assert d("tern_dns_lookup_duration_seconds_count") == 1
    assert d("tern_dns_failures_total") == 1
    assert d("tern_messages_deferred_total") == 1
    # it waited the 2 s of queue.timeout.dns: in the buckets above 1 s
    assert v(after, "tern_dns_lookup_duration_seconds_bucket", le="1") == \
        v(before, "tern_dns_lookup_duration_seconds_bucket", le="1")
    assert v(after, "tern_dns_lookup_duration_seconds_bucket", le="+Inf") - \
        v(before, "tern_dns_lookup_duration_seconds_bucket", le="+Inf") == 1
    assert 1.5 < d("tern_dns_lookup_duration_seconds_sum") < 10
