"""SORT and UID SORT (RFC 5256) through the real protocol, and THREAD
(ORDEREDSUBJECT, REFERENCES): exact responses for a set of messages with
tricky subjects (Re:/Fwd:/[list] prefixes, "(fwd)" trailers, "[fwd: ...]"
wrappers, RFC 2047 encoded words), sent dates (time zones, a missing and an
unparsable Date: falling back to the internal date) and addresses (display
names, quoting, a missing field).  Expected orders are worked out by hand
from the RFC, in the comments beside each message.
"""

import imaplib

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
