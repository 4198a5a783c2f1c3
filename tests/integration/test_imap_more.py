"""WITHIN (RFC 5032: SEARCH YOUNGER / OLDER), SORT=DISPLAY (RFC 5957:
DISPLAYFROM, DISPLAYTO) and ESORT (RFC 5267 3: SORT RETURN (...) answered
with ESEARCH) through the real protocol: exact responses with a raw client
and with imaplib.
"""

import base64
import contextlib
import imaplib
import re
import time

import pytest

from test_imap import CAPS, MODULE_CONF, PASSWORD, append, client, new_user
from test_imap_sort import EXPECT, message, sort_box


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def imap_date(t):
    return time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(t))


@contextlib.contextmanager
def imaplib_inbox(srv, box):
    """imaplib logged in as a new user whose INBOX box(srv, user) filled,
    INBOX selected."""
    user = new_user(srv)
    box(srv, user).close()
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    try:
        m.login(user, PASSWORD)
        m.select("INBOX")
        yield m
    finally:
        m.logout()


def test_capabilities_listed(srv):
    with client(srv, new_user(srv)) as c:
        caps = c.ok("CAPABILITY")[0].decode().split()
        assert caps[-7:] == ["WITHIN", "SORT=DISPLAY", "ESORT", "UNAUTHENTICATE", "PREVIEW",
                            "ACL", "LIST-MYRIGHTS"]


# ------------------------------------------------------------------ WITHIN

def within_box(srv, user=None):
    """INBOX with messages whose internal dates are 2 days, 2 hours and
    0 seconds old (seq 1, 2, 3)."""
    c = client(srv, user or new_user(srv))
    now = time.time()
    append(c, "INBOX", message(["Subject: two days"], 200), date=imap_date(now - 2 * 86400))
    append(c, "INBOX", message(["Subject: two hours"], 200), date=imap_date(now - 7200))
    append(c, "INBOX", message(["Subject: now"], 200))
    c.ok("SELECT INBOX")
    return c


def test_within_search(srv):
    with within_box(srv) as c:
        assert c.cmd("SEARCH YOUNGER 3600") == ([b"* SEARCH 3"], b"OK Search completed")
        assert c.cmd("SEARCH OLDER 3600") == ([b"* SEARCH 1 2"], b"OK Search completed")
        assert c.cmd("SEARCH YOUNGER 86400") == ([b"* SEARCH 2 3"], b"OK Search completed")
        assert c.cmd("SEARCH OLDER 86400") == ([b"* SEARCH 1"], b"OK Search completed")
        assert c.cmd("SEARCH OLDER 864000") == ([b"* SEARCH"], b"OK Search completed")
        assert c.cmd("SEARCH NOT YOUNGER 3600 YOUNGER 86400") == (
            [b"* SEARCH 2"], b"OK Search completed")
        assert c.cmd("UID SEARCH OR YOUNGER 60 OLDER 86400") == (
            [b"* SEARCH 1 3"], b"OK Search completed")
        assert c.cmd("SEARCH RETURN (COUNT MIN) OLDER 3600", tag="w1") == (
            [b'* ESEARCH (TAG "w1") MIN 1 COUNT 2'], b"OK Search completed")


def test_within_sort_and_thread(srv):
    with within_box(srv) as c:
        assert c.cmd("SORT (REVERSE ARRIVAL) UTF-8 YOUNGER 86400") == (
            [b"* SORT 3 2"], b"OK Sort completed")
        assert c.cmd("SORT (REVERSE SUBJECT) UTF-8 OLDER 3600") == (
            [b"* SORT 2 1"], b"OK Sort completed")
        assert c.cmd("THREAD ORDEREDSUBJECT UTF-8 OLDER 3600") == (
            [b"* THREAD (1)(2)"], b"OK Thread completed")


@pytest.mark.parametrize("args", ["YOUNGER 0", "OLDER -5", "YOUNGER abc", "OLDER",
                                  "YOUNGER 4294967296", "YOUNGER 1.5"])
def test_within_bad_interval(srv, args):
    with within_box(srv) as c:
        lines, done = c.cmd("SEARCH " + args)
        assert lines == [] and done.startswith(b"BAD "), (args, lines, done)
        lines, done = c.cmd("SORT (DATE) UTF-8 " + args)
        assert lines == [] and done.startswith(b"BAD "), (args, lines, done)
        assert c.cmd("SEARCH YOUNGER 3600") == ([b"* SEARCH 3"], b"OK Search completed")


def test_within_imaplib(srv):
    with imaplib_inbox(srv, within_box) as m:
        assert m.search(None, "OLDER", "3600") == ("OK", [b"1 2"])
        assert m.uid("SEARCH", "YOUNGER", "7300") == ("OK", [b"2 3"])


# ------------------------------------------------------------ SORT=DISPLAY

# seq  From                         To                            display keys
# 1    "Zed" <aaa@x.example>        =?UTF-8?Q?=C3=89mile?= <b@..>  zed       émile
# 2    bbb@x.example                Adam <zzz@y.example>          bbb@x...  adam
# 3    -                            "" <ccc@y.example>            ""        ccc@y...
# 4    Mary <MARY@x.example>        bob@y.example (Bob)           mary      bob
DISPLAY_MESSAGES = [
    ['From: "Zed" <aaa@x.example>', "To: =?UTF-8?Q?=C3=89mile?= <b@y.example>"],
    ["From: bbb@x.example", "To: Adam <zzz@y.example>"],
    ['To: "" <ccc@y.example>'],
    ["From: Mary <MARY@x.example>", "To: bob@y.example (Bob)"],
]


def display_box(srv, user=None):
    c = client(srv, user or new_user(srv))
    for headers in DISPLAY_MESSAGES:
        append(c, "INBOX", message(headers + ["Subject: s"], 300))
    c.ok("SELECT INBOX")
    return c


DISPLAY_EXPECT = {
    "DISPLAYFROM": "3 2 4 1",         # "" bbb@x.example mary zed
    "REVERSE DISPLAYFROM": "1 4 2 3",
    "FROM": "3 1 2 4",                # "" aaa bbb mary: not the same
    "DISPLAYTO": "2 4 3 1",           # adam bob ccc@y.example émile
    "REVERSE DISPLAYTO": "1 3 4 2",
    "TO": "1 4 3 2",                  # b bob ccc zzz
    "SUBJECT DISPLAYTO": "2 4 3 1",
    "DISPLAYFROM DISPLAYTO": "3 2 4 1",
}


@pytest.mark.parametrize("crit", sorted(DISPLAY_EXPECT))
def test_sort_display(srv, crit):
    with display_box(srv) as c:
        assert c.cmd("SORT (%s) UTF-8 ALL" % crit) == (
            [("* SORT " + DISPLAY_EXPECT[crit]).encode()], b"OK Sort completed")
        uids = " ".join(DISPLAY_EXPECT[crit].split())  # no expunge: uid = seq
        assert c.cmd("UID SORT (%s) UTF-8 ALL" % crit) == (
            [("* SORT " + uids).encode()], b"OK Sort completed")


def test_sort_display_search_keys_and_errors(srv):
    with display_box(srv) as c:
        assert c.cmd("SORT (DISPLAYTO) UTF-8 FROM x.example") == (
            [b"* SORT 2 4 1"], b"OK Sort completed")
        assert c.cmd("SORT (DISPLAY) UTF-8 ALL") == ([], b"BAD Unknown sort criterion")
        assert c.cmd("SORT (REVERSE DISPLAYFROMX) UTF-8 ALL") == (
            [], b"BAD Unknown sort criterion")


def test_sort_display_imaplib(srv):
    with imaplib_inbox(srv, display_box) as m:
        assert m.sort("(DISPLAYFROM)", "UTF-8", "ALL") == ("OK", [b"3 2 4 1"])
        assert m.uid("SORT", "(REVERSE DISPLAYTO)", "UTF-8", "ALL") == ("OK", [b"1 3 4 2"])


# ------------------------------------------------------------------- ESORT

def esort(c, args, uid=False):
    tag = c.tag()
    lines, done = c.cmd(("UID SORT " if uid else "SORT ") + args, tag=tag)
    assert done == b"OK Sort completed", (args, lines, done)
    prefix = ('* ESEARCH (TAG "%s")' % tag).encode()
    assert len(lines) == 1 and lines[0].startswith(prefix), lines
    return lines[0][len(prefix):].decode()


def test_esort_return_options(srv):
    # orders from test_imap_sort.EXPECT; UIDs are seq + 1
    with sort_box(srv) as c:
        assert EXPECT["DATE"] == "5 6 1 3 2 4"
        assert esort(c, "RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL") == " MIN 5 MAX 4 COUNT 6"
        assert esort(c, "RETURN (MIN) (DATE) UTF-8 ALL", uid=True) == " UID MIN 6"
        assert esort(c, "RETURN (MAX) (REVERSE DATE) UTF-8 ALL") == " MAX 5"
        assert esort(c, "RETURN (ALL) (SIZE) UTF-8 ALL") == " ALL 2,6,4,1,5,3"
        # RETURN () is ALL; ranges only upwards (RFC 5267 3.2)
        assert esort(c, "RETURN () (REVERSE ARRIVAL) UTF-8 ALL") == " ALL 1,6,3,2,4:5"
        assert esort(c, "RETURN () (REVERSE ARRIVAL) UTF-8 ALL", uid=True) == (
            " UID ALL 2,7,4,3,5:6")
        assert esort(c, "RETURN (COUNT) (SUBJECT) UTF-8 SUBJECT apple") == " COUNT 2"
        assert esort(c, "RETURN (ALL MIN MAX COUNT) (DATE) UTF-8 SUBJECT apple") == (
            " MIN 6 MAX 3 ALL 6,3 COUNT 2")
        # nothing matches: only COUNT is given
        assert esort(c, "RETURN (MIN MAX ALL COUNT) (DATE) UTF-8 SUBJECT nothing") == (
            " COUNT 0")
        assert esort(c, "RETURN (MIN) (DATE) UTF-8 SUBJECT nothing") == ""
        # without RETURN the answer stays * SORT
        assert c.cmd("SORT (DATE) UTF-8 ALL") == (
            [("* SORT " + EXPECT["DATE"]).encode()], b"OK Sort completed")


def test_esort_modseq(srv):
    with sort_box(srv) as c:
        c.ok("STORE 4 +FLAGS.SILENT (\\Flagged)")  # the highest modseq now
        mods = {}
        lines = c.ok("FETCH 1:* (MODSEQ)")
        # the first use of MODSEQ enables CONDSTORE (RFC 7162 3.1)
        assert lines[0].startswith(b"* OK [HIGHESTMODSEQ ")
        for ln in lines[1:]:
            m = re.match(rb"\* (\d+) FETCH \(MODSEQ \((\d+)\)\)", ln)
            assert m, ln
            mods[int(m.group(1))] = int(m.group(2))
        assert max(mods, key=mods.get) == 4
        # MIN alone: the MODSEQ of that message (RFC 4731 3.2)
        assert esort(c, "RETURN (MIN) (DATE) UTF-8 MODSEQ 1") == (
            " MIN 5 MODSEQ %d" % mods[5])
        assert esort(c, "RETURN (MIN MAX) (DATE) UTF-8 MODSEQ 1") == (
            " MIN 5 MAX 4 MODSEQ %d" % mods[4])
        assert esort(c, "RETURN (COUNT) (DATE) UTF-8 MODSEQ 1") == (
            " COUNT 6 MODSEQ %d" % mods[4])


def test_esort_errors(srv):
    with sort_box(srv) as c:
        assert c.cmd("SORT RETURN (SAVE) (DATE) UTF-8 ALL") == (
            [], b"BAD SAVE is not supported in SORT")
        assert c.cmd("SORT RETURN (FOO) (DATE) UTF-8 ALL") == (
            [], b"BAD Unknown RETURN option")
        assert c.cmd("SORT RETURN MIN (DATE) UTF-8 ALL") == ([], b"BAD RETURN needs a list")
        assert c.cmd("SORT RETURN (MIN (DATE)) UTF-8 ALL") == (
            [], b"BAD Unknown RETURN option")
        assert c.cmd("SORT RETURN (MIN (DATE) UTF-8 ALL") == (
            [], b"BAD Unbalanced parenthesis")
        assert c.cmd("SORT RETURN (MIN)") == ([], b"BAD SORT needs a list of sort criteria")
        assert c.cmd("SORT RETURN (MIN) (DATE) KOI8-R ALL") == (
            [], b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
        assert esort(c, "RETURN (COUNT) (DATE) UTF-8 ALL") == " COUNT 6"


def test_esort_imaplib(srv):
    with imaplib_inbox(srv, sort_box) as m:
        typ, _ = m.uid("SORT", "RETURN", "(MIN MAX COUNT)", "(DATE)", "UTF-8", "ALL")
        assert typ == "OK"
        typ, data = m.response("ESEARCH")
        assert len(data) == 1 and re.fullmatch(
            rb'\(TAG "[A-Z]+\d+"\) UID MIN 6 MAX 5 COUNT 6', data[0]), data


# ---------------------------------------------------------- UNAUTHENTICATE

PRELOGIN = " STARTTLS AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256"  # this server's


def two_users(srv):
    """A with one message, B with two (distinct subjects)."""
    a, b = new_user(srv), new_user(srv)
    with client(srv, a) as c:
        append(c, "INBOX", message(["Subject: for a"], 200))
    with client(srv, b) as c:
        append(c, "INBOX", message(["Subject: for b 1"], 200))
        append(c, "INBOX", message(["Subject: for b 2"], 200))
    return a, b


def test_unauthenticate_then_another_user(srv):
    a, b = two_users(srv)
    mark = srv.log_mark()
    with client(srv, a) as c:
        assert c.cmd("ENABLE IMAP4rev2") == ([b"* ENABLED IMAP4rev2"], b"OK Enabled")
        c.ok("SELECT INBOX")
        c.ok("SEARCH RETURN (SAVE) ALL")
        assert c.cmd("SEARCH ALL", tag="s1") == (
            [b'* ESEARCH (TAG "s1") ALL 1'], b"OK Search completed")
        # no EXPUNGE, nothing untagged: the mailbox just stops being selected
        assert c.cmd("UNAUTHENTICATE") == ([], b"OK Unauthenticated")
        assert srv.wait_log(r"action=unauthenticate user=%s" % re.escape(a), since=mark)
        assert c.cmd("SELECT INBOX") == ([], b"BAD Log in first")
        assert c.cmd("CAPABILITY") == (
            [("* CAPABILITY %s%s" % (CAPS, PRELOGIN)).encode()],
            b"OK Capability completed")
        assert c.login(b) == ("OK [CAPABILITY %s] Logged in" % CAPS).encode()
        lines = c.ok("SELECT INBOX")
        assert b"* 2 EXISTS" in lines
        # ENABLE and the saved result are gone: rev1 answers, $ is empty
        assert c.cmd("SEARCH ALL") == ([b"* SEARCH 1 2"], b"OK Search completed")
        assert c.cmd("SEARCH $") == ([b"* SEARCH"], b"OK Search completed")
        assert c.cmd("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])") == (
            [b"* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {20}\r\nSubject: for b 2\r\n\r\n)"],
            b"OK Fetch completed")


def test_unauthenticate_releases_notifications(srv):
    a, b = two_users(srv)
    with client(srv, a) as c:
        c.ok("SELECT INBOX")
        assert c.cmd("UNAUTHENTICATE") == ([], b"OK Unauthenticated")
        c.login(b)
        c.ok("SELECT INBOX")
        tag = c.tag()
        c.send("%s IDLE\r\n" % tag)
        assert c.line() == b"+ idling"
        # mail for A must not reach this session; mail for B must
        with client(srv, a) as o:
            append(o, "INBOX", message(["Subject: a again"], 200))
        with client(srv, b) as o:
            append(o, "INBOX", message(["Subject: b again"], 200))
        assert c.line() == b"* 3 EXISTS"
        assert c.line() == b"* 3 RECENT"  # a rev1 session again
        c.send("DONE\r\n")
        assert c.until(tag) == ([], b"OK Idle completed")


def test_unauthenticate_pipelined_login_and_errors(srv):
    a, b = two_users(srv)
    with client(srv) as c:
        assert c.cmd("UNAUTHENTICATE") == ([], b"BAD Log in first")
        c.login(a)
        assert c.cmd("UNAUTHENTICATE now") == ([], b"BAD No arguments expected")
        # RFC 8437 3: UNAUTHENTICATE and the next login in one round trip
        c.send("u1 UNAUTHENTICATE\r\nu2 LOGIN %s %s\r\nu3 STATUS INBOX (MESSAGES)\r\n"
               % (b, PASSWORD))
        assert c.until("u1") == ([], b"OK Unauthenticated")
        assert c.until("u2") == ([], ("OK [CAPABILITY %s] Logged in" % CAPS).encode())
        assert c.until("u3") == ([b'* STATUS "INBOX" (MESSAGES 2)'], b"OK Status completed")
        # and back to A, through AUTHENTICATE PLAIN with an initial response
        assert c.cmd("UNAUTHENTICATE") == ([], b"OK Unauthenticated")
        ir = base64.b64encode(("\0%s\0%s" % (a, PASSWORD)).encode()).decode()
        assert c.cmd("AUTHENTICATE PLAIN " + ir) == (
            [], ("OK [CAPABILITY %s] Logged in" % CAPS).encode())
        assert c.cmd("STATUS INBOX (MESSAGES)") == (
            [b'* STATUS "INBOX" (MESSAGES 1)'], b"OK Status completed")


def test_unauthenticate_imaplib(srv):
    a, b = two_users(srv)
    imaplib.Commands.setdefault("UNAUTHENTICATE", ("AUTH", "SELECTED"))
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    try:
        m.login(a, PASSWORD)
        assert m.select("INBOX") == ("OK", [b"1"])
        assert m._simple_command("UNAUTHENTICATE") == ("OK", [b"Unauthenticated"])
        m.state = "NONAUTH"
        m.login(b, PASSWORD)
        assert m.select("INBOX") == ("OK", [b"2"])
        assert m.search(None, "ALL") == ("OK", [b"1 2"])
    finally:
        m.logout()


def test_unauthenticate_not_under_compress(srv):
    # RFC 8437 4.1 would end the DEFLATE layer at the client's CRLF; it is
    # not offered under COMPRESS, so the BAD of RFC 8437 3 is the answer
    import test_imap_compress as tc
    user = new_user(srv)
    c = tc.Client(srv.imap_port)
    try:
        tc.login(c, user)
        c.start_deflate()
        caps = c.cmd(b"c", b"CAPABILITY")
        assert caps[0] == ("* CAPABILITY %s\r\n" % CAPS.replace(" UNAUTHENTICATE", "")).encode()
        assert c.cmd(b"u", b"UNAUTHENTICATE") == [
            b"u BAD UNAUTHENTICATE is not available after COMPRESS\r\n"]
        # still logged in, still compressed
        assert c.cmd(b"n", b"STATUS INBOX (MESSAGES)") == [
            b'* STATUS "INBOX" (MESSAGES 0)\r\n', b"n OK Status completed\r\n"]
    finally:
        c.close()
