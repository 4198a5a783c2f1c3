"""JMAP Mail (RFC 8621, docs/jmap.md "Mail") over HTTPS against a real
server: what is served so far, Mailbox/get, Mailbox/changes,
Mailbox/query, Mailbox/queryChanges, Thread/get, Thread/changes and
Email/changes, with
exact results; counts and threads after SMTP delivery and IMAP APPEND; changes made over IMAP (flags, CREATE,
DELETE, RENAME, SUBSCRIBE) seen by Mailbox/changes; bad arguments as the
RFC's method-level errors.  The Session advertises the capability (all
of RFC 8621's Mailbox, Thread, Email and SearchSnippet methods are
served: test_jmap_get.py, test_jmap_query.py, test_jmap_set.py)."""
import imaplib
import json
import smtplib
import uuid

import pytest

from conftest import HOST, PASSWORD, timeout
from test_jmap_core import basic, request

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SENDER = "sender@example.net"
ALL_RIGHTS = {"mayReadItems": True, "mayAddItems": True, "mayRemoveItems": True,
              "maySetSeen": True, "maySetKeywords": True, "mayCreateChild": True,
              "mayRename": True, "mayDelete": True, "maySubmit": True}
COUNTS = ["totalEmails", "unreadEmails", "totalThreads", "unreadThreads"]


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"workers": 2, "allow_plaintext_loopback": "yes"})
    s.start()
    return s


def new_user(srv):
    user = "jm%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    return user


def account(srv, user):
    st, _, data = request(srv, "GET", "/jmap/session", auth=basic(user))
    assert st == 200
    return next(iter(json.loads(data)["accounts"]))


def call(srv, user, name, args, using=(CORE, MAIL)):
    """One method call; its [name, arguments] response."""
    body = json.dumps({"using": list(using), "methodCalls": [[name, args, "c"]]}).encode()
    st, _, data = request(srv, "POST", "/jmap/api/", body=body,
                          headers={"Content-Type": "application/json"}, auth=basic(user))
    assert st == 200, data
    r = json.loads(data)["methodResponses"]
    assert len(r) == 1 and r[0][2] == "c"
    return r[0][0], r[0][1]


def ok(srv, user, name, args):
    n, a = call(srv, user, name, args)
    assert n == name, a
    return a


def error(srv, user, name, args):
    n, a = call(srv, user, name, args)
    assert n == "error", a
    return a


def deliver(srv, rcpt, subject, extra=""):
    msg = ("From: <%s>\r\nTo: %s\r\nSubject: %s\r\n%s\r\nHello.\r\n"
           % (SENDER, rcpt, subject, extra))
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.sendmail(SENDER, [rcpt], msg.encode())


def imap(srv, user):
    m = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    m.login(user, PASSWORD)
    return m


def mailboxes(srv, user, aid):
    r = ok(srv, user, "Mailbox/get", {"accountId": aid, "ids": None})
    return r, {m["name"]: m for m in r["list"]}


def test_session_advertises_mail(srv):
    user = new_user(srv)
    st, _, data = request(srv, "GET", "/jmap/session", auth=basic(user))
    s = json.loads(data)
    vacation = "urn:ietf:params:jmap:vacationresponse"
    submission = "urn:ietf:params:jmap:submission"
    assert list(s["capabilities"]) == [CORE, MAIL, vacation, submission]
    aid = next(iter(s["accounts"]))
    assert s["primaryAccounts"] == {MAIL: aid, vacation: aid, submission: aid}
    assert list(s["accounts"][aid]["accountCapabilities"]) == [MAIL, vacation, submission]
    # a Mail method without the capability in "using" is unknown (RFC 8620 3.6.2)
    body = json.dumps({"using": [CORE], "methodCalls": [["Mailbox/get", {"accountId": aid}, "c"]]})
    st, _, data = request(srv, "POST", "/jmap/api/", body=body.encode(),
                          headers={"Content-Type": "application/json"}, auth=basic(user))
    assert json.loads(data)["methodResponses"][0][1]["type"] == "unknownMethod"


def test_mailbox_get_default_mailboxes(srv):
    user = new_user(srv)
    aid = account(srv, user)
    r, by_name = mailboxes(srv, user, aid)
    assert r["accountId"] == aid
    assert r["notFound"] == []
    assert sorted(by_name) == ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    roles = {n: m["role"] for n, m in by_name.items()}
    assert roles == {"INBOX": "inbox", "Sent": "sent", "Drafts": "drafts", "Trash": "trash",
                     "Junk": "junk", "Archive": "archive"}
    inbox = by_name["INBOX"]
    assert inbox == {"id": inbox["id"], "name": "INBOX", "parentId": None, "role": "inbox",
                     "sortOrder": 0, "totalEmails": 0, "unreadEmails": 0, "totalThreads": 0,
                     "unreadThreads": 0,
                     "myRights": dict(ALL_RIGHTS, mayRename=False, mayDelete=False),
                     "isSubscribed": inbox["isSubscribed"]}
    assert by_name["Sent"]["myRights"] == ALL_RIGHTS
    # ids and properties; "id" always comes back; unknown ids are notFound
    r = ok(srv, user, "Mailbox/get", {"accountId": aid, "ids": [inbox["id"], "M999999", "x"],
                                      "properties": ["name", "totalEmails"]})
    assert r["list"] == [{"id": inbox["id"], "name": "INBOX", "totalEmails": 0}]
    assert r["notFound"] == ["M999999", "x"]
    assert r["state"].isdigit()


def test_counts_and_threads_after_delivery_and_imap(srv):
    user = new_user(srv)
    aid = account(srv, user)
    deliver(srv, user, "first", "Message-ID: <t1@example.net>\r\n")
    deliver(srv, user, "reply", "Message-ID: <t2@example.net>\r\nIn-Reply-To: <t1@example.net>\r\n")
    deliver(srv, user, "other", "Message-ID: <t3@example.net>\r\n")
    r, by_name = mailboxes(srv, user, aid)
    inbox = by_name["INBOX"]
    assert [inbox[k] for k in COUNTS] == [3, 3, 2, 2]
    state = r["state"]
    # Nothing changed: the same state, no changes.
    r = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state})
    assert r == {"accountId": aid, "oldState": state, "newState": state,
                 "hasMoreChanges": False, "created": [], "updated": [], "destroyed": [],
                 "updatedProperties": None}
    # \Seen over IMAP on the reply: its thread still has an unread Email.
    m = imap(srv, user)
    m.select("INBOX")
    typ, _ = m.uid("STORE", "2", "+FLAGS", "(\\Seen)")
    assert typ == "OK"
    r = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state})
    assert r["updated"] == [inbox["id"]] and r["created"] == [] and r["destroyed"] == []
    assert r["updatedProperties"] == COUNTS
    assert int(r["newState"]) > int(state)
    state = r["newState"]
    _, by_name = mailboxes(srv, user, aid)
    assert [by_name["INBOX"][k] for k in COUNTS] == [3, 2, 2, 2]
    # \Draft counts as read too (RFC 8621 2); all of thread 1 read.
    m.uid("STORE", "1", "+FLAGS", "(\\Draft)")
    _, by_name = mailboxes(srv, user, aid)
    assert [by_name["INBOX"][k] for k in COUNTS] == [3, 1, 2, 1]
    # A copy to Archive: the same Email and thread there.
    m.uid("COPY", "1:2", "Archive")
    r, by_name = mailboxes(srv, user, aid)
    assert [by_name["Archive"][k] for k in COUNTS] == [2, 0, 1, 0]
    # CREATE, SUBSCRIBE, RENAME, DELETE over IMAP
    state = r["state"]
    assert m.create("Work/Sub")[0] == "OK"
    r = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state})
    assert len(r["created"]) == 2 and r["updated"] == [] and r["destroyed"] == []
    _, by_name = mailboxes(srv, user, aid)
    work, sub = by_name["Work"], by_name["Sub"]
    assert sorted(r["created"]) == sorted([work["id"], sub["id"]])
    assert sub["parentId"] == work["id"] and work["parentId"] is None
    assert sub["role"] is None and sub["isSubscribed"] is False
    state = r["newState"]
    assert m.subscribe("Work/Sub")[0] == "OK"
    r = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state})
    assert r["updated"] == [sub["id"]] and r["updatedProperties"] is None
    state2 = r["newState"]
    assert m.rename("Work/Sub", "Moved")[0] == "OK"
    assert m.delete("Work")[0] == "OK"
    r = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state2})
    assert r["destroyed"] == [work["id"]]
    assert r["updated"] == [sub["id"]]
    assert r["updatedProperties"] is None
    _, by_name = mailboxes(srv, user, aid)
    assert "Work" not in by_name
    moved = by_name["Moved"]
    assert moved["id"] == sub["id"] and moved["parentId"] is None
    # Created and destroyed since the old state: not mentioned at all.
    r = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state})
    assert r["destroyed"] == [work["id"]] and r["created"] == []
    m.create("Temp")
    m.delete("Temp")
    r = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state2})
    assert r["created"] == [] and r["destroyed"] == [work["id"]]
    m.logout()


def test_mailbox_changes_errors(srv):
    user = new_user(srv)
    aid = account(srv, user)
    r, _ = mailboxes(srv, user, aid)
    state = r["state"]
    for since in ["99999999", "abc", "", "01", "-1"]:
        e = error(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": since})
        assert e["type"] == "cannotCalculateChanges", since
    e = error(srv, user, "Mailbox/changes", {"accountId": aid})
    assert e == {"type": "invalidArguments", "description": "sinceState (String) is required"}
    for mc in [0, -1, "5", 1.5]:
        e = error(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state,
                                                 "maxChanges": mc})
        assert e["type"] == "invalidArguments", mc
    m = imap(srv, user)
    m.create("A1")
    m.create("A2")
    m.logout()
    e = error(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state,
                                             "maxChanges": 1})
    assert e["type"] == "cannotCalculateChanges"
    r = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state,
                                          "maxChanges": 2})
    assert len(r["created"]) == 2


def test_mailbox_query(srv):
    user = new_user(srv)
    aid = account(srv, user)
    m = imap(srv, user)
    for name in ["Lists", "Lists/alpha", "Lists/Beta", "Lists/Beta/x", "zeta"]:
        assert m.create(name)[0] == "OK"
    m.subscribe("zeta")
    m.logout()
    _, b = mailboxes(srv, user, aid)
    ids = {n: x["id"] for n, x in b.items()}

    def q(**args):
        return ok(srv, user, "Mailbox/query", dict(accountId=aid, **args))

    r = q(sort=[{"property": "name"}], calculateTotal=True)
    names = ["alpha", "Archive", "Beta", "Drafts", "INBOX", "Junk", "Lists", "Sent", "Trash",
             "x", "zeta"]
    by_id = {x["id"]: x["name"] for x in b.values()}
    assert [by_id[i] for i in r["ids"]] == names
    assert r["total"] == 11 and r["position"] == 0 and r["canCalculateChanges"] is False
    assert r["queryState"].isdigit()
    r = q(sort=[{"property": "name", "isAscending": False}])
    assert [by_id[i] for i in r["ids"]] == names[::-1]
    assert "total" not in r
    # filters
    assert q(filter={"role": "inbox"})["ids"] == [ids["INBOX"]]
    assert q(filter={"hasAnyRole": True}, calculateTotal=True)["total"] == 6
    assert q(filter={"parentId": ids["Lists"]}, sort=[{"property": "name"}])["ids"] == [
        ids["alpha"], ids["Beta"]]
    assert q(filter={"name": "BET"})["ids"] == [ids["Beta"]]
    assert q(filter={"isSubscribed": True, "role": None})["ids"] == [ids["zeta"]]
    r = q(filter={"operator": "AND", "conditions": [
        {"hasAnyRole": False}, {"operator": "NOT", "conditions": [{"parentId": None}]}]},
        sort=[{"property": "name"}])
    assert r["ids"] == [ids["alpha"], ids["Beta"], ids["x"]]
    r = q(filter={"operator": "OR", "conditions": [{"role": "junk"}, {"name": "zet"}]},
          sort=[{"property": "name"}])
    assert r["ids"] == [ids["Junk"], ids["zeta"]]
    # as a tree: parents first, siblings by name
    r = q(sortAsTree=True, sort=[{"property": "name"}], filter={"hasAnyRole": False})
    assert [by_id[i] for i in r["ids"]] == ["Lists", "alpha", "Beta", "x", "zeta"]
    r = q(filterAsTree=True, sortAsTree=True, sort=[{"property": "name"}],
          filter={"name": "a"})
    # "alpha" and "Beta" match, but their parent "Lists" does not
    assert [by_id[i] for i in r["ids"]] == ["Archive", "Drafts", "Trash", "zeta"]
    # window: position, negative position, anchor, limit
    base = q(sort=[{"property": "name"}])["ids"]
    r = q(sort=[{"property": "name"}], position=2, limit=3)
    assert r["ids"] == base[2:5] and r["position"] == 2
    r = q(sort=[{"property": "name"}], position=-2)
    assert r["ids"] == base[-2:] and r["position"] == 9
    r = q(sort=[{"property": "name"}], position=50)
    assert r["ids"] == [] and r["position"] == 11
    r = q(sort=[{"property": "name"}], anchor=ids["INBOX"], anchorOffset=-1, limit=2)
    assert r["ids"] == base[3:5] and r["position"] == 3
    r = q(sort=[{"property": "name"}], anchor=ids["alpha"], anchorOffset=-5)
    assert r["ids"] == base and r["position"] == 0
    e = error(srv, user, "Mailbox/query", {"accountId": aid, "anchor": "M999999"})
    assert e == {"type": "anchorNotFound"}


@pytest.mark.parametrize("name,args,want", [
    ("Mailbox/get", {"ids": "M1"}, "invalidArguments"),
    ("Mailbox/get", {"ids": [1]}, "invalidArguments"),
    ("Mailbox/get", {"ids": ["M%d" % i for i in range(501)]}, "requestTooLarge"),
    ("Mailbox/get", {"properties": ["name", "bogus"]}, "invalidArguments"),
    ("Mailbox/get", {"properties": "name"}, "invalidArguments"),
    ("Mailbox/get", {"bogus": 1}, "invalidArguments"),
    ("Mailbox/query", {"filter": {"bogus": 1}}, "unsupportedFilter"),
    # RFC 8620 5.5: a malformed filter is invalidArguments, one we cannot run
    # unsupportedFilter
    ("Mailbox/query", {"filter": {"name": 5}}, "invalidArguments"),
    ("Mailbox/query", {"filter": {"operator": "XOR", "conditions": []}}, "invalidArguments"),
    ("Mailbox/query", {"filter": []}, "invalidArguments"),
    ("Mailbox/query", {"sort": [{"property": "totalEmails"}]}, "unsupportedSort"),
    ("Mailbox/query", {"sort": [{"property": "name", "collation": "i;ascii-casemap"}]},
     "unsupportedSort"),
    ("Mailbox/query", {"sort": [{"property": "name", "isAscending": "yes"}]},
     "invalidArguments"),
    ("Mailbox/query", {"sort": {"property": "name"}}, "invalidArguments"),
    ("Mailbox/query", {"limit": -1}, "invalidArguments"),
    ("Mailbox/query", {"position": "0"}, "invalidArguments"),
    ("Mailbox/query", {"calculateTotal": 1}, "invalidArguments"),
    ("Mailbox/query", {"anchor": 5}, "invalidArguments"),
    ("Mailbox/queryChanges", {"sinceQueryState": "1"}, "cannotCalculateChanges"),
    ("Mailbox/queryChanges", {}, "invalidArguments"),
    ("Mailbox/queryChanges", {"sinceQueryState": "1", "filter": {"x": 1}},
     "unsupportedFilter"),
])
def test_bad_arguments(srv, name, args, want):
    user = ALICE_USER.get("u") or ALICE_USER.setdefault("u", new_user(srv))
    aid = account(srv, user)
    e = error(srv, user, name, dict(accountId=aid, **args))
    assert e["type"] == want, e


ALICE_USER = {}


def test_account_and_capability(srv):
    user = new_user(srv)
    aid = account(srv, user)
    extra = {"Mailbox/get": {}, "Mailbox/changes": {"sinceState": "1"}, "Mailbox/query": {},
             "Mailbox/queryChanges": {"sinceQueryState": "1"}, "Thread/get": {},
             "Thread/changes": {"sinceState": "1"}, "Email/changes": {"sinceState": "1"}}
    for name in extra:
        assert error(srv, user, name, dict(accountId="A999999", **extra[name])) == {
            "type": "accountNotFound"}
        assert error(srv, user, name, {})["type"] == "invalidArguments"
        # without the mail capability in "using": unknown
        n, a = call(srv, user, name, {"accountId": aid}, using=(CORE,))
        assert (n, a) == ("error", {"type": "unknownMethod"})


def append(m, mbox, msgid, date, refs=""):
    msg = ("From: <%s>\r\nSubject: t\r\nMessage-ID: <%s>\r\n%s\r\nBody.\r\n"
           % (SENDER, msgid, refs)).encode()
    typ, _ = m.append(mbox, None, imaplib.Time2Internaldate(date), msg)
    assert typ == "OK"


def threads(srv, user, aid, ids=None):
    r = ok(srv, user, "Thread/get", {"accountId": aid, "ids": ids})
    return r, {t["id"]: t["emailIds"] for t in r["list"]}


def test_threads(srv):
    user = new_user(srv)
    aid = account(srv, user)
    r, got = threads(srv, user, aid)
    assert got == {} and r["notFound"] == []
    state = r["state"]
    m = imap(srv, user)
    # the reply arrives first (an older date comes later): ordering is by date
    append(m, "INBOX", "a2@x", 1_700_000_200, "In-Reply-To: <a1@x>\r\n")
    append(m, "INBOX", "a1@x", 1_700_000_100)
    append(m, "INBOX", "b1@x", 1_700_000_300)
    append(m, "INBOX", "a3@x", 1_700_000_400, "References: <a1@x> <a2@x>\r\n")
    r, got = threads(srv, user, aid)
    assert sorted(len(v) for v in got.values()) == [1, 3]
    for v in got.values():
        for e in v:
            assert len(e) == 25 and e[0] == "E", e
    ta = next(t for t, v in got.items() if len(v) == 3)
    tb = next(t for t, v in got.items() if len(v) == 1)
    # a2 came first and named a1, which then joined a2's thread
    c = ok(srv, user, "Thread/changes", {"accountId": aid, "sinceState": state})
    assert sorted(c["created"]) == sorted([ta, tb])
    assert c["updated"] == [] and c["destroyed"] == [] and c["hasMoreChanges"] is False
    assert "updatedProperties" not in c
    state = c["newState"]
    # A copy is the same Email: the thread does not change.
    m.select("INBOX")
    m.uid("COPY", "1:4", "Archive")
    r2, got2 = threads(srv, user, aid)
    assert got2 == got
    c = ok(srv, user, "Thread/changes", {"accountId": aid, "sinceState": state})
    assert c["created"] == [] and c["updated"] == [] and c["destroyed"] == []
    # the mailbox counts did change: the two methods share one state
    assert c["newState"] != state
    state = c["newState"]
    # expunged everywhere: the thread is destroyed
    m.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.select("Archive")
    m.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
    m.expunge()
    c = ok(srv, user, "Thread/changes", {"accountId": aid, "sinceState": state})
    assert c["destroyed"] == [tb] and c["created"] == [] and c["updated"] == []
    # a reply joins thread a: updated
    state = c["newState"]
    append(m, "INBOX", "a4@x", 1_700_000_500, "In-Reply-To: <a3@x>\r\n")
    c = ok(srv, user, "Thread/changes", {"accountId": aid, "sinceState": state})
    assert c["updated"] == [ta] and c["created"] == [] and c["destroyed"] == []
    r, got = threads(srv, user, aid, [ta, tb, "T0", "bogus"])
    assert list(got) == [ta] and len(got[ta]) == 4
    assert r["notFound"] == [tb, "T0", "bogus"]
    r = ok(srv, user, "Thread/get", {"accountId": aid, "ids": [ta], "properties": ["id"]})
    assert r["list"] == [{"id": ta}]
    m.logout()
    # the mailbox counts know the threads too
    _, by_name = mailboxes(srv, user, aid)
    assert [by_name["INBOX"][k] for k in COUNTS] == [4, 4, 1, 1]


@pytest.mark.parametrize("args,want", [
    ({"ids": ["T%d" % i for i in range(501)]}, "requestTooLarge"),
    ({"properties": ["subject"]}, "invalidArguments"),
    ({"ids": None, "extra": 1}, "invalidArguments"),
])
def test_thread_get_errors(srv, args, want):
    user = ALICE_USER.get("u") or ALICE_USER.setdefault("u", new_user(srv))
    aid = account(srv, user)
    assert error(srv, user, "Thread/get", dict(accountId=aid, **args))["type"] == want


def test_email_changes(srv):
    user = new_user(srv)
    aid = account(srv, user)
    state = ok(srv, user, "Mailbox/get", {"accountId": aid, "ids": []})["state"]
    m = imap(srv, user)
    append(m, "INBOX", "e1@x", 1_700_000_100)
    append(m, "INBOX", "e2@x", 1_700_000_200)
    deliver(srv, user, "by smtp", "Message-ID: <e3@x>\r\n")

    def since(st, **kw):
        return ok(srv, user, "Email/changes", dict(accountId=aid, sinceState=st, **kw))

    c = since(state)
    assert len(c["created"]) == 3 and c["updated"] == [] and c["destroyed"] == []
    assert "updatedProperties" not in c
    # the same ids as the threads name
    _, got = threads(srv, user, aid)
    assert sorted(c["created"]) == sorted(e for v in got.values() for e in v)
    by_uid = {}
    m.select("INBOX")
    for uid in (1, 2, 3):
        state = c["newState"]
        # an IMAP flag change: that Email is updated, nothing else
        m.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
        c = since(state)
        assert c["created"] == [] and c["destroyed"] == [] and len(c["updated"]) == 1
        by_uid[uid] = c["updated"][0]
    assert sorted(by_uid.values()) == sorted(e for v in got.values() for e in v)
    # a keyword, a copy, an expunge of one copy: updated
    for act in (lambda: m.uid("STORE", "1", "+FLAGS", "(custom)"),
                lambda: m.uid("COPY", "1", "Archive"),
                lambda: (m.uid("STORE", "1", "+FLAGS", "(\\Deleted)"), m.expunge())):
        state = c["newState"]
        act()
        c = since(state)
        assert c["updated"] == [by_uid[1]] and c["created"] == [] and c["destroyed"] == []
    # expunged from its last mailbox: destroyed
    state = c["newState"]
    m.select("Archive")
    m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    c = since(state)
    assert c["destroyed"] == [by_uid[1]] and c["updated"] == [] and c["created"] == []
    # created and destroyed since: not mentioned (seen by a sync between)
    state = c["newState"]
    append(m, "Archive", "e4@x", 1_700_000_300)
    assert len(since(state)["created"]) == 1
    m.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)")
    m.expunge()
    c = since(state)
    assert c == {"accountId": aid, "oldState": state, "newState": c["newState"],
                 "hasMoreChanges": False, "created": [], "updated": [], "destroyed": []}
    # from the start: the two Emails left
    assert len(since("0")["created"]) == 2
    e = error(srv, user, "Email/changes", {"accountId": aid, "sinceState": "0",
                                           "maxChanges": 1})
    assert e["type"] == "cannotCalculateChanges"
    m.logout()
