"""CONDSTORE (RFC 7162 section 3.1) through the real protocol; docs/imap.md
"CONDSTORE" is the contract.

Mod-sequences are per account and grow by one per change, but their
absolute values depend on what created the account, so each test reads
them (FETCH MODSEQ, STATUS HIGHESTMODSEQ) and then asserts exact replies
built from them.  Sessions land in two worker processes, so the flag
changes another session sees cross processes.
"""

import re

import pytest

from test_imap import CAPS, MODULE_CONF, IMAPRaw, SYSFLAGS, append, deliver, new_user

MAX = 9223372036854775807  # 2^63 - 1, the largest mod-sequence


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def client(srv, user):
    c = IMAPRaw(srv.imap_port)
    c.login(user)
    return c


def mailbox(srv, n=3):
    """A fresh account with n messages in INBOX."""
    user = new_user(srv)
    for i in range(n):
        deliver(srv, user, "m%d" % (i + 1))
    return user


def highest(c, mbox="INBOX"):
    lines = c.ok("STATUS %s (HIGHESTMODSEQ)" % mbox)
    m = re.fullmatch(rb'\* STATUS "?\w+"? \(HIGHESTMODSEQ (\d+)\)', lines[-1])
    assert m, lines
    return int(m.group(1))


def modseqs(c):
    """The modseq of every message, by sequence number (from 1)."""
    lines = c.ok("FETCH 1:* (MODSEQ)")
    out = []
    for i, ln in enumerate(lines):
        m = re.fullmatch(rb"\* (\d+) FETCH \(MODSEQ \((\d+)\)\)", ln)
        assert m and int(m.group(1)) == i + 1, lines
        out.append(int(m.group(2)))
    return out


def uids(c):
    lines = c.ok("FETCH 1:* (UID)")
    return [int(re.fullmatch(rb"\* \d+ FETCH \(UID (\d+)\)", ln).group(1)) for ln in lines]


def ok_hms(n):
    return b"* OK [HIGHESTMODSEQ %d] Highest" % n


# ------------------------------------------------------------ enabling

def test_capability_and_enable(srv):
    assert " SORT CONDSTORE QRESYNC THREAD=" in CAPS
    user = mailbox(srv, 2)
    with client(srv, user) as c:
        lines, done = c.cmd("CAPABILITY")
        assert lines == [b"* CAPABILITY " + CAPS.encode()] and done == b"OK Capability completed"
        # before any enabling command SELECT says nothing of modseqs
        lines = c.ok("SELECT INBOX")
        assert not any(b"HIGHESTMODSEQ" in ln for ln in lines), lines
        assert c.cmd("FETCH 1 (FLAGS)") == ([b"* 1 FETCH (FLAGS (\\Recent))"],
                                           b"OK Fetch completed")
        with client(srv, user) as other:
            hms = highest(other)
        # the first enabling command with a mailbox selected sends HIGHESTMODSEQ (3.1)
        assert c.cmd("ENABLE CONDSTORE") == (
            [b"* ENABLED CONDSTORE", ok_hms(hms)], b"OK Enabled")
        # enabled once: not again
        assert c.cmd("ENABLE CONDSTORE") == ([b"* ENABLED"], b"OK Enabled")
        # from now on FLAGS come with MODSEQ
        ms = modseqs(c)
        assert max(ms) == hms
        assert c.cmd("FETCH 2 (FLAGS)") == (
            [b"* 2 FETCH (FLAGS (\\Recent) MODSEQ (%d))" % ms[1]], b"OK Fetch completed")
        # and SELECT / EXAMINE report HIGHESTMODSEQ right after UIDNEXT
        for verb, code in (("SELECT", b"READ-WRITE"), ("EXAMINE", b"READ-ONLY")):
            lines, done = c.cmd("%s INBOX" % verb)
            assert done == b"OK [%s] %s completed" % (code, verb.encode())
            i = lines.index(b"* OK [UIDNEXT 3] Predicted next UID")
            assert lines[i + 1] == ok_hms(hms), lines
            assert not any(b"NOMODSEQ" in ln for ln in lines)


def test_enable_without_mailbox(srv):
    user = mailbox(srv, 1)
    with client(srv, user) as c:
        assert c.cmd("ENABLE CONDSTORE CONDSTORE") == ([b"* ENABLED CONDSTORE"], b"OK Enabled")
        hms = highest(c)
        lines = c.ok("SELECT INBOX")
        assert ok_hms(hms) in lines


def test_select_condstore_parameter(srv):
    user = mailbox(srv, 2)
    with client(srv, user) as c:
        hms = highest(c)  # STATUS (HIGHESTMODSEQ) enables, too; use a new session
    with client(srv, user) as c:
        lines, done = c.cmd("SELECT INBOX (CONDSTORE)")
        assert done == b"OK [READ-WRITE] SELECT completed"
        uv = re.search(rb"UIDVALIDITY (\d+)", b"\n".join(lines)).group(1)
        mid = re.search(rb"MAILBOXID \((M\d+)\)", b"\n".join(lines)).group(1)
        assert lines == [
            b"* 2 EXISTS", b"* 2 RECENT",
            ("* FLAGS (%s)" % SYSFLAGS).encode(),
            ("* OK [PERMANENTFLAGS (%s \\*)] Flags permitted" % SYSFLAGS).encode(),
            b"* OK [UNSEEN 1] First unseen",
            b"* OK [UIDVALIDITY " + uv + b"] UIDs valid",
            b"* OK [MAILBOXID (" + mid + b")] Ok",
            b"* OK [UIDNEXT 3] Predicted next UID",
            ok_hms(hms),
        ]
        # CONDSTORE is on for the session: ENABLE has nothing left to do
        assert c.cmd("ENABLE CONDSTORE") == ([b"* ENABLED"], b"OK Enabled")
    with client(srv, user) as c:
        lines, done = c.cmd("EXAMINE INBOX (condstore)")
        assert done == b"OK [READ-ONLY] EXAMINE completed"
        assert lines[-1] == ok_hms(hms)
        for bad in ("SELECT INBOX (QRESYNC)", "SELECT INBOX ()", "SELECT INBOX (CONDSTORE",
                    "SELECT INBOX CONDSTORE", "EXAMINE INBOX (CONDSTORE) x",
                    'SELECT INBOX ("CONDSTORE")'):
            lines, done = c.cmd(bad)
            assert lines == [] and done.startswith(b"BAD "), (bad, lines, done)
        assert c.cmd("SELECT INBOX (QRESYNC (1 1))") == (
            [], b"BAD QRESYNC needs ENABLE QRESYNC first")


def test_status_highestmodseq(srv):
    user = mailbox(srv, 2)
    with client(srv, user) as c:
        c.ok("CREATE Empty")
        lines = c.ok("STATUS INBOX (MESSAGES HIGHESTMODSEQ UIDNEXT)")
        m = re.fullmatch(rb'\* STATUS "INBOX" \(MESSAGES 2 HIGHESTMODSEQ (\d+) UIDNEXT 3\)',
                         lines[0])
        assert m and len(lines) == 1, lines
        hms = int(m.group(1))
        # a mailbox without messages has a positive HIGHESTMODSEQ too
        assert highest(c, "Empty") > 0
        # STATUS (HIGHESTMODSEQ) enabled CONDSTORE: SELECT reports it
        lines = c.ok("SELECT INBOX")
        assert ok_hms(hms) in lines
        assert max(modseqs(c)) == hms
        # a change raises it
        lines = c.ok("STORE 1 +FLAGS (\\Flagged)")
        m = re.fullmatch(rb"\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\) MODSEQ \((\d+)\)\)",
                         lines[0])
        assert m and len(lines) == 1, lines
        assert int(m.group(1)) > hms
        assert highest(c) == int(m.group(1))
        assert c.cmd("STATUS INBOX (HIGHESTMODSEQ")[1].startswith(b"BAD")


# ------------------------------------------------------------ FETCH

def test_fetch_modseq_item(srv):
    user = mailbox(srv, 3)
    with client(srv, user) as c:
        c.ok("SELECT INBOX")
        # FETCH MODSEQ is an enabling command: HIGHESTMODSEQ comes first
        hms = None
        with client(srv, user) as other:
            hms = highest(other)
        lines, done = c.cmd("FETCH 1:3 (MODSEQ)")
        assert done == b"OK Fetch completed"
        assert lines[0] == ok_hms(hms)
        ms = [int(re.fullmatch(rb"\* %d FETCH \(MODSEQ \((\d+)\)\)" % (i + 1), ln).group(1))
              for i, ln in enumerate(lines[1:])]
        assert len(ms) == 3 and ms == sorted(ms) and ms[2] == hms
        u = uids(c)
        # a single atom, with other items, and in UID FETCH
        assert c.cmd("FETCH 2 MODSEQ") == ([b"* 2 FETCH (MODSEQ (%d))" % ms[1]],
                                           b"OK Fetch completed")
        assert c.cmd("UID FETCH %d (MODSEQ FLAGS)" % u[0]) == (
            [b"* 1 FETCH (UID %d FLAGS (\\Recent) MODSEQ (%d))" % (u[0], ms[0])],
            b"OK Fetch completed")
        # FLAGS without MODSEQ still carries it now that CONDSTORE is on
        assert c.cmd("FETCH 3 (UID FLAGS)") == (
            [b"* 3 FETCH (UID %d FLAGS (\\Recent) MODSEQ (%d))" % (u[2], ms[2])],
            b"OK Fetch completed")
        # a body fetch that sets \Seen shows the new FLAGS and MODSEQ
        lines = c.ok("FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
        m = re.fullmatch(rb"\* 1 FETCH \(BODY\[HEADER.FIELDS \(SUBJECT\)\] \{\d+\}\r\n"
                         rb"Subject: m1\r\n\r\n FLAGS \(\\Seen \\Recent\) MODSEQ \((\d+)\)\)",
                         lines[0])
        assert m and len(lines) == 1, lines
        assert int(m.group(1)) == hms + 1 == highest(c)


def test_fetch_changedsince_two_sessions(srv):
    user = mailbox(srv, 3)
    with client(srv, user) as a, client(srv, user) as b, client(srv, user) as plain:
        a.ok("SELECT INBOX (CONDSTORE)")
        b.ok("SELECT INBOX")
        plain.ok("SELECT INBOX")
        u = uids(a)
        before = highest(plain)
        # plain's STATUS enabled it; a fourth session shows a client that never did
        with client(srv, user) as never:
            never.ok("SELECT INBOX")
            # b changes message 2 (b has not enabled CONDSTORE: no MODSEQ for it)
            assert b.cmd("STORE 2 +FLAGS (\\Answered)") == (
                [b"* 2 FETCH (FLAGS (\\Answered))"], b"OK Store completed")
            # a sees the other session's change with its MODSEQ
            ms2 = before + 1
            assert a.cmd("NOOP") == (
                [b"* 2 FETCH (UID %d FLAGS (\\Answered \\Recent) MODSEQ (%d))" % (u[1], ms2)],
                b"OK NOOP completed")
            ms = modseqs(a)
            assert ms[1] == ms2 and max(ms) == ms2 and ms[0] < ms[2] < ms2
            # the session that enabled nothing sees no MODSEQ
            assert never.cmd("NOOP") == (
                [b"* 2 FETCH (UID %d FLAGS (\\Answered))" % u[1]], b"OK NOOP completed")
        plain.ok("NOOP")
        # CHANGEDSINCE returns just that message, with MODSEQ implied
        assert a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % before) == (
            [b"* 2 FETCH (FLAGS (\\Answered \\Recent) MODSEQ (%d))" % ms2], b"OK Fetch completed")
        assert a.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % before) == (
            [b"* 2 FETCH (UID %d FLAGS (\\Answered \\Recent) MODSEQ (%d))" % (u[1], ms2)],
            b"OK Fetch completed")
        assert a.cmd("UID FETCH 1:* UID (CHANGEDSINCE %d)" % before) == (
            [b"* 2 FETCH (UID %d MODSEQ (%d))" % (u[1], ms2)], b"OK Fetch completed")
        assert a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % ms2) == ([], b"OK Fetch completed")
        assert a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % MAX) == ([], b"OK Fetch completed")
        # CHANGEDSINCE enables CONDSTORE in a session that had not
        with client(srv, user) as d:
            d.ok("SELECT INBOX")
            lines, done = d.cmd("FETCH 1:* (UID) (CHANGEDSINCE %d)" % before)
            assert (lines, done) == ([ok_hms(ms2), b"* 2 FETCH (UID %d MODSEQ (%d))" % (u[1], ms2)],
                                     b"OK Fetch completed")
        for bad in ("FETCH 1 (FLAGS) (CHANGEDSINCE 0)",
                    "FETCH 1 (FLAGS) (CHANGEDSINCE %d)" % (MAX + 1),
                    "FETCH 1 (FLAGS) (CHANGEDSINCE -1)",
                    "FETCH 1 (FLAGS) (CHANGEDSINCE)",
                    "FETCH 1 (FLAGS) (CHANGEDSINCE 5 FOO)",
                    "FETCH 1 (FLAGS) (FOO 5)",
                    "FETCH 1 (FLAGS) CHANGEDSINCE 5",
                    "FETCH 1 (FLAGS) ()",
                    "FETCH 1 (FLAGS) (CHANGEDSINCE 5) x"):
            assert a.cmd(bad) == ([], b"BAD Invalid FETCH items"), bad


# ------------------------------------------------------------ STORE

def test_store_unchangedsince(srv):
    user = mailbox(srv, 3)
    with client(srv, user) as a, client(srv, user) as b:
        a.ok("SELECT INBOX")  # a takes \Recent
        b.ok("SELECT INBOX")
        u = uids(a)
        with client(srv, user) as other:
            hms = highest(other)
        # b changes message 2 after a read hms
        b.ok("STORE 2 +FLAGS (\\Seen)")
        ms2 = hms + 1
        # a's conditional STORE: a learns of b's change first (not yet enabled:
        # no MODSEQ), then the first enabling command sends HIGHESTMODSEQ (no
        # higher than what a was told), 1 and 3 change, 2 is refused and
        # shown with its flags
        lines, done = a.cmd("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % hms)
        assert (lines, done) == ([
            b"* 2 FETCH (UID %d FLAGS (\\Seen \\Recent))" % u[1],
            ok_hms(hms),
            b"* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (%d))" % (hms + 2),
            b"* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (%d))" % ms2,
            b"* 3 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (%d))" % (hms + 2),
        ], b"OK [MODIFIED 2] Conditional STORE failed")
        assert modseqs(a) == [hms + 2, ms2, hms + 2]
        # b, which never enabled CONDSTORE, sees the change without MODSEQ
        assert b.cmd("NOOP") == ([b"* 1 FETCH (UID %d FLAGS (\\Flagged))" % u[0],
                                  b"* 3 FETCH (UID %d FLAGS (\\Flagged))" % u[2]],
                                 b"OK NOOP completed")
        a.ok("NOOP")
        # all pass: .SILENT still answers MODSEQ (3.1.3), UID STORE shows UIDs
        lines, done = a.cmd("UID STORE %d,%d (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Deleted)"
                            % (u[0], u[2], hms + 2))
        assert (lines, done) == ([b"* 1 FETCH (UID %d MODSEQ (%d))" % (u[0], hms + 3),
                                  b"* 3 FETCH (UID %d MODSEQ (%d))" % (u[2], hms + 3)],
                                 b"OK Store completed")
        # UNCHANGEDSINCE 0 fails for every message (RFC 7162 example 8)
        lines, done = a.cmd("UID STORE 1:* (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)")
        assert done == b"OK [MODIFIED %d:%d] Conditional STORE failed" % (u[0], u[2]), done
        assert lines == [
            b"* 1 FETCH (UID %d FLAGS (\\Flagged \\Deleted \\Recent) MODSEQ (%d))"
            % (u[0], hms + 3),
            b"* 2 FETCH (UID %d FLAGS (\\Seen \\Recent) MODSEQ (%d))" % (u[1], ms2),
            b"* 3 FETCH (UID %d FLAGS (\\Flagged \\Deleted \\Recent) MODSEQ (%d))"
            % (u[2], hms + 3),
        ]
        assert a.cmd("STORE 1,3 (UNCHANGEDSINCE 0) FLAGS.SILENT ()")[1] == \
            b"OK [MODIFIED 1,3] Conditional STORE failed"
        assert modseqs(a) == [hms + 3, ms2, hms + 3]
        # the largest value passes
        assert a.cmd("STORE 2 (UNCHANGEDSINCE %d) -FLAGS (\\Seen)" % MAX) == (
            [b"* 2 FETCH (FLAGS (\\Recent) MODSEQ (%d))" % (hms + 4)], b"OK Store completed")
        # an unconditional STORE after enabling carries MODSEQ too
        assert a.cmd("STORE 2 +FLAGS.SILENT (\\Draft)") == (
            [b"* 2 FETCH (MODSEQ (%d))" % (hms + 5)], b"OK Store completed")
        for bad in ("STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)",
                    "STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % (MAX + 1),
                    "STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
                    "STORE 1 (UNCHANGEDSINCE 5 X) +FLAGS (\\Seen)",
                    "STORE 1 (FOO 5) +FLAGS (\\Seen)",
                    "STORE 1 (UNCHANGEDSINCE 5)"):
            lines, done = a.cmd(bad)
            assert done.startswith(b"BAD "), (bad, lines, done)
    with client(srv, user) as c:
        c.ok("EXAMINE INBOX")
        assert c.cmd("STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)") == (
            [], b"NO [READ-ONLY] Mailbox is read-only")


# ------------------------------------------------------------ SEARCH

def test_search_modseq(srv):
    user = mailbox(srv, 3)
    with client(srv, user) as c:
        c.ok("SELECT INBOX")
        with client(srv, user) as other:
            hms = highest(other)
        # SEARCH MODSEQ enables CONDSTORE
        lines, done = c.cmd("SEARCH MODSEQ 1")
        assert (lines, done) == ([ok_hms(hms), b"* SEARCH 1 2 3 (MODSEQ %d)" % hms],
                                 b"OK Search completed")
        ms = modseqs(c)
        assert c.cmd("SEARCH MODSEQ %d" % ms[1]) == (
            [b"* SEARCH 2 3 (MODSEQ %d)" % ms[2]], b"OK Search completed")
        # the highest of those returned, not of the mailbox
        assert c.cmd("SEARCH MODSEQ %d NOT 3" % ms[0]) == (
            [b"* SEARCH 1 2 (MODSEQ %d)" % ms[1]], b"OK Search completed")
        # entry name and type: parsed, and ignored (one modseq per message)
        for entry in ('"/flags/\\\\draft" all', '"/flags/$Junk" priv', '"/flags/\\\\seen" shared',
                      '"/vendor/x" all'):
            assert c.cmd("SEARCH MODSEQ %s %d" % (entry, ms[1])) == (
                [b"* SEARCH 2 3 (MODSEQ %d)" % ms[2]], b"OK Search completed"), entry
        u = uids(c)
        assert c.cmd("UID SEARCH MODSEQ %d" % ms[2]) == (
            [b"* SEARCH %d (MODSEQ %d)" % (u[2], ms[2])], b"OK Search completed")
        # nothing found: no MODSEQ; a search without MODSEQ has none either
        assert c.cmd("SEARCH MODSEQ %d" % MAX) == ([b"* SEARCH"], b"OK Search completed")
        assert c.cmd("SEARCH OR NOT MODSEQ 1 LARGER 50000") == ([b"* SEARCH"],
                                                               b"OK Search completed")
        assert c.cmd("SEARCH ALL") == ([b"* SEARCH 1 2 3"], b"OK Search completed")
        # ESEARCH (RFC 4731 3.2): the modseq of MIN / MAX alone, else the highest
        assert c.cmd("SEARCH RETURN (MIN) MODSEQ 0") == (
            [b'* ESEARCH (TAG "t%d") MIN 1 MODSEQ %d' % (c.n, ms[0])], b"OK Search completed")
        assert c.cmd("SEARCH RETURN (MIN MAX) MODSEQ 0 NOT 3") == (
            [b'* ESEARCH (TAG "t%d") MIN 1 MAX 2 MODSEQ %d' % (c.n, ms[1])],
            b"OK Search completed")
        assert c.cmd("SEARCH RETURN (MIN COUNT) MODSEQ 0") == (
            [b'* ESEARCH (TAG "t%d") MIN 1 COUNT 3 MODSEQ %d' % (c.n, ms[2])],
            b"OK Search completed")
        assert c.cmd("SEARCH RETURN (ALL) MODSEQ %d" % MAX) == (
            [b'* ESEARCH (TAG "t%d")' % c.n], b"OK Search completed")
        # SORT appends it as SEARCH does (3.1.9)
        assert c.cmd("SORT (ARRIVAL) UTF-8 MODSEQ %d" % ms[1]) == (
            [b"* SORT 2 3 (MODSEQ %d)" % ms[2]], b"OK Sort completed")
        assert c.cmd("SORT (ARRIVAL) UTF-8 ALL") == ([b"* SORT 1 2 3"], b"OK Sort completed")
        for bad in ("SEARCH MODSEQ", "SEARCH MODSEQ -1", "SEARCH MODSEQ %d" % (MAX + 1),
                    'SEARCH MODSEQ "/flags/\\\\seen" 5', 'SEARCH MODSEQ "/flags/\\\\seen" foo 5',
                    'SEARCH MODSEQ "/flags/\\\\seen" all', "SEARCH MODSEQ x"):
            lines, done = c.cmd(bad)
            assert done.startswith(b"BAD "), (bad, lines, done)


def test_appended_message_gets_higher_modseq(srv):
    """RFC 7162 3.1: APPEND gives a modseq above all in the mailbox, and
    the session is told with the new message."""
    user = mailbox(srv, 1)
    with client(srv, user) as c:
        c.ok("SELECT INBOX (CONDSTORE)")
        hms = highest(c)
        append(c, "INBOX", "From: x@example.test\r\nSubject: new\r\n\r\nBody\r\n")
        ms = modseqs(c)
        assert len(ms) == 2 and ms[1] > hms and highest(c) == ms[1]
        lines = c.ok("SEARCH MODSEQ %d" % (hms + 1))
        assert lines == [b"* SEARCH 2 (MODSEQ %d)" % ms[1]]
