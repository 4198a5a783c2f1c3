"""JMAP Email/query, Email/queryChanges and SearchSnippet/get (RFC 8621
4.4, 4.5, 5; docs/jmap.md "Email/query") over HTTPS against a real
server.  A mailbox is filled over IMAP APPEND with known internal dates,
sizes, senders, keywords and threads (replies with In-Reply-To); every
filter condition and sort property alone and combined, with exact id
lists, compared with what IMAP SEARCH and SORT answer for the same
criteria; collapseThreads; position, anchor and limit at their edges;
the errors; changes made over IMAP seen by the next query."""
import imaplib
import json
import os
import uuid

import pytest

from test_jmap_mail import (account, call, error, imap, new_user, ok)

# name, mailbox, internal date, IMAP flags, header lines, body
MSGS = [
    ("m1", "INBOX", "02-Jan-2024 00:00:00 +0000", r"(\Seen)",
     ["From: Alice Zed <alice@a.example>", "To: Bob <bob@b.example>",
      "Subject: Lunch plans", "Date: Tue, 02 Jan 2024 09:00:00 +0000",
      "Message-ID: <m1@q.test>"],
     "Shall we meet for pizza?"),
    ("m2", "INBOX", "03-Jan-2024 00:00:00 +0000", r"(\Seen \Answered)",
     ["From: bob <bob@b.example>", "To: alice@a.example", "Subject: Re: Lunch plans",
      "Date: Mon, 01 Jan 2024 08:00:00 +0000", "Message-ID: <m2@q.test>",
      "In-Reply-To: <m1@q.test>", "References: <m1@q.test>"],
     "Pizza sounds great."),
    ("m3", "INBOX", "04-Jan-2024 00:00:00 +0000", r"(\Flagged)",
     ["From: Carol <carol@c.example>", "To: team@c.example", "Cc: dave@d.example",
      "Subject: Budget 2024", "Date: Thu, 04 Jan 2024 12:00:00 +0000",
      "Message-ID: <m3@q.test>"],
     "The quarterly numbers are in.\r\n" + ("padding line\r\n" * 200)),
    ("m4", "INBOX", "05-Jan-2024 00:00:00 +0000", "()",
     ["From: =?utf-8?q?=C3=89lodie?= <elodie@e.example>", "To: bob@b.example",
      "Bcc: secret@s.example", "Subject: =?utf-8?q?R=C3=A9union?=",
      "Date: Fri, 05 Jan 2024 07:00:00 +0100", "X-Priority: 1",
      "Message-ID: <m4@q.test>", "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
     "R\u00e9union demain \u00e0 midi."),
    ("m5", "INBOX", "06-Jan-2024 00:00:00 +0000", "(project)",
     ["From: Alice Zed <alice@a.example>", "To: carol@c.example",
      "Subject: Re: Budget 2024", "Date: Sat, 06 Jan 2024 10:00:00 +0000",
      "Message-ID: <m5@q.test>", "In-Reply-To: <m3@q.test>"],
     "The numbers look fine."),
    ("m6", "Work", "07-Jan-2024 00:00:00 +0000", r"(\Draft)",
     ["From: zed@z.example", "To: alice@a.example", "Subject: Tips & <tricks>",
      "Date: Sun, 07 Jan 2024 10:00:00 +0000", "Message-ID: <m6@q.test>"],
     "Use the pizza oven & <keep> it hot."),
]
NAMES = [m[0] for m in MSGS]


class Box:
    """The filled account: user, account id, mailbox ids, Email ids by
    name, INBOX uids by name, sizes by name."""


def raw_message(m, token):
    head = "\r\n".join(m[4] + ["X-Token: %s" % token])
    return (head + "\r\n\r\n" + m[5] + "\r\n").encode()


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"workers": 2, "allow_plaintext_loopback": "yes"})
    s.start()
    return s


@pytest.fixture(scope="module")
def box(srv):
    return fill(srv)


def fill(srv):
    b = Box()
    b.user = new_user(srv)
    b.aid = account(srv, b.user)
    tag = uuid.uuid4().hex[:12]
    b.ids, b.uids, b.size, b.raw = {}, {}, {}, {}
    m = imap(srv, b.user)
    m.create("Work")
    for msg in MSGS:
        token = "tok-%s-%s" % (msg[0], tag)
        data = raw_message(msg, token)
        b.raw[msg[0]] = data
        b.size[msg[0]] = len(data)
        typ, _ = m.append(msg[1], msg[3], '"%s"' % msg[2], data)
        assert typ == "OK"
        # the Email id is "E" and the message file's name (docs/jmap.md)
        files = srv.message_files_with(token)
        assert len(files) == 1
        b.ids[msg[0]] = "E" + os.path.basename(files[0])
    m.select("INBOX")
    typ, data = m.uid("SEARCH", None, "ALL")
    for uid in data[0].split():
        typ, f = m.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (X-Token)])")
        name = f[0][1].decode().split("tok-")[1].split("-")[0]
        b.uids[name] = int(uid)
    m.logout()
    r = ok(srv, b.user, "Mailbox/get", {"accountId": b.aid, "ids": None})
    b.mbox = {x["name"]: x["id"] for x in r["list"]}
    b.by_id = {v: k for k, v in b.ids.items()}
    return b


def query(srv, b, **args):
    args.setdefault("sort", [{"property": "receivedAt"}])
    return ok(srv, b.user, "Email/query", dict(args, accountId=b.aid))


def names(srv, b, **args):
    return [b.by_id[i] for i in query(srv, b, **args)["ids"]]


def imap_search(srv, b, *criteria):
    """The names IMAP SEARCH gives in INBOX, in uid (= arrival) order."""
    m = imap(srv, b.user)
    m.select("INBOX", readonly=True)
    typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", *criteria)
    m.logout()
    assert typ == "OK"
    by_uid = {v: k for k, v in b.uids.items()}
    return [by_uid[int(u)] for u in data[0].split()]


def imap_sort(srv, b, crit):
    m = imap(srv, b.user)
    m.select("INBOX", readonly=True)
    typ, data = m.uid("SORT", crit, "UTF-8", "ALL")
    m.logout()
    assert typ == "OK"
    by_uid = {v: k for k, v in b.uids.items()}
    return [by_uid[int(u)] for u in data[0].split()]


def test_query_all_by_received(srv, box):
    r = query(srv, box, calculateTotal=True)
    assert [box.by_id[i] for i in r["ids"]] == NAMES
    assert r["total"] == 6 and r["position"] == 0
    assert r["canCalculateChanges"] is True
    assert r["accountId"] == box.aid
    assert r["limit"] == 1000  # no limit asked: the server's cap
    # the queryState is the account's state (Email/changes says the same)
    st = ok(srv, box.user, "Email/changes", {"accountId": box.aid, "sinceState": "0"})
    assert r["queryState"] == st["newState"]
    assert names(srv, box, sort=[{"property": "receivedAt", "isAscending": False}]) == \
        NAMES[::-1]
    # no sort: receivedAt ascending (docs/jmap.md)
    r = ok(srv, box.user, "Email/query", {"accountId": box.aid})
    assert [box.by_id[i] for i in r["ids"]] == NAMES
    # IMAP SORT ARRIVAL agrees on INBOX
    assert imap_sort(srv, box, "(ARRIVAL)") == NAMES[:5]


# filter, expected names, IMAP SEARCH criteria giving the same in INBOX
# (None: no IMAP equivalent, or a JMAP rule that differs: see the note)
FILTERS = [
    ({"before": "2024-01-04T00:00:00Z"}, ["m1", "m2"], ["BEFORE", "4-Jan-2024"]),
    ({"after": "2024-01-04T00:00:00Z"}, ["m3", "m4", "m5", "m6"], ["SINCE", "4-Jan-2024"]),
    ({"before": "2024-01-03T00:00:00.5Z"}, ["m1", "m2"], None),
    ({"after": "2024-01-03T00:00:00.5Z"}, ["m3", "m4", "m5", "m6"], None),
    ({"hasKeyword": "$seen"}, ["m1", "m2"], ["SEEN"]),
    ({"notKeyword": "$seen"}, ["m3", "m4", "m5", "m6"], ["UNSEEN"]),
    ({"hasKeyword": "$flagged"}, ["m3"], ["FLAGGED"]),
    ({"hasKeyword": "$answered"}, ["m2"], ["ANSWERED"]),
    ({"hasKeyword": "$draft"}, ["m6"], None),
    ({"hasKeyword": "project"}, ["m5"], ["KEYWORD", "project"]),
    ({"hasKeyword": "PROJECT"}, ["m5"], ["KEYWORD", "PROJECT"]),
    ({"notKeyword": "project"}, ["m1", "m2", "m3", "m4", "m6"], ["UNKEYWORD", "project"]),
    ({"allInThreadHaveKeyword": "$seen"}, ["m1", "m2"], None),
    ({"someInThreadHaveKeyword": "$flagged"}, ["m3", "m5"], None),
    ({"noneInThreadHaveKeyword": "$seen"}, ["m3", "m4", "m5", "m6"], None),
    ({"allInThreadHaveKeyword": "project"}, [], None),
    ({"text": "pizza"}, ["m1", "m2", "m6"], ["TEXT", "pizza"]),
    ({"text": "alice"}, ["m1", "m2", "m5", "m6"], ["TEXT", "alice"]),
    ({"text": "dave"}, ["m3"], ["TEXT", "dave"]),
    ({"text": "secret"}, ["m4"], ["TEXT", "secret"]),
    # text looks only in From, To, Cc, Bcc, Subject and the body (RFC 8621
    # 4.4.1); IMAP TEXT looks in every header field
    ({"text": "priority"}, [], None),
    ({"text": "pi"}, ["m1", "m2", "m6"], None),  # short: not asked of the index
    ({"from": "alice"}, ["m1", "m5"], ["FROM", "alice"]),
    ({"from": "a.example"}, ["m1", "m5"], ["FROM", "a.example"]),
    ({"from": "\u00e9lodie"}, ["m4"], ["FROM", "\u00e9lodie"]),
    ({"to": "bob"}, ["m1", "m4"], ["TO", "bob"]),
    ({"cc": "dave"}, ["m3"], ["CC", "dave"]),
    ({"bcc": "secret"}, ["m4"], ["BCC", "secret"]),
    ({"subject": "budget"}, ["m3", "m5"], ["SUBJECT", "budget"]),
    ({"subject": "R\u00c9UNION"}, ["m4"], ["SUBJECT", "R\u00c9UNION"]),
    ({"subject": "<tricks>"}, ["m6"], None),
    ({"body": "numbers"}, ["m3", "m5"], ["BODY", "numbers"]),
    ({"body": "alice"}, [], ["BODY", "alice"]),
    ({"body": "\u00e0 midi"}, ["m4"], ["BODY", "\u00e0 midi"]),
    ({"header": ["X-Priority"]}, ["m4"], ["HEADER", "X-Priority", ""]),
    ({"header": ["x-priority", "1"]}, ["m4"], ["HEADER", "X-Priority", "1"]),
    ({"header": ["In-Reply-To"]}, ["m2", "m5"], ["HEADER", "In-Reply-To", ""]),
    ({"header": ["Subject", "re:"]}, ["m2", "m5"], ["HEADER", "Subject", "re:"]),
    ({"header": ["X-None"]}, [], ["HEADER", "X-None", ""]),
    # several properties of one condition: all of them
    ({"from": "alice", "after": "2024-01-05T00:00:00Z"}, ["m5"], None),
    ({}, NAMES, ["ALL"]),
]


def imap_arg(a):
    return a if a and " " not in a else '"%s"' % a


def imap_search_literal(srv, b, crit):
    """IMAP SEARCH whose last argument is a UTF-8 literal."""
    m = imap(srv, b.user)
    m.select("INBOX", readonly=True)
    m.literal = crit[-1].encode()
    typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", *[imap_arg(a) for a in crit[:-1]])
    m.logout()
    assert typ == "OK"
    by_uid = {v: k for k, v in b.uids.items()}
    return [by_uid[int(u)] for u in data[0].split()]


@pytest.mark.parametrize("flt,want,crit", FILTERS, ids=[str(f[0]) for f in FILTERS])
def test_filter_alone(srv, box, flt, want, crit):
    assert names(srv, box, filter=flt) == want
    if crit is None:
        return
    inbox = [n for n in want if n != "m6"]
    # the same in INBOX over JMAP and IMAP SEARCH
    assert names(srv, box, filter={"operator": "AND",
                                   "conditions": [flt, {"inMailbox": box.mbox["INBOX"]}]}) \
        == inbox
    if not crit[-1].isascii():
        assert imap_search_literal(srv, box, crit) == inbox
    else:
        assert imap_search(srv, box, *[imap_arg(a) for a in crit]) == inbox


def test_filter_mailboxes(srv, box):
    assert names(srv, box, filter={"inMailbox": box.mbox["INBOX"]}) == NAMES[:5]
    assert names(srv, box, filter={"inMailbox": box.mbox["Work"]}) == ["m6"]
    assert names(srv, box, filter={"inMailbox": "M999999"}) == []
    assert names(srv, box, filter={"inMailboxOtherThan": [box.mbox["INBOX"]]}) == ["m6"]
    assert names(srv, box, filter={"inMailboxOtherThan": [box.mbox["INBOX"],
                                                          box.mbox["Work"]]}) == []
    assert names(srv, box, filter={"inMailboxOtherThan": []}) == NAMES


def test_filter_sizes(srv, box):
    s3 = box.size["m3"]
    assert max(box.size.values()) == s3
    assert names(srv, box, filter={"minSize": s3}) == ["m3"]
    assert names(srv, box, filter={"maxSize": s3}) == [n for n in NAMES if n != "m3"]
    assert imap_search(srv, box, "LARGER", str(s3 - 1)) == ["m3"]
    small = min(box.size.values())
    want = [n for n in NAMES if box.size[n] < small + 1]
    assert names(srv, box, filter={"maxSize": small + 1}) == want
    assert names(srv, box, filter={"minSize": 0, "maxSize": 0}) == []


def test_filter_operators(srv, box):
    A = {"from": "alice"}
    P = {"text": "pizza"}
    assert names(srv, box, filter={"operator": "AND", "conditions": [A, P]}) == ["m1"]
    assert names(srv, box, filter={"operator": "OR", "conditions": [A, P]}) == \
        ["m1", "m2", "m5", "m6"]
    assert names(srv, box, filter={"operator": "NOT", "conditions": [A, P]}) == ["m3", "m4"]
    assert names(srv, box, filter={"operator": "OR", "conditions": [
        {"hasKeyword": "$draft"}, {"hasKeyword": "$flagged"}]}) == ["m3", "m6"]
    assert names(srv, box, filter={"operator": "NOT", "conditions": [
        {"inMailbox": box.mbox["INBOX"]}]}) == ["m6"]
    nested = {"operator": "OR", "conditions": [
        {"operator": "AND", "conditions": [{"subject": "budget"}, {"hasKeyword": "project"}]},
        {"operator": "NOT", "conditions": [{"before": "2024-01-07T00:00:00Z"}]}]}
    assert names(srv, box, filter=nested) == ["m5", "m6"]
    assert names(srv, box, filter={"operator": "AND", "conditions": []}) == NAMES
    assert names(srv, box, filter={"operator": "OR", "conditions": []}) == []
    # IMAP: OR FROM alice TEXT pizza
    assert imap_search(srv, box, "OR", "FROM", "alice", "TEXT", "pizza") == \
        ["m1", "m2", "m5"]
    assert imap_search(srv, box, "NOT", "OR", "FROM", "alice", "TEXT", "pizza") == \
        ["m3", "m4"]


SORTS = [
    ([{"property": "size"}], None, "(SIZE)"),
    ([{"property": "size", "isAscending": False}], None, "(REVERSE SIZE)"),
    ([{"property": "subject"}], ["m3", "m5", "m1", "m2", "m4", "m6"], "(SUBJECT)"),
    ([{"property": "subject", "isAscending": False}],
     ["m6", "m4", "m1", "m2", "m3", "m5"], None),
    ([{"property": "sentAt"}], ["m2", "m1", "m3", "m4", "m5", "m6"], "(DATE)"),
    # from: the name of the first address, else its email (RFC 8621 4.4.2)
    ([{"property": "from"}], ["m1", "m5", "m2", "m3", "m6", "m4"], None),
    ([{"property": "from", "collation": "i;unicode-casemap"}],
     ["m1", "m5", "m2", "m3", "m6", "m4"], None),
    ([{"property": "from", "collation": "i;ascii-casemap"}],
     ["m1", "m5", "m2", "m3", "m6", "m4"], None),
    ([{"property": "from", "collation": "i;octet"}],
     ["m1", "m5", "m3", "m2", "m6", "m4"], None),
    ([{"property": "to"}], ["m2", "m6", "m1", "m4", "m5", "m3"], None),
    ([{"property": "hasKeyword", "keyword": "$seen"}],
     ["m3", "m4", "m5", "m6", "m1", "m2"], None),
    ([{"property": "hasKeyword", "keyword": "$seen", "isAscending": False}],
     ["m1", "m2", "m3", "m4", "m5", "m6"], None),
    ([{"property": "allInThreadHaveKeyword", "keyword": "$seen"}],
     ["m3", "m4", "m5", "m6", "m1", "m2"], None),
    ([{"property": "someInThreadHaveKeyword", "keyword": "$flagged", "isAscending": False}],
     ["m3", "m5", "m1", "m2", "m4", "m6"], None),
    # two comparators: subject, then receivedAt descending within one subject
    ([{"property": "subject"}, {"property": "receivedAt", "isAscending": False}],
     ["m5", "m3", "m2", "m1", "m4", "m6"], "(SUBJECT REVERSE ARRIVAL)"),
]


@pytest.mark.parametrize("sort,want,crit", SORTS, ids=[str(s[0]) for s in SORTS])
def test_sort(srv, box, sort, want, crit):
    if want is None:
        rev = not sort[0].get("isAscending", True)
        want = sorted(NAMES, key=lambda n: box.size[n], reverse=rev)
    assert names(srv, box, sort=sort) == want
    if crit is not None:
        assert imap_sort(srv, box, crit) == [n for n in want if n != "m6"]


def test_collapse_threads(srv, box):
    desc = [{"property": "receivedAt", "isAscending": False}]
    r = query(srv, box, sort=desc, collapseThreads=True, calculateTotal=True)
    assert [box.by_id[i] for i in r["ids"]] == ["m6", "m5", "m4", "m2"]
    assert r["total"] == 4
    assert names(srv, box, collapseThreads=True) == ["m1", "m3", "m4", "m6"]
    # the first match of each thread: with a filter, the matching one
    assert names(srv, box, collapseThreads=True, filter={"text": "numbers"},
                 sort=[{"property": "receivedAt", "isAscending": False}]) == ["m5"]
    assert names(srv, box, collapseThreads=False, filter={"text": "numbers"}) == ["m3", "m5"]
    # the threads are Thread/get's
    t = ok(srv, box.user, "Thread/get", {"accountId": box.aid, "ids": None})
    threads = sorted([box.by_id[i] for i in x["emailIds"]] for x in t["list"])
    assert threads == [["m1", "m2"], ["m3", "m5"], ["m4"], ["m6"]]


def window(srv, box, **args):
    r = query(srv, box, **args)
    return [box.by_id[i] for i in r["ids"]], r["position"]


def test_position_anchor_limit(srv, box):
    assert window(srv, box, position=2, limit=2) == (["m3", "m4"], 2)
    assert window(srv, box, position=-2) == (["m5", "m6"], 4)
    assert window(srv, box, position=-10) == (NAMES, 0)
    assert window(srv, box, position=6) == ([], 6)
    assert window(srv, box, position=10) == ([], 6)
    assert window(srv, box, limit=0) == ([], 0)
    assert window(srv, box, anchor=box.ids["m3"]) == (["m3", "m4", "m5", "m6"], 2)
    assert window(srv, box, anchor=box.ids["m3"], anchorOffset=-1, limit=2) == \
        (["m2", "m3"], 1)
    assert window(srv, box, anchor=box.ids["m3"], anchorOffset=-5) == (NAMES, 0)
    assert window(srv, box, anchor=box.ids["m3"], anchorOffset=10) == ([], 6)
    # position is ignored when there is an anchor
    assert window(srv, box, anchor=box.ids["m5"], position=1, limit=1) == (["m5"], 4)
    # the limit used: said when the server chose it
    assert "limit" not in query(srv, box, limit=2)
    assert query(srv, box, limit=5000)["limit"] == 1000
    e = error(srv, box.user, "Email/query", {"accountId": box.aid, "anchor": "Enope"})
    assert e["type"] == "anchorNotFound"
    e = error(srv, box.user, "Email/query", {"accountId": box.aid, "anchor": box.ids["m6"],
                                             "filter": {"inMailbox": box.mbox["INBOX"]}})
    assert e["type"] == "anchorNotFound"


BAD = [
    ({"limit": -1}, "invalidArguments"),
    ({"position": "1"}, "invalidArguments"),
    ({"anchor": 5}, "invalidArguments"),
    ({"collapseThreads": 1}, "invalidArguments"),
    ({"calculateTotal": "yes"}, "invalidArguments"),
    ({"bogus": 1}, "invalidArguments"),
    ({"accountId": "A999999"}, "accountNotFound"),
    ({"sort": {"property": "size"}}, "invalidArguments"),
    ({"sort": [{"property": "id"}]}, "unsupportedSort"),
    ({"sort": [{"property": "subject", "collation": "i;basic"}]}, "unsupportedSort"),
    ({"sort": [{"property": "hasKeyword"}]}, "invalidArguments"),
    ({"sort": [{"property": "size", "keyword": "$seen"}]}, "invalidArguments"),
    ({"sort": [{"property": "size", "bogus": True}]}, "invalidArguments"),
    ({"filter": {"bogus": 1}}, "unsupportedFilter"),
    ({"filter": {"hasAttachment": 1}}, "invalidArguments"),
    ({"filter": {"before": "yesterday"}}, "invalidArguments"),
    ({"filter": {"before": "2024-02-30T00:00:00Z"}}, "invalidArguments"),
    ({"filter": {"before": "2024-01-01T00:00:00+01:00"}}, "invalidArguments"),
    ({"filter": {"minSize": -1}}, "invalidArguments"),
    ({"filter": {"hasKeyword": "a b"}}, "invalidArguments"),
    ({"filter": {"hasKeyword": ""}}, "invalidArguments"),
    ({"filter": {"inMailbox": ["M1"]}}, "invalidArguments"),
    ({"filter": {"inMailboxOtherThan": "M1"}}, "invalidArguments"),
    ({"filter": {"text": 5}}, "invalidArguments"),
    ({"filter": {"header": []}}, "invalidArguments"),
    ({"filter": {"header": ["a", "b", "c"]}}, "invalidArguments"),
    ({"filter": {"header": ["bad name"]}}, "invalidArguments"),
    ({"filter": {"operator": "XOR", "conditions": []}}, "invalidArguments"),
    ({"filter": {"operator": "AND"}}, "invalidArguments"),
    ({"filter": []}, "invalidArguments"),
]


@pytest.mark.parametrize("args,err", BAD, ids=[str(b[0]) for b in BAD])
def test_errors(srv, box, args, err):
    e = error(srv, box.user, "Email/query", dict({"accountId": box.aid}, **args))
    assert e["type"] == err


def test_filter_too_deep(srv, box):
    f = {"text": "pizza"}
    for _ in range(17):
        f = {"operator": "NOT", "conditions": [f]}
    e = error(srv, box.user, "Email/query", {"accountId": box.aid, "filter": f})
    assert e["type"] == "unsupportedFilter"
    f = {"text": "pizza"}
    for _ in range(8):
        f = {"operator": "NOT", "conditions": [{"operator": "NOT", "conditions": [f]}]}
    assert names(srv, box, filter=f) == ["m1", "m2", "m6"]  # 16 deep


def apply_changes(old, ch):
    """RFC 8620 5.6: the client's old ids with removed taken out and
    added put in, by ascending index."""
    ids = [i for i in old if i not in set(ch["removed"])]
    for a in sorted(ch["added"], key=lambda a: a["index"]):
        ids.insert(a["index"], a["id"])
    return ids


QC_VARIANTS = [
    {"sort": [{"property": "receivedAt"}]},
    {"sort": [{"property": "receivedAt", "isAscending": False}], "collapseThreads": True},
    {"filter": {"notKeyword": "$seen"}, "sort": [{"property": "subject"}]},
    {"filter": {"someInThreadHaveKeyword": "$flagged"}},
    {"sort": [{"property": "hasKeyword", "keyword": "$flagged"},
              {"property": "size", "isAscending": False}]},
    {"sort": [{"property": "allInThreadHaveKeyword", "keyword": "$seen"}],
     "filter": {"inMailbox": None}},
]


def test_query_changes(srv):
    """Changes made over IMAP (flags, an APPEND into a thread, an
    EXPUNGE) applied to the old ids give exactly the new ones."""
    b = fill(srv)
    variants = []
    for v in QC_VARIANTS:
        v = json.loads(json.dumps(v))
        if "filter" in v and v["filter"].get("inMailbox", 1) is None:
            v["filter"]["inMailbox"] = b.mbox["INBOX"]
        variants.append(v)
    before = [ok(srv, b.user, "Email/query", dict(v, accountId=b.aid)) for v in variants]
    for r in before:
        assert r["canCalculateChanges"] is True
    m = imap(srv, b.user)
    m.select("INBOX")
    m.uid("STORE", str(b.uids["m4"]), "+FLAGS", r"(\Seen)")
    m.uid("STORE", str(b.uids["m1"]), "-FLAGS", r"(\Seen)")
    m.uid("STORE", str(b.uids["m5"]), "+FLAGS", r"(\Flagged)")
    m.uid("STORE", str(b.uids["m2"]), "+FLAGS", r"(\Deleted)")
    m.expunge()
    msg = ("From: Dave <dave@d.example>\r\nSubject: Re: Budget 2024\r\n"
           "In-Reply-To: <m3@q.test>\r\nMessage-ID: <m7@q.test>\r\n\r\nAgreed.\r\n")
    assert m.append("INBOX", r"(\Seen)", '"08-Jan-2024 00:00:00 +0000"',
                    msg.encode())[0] == "OK"
    m.logout()
    for v, old in zip(variants, before):
        new = ok(srv, b.user, "Email/query", dict(v, accountId=b.aid, calculateTotal=True))
        ch = ok(srv, b.user, "Email/queryChanges",
                dict(v, accountId=b.aid, sinceQueryState=old["queryState"],
                     calculateTotal=True))
        assert ch["oldQueryState"] == old["queryState"]
        assert ch["newQueryState"] == new["queryState"] != old["queryState"]
        assert ch["total"] == new["total"]
        assert apply_changes(old["ids"], ch) == new["ids"], v
        # every entry of added is in the new results at its index
        for a in ch["added"]:
            assert new["ids"][a["index"]] == a["id"]
        # nothing changed since: nothing to tell
        ch = ok(srv, b.user, "Email/queryChanges",
                dict(v, accountId=b.aid, sinceQueryState=new["queryState"]))
        assert ch["removed"] == [] and ch["added"] == []
    # the Emails that did not change are not in the changes
    v = variants[0]
    ch = ok(srv, b.user, "Email/queryChanges",
            dict(v, accountId=b.aid, sinceQueryState=before[0]["queryState"]))
    touched = {b.ids[n] for n in ("m1", "m2", "m4", "m5")}
    assert touched <= set(ch["removed"])
    assert b.ids["m3"] not in ch["removed"] and b.ids["m6"] not in ch["removed"]
    assert len(ch["added"]) == 4  # m1, m4, m5 and the new one
    e = error(srv, b.user, "Email/queryChanges",
              dict(v, accountId=b.aid, sinceQueryState=before[0]["queryState"], maxChanges=2))
    assert e["type"] == "tooManyChanges"
    for st in ("x", "01", "999999999"):
        e = error(srv, b.user, "Email/queryChanges",
                  dict(v, accountId=b.aid, sinceQueryState=st))
        assert e["type"] == "cannotCalculateChanges"
    for bad in ({}, {"sinceQueryState": 1}, {"sinceQueryState": "1", "maxChanges": 0},
                {"sinceQueryState": "1", "upToId": 5}, {"sinceQueryState": "1", "bogus": 1}):
        e = error(srv, b.user, "Email/queryChanges", dict(bad, accountId=b.aid))
        assert e["type"] == "invalidArguments", bad
    e = error(srv, b.user, "Email/queryChanges",
              {"accountId": b.aid, "sinceQueryState": "1", "filter": {"bogus": 1}})
    assert e["type"] == "unsupportedFilter"


def test_imap_changes_seen(srv):
    """A flag set over IMAP is in the next query, with a new queryState."""
    b = Box()
    b.user = new_user(srv)
    b.aid = account(srv, b.user)
    m = imap(srv, b.user)
    msg = MSGS[3]
    token = "tok-x-%s" % uuid.uuid4().hex[:12]
    assert m.append("INBOX", "()", '"%s"' % msg[2], raw_message(msg, token))[0] == "OK"
    eid = "E" + os.path.basename(srv.message_files_with(token)[0])
    flt = {"filter": {"hasKeyword": "$flagged"}}
    r1 = ok(srv, b.user, "Email/query", dict(flt, accountId=b.aid))
    assert r1["ids"] == []
    m.select("INBOX")
    m.store("1", "+FLAGS", r"(\Flagged)")
    r2 = ok(srv, b.user, "Email/query", dict(flt, accountId=b.aid))
    assert r2["ids"] == [eid]
    assert r2["queryState"] != r1["queryState"]
    # a keyword set over IMAP, matched case-insensitively
    m.store("1", "+FLAGS", "(Later)")
    r3 = ok(srv, b.user, "Email/query", {"accountId": b.aid, "filter": {"hasKeyword": "later"}})
    assert r3["ids"] == [eid]
    # expunged over IMAP: gone from the results
    m.store("1", "+FLAGS", r"(\Deleted)")
    m.expunge()
    m.logout()
    r4 = ok(srv, b.user, "Email/query", {"accountId": b.aid})
    assert r4["ids"] == []


def test_filter_has_attachment(srv):
    """hasAttachment matches what Email/get says of each Email (the same
    rule of RFC 8621 4.1.4): a real attachment yes; plain text, an
    inline image in a related HTML body, no."""
    user = new_user(srv)
    aid = account(srv, user)
    m = imap(srv, user)
    plain = b"From: a@example.test\r\nSubject: plain\r\n\r\njust text\r\n"
    attached = (b"From: a@example.test\r\nSubject: attached\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
                b"--b1\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n"
                b"--b1\r\nContent-Type: application/pdf\r\n"
                b"Content-Disposition: attachment; filename=a.pdf\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b1--\r\n")
    inline = (b"From: a@example.test\r\nSubject: inline\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/related; boundary=b2\r\n\r\n"
              b"--b2\r\nContent-Type: text/html\r\n\r\n<img src=cid:x@y>\r\n"
              b"--b2\r\nContent-Type: image/png\r\nContent-ID: <x@y>\r\n"
              b"Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n"
              b"iVBORw0=\r\n--b2--\r\n")
    for raw in (plain, attached, inline):
        assert m.append("INBOX", None, None, raw)[0] == "OK"
    m.logout()
    all_ids = ok(srv, user, "Email/query", {"accountId": aid})["ids"]
    got = ok(srv, user, "Email/get", {"accountId": aid, "ids": all_ids,
                                      "properties": ["subject", "hasAttachment"]})["list"]
    by_subject = {e["subject"]: e for e in got}
    assert by_subject["attached"]["hasAttachment"] is True
    assert by_subject["plain"]["hasAttachment"] is False
    assert by_subject["inline"]["hasAttachment"] is False
    for want in (True, False):
        r = ok(srv, user, "Email/query", {"accountId": aid, "filter": {"hasAttachment": want}})
        assert sorted(r["ids"]) == sorted(e["id"] for e in got if e["hasAttachment"] is want)
    r = ok(srv, user, "Email/query", {"accountId": aid, "filter": {
        "operator": "AND", "conditions": [{"hasAttachment": True}, {"subject": "attached"}]}})
    assert r["ids"] == [by_subject["attached"]["id"]]


def snippets(srv, b, flt, which):
    r = ok(srv, b.user, "SearchSnippet/get",
           {"accountId": b.aid, "filter": flt, "emailIds": [b.ids[n] for n in which]})
    assert r["accountId"] == b.aid and r["notFound"] == []
    return [(b.by_id[s["emailId"]], s["subject"], s["preview"]) for s in r["list"]]


def test_search_snippets(srv, box):
    assert snippets(srv, box, {"text": "pizza"}, ["m1", "m6", "m3"]) == [
        ("m1", None, "Shall we meet for <mark>pizza</mark>?"),
        ("m6", None, "Use the <mark>pizza</mark> oven &amp; &lt;keep&gt; it hot."),
        ("m3", None, None)]
    # the subject HTML-escaped, the match marked
    assert snippets(srv, box, {"subject": "tricks"}, ["m6"]) == [
        ("m6", "Tips &amp; &lt;<mark>tricks</mark>&gt;", None)]
    assert snippets(srv, box, {"text": "<TRICKS>"}, ["m6"]) == [
        ("m6", "Tips &amp; <mark>&lt;tricks&gt;</mark>", None)]
    # decoded, matched with case folding, the original case kept
    assert snippets(srv, box, {"text": "r\u00c9union"}, ["m4"]) == [
        ("m4", "<mark>R\u00e9union</mark>", "<mark>R\u00e9union</mark> demain \u00e0 midi.")]
    # several needles, every match marked; NOT's needles are not
    flt = {"operator": "AND", "conditions": [
        {"body": "meet"}, {"text": "pizza"},
        {"operator": "NOT", "conditions": [{"text": "shall"}]}]}
    assert snippets(srv, box, flt, ["m1"]) == [
        ("m1", None, "Shall we <mark>meet</mark> for <mark>pizza</mark>?")]
    # from/to needles are not in snippets; no filter: nothing to mark
    assert snippets(srv, box, {"from": "alice"}, ["m1"]) == [("m1", None, None)]
    assert snippets(srv, box, None, ["m1"]) == [("m1", None, None)]
    r = ok(srv, box.user, "SearchSnippet/get",
           {"accountId": box.aid, "filter": {"text": "pizza"},
            "emailIds": [box.ids["m2"], "Enope", "E" + "a" * 24]})
    assert [s["emailId"] for s in r["list"]] == [box.ids["m2"]]
    assert r["list"][0]["preview"] == "<mark>Pizza</mark> sounds great."
    assert r["notFound"] == ["Enope", "E" + "a" * 24]


def test_search_snippet_preview_bounded(srv, box):
    """A preview is at most 255 octets, cut at a character, never inside
    a mark, and starts a little before the first match."""
    text = "The quarterly numbers are in. " + "padding line " * 200
    words = text.split(" ")
    out = ""
    for w in words:
        piece = ("<mark>%s</mark>" % w) if w == "padding" else w
        sep = " " if out else ""
        if len((out + sep + piece).encode()) > 255:
            # the rest of the text up to the limit (not inside a mark)
            if w != "padding":
                room = 255 - len(out.encode())
                out = (out + sep + piece)[:len(out) + room]
            elif len((out + sep).encode()) <= 255:
                out = out + sep
            break
        out = out + sep + piece
    want = out
    r = snippets(srv, box, {"body": "PADDING"}, ["m3"])
    assert r == [("m3", None, want)]
    assert len(want.encode()) <= 255 and want.endswith("line ")
    # a match in the first 40 octets: the preview starts with the body
    s = snippets(srv, box, {"text": "quarterly"}, ["m3"])[0][2]
    assert s.startswith("The <mark>quarterly</mark> numbers")


def test_search_snippet_html(srv):
    b = Box()
    b.user = new_user(srv)
    b.aid = account(srv, b.user)
    token = "tok-h-%s" % uuid.uuid4().hex[:12]
    msg = ("From: a@b.example\r\nSubject: html\r\nX-Token: %s\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/html; charset=utf-8\r\n\r\n"
           "<html><head><style>p {color: red}</style></head><body>"
           "<p>Hello <b>world</b> &amp; friends&#33;</p><!-- world --></body></html>\r\n"
           % token)
    m = imap(srv, b.user)
    assert m.append("INBOX", "()", None, msg.encode())[0] == "OK"
    m.logout()
    eid = "E" + os.path.basename(srv.message_files_with(token)[0])
    r = ok(srv, b.user, "SearchSnippet/get",
           {"accountId": b.aid, "filter": {"body": "world"}, "emailIds": [eid]})
    assert r["list"] == [{"emailId": eid, "subject": None,
                          "preview": "Hello <mark>world</mark> &amp; friends!"}]


SNIPPET_BAD = [
    ({}, "invalidArguments"),
    ({"emailIds": "E1"}, "invalidArguments"),
    ({"emailIds": [1]}, "invalidArguments"),
    ({"emailIds": ["E%d" % i for i in range(501)]}, "requestTooLarge"),
    ({"emailIds": [], "filter": {"bogus": 1}}, "unsupportedFilter"),
    ({"emailIds": [], "sort": []}, "invalidArguments"),
    ({"emailIds": [], "accountId": "A0"}, "accountNotFound"),
]


@pytest.mark.parametrize("args,err", SNIPPET_BAD, ids=[str(b[1]) + str(i)
                                                      for i, b in enumerate(SNIPPET_BAD)])
def test_search_snippet_errors(srv, box, args, err):
    e = error(srv, box.user, "SearchSnippet/get", dict({"accountId": box.aid}, **args))
    assert e["type"] == err


TEXT_FILTERS = [f for f in FILTERS if set(f[0]) & {"text", "body"}]


@pytest.mark.parametrize("max_text", ["0", "60"])
def test_text_without_full_index(make_server, max_text):
    """Messages not indexed (0) or indexed in part (60 octets): the same
    answers, from the files."""
    s = make_server(start=False)
    s.set_config({"allow_plaintext_loopback": "yes", "search.index_max_text": max_text})
    s.start()
    b = fill(s)
    for flt, want, _ in TEXT_FILTERS:
        assert names(s, b, filter=flt) == want, flt
    assert snippets(s, b, {"text": "pizza"}, ["m6"]) == [
        ("m6", None, "Use the <mark>pizza</mark> oven &amp; &lt;keep&gt; it hot.")]
