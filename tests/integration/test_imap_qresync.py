"""QRESYNC (RFC 7162 section 3.2) through the real protocol; docs/imap.md
"QRESYNC" is the contract.

Mod-sequences are per account; each test reads them (STATUS HIGHESTMODSEQ,
FETCH MODSEQ) and asserts exact replies built from them.  Sessions land in
two worker processes, so expunges made in one session reach the other
across processes.
"""

import imaplib
import shutil
import subprocess
import re

import pytest

from test_imap import HOST, MODULE_CONF, PASSWORD, IMAPRaw, new_user
from test_imap_condstore import mailbox


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def client(srv, user, enable=True):
    # 60 s per answer: the tests below store and expunge 10,000 messages in
    # one command, which takes more than 10 s on a loaded 2-core machine
    c = IMAPRaw(srv.imap_port, timeout_s=60)
    c.login(user)
    if enable:
        assert c.cmd("ENABLE QRESYNC") == ([b"* ENABLED QRESYNC"], b"OK Enabled")
    return c


def state(c, mbox="INBOX"):
    """(UIDVALIDITY, HIGHESTMODSEQ) from STATUS."""
    lines = c.ok("STATUS %s (UIDVALIDITY HIGHESTMODSEQ)" % mbox)
    m = re.fullmatch(rb'\* STATUS "?\w+"? \(UIDVALIDITY (\d+) HIGHESTMODSEQ (\d+)\)', lines[-1])
    assert m, lines
    return int(m.group(1)), int(m.group(2))


def modseq_of(c, uid):
    lines = c.ok("UID FETCH %d (MODSEQ)" % uid)
    m = re.fullmatch(rb"\* \d+ FETCH \(UID %d MODSEQ \((\d+)\)\)" % uid, lines[-1])
    assert m, lines
    return int(m.group(1))


def after_select(lines):
    """The untagged lines after the standard SELECT ones (the last of
    which is the HIGHESTMODSEQ line for a CONDSTORE session)."""
    i = max(k for k, ln in enumerate(lines) if ln.startswith(b"* OK [HIGHESTMODSEQ "))
    return lines[i + 1:]


def expunge_elsewhere(srv, user, uids):
    """Another session (QRESYNC not enabled) expunges uids of INBOX."""
    with client(srv, user, enable=False) as a:
        a.ok("SELECT INBOX")
        a.ok("UID STORE %s +FLAGS.SILENT (\\Deleted)" % uids)
        a.ok("UID EXPUNGE %s" % uids)


# ------------------------------------------------------------ enabling

def test_enable_and_errors(srv):
    user = mailbox(srv, 2)
    with client(srv, user, enable=False) as c:
        c.ok("SELECT INBOX")
        # without ENABLE QRESYNC both QRESYNC forms are BAD (3.2.3)
        assert c.cmd("SELECT INBOX (QRESYNC (1 1))") == (
            [], b"BAD QRESYNC needs ENABLE QRESYNC first")
        assert c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)") == (
            [], b"BAD VANISHED needs ENABLE QRESYNC first")
        # QRESYNC implies CONDSTORE: the HIGHESTMODSEQ of the selected mailbox
        lines, done = c.cmd("ENABLE QRESYNC CONDSTORE")
        assert lines[0] == b"* ENABLED QRESYNC CONDSTORE" and done == b"OK Enabled"
        assert re.fullmatch(rb"\* OK \[HIGHESTMODSEQ \d+\] Highest", lines[1]), lines
        assert c.cmd("ENABLE QRESYNC") == ([b"* ENABLED"], b"OK Enabled")
    bads = (
        ("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
         b"BAD VANISHED is only allowed in UID FETCH"),
        ("UID FETCH 1:* (FLAGS) (VANISHED)", b"BAD VANISHED needs CHANGEDSINCE"),
        ("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)",
         b"BAD Invalid FETCH items"),
        ("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0 VANISHED)", b"BAD Invalid FETCH items"),
        ("SELECT INBOX (QRESYNC (0 1))", b"BAD Invalid QRESYNC UIDVALIDITY"),
        ("SELECT INBOX (QRESYNC (1 0))", b"BAD Invalid QRESYNC mod-sequence"),
        ("SELECT INBOX (QRESYNC (1 1 1:*))", b"BAD Invalid QRESYNC known UIDs"),
        ("SELECT INBOX (QRESYNC (1 1 1:5 (1:2 3)))",
         b"BAD QRESYNC sequence match data: the two sets differ in size"),
        ("SELECT INBOX (QRESYNC (1 1 1:5 (2,1 3,4)))",
         b"BAD Invalid QRESYNC sequence match data"),
        ("SELECT INBOX (QRESYNC (1 1) QRESYNC (1 1))", b"BAD Unknown SELECT parameters"),
        ("SELECT INBOX (QRESYNC)",
         b"BAD QRESYNC needs (uidvalidity mod-sequence [known-uids [seq-match-data]])"),
    )
    for part in (bads[:6], bads[6:]):  # fewer BADs than smtp.max_errors per session
        with client(srv, user) as c:
            c.ok("SELECT INBOX")
            for bad, why in part:
                assert c.cmd(bad) == ([], why), bad
            # a BAD SELECT leaves the mailbox selected
            assert c.cmd("NOOP") == ([], b"OK NOOP completed")
            assert c.ok("UID FETCH 1 (UID)") == [b"* 1 FETCH (UID 1)"]


# ------------------------------------------------------------ SELECT (QRESYNC)

def test_select_qresync_vanished_and_flags(srv):
    user = mailbox(srv, 6)
    with client(srv, user) as b:
        b.ok("SELECT INBOX")  # claims \Recent: later sessions see none
        uv, hms0 = state(b)
    expunge_elsewhere(srv, user, "3:4")
    with client(srv, user, enable=False) as a:
        a.ok("SELECT INBOX")
        a.ok("UID STORE 1 +FLAGS.SILENT (\\Flagged)")
        a.ok("UID STORE 6 +FLAGS.SILENT (\\Seen $Work)")
        m1, m6 = modseq_of(a, 1), modseq_of(a, 6)
    with client(srv, user) as b:
        lines, done = b.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, hms0))
        assert done == b"OK [READ-WRITE] SELECT completed"
        assert b"* 4 EXISTS" in lines and b"* OK [UIDVALIDITY %d] UIDs valid" % uv in lines
        assert after_select(lines) == [
            b"* VANISHED (EARLIER) 3:4",
            b"* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ (%d))" % m1,
            b"* 4 FETCH (UID 6 FLAGS (\\Seen $Work) MODSEQ (%d))" % m6,
        ]
        # the known uids restrict both parts; EXAMINE too, and [CLOSED] first
        lines, done = b.cmd("EXAMINE INBOX (QRESYNC (%d %d 2:4,6))" % (uv, hms0))
        assert done == b"OK [READ-ONLY] EXAMINE completed"
        assert lines[0] == b"* OK [CLOSED] Previous mailbox closed"
        assert after_select(lines) == [
            b"* VANISHED (EARLIER) 3:4",
            b"* 4 FETCH (UID 6 FLAGS (\\Seen $Work) MODSEQ (%d))" % m6,
        ]
        # from the modseq after the expunge: only the flag changes
        lines, done = b.cmd("SELECT INBOX (CONDSTORE QRESYNC (%d %d))" % (uv, m1 - 1))
        assert after_select(lines) == [
            b"* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ (%d))" % m1,
            b"* 4 FETCH (UID 6 FLAGS (\\Seen $Work) MODSEQ (%d))" % m6,
        ]
        # another UIDVALIDITY: the parameters are ignored (3.2.5)
        lines, done = b.cmd("SELECT INBOX (QRESYNC (%d %d 1:6))" % (uv + 1, hms0))
        assert done == b"OK [READ-WRITE] SELECT completed"
        assert after_select(lines) == []
        # up to date: nothing to tell
        _, hms = state(b)
        lines, done = b.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, hms))
        assert after_select(lines) == [] and done == b"OK [READ-WRITE] SELECT completed"


def test_select_qresync_sequence_match(srv):
    """The sequence match data bounds the VANISHED (EARLIER) (3.2.5.2)."""
    user = mailbox(srv, 8)
    with client(srv, user) as b:
        uv, hms0 = state(b)
    expunge_elsewhere(srv, user, "2,6")
    with client(srv, user) as b:
        # the client knew uids 1..8 as messages 1..8; now message 4 is uid
        # 5: the pair (1 1) matches, (4 4) does not, so VANISHED starts at 2
        lines, _ = b.cmd("SELECT INBOX (QRESYNC (%d %d 1:8 (1,4 1,4)))" % (uv, hms0))
        assert after_select(lines) == [b"* VANISHED (EARLIER) 2,6"]
        # pairs that still match up to message 4 (uid 5) hide uid 2
        lines, _ = b.cmd("SELECT INBOX (QRESYNC (%d %d 1:8 (1,4 1,5)))" % (uv, hms0))
        assert after_select(lines) == [b"* VANISHED (EARLIER) 6"]
        # a pair matching the last message hides everything below it
        lines, _ = b.cmd("SELECT INBOX (QRESYNC (%d %d 1:8 (6 8)))" % (uv, hms0))
        assert after_select(lines) == []


# ------------------------------------------------------------ live VANISHED

def test_vanished_in_idle_and_expunge(srv):
    user = mailbox(srv, 5)
    with client(srv, user) as b:
        b.ok("SELECT INBOX")
        b.send("i IDLE\r\n")
        assert b.line() == b"+ idling"
        expunge_elsewhere(srv, user, "2:3")
        # the \Deleted flags may come first (a notification of their own)
        ln = b.line()
        while ln != b"* VANISHED 2:3":
            assert re.fullmatch(rb"\* [23] FETCH \(UID [23] FLAGS \(\\Deleted \\Recent\) "
                                rb"MODSEQ \(\d+\)\)", ln), ln
            ln = b.line()
        b.send("DONE\r\n")
        assert b.line() == b"i OK Idle completed"
        # its own EXPUNGE: VANISHED and the new HIGHESTMODSEQ (3.2.7)
        b.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")  # messages 1 and 3: uids 1, 5
        lines, done = b.cmd("EXPUNGE")
        _, hms = state(b)
        assert lines == [b"* VANISHED 1,5"]
        assert done == b"OK [HIGHESTMODSEQ %d] Expunge completed" % hms
        # nothing expunged: no code
        assert b.cmd("EXPUNGE") == ([], b"OK Expunge completed")
        # MOVE: VANISHED and HIGHESTMODSEQ (RFC 6851 4.4)
        lines, done = b.cmd("UID MOVE 4 Archive")
        _, hms = state(b)
        assert lines[1:] == [b"* VANISHED 4"], lines
        assert done == b"OK [HIGHESTMODSEQ %d] Move completed" % hms


def test_no_vanished_during_uid_search(srv):
    """Expunges wait during UID SEARCH (its keys may hold sequence numbers)
    and come with the next command that allows them."""
    user = mailbox(srv, 3)
    with client(srv, user) as b:
        b.ok("SELECT INBOX")
        expunge_elsewhere(srv, user, "1")
        lines, done = b.cmd("UID SEARCH 1:*")
        assert not any(ln.startswith(b"* VANISHED") for ln in lines), lines
        assert done == b"OK Search completed"
        assert b.cmd("NOOP") == ([b"* VANISHED 1"], b"OK NOOP completed")


def test_lower_highestmodseq_while_expunges_wait(srv):
    """FETCH responses with modseqs above an expunge that must wait (during
    FETCH) come with the lower HIGHESTMODSEQ to resync from (3.2)."""
    user = mailbox(srv, 3)
    with client(srv, user) as b:
        b.ok("SELECT INBOX")
        _, hms0 = state(b)
        with client(srv, user, enable=False) as a:
            a.ok("SELECT INBOX")
            a.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
            a.ok("UID EXPUNGE 2")
            a.ok("UID STORE 1 +FLAGS.SILENT (\\Flagged)")
            m1 = modseq_of(a, 1)
        lines, done = b.cmd("FETCH 1 (FLAGS)")
        assert lines == [b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ (%d))" % m1,
                         b"* OK [HIGHESTMODSEQ %d] Highest" % hms0,
                         b"* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (%d))" % m1]
        assert done == b"OK Fetch completed"
        assert b.cmd("NOOP") == ([b"* VANISHED 2"], b"OK NOOP completed")
        # a flag change alone (nothing waiting) needs no such line
        with client(srv, user, enable=False) as a:
            a.ok("SELECT INBOX")
            a.ok("UID STORE 1 -FLAGS.SILENT (\\Flagged)")
            m1 = modseq_of(a, 1)
        lines, _ = b.cmd("FETCH 1 (FLAGS)")
        assert lines == [b"* 1 FETCH (UID 1 FLAGS (\\Recent) MODSEQ (%d))" % m1,
                         b"* 1 FETCH (FLAGS (\\Recent) MODSEQ (%d))" % m1]


# ------------------------------------------------------------ UID FETCH VANISHED

def test_uid_fetch_vanished(srv):
    user = mailbox(srv, 6)
    with client(srv, user) as b:
        b.ok("SELECT INBOX")
        _, hms0 = state(b)
        expunge_elsewhere(srv, user, "2,4:5")
        assert b.cmd("NOOP") == ([b"* VANISHED 2,4:5"], b"OK NOOP completed")
        b.ok("UID STORE 3 +FLAGS.SILENT (\\Answered)")
        m3 = modseq_of(b, 3)
        # VANISHED (EARLIER) first, then the FETCH responses (3.2.6)
        lines, done = b.cmd("UID FETCH 1:10 (FLAGS) (CHANGEDSINCE %d VANISHED)" % hms0)
        assert lines == [b"* VANISHED (EARLIER) 2,4:5",
                         b"* 2 FETCH (UID 3 FLAGS (\\Answered \\Recent) MODSEQ (%d))" % m3]
        assert done == b"OK Fetch completed"
        # only the set's uids; the modifiers in the other order
        lines, _ = b.cmd("UID FETCH 4,6 (FLAGS) (VANISHED CHANGEDSINCE %d)" % hms0)
        assert lines == [b"* VANISHED (EARLIER) 4"]
        # nothing expunged since m3
        lines, _ = b.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % m3)
        assert lines == []


# ------------------------------------------------------------ imaplib

def test_imaplib_resync(srv):
    """Python's imaplib as the client: ENABLE, SELECT (QRESYNC ...)."""
    user = mailbox(srv, 4)
    with client(srv, user) as b:
        uv, hms0 = state(b)
    expunge_elsewhere(srv, user, "4")
    with imaplib.IMAP4(HOST, srv.imap_port) as m:
        m.login(user, PASSWORD)
        typ, data = m._simple_command("ENABLE", "QRESYNC")
        assert typ == "OK" and m.untagged_responses.pop("ENABLED") == [b"QRESYNC"]
        typ, data = m._simple_command("SELECT", "INBOX", "(QRESYNC (%d %d 1:4))" % (uv, hms0))
        assert typ == "OK" and data == [b"[READ-WRITE] SELECT completed"]
        assert m.untagged_responses["VANISHED"] == [b"(EARLIER) 4"]
        assert m.untagged_responses["EXISTS"] == [b"3"]
        assert "FETCH" not in m.untagged_responses


# ------------------------------------------------------------ bounded memory

def append_many(c, n):
    """n small messages into INBOX, up to 1,000 (the literal limit) per APPEND."""
    msg = b"Subject: bulk\r\n\r\nx\r\n"
    while n > 0:
        k = min(n, 1000)
        tag = c.tag()
        c.send(tag.encode() + b" APPEND INBOX"
               + b"".join(b" {%d+}\r\n" % len(msg) + msg for _ in range(k)) + b"\r\n")
        lines, done = c.until(tag)
        assert done.startswith(b"OK [APPENDUID "), done
        n -= k


def test_forgotten_expunges(srv):
    """Past 10,000 remembered expunges the oldest are dropped; a client
    modseq below what was dropped gets every uid of its set that is not
    in the mailbox (RFC 7162 3.2.6), one at or above it the exact list."""
    user = new_user(srv)
    with client(srv, user, enable=False) as c:
        append_many(c, 3)  # uids 1..3, kept (but 2)
        uv, hms0 = state(c)
        append_many(c, 10001)  # uids 4..10004
        with client(srv, user) as w:  # selected before the expunges
            w.ok("SELECT INBOX")
            c.ok("SELECT INBOX")
            c.ok("UID STORE 4:10004 +FLAGS.SILENT (\\Deleted)")
            c.ok("UID EXPUNGE 4:10004")  # 10,001 > 10,000: all of them dropped
            _, floor = state(c)
            expunge_elsewhere(srv, user, "2")  # remembered
            # the selected session compares its view with the mailbox
            assert w.cmd("NOOP") == ([b"* VANISHED 2,4:10004"], b"OK NOOP completed")
    with client(srv, user) as b:
        lines, _ = b.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, hms0))
        assert b"* 2 EXISTS" in lines
        assert after_select(lines) == [b"* VANISHED (EARLIER) 2,4:10004"]
        # the sequence match data proves uids up to 3
        lines, _ = b.cmd("SELECT INBOX (QRESYNC (%d %d 1:10004 (1,2 1,3)))" % (uv, hms0))
        assert after_select(lines) == [b"* VANISHED (EARLIER) 4:10004"]
        # at the floor: exact again
        lines, _ = b.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, floor))
        assert after_select(lines) == [b"* VANISHED (EARLIER) 2"]
        lines, _ = b.cmd("UID FETCH 1:20000 (FLAGS) (CHANGEDSINCE %d VANISHED)" % hms0)
        assert lines == [b"* VANISHED (EARLIER) 2,4:10004"]


# ------------------------------------------------------------ interimap

def interimap(srv, cfg):
    r = subprocess.run(["interimap", "--debug", "--config=%s" % cfg, "INBOX"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stderr


def inbox(srv, user):
    """(subject, flags) of each message of user's INBOX, in UID order."""
    with client(srv, user, enable=False) as c:
        c.ok("EXAMINE INBOX")
        lines = c.ok("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = []
    for ln in lines:
        m = re.match(rb"\* \d+ FETCH \(FLAGS \(([^)]*)\) BODY\[HEADER.FIELDS \(SUBJECT\)\] "
                     rb"\{\d+\}\r\nSubject: (\S+)", ln)
        assert m, ln
        out.append((m.group(2).decode(), m.group(1).decode()))
    return out


@pytest.mark.skipif(shutil.which("interimap") is None, reason="interimap is not installed")
def test_interimap_sync(srv, tmp_path):
    """Debian's interimap, a client that needs QRESYNC (it refuses servers
    without it), keeps two accounts' INBOX in step: the second run sees
    one side's expunge and flag change through SELECT (QRESYNC ...)."""
    local, remote = mailbox(srv, 3), new_user(srv)
    cfg = tmp_path / "config"
    cfg.write_text("database = %s\n" % (tmp_path / "interimap.db")
                   + "".join("[%s]\ntype = imap\nhost = 127.0.0.1\nport = %d\nSTARTTLS = NO\n"
                             "username = %s\npassword = %s\n" % (side, srv.imap_port, u, PASSWORD)
                             for side, u in (("local", local), ("remote", remote))))
    log = interimap(srv, cfg)
    assert inbox(srv, remote) == [("m1", ""), ("m2", ""), ("m3", "")], log
    with client(srv, local, enable=False) as a:
        a.ok("SELECT INBOX")
        a.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
        a.ok("UID EXPUNGE 2")
        a.ok("UID STORE 3 +FLAGS.SILENT (\\Flagged)")
    log = interimap(srv, cfg)
    # it resynchronised with QRESYNC and was told of the expunge
    # (with sequence match data: the pair (2 2) no longer matches)
    assert re.search(r"local: C: \d+ SELECT INBOX \(QRESYNC \(\d+ \d+ 1:3 \(1:3 1:3\)\)\)",
                     log), log
    assert "local: S: * VANISHED (EARLIER) 2\n" in log, log
    assert inbox(srv, remote) == [("m1", ""), ("m3", "\\Flagged")], log
    assert inbox(srv, local) == [("m1", ""), ("m3", "\\Flagged")], log
