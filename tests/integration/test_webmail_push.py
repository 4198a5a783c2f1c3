"""The web app's event stream (GET /jmap/eventsource/ by session cookie,
docs/webmail.md "Sessions") ends when its session does: sign out, sign out
everywhere; the streams of other sessions stay.

Client: Python's http.client (Debian's python3, no extra package).
"""
import re
import socket
import time

import pytest

from conftest import timeout
from test_jmap_core import ALICE, BOB, request
from test_jmap_push import open_stream
from test_webmail import signed_in

QUERY = "types=*&closeafter=no&ping=1"


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"workers": 2, "auth.fail_delay_ms": "10", "auth.fail_delay_max_ms": "20"})
    s.start()
    return s


def still_open(s):
    """The stream goes on: its next event is a ping."""
    ev = s.event(timeout(5))
    assert ev is not None and ev["event"] == "ping", ev


def ended(s):
    """The stream ends within a few seconds (the recheck interval is 2 s)."""
    t0 = time.monotonic()
    while True:
        try:
            ev = s.event(timeout(6))
        except socket.timeout:
            pytest.fail("the stream did not end")
        if ev is None:
            break
        assert ev["event"] == "ping", ev
        assert time.monotonic() - t0 < timeout(6)
    assert time.monotonic() - t0 < timeout(6)


def test_logout_ends_its_stream_only(srv):
    c1, t1 = signed_in(srv)
    c2, _ = signed_in(srv)
    s1 = open_stream(srv, ALICE, QUERY, cookie=c1)
    s2 = open_stream(srv, ALICE, QUERY, cookie=c2)
    try:
        still_open(s1)
        st, _, _ = request(srv, "POST", "/jmap/web/logout", auth=False,
                           headers={"Cookie": c1, "X-Tern-CSRF": t1})
        assert st == 200
        ended(s1)
        assert srv.wait_log(r"user=%s action=eventsource_end reason=credentials_changed"
                            % re.escape(ALICE))
        still_open(s2)
        still_open(s2)
    finally:
        s1.close()
        s2.close()


def test_logout_all_ends_every_stream_of_the_account(srv):
    a1, ta1 = signed_in(srv)
    a2, _ = signed_in(srv)
    b, _ = signed_in(srv, BOB)
    sa1 = open_stream(srv, ALICE, QUERY, cookie=a1)
    sa2 = open_stream(srv, ALICE, QUERY, cookie=a2)
    sb = open_stream(srv, BOB, QUERY, cookie=b)
    try:
        st, _, _ = request(srv, "POST", "/jmap/web/logout-all", auth=False,
                           headers={"Cookie": a1, "X-Tern-CSRF": ta1})
        assert st == 200
        ended(sa1)
        ended(sa2)
        still_open(sb)  # another account's session and stream stay
    finally:
        for s in (sa1, sa2, sb):
            s.close()
