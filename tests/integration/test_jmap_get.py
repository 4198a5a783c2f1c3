"""JMAP Email/get, Email/parse and Email blobs (RFC 8621 4.1, 4.2, 4.9;
RFC 8620 6.2; docs/jmap.md "Email/get") against a real server: messages
APPENDed over IMAP or delivered over SMTP, the exact Email objects,
header forms, body parts and values, keywords changed over IMAP, the
bytes of downloads, Email/parse of uploads and of attached messages,
and large messages (10,000 parts, 100,000 header fields)."""
import base64
import json
import smtplib
import socket
import time
import urllib.parse
import uuid

import pytest

from conftest import HOST, PASSWORD, timeout
from test_jmap_core import basic, request
from test_jmap_mail import call, error as err, imap, ok  # noqa: F401 (helpers)

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
DEFAULT_BODY = ["partId", "blobId", "size", "name", "type", "charset", "disposition", "cid",
                "language", "location"]


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"workers": 2, "allow_plaintext_loopback": "yes",
                  "jmap.max_size_upload": "8M"})
    s.start()
    return s


def new_user(srv):
    user = "jg%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    st, _, data = request(srv, "GET", "/jmap/session", auth=basic(user))
    assert st == 200
    return user, next(iter(json.loads(data)["accounts"]))


def append(srv, user, msg, flags="", mailbox="INBOX",
           date='"07-Dec-2026 10:11:12 +0000"'):
    """APPENDs msg (bytes); returns (Email id, mailbox id)."""
    m = imap(srv, user)
    typ, _ = m.append(mailbox, flags or None, date, msg)
    assert typ == "OK"
    m.logout()
    return only_email(srv, user)


def only_email(srv, user):
    _, aid = srv._jg_users[user]
    r = ok(srv, user, "Email/get", {"accountId": aid, "ids": None, "properties": ["id"]})
    return [e["id"] for e in r["list"]]


def get(srv, user, aid, eid, props, **kw):
    args = {"accountId": aid, "ids": [eid], "properties": props}
    args.update(kw)
    r = ok(srv, user, "Email/get", args)
    assert r["notFound"] == [], r
    assert len(r["list"]) == 1
    return r["list"][0]


def download(srv, user, aid, blob, name="x", type_=None):
    path = "/jmap/download/%s/%s/%s" % (aid, blob, urllib.parse.quote(name))
    if type_:
        path += "?type=" + urllib.parse.quote(type_)
    return request(srv, "GET", path, auth=basic(user))


def upload(srv, user, aid, data, ctype="message/rfc822"):
    st, _, body = request(srv, "POST", "/jmap/upload/%s/" % aid, body=data,
                          headers={"Content-Type": ctype}, auth=basic(user))
    assert st == 201, body
    return json.loads(body)["blobId"]


@pytest.fixture
def user(srv):
    if not hasattr(srv, "_jg_users"):
        srv._jg_users = {}
    u, aid = new_user(srv)
    srv._jg_users[u] = (u, aid)
    return u, aid


def one(srv, user, msg, **kw):
    ids = append(srv, user, msg, **kw)
    assert len(ids) == 1
    return ids[0]


SIMPLE = (b"From: \"Alice Doe\" <alice@example.net>\r\n"
          b"To: bob@example.test, \"Carol\" <carol@example.test>\r\n"
          b"Subject: Hello there\r\n"
          b"Date: Mon, 7 Dec 2026 09:08:07 +0100\r\n"
          b"Message-ID: <m1@example.net>\r\n"
          b"\r\n"
          b"Hello Bob,\r\nhow are you?\r\n")


def test_email_get_default_properties_exact(srv, user):
    u, aid = user
    eid = one(srv, u, SIMPLE)
    r = ok(srv, u, "Email/get", {"accountId": aid, "ids": [eid, "Enope", "E" + "a" * 24]})
    assert r["notFound"] == ["Enope", "E" + "a" * 24]
    e = r["list"][0]
    fid = eid[1:]
    mbox = list(e["mailboxIds"])
    assert len(mbox) == 1 and mbox[0].startswith("M")
    assert e["threadId"].startswith("T")
    assert e == {
        "id": eid, "blobId": "F" + fid, "threadId": e["threadId"],
        "mailboxIds": {mbox[0]: True}, "keywords": {}, "size": len(SIMPLE),
        "receivedAt": "2026-12-07T10:11:12Z",
        "messageId": ["m1@example.net"], "inReplyTo": None, "references": None,
        "sender": None, "from": [{"name": "Alice Doe", "email": "alice@example.net"}],
        "to": [{"name": None, "email": "bob@example.test"},
               {"name": "Carol", "email": "carol@example.test"}],
        "cc": None, "bcc": None, "replyTo": None, "subject": "Hello there",
        "sentAt": "2026-12-07T09:08:07+01:00", "hasAttachment": False,
        "preview": "Hello Bob, how are you?", "bodyValues": {},
        "textBody": [{"partId": "1", "blobId": "F%s_1" % fid, "size": 26, "name": None,
                      "type": "text/plain", "charset": "us-ascii", "disposition": None,
                      "cid": None, "language": None, "location": None}],
        "htmlBody": [{"partId": "1", "blobId": "F%s_1" % fid, "size": 26, "name": None,
                      "type": "text/plain", "charset": "us-ascii", "disposition": None,
                      "cid": None, "language": None, "location": None}],
        "attachments": []}
    # the state is the account's one JMAP state
    assert r["state"].isdigit()


def test_download_message_and_part_bytes(srv, user):
    u, aid = user
    eid = one(srv, u, SIMPLE)
    st, h, data = download(srv, u, aid, "F" + eid[1:], "m.eml", "message/rfc822")
    assert st == 200 and data == SIMPLE
    assert h["content-type"] == "message/rfc822"
    assert h["content-disposition"] == 'attachment; filename="m.eml"; filename*=UTF-8\'\'m.eml'
    st, _, data = download(srv, u, aid, "F%s_1" % eid[1:])
    assert st == 200 and data == b"Hello Bob,\r\nhow are you?\r\n"
    for bad in ("F%s_2" % eid[1:], "F%s_0" % eid[1:], "F%s_1_" % eid[1:], "F" + "a" * 24,
                "F%s__1" % eid[1:]):
        st, _, _ = download(srv, u, aid, bad)
        assert st == 404, bad
    # Blob/copy knows these blobs (a user has one account: copied under the same id)
    blobs = ["F" + eid[1:], "F%s_1" % eid[1:], "F%s_9" % eid[1:]]
    n, a = call(srv, u, "Blob/copy", {"fromAccountId": aid, "accountId": aid,
                                      "blobIds": blobs})
    assert (n, a) == ("Blob/copy", {"fromAccountId": aid, "accountId": aid,
                                    "copied": {blobs[0]: blobs[0], blobs[1]: blobs[1]},
                                    "notCopied": {blobs[2]: {"type": "blobNotFound"}}})
    # another user cannot read it
    other, oaid = new_user(srv)
    st, _, _ = request(srv, "GET", "/jmap/download/%s/F%s/x" % (oaid, eid[1:]),
                       auth=basic(other))
    assert st == 404
    # expunged: gone
    m = imap(srv, u)
    m.select("INBOX")
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    m.logout()
    st, _, _ = download(srv, u, aid, "F" + eid[1:])
    assert st == 404
    r = ok(srv, u, "Email/get", {"accountId": aid, "ids": [eid], "properties": ["id"]})
    assert r["list"] == [] and r["notFound"] == [eid]


ALT = (b"From: a@example.net\r\nTo: b@example.test\r\nSubject: alt\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
       b"preamble\r\n--outer\r\n"
       b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
       b"--inner\r\n"
       b"Content-Type: text/plain; charset=iso-8859-1\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
       b"Gr=FC=DFe aus K=F6ln\r\n"
       b"--inner\r\n"
       b"Content-Type: text/html; charset=utf-8\r\n\r\n"
       b"<p>Gr\xc3\xbc\xc3\x9fe <b>aus</b> K\xc3\xb6ln</p>\r\n"
       b"--inner--\r\n"
       b"--outer\r\n"
       b"Content-Type: application/pdf; name=\"=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=\"\r\n"
       b"Content-Disposition: attachment\r\n"
       b"Content-Transfer-Encoding: base64\r\n"
       b"Content-ID: <pdf1@example.net>\r\n"
       b"Content-Language: en, de\r\n\r\n"
       + base64.encodebytes(b"%PDF-1.4 not really\n").replace(b"\n", b"\r\n") +
       b"--outer\r\n"
       b"Content-Type: image/png\r\n"
       b"Content-Disposition: inline; filename*=utf-8''p%C3%AFc.png\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n"
       + base64.encodebytes(b"\x89PNG fake").replace(b"\n", b"\r\n") +
       b"--outer--\r\n")


def test_multipart_alternative_attachments_exact(srv, user):
    u, aid = user
    eid = one(srv, u, ALT)
    fid = eid[1:]
    e = get(srv, u, aid, eid, ["bodyStructure", "textBody", "htmlBody", "attachments",
                               "hasAttachment", "preview", "bodyValues"],
            bodyProperties=["partId", "blobId", "size", "type", "charset", "name",
                            "disposition", "cid", "language", "subParts"],
            fetchAllBodyValues=True)

    def leaf(pid, size, type_, charset=None, name=None, disp=None, cid=None, lang=None):
        return {"partId": pid, "blobId": "F%s_%s" % (fid, pid.replace(".", "_")),
                "size": size, "type": type_, "charset": charset, "name": name,
                "disposition": disp, "cid": cid, "language": lang, "subParts": None}
    plain = leaf("1.1", 14, "text/plain", "iso-8859-1")
    html = leaf("1.2", 31, "text/html", "utf-8")
    pdf = leaf("2", 20, "application/pdf", None, "r\u00e9sum\u00e9.pdf", "attachment",
               "pdf1@example.net", ["en", "de"])
    png = leaf("3", 9, "image/png", None, "p\u00efc.png", "inline")
    multi = {"partId": None, "blobId": None, "charset": None, "name": None,
             "disposition": None, "cid": None, "language": None}
    # a multipart's size is that of its body (as the MIME parser, and IMAP's BODY[1],
    # end it: after the CRLF of its close delimiter)
    outer = len(ALT) - ALT.index(b"\r\n\r\n") - 4
    start = ALT.index(b"--inner\r\n")
    inner = ALT.index(b"--outer\r\nContent-Type: application/pdf") - start
    assert e["bodyStructure"] == dict(
        multi, type="multipart/mixed", size=outer,
        subParts=[dict(multi, type="multipart/alternative", size=inner,
                       subParts=[plain, html]), pdf, png])
    assert e["textBody"] == [plain, png]
    assert e["htmlBody"] == [html, png]
    assert e["attachments"] == [pdf]
    assert e["hasAttachment"] is True
    assert e["preview"] == "Gr\u00fc\u00dfe aus K\u00f6ln"
    assert e["bodyValues"] == {
        "1.1": {"value": "Gr\u00fc\u00dfe aus K\u00f6ln", "isEncodingProblem": False,
                "isTruncated": False},
        "1.2": {"value": "<p>Gr\u00fc\u00dfe <b>aus</b> K\u00f6ln</p>",
                "isEncodingProblem": False, "isTruncated": False}}
    # part blobs are the decoded contents
    st, _, data = download(srv, u, aid, "F%s_2" % fid)
    assert st == 200 and data == b"%PDF-1.4 not really\n"
    st, _, data = download(srv, u, aid, "F%s_1_1" % fid)
    assert st == 200 and data == b"Gr\xfc\xdfe aus K\xf6ln"
    # a multipart has no blob
    st, _, _ = download(srv, u, aid, "F%s_1" % fid)
    assert st == 404
    # header properties of parts
    e = get(srv, u, aid, eid, ["attachments"],
            bodyProperties=["partId", "header:Content-ID", "header:content-type:asRaw:all",
                            "header:Content-Language:asText"])
    assert e["attachments"] == [{
        "partId": "2", "header:Content-ID": " <pdf1@example.net>",
        "header:content-type:asRaw:all": [
            ' application/pdf; name="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="'],
        "header:Content-Language:asText": "en, de"}]
    # fetchTextBodyValues / fetchHTMLBodyValues pick their lists
    e = get(srv, u, aid, eid, ["bodyValues"], fetchTextBodyValues=True)
    assert list(e["bodyValues"]) == ["1.1"]
    e = get(srv, u, aid, eid, ["bodyValues"], fetchHTMLBodyValues=True)
    assert list(e["bodyValues"]) == ["1.2"]


def test_body_value_truncation_on_utf8_boundary(srv, user):
    u, aid = user
    eid = one(srv, u, ALT)
    # "Grüße" : G r ü(2) ß(2) e -> a cut at 4 octets must not split the ü/ß
    e = get(srv, u, aid, eid, ["bodyValues"], fetchAllBodyValues=True, maxBodyValueBytes=4)
    assert e["bodyValues"]["1.1"] == {"value": "Gr\u00fc", "isEncodingProblem": False,
                                      "isTruncated": True}
    # text/html is not cut inside a tag: "<p>Gr" fits in 5 octets, "<p>Grü" 7, the <b>
    # tag starts at 10
    e = get(srv, u, aid, eid, ["bodyValues"], fetchAllBodyValues=True, maxBodyValueBytes=12)
    assert e["bodyValues"]["1.2"] == {"value": "<p>Gr\u00fc\u00dfe ",
                                      "isEncodingProblem": False, "isTruncated": True}
    e = get(srv, u, aid, eid, ["bodyValues"], fetchAllBodyValues=True, maxBodyValueBytes=5)
    assert e["bodyValues"]["1.1"]["value"] == "Gr\u00fc"
    assert e["bodyValues"]["1.2"]["value"] == "<p>Gr"
    e = get(srv, u, aid, eid, ["bodyValues"], fetchAllBodyValues=True, maxBodyValueBytes=1000)
    assert e["bodyValues"]["1.1"]["isTruncated"] is False


BROKEN = (b"From: a@example.net\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
          b"--b\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
          b"caf\xe9\r\n"
          b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
          b"bad \xff\xfe utf-8\r\n"
          b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n"
          b"odd\r\n"
          b"--b--\r\n")


def test_broken_charsets_are_encoding_problems(srv, user):
    u, aid = user
    eid = one(srv, u, BROKEN)
    e = get(srv, u, aid, eid, ["bodyValues", "textBody"], fetchAllBodyValues=True,
            bodyProperties=["partId", "charset"])
    assert e["textBody"] == [{"partId": "1", "charset": "x-no-such-charset"},
                             {"partId": "2", "charset": "utf-8"},
                             {"partId": "3", "charset": "us-ascii"}]
    assert e["bodyValues"] == {
        "1": {"value": "caf\ufffd", "isEncodingProblem": True, "isTruncated": False},
        "2": {"value": "bad \ufffd\ufffd utf-8", "isEncodingProblem": True,
              "isTruncated": False},
        "3": {"value": "odd", "isEncodingProblem": True, "isTruncated": False}}


HEADERS = (b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.net>, (comment) plain@example.net\r\n"
           b"To: Friends: jane@example.com, =?UTF-8?Q?John_Sm=C3=AEth?=\r\n"
           b"  <john@example.com>;, \"  James Smythe\" <james@example.com>\r\n"
           b"Cc: undisclosed-recipients:;\r\n"
           b"Bcc: bob@example.test (Bob Smith)\r\n"
           b"Subject: =?iso-8859-1?q?Gr=FC=DFe?= from\r\n  K\xc3\xb6ln\r\n"
           b"Date: Tue, 1 Dec 2026 23:59:60 -0830 (odd zone)\r\n"
           b"Resent-Date: 2 Dec 26 10:00 EST\r\n"
           b"Message-ID: <a@b.example>\r\n"
           b"In-Reply-To: <x@y.example> (sent earlier) <z@y.example>\r\n"
           b"References: not an id\r\n"
           b"List-Post: <mailto:list@example.org>, (web)\r\n <https://example.org/post>\r\n"
           b"List-Help: NO\r\n"
           b"X-Custom: one\r\n"
           b"x-custom: =?utf-8?b?dHfDtg==?=\r\n"
           b"X-Bin: caf\xe9\r\n"
           b"\r\nbody\r\n")


def test_header_forms(srv, user):
    u, aid = user
    eid = one(srv, u, HEADERS)
    props = ["from", "to", "cc", "bcc", "subject", "sentAt", "messageId", "inReplyTo",
             "references", "header:To:asGroupedAddresses", "header:Cc:asGroupedAddresses",
             "header:Resent-Date:asDate", "header:List-Post:asURLs",
             "header:List-Help:asURLs", "header:X-CUSTOM", "header:x-custom:all",
             "header:X-Custom:asText:all", "header:X-Custom:asAddresses",
             "header:X-Bin", "header:Subject:asRaw", "header:X-Missing",
             "header:X-Missing:all", "header:From:asRaw:all"]
    e = get(srv, u, aid, eid, props)
    assert e == {
        "id": eid,
        "from": [{"name": "J\u00f6rg", "email": "joerg@example.net"},
                 {"name": None, "email": "plain@example.net"}],  # a comment before: no name
        "to": [{"name": None, "email": "jane@example.com"},
               {"name": "John Sm\u00eeth", "email": "john@example.com"},
               {"name": "James Smythe", "email": "james@example.com"}],
        "cc": [],
        "bcc": [{"name": "Bob Smith", "email": "bob@example.test"}],
        "subject": "Gr\u00fc\u00dfe from  K\u00f6ln",
        "sentAt": "2026-12-01T23:59:60-08:30",
        "messageId": ["a@b.example"],
        "inReplyTo": ["x@y.example", "z@y.example"],
        "references": None,
        "header:To:asGroupedAddresses": [
            {"name": "Friends", "addresses": [
                {"name": None, "email": "jane@example.com"},
                {"name": "John Sm\u00eeth", "email": "john@example.com"}]},
            {"name": None, "addresses": [{"name": "James Smythe",
                                          "email": "james@example.com"}]}],
        "header:Cc:asGroupedAddresses": [{"name": "undisclosed-recipients",
                                          "addresses": []}],
        "header:Resent-Date:asDate": "2026-12-02T10:00:00-05:00",
        "header:List-Post:asURLs": ["mailto:list@example.org", "https://example.org/post"],
        "header:List-Help:asURLs": None,
        "header:X-CUSTOM": " =?utf-8?b?dHfDtg==?=",
        "header:x-custom:all": [" one", " =?utf-8?b?dHfDtg==?="],
        "header:X-Custom:asText:all": ["one", "tw\u00f6"],
        "header:X-Custom:asAddresses": [{"name": None, "email": "=?utf-8?b?dHfDtg==?="}],
        "header:X-Bin": " caf\ufffd",
        "header:Subject:asRaw": " =?iso-8859-1?q?Gr=FC=DFe?= from\r\n  K\u00f6ln",
        "header:X-Missing": None,
        "header:X-Missing:all": [],
        "header:From:asRaw:all": [" =?utf-8?q?J=C3=B6rg?= <joerg@example.net>, (comment) "
                                  "plain@example.net"]}
    # headers: every field, in order, raw
    e = get(srv, u, aid, eid, ["headers"])
    assert [h["name"] for h in e["headers"]][:3] == ["From", "To", "Cc"]
    assert len(e["headers"]) == 15
    assert e["headers"][13] == {"name": "x-custom", "value": " =?utf-8?b?dHfDtg==?="}


@pytest.mark.parametrize("prop", [
    "header:From:asDate", "header:Subject:asAddresses", "header:Date:asText",
    "header:List-Post:asMessageIds", "header:To:asURLs", "header:X:asNothing",
    "header:X:all:asRaw", "header:", "header:A B", "header:X:asRaw:all:x", "nosuch",
    "header:Message-ID:asDate"])
def test_forbidden_header_forms_are_invalid_arguments(srv, user, prop):
    u, aid = user
    a = err(srv, u, "Email/get", {"accountId": aid, "ids": [], "properties": [prop]})
    assert a["type"] == "invalidArguments"


def test_bad_arguments(srv, user):
    u, aid = user
    for args in ({"ids": []}, {"accountId": aid, "ids": "x"},
                 {"accountId": aid, "ids": [], "bodyProperties": ["nosuch"]},
                 {"accountId": aid, "ids": [], "fetchAllBodyValues": 1},
                 {"accountId": aid, "ids": [], "maxBodyValueBytes": -1},
                 {"accountId": aid, "ids": [], "other": 1}):
        assert err(srv, u, "Email/get", args)["type"] == "invalidArguments", args
    assert err(srv, u, "Email/get", {"accountId": "Anope", "ids": []})["type"] == \
        "accountNotFound"
    assert err(srv, u, "Email/get", {"accountId": aid, "ids": ["E"] * 501})["type"] == \
        "requestTooLarge"
    assert err(srv, u, "Email/parse", {"accountId": aid})["type"] == "invalidArguments"


def test_keywords_follow_imap_store(srv, user):
    u, aid = user
    eid = one(srv, u, SIMPLE, flags="(\\Seen $Forwarded)")
    assert get(srv, u, aid, eid, ["keywords"])["keywords"] == {"$seen": True,
                                                              "$forwarded": True}
    m = imap(srv, u)
    m.select("INBOX")
    assert m.store("1", "+FLAGS", "(\\Flagged \\Answered \\Draft \\Deleted Junk)")[0] == "OK"
    assert m.store("1", "-FLAGS", "(\\Seen)")[0] == "OK"
    # a copy in another mailbox: mailboxIds has both, keywords are the union
    assert m.copy("1", "Archive")[0] == "OK"
    m.select("Archive")
    assert m.store("1", "+FLAGS", "(\\Seen)")[0] == "OK"
    m.logout()
    e = get(srv, u, aid, eid, ["keywords", "mailboxIds"])
    assert e["keywords"] == {"$flagged": True, "$answered": True, "$draft": True,
                             "$forwarded": True, "junk": True, "$seen": True}
    assert len(e["mailboxIds"]) == 2


def test_delivered_over_smtp(srv, user):
    u, aid = user
    msg = ("From: <sender@example.net>\r\nTo: %s\r\nSubject: via smtp\r\n"
           "Message-ID: <smtp1@example.net>\r\n\r\nHi.\r\n" % u)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.sendmail("sender@example.net", [u], msg.encode())
    ids = only_email(srv, u)
    assert len(ids) == 1
    e = get(srv, u, aid, ids[0], ["subject", "messageId", "size", "blobId", "preview"])
    assert e["subject"] == "via smtp" and e["messageId"] == ["smtp1@example.net"]
    st, _, data = download(srv, u, aid, e["blobId"])
    assert st == 200 and len(data) == e["size"]
    assert data.endswith(msg.encode())  # the server prepends its trace fields
    assert e["preview"] == "Hi."


NESTED = (b"From: a@example.net\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
          b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
          b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
          b"From: inner@example.org\r\nSubject: inner one\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=c\r\n\r\n"
          b"--c\r\nContent-Type: text/plain\r\n\r\ninner text\r\n"
          b"--c\r\nContent-Type: application/octet-stream\r\n"
          b"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
          b"--c--\r\n"
          b"--b--\r\n")


def test_nested_message_and_email_parse_of_part(srv, user):
    u, aid = user
    eid = one(srv, u, NESTED)
    fid = eid[1:]
    e = get(srv, u, aid, eid, ["attachments", "hasAttachment", "textBody"],
            bodyProperties=["partId", "blobId", "type", "size"])
    # the MIME parser ends the attached message after the CRLF of its own close
    # delimiter, as IMAP's BODY[2] shows it
    inner = (NESTED[NESTED.index(b"From: inner"):NESTED.index(b"--b--")])
    assert e["attachments"] == [{"partId": "2", "blobId": "F%s_2" % fid,
                                 "type": "message/rfc822", "size": len(inner)}]
    assert e["hasAttachment"] is True
    st, _, data = download(srv, u, aid, "F%s_2" % fid)
    assert st == 200 and data == inner
    r = ok(srv, u, "Email/parse", {"accountId": aid,
                                   "blobIds": ["F%s_2" % fid, "F%s_1" % fid, "Gnope"],
                                   "properties": ["id", "subject", "from", "textBody",
                                                  "attachments", "size", "blobId",
                                                  "mailboxIds"],
                                   "bodyProperties": ["partId", "blobId", "size"]})
    assert r == {"accountId": aid, "notFound": ["Gnope"], "notParsable": ["F%s_1" % fid],
                 "parsed": {"F%s_2" % fid: {
                     "id": None, "mailboxIds": None, "blobId": "F%s_2" % fid,
                     "size": len(inner), "subject": "inner one",
                     "from": [{"name": None, "email": "inner@example.org"}],
                     "textBody": [{"partId": "1", "blobId": "F%s_2_1" % fid, "size": 10}],
                     "attachments": [{"partId": "2", "blobId": "F%s_2_2" % fid,
                                      "size": 3}]}}}
    st, _, data = download(srv, u, aid, "F%s_2_2" % fid)
    assert st == 200 and data == b"\x00\x01\x02"


def test_email_parse_of_upload(srv, user):
    u, aid = user
    blob = upload(srv, u, aid, ALT)
    r = ok(srv, u, "Email/parse", {"accountId": aid, "blobIds": [blob],
                                   "fetchTextBodyValues": True})
    e = r["parsed"][blob]
    assert r["notFound"] is None and r["notParsable"] is None
    assert sorted(e) == sorted(["messageId", "inReplyTo", "references", "sender", "from",
                                "to", "cc", "bcc", "replyTo", "subject", "sentAt",
                                "hasAttachment", "preview", "bodyValues", "textBody",
                                "htmlBody", "attachments"])
    assert e["subject"] == "alt" and e["hasAttachment"] is True
    assert e["bodyValues"]["1.1"]["value"] == "Gr\u00fc\u00dfe aus K\u00f6ln"
    assert e["attachments"][0]["blobId"] == blob + "_2"
    st, _, data = download(srv, u, aid, blob + "_2")
    assert st == 200 and data == b"%PDF-1.4 not really\n"
    # not a message
    png = upload(srv, u, aid, b"\x89PNG\r\n\x1a\n", "image/png")
    r = ok(srv, u, "Email/parse", {"accountId": aid, "blobIds": [png]})
    assert r == {"accountId": aid, "parsed": None, "notParsable": [png], "notFound": None}


def test_huge_messages_are_bounded(srv, user):
    u, aid = user
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\np%d\r\n" % i
                     for i in range(10500))
    msg = (b"From: a@example.net\r\nSubject: many\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n")
    blob = upload(srv, u, aid, msg)
    t0 = time.monotonic()
    r = ok(srv, u, "Email/parse", {"accountId": aid, "blobIds": [blob],
                                   "properties": ["subject", "textBody", "preview"],
                                   "bodyProperties": ["partId"]})
    print("10500 parts: %.2f s" % (time.monotonic() - t0))
    e = r["parsed"][blob]
    assert e["subject"] == "many"
    # the MIME parser keeps at most 10,000 parts (one is the message)
    assert len(e["textBody"]) == 9999
    assert len(e["preview"]) <= 256
    fields = b"".join(b"X-F: %d\r\n" % i for i in range(100000))
    msg = b"From: a@example.net\r\nSubject: fields\r\n" + fields + b"\r\nbody\r\n"
    blob = upload(srv, u, aid, msg)
    t0 = time.monotonic()
    r = ok(srv, u, "Email/parse", {"accountId": aid, "blobIds": [blob],
                                   "properties": ["subject", "header:X-F",
                                                  "header:X-F:all"]})
    print("100000 fields: %.2f s" % (time.monotonic() - t0))
    e = r["parsed"][blob]
    assert e["subject"] == "fields"
    assert len(e["header:X-F:all"]) == 99998  # 100,000 fields per part are looked at
    assert e["header:X-F"] == " 99997"


def multiappend(srv, user, msgs):
    """One MULTIAPPEND (RFC 3502) of msgs with LITERAL+ literals."""
    with socket.create_connection((HOST, srv.imap_port), timeout=timeout(60)) as c:
        f = c.makefile("rb")
        f.readline()
        c.sendall(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), PASSWORD.encode()))
        while not f.readline().startswith(b"a "):
            pass
        cmd = b"b APPEND INBOX" + b"".join(b" {%d+}\r\n%s" % (len(m), m) for m in msgs)
        c.sendall(cmd + b"\r\n")
        line = f.readline()
        while not line.startswith(b"b "):
            line = f.readline()
        assert line.startswith(b"b OK"), line


def test_ids_null_gives_all_up_to_max_objects(srv, user):
    u, aid = user
    multiappend(srv, u, [b"Subject: n%d\r\n\r\nx\r\n" % i for i in range(500)])
    t0 = time.monotonic()
    r = ok(srv, u, "Email/get", {"accountId": aid, "ids": None, "properties": ["subject"]})
    assert sorted(e["subject"] for e in r["list"]) == sorted("n%d" % i for i in range(500))
    print("500 Emails, subject: %.2f s" % (time.monotonic() - t0))
    t0 = time.monotonic()
    r = ok(srv, u, "Email/get", {"accountId": aid, "ids": None})
    print("500 Emails, default properties: %.2f s" % (time.monotonic() - t0))
    assert len(r["list"]) == 500
    assert r["notFound"] == []
    multiappend(srv, u, [b"Subject: one more\r\n\r\nx\r\n"])
    a = err(srv, u, "Email/get", {"accountId": aid, "ids": None, "properties": ["id"]})
    assert a["type"] == "requestTooLarge"
