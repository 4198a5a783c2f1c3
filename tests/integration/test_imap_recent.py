"""\\Recent through the real protocol (RFC 3501 2.3.2, 6.3.1, 6.3.2, 6.3.10,
6.4.4, 7.3.2; docs/imap.md "\\Recent").

A message is recent in exactly one read-write session: the first that
SELECTs its mailbox after it arrived, or, for a message that arrives while
sessions have the mailbox selected, the first of them to be told about it.
A read-only session (EXAMINE) sees \\Recent without taking it.  IMAP4rev2
(RFC 9051) has no \\Recent: a session that ENABLEs it sees none and takes
none.

The module server has two workers, so sessions and SMTP deliveries land
in different processes; every test uses a fresh account.
"""

import os
import re
import sqlite3

import pytest

from conftest import socket_owner
from test_imap import MODULE_CONF, PASSWORD, SYSFLAGS, IMAPRaw, append, deliver, new_user

MSG = "From: a@example.test\r\nSubject: hello\r\n\r\nHi.\r\n"


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def client(srv, user, rev2=False):
    c = IMAPRaw(srv.imap_port)
    c.login(user, PASSWORD)
    if rev2:
        assert c.cmd("ENABLE IMAP4rev2") == ([b"* ENABLED IMAP4rev2"], b"OK Enabled")
    return c


def select(c, mbox="INBOX", verb="SELECT"):
    lines, done = c.cmd("%s %s" % (verb, mbox))
    assert done.startswith(b"OK ["), (lines, done)
    return lines


def recent_counts(lines):
    """The "* N RECENT" lines of a response, as numbers."""
    return [int(m.group(1)) for m in (re.fullmatch(rb"\* (\d+) RECENT", l) for l in lines) if m]


def flags(c, seqs="1:*"):
    return c.ok("FETCH %s FLAGS" % seqs)


def status_recent(c, mbox="INBOX"):
    lines = c.ok("STATUS %s (RECENT MESSAGES)" % mbox)
    m = re.fullmatch(rb'\* STATUS "?[^"]+"? \(RECENT (\d+) MESSAGES (\d+)\)', lines[0])
    assert m and len(lines) == 1, lines
    return int(m.group(1)), int(m.group(2))


# ------------------------------------------------------------ SELECT

def test_first_select_takes_recent(srv):
    user = new_user(srv)
    deliver(srv, user, "one")
    deliver(srv, user, "two")
    with client(srv, user) as a:
        # (test_imap.py's test_select_examine checks the whole answer)
        lines = select(a)
        assert lines[:4] == [
            b"* 2 EXISTS", b"* 2 RECENT", ("* FLAGS (%s)" % SYSFLAGS).encode(),
            ("* OK [PERMANENTFLAGS (%s \\*)] Flags permitted" % SYSFLAGS).encode()]
        assert flags(a) == [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"]
        # a second session, after it: nothing is recent there
        with client(srv, user) as b:
            lines = select(b)
            assert lines[:2] == [b"* 2 EXISTS", b"* 0 RECENT"]
            assert flags(b) == [b"* 1 FETCH (FLAGS ())", b"* 2 FETCH (FLAGS ())"]
            assert b.cmd("SEARCH RECENT") == ([b"* SEARCH"], b"OK Search completed")
        # a keeps them for as long as it has the mailbox selected
        a.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
        assert flags(a) == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))",
                            b"* 2 FETCH (FLAGS (\\Recent))"]
        # ...and loses them when it selects the mailbox again
        assert recent_counts(select(a)) == [0]
        assert flags(a, "2") == [b"* 2 FETCH (FLAGS ())"]
    # and a new session after both, too
    with client(srv, user) as c:
        assert recent_counts(select(c)) == [0]


def test_examine_looks_without_taking(srv):
    """RFC 3501 2.3.2: in a read-only session \\Recent shows, and the
    next session sees it as well."""
    user = new_user(srv)
    deliver(srv, user, "one")
    deliver(srv, user, "two")
    with client(srv, user) as e:
        lines = select(e, verb="EXAMINE")
        assert lines[:2] == [b"* 2 EXISTS", b"* 2 RECENT"]
        assert b"* OK [PERMANENTFLAGS ()] Read-only mailbox" in lines
        assert flags(e) == [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"]
        assert status_recent(e) == (2, 2)
        with client(srv, user) as e2:
            assert recent_counts(select(e2, verb="EXAMINE")) == [2]
        with client(srv, user) as a:
            assert recent_counts(select(a)) == [2]
            assert flags(a, "1") == [b"* 1 FETCH (FLAGS (\\Recent))"]
        # e's own view of \Recent does not change under it
        assert flags(e, "2") == [b"* 2 FETCH (FLAGS (\\Recent))"]
        # now taken: a new EXAMINE sees none
        assert recent_counts(select(e, verb="EXAMINE")) == [0]
        assert flags(e) == [b"* 1 FETCH (FLAGS ())", b"* 2 FETCH (FLAGS ())"]


def test_status_recent(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        assert status_recent(c) == (0, 0)
        append(c, "INBOX", MSG)
        append(c, "INBOX", MSG)
        assert status_recent(c) == (2, 2)
        # LIST-STATUS (RFC 5819) counts the same way
        assert c.ok('LIST "" INBOX RETURN (STATUS (RECENT))') == [
            b'* LIST (\\HasNoChildren) "/" "INBOX"', b'* STATUS "INBOX" (RECENT 2)']
        select(c, verb="EXAMINE")
        assert status_recent(c) == (2, 2)
        select(c)
        # counted for the next session: this one has taken them
        assert status_recent(c) == (0, 2)
        c.ok("UNSELECT")
        append(c, "INBOX", MSG)
        assert status_recent(c) == (1, 3)
        # other mailboxes keep their own count; COPY makes recent messages
        assert status_recent(c, "Archive") == (0, 0)
        select(c)
        assert c.cmd("COPY 1:3 Archive")[1].startswith(b"OK [COPYUID ")
        assert status_recent(c, "Archive") == (3, 3)
        assert status_recent(c) == (0, 3)


def test_search_recent_new_old(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        for _ in range(3):
            append(c, "INBOX", MSG)
        select(c)
        c.ok("UNSELECT")
        append(c, "INBOX", MSG)
        append(c, "INBOX", MSG, flags="\\Seen")
        append(c, "INBOX", MSG)
        assert recent_counts(select(c)) == [3]
        c.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
        cases = {
            "RECENT": b"* SEARCH 4 5 6",
            "NEW": b"* SEARCH 4 6",
            "OLD": b"* SEARCH 1 2 3",
            "NOT RECENT": b"* SEARCH 1 2 3",
            "OR NEW SEEN": b"* SEARCH 1 4 5 6",
            "RECENT SEEN": b"* SEARCH 5",
            "OLD UNSEEN": b"* SEARCH 2 3",
            "NOT NEW": b"* SEARCH 1 2 3 5",
        }
        for keys, want in cases.items():
            assert (keys, c.cmd("SEARCH " + keys)) == (keys, ([want], b"OK Search completed"))
        assert c.cmd("UID SEARCH NEW") == ([b"* SEARCH 4 6"], b"OK Search completed")
        tag = c.tag()
        assert c.cmd("SEARCH RETURN (COUNT ALL) RECENT", tag) == (
            [('* ESEARCH (TAG "%s") ALL 4:6 COUNT 3' % tag).encode()], b"OK Search completed")


# ------------------------------------------------- new mail while selected

def test_new_mail_while_selected(srv):
    """RFC 3501 7.3.2: the untagged EXISTS of new mail comes with RECENT;
    the message is recent in the first session told about it."""
    user = new_user(srv)
    deliver(srv, user, "first")
    with client(srv, user) as a, client(srv, user) as b:
        assert recent_counts(select(a)) == [1]
        assert recent_counts(select(b)) == [0]
        deliver(srv, user, "second")
        assert a.cmd("NOOP") == ([b"* 2 EXISTS", b"* 2 RECENT"], b"OK NOOP completed")
        # b learns of it after a had it
        assert b.cmd("NOOP") == ([b"* 2 EXISTS", b"* 0 RECENT"], b"OK NOOP completed")
        assert flags(a, "2") == [b"* 2 FETCH (FLAGS (\\Recent))"]
        assert flags(b, "2") == [b"* 2 FETCH (FLAGS ())"]
        # the other way round: b first
        deliver(srv, user, "third")
        assert b.cmd("NOOP") == ([b"* 3 EXISTS", b"* 1 RECENT"], b"OK NOOP completed")
        assert a.cmd("NOOP") == ([b"* 3 EXISTS", b"* 2 RECENT"], b"OK NOOP completed")
        assert b.cmd("SEARCH RECENT") == ([b"* SEARCH 3"], b"OK Search completed")
        assert a.cmd("SEARCH RECENT") == ([b"* SEARCH 1 2"], b"OK Search completed")
        # APPEND by a session with the mailbox selected: recent there
        c_lines, done = a.cmd("APPEND INBOX {%d+}\r\n%s" % (len(MSG), MSG))
        assert (c_lines, done[:14]) == ([b"* 4 EXISTS", b"* 3 RECENT"], b"OK [APPENDUID ")
        assert b.cmd("NOOP") == ([b"* 4 EXISTS", b"* 1 RECENT"], b"OK NOOP completed")
        # an expunged recent message no longer counts
        a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert a.cmd("EXPUNGE") == ([b"* 1 EXPUNGE"], b"OK Expunge completed")
        assert a.cmd("SEARCH RECENT") == ([b"* SEARCH 1 3"], b"OK Search completed")
        deliver(srv, user, "fifth")
        assert a.cmd("NOOP") == ([b"* 4 EXISTS", b"* 3 RECENT"], b"OK NOOP completed")


def test_new_mail_in_idle(srv):
    user = new_user(srv)
    with client(srv, user) as a, client(srv, user) as e:
        assert recent_counts(select(a)) == [0]
        assert recent_counts(select(e, verb="EXAMINE")) == [0]
        a.send("i IDLE\r\n")
        assert a.line() == b"+ idling"
        deliver(srv, user, "while idle")
        assert a.line() == b"* 1 EXISTS"
        assert a.line() == b"* 1 RECENT"
        a.send("DONE\r\n")
        assert a.line() == b"i OK Idle completed"
        assert flags(a) == [b"* 1 FETCH (FLAGS (\\Recent))"]
        # the read-only session came after a: not recent there
        assert e.cmd("NOOP") == ([b"* 1 EXISTS", b"* 0 RECENT"], b"OK NOOP completed")
        # told first, a read-only session sees it without taking it
        deliver(srv, user, "second")
        assert e.cmd("NOOP") == ([b"* 2 EXISTS", b"* 1 RECENT"], b"OK NOOP completed")
        assert a.cmd("NOOP") == ([b"* 2 EXISTS", b"* 2 RECENT"], b"OK NOOP completed")
        assert flags(e) == [b"* 1 FETCH (FLAGS ())", b"* 2 FETCH (FLAGS (\\Recent))"]


def test_one_session_of_many_gets_it(srv):
    """Sessions in both worker processes race for a new message: exactly
    one of them has it as recent."""
    user = new_user(srv)
    sessions = [client(srv, user) for _ in range(8)]
    try:
        owners = {socket_owner(srv.workers(), srv.imap_port, c.sock.getsockname()[1])
                  for c in sessions}
        assert len(owners - {None}) == 2, "all sessions on one worker (1 in 128)"
        for c in sessions:
            assert recent_counts(select(c)) == [0]
        counts = [0] * len(sessions)  # RECENT counts every recent message
        for round_ in range(3):
            deliver(srv, user, "race %d" % round_)
            for c in sessions:  # all at once, then read the answers
                c.send("n NOOP\r\n")
            got = []
            for c in sessions:
                lines, done = c.until("n")
                assert done == b"OK NOOP completed"
                assert lines[0] == b"* %d EXISTS" % (round_ + 1), lines
                got.append(recent_counts(lines))
            assert [len(g) for g in got] == [1] * len(sessions), got
            gained = [g[0] - n for g, n in zip(got, counts)]
            assert sorted(gained) == [0] * 7 + [1], got
            counts = [g[0] for g in got]
            marked = [c for c in sessions
                      if flags(c, str(round_ + 1)) ==
                      [b"* %d FETCH (FLAGS (\\Recent))" % (round_ + 1)]]
            assert len(marked) == 1
    finally:
        for c in sessions:
            c.close()


# ------------------------------------------------------------ IMAP4rev2

def test_rev2_session_sees_no_recent(srv):
    user = new_user(srv)
    deliver(srv, user, "one")
    with client(srv, user, rev2=True) as r:
        lines = select(r)
        assert not any(b"RECENT" in l or b"\\Recent" in l for l in lines), lines
        assert lines[0] == b"* 1 EXISTS"
        assert ("* FLAGS (%s)" % SYSFLAGS).encode() in lines
        assert ("* OK [PERMANENTFLAGS (%s \\*)] Flags permitted" % SYSFLAGS).encode() in lines
        assert flags(r) == [b"* 1 FETCH (FLAGS ())"]
        tag = r.tag()
        assert r.cmd("SEARCH RECENT", tag) == (
            [('* ESEARCH (TAG "%s")' % tag).encode()], b"OK Search completed")
        tag = r.tag()
        assert r.cmd("SEARCH OLD", tag) == (
            [('* ESEARCH (TAG "%s") ALL 1' % tag).encode()], b"OK Search completed")
        assert status_recent(r) == (0, 1)
        # new mail: EXISTS without RECENT
        deliver(srv, user, "two")
        assert r.cmd("NOOP") == ([b"* 2 EXISTS"], b"OK NOOP completed")
        assert r.cmd("STORE 2 +FLAGS (\\Seen)") == (
            [b"* 2 FETCH (FLAGS (\\Seen))"], b"OK Store completed")
        # it took nothing: an IMAP4rev1 session after it gets both
        with client(srv, user) as a:
            assert recent_counts(select(a)) == [2]
        assert flags(r) == [b"* 1 FETCH (FLAGS ())", b"* 2 FETCH (FLAGS (\\Seen))"]


# ------------------------------------------------------------ old data

def test_old_account_database_gets_recent_mark(make_server):
    """An account.db from before \\Recent (no mailboxes.recent_uid) is
    upgraded when it is opened: the messages it had are not recent, new
    ones are."""
    s = make_server(conf=MODULE_CONF)
    user = new_user(s)
    deliver(s, user, "old one")
    deliver(s, user, "old two")
    s.stop()
    db = sqlite3.connect(os.path.join(s.data, "server.db"))
    aid = db.execute("SELECT id FROM accounts WHERE address = ?", (user,)).fetchone()[0]
    db.close()
    path = os.path.join(s.data, "accounts", "%02d" % (aid % 100), str(aid), "account.db")
    db = sqlite3.connect(path)
    db.executescript("ALTER TABLE mailboxes DROP COLUMN recent_uid;"
                     "PRAGMA user_version = 2;")  # schema 3 added the column
    db.close()
    s.start()
    with client(s, user) as c:
        assert status_recent(c) == (0, 2)
        assert recent_counts(select(c)) == [0]
        deliver(s, user, "new")
        assert c.cmd("NOOP") == ([b"* 3 EXISTS", b"* 1 RECENT"], b"OK NOOP completed")
        assert flags(c) == [b"* 1 FETCH (FLAGS ())", b"* 2 FETCH (FLAGS ())",
                            b"* 3 FETCH (FLAGS (\\Recent))"]
    db = sqlite3.connect(path)
    cols = [r[1] for r in db.execute("PRAGMA table_info(mailboxes)")]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    assert "recent_uid" in cols and version >= 3, (cols, version)  # v3 added it
