"""SORT and UID SORT (RFC 5256) through the real protocol, and THREAD
(ORDEREDSUBJECT, REFERENCES): exact responses for a set of messages with
tricky subjects (Re:/Fwd:/[list] prefixes, "(fwd)" trailers, "[fwd: ...]"
wrappers, RFC 2047 encoded words), sent dates (time zones, a missing and an
unparsable Date: falling back to the internal date) and addresses (display
names, quoting, a missing field).  Expected orders are worked out by hand
from the RFC, in the comments beside each message.
"""

import imaplib
import re

import pytest

from test_imap import MODULE_CONF, PASSWORD, append, client, new_user

@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def message(headers, size):
    """A message of exactly size octets: the header lines, a blank line and
    a body padded with 'x'."""
    head = "".join("%s\r\n" % h for h in headers) + "\r\n"
    pad = size - len(head.encode()) - 2
    assert pad > 0
    return head.encode() + b"x" * pad + b"\r\n"


# seq: (headers, size, internal date).  UIDs are seq + 1 (a first message
# is expunged), so UID SORT answers differ from SORT.
#   base subject (folded)  sent date (UTC)            from    to     cc
# 1 zebra                  2001-01-01 10:00           carol   bob    -
# 2 äpfel (encoded word)   2001-01-01 11:00 (-0200)   alice   zoe    dave
# 3 apple ([fwd: ...])     none: internal 01-Jan 10:30 bob    -      alice
# 4 zebra ((fwd) trailer)  2001-01-01 11:00 (+0100)   dave    adam   -
# 5 "" (no Subject)        garbage: internal 31-Dec-2000 23:00  -  carl  bob
# 6 apple (Re:)            2001-01-01 00:30 (-0100)   alice   zoe    -
MESSAGES = [
    (["Subject: Re: Fwd: [list] Zebra", "Date: Mon, 1 Jan 2001 10:00:00 +0000",
      "From: Carol <carol@x.example>", "To: bob@y.example"],
     1300, "01-Feb-2001 00:00:00 +0000"),
    (["Subject: =?UTF-8?Q?=C3=84pfel?=", "Date: 1 Jan 2001 09:00:00 -0200",
      "From: =?UTF-8?Q?Al?= <alice@x.example>", "To: Zoe <zoe@y.example>",
      "Cc: dave@z.example"],
     1100, "01-Jan-2001 05:00:00 +0000"),
    (["Subject: [fwd: Apple]", "From: bob@x.example", "Cc: Alice <alice@z.example>"],
     1600, "01-Jan-2001 10:30:00 +0000"),
    (["Subject: zebra (fwd)", "Date: 1 Jan 2001 12:00:00 +0100",
      "From: \"Dave D\" <DAVE@x.example>", "To: Adam <adam@y.example>"],
     1200, "01-Jan-2001 05:00:00 +0000"),
    (["Date: garbage", "To: carl@y.example", "Cc: bob@z.example"],
     1500, "31-Dec-2000 23:00:00 +0000"),
    (["Subject: Re: apple", "Date: Sun, 31 Dec 2000 23:30:00 -0100",
      "From: alice@x.example", "To: zoe@y.example"],
     1100, "15-Jan-2001 00:00:00 +0100"),
]


def sort_box(srv, user=None):
    """A logged-in client with MESSAGES in INBOX, selected."""
    c = client(srv, user or new_user(srv))
    append(c, "INBOX", message(["Subject: gone"], 100))
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    for headers, size, date in MESSAGES:
        append(c, "INBOX", message(headers, size), date=date)
    c.ok("NOOP")
    return c


def sort(c, args, uid=False):
    lines, done = c.cmd(("UID SORT " if uid else "SORT ") + args)
    assert done == b"OK Sort completed", (args, lines, done)
    sorts = [ln for ln in lines if ln.startswith(b"* SORT")]
    assert len(sorts) == 1, lines
    return sorts[0].decode()


EXPECT = {
    # criterion: order by sequence number
    "ARRIVAL": "5 2 4 3 6 1",         # 2 and 4 arrived at the same time
    "REVERSE ARRIVAL": "1 6 3 2 4 5",  # ties stay in mailbox order
    "DATE": "5 6 1 3 2 4",            # 3 and 5 by internal date; 2 = 4
    "REVERSE DATE": "2 4 3 1 6 5",
    "SIZE": "2 6 4 1 5 3",            # 2 and 6 are both 1100 octets
    "REVERSE SIZE": "3 5 1 4 2 6",
    "SUBJECT": "5 3 6 1 4 2",         # "" < apple < zebra < äpfel (octets)
    "REVERSE SUBJECT": "2 1 4 3 6 5",
    "SUBJECT DATE": "5 6 3 1 4 2",
    "SUBJECT REVERSE DATE": "5 3 6 4 1 2",
    "REVERSE SUBJECT REVERSE DATE": "2 4 1 3 6 5",
    "FROM": "5 2 6 3 1 4",            # "" alice alice bob carol dave
    "REVERSE FROM": "4 1 3 2 6 5",
    "FROM SUBJECT": "5 6 2 3 1 4",    # alice: apple (6) before äpfel (2)
    "TO": "3 4 1 5 2 6",              # "" adam bob carl zoe zoe
    "REVERSE TO": "2 6 5 1 4 3",
    "CC": "1 4 6 3 5 2",              # "" "" "" alice bob dave
    "REVERSE CC": "2 5 3 1 4 6",
    "CC ARRIVAL": "4 6 1 3 5 2",
    "SIZE REVERSE ARRIVAL": "6 2 4 1 5 3",
}


def test_sort_capability(srv):
    with client(srv, new_user(srv)) as c:
        lines = c.ok("CAPABILITY")
        caps = lines[0].decode().split()
        assert "SORT" in caps


@pytest.mark.parametrize("crit", sorted(EXPECT))
def test_sort_criteria(srv, crit):
    with sort_box(srv) as c:
        assert sort(c, "(%s) UTF-8 ALL" % crit) == "* SORT " + EXPECT[crit]
        uids = " ".join(str(int(n) + 1) for n in EXPECT[crit].split())
        assert sort(c, "(%s) US-ASCII ALL" % crit, uid=True) == "* SORT " + uids


def test_sort_search_keys(srv):
    with sort_box(srv) as c:
        assert sort(c, "(DATE) UTF-8 SUBJECT apple") == "* SORT 6 3"
        assert sort(c, "(REVERSE DATE) UTF-8 SUBJECT apple") == "* SORT 3 6"
        assert sort(c, "(SUBJECT) UTF-8 OR FROM alice TO adam") == "* SORT 6 4 2"
        assert sort(c, "(SUBJECT) UTF-8 TEXT \"not in mailbox\"") == "* SORT"
        assert sort(c, "(ARRIVAL) UTF-8 2:4") == "* SORT 2 4 3"
        assert sort(c, "(ARRIVAL) UTF-8 UID 2:4") == "* SORT 2 3 1"  # seqs 1-3
        assert sort(c, "(SIZE) UTF-8 UID 2:4", uid=True) == "* SORT 3 2 4"
        assert sort(c, "(SIZE) UTF-8 SENTBEFORE 1-Jan-2001") == "* SORT 6"
        # the search string is UTF-8 and matched case-insensitively
        assert sort(c, "(SIZE) UTF-8 SUBJECT \"\u00c4PF\"") == "* SORT 2"
        # the header cache filled by the first SORT gives the same answers
        for crit in ("SUBJECT", "DATE", "FROM", "TO", "CC"):
            assert sort(c, "(%s) UTF-8 ALL" % crit) == "* SORT " + EXPECT[crit]


def test_sort_empty_mailbox(srv):
    with client(srv, new_user(srv)) as c:
        c.ok("SELECT INBOX")
        assert sort(c, "(SUBJECT) UTF-8 ALL") == "* SORT"


BAD_SORTS = [
    "(FOO) UTF-8 ALL", "SUBJECT UTF-8 ALL", "() UTF-8 ALL", "(REVERSE) UTF-8 ALL",
    "(REVERSE REVERSE DATE) UTF-8 ALL", "(SUBJECT UTF-8 ALL", "(SUBJECT)", "(SUBJECT) UTF-8",
    "(SUBJECT) UTF-8 BOGUS", "(SUBJECT) UTF-8 (", "(SUBJECT) (UTF-8) ALL",
    "(" + "DATE " * 40 + ") UTF-8 ALL", "(DATE) UTF-8 SINCE 1-Foo-2001",
]


def test_sort_errors(srv):
    user = new_user(srv)
    with sort_box(srv, user) as c:
        assert c.cmd("SORT (SUBJECT) KOI8-R ALL") == (
            [], b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
        assert c.cmd("UID SORT (SUBJECT) ISO-8859-1 ALL") == (
            [], b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
    for i in range(0, len(BAD_SORTS), 5):  # a session ends after 10 errors
        with client(srv, user) as c:
            c.ok("SELECT INBOX")
            for args in BAD_SORTS[i:i + 5]:
                lines, done = c.cmd("SORT " + args)
                assert lines == [] and done.startswith(b"BAD "), (args, lines, done)
            # the session goes on
            assert sort(c, "(SIZE) \"UTF-8\" ALL") == "* SORT " + EXPECT["SIZE"]
    with client(srv, new_user(srv)) as c:
        assert c.cmd("SORT (SUBJECT) UTF-8 ALL") == ([], b"BAD Select a mailbox first")


def test_sort_imaplib(srv):
    user = new_user(srv)
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    try:
        m.login(user, PASSWORD)
        m.select("INBOX")
        m.append("INBOX", None, None, message(MESSAGES[0][0], 1300))
        m.append("INBOX", None, None, message(MESSAGES[2][0], 1600))
        m.append("INBOX", None, None, message(MESSAGES[5][0], 1100))
        typ, data = m.sort("(SUBJECT REVERSE SIZE)", "UTF-8", "ALL")
        assert typ == "OK" and data == [b"2 3 1"]
        typ, data = m.uid("SORT", "(REVERSE SUBJECT)", "UTF-8", "ALL")
        assert typ == "OK" and data == [b"1 2 3"]
    finally:
        m.logout()


# ------------------------------------------------------------------ THREAD

# A conversation for THREAD (seq: what it is).  Dates are 2001, UTC.
#  1 <a>  "Meeting"                  1 Jan 10:00
#  2 <b>  refs <a>       "Re: Meeting"  11:00
#  3 <c>  refs <a> <b>   "Re: Meeting"  12:00
#  4 <d>  In-Reply-To <a> (and junk)    10:30
#  5 <e>  refs <missing> "Lunch?"    2 Jan 09:00   \ siblings under a dummy
#  6 <f>  refs <missing> "Re: Lunch?" 2 Jan 08:00  / that stays: ((6)(5))
#  7 <g>  "Re: Budget"               3 Jan 00:00   subject-only thread: the
#  8 <h>  "Budget"                   3 Jan 01:00   non-reply 8 is the parent
#  9 <i>  refs <a> <gone> "Re: Meeting" 1 Jan 13:00   <gone> is pruned: 9
#         becomes a child of 1
# 10 no Message-ID, no Date: "Other", internal date 5 Jan
# 11 <a> again (a duplicate gets a unique ID) "Meeting" 4 Jan: same subject
#         as 1, neither a reply: both go under a new dummy
# 12 <l1> refs <l2> "Loop"           6 Jan 10:00   \ the loop is not closed:
# 13 <l2> refs <l1> "Re: Loop"       6 Jan 09:00   / 13 is the parent
THREAD_MESSAGES = [
    ["Message-ID: <a@x.example>", "Subject: Meeting", "Date: 1 Jan 2001 10:00:00 +0000"],
    ["Message-ID: <b@x.example>", "References: <a@x.example>", "Subject: Re: Meeting",
     "Date: 1 Jan 2001 11:00:00 +0000"],
    ["Message-ID: <c@x.example>", "References: <a@x.example>\r\n <b@x.example>",
     "Subject: Re: Meeting", "Date: 1 Jan 2001 12:00:00 +0000"],
    ["Message-ID: <d@x.example>", "In-Reply-To: <\"a\"@x.example> (Alice's message)",
     "Subject: Re: Meeting", "Date: 1 Jan 2001 11:30:00 +0100"],
    ["Message-ID: <e@x.example>", "References: <missing@x.example>", "Subject: Lunch?",
     "Date: 2 Jan 2001 09:00:00 +0000"],
    ["Message-ID: <f@x.example>", "References: <missing@x.example>", "Subject: Re: Lunch?",
     "Date: 2 Jan 2001 08:00:00 +0000"],
    ["Message-ID: <g@x.example>", "Subject: Re: Budget", "Date: 3 Jan 2001 00:00:00 +0000"],
    ["Message-ID: <h@x.example>", "Subject: Budget", "Date: 3 Jan 2001 01:00:00 +0000"],
    ["Message-ID: <i@x.example>", "References: <a@x.example> <gone@x.example>",
     "Subject: Re: Meeting", "Date: 1 Jan 2001 13:00:00 +0000"],
    ["Subject: Other"],
    ["Message-ID: <a@x.example>", "Subject: Meeting", "Date: 4 Jan 2001 00:00:00 +0000"],
    ["Message-ID: <l1@x.example>", "References: <l2@x.example>", "Subject: Loop",
     "Date: 6 Jan 2001 10:00:00 +0000"],
    ["Message-ID: <l2@x.example>", "References: <l1@x.example>", "Subject: Re: Loop",
     "Date: 6 Jan 2001 09:00:00 +0000"],
]

REFERENCES = "* THREAD ((1 (4)(2 3)(9))(11))((6)(5))(8 7)(10)(13 12)"
ORDEREDSUBJECT = "* THREAD (1 (4)(2)(3)(9)(11))(6 5)(7 8)(10)(13 12)"


def thread_box(srv, user=None):
    c = client(srv, user or new_user(srv))
    append(c, "INBOX", message(["Subject: gone"], 100))
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    for headers in THREAD_MESSAGES:
        append(c, "INBOX", message(headers, 400), date="05-Jan-2001 00:00:00 +0000")
    c.ok("NOOP")
    return c


def thread(c, args, uid=False):
    lines, done = c.cmd(("UID THREAD " if uid else "THREAD ") + args)
    assert done == b"OK Thread completed", (args, lines, done)
    assert len(lines) == 1 and lines[0].startswith(b"* THREAD"), lines
    return lines[0].decode()


def as_uids(resp):
    return re.sub(r"\d+", lambda m: str(int(m.group(0)) + 1), resp)


def test_thread_capability(srv):
    with client(srv, new_user(srv)) as c:
        caps = c.ok("CAPABILITY")[0].decode().split()
        assert "THREAD=ORDEREDSUBJECT" in caps and "THREAD=REFERENCES" in caps


def test_thread_references(srv):
    with thread_box(srv) as c:
        assert thread(c, "REFERENCES UTF-8 ALL") == REFERENCES
        assert thread(c, "REFERENCES US-ASCII ALL", uid=True) == as_uids(REFERENCES)
        # again, from the header cache
        assert thread(c, "references utf-8 ALL") == REFERENCES
        assert thread(c, "REFERENCES UTF-8 SUBJECT meeting") == "* THREAD ((1 (4)(2 3)(9))(11))"
        # without message 1, the duplicate 11 is the first with <a@x.example>
        assert thread(c, "REFERENCES UTF-8 NOT 1") == \
            "* THREAD ((6)(5))(8 7)(11 (4)(2 3)(9))(10)(13 12)"
        assert thread(c, "REFERENCES UTF-8 5:8") == "* THREAD ((6)(5))(8 7)"
        # only one of the lunch siblings: the dummy has one child and goes
        assert thread(c, "REFERENCES UTF-8 OR 5 7:8") == "* THREAD (5)(8 7)"
        assert thread(c, "REFERENCES UTF-8 5") == "* THREAD (5)"
        assert thread(c, "REFERENCES UTF-8 TEXT \"not in mailbox\"") == "* THREAD"


def test_thread_orderedsubject(srv):
    with thread_box(srv) as c:
        assert thread(c, "ORDEREDSUBJECT UTF-8 ALL") == ORDEREDSUBJECT
        assert thread(c, "ORDEREDSUBJECT UTF-8 ALL", uid=True) == as_uids(ORDEREDSUBJECT)
        assert thread(c, "ORDEREDSUBJECT UTF-8 NOT SUBJECT meeting") == \
            "* THREAD (6 5)(7 8)(10)(13 12)"
        assert thread(c, "ORDEREDSUBJECT UTF-8 1:4") == "* THREAD (1 (4)(2)(3))"
        assert thread(c, "ORDEREDSUBJECT UTF-8 1:2") == "* THREAD (1 2)"


def test_thread_empty_mailbox(srv):
    with client(srv, new_user(srv)) as c:
        c.ok("SELECT INBOX")
        assert thread(c, "REFERENCES UTF-8 ALL") == "* THREAD"
        assert thread(c, "ORDEREDSUBJECT UTF-8 ALL") == "* THREAD"


def test_thread_deep_chain(srv):
    """A long reply chain: every pass over the tree is iterative."""
    n = 300
    with client(srv, new_user(srv)) as c:
        c.ok("SELECT INBOX")
        for i in range(n):
            hdrs = ["Message-ID: <m%d@x.example>" % i, "Subject: Re: chain",
                    "Date: 1 Jan 2001 00:00:00 +0000"]
            if i:
                hdrs.append("In-Reply-To: <m%d@x.example>" % (i - 1))
            append(c, "INBOX", message(hdrs, 200))
        c.ok("NOOP")
        assert thread(c, "REFERENCES UTF-8 ALL") == \
            "* THREAD (" + " ".join(str(i) for i in range(1, n + 1)) + ")"


def test_thread_errors(srv):
    user = new_user(srv)
    with thread_box(srv, user) as c:
        assert c.cmd("THREAD REFERENCES KOI8-R ALL") == (
            [], b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
        for args in ("", "FOO UTF-8 ALL", "REFERENCES", "REFERENCES UTF-8",
                     "(REFERENCES) UTF-8 ALL"):
            lines, done = c.cmd("THREAD " + args)
            assert lines == [] and done.startswith(b"BAD "), (args, lines, done)
        assert thread(c, "REFERENCES UTF-8 ALL") == REFERENCES
    with client(srv, user) as c:
        assert c.cmd("THREAD REFERENCES UTF-8 ALL") == ([], b"BAD Select a mailbox first")


def test_thread_imaplib(srv):
    user = new_user(srv)
    thread_box(srv, user).close()
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    try:
        m.login(user, PASSWORD)
        m.select("INBOX")
        typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
        assert typ == "OK" and data == [REFERENCES[len("* THREAD "):].encode()]
        typ, data = m.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")
        assert typ == "OK" and data == [as_uids(ORDEREDSUBJECT)[len("* THREAD "):].encode()]
    finally:
        m.logout()
