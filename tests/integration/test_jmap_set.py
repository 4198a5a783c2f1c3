"""JMAP Mail changes (RFC 8621 2.5 Mailbox/set, 4.6 Email/set, 4.7
Email/copy, 4.8 Email/import; docs/jmap.md "Changing mail") against a
real server: exact responses, the IMAP view afterwards (LIST, SELECT,
FETCH FLAGS, UIDs) and the reverse, IDLE woken by a JMAP keyword change,
Mailbox/changes and Email/changes after each set, and the errors."""
import json
import re
import uuid

import pytest

from conftest import PASSWORD
from test_jmap_core import basic, request, upload
from test_jmap_mail import error, imap, ok

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
RIGHTS = {"mayReadItems": True, "mayAddItems": True, "mayRemoveItems": True,
          "maySetSeen": True, "maySetKeywords": True, "mayCreateChild": True,
          "mayRename": True, "mayDelete": True, "maySubmit": True}
NEW_MAILBOX = {"totalEmails": 0, "unreadEmails": 0, "totalThreads": 0, "unreadThreads": 0,
               "myRights": RIGHTS}


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"workers": 2, "allow_plaintext_loopback": "yes"})
    s.start()
    return s


def new_user(srv):
    user = "js%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    st, _, data = request(srv, "GET", "/jmap/session", auth=basic(user))
    assert st == 200
    return user, next(iter(json.loads(data)["accounts"]))


def calls(srv, user, methods, created_ids=None):
    req = {"using": [CORE, MAIL], "methodCalls": methods}
    if created_ids is not None:
        req["createdIds"] = created_ids
    st, _, data = request(srv, "POST", "/jmap/api/", body=json.dumps(req).encode(),
                          headers={"Content-Type": "application/json"}, auth=basic(user))
    assert st == 200, data
    return json.loads(data)


def boxes(srv, user, aid):
    r = ok(srv, user, "Mailbox/get", {"accountId": aid, "ids": None})
    return r["state"], {m["name"]: m for m in r["list"]}


def imap_list(m):
    typ, data = m.list()
    assert typ == "OK"
    return sorted(re.search(rb'"/" "?([^"]*)"?$', d).group(1).decode() for d in data)


def message(subject, extra=""):
    return ("From: <a@example.net>\r\nTo: <b@example.test>\r\nSubject: %s\r\n%s\r\n"
            "Hello.\r\n" % (subject, extra)).encode()


def upload_blob(srv, user, aid, data):
    st, _, body = upload(srv, data, "message/rfc822", aid=aid, auth=basic(user))
    assert st == 201, body
    return json.loads(body)["blobId"]


def import_one(srv, user, aid, data, mailbox_ids, blob=None, **extra):
    blob = blob or upload_blob(srv, user, aid, data)
    e = dict(blobId=blob, mailboxIds={m: True for m in mailbox_ids}, **extra)
    r = ok(srv, user, "Email/import", {"accountId": aid, "emails": {"k": e}})
    assert r["notCreated"] is None, r
    return r["created"]["k"], r


def email_get(srv, user, aid, eid, prop):
    r = ok(srv, user, "Email/get", {"accountId": aid, "ids": [eid], "properties": [prop]})
    assert r["notFound"] == [], r
    return r["list"][0][prop]


def flags_of(m, mailbox):
    typ, _ = m.select(mailbox)
    assert typ == "OK"
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    out = {}
    for d in data:
        if d is None:
            continue
        mm = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+)", d)
        if mm.group(1):
            uid, fl = mm.group(1), mm.group(2)
        else:
            uid, fl = mm.group(4), mm.group(3)
        # (\Recent is IMAP's own: this session is the first to see them)
        out[int(uid)] = sorted(f for f in fl.decode().split() if f != "\\Recent")
    return out


# ----------------------------------------------------------- Mailbox/set

def test_mailbox_create_update_destroy(srv):
    user, aid = new_user(srv)
    state, b = boxes(srv, user, aid)
    r = ok(srv, user, "Mailbox/set", {"accountId": aid, "create": {
        "p": {"name": "Projects", "isSubscribed": True},
        "c": {"name": "Tern", "parentId": "#p"}}})
    pid, cid = r["created"]["p"]["id"], r["created"]["c"]["id"]
    assert r == {"accountId": aid, "oldState": state, "newState": r["newState"],
                 "created": {
                     "p": dict(NEW_MAILBOX, id=pid, parentId=None, role=None, sortOrder=0),
                     "c": dict(NEW_MAILBOX, id=cid, role=None, sortOrder=0,
                               isSubscribed=False)},
                 "updated": None, "destroyed": None,
                 "notCreated": None, "notUpdated": None, "notDestroyed": None}
    assert int(r["newState"]) > int(state)
    ch = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state})
    assert sorted(ch["created"]) == sorted([pid, cid]) and ch["newState"] == r["newState"]
    state = r["newState"]
    # IMAP sees them at once
    m = imap(srv, user)
    assert "Projects" in imap_list(m) and "Projects/Tern" in imap_list(m)
    typ, data = m.lsub('""', '*')
    assert [d for d in data if b"Projects" in d] == [b'() "/" "Projects"']
    # rename and move: the IMAP name changes, the child follows
    r = ok(srv, user, "Mailbox/set", {"accountId": aid, "update": {
        pid: {"name": "Work"}}})
    assert r["updated"] == {pid: None} and r["notUpdated"] is None
    assert [n for n in imap_list(m) if n.startswith(("Work", "Projects"))] == [
        "Work", "Work/Tern"]
    typ, data = m.lsub('""', '*')
    assert [d for d in data if b"Work" in d or b"Projects" in d] == [b'() "/" "Work"']
    r = ok(srv, user, "Mailbox/set", {"accountId": aid, "update": {
        cid: {"parentId": None, "name": "Tern2", "isSubscribed": True}}})
    assert r["updated"] == {cid: None}
    assert [n for n in imap_list(m) if n.startswith(("Work", "Tern"))] == ["Tern2", "Work"]
    _, b = boxes(srv, user, aid)
    assert b["Tern2"]["id"] == cid and b["Tern2"]["parentId"] is None
    assert b["Tern2"]["isSubscribed"] is True
    ch = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state})
    assert sorted(ch["updated"]) == sorted([pid, cid]) and ch["updatedProperties"] is None
    state = ch["newState"]
    # destroy: with an Email only if onDestroyRemoveEmails
    assert m.append("Work", None, None, message("in work"))[0] == "OK"
    r = ok(srv, user, "Mailbox/set", {"accountId": aid, "destroy": [pid, cid]})
    assert r["destroyed"] == [cid]
    assert r["notDestroyed"] == {pid: {"type": "mailboxHasEmail"}}
    r = ok(srv, user, "Mailbox/set", {"accountId": aid, "destroy": [pid],
                                      "onDestroyRemoveEmails": True})
    assert r["destroyed"] == [pid] and r["notDestroyed"] is None
    assert not [n for n in imap_list(m) if n.startswith(("Work", "Tern"))]
    ch = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state})
    assert sorted(ch["destroyed"]) == sorted([pid, cid])
    m.logout()


def test_mailbox_set_imap_made_and_errors(srv):
    user, aid = new_user(srv)
    m = imap(srv, user)
    assert m.create("Lists/a")[0] == "OK"
    state, b = boxes(srv, user, aid)
    inbox, lists, sent = b["INBOX"]["id"], b["Lists"]["id"], b["Sent"]["id"]
    r = ok(srv, user, "Mailbox/set", {"accountId": aid, "create": {
        "dup": {"name": "a", "parentId": lists},
        "role": {"name": "Sent2", "role": "sent"},
        "badrole": {"name": "X", "role": "nonsense"},
        "noname": {"parentId": lists},
        "slash": {"name": "a/b"},
        "server": {"name": "Y", "totalEmails": 3},
        "order": {"name": "Z", "sortOrder": 5},
        "parent": {"name": "W", "parentId": "M99999"},
        "unknown": {"name": "V", "colour": "red"}},
        "update": {inbox: {"name": "Other"}, "M99999": {"name": "Q"},
                   lists: {"parentId": b["a"]["id"]}, sent: {"role": "trash"},
                   b["a"]["id"]: {"name/x": 1}},
        "destroy": [inbox, lists, "M99999"]})
    nc = r["notCreated"]
    assert nc["dup"] == {"type": "invalidProperties", "properties": ["name"],
                         "description": "a sibling mailbox has that name"}
    assert nc["role"]["type"] == "invalidProperties" and nc["role"]["properties"] == ["role"]
    assert nc["badrole"]["properties"] == ["role"]
    assert nc["noname"] == {"type": "invalidProperties", "properties": ["name"],
                            "description": "name is required"}
    assert nc["slash"]["properties"] == ["name"]
    assert nc["server"] == {"type": "invalidProperties", "properties": ["totalEmails"],
                            "description": "set by the server"}
    assert nc["order"]["properties"] == ["sortOrder"]
    assert nc["parent"] == {"type": "invalidProperties", "properties": ["parentId"],
                            "description": "no such mailbox"}
    assert nc["unknown"]["properties"] == ["colour"]
    nu = r["notUpdated"]
    assert nu[inbox] == {"type": "forbidden", "description": "INBOX cannot be renamed or moved"}
    assert nu["M99999"] == {"type": "notFound"}
    assert nu[lists] == {"type": "invalidProperties", "properties": ["parentId"],
                         "description": "a mailbox cannot be its own ancestor"}
    assert nu[sent]["properties"] == ["role"]
    assert nu[b["a"]["id"]]["type"] == "invalidPatch"
    assert r["notDestroyed"] == {inbox: {"type": "forbidden",
                                         "description": "INBOX cannot be destroyed"},
                                 lists: {"type": "mailboxHasChild"},
                                 "M99999": {"type": "notFound"}}
    assert r["created"] is None and r["updated"] is None and r["destroyed"] is None
    assert r["newState"] == state
    # nothing changed in IMAP
    assert imap_list(m) == ["Archive", "Drafts", "INBOX", "Junk", "Lists", "Lists/a", "Sent",
                            "Trash"]
    # a free role can be taken, and then it is the mailbox's
    assert m.delete("Archive")[0] == "OK"
    r = ok(srv, user, "Mailbox/set", {"accountId": aid, "create": {
        "ar": {"name": "Old mail", "role": "archive"}}})
    aid_ar = r["created"]["ar"]["id"]
    assert "role" not in r["created"]["ar"]
    _, b = boxes(srv, user, aid)
    assert b["Old mail"]["role"] == "archive" and b["Old mail"]["id"] == aid_ar
    typ, data = m.list('""', '"Old mail"')
    assert data == [b'(\\HasNoChildren \\Archive) "/" "Old mail"']
    # ifInState
    e = error(srv, user, "Mailbox/set", {"accountId": aid, "ifInState": state,
                                         "create": {"x": {"name": "x"}}})
    assert e == {"type": "stateMismatch"}
    e = error(srv, user, "Mailbox/set", {"accountId": aid, "create": []})
    assert e["type"] == "invalidArguments"
    e = error(srv, user, "Mailbox/set", {"accountId": "nope", "create": {}})
    assert e["type"] == "accountNotFound"
    e = error(srv, user, "Mailbox/set", {"accountId": aid, "frob": 1})
    assert e["type"] == "invalidArguments"
    e = error(srv, user, "Mailbox/set", {"accountId": aid,
                                         "destroy": ["M%d" % i for i in range(501)]})
    assert e["type"] == "requestTooLarge"
    m.logout()


def test_creation_ids_across_calls(srv):
    user, aid = new_user(srv)
    r = calls(srv, user, [
        ["Mailbox/set", {"accountId": aid, "create": {"top": {"name": "Top"}}}, "0"],
        ["Mailbox/set", {"accountId": aid, "create": {"sub": {"name": "Sub",
                                                              "parentId": "#top"}},
                         "update": {"#top": {"isSubscribed": True}}}, "1"],
    ], created_ids={})
    top = r["methodResponses"][0][1]["created"]["top"]["id"]
    sub = r["methodResponses"][1][1]["created"]["sub"]["id"]
    assert r["methodResponses"][1][1]["updated"] == {top: None}
    assert r["createdIds"] == {"top": top, "sub": sub}
    _, b = boxes(srv, user, aid)
    assert b["Sub"]["parentId"] == top and b["Top"]["isSubscribed"] is True


def test_creation_ids_mailbox_then_import_then_update(srv):
    user, aid = new_user(srv)
    blob = upload_blob(srv, user, aid, message("ref"))
    full = calls(srv, user, [
        ["Mailbox/set", {"accountId": aid, "create": {"mb": {"name": "Fresh"}}}, "0"],
        ["Email/import", {"accountId": aid, "emails": {
            "em": {"blobId": blob, "mailboxIds": {"#mb": True}}}}, "1"],
        ["Email/set", {"accountId": aid, "update": {"#em": {"keywords/$seen": True}},
                       "destroy": ["#nothing"]}, "2"],
    ])
    r = full["methodResponses"]
    mb = r[0][1]["created"]["mb"]["id"]
    em = r[1][1]["created"]["em"]["id"]
    assert r[2][1]["updated"] == {em: None}
    assert r[2][1]["notDestroyed"] == {"#nothing": {"type": "notFound"}}
    # (createdIds comes back only when the request had it, RFC 8620 3.4)
    assert sorted(full) == ["methodResponses", "sessionState"]
    m = imap(srv, user)
    assert flags_of(m, "Fresh") == {1: ["\\Seen"]}
    m.logout()
    _, b = boxes(srv, user, aid)
    assert b["Fresh"]["id"] == mb and b["Fresh"]["totalEmails"] == 1


# ------------------------------------------------------------- Email/set

def test_email_set_keywords_and_imap(srv):
    user, aid = new_user(srv)
    _, b = boxes(srv, user, aid)
    inbox = b["INBOX"]["id"]
    c, r = import_one(srv, user, aid, message("kw"), [inbox],
                      keywords={"$seen": True, "Work": True})
    eid = c["id"]
    m = imap(srv, user)
    assert flags_of(m, "INBOX") == {1: ["\\Seen", "work"]}
    state = r["newState"]
    # patch paths
    r = ok(srv, user, "Email/set", {"accountId": aid, "update": {eid: {
        "keywords/$flagged": True, "keywords/$seen": None, "keywords/work": None,
        "keywords/$x~1y": True}}})
    assert r == {"accountId": aid, "oldState": state, "newState": r["newState"],
                 "created": None, "updated": {eid: None}, "destroyed": None,
                 "notCreated": None, "notUpdated": None, "notDestroyed": None}
    assert flags_of(m, "INBOX") == {1: ["$x/y", "\\Flagged"]}
    assert email_get(srv, user, aid, eid, "keywords") == {"$flagged": True, "$x/y": True}
    ch = ok(srv, user, "Email/changes", {"accountId": aid, "sinceState": state})
    assert ch["updated"] == [eid] and ch["created"] == [] and ch["destroyed"] == []
    state = r["newState"]
    # \Deleted set over IMAP stays when JMAP replaces the keywords
    m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    r = ok(srv, user, "Email/set", {"accountId": aid, "update": {eid: {
        "keywords": {"$answered": True, "$Draft": True, "Label": True}}}})
    assert r["updated"] == {eid: None}
    assert flags_of(m, "INBOX") == {1: ["\\Answered", "\\Deleted", "\\Draft", "label"]}
    m.uid("STORE", "1", "-FLAGS", "(\\Deleted)")
    # a second copy (IMAP COPY): a JMAP change reaches both
    m.select("INBOX")
    assert m.uid("COPY", "1", "Archive")[0] == "OK"
    r = ok(srv, user, "Email/set", {"accountId": aid, "update": {eid: {
        "keywords/$seen": True}}})
    assert flags_of(m, "INBOX") == {1: ["\\Answered", "\\Draft", "\\Seen", "label"]}
    assert flags_of(m, "Archive") == {1: ["\\Answered", "\\Draft", "\\Seen", "label"]}
    # the reverse: a keyword set over IMAP on one copy is in the union
    m.select("Archive")
    m.uid("STORE", "1", "+FLAGS", "(Extra)")
    assert email_get(srv, user, aid, eid, "keywords") == {
        "$answered": True, "$draft": True, "$seen": True, "label": True, "extra": True}
    assert email_get(srv, user, aid, eid, "mailboxIds") == {inbox: True,
                                                           b["Archive"]["id"]: True}
    # errors
    r = ok(srv, user, "Email/set", {"accountId": aid, "update": {
        eid: {"keywords": {"a": True}, "keywords/b": True},
        "Eaaaaaaaaaaaaaaaaaaaaaaaa": {"keywords/$seen": True},
        "nope": {"keywords/$seen": True}}})
    assert r["notUpdated"] == {
        eid: {"type": "invalidPatch",
              "description": "a property and a path below it in one patch"},
        "Eaaaaaaaaaaaaaaaaaaaaaaaa": {"type": "notFound"}, "nope": {"type": "notFound"}}
    cases = [({"subject": "x"}, "invalidProperties"), ({"keywords/a b": True},
                                                       "invalidProperties"),
             ({"keywords/$seen": False}, "invalidProperties"),
             ({"keywords": {"$seen": False}}, "invalidProperties"),
             ({"keywords/a/b": True}, "invalidPatch"), ({"foo/bar": 1}, "invalidPatch"),
             ({"mailboxIds": {}}, "invalidProperties"),
             ({"mailboxIds": {"M99999": True}}, "invalidProperties"),
             ({"keywords/" + "k" * 255: True, "keywords/" + "j" * 255: True,
               "keywords/" + "l" * 255: True, "keywords/" + "m" * 255: True},
              "tooManyKeywords")]
    for patch, typ in cases:
        r = ok(srv, user, "Email/set", {"accountId": aid, "update": {eid: patch}})
        assert r["notUpdated"][eid]["type"] == typ, patch
    assert flags_of(m, "INBOX") == {1: ["\\Answered", "\\Draft", "\\Seen", "label"]}
    e = error(srv, user, "Email/set", {"accountId": aid, "ifInState": state, "update": {}})
    assert e == {"type": "stateMismatch"}
    m.logout()


def test_email_set_mailboxes_and_destroy(srv):
    user, aid = new_user(srv)
    _, b = boxes(srv, user, aid)
    inbox, archive, trash = b["INBOX"]["id"], b["Archive"]["id"], b["Trash"]["id"]
    c, r = import_one(srv, user, aid, message("move me"), [inbox])
    eid = c["id"]
    state = r["newState"]
    m = imap(srv, user)
    # add a mailbox (IMAP COPY of the file), then move (COPY + expunge)
    r = ok(srv, user, "Email/set", {"accountId": aid, "update": {eid: {
        "mailboxIds/" + archive: True}}})
    assert r["updated"] == {eid: None}
    assert flags_of(m, "Archive") == {1: []} and flags_of(m, "INBOX") == {1: []}
    ch = ok(srv, user, "Mailbox/changes", {"accountId": aid, "sinceState": state})
    assert ch["updated"] == [archive] and ch["updatedProperties"] == [
        "totalEmails", "unreadEmails", "totalThreads", "unreadThreads"]
    r = ok(srv, user, "Email/set", {"accountId": aid, "update": {eid: {
        "mailboxIds": {trash: True}}}})
    assert r["updated"] == {eid: None}
    assert flags_of(m, "Trash") == {1: []}
    assert flags_of(m, "INBOX") == {} and flags_of(m, "Archive") == {}
    assert email_get(srv, user, aid, eid, "mailboxIds") == {trash: True}
    _, b = boxes(srv, user, aid)
    assert [b[n]["totalEmails"] for n in ("INBOX", "Archive", "Trash")] == [0, 0, 1]
    # left in no mailbox: refused, nothing changes
    r = ok(srv, user, "Email/set", {"accountId": aid, "update": {eid: {
        "mailboxIds/" + trash: None}}})
    assert r["notUpdated"] == {eid: {"type": "invalidProperties",
                                     "properties": ["mailboxIds"],
                                     "description": "an Email is in at least one mailbox"}}
    assert flags_of(m, "Trash") == {1: []}
    # the reverse: an IMAP COPY shows as a mailbox of the Email
    m.select("Trash")
    m.uid("COPY", "1", "INBOX")
    state = ok(srv, user, "Email/changes", {"accountId": aid, "sinceState": state})["newState"]
    r = ok(srv, user, "Email/set", {"accountId": aid, "destroy": [eid, "Eaaaaaaaaaaaaaaaaaaaaaaaa"]})
    assert r["destroyed"] == [eid]
    assert r["notDestroyed"] == {"Eaaaaaaaaaaaaaaaaaaaaaaaa": {"type": "notFound"}}
    assert flags_of(m, "Trash") == {} and flags_of(m, "INBOX") == {}
    ch = ok(srv, user, "Email/changes", {"accountId": aid, "sinceState": state})
    assert ch["destroyed"] == [eid] and ch["updated"] == []
    r = ok(srv, user, "Email/set", {"accountId": aid, "destroy": [eid]})
    assert r["notDestroyed"] == {eid: {"type": "notFound"}}
    m.logout()


def fetch_body(m, mailbox, uid):
    m.select(mailbox)
    typ, d = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
    assert typ == "OK"
    return d[0][1]


def test_email_set_create_text(srv):
    user, aid = new_user(srv)
    state, b = boxes(srv, user, aid)
    drafts = b["Drafts"]["id"]
    r = ok(srv, user, "Email/set", {"accountId": aid, "create": {"d": {
        "mailboxIds": {drafts: True}, "keywords": {"$draft": True, "$seen": True},
        "from": [{"name": "Zoë Example", "email": "zoe@example.net"}],
        "to": [{"name": "Bob, Jr.", "email": "bob@example.test"},
               {"email": "carol@example.test"}],
        "subject": "Grüße aus Köln",
        "sentAt": "2024-05-06T07:08:09+02:00",
        "messageId": ["m1@example.net"],
        "header:X-Mailer:asText": "Tern test",
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "bodyValues": {"t": {"value": "H\u00e9llo\nw\u00f6rld = 1\n"}}}}})
    c = r["created"]["d"]
    assert r == {"accountId": aid, "oldState": state, "newState": r["newState"],
                 "created": {"d": {"id": c["id"], "blobId": "F" + c["id"][1:],
                                   "threadId": c["threadId"], "size": c["size"]}},
                 "updated": None, "destroyed": None, "notCreated": None,
                 "notUpdated": None, "notDestroyed": None}
    want = (b"From: =?UTF-8?B?Wm/DqyBFeGFtcGxl?= <zoe@example.net>\r\n"
            b'To: "Bob, Jr." <bob@example.test>, carol@example.test\r\n'
            b"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n"
            b"Date: Mon, 6 May 2024 07:08:09 +0200\r\n"
            b"Message-ID: <m1@example.net>\r\n"
            b"X-Mailer: Tern test\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n"
            b"\r\n"
            b"H=C3=A9llo\r\nw=C3=B6rld =3D 1\r\n")
    m = imap(srv, user)
    assert flags_of(m, "Drafts") == {1: ["\\Draft", "\\Seen"]}
    assert fetch_body(m, "Drafts", 1) == want
    assert c["size"] == len(want)
    ch = ok(srv, user, "Email/changes", {"accountId": aid, "sinceState": state})
    assert ch["created"] == [c["id"]]
    # Date and Message-ID made when not given; ASCII text stays 7bit
    r = ok(srv, user, "Email/set", {"accountId": aid, "create": {"e": {
        "mailboxIds": {drafts: True}, "from": [{"email": "me@example.org"}],
        "subject": "plain", "bodyValues": {"1": {"value": "hi\r\n", "isTruncated": False}},
        "textBody": [{"partId": "1"}]}}})
    assert r["notCreated"] is None
    got = fetch_body(m, "Drafts", 2)
    assert re.fullmatch(
        rb"From: me@example.org\r\nSubject: plain\r\n"
        rb"Date: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n"
        rb"Message-ID: <[0-9a-z]{24}@example.org>\r\nMIME-Version: 1.0\r\n"
        rb"Content-Type: text/plain; charset=utf-8\r\n"
        rb"Content-Transfer-Encoding: 7bit\r\n\r\nhi\r\n", got), got
    m.logout()


def test_email_set_create_folds_and_encodes(srv):
    import email
    import email.policy
    user, aid = new_user(srv)
    _, b = boxes(srv, user, aid)
    subject = " ".join("word%d" % i for i in range(40))
    long_word = "x" * 950
    text = "a" * 2000 + "\n--not a boundary\n.\ntrailing space \n" + "\u00e9" * 300 + "\n"
    r = ok(srv, user, "Email/set", {"accountId": aid, "create": {"d": {
        "mailboxIds": {b["Drafts"]["id"]: True}, "subject": subject,
        "header:X-Long:asText": long_word,
        "to": [{"name": "N%d" % i, "email": "n%d@example.test" % i} for i in range(20)],
        "textBody": [{"partId": "t"}], "bodyValues": {"t": {"value": text}}}}})
    assert r["notCreated"] is None, r
    m = imap(srv, user)
    raw = fetch_body(m, "Drafts", 1)
    m.logout()
    head, body = raw.split(b"\r\n\r\n", 1)
    assert max(len(x) for x in body.split(b"\r\n")) <= 76
    # (78 but for a field name and a first encoded word that fill more)
    assert max(len(x) for x in head.split(b"\r\n")) <= 80
    assert b"\n" not in raw.replace(b"\r\n", b"")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == subject
    assert msg["X-Long"] == long_word
    assert [a.addr_spec for a in msg["To"].addresses] == ["n%d@example.test" % i
                                                          for i in range(20)]
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content() == text.replace("\n", "\r\n")
    # no line of the encoded body starts a boundary or is a lone "."
    assert not [x for x in body.split(b"\r\n") if x.startswith(b"-") or x == b"."]


def test_email_set_create_multipart(srv):
    import email
    import email.policy
    user, aid = new_user(srv)
    _, b = boxes(srv, user, aid)
    pdf = bytes(range(256)) * 3
    blob = upload_blob(srv, user, aid, pdf)
    r = ok(srv, user, "Email/set", {"accountId": aid, "create": {"d": {
        "mailboxIds": {b["Drafts"]["id"]: True}, "subject": "with attachment",
        "textBody": [{"partId": "t"}], "htmlBody": [{"partId": "h"}],
        "attachments": [{"blobId": blob, "type": "application/pdf",
                         "name": "r\u00e9sum\u00e9.pdf"}],
        "bodyValues": {"t": {"value": "text"}, "h": {"value": "<p>html</p>"}}}}})
    assert r["notCreated"] is None, r
    m = imap(srv, user)
    raw = fetch_body(m, "Drafts", 1)
    m.logout()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    alt, att = msg.get_payload()
    assert alt.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alt.get_payload()] == ["text/plain", "text/html"]
    assert [p.get_content() for p in alt.get_payload()] == ["text", "<p>html</p>"]
    assert att.get_content_type() == "application/pdf"
    assert att["Content-Transfer-Encoding"] == "base64"
    assert att.get_filename() == "r\u00e9sum\u00e9.pdf"
    assert att.get_content() == pdf
    # bodyStructure, nested
    r = ok(srv, user, "Email/set", {"accountId": aid, "create": {"s": {
        "mailboxIds": {b["Drafts"]["id"]: True},
        "bodyStructure": {"type": "multipart/related", "subParts": [
            {"partId": "h", "type": "text/html"},
            {"blobId": blob, "type": "image/png", "cid": "img1@x", "disposition": "inline"}]},
        "bodyValues": {"h": {"value": "<img src=cid:img1@x>"}}}}})
    assert r["notCreated"] is None, r


def test_email_set_create_errors(srv):
    user, aid = new_user(srv)
    _, b = boxes(srv, user, aid)
    mb = {b["Drafts"]["id"]: True}
    body = {"textBody": [{"partId": "t"}], "bodyValues": {"t": {"value": "x"}}}
    cases = {
        "headers": ({"headers": [{"name": "X", "value": "y"}]}, ["headers"]),
        "content": ({"header:Content-Type": " text/plain"}, ["header:Content-Type"]),
        "twice": ({"subject": "a", "header:Subject:asText": "b"}, ["header:Subject:asText"]),
        "form": ({"header:From:asText": "x"}, ["header:From:asText"]),
        "addr": ({"from": [{"email": "a b@c"}]}, ["from"]),
        "server": ({"size": 5}, ["size"]),
        "unknown": ({"colour": 1}, ["colour"]),
        "inject": ({"header:X-A": " a\r\nBcc: x@y"}, ["header:X-A"]),
        "mb": ({"mailboxIds": {}}, ["mailboxIds"]),
    }
    create = {k: dict(dict(mailboxIds=mb, **body), **v[0]) for k, v in cases.items()}
    create["two"] = {"mailboxIds": mb, "textBody": [{"partId": "t"}, {"partId": "t"}],
                     "bodyValues": {"t": {"value": "x"}}}
    create["nopart"] = {"mailboxIds": mb, "textBody": [{"partId": "zz"}],
                        "bodyValues": {"t": {"value": "x"}}}
    create["both"] = dict(body, mailboxIds=mb, bodyStructure={"partId": "t"})
    create["trunc"] = {"mailboxIds": mb, "textBody": [{"partId": "t"}],
                       "bodyValues": {"t": {"value": "x", "isTruncated": True}}}
    create["blob"] = {"mailboxIds": mb, "attachments": [{"blobId": "G" + "1" * 64}]}
    r = ok(srv, user, "Email/set", {"accountId": aid, "create": create})
    nc = r["notCreated"]
    assert r["created"] is None and sorted(nc) == sorted(create)
    for k, (_, props) in cases.items():
        assert nc[k]["type"] == "invalidProperties" and nc[k]["properties"] == props, (k, nc[k])
    assert nc["two"]["properties"] == ["textBody"]
    assert nc["nopart"]["properties"] == ["textBody"]
    assert nc["both"]["properties"] == ["bodyStructure"]
    assert nc["trunc"]["properties"] == ["bodyValues"]
    assert nc["blob"] == {"type": "blobNotFound", "notFound": ["G" + "1" * 64]}
    m = imap(srv, user)
    assert flags_of(m, "Drafts") == {}
    m.logout()


def test_idle_wakes_on_jmap_keyword_change(srv):
    user, aid = new_user(srv)
    _, b = boxes(srv, user, aid)
    c, _ = import_one(srv, user, aid, message("idle"), [b["INBOX"]["id"]])
    m = imap(srv, user)
    m.select("INBOX")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+")
    ok(srv, user, "Email/set", {"accountId": aid, "update": {c["id"]: {
        "keywords/$flagged": True}}})
    assert m.readline() == b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n"
    m.send(b"DONE\r\n")
    assert m.readline().startswith(tag + b" OK")
    m.logout()


# ---------------------------------------------------------- Email/import

def test_email_import(srv):
    user, aid = new_user(srv)
    state, b = boxes(srv, user, aid)
    inbox, archive = b["INBOX"]["id"], b["Archive"]["id"]
    data = message("imported", "Message-ID: <imp1@example.net>\r\n"
                   "Received: from x by y; Tue, 1 Jul 2025 10:00:00 +0000\r\n")
    blob = upload_blob(srv, user, aid, data)
    r = ok(srv, user, "Email/import", {"accountId": aid, "emails": {
        "a": {"blobId": blob, "mailboxIds": {inbox: True, archive: True},
              "keywords": {"$seen": True, "$flagged": True}},
        "b": {"blobId": blob, "mailboxIds": {inbox: True},
              "receivedAt": "2024-02-29T12:34:56Z"}}})
    a, bb = r["created"]["a"], r["created"]["b"]
    assert r == {"accountId": aid, "oldState": state, "newState": r["newState"],
                 "created": {"a": {"id": a["id"], "blobId": "F" + a["id"][1:],
                                   "size": len(data), "threadId": a["threadId"]},
                             "b": {"id": bb["id"], "blobId": "F" + bb["id"][1:],
                                   "size": len(data), "threadId": bb["threadId"]}},
                 "notCreated": None}
    assert a["id"] != bb["id"] and a["id"].startswith("E") and a["threadId"].startswith("T")
    ch = ok(srv, user, "Email/changes", {"accountId": aid, "sinceState": state})
    assert sorted(ch["created"]) == sorted([a["id"], bb["id"]])
    th = ok(srv, user, "Thread/get", {"accountId": aid, "ids": [a["threadId"]]})
    assert a["id"] in th["list"][0]["emailIds"]
    m = imap(srv, user)
    assert flags_of(m, "INBOX") == {1: ["\\Flagged", "\\Seen"], 2: []}
    assert flags_of(m, "Archive") == {1: ["\\Flagged", "\\Seen"]}
    m.select("INBOX")
    typ, d = m.uid("FETCH", "1:2", "(INTERNALDATE BODY.PEEK[])")
    assert b'INTERNALDATE "01-Jul-2025 10:00:00 +0000"' in d[0][0]
    assert d[0][1] == data
    assert b'INTERNALDATE "29-Feb-2024 12:34:56 +0000"' in d[2][0]
    # an Email's own blob (F...) imports as another Email with the same bytes
    c2, _ = import_one(srv, user, aid, None, [archive], blob=a["blobId"])
    assert c2["id"] != a["id"] and c2["size"] == len(data)
    assert fetch_body(m, "Archive", 2) == data
    m.logout()
    # errors
    bad_lf = upload_blob(srv, user, aid, b"Subject: x\n\nbody\n")
    nul = upload_blob(srv, user, aid, b"Subject: x\r\n\r\nb\x00dy\r\n")
    nohdr = upload_blob(srv, user, aid, b"just text\r\n")
    r = ok(srv, user, "Email/import", {"accountId": aid, "emails": {
        "nf": {"blobId": "G" + "0" * 64, "mailboxIds": {inbox: True}},
        "lf": {"blobId": bad_lf, "mailboxIds": {inbox: True}},
        "nul": {"blobId": nul, "mailboxIds": {inbox: True}},
        "nh": {"blobId": nohdr, "mailboxIds": {inbox: True}},
        "nomb": {"blobId": blob, "mailboxIds": {}},
        "badmb": {"blobId": blob, "mailboxIds": {"M99999": True}},
        "kw": {"blobId": blob, "mailboxIds": {inbox: True}, "keywords": {"a b": True}},
        "date": {"blobId": blob, "mailboxIds": {inbox: True}, "receivedAt": "yesterday"},
        "prop": {"blobId": blob, "mailboxIds": {inbox: True}, "subject": "x"}}})
    nc = r["notCreated"]
    assert r["created"] is None
    assert nc["nf"] == {"type": "invalidProperties", "properties": ["blobId"],
                        "description": "no such blob"}
    assert nc["lf"] == {"type": "invalidEmail", "description":
                        "the message has a bare CR or LF (RFC 5322 lines end in CRLF)"}
    assert nc["nul"] == {"type": "invalidEmail", "description": "the message has a NUL octet"}
    assert nc["nh"]["type"] == "invalidEmail"
    for k, p in [("nomb", "mailboxIds"), ("badmb", "mailboxIds"), ("kw", "keywords"),
                 ("date", "receivedAt"), ("prop", "subject")]:
        assert nc[k]["type"] == "invalidProperties" and nc[k]["properties"] == [p], k
    e = error(srv, user, "Email/import", {"accountId": aid, "ifInState": state, "emails": {}})
    assert e == {"type": "stateMismatch"}
    e = error(srv, user, "Email/import", {"accountId": aid})
    assert e["type"] == "invalidArguments"


def test_email_import_over_quota(srv):
    user, aid = new_user(srv)
    srv.cli_ok("user", "quota", user, "none", "--messages", "2")
    _, b = boxes(srv, user, aid)
    inbox, archive = b["INBOX"]["id"], b["Archive"]["id"]
    blob = upload_blob(srv, user, aid, message("q"))
    r = ok(srv, user, "Email/import", {"accountId": aid, "emails": {
        "one": {"blobId": blob, "mailboxIds": {inbox: True}},
        "two": {"blobId": blob, "mailboxIds": {inbox: True, archive: True}}}})
    assert list(r["created"]) == ["one"]
    assert r["notCreated"] == {"two": {"type": "overQuota"}}
    m = imap(srv, user)
    assert flags_of(m, "INBOX") == {1: []} and flags_of(m, "Archive") == {}
    m.logout()


# ------------------------------------------------------------ Email/copy

def test_email_copy_has_no_other_account(srv):
    user, aid = new_user(srv)
    e = error(srv, user, "Email/copy", {"accountId": aid, "fromAccountId": aid,
                                        "create": {}})
    assert e == {"type": "invalidArguments",
                 "description": "fromAccountId must differ from accountId (RFC 8620 5.4)"}
    e = error(srv, user, "Email/copy", {"accountId": aid, "fromAccountId": "other",
                                        "create": {"x": {"id": "Eaaaaaaaaaaaaaaaaaaaaaaaa"}}})
    assert e == {"type": "fromAccountNotFound",
                 "description": "this server has no other account to copy from"}
    e = error(srv, user, "Email/copy", {"accountId": "other", "fromAccountId": aid,
                                        "create": {}})
    assert e["type"] == "accountNotFound"
