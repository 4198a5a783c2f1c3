"""Per-address rate limits of port 25 (issue 16 item 1, docs/spam.md):
spam.max_connections_per_ip (open at once, counted across all workers),
spam.connection_rate (connections a minute) and spam.message_rate
(transactions an hour).  Clients connect from 127.0.0.2 and up (Linux
routes all of 127.0.0.0/8 to loopback); 127.0.0.1 is in mailauth.trusted
and is never limited, nor is submission."""

import re
import smtplib
import socket
import time

import pytest

from conftest import HOST, HOSTNAME, PASSWORD, socket_owner, timeout
from test_spam_connect import cmd, reply

MAX_OPEN = 6


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf={
        "workers": "2",
        "spam.max_connections_per_ip": str(MAX_OPEN),
        "spam.connection_rate": "40",
        "spam.message_rate": "2",
    })


def connect(srv, source, port=None):
    return socket.create_connection((HOST, port or srv.smtp_port), timeout=timeout(10),
                                    source_address=(source, 0))


def greeted(s):
    return reply(s) == "220 %s ESMTP Tern" % HOSTNAME


def too_many(ip, n):
    return ("421 4.7.0 %s Error: too many connections from %s at once (at most %d); "
            "try again later" % (HOSTNAME, ip, n))


def submission_port(srv):
    m = re.search(r"(?m)^submission\.listen = .*:(\d+)$", open(srv.conf).read())
    return int(m.group(1))


def test_open_connections_are_counted_across_workers(srv):
    mark = srv.log_mark()
    held = [connect(srv, "127.0.0.2") for _ in range(MAX_OPEN)]
    try:
        for s in held:
            assert greeted(s)
        # The kernel spreads them over both workers (SO_REUSEPORT); a
        # count per worker would let the next one in.
        owners = {socket_owner(srv.workers(), srv.smtp_port, s.getsockname()[1])
                  for s in held}
        with connect(srv, "127.0.0.2") as s:
            assert reply(s) == too_many("127.0.0.2", MAX_OPEN), owners
            assert s.recv(100) == b""  # closed after the 421
        line = srv.wait_log(r"client=127\.0\.0\.2 action=rate_limit limit=connections ",
                            since=mark)[0]
        assert "open=%d max=%d result=refuse" % (MAX_OPEN, MAX_OPEN) in line, line
        # another address is not affected
        with connect(srv, "127.0.0.3") as s:
            assert greeted(s)
            cmd(s, "QUIT")
    finally:
        for s in held[1:]:
            s.sendall(b"QUIT\r\n")
            reply(s)
            s.close()
    # Closed connections free their slots (the server notices the QUITs
    # before the next accept of the same worker, but maybe not of the
    # other: wait for the new connection to be let in).
    deadline = time.monotonic() + timeout(5)
    while True:
        with connect(srv, "127.0.0.2") as s:
            text = reply(s)
            if text.startswith("220 "):
                cmd(s, "QUIT")
                break
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    held[0].close()


def test_trusted_client_is_not_limited(srv):
    held = [connect(srv, "127.0.0.1") for _ in range(MAX_OPEN + 2)]
    try:
        for s in held:
            assert greeted(s)
    finally:
        for s in held:
            s.close()


def test_connection_rate_per_minute(make_server):
    srv = make_server(conf={"spam.connection_rate": "3"})
    mark = srv.log_mark()
    for _ in range(3):
        with connect(srv, "127.0.0.4") as s:
            assert greeted(s)
            cmd(s, "QUIT")
    with connect(srv, "127.0.0.4") as s:
        assert reply(s) == ("421 4.7.0 %s Error: too many connections from 127.0.0.4 this "
                            "minute (at most 3); try again later" % HOSTNAME)
        assert s.recv(100) == b""
    assert srv.wait_log(r"client=127\.0\.0\.4 action=rate_limit limit=connection_rate "
                        r"count=4 max=3 window=60s result=refuse", since=mark)
    with connect(srv, "127.0.0.5") as s:
        assert greeted(s)
        cmd(s, "QUIT")


def test_message_rate_per_hour_answers_451_at_mail(srv):
    mark = srv.log_mark()
    refused = ("451 4.7.1 Error: too many messages from 127.0.0.6 this hour (at most 2); "
               "try again later")
    with connect(srv, "127.0.0.6") as s:
        assert greeted(s)
        assert cmd(s, "EHLO client.example").startswith("250-")
        for _ in range(2):
            assert cmd(s, "MAIL FROM:<a@client.example>") == "250 2.1.0 Ok"
            assert cmd(s, "RSET").startswith("250 ")
        assert cmd(s, "MAIL FROM:<a@client.example>") == refused
        # no transaction was started
        assert cmd(s, "RCPT TO:<alice@example.test>") == "503 5.5.1 Error: need MAIL command"
        cmd(s, "QUIT")
    # the count is the address's, not the connection's
    with smtplib.SMTP(HOST, srv.smtp_port, source_address=("127.0.0.6", 0),
                      timeout=timeout(10)) as c:
        c.ehlo("client.example")
        code, text = c.mail("b@client.example")
        assert (code, text.decode()) == (451, refused[4:])
    line = srv.wait_log(r"client=127\.0\.0\.6 action=rate_limit limit=message_rate ",
                        since=mark, count=2)[0]
    assert "count=2 max=2 window=1h result=refuse" in line, line
    # other addresses still send
    with smtplib.SMTP(HOST, srv.smtp_port, source_address=("127.0.0.7", 0),
                      timeout=timeout(10)) as c:
        c.sendmail("a@client.example", ["alice@example.test"],
                   b"Subject: rate-ok-127-0-0-7\r\n\r\nbody\r\n")
    assert srv.find_messages("alice@example.test", "rate-ok-127-0-0-7")


def test_submission_is_not_limited(srv):
    with smtplib.SMTP(HOST, submission_port(srv), source_address=("127.0.0.6", 0),
                      timeout=timeout(10)) as c:
        c.ehlo("client.example")
        c.starttls()
        c.login("alice@example.test", PASSWORD)
        for _ in range(4):
            assert c.mail("alice@example.test")[0] == 250
            c.rset()
