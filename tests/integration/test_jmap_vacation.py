"""JMAP VacationResponse (RFC 8621 8, docs/jmap.md "VacationResponse"):
VacationResponse/get and /set over HTTPS, and the reply delivery sends
for it through the Sieve vacation code (RFC 5230 rules and tracking):
mail sent with smtplib, replies found in the queue (DNS points at a dead
port, so they stay there) as in test_sieve_vacation.py."""

import base64
import email
import email.policy
import json
import re
import time
import uuid

import pytest

from conftest import PASSWORD
from test_jmap_core import basic, request
from test_jmap_mail import call as jmap_call
from test_sieve_vacation import inbox, message, queued, reply_fields, send

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
VAC = "urn:ietf:params:jmap:vacationresponse"
EMPTY = {"id": "singleton", "isEnabled": False, "fromDate": None, "toDate": None,
         "subject": None, "textBody": None, "htmlBody": None}


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"workers": 2, "allow_plaintext_loopback": "yes",
                  "dns.resolver": "127.0.0.1:9", "queue.timeout.dns": "30s"})
    s.start()
    return s


def new_user(srv, script=None):
    user = "jv%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    if script is not None:
        srv.cli_ok("sieve", "put", "--activate", user, "main", "-", input=script.encode())
    st, _, data = request(srv, "GET", "/jmap/session", auth=basic(user))
    assert st == 200
    return user, next(iter(json.loads(data)["accounts"]))


def call(srv, user, name, args, using=(CORE, VAC)):
    return jmap_call(srv, user, name, args, using)


def ok(srv, user, name, args):
    n, a = call(srv, user, name, args)
    assert n == name, a
    return a


def set_vacation(srv, user, aid, patch, state=None):
    args = {"accountId": aid, "update": {"singleton": patch}}
    if state is not None:
        args["ifInState"] = state
    r = ok(srv, user, "VacationResponse/set", args)
    assert r["updated"] == {"singleton": None}, r
    assert r["notUpdated"] is None
    return r


def utc(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def test_session_and_capability(srv):
    user, aid = new_user(srv)
    st, _, data = request(srv, "GET", "/jmap/session", auth=basic(user))
    s = json.loads(data)
    assert s["capabilities"][VAC] == {}
    assert s["accounts"][aid]["accountCapabilities"][VAC] == {}
    assert s["primaryAccounts"][VAC] == aid
    # without the capability in "using" the methods are unknown
    n, a = call(srv, user, "VacationResponse/get", {"accountId": aid}, using=(CORE, MAIL))
    assert (n, a["type"]) == ("error", "unknownMethod")


def test_get_default_and_not_found(srv):
    user, aid = new_user(srv)
    r = ok(srv, user, "VacationResponse/get", {"accountId": aid})
    assert r == {"accountId": aid, "state": "0", "list": [EMPTY], "notFound": []}
    r = ok(srv, user, "VacationResponse/get",
           {"accountId": aid, "ids": ["singleton", "other"], "properties": ["subject"]})
    assert r["list"] == [{"id": "singleton", "subject": None}]
    assert r["notFound"] == ["other"]
    r = ok(srv, user, "VacationResponse/get", {"accountId": aid, "ids": []})
    assert r["list"] == [] and r["notFound"] == []
    n, a = call(srv, user, "VacationResponse/get", {"accountId": "A999999"})
    assert (n, a["type"]) == ("error", "accountNotFound")
    n, a = call(srv, user, "VacationResponse/get", {"accountId": aid, "properties": ["x"]})
    assert (n, a["type"]) == ("error", "invalidArguments")


def test_set_then_get_and_errors(srv):
    user, aid = new_user(srv)
    patch = {"isEnabled": True, "fromDate": "2030-01-02T03:04:05Z",
             "toDate": "2030-02-01T00:00:00Z", "subject": "Away \u00e9t\u00e9",
             "textBody": "Back soon.\n", "htmlBody": "<p>Back soon.</p>"}
    r = set_vacation(srv, user, aid, patch, state="0")
    assert (r["oldState"], r["newState"]) == ("0", "1")
    assert r["created"] is None and r["destroyed"] is None
    got = ok(srv, user, "VacationResponse/get", {"accountId": aid, "ids": ["singleton"]})
    assert got["state"] == "1"
    assert got["list"] == [dict(EMPTY, **patch)]
    # an old state is a stateMismatch; nothing changes
    n, a = call(srv, user, "VacationResponse/set",
                {"accountId": aid, "ifInState": "0",
                 "update": {"singleton": {"isEnabled": False}}})
    assert (n, a["type"]) == ("error", "stateMismatch")
    # no second one, none destroyed, nothing else updated
    r = ok(srv, user, "VacationResponse/set",
           {"accountId": aid, "create": {"k": {"isEnabled": True}},
            "destroy": ["singleton", "x"], "update": {"other": {"subject": "x"}}})
    assert r["notCreated"]["k"]["type"] == "singleton"
    assert r["notDestroyed"]["singleton"]["type"] == "singleton"
    assert r["notDestroyed"]["x"]["type"] == "notFound"
    assert r["notUpdated"]["other"]["type"] == "notFound"
    assert r["oldState"] == r["newState"] == "1"
    for bad, prop in [({"fromDate": "2030-01-02T03:04:05+01:00"}, "fromDate"),
                      ({"toDate": "tomorrow"}, "toDate"),
                      ({"isEnabled": "yes"}, "isEnabled"),
                      ({"subject": "two\r\nlines"}, "subject"),
                      ({"textBody": 5}, "textBody"),
                      ({"htmlBody": "x" * 65537}, "htmlBody"),
                      ({"id": "singleton"}, "id"),
                      ({"color": "red"}, "color")]:
        r = ok(srv, user, "VacationResponse/set",
               {"accountId": aid, "update": {"singleton": dict(bad, isEnabled=False)
                                             if prop != "isEnabled" else bad}})
        e = r["notUpdated"]["singleton"]
        assert (e["type"], e["properties"]) == ("invalidProperties", [prop]), bad
        assert r["updated"] is None
    got = ok(srv, user, "VacationResponse/get", {"accountId": aid})
    assert got["state"] == "1" and got["list"][0]["isEnabled"] is True
    # back to null
    set_vacation(srv, user, aid, {"fromDate": None, "subject": None, "htmlBody": None})
    got = ok(srv, user, "VacationResponse/get", {"accountId": aid})["list"][0]
    assert (got["fromDate"], got["subject"], got["htmlBody"]) == (None, None, None)
    assert got["toDate"] == "2030-02-01T00:00:00Z"


def check_fields(fields, user, rcpt, subject, mid, ctype, cte):
    names = [f[0] for f in fields]
    assert names == [b"From", b"To", b"Subject", b"Date", b"Message-ID", b"In-Reply-To",
                     b"References", b"Auto-Submitted", b"MIME-Version", b"Content-Type",
                     b"Content-Transfer-Encoding"][:11 if cte else 10], fields
    d = dict(fields)
    assert d[b"From"] == user.encode()
    assert d[b"To"] == b"<%s>" % rcpt.encode()
    assert d[b"Subject"] == subject
    assert re.match(rb"<[0-9A-Za-z]+\.vacation@", d[b"Message-ID"]), d
    assert d[b"In-Reply-To"] == d[b"References"] == b"<%s>" % mid.encode()
    assert d[b"Auto-Submitted"] == b"auto-replied"
    assert d[b"MIME-Version"] == b"1.0"
    assert re.fullmatch(ctype, d[b"Content-Type"]), d
    if cte:
        assert d[b"Content-Transfer-Encoding"] == cte


def test_reply_over_smtp_once_not_to_lists(srv):
    user, aid = new_user(srv)
    set_vacation(srv, user, aid, {"isEnabled": True, "subject": "Out of office",
                                  "textBody": "I am away.\nBack on Monday."})
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(sender, user, "Lunch?")
    send(srv, sender, [user], msg)
    assert len(inbox(srv, user)) == 1  # the message is kept
    got = queued(srv, mid)
    assert len(got) == 1
    row, data = got[0]
    assert row["SENDER"] == "<>" and row["RCPT"] == sender
    fields, body = reply_fields(data)
    check_fields(fields, user, sender, b"Out of office", mid,
                 rb"text/plain; charset=utf-8", b"7bit")
    assert body == b"I am away.\r\nBack on Monday.\r\n"
    assert srv.wait_log(r"sieve id=\S+ to=<%s> action=vacation rcpt=<%s> result=sent"
                        % (re.escape(user), re.escape(sender)))
    # the same sender again: no second reply within the period
    mark = srv.log_mark()
    msg2, mid2 = message(sender, user, "Dinner?")
    send(srv, sender, [user], msg2)
    assert len(inbox(srv, user)) == 2
    assert queued(srv, mid2) == []
    assert srv.wait_log(r"action=vacation result=skipped reason=\"replied to <%s> within "
                        r"the period\"" % re.escape(sender), since=mark)
    # a list and an automated message get none
    for extra, why in [("List-Id: <news.example.org>\r\n", "mailing list"),
                       ("Precedence: bulk\r\n", "precedence bulk, list or junk"),
                       ("Auto-Submitted: auto-generated\r\n", "auto-submitted")]:
        other = "l%s@remote.example" % uuid.uuid4().hex[:8]
        msg3, mid3 = message(other, user, "News", extra)
        mark = srv.log_mark()
        send(srv, other, [user], msg3)
        assert srv.wait_log(r"to=<%s> action=vacation result=skipped reason=\"%s\""
                            % (re.escape(user), re.escape(why)), since=mark)
        assert queued(srv, mid3) == []
    # the user's own address gets none
    mark = srv.log_mark()
    msg4, mid4 = message(user, user, "Note to self")
    send(srv, user, [user], msg4)
    assert srv.wait_log(r"to=<%s> action=vacation result=skipped reason=\"sender is the "
                        r"user\"" % re.escape(user), since=mark)
    # disabled: no reply
    set_vacation(srv, user, aid, {"isEnabled": False})
    other = "d%s@remote.example" % uuid.uuid4().hex[:8]
    msg5, mid5 = message(other, user, "Hello")
    send(srv, other, [user], msg5)
    assert len(inbox(srv, user)) == 7
    assert queued(srv, mid5) == []


def test_dates(srv):
    user, aid = new_user(srv)
    now = time.time()
    set_vacation(srv, user, aid, {"isEnabled": True, "textBody": "Away.",
                                  "fromDate": utc(now + 3600)})
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(sender, user, "Early")
    send(srv, sender, [user], msg)
    assert len(inbox(srv, user)) == 1
    assert queued(srv, mid) == []
    set_vacation(srv, user, aid, {"fromDate": utc(now - 7200), "toDate": utc(now - 3600)})
    msg, mid = message(sender, user, "Late")
    send(srv, sender, [user], msg)
    assert len(inbox(srv, user)) == 2
    assert queued(srv, mid) == []
    set_vacation(srv, user, aid, {"toDate": utc(now + 3600)})
    msg, mid = message(sender, user, "In time")
    send(srv, sender, [user], msg)
    got = queued(srv, mid)
    assert len(got) == 1
    fields, body = reply_fields(got[0][1])
    check_fields(fields, user, sender, b"Auto: In time", mid, rb"text/plain; charset=utf-8",
                 b"7bit")
    assert body == b"Away.\r\n"


def test_html_and_utf8_bodies(srv):
    user, aid = new_user(srv)
    set_vacation(srv, user, aid, {"isEnabled": True, "subject": "Abwesend \u00fcber Ostern",
                                  "htmlBody": "<p>Gone <b>fishing</b> &amp; back</p>"})
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(sender, user, "Q")
    send(srv, sender, [user], msg)
    got = queued(srv, mid)
    assert len(got) == 1
    fields, body = reply_fields(got[0][1])
    check_fields(fields, user, sender,
                 b"=?UTF-8?B?" + base64.b64encode("Abwesend \u00fcber Ostern".encode())
                 + b"?=", mid, rb'multipart/alternative; boundary="=_tern_vacation_\w+"', None)
    m = email.message_from_bytes(got[0][1], policy=email.policy.default)
    parts = [(p.get_content_type(), p["Content-Transfer-Encoding"], p.get_content())
             for p in m.iter_parts()]
    assert parts == [("text/plain", "base64", "Gone fishing & back\n"),
                     ("text/html", "base64", "<p>Gone <b>fishing</b> &amp; back</p>")]
    # a UTF-8 text alone: one text/plain part, base64
    user2, aid2 = new_user(srv)
    set_vacation(srv, user2, aid2, {"isEnabled": True, "textBody": "Zur\u00fcck am Montag."})
    msg, mid = message(sender, user2, "Q2")
    send(srv, sender, [user2], msg)
    got = queued(srv, mid)
    assert len(got) == 1
    fields, body = reply_fields(got[0][1])
    check_fields(fields, user2, sender, b"Auto: Q2", mid, rb"text/plain; charset=utf-8",
                 b"base64")
    assert base64.b64decode(body) == "Zur\u00fcck am Montag.".encode()
    # both null: a default text
    user3, aid3 = new_user(srv)
    set_vacation(srv, user3, aid3, {"isEnabled": True})
    msg, mid = message(sender, user3, "Q3")
    send(srv, sender, [user3], msg)
    got = queued(srv, mid)
    assert len(got) == 1
    assert reply_fields(got[0][1])[1] == (b"This is an automated reply: I am away and will "
                                          b"read your message later.\r\n")


SCRIPT = 'require "vacation";\r\nvacation :subject "From my script" "Script reply.";\r\n'


def test_user_script_vacation_and_jmap(srv):
    user, aid = new_user(srv, SCRIPT)
    # off: the user's own script answers as before
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(sender, user, "One")
    send(srv, sender, [user], msg)
    got = queued(srv, mid)
    assert len(got) == 1
    assert dict(reply_fields(got[0][1])[0])[b"Subject"] == b"From my script"
    # on: the JMAP response answers, the script's vacation is skipped (one
    # reply per message), and the script's other actions still run
    set_vacation(srv, user, aid, {"isEnabled": True, "subject": "From JMAP",
                                  "textBody": "JMAP reply."})
    other = "o%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(other, user, "Two")
    mark = srv.log_mark()
    send(srv, other, [user], msg)
    got = queued(srv, mid)
    assert len(got) == 1
    fields, body = reply_fields(got[0][1])
    assert dict(fields)[b"Subject"] == b"From JMAP" and body == b"JMAP reply.\r\n"
    assert srv.wait_log(r"to=<%s> script=\"\(user\)\" action=vacation result=skipped "
                        r"reason=\"the JMAP VacationResponse is on\"" % re.escape(user),
                        since=mark)
    assert len(inbox(srv, user)) == 2
