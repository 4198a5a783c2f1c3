"""PROXY protocol v1/v2 in front of the listeners (docs/admin.md "Behind a
load balancer", docs/config.md proxy.*): a trusted proxy's header gives the
client address the protocols use; anyone else's bytes are protocol input;
a bad or missing header closes only that connection."""

import os
import re
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import HOST, parse_received, timeout

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PROXY = "127.0.0.2"


def port_of(srv, key):
    m = re.fullmatch(r"(.*):(\d+)", srv.read_config()[key])
    return int(m.group(2))


def v2_tcp4(src, dst, sport, dport, tlvs=b""):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def v2_tcp6(src, dst, sport, dport):
    body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", sport, dport))
    return V2_SIG + b"\x21\x21" + struct.pack("!H", len(body)) + body


def connect(port, source=PROXY):
    return socket.create_connection((HOST, port), timeout=timeout(10),
                                    source_address=(source, 0))


@pytest.fixture(scope="module")
def srv(module_server):
    # 127.0.0.2 is the proxy; 127.0.0.1 (the fixture's own checks too) an
    # ordinary client
    return module_server({
        "log.level": "debug",
        "proxy.trusted": "127.0.0.2",
        "proxy.timeout": "2s",
        "smtp.proxy_protocol": "yes",
        "submissions.proxy_protocol": "yes",
        "imap.proxy_protocol": "yes",
        "pop3.proxy_protocol": "yes",
    })


def smtp_deliver(srv, header, token):
    """Sends header, then one message over raw SMTP; returns its Received."""
    s = connect(srv.smtp_port)
    s.sendall(header)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    for line, code in ((b"EHLO client.example.net", b"250"),
                       (b"MAIL FROM:<x@example.net>", b"250"),
                       (b"RCPT TO:<alice@example.test>", b"250"),
                       (b"DATA", b"354")):
        s.sendall(line + b"\r\n")
        while True:
            r = f.readline()
            assert r[:3] == code, (line, r)
            if r[3:4] == b" ":
                break
    s.sendall(b"Subject: " + token.encode() + b"\r\n\r\nhello\r\n.\r\n")
    assert f.readline().startswith(b"250 ")
    s.sendall(b"QUIT\r\n")
    f.readline()
    s.close()
    stored = srv.fetch_one("alice@example.test", token)
    assert stored.startswith(b"Return-Path: <x@example.net>\r\n")
    # Tern's own Received: (after its Authentication-Results:)
    m = re.search(rb"\r\n(Received: [^\r]*\r\n(?:[ \t][^\r]*\r\n)*)", stored)
    assert m, stored[:300]
    return parse_received(m.group(1))


def test_smtp_v1_header_gives_the_client_address(srv):
    mark = srv.log_mark()
    rec = smtp_deliver(srv, b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\n", "ppv1tok")
    assert rec["ip"] == "198.51.100.7"
    assert srv.wait_log(r"smtp session=\S+ client=198\.51\.100\.7 action=connect", since=mark)


def test_smtp_v2_header_with_tlvs_and_v6(srv):
    # a TLV (PP2_TYPE_ALPN "smtp") is skipped
    rec = smtp_deliver(srv, v2_tcp4("203.0.113.9", "127.0.0.1", 1234, 25,
                                    tlvs=b"\x01\x00\x04smtp"), "ppv2tok")
    assert rec["ip"] == "203.0.113.9"
    rec = smtp_deliver(srv, v2_tcp6("2001:db8::5", "::1", 1234, 25), "ppv6tok")
    assert rec["ip"] == "2001:db8::5"


def test_local_and_unknown_keep_the_proxy_address(srv):
    rec = smtp_deliver(srv, V2_SIG + b"\x20\x00\x00\x00", "pplocal")
    assert rec["ip"] == PROXY
    rec = smtp_deliver(srv, b"PROXY UNKNOWN\r\n", "ppunknown")
    assert rec["ip"] == PROXY


def test_untrusted_source_header_is_protocol_input(srv):
    s = connect(srv.smtp_port, source=HOST)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")  # no header awaited
    s.sendall(b"PROXY TCP4 198.51.100.66 127.0.0.1 40000 25\r\n")
    reply = f.readline()
    assert reply[:1] == b"5", reply
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"221 ")
    s.close()


def closed(s):
    """Whether the server closed s without sending a byte."""
    try:
        return s.recv(100) == b""
    except ConnectionResetError:  # it closed with our bytes unread
        return True


def test_bad_header_closes_only_that_connection(srv):
    mark = srv.log_mark()
    other = connect(srv.smtp_port, source=HOST)
    of = other.makefile("rb")
    assert of.readline().startswith(b"220 ")
    s = connect(srv.smtp_port)
    s.sendall(b"EHLO nothing.example\r\n")
    assert closed(s)  # no greeting
    s.close()
    assert srv.wait_log(r"proxy listener=smtp peer=127\.0\.0\.2 result=refused "
                        r'error="not a PROXY header"', since=mark)
    # a v2 header that claims more bytes than the limit
    s = connect(srv.smtp_port)
    s.sendall(V2_SIG + b"\x21\x11\xff\xff")
    assert closed(s)
    s.close()
    # a proxy that sends nothing is closed after proxy.timeout
    s = connect(srv.smtp_port)
    assert closed(s)
    s.close()
    assert srv.wait_log(r'error="no complete header in time"', since=mark, seconds=5)
    other.sendall(b"NOOP\r\n")
    assert of.readline().startswith(b"250 ")
    other.close()


def test_imap_and_pop3_behind_the_proxy(srv):
    mark = srv.log_mark()
    s = connect(srv.imap_port)
    s.sendall(b"PROXY TCP4 192.0.2.44 127.0.0.1 5555 143\r\n")
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"b LOGOUT\r\n")
    assert f.readline().startswith(b"* BYE")
    s.close()
    assert srv.wait_log(r"imap .*192\.0\.2\.44", since=mark)
    s = connect(port_of(srv, "pop3.listen"))
    s.sendall(v2_tcp4("192.0.2.45", "127.0.0.1", 5556, 110))
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"+OK")
    s.close()
    assert srv.wait_log(r"pop3 .*192\.0\.2\.45", since=mark)


def test_submissions_header_then_tls(srv):
    mark = srv.log_mark()
    raw = connect(port_of(srv, "submissions.listen"))
    raw.sendall(v2_tcp4("192.0.2.46", "127.0.0.1", 5557, 465))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(raw)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"221 ")
    s.close()
    assert srv.wait_log(r"client=192\.0\.2\.46", since=mark)


@pytest.fixture
def haproxy(srv, tmp_path):
    """HAProxy (Debian's) in TCP mode in front of smtp.listen, connecting
    from the trusted 127.0.0.2 with send-proxy-v2; yields its port."""
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(exe):
        pytest.skip("haproxy not installed (scripts/install-deps.sh)")
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        "global\n  maxconn 20\n"
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n"
        "  timeout server 30s\n"
        "frontend in\n  bind %s:%d\n  default_backend tern\n"
        "backend tern\n  server t %s:%d send-proxy-v2 source %s\n"
        % (HOST, port, HOST, srv.smtp_port, PROXY))
    proc = subprocess.Popen([exe, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout(10)
        while True:  # until its listener is bound
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "haproxy did not listen"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_haproxy_send_proxy_v2_in_front_of_smtp(srv, haproxy):
    """smtplib from 127.0.0.3 through HAProxy (which connects from
    127.0.0.2): Tern sees and records 127.0.0.3."""
    token = "pphaproxy"
    with smtplib.SMTP(HOST, haproxy, timeout=timeout(10),
                      source_address=("127.0.0.3", 0)) as c:
        c.sendmail("x@example.net", ["alice@example.test"],
                   b"Subject: " + token.encode() + b"\r\n\r\nvia haproxy\r\n")
    stored = srv.fetch_one("alice@example.test", token)
    m = re.search(rb"\r\n(Received: [^\r]*\r\n(?:[ \t][^\r]*\r\n)*)", stored)
    assert parse_received(m.group(1))["ip"] == "127.0.0.3"
