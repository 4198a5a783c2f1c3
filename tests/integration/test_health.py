"""GET /health for load balancers (docs/admin.md "Health checks"): 200 on
HTTP, HTTPS and the metrics listener without credentials and without the
redirect to HTTPS; HEAD; 405 for other methods; 503 with the reason when
the data folder has less room than health.min_free_space (reloaded on
SIGHUP), and 200 again once it is lowered; the spool folder is left as it
was; HAProxy's own health check (option httpchk) sees the node go down and
come back."""
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import HOST, timeout


def port_of(srv, key):
    m = re.fullmatch(r"(.*):(\d+)", srv.read_config().get(key, ""))
    assert m, key
    return int(m.group(2))


def get(srv, key, method="GET", https=False, path="/health"):
    port = port_of(srv, key)
    if https:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=timeout(10))
    else:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout(10))
    conn.request(method, path)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r, body


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"metrics.listen": "%s:%d" % (HOST, s.port_base + 5100),
                  "metrics.password": "secret"})
    s.start()
    return s


def hup(srv, values):
    mark = srv.log_mark()
    srv.set_config(values)
    os.kill(srv.pid, signal.SIGHUP)
    assert srv.wait_log(r"worker\d+\[\d+\] reload result=ok", 5, since=mark)


def test_ok_everywhere(srv):
    spool = os.path.join(srv.dir, "data", "spool")
    before = sorted(os.listdir(spool)) if os.path.isdir(spool) else None
    for key, https in (("http.listen", False), ("https.listen", True),
                       ("metrics.listen", False)):
        r, body = get(srv, key, https=https)
        assert (r.status, body) == (200, b"ok\n"), (key, r.status, body)
        assert r.getheader("Cache-Control") == "no-store"
        assert r.getheader("Content-Type") == "text/plain; charset=utf-8"
        r, body = get(srv, key, method="HEAD", https=https)
        assert (r.status, body) == (200, b""), key
    # the plain port answers itself rather than redirecting, and the
    # metrics port without its password
    if before is not None:
        assert sorted(os.listdir(spool)) == before


def test_other_methods(srv):
    r, body = get(srv, "http.listen", method="POST")
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD", (r.status, body)
    # only the exact path
    r, _ = get(srv, "https.listen", https=True, path="/health/x")
    assert r.status == 404


def test_low_disk_is_503_with_the_reason(srv):
    hup(srv, {"health.min_free_space": "100000000G"})
    try:
        mark = srv.log_mark()
        r, body = get(srv, "http.listen")
        assert r.status == 503, body
        assert re.fullmatch(rb"unavailable: \d+ MiB free in the data folder, below"
                            rb" health.min_free_space \(102400000000 MiB\)\n", body), body
        assert srv.wait_log(r"http action=health result=503 reason=", 5, since=mark)
    finally:
        hup(srv, {"health.min_free_space": "1M"})
    r, body = get(srv, "http.listen")
    assert (r.status, body) == (200, b"ok\n")


def test_haproxy_httpchk_follows_health(srv, tmp_path):
    """HAProxy (a real load balancer) with `option httpchk GET /health`:
    the server is UP, goes DOWN when /health says 503, UP again after."""
    sock = tmp_path / "stats.sock"
    with socket.socket() as s:
        s.bind((HOST, 0))
        front = s.getsockname()[1]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        "global\n  stats socket %s level admin\n"
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n"
        "  timeout server 5s\n"
        "frontend f\n  bind %s:%d\n  default_backend b\n"
        "backend b\n  option httpchk GET /health\n  http-check expect status 200\n"
        "  server tern %s:%d check inter 200ms fall 1 rise 1\n"
        % (sock, HOST, front, HOST, port_of(srv, "http.listen")))
    p = subprocess.Popen(["haproxy", "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)

    def state():
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout(5))
            s.connect(str(sock))
            s.sendall(b"show servers state b\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        for line in data.decode().splitlines():
            f = line.split()
            if len(f) > 5 and f[3] == "tern":
                return int(f[5])  # srv_op_state: 2 running, 0 stopped
        return None

    def wait_state(want):
        end = time.monotonic() + timeout(10)
        while time.monotonic() < end:
            if os.path.exists(sock) and state() == want:
                return True
            time.sleep(0.1)
        return False

    try:
        assert wait_state(2)
        hup(srv, {"health.min_free_space": "100000000G"})
        assert wait_state(0)
        hup(srv, {"health.min_free_space": "1M"})
        assert wait_state(2)
    finally:
        hup(srv, {"health.min_free_space": "1M"})
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
