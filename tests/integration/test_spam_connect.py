"""The connection stage of port 25 (issue 16 item 1, docs/spam.md): DNS
block and allow lists of the client's address, forward-confirmed reverse
DNS and the HELO check as one score, refused at spam.reject_score with
554 5.7.1 in place of the greeting (then only QUIT, RFC 5321 3.1), and
clients that talk before the greeting dropped.  Real DNS: a dnsmasq on
loopback serves the test lists.  Clients connect from 127.0.0.2 and up
(Linux routes all of 127.0.0.0/8 to loopback); 127.0.0.1 is in
mailauth.trusted by default.

Lists (bl.example = weight 5 = spam.reject_score, wl.example = -10):
    127.0.0.2  in bl.example                       -> refused at the greeting
    127.0.0.3  bl.example answers 127.255.255.254  -> an error code: not listed
    127.0.0.4  in bl.example and in wl.example     -> accepted (score -5)
    127.0.0.5  in no list, PTR mail.good.example -> 127.0.0.5 (FCrDNS ok)
    127.0.0.6  in no list, PTR fake.example, which has no address
    127.0.0.1  in bl.example, but trusted          -> never looked up
"""

import os
import re
import socket
import time

import pytest

from conftest import HOST, HOSTNAME, timeout
from test_spf_cli import DNSMASQ, dnsmasq

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")

LISTED = ("554 5.7.1 Your address 127.0.0.2 is listed by bl.example (a list of addresses "
          "that send spam), so this server refuses mail from it")


@pytest.fixture(scope="module")
def dns():
    records = [
        "--address=/2.0.0.127.bl.example/127.0.0.2",
        "--address=/3.0.0.127.bl.example/127.255.255.254",
        "--address=/4.0.0.127.bl.example/127.0.0.3",
        "--address=/4.0.0.127.wl.example/127.0.15.1",
        "--address=/1.0.0.127.bl.example/127.0.0.2",
        # A and PTR both
        "--host-record=mail.good.example,127.0.0.5",
        "--ptr-record=6.0.0.127.in-addr.arpa,fake.example",
    ]
    with dnsmasq(records, zones=("example", "in-addr.arpa")) as server:
        yield server


@pytest.fixture(scope="module")
def srv(module_server, dns):
    return module_server(conf={
        "dns.resolver": dns,
        "spam.dnsbl": "bl.example",
        "spam.dnswl": "wl.example=-10",
        "spam.pregreet_wait": "1s",
        "spam.fcrdns_weight": "1",
    })


def connect(srv, source):
    s = socket.create_connection((srv.host, srv.smtp_port), timeout=timeout(10),
                                 source_address=(source, 0))
    return s


def reply(s):
    """One whole reply (all its lines), as text without the last CRLF."""
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data.decode()
        data += chunk
        lines = data.split(b"\r\n")
        if data.endswith(b"\r\n") and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return data[:-2].decode()


def cmd(s, line):
    s.sendall(line.encode() + b"\r\n")
    return reply(s)


def spam_line(srv, client, since):
    lines = srv.wait_log(r"client=%s action=spam_connect " % re.escape(client), 5, since=since)
    assert len(lines) == 1, srv.log()[since:]
    return lines[0]


def test_listed_client_is_refused_with_554_then_only_quit(srv):
    mark = srv.log_mark()
    with connect(srv, "127.0.0.2") as s:
        assert reply(s) == LISTED
        assert cmd(s, "EHLO client.example") == (
            "503 5.5.1 Error: mail from your address is refused; only QUIT now")
        assert cmd(s, "MAIL FROM:<a@client.example>").startswith("503 5.5.1 ")
        assert cmd(s, "QUIT").startswith("221 ")
        assert s.recv(100) == b""
    line = spam_line(srv, "127.0.0.2", mark)
    assert 'score=6 reject_score=5 parts="dnsbl=bl.example:5 fcrdns=none:1" result=refuse' \
        in line, line


def test_error_code_answer_is_not_a_listing(srv):
    mark = srv.log_mark()
    with connect(srv, "127.0.0.3") as s:
        assert reply(s).startswith("220 ")
        assert cmd(s, "EHLO client.example").startswith("250-")
        assert cmd(s, "MAIL FROM:<a@client.example>") == "250 2.1.0 Ok"
        cmd(s, "QUIT")
    assert srv.wait_log(r"client=127\.0\.0\.3 action=dnsbl zone=bl\.example "
                        r"answer=127\.255\.255\.254 note=\"an error or quota code of the list; "
                        r"counted as not listed\"", since=mark)
    line = spam_line(srv, "127.0.0.3", mark)
    assert 'score=1 reject_score=5 parts="fcrdns=none:1" result=accept' in line, line


def test_allowlist_outweighs_the_blocklist(srv):
    mark = srv.log_mark()
    with connect(srv, "127.0.0.4") as s:
        assert reply(s).startswith("220 ")
        assert cmd(s, "HELO client.example").startswith("250 ")
        cmd(s, "QUIT")
    line = spam_line(srv, "127.0.0.4", mark)
    assert ('score=-4 reject_score=5 parts="dnsbl=bl.example:5 dnswl=wl.example:-10 '
            'fcrdns=none:1" result=accept') in line, line


def test_forward_confirmed_reverse_name_and_unconfirmed_one(srv):
    mark = srv.log_mark()
    for client in ("127.0.0.5", "127.0.0.6"):
        with connect(srv, client) as s:
            assert reply(s).startswith("220 ")
            assert cmd(s, "EHLO client.example").startswith("250-")
            cmd(s, "QUIT")
    assert 'score=0 reject_score=5 parts="fcrdns=ok:0" result=accept' in \
        spam_line(srv, "127.0.0.5", mark)
    assert 'score=1 reject_score=5 parts="fcrdns=unconfirmed:1" result=accept' in \
        spam_line(srv, "127.0.0.6", mark)


def test_pregreet_client_is_dropped(srv):
    mark = srv.log_mark()
    with connect(srv, "127.0.0.5") as s:
        s.sendall(b"EHLO early.example\r\n")
        assert s.recv(4096) == b"554 5.5.1 Error: you talked before the greeting\r\n"
        assert s.recv(100) == b""
    assert srv.wait_log(r"client=127\.0\.0\.5 action=close reason=pregreet bytes=20 ",
                        since=mark)


def test_greeting_waits_the_pregreet_time(srv):
    with connect(srv, "127.0.0.5") as s:
        t0 = time.monotonic()
        assert reply(s).startswith("220 ")
        assert time.monotonic() - t0 >= 0.9


def test_trusted_client_is_not_checked_nor_delayed(srv):
    mark = srv.log_mark()
    with connect(srv, "127.0.0.1") as s:
        t0 = time.monotonic()
        s.sendall(b"EHLO client.example\r\n")  # early, but trusted
        data = b""
        while not data.endswith(b"250 ENHANCEDSTATUSCODES\r\n"):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        assert time.monotonic() - t0 < 0.5
        assert data.startswith(b"220 ") and b"\r\n250-" in data, data
        cmd(s, "QUIT")
    time.sleep(0.2)
    text = srv.log()[mark:]
    assert "client=127.0.0.1 action=spam" not in text
    assert "1.0.0.127.bl.example" not in text


def test_submission_is_never_checked(srv):
    """The same listed address on the submission port: no stage at all."""
    m = re.search(r"(?m)^submission\.listen = .*:(\d+)$", open(srv.conf).read())
    if m is None:
        pytest.skip("no submission listener")
    with socket.create_connection((HOST, int(m.group(1))), timeout=timeout(10),
                                  source_address=("127.0.0.2", 0)) as s:
        t0 = time.monotonic()
        assert reply(s).startswith("220 ")
        assert time.monotonic() - t0 < 0.5


def test_helo_check_adds_to_the_score(make_server, dns):
    srv = make_server(conf={
        "dns.resolver": dns,
        "spam.fcrdns_weight": "2",
        "spam.helo_weight": "3",
    })
    mark = srv.log_mark()
    with connect(srv, "127.0.0.7") as s:
        assert reply(s).startswith("220 ")
        assert cmd(s, "EHLO 192.0.2.9") == (
            "550 5.7.1 Your address 127.0.0.7 has no reverse DNS name, and says HELO "
            "192.0.2.9, which is an address without brackets, not a domain name, so this "
            "server refuses mail from it")
        assert cmd(s, "EHLO mail.client.example").startswith("503 5.5.1 ")
        assert cmd(s, "QUIT").startswith("221 ")
    line = spam_line(srv, "127.0.0.7", mark)
    assert 'score=5 reject_score=5 parts="fcrdns=none:2 helo=bare_ip:3" result=refuse' in line
    mark = srv.log_mark()
    with connect(srv, "127.0.0.7") as s:
        assert reply(s).startswith("220 ")
        assert cmd(s, "EHLO [127.0.0.7]").startswith("250-")
        assert cmd(s, "MAIL FROM:<a@client.example>") == "250 2.1.0 Ok"
        cmd(s, "QUIT")
    line = spam_line(srv, "127.0.0.7", mark)
    assert 'score=2 reject_score=5 parts="fcrdns=none:2" result=accept' in line
    # spam.pregreet_wait = 0 (this server): bytes before the greeting
    # are no offence, they are read as commands after it
    with connect(srv, "127.0.0.5") as s:
        s.sendall(b"HELO mail.good.example\r\n")
        data = b""
        while data.count(b"\r\n") < 2:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        assert data == b"220 %s ESMTP Tern\r\n250 %s\r\n" % ((HOSTNAME.encode(),) * 2)
        cmd(s, "QUIT")


def test_blocklist_server_timeout_means_accepted(make_server):
    """A resolver that never answers: the greeting comes after
    spam.dns_timeout, and the client is not refused."""
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    try:
        srv = make_server(conf={
            "dns.resolver": "127.0.0.1:%d" % mute.getsockname()[1],
            "spam.dnsbl": "bl.example",
            "spam.dns_timeout": "1s",
        })
        mark = srv.log_mark()
        with connect(srv, "127.0.0.2") as s:
            t0 = time.monotonic()
            assert reply(s).startswith("220 ")
            assert 0.9 <= time.monotonic() - t0 < timeout(3)
            assert cmd(s, "EHLO client.example").startswith("250-")
            cmd(s, "QUIT")
        assert srv.wait_log(r"client=127\.0\.0\.2 action=spam_dns lookup=bl\.example "
                            r"status=timeout ", since=mark)
        line = spam_line(srv, "127.0.0.2", mark)
        assert 'score=0 reject_score=5 parts="dnsbl=bl.example:tempfail timeout=1s" ' \
            'result=accept' in line, line
    finally:
        mute.close()


def test_shutdown_while_the_greeting_waits(make_server):
    """SIGTERM during the connection stage: 421, no greeting after it."""
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    try:
        srv = make_server(conf={
            "dns.resolver": "127.0.0.1:%d" % mute.getsockname()[1],
            "spam.dnsbl": "bl.example",
            "spam.dns_timeout": "5s",
        })
        with connect(srv, "127.0.0.2") as s:
            time.sleep(0.3)
            srv.stop()
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        assert data == b"421 4.3.2 %s Service shutting down\r\n" % HOSTNAME.encode()
    finally:
        mute.close()
