"""POP3 and IMAP on the same INBOX at once (issue 4).

The maildrop is the user's INBOX, shared with IMAP.  These tests check the
interplay through both real protocols: a POP3 session's DELE takes effect
only at QUIT, and an IMAP session in IDLE on that INBOX then sees the
expunge at once; mail that arrives during a POP3 session is visible to IMAP
at once but not to that POP3 session; a dropped POP3 connection deletes
nothing, as IMAP confirms.
"""

import poplib
import time

import pytest

from conftest import HOST, timeout
from test_imap import PASSWORD, client as imap_client, deliver, new_user

MODULE_CONF = {"workers": 2, "allow_plaintext_loopback": "yes"}


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def pop3_login(srv, user):
    p = poplib.POP3(HOST, srv.pop3_port, timeout=timeout(10))
    p.user(user)
    p.pass_(PASSWORD)
    return p


def imap_count(srv, user):
    """Number of INBOX messages seen by a new IMAP session (STATUS)."""
    with imap_client(srv, user) as c:
        lines = c.ok('STATUS INBOX (MESSAGES)')
    status = [l for l in lines if l.startswith(b"* STATUS")]
    assert len(status) == 1, lines
    return int(status[0].rsplit(b"MESSAGES ", 1)[1].rstrip(b")"))


def test_pop3_quit_expunge_reaches_imap_idle(srv):
    user = new_user(srv)
    for i in range(3):
        deliver(srv, user, "m%d" % i)
    with imap_client(srv, user) as c:
        c.ok("SELECT INBOX")
        c.send("i IDLE\r\n")
        assert c.line() == b"+ idling"
        p = pop3_login(srv, user)
        assert p.stat()[0] == 3
        p.dele(1)
        p.dele(3)
        # Marked only: nothing reaches IMAP before QUIT.
        assert c.pending(wait=0.5) == b""
        t0 = time.monotonic()
        assert p.quit().startswith(b"+OK")
        # Sequence numbers shift as each expunge is reported: message 3
        # first (or 1 first, then the old 3 is 2); accept either order.
        got = [c.line(), c.line()]
        assert sorted(got) in ([b"* 1 EXPUNGE", b"* 2 EXPUNGE"], [b"* 1 EXPUNGE", b"* 3 EXPUNGE"]), got
        assert time.monotonic() - t0 < timeout(3)
        c.send("DONE\r\n")
        assert c.line() == b"i OK Idle completed"
        lines = c.ok("UID SEARCH ALL")
        assert b"* SEARCH 2" in lines, lines
    assert imap_count(srv, user) == 1


def test_mail_arriving_during_pop3_session(srv):
    user = new_user(srv)
    deliver(srv, user, "first")
    p = pop3_login(srv, user)
    try:
        assert p.stat()[0] == 1
        with imap_client(srv, user) as c:
            c.ok("SELECT INBOX")
            deliver(srv, user, "second")
            # IMAP sees it at once ...
            lines = c.ok("NOOP")
            assert b"* 2 EXISTS" in lines, lines
        # ... the POP3 session's list stays fixed (RFC 1939: the maildrop
        # is fixed when the session enters TRANSACTION).
        assert p.stat()[0] == 1
        assert len(p.list()[1]) == 1
    finally:
        p.quit()
    q = pop3_login(srv, user)
    assert q.stat()[0] == 2
    q.quit()


def test_dropped_pop3_connection_deletes_nothing_seen_by_imap(srv):
    user = new_user(srv)
    for i in range(2):
        deliver(srv, user, "keep%d" % i)
    p = pop3_login(srv, user)
    p.dele(1)
    p.dele(2)
    # No QUIT: the UPDATE state is never entered.  (poplib's file object
    # holds the descriptor too: close both.)
    p.file.close()
    p.sock.close()
    deadline = time.monotonic() + timeout(5)
    # Once the server has noticed the drop, the maildrop lock is free again.
    while True:
        try:
            q = pop3_login(srv, user)
            break
        except poplib.error_proto as e:
            assert b"IN-USE" in e.args[0], e
            assert time.monotonic() < deadline, "maildrop still locked"
            time.sleep(0.1)
    assert q.stat()[0] == 2
    q.quit()
    assert imap_count(srv, user) == 2


def test_pop3_delete_all_then_imap_sees_empty_inbox(srv):
    user = new_user(srv)
    for i in range(5):
        deliver(srv, user, "all%d" % i)
    with imap_client(srv, user) as c:
        # An IMAP session with INBOX selected does not stop POP3.
        c.ok("SELECT INBOX")
        p = pop3_login(srv, user)
        n = p.stat()[0]
        assert n == 5
        for i in range(1, n + 1):
            p.dele(i)
        p.quit()
        lines = c.ok("NOOP")
        assert sum(1 for l in lines if l.endswith(b" EXPUNGE")) == 5, lines
    assert imap_count(srv, user) == 0
