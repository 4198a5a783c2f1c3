"""JMAP Identity (RFC 8621 6; docs/jmap.md "Submission") and `tern
identity` against a real server: the default identity, create / update /
destroy with exact responses, Identity/changes, the "may send as" rule
(own address, alias, catch-all "*@domain", refusals with forbiddenFrom),
the CLI's view of the same identities.  SMTP submission's side of the
same rule (store_may_send_as) is test_submission.py's."""
import uuid

import pytest

from test_jmap_mail import call as mail_call
from test_jmap_set import new_user

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"workers": 2, "allow_plaintext_loopback": "yes"})
    s.start()
    return s


def call(srv, user, name, args, using=(CORE, SUBMISSION)):
    return mail_call(srv, user, name, args, using=using)


def ok(srv, user, name, args):
    n, a = call(srv, user, name, args)
    assert n == name, a
    return a


def identities(srv, user, aid):
    r = ok(srv, user, "Identity/get", {"accountId": aid, "ids": None})
    return r["state"], r["list"]


def test_default_identity(srv):
    user, aid = new_user(srv)
    state, lst = identities(srv, user, aid)
    assert lst == [{"id": lst[0]["id"], "name": "", "email": user, "replyTo": None,
                    "bcc": None, "textSignature": "", "htmlSignature": "",
                    "mayDelete": False}]
    # the same default on every call, and it stays
    assert identities(srv, user, aid) == (state, lst)
    r = ok(srv, user, "Identity/set", {"accountId": aid, "destroy": [lst[0]["id"]]})
    assert r["notDestroyed"] == {lst[0]["id"]: {
        "type": "forbidden", "description": "the identity of the user's own address stays"}}
    assert r["oldState"] == r["newState"] == state
    assert identities(srv, user, aid)[1] == lst


def test_capability_needed(srv):
    user, aid = new_user(srv)
    n, a = call(srv, user, "Identity/get", {"accountId": aid}, using=(CORE, MAIL))
    assert (n, a["type"]) == ("error", "unknownMethod")


def test_create_update_destroy(srv):
    user, aid = new_user(srv)
    state0, lst = identities(srv, user, aid)
    default_id = lst[0]["id"]
    sig = "-- \nAda\nwww.example.test"
    r = ok(srv, user, "Identity/set", {"accountId": aid, "ifInState": state0, "create": {
        "a": {"name": "Ada Work", "email": user, "textSignature": sig,
              "htmlSignature": "<p>Ada</p>",
              "replyTo": [{"name": "Desk", "email": "desk@example.test"}],
              "bcc": [{"name": None, "email": "archive@example.net"}]}}})
    created = r["created"]["a"]
    iid = created["id"]
    assert created == {"id": iid, "mayDelete": True}
    assert r["oldState"] == state0 and r["newState"] != state0
    state1, lst = identities(srv, user, aid)
    assert state1 == r["newState"]
    assert lst[1] == {"id": iid, "name": "Ada Work", "email": user,
                      "replyTo": [{"name": "Desk", "email": "desk@example.test"}],
                      "bcc": [{"name": None, "email": "archive@example.net"}],
                      "textSignature": sig, "htmlSignature": "<p>Ada</p>",
                      "mayDelete": True}
    r = ok(srv, user, "Identity/changes", {"accountId": aid, "sinceState": state0})
    assert r == {"accountId": aid, "oldState": state0, "newState": state1,
                 "hasMoreChanges": False, "created": [iid], "updated": [],
                 "destroyed": []}

    # properties, ids, notFound
    r = ok(srv, user, "Identity/get", {"accountId": aid, "ids": [iid, "I999999"],
                                       "properties": ["textSignature"]})
    assert r["list"] == [{"id": iid, "textSignature": sig}]
    assert r["notFound"] == ["I999999"]

    # update: whole properties and a patch path; email is immutable
    r = ok(srv, user, "Identity/set", {"accountId": aid, "update": {
        iid: {"name": "Ada", "replyTo/0/name": "Front desk", "bcc": None},
        default_id: {"textSignature": "Regards"}}})
    assert r["updated"] == {iid: None, default_id: None}, r
    state2, lst = identities(srv, user, aid)
    assert lst[0]["textSignature"] == "Regards"
    assert lst[1]["name"] == "Ada" and lst[1]["bcc"] is None
    assert lst[1]["replyTo"] == [{"name": "Front desk", "email": "desk@example.test"}]
    r = ok(srv, user, "Identity/set", {"accountId": aid, "update": {
        iid: {"email": "other@example.test"}}})
    assert r["notUpdated"][iid]["type"] == "invalidProperties"
    assert r["notUpdated"][iid]["properties"] == ["email"]
    r = ok(srv, user, "Identity/set", {"accountId": aid, "update": {
        iid: {"replyTo/7/name": "x"}}})
    assert r["notUpdated"][iid]["type"] == "invalidPatch"
    r = ok(srv, user, "Identity/changes", {"accountId": aid, "sinceState": state1})
    assert (sorted(r["updated"]), r["created"], r["destroyed"]) == (
        sorted([iid, default_id]), [], [])

    # ifInState
    n, a = call(srv, user, "Identity/set", {"accountId": aid, "ifInState": state0,
                                            "destroy": [iid]})
    assert (n, a["type"]) == ("error", "stateMismatch")

    r = ok(srv, user, "Identity/set", {"accountId": aid, "destroy": [iid]})
    assert r["destroyed"] == [iid]
    state3, lst = identities(srv, user, aid)
    assert [i["id"] for i in lst] == [default_id]
    r = ok(srv, user, "Identity/changes", {"accountId": aid, "sinceState": state2})
    assert (r["created"], r["updated"], r["destroyed"], r["newState"]) == (
        [], [], [iid], state3)
    # created and destroyed since state0: not listed at all
    r = ok(srv, user, "Identity/changes", {"accountId": aid, "sinceState": state0})
    assert (r["created"], r["destroyed"], r["updated"]) == ([], [], [default_id])
    r = ok(srv, user, "Identity/set", {"accountId": aid, "destroy": [iid]})
    assert r["notDestroyed"] == {iid: {"type": "notFound"}}
    n, a = call(srv, user, "Identity/changes", {"accountId": aid, "sinceState": "99999999"})
    assert (n, a["type"]) == ("error", "cannotCalculateChanges")


def test_may_send_as(srv):
    user, aid = new_user(srv)
    other, _ = new_user(srv)
    alias = "alias%s@example.test" % uuid.uuid4().hex[:8]
    srv.cli_ok("alias", "add", alias, user)
    srv.cli_ok("domain", "add", "catch.example")
    srv.cli_ok("alias", "add", "@catch.example", user)
    r = ok(srv, user, "Identity/set", {"accountId": aid, "create": {
        "alias": {"email": alias, "name": "Alias"},
        "plus": {"email": user.replace("@", "+tag@")},
        "catch": {"email": "*@catch.example"},
        "someone": {"email": other},
        "remote": {"email": "ada@example.net"},
        "wild": {"email": "*@example.test"},
        "missing": {"name": "no email"},
        "server": {"email": user, "mayDelete": False},
        "big": {"email": user, "textSignature": "x" * (64 * 1024 + 1)}}})
    assert sorted(r["created"]) == ["alias", "catch", "plus"]
    forbidden = {"type": "forbiddenFrom",
                 "description": "the user may not send as that address (docs/jmap.md "
                                "\"Submission\")"}
    assert r["notCreated"]["someone"] == forbidden
    assert r["notCreated"]["remote"] == forbidden
    assert r["notCreated"]["wild"] == forbidden
    assert r["notCreated"]["missing"]["type"] == "invalidProperties"
    assert r["notCreated"]["missing"]["properties"] == ["email"]
    assert r["notCreated"]["server"]["properties"] == ["mayDelete"]
    assert r["notCreated"]["big"]["properties"] == ["textSignature"]
    lst = identities(srv, user, aid)[1]
    assert sorted(i["email"] for i in lst) == sorted(
        [user, alias, user.replace("@", "+tag@"), "*@catch.example"])


def test_cli(srv):
    user, aid = new_user(srv)
    other, _ = new_user(srv)
    state0 = identities(srv, user, aid)[0]
    r = srv.cli_ok("identity", "add", user, user, "--name", "Ada L",
                   "--reply-to", "desk@example.test", "--text-signature", "Ada\nLondon")
    out = r.stdout.decode()
    assert out.startswith("identity I") and out.endswith(" (%s) added for %s\n" % (user, user))
    iid = out.split()[1]
    state1, lst = identities(srv, user, aid)
    r = ok(srv, user, "Identity/changes", {"accountId": aid, "sinceState": state0})
    assert (r["created"], r["updated"], r["destroyed"], r["newState"]) == (
        [iid], [], [], state1)
    assert lst[1] == {"id": iid, "name": "Ada L", "email": user,
                      "replyTo": [{"name": None, "email": "desk@example.test"}],
                      "bcc": None, "textSignature": "Ada\nLondon", "htmlSignature": "",
                      "mayDelete": True}
    r = srv.cli_ok("identity", "list", user)
    assert r.stdout.decode() == (
        "%s\t%s\t-\t-\t-\n" % (lst[0]["id"], user) +
        "%s\t%s\tAda L\tdesk@example.test\t-\n" % (iid, user) +
        "    text signature:\n        Ada\n        London\n")
    r = srv.cli("identity", "add", user, other)
    assert r.returncode == 1
    assert r.stderr.decode() == ("tern: identity add: %s may not send as %s (not an address "
                                 "of the user)\n" % (user, other))
    r = srv.cli("identity", "remove", user, lst[0]["id"])
    assert r.returncode == 1
    assert b"own address" in r.stderr
    r = srv.cli_ok("identity", "remove", user, iid)
    assert r.stdout.decode() == "identity %s of %s removed\n" % (iid, user)
    assert [i["id"] for i in identities(srv, user, aid)[1]] == [lst[0]["id"]]
    r = srv.cli("identity", "remove", user, iid)
    assert r.returncode == 1
    assert r.stderr.decode() == "tern: identity remove: %s has no identity %s\n" % (user, iid)
    r = srv.cli("identity", "list", "nobody@example.test")
    assert r.returncode == 1

