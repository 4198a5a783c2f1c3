"""JMAP EmailSubmission (RFC 8621 7; docs/jmap.md "Submission") against a
real server: a draft made by Email/set and sent in the same request
through creation references, onSuccessUpdateEmail moving it to Sent;
the message as a local recipient's IMAP sees it (Bcc gone, our Received
line, DKIM-Signature) and as a remote SMTP server (a sink the test runs,
reached through outbound.relay) receives it; deliveryStatus following
the queue; the refusals with their SetError types; /get, /changes,
/query, /queryChanges, update and destroy."""
import email
import imaplib
import json
import uuid

import pytest

from conftest import HOST, PASSWORD
from test_jmap_core import basic, request
from test_outbound import FakeSMTP, normal_reply

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    relay_port = s.port_base + 3
    s.set_config({"workers": 2, "allow_plaintext_loopback": "yes",
                  "outbound.relay": "%s:%d" % (HOST, relay_port)})
    s.sink = FakeSMTP(HOST, relay_port, lambda n, cmd: normal_reply(cmd))
    s.start()
    yield s
    s.sink.stop()


def new_user(srv):
    user = "es%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    st, _, data = request(srv, "GET", "/jmap/session", auth=basic(user))
    assert st == 200
    return user, next(iter(json.loads(data)["accounts"]))


def calls(srv, user, methods):
    req = {"using": [CORE, MAIL, SUBMISSION], "methodCalls": methods}
    st, _, data = request(srv, "POST", "/jmap/api/", body=json.dumps(req).encode(),
                          headers={"Content-Type": "application/json"}, auth=basic(user))
    assert st == 200, data
    return json.loads(data)["methodResponses"]


def ok(srv, user, name, args):
    r = calls(srv, user, [[name, args, "c"]])
    assert len(r) == 1 and r[0][0] == name, r
    return r[0][1]


def mailbox_roles(srv, user, aid):
    r = calls(srv, user, [["Mailbox/get", {"accountId": aid, "ids": None,
                                           "properties": ["role"]}, "m"],
                          ["Identity/get", {"accountId": aid, "ids": None}, "i"]])
    roles = {m["role"]: m["id"] for m in r[0][1]["list"]}
    return roles, r[1][1]["list"][0]["id"]


def draft(user, to, subject, **more):
    d = {"from": [{"name": "Ada", "email": user}], "to": [{"email": a} for a in to],
         "subject": subject, "textBody": [{"partId": "1", "type": "text/plain"}],
         "bodyValues": {"1": {"value": "Hello there.\n"}}}
    d.update(more)
    return d


def send(srv, user, aid, roles, ident, d, sub_extra=None, on_success=True):
    sub = {"identityId": ident, "emailId": "#d"}
    sub.update(sub_extra or {})
    args = {"accountId": aid, "create": {"s": sub}}
    if on_success:
        args["onSuccessUpdateEmail"] = {"#s": {
            "mailboxIds/" + roles["drafts"]: None, "mailboxIds/" + roles["sent"]: True,
            "keywords/$draft": None, "keywords/$seen": True}}
    d = dict(d, mailboxIds={roles["drafts"]: True}, keywords={"$draft": True})
    return calls(srv, user, [
        ["Email/set", {"accountId": aid, "create": {"d": d}}, "0"],
        ["EmailSubmission/set", args, "1"]])


def imap_fetch(srv, user):
    m = imaplib.IMAP4(HOST, srv.imap_port, timeout=10)
    m.login(user, PASSWORD)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    m.logout()
    return data[0][1]


def test_draft_sent_in_one_request_to_local_user(srv):
    user, aid = new_user(srv)
    rcpt, _ = new_user(srv)
    hidden, _ = new_user(srv)
    roles, ident = mailbox_roles(srv, user, aid)
    r = send(srv, user, aid, roles, ident,
             draft(user, [rcpt], "hello local", bcc=[{"email": hidden}]))
    assert [x[0] for x in r] == ["Email/set", "EmailSubmission/set", "Email/set"]
    assert [x[2] for x in r] == ["0", "1", "1"]
    eid = r[0][1]["created"]["d"]["id"]
    tid = r[0][1]["created"]["d"]["threadId"]
    created = r[1][1]["created"]["s"]
    sid = created["id"]
    assert created == {"id": sid, "threadId": tid, "sendAt": created["sendAt"],
                       "undoStatus": "final"}
    assert r[1][1]["notCreated"] is None
    assert r[2][1]["updated"] == {eid: None}
    # the draft is now in Sent, seen, no longer a draft
    g = ok(srv, user, "Email/get", {"accountId": aid, "ids": [eid],
                                    "properties": ["mailboxIds", "keywords"]})
    assert g["list"] == [{"id": eid, "mailboxIds": {roles["sent"]: True},
                          "keywords": {"$seen": True}}]
    # the recipient has it, without Bcc, with our trace and a signature
    for who in (rcpt, hidden):
        raw = imap_fetch(srv, who)
        msg = email.message_from_bytes(raw)
        assert msg["Subject"] == "hello local"
        assert msg["Bcc"] is None
        assert b"\r\nBcc:" not in raw and not raw.startswith(b"Bcc:")
        assert raw.startswith(b"Return-Path: <%s>\r\nReceived: by " % user.encode())
        assert b"(Tern) with JMAP id " in raw
        assert msg["DKIM-Signature"] is None  # local delivery: never signed
        assert msg["From"] == "Ada <%s>" % user
    # the envelope: identity's address; rcptTo To+Bcc, deduplicated
    g = ok(srv, user, "EmailSubmission/get", {"accountId": aid, "ids": [sid]})
    o = g["list"][0]
    assert o["envelope"] == {"mailFrom": {"email": user, "parameters": None},
                             "rcptTo": [{"email": rcpt, "parameters": None},
                                        {"email": hidden, "parameters": None}]}
    assert (o["identityId"], o["emailId"], o["threadId"], o["undoStatus"]) == (
        ident, eid, tid, "final")
    assert o["dsnBlobIds"] == [] and o["mdnBlobIds"] == []
    for a in (rcpt, hidden):
        st = o["deliveryStatus"][a]
        assert st["delivered"] == "yes" and st["displayed"] == "unknown"
        assert st["smtpReply"].startswith("250 2.0.0 Ok: queued as ")


def test_remote_recipient_through_queue(srv):
    user, aid = new_user(srv)
    roles, ident = mailbox_roles(srv, user, aid)
    before = len(srv.sink.messages)
    mark = srv.log_mark()
    r = send(srv, user, aid, roles, ident, draft(user, ["bob@remote.test"], "hello remote"),
             on_success=False)
    assert len(r) == 2, r
    sid = r[1][1]["created"]["s"]["id"]
    assert srv.wait_log(r"queue id=\d+ rcpt=<bob@remote.test> result=delivered",
                        seconds=20, since=mark)
    g = ok(srv, user, "EmailSubmission/get", {"accountId": aid, "ids": [sid],
                                              "properties": ["deliveryStatus"]})
    st = g["list"][0]["deliveryStatus"]["bob@remote.test"]
    assert st == {"smtpReply": "250 2.0.0 Ok: queued", "delivered": "yes",
                  "displayed": "unknown"}
    got = [m for _, m in srv.sink.messages[before:] if b"hello remote" in m]
    assert len(got) == 1
    msg = email.message_from_bytes(got[0])
    assert msg["DKIM-Signature"] is not None
    assert msg["Received"].startswith("by ")
    assert msg["Return-Path"] is None


def test_refusals(srv):
    user, aid = new_user(srv)
    roles, ident = mailbox_roles(srv, user, aid)

    def refused(d, extra=None):
        r = send(srv, user, aid, roles, ident, d, extra, on_success=False)
        assert len(r) == 2
        assert r[1][1]["created"] is None
        return r[1][1]["notCreated"]["s"]

    e = refused(draft("someone@elsewhere.test", [user], "forged"))
    assert e["type"] == "forbiddenFrom"
    e = refused(draft(user, [], "nobody"))
    assert e == {"type": "noRecipients", "description": "the envelope has no recipients"}
    e = refused(draft(user, ["nosuchuser@example.test"], "unknown"))
    assert e["type"] == "invalidRecipients"
    assert e["invalidRecipients"] == ["nosuchuser@example.test"]
    e = refused(draft(user, [user], "envelope"), {"envelope": {
        "mailFrom": {"email": "boss@elsewhere.test", "parameters": None},
        "rcptTo": [{"email": user, "parameters": None}]}})
    assert e["type"] == "forbiddenMailFrom"
    e = refused(draft(user, [user], "params"), {"envelope": {
        "mailFrom": {"email": user, "parameters": {"RET": "HDRS"}},
        "rcptTo": [{"email": user, "parameters": None}]}})
    assert (e["type"], e["properties"]) == ("invalidProperties", ["envelope"])
    e = refused(draft(user, [user], "later"), {"undoStatus": "pending"})
    assert (e["type"], e["properties"]) == ("invalidProperties", ["undoStatus"])
    r = ok(srv, user, "EmailSubmission/set", {"accountId": aid, "create": {
        "s": {"identityId": "I999999", "emailId": "Exxxxxxxxxxxxxxxxxxxxxxxx"}}})
    assert r["notCreated"]["s"]["properties"] == ["identityId"]
    assert ok(srv, user, "EmailSubmission/get", {"accountId": aid, "ids": None})["list"] == []


def test_changes_query_update_destroy(srv):
    user, aid = new_user(srv)
    rcpt, _ = new_user(srv)
    roles, ident = mailbox_roles(srv, user, aid)
    state0 = ok(srv, user, "EmailSubmission/get", {"accountId": aid, "ids": []})["state"]
    sids = []
    for subject in ("one", "two"):
        r = send(srv, user, aid, roles, ident, draft(user, [rcpt], subject), on_success=False)
        sids.append(r[1][1]["created"]["s"]["id"])
    r = ok(srv, user, "EmailSubmission/changes", {"accountId": aid, "sinceState": state0})
    state1 = r["newState"]
    assert r == {"accountId": aid, "oldState": state0, "newState": state1,
                 "hasMoreChanges": False, "created": sids, "updated": [], "destroyed": []}
    q = ok(srv, user, "EmailSubmission/query", {
        "accountId": aid, "sort": [{"property": "sentAt", "isAscending": True}],
        "calculateTotal": True})
    # (equal sendAt, to the second: then by id, the order they were made)
    assert q["ids"] == sids and q["total"] == 2 and q["position"] == 0
    q = ok(srv, user, "EmailSubmission/query", {"accountId": aid, "anchor": sids[1],
                                                "anchorOffset": -1, "limit": 1})
    assert (q["ids"], q["position"]) == ([sids[0]], 0)
    assert q["canCalculateChanges"] is False
    q = ok(srv, user, "EmailSubmission/query", {
        "accountId": aid, "filter": {"identityIds": [ident], "undoStatus": "final"},
        "position": 1})
    assert q["ids"] == [sids[1]]
    q = ok(srv, user, "EmailSubmission/query", {
        "accountId": aid, "filter": {"undoStatus": "pending"}})
    assert q["ids"] == []
    r = calls(srv, user, [["EmailSubmission/query", {"accountId": aid, "filter": {
        "subject": "x"}}, "c"]])
    assert r[0][0] == "error" and r[0][1]["type"] == "unsupportedFilter"
    r = calls(srv, user, [["EmailSubmission/queryChanges", {
        "accountId": aid, "sinceQueryState": q["queryState"]}, "c"]])
    assert r[0][0] == "error" and r[0][1]["type"] == "cannotCalculateChanges"
    # undo is impossible: sent at once
    r = ok(srv, user, "EmailSubmission/set", {"accountId": aid, "update": {
        sids[0]: {"undoStatus": "canceled"}}})
    assert r["notUpdated"][sids[0]]["type"] == "cannotUnsend"
    # destroy, with onSuccessDestroyEmail
    g = ok(srv, user, "EmailSubmission/get", {"accountId": aid, "ids": [sids[0]],
                                              "properties": ["emailId"]})
    eid = g["list"][0]["emailId"]
    r = calls(srv, user, [["EmailSubmission/set", {
        "accountId": aid, "ifInState": state1, "destroy": [sids[0]],
        "onSuccessDestroyEmail": [sids[0]]}, "c"]])
    assert [x[0] for x in r] == ["EmailSubmission/set", "Email/set"]
    assert r[0][1]["destroyed"] == [sids[0]]
    assert r[0][1]["oldState"] == state1
    assert r[1][1]["destroyed"] == [eid]
    r = ok(srv, user, "EmailSubmission/changes", {"accountId": aid, "sinceState": state1})
    assert (r["created"], r["updated"], r["destroyed"]) == ([], [], [sids[0]])
    g = ok(srv, user, "EmailSubmission/get", {"accountId": aid, "ids": sids})
    assert [o["id"] for o in g["list"]] == [sids[1]] and g["notFound"] == [sids[0]]
    r = calls(srv, user, [["EmailSubmission/set", {"accountId": aid, "ifInState": state1,
                                                   "destroy": [sids[1]]}, "c"]])
    assert r[0][0] == "error" and r[0][1]["type"] == "stateMismatch"


def test_session_advertises_submission(srv):
    user, aid = new_user(srv)
    st, _, data = request(srv, "GET", "/jmap/session", auth=basic(user))
    s = json.loads(data)
    assert s["capabilities"][SUBMISSION] == {}
    assert s["accounts"][aid]["accountCapabilities"][SUBMISSION] == {
        "maxDelayedSend": 0, "submissionExtensions": {}}
    assert s["primaryAccounts"][SUBMISSION] == aid


def test_capability_needed(srv):
    user, aid = new_user(srv)
    req = {"using": [CORE, MAIL], "methodCalls": [
        ["EmailSubmission/get", {"accountId": aid}, "c"]]}
    st, _, data = request(srv, "POST", "/jmap/api/", body=json.dumps(req).encode(),
                          headers={"Content-Type": "application/json"}, auth=basic(user))
    r = json.loads(data)["methodResponses"]
    assert r[0][0] == "error" and r[0][1]["type"] == "unknownMethod"
