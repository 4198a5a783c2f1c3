"""JMAP push over an event source (RFC 8620 7.3, docs/jmap.md "Push"):
an EventSource client made of http.client reading the chunked
text/event-stream answer of GET /jmap/eventsource/, state events after an
SMTP delivery and an IMAP flag change (two workers: the change may be
made in another process than the stream's), ping, closeafter, types,
Last-Event-ID, the limits, and the end of a stream when the password
changes."""

import http.client
import imaplib
import json
import re
import smtplib
import socket
import time
import uuid

import pytest

from conftest import HOST, HOSTNAME, PASSWORD, timeout
from test_http import ctx, port_of
from test_jmap_core import basic
from test_jmap_mail import call

TYPES3 = ("Email", "Mailbox", "Thread")


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"workers": 2, "allow_plaintext_loopback": "yes", "http.timeout": "2s"})
    s.start()
    return s


def new_user(srv):
    user = "jp%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    n, r = call(srv, user, "Mailbox/get", {"accountId": account(srv, user), "ids": []})
    assert n == "Mailbox/get"
    return user, account(srv, user), r["state"]


def account(srv, user):
    conn = http.client.HTTPSConnection(HOST, port_of(srv, "https.listen"), context=ctx(),
                                       timeout=timeout(10))
    conn.request("GET", "/jmap/session", headers={"Authorization": basic(user)})
    data = conn.getresponse().read()
    conn.close()
    return next(iter(json.loads(data)["accounts"]))


class Stream:
    """One event-source connection: status, headers, then events."""

    def __init__(self, srv, user, query, password=PASSWORD, last_id=None, cookie=None):
        port = port_of(srv, "https.listen")
        self.conn = http.client.HTTPSConnection(HOST, port, context=ctx(),
                                                timeout=timeout(10))
        h = {"Host": "%s:%d" % (HOSTNAME, port), "Accept": "text/event-stream"}
        if cookie is None:
            h["Authorization"] = basic(user, password)
        else:  # a web app session (test_webmail_push.py)
            h["Cookie"] = cookie
        if last_id is not None:
            h["Last-Event-ID"] = last_id
        self.conn.request("GET", "/jmap/eventsource/?" + query, headers=h)
        # the answer has "Connection: close": http.client then lets go
        # of the socket, which the response still reads
        self.sock = self.conn.sock
        self.r = self.conn.getresponse()
        self.status = self.r.status
        self.headers = {k.lower(): v for k, v in self.r.getheaders()}

    def event(self, seconds):
        """The next event as {"event", "id", "data"}; None when the stream
        ended; raises socket.timeout when none came within seconds."""
        self.sock.settimeout(seconds)
        ev = {}
        while True:
            line = self.r.readline()
            if line == b"":
                return None
            line = line.rstrip(b"\r\n").decode()
            if line == "":
                if ev:
                    if "data" in ev:
                        ev["data"] = json.loads(ev["data"])
                    return ev
                continue
            k, _, v = line.partition(": ")
            assert k in ("event", "id", "data"), line
            ev[k] = v

    def close(self):
        self.r.close()
        self.conn.close()
        self.sock.close()


def open_stream(srv, user, query, **kw):
    s = Stream(srv, user, query, **kw)
    assert s.status == 200, s.r.read()
    assert s.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert s.headers["cache-control"] == "no-cache, no-store"
    assert s.headers["transfer-encoding"] == "chunked"
    assert s.headers["connection"] == "close"
    return s


def deliver(srv, user, subject="Hi"):
    msg = "From: <x@example.net>\r\nTo: %s\r\nSubject: %s\r\n\r\nHello.\r\n" % (user, subject)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as c:
        c.sendmail("x@example.net", [user], msg.encode())


def email_state(srv, user, aid):
    n, r = call(srv, user, "Email/get", {"accountId": aid, "ids": []})
    assert n == "Email/get", r
    return r["state"]


def check_state(ev, aid, types=TYPES3):
    assert ev["event"] == "state", ev
    assert ev["data"]["@type"] == "StateChange"
    changed = ev["data"]["changed"]
    assert list(changed) == [aid]
    assert sorted(changed[aid]) == sorted(types)
    states = set(changed[aid].values())
    assert states == {ev["id"]}
    return ev["id"]


def test_session_names_the_event_source(srv):
    user, aid, _ = new_user(srv)
    conn = http.client.HTTPSConnection(HOST, port_of(srv, "https.listen"), context=ctx(),
                                       timeout=timeout(10))
    conn.request("GET", "/jmap/session", headers={"Authorization": basic(user),
                                                  "Host": HOSTNAME})
    s = json.loads(conn.getresponse().read())
    conn.close()
    assert s["eventSourceUrl"] == ("https://%s:%d/jmap/eventsource/?types={types}"
                                   "&closeafter={closeafter}&ping={ping}"
                                   % (HOSTNAME, port_of(srv, "https.listen")))


def test_state_event_after_delivery_and_imap_flag(srv):
    user, aid, before = new_user(srv)
    s = open_stream(srv, user, "types=*&closeafter=no&ping=0")
    t0 = time.monotonic()
    deliver(srv, user)
    ev = s.event(timeout(5))
    assert time.monotonic() - t0 < 1.0, "no state event within a second of the delivery"
    st = check_state(ev, aid)
    assert st != before and st == email_state(srv, user, aid)
    # an IMAP flag change (maybe in the other worker)
    m = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    m.login(user, PASSWORD)
    m.select("INBOX")
    t0 = time.monotonic()
    assert m.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
    ev = s.event(timeout(5))
    assert time.monotonic() - t0 < 1.0, "no state event within a second of the STORE"
    st2 = check_state(ev, aid)
    assert st2 != st and st2 == email_state(srv, user, aid)
    m.logout()
    s.close()
    # the client left: the stream is gone
    assert srv.wait_log(r"user=%s action=eventsource_end reason=closed" % re.escape(user))


def test_ping_and_survives_http_timeout(srv):
    user, aid, _ = new_user(srv)
    s = open_stream(srv, user, "types=*&closeafter=no&ping=1")
    for _ in range(3):  # 3 s: past http.timeout (2s)
        ev = s.event(timeout(3))
        assert ev == {"event": "ping", "data": {"interval": 1}}
    deliver(srv, user)
    while (ev := s.event(timeout(3)))["event"] == "ping":
        pass
    check_state(ev, aid)
    s.close()
    # no pings and still open after http.timeout
    s = open_stream(srv, user, "types=*&closeafter=no&ping=0")
    with pytest.raises(socket.timeout):
        s.event(3)
    s.close()


def test_closeafter_state(srv):
    user, aid, _ = new_user(srv)
    s = open_stream(srv, user, "types=*&closeafter=state&ping=0")
    deliver(srv, user)
    check_state(s.event(timeout(5)), aid)
    assert s.event(timeout(5)) is None  # the answer ended
    s.close()


def test_types_filter(srv):
    user, aid, _ = new_user(srv)
    s = open_stream(srv, user, "types=Mailbox,CalendarEvent&closeafter=no&ping=0")
    deliver(srv, user)
    check_state(s.event(timeout(5)), aid, types=("Mailbox",))
    s.close()
    s = open_stream(srv, user, "types=Email,Thread&closeafter=no&ping=0")
    deliver(srv, user)
    check_state(s.event(timeout(5)), aid, types=("Email", "Thread"))
    s.close()
    # none of ours: pings only
    s = open_stream(srv, user, "types=CalendarEvent&closeafter=no&ping=1")
    deliver(srv, user)
    for _ in range(2):
        assert s.event(timeout(3))["event"] == "ping"
    s.close()


def test_last_event_id(srv):
    user, aid, before = new_user(srv)
    deliver(srv, user)
    now = email_state(srv, user, aid)
    # the client saw an older state: what it missed comes at once
    s = open_stream(srv, user, "types=*&closeafter=no&ping=0", last_id=before)
    assert check_state(s.event(timeout(5)), aid) == now
    s.close()
    # the state now: nothing
    s = open_stream(srv, user, "types=*&closeafter=no&ping=0", last_id=now)
    with pytest.raises(socket.timeout):
        s.event(1)
    s.close()


@pytest.mark.parametrize("query", ["", "types=*&closeafter=no", "types=*&closeafter=x&ping=0",
                                   "types=&closeafter=no&ping=0",
                                   "types=Email,&closeafter=no&ping=0",
                                   "types=*&closeafter=no&ping=-1"])
def test_bad_query(srv, query):
    user, _, _ = new_user(srv)
    s = Stream(srv, user, query)
    assert s.status == 400
    assert s.headers["content-type"] == "text/plain; charset=utf-8"
    s.r.read()
    s.close()


def test_auth_and_limits(srv):
    user, _, _ = new_user(srv)
    s = Stream(srv, user, "types=*&closeafter=no&ping=0", password="wrong")
    assert s.status == 401
    s.close()
    streams = [open_stream(srv, user, "types=*&closeafter=no&ping=0") for _ in range(8)]
    # the ninth of the account in one worker is refused; with two workers
    # the connection may reach the other one, so open until one is refused
    extra = []
    for _ in range(9):
        s = Stream(srv, user, "types=*&closeafter=no&ping=0")
        if s.status == 429:
            assert s.headers["retry-after"] == "30"
            s.close()
            break
        assert s.status == 200
        extra.append(s)
    else:
        pytest.fail("no stream refused after 17")
    for s in streams + extra:
        s.close()


def test_password_change_ends_the_stream(srv):
    user, aid, _ = new_user(srv)
    s = open_stream(srv, user, "types=*&closeafter=no&ping=0")
    srv.cli_ok("user", "passwd", user, "--password", "new-" + PASSWORD)
    t0 = time.monotonic()
    assert s.event(timeout(6)) is None
    assert time.monotonic() - t0 < 4
    assert srv.wait_log(r"user=%s action=eventsource_end reason=credentials_changed"
                        % re.escape(user))
    s.close()


def test_shutdown_with_open_streams(make_server):
    s = make_server(start=False)
    s.set_config({"allow_plaintext_loopback": "yes"})
    s.start()
    user = "jp%s@example.test" % uuid.uuid4().hex[:10]
    s.cli_ok("user", "add", user, "--password", PASSWORD)
    streams = [open_stream(s, user, "types=*&closeafter=no&ping=%d" % p) for p in (0, 1)]
    t0 = time.monotonic()
    s.stop()  # SIGTERM: every process gone within 10 s, no sanitizer report
    assert time.monotonic() - t0 < 5
    for st in streams:
        while (ev := st.event(timeout(5))) is not None:
            assert ev["event"] == "ping"
        st.close()
