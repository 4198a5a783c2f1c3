"""JMAP Core (RFC 8620, docs/jmap.md) over HTTPS against a real server:
the session resource and its redirect, HTTP Basic authentication, the API
endpoint (Core/echo, result references, createdIds, Blob/copy), every
request-level error as a problem details object, method-level errors,
limits, and blob upload/download.

Client: Python's http.client (Debian's python3, no extra package).
"""
import base64
import hashlib
import http.client
import json
import re
import socket
import ssl
import threading

import pytest

from conftest import HOST, HOSTNAME, PASSWORD, timeout
from test_http import ctx, port_of

CORE = "urn:ietf:params:jmap:core"
ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    s.set_config({"jmap.max_calls_in_request": "16", "jmap.max_size_request": "512K",
                  "jmap.max_size_upload": "1M", "workers": 2,
                  "auth.fail_delay_ms": "10", "auth.fail_delay_max_ms": "20"})
    s.start()
    return s


def basic(user=ALICE, password=PASSWORD):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def request(srv, method, path, body=None, headers=None, auth=True, https=True, host=HOSTNAME):
    if https:
        conn = http.client.HTTPSConnection(HOST, port_of(srv, "https.listen"), context=ctx(),
                                           timeout=timeout(10))
    else:
        conn = http.client.HTTPConnection(HOST, port_of(srv, "http.listen"), timeout=timeout(10))
    h = {"Host": "%s:%d" % (host, port_of(srv, "https.listen" if https else "http.listen"))}
    if auth is True:
        h["Authorization"] = basic()
    elif auth:
        h["Authorization"] = auth
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def api(srv, obj, raw=None, ctype="application/json", auth=True):
    body = raw if raw is not None else json.dumps(obj).encode()
    return request(srv, "POST", "/jmap/api/", body=body, headers={"Content-Type": ctype},
                   auth=auth)


def session(srv, user=ALICE):
    st, h, data = request(srv, "GET", "/jmap/session", auth=basic(user))
    assert st == 200, data
    assert h["content-type"] == "application/json"
    s = json.loads(data)
    s["primaryAccountsHelper"] = next(iter(s["accounts"]))
    return s


def problem(data, h, type_, status=400):
    assert h["content-type"] == "application/problem+json"
    p = json.loads(data)
    assert p["type"] == "urn:ietf:params:jmap:error:" + type_, p
    assert p["status"] == status
    assert isinstance(p["detail"], str) and p["detail"]
    return p


def test_well_known_redirects_to_session(srv):
    st, h, _ = request(srv, "GET", "/.well-known/jmap", auth=False)
    assert st == 307
    assert h["location"] == "/jmap/session"
    assert h["strict-transport-security"] == "max-age=31536000"


def test_session_object_exact(srv):
    st, h, data = request(srv, "GET", "/jmap/session")
    assert st == 200
    s = json.loads(data)
    aid = next(iter(s["accounts"]))
    assert re.fullmatch(r"A\d+", aid)
    base = "https://%s:%d" % (HOSTNAME, port_of(srv, "https.listen"))
    state = s.pop("state")
    assert re.fullmatch(r"[0-9a-f]{16}", state)
    mail = "urn:ietf:params:jmap:mail"
    vacation = "urn:ietf:params:jmap:vacationresponse"
    submission = "urn:ietf:params:jmap:submission"
    assert s == {
        "capabilities": {CORE: {
            "maxSizeUpload": 1048576, "maxConcurrentUpload": 4, "maxSizeRequest": 524288,
            "maxConcurrentRequests": 4, "maxCallsInRequest": 16, "maxObjectsInGet": 500,
            "maxObjectsInSet": 500,
            "collationAlgorithms": ["i;ascii-casemap", "i;octet", "i;unicode-casemap"]},
            mail: {}, vacation: {}, submission: {}},
        "accounts": {aid: {"name": ALICE, "isPersonal": True, "isReadOnly": False,
                           "accountCapabilities": {mail: {
                               "maxMailboxesPerEmail": None, "maxMailboxDepth": None,
                               "maxSizeMailboxName": 255,
                               # 25 MiB built at most: base64 of 57 bytes is 78
                               "maxSizeAttachmentsPerEmail": 25 * 1024 * 1024 // 78 * 57
                               - 1048576,
                               "emailQuerySortOptions": [
                                   "receivedAt", "size", "from", "to", "subject", "sentAt",
                                   "hasKeyword", "allInThreadHaveKeyword",
                                   "someInThreadHaveKeyword"],
                               "mayCreateTopLevelMailbox": True},
                               vacation: {},
                               submission: {"maxDelayedSend": 0,
                                            "submissionExtensions": {}}}}},
        "primaryAccounts": {mail: aid, vacation: aid, submission: aid},
        "username": ALICE,
        "apiUrl": base + "/jmap/api/",
        "downloadUrl": base + "/jmap/download/{accountId}/{blobId}/{name}?type={type}",
        "uploadUrl": base + "/jmap/upload/{accountId}/",
        "eventSourceUrl": base + "/jmap/eventsource/?types={types}&closeafter={closeafter}"
                                 "&ping={ping}",
    }
    # The same session again: the same state; another user: another one.
    assert json.loads(request(srv, "GET", "/jmap/session")[2])["state"] == state
    other = session(srv, BOB)
    assert other["state"] != state and other["username"] == BOB
    assert next(iter(other["accounts"])) != aid


def test_authentication_required_and_checked(srv):
    for auth in (False, basic(ALICE, "wrong"), basic("nobody@example.test"), "Bearer x",
                 "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()):
        st, h, data = request(srv, "GET", "/jmap/session", auth=auth)
        assert st == 401, auth
        assert h["www-authenticate"] == 'Basic realm="JMAP", charset="UTF-8"'
        assert h["content-type"] == "application/problem+json"
    st, _, _ = api(srv, {"using": [CORE], "methodCalls": []}, auth=basic(ALICE, "wrong"))
    assert st == 401
    assert srv.wait_log(r"jmap session=\S+ client=127.0.0.1 action=auth mech=PLAIN"
                        r" user=alice@example.test result=failed reason=credentials")


def test_plain_http_gets_no_jmap(srv):
    st, h, _ = request(srv, "POST", "/jmap/api/", body=b"{}", https=False)
    assert st == 301
    assert h["location"].startswith("https://")
    st, h, _ = request(srv, "GET", "/jmap/session", https=False)
    assert st == 301


def test_echo(srv):
    args = {"hello": True, "high": 5, "nested": {"a": ["x", None, 1.5]}, "u": "caf\u00e9"}
    st, h, data = api(srv, {"using": [CORE], "methodCalls": [["Core/echo", args, "c1"]]})
    assert st == 200 and h["content-type"] == "application/json"
    r = json.loads(data)
    assert r == {"methodResponses": [["Core/echo", args, "c1"]],
                 "sessionState": session(srv)["state"]}


def test_created_ids_round_trip(srv):
    st, _, data = api(srv, {"using": [CORE], "methodCalls": [["Core/echo", {}, "0"]],
                            "createdIds": {"k1": "Mabc"}})
    assert st == 200
    assert json.loads(data)["createdIds"] == {"k1": "Mabc"}


def test_result_references(srv):
    calls = [
        ["Core/echo", {"list": [{"id": "a", "t": ["x", "y"]}, {"id": "b", "t": ["z"]}],
                       "m": {"a/b": 1, "c~d": 2}}, "r1"],
        ["Core/echo", {"#ids": {"resultOf": "r1", "name": "Core/echo", "path": "/list/*/id"},
                       "#ts": {"resultOf": "r1", "name": "Core/echo", "path": "/list/*/t"},
                       "#first": {"resultOf": "r1", "name": "Core/echo", "path": "/list/0"},
                       "#esc": {"resultOf": "r1", "name": "Core/echo", "path": "/m/a~1b"},
                       "#tilde": {"resultOf": "r1", "name": "Core/echo", "path": "/m/c~0d"},
                       "#all": {"resultOf": "r1", "name": "Core/echo", "path": ""},
                       "plain": 1}, "r2"],
    ]
    st, _, data = api(srv, {"using": [CORE], "methodCalls": calls})
    assert st == 200
    r = json.loads(data)["methodResponses"]
    assert r[1] == ["Core/echo", {"ids": ["a", "b"], "ts": ["x", "y", "z"],
                                  "first": {"id": "a", "t": ["x", "y"]}, "esc": 1, "tilde": 2,
                                  "all": calls[0][1], "plain": 1}, "r2"]


@pytest.mark.parametrize("ref,why", [
    ({"resultOf": "nowhere", "name": "Core/echo", "path": "/a"}, "no earlier"),
    ({"resultOf": "r1", "name": "Other/name", "path": "/a"}, "another name"),
    ({"resultOf": "r1", "name": "Core/echo", "path": "/missing"}, "names nothing"),
    ({"resultOf": "r1", "name": "Core/echo", "path": "/a/5"}, "names nothing"),
    ({"resultOf": "r1", "name": "Core/echo", "path": "/a/01"}, "names nothing"),
    ({"resultOf": "r1", "name": "Core/echo", "path": "a"}, "names nothing"),
    ({"resultOf": "r1", "name": "Core/echo", "path": "/a/~2"}, "names nothing"),
    ({"resultOf": "r1", "name": "Core/echo"}, "resultOf, name and path"),
    ("notanobject", "resultOf, name and path"),
])
def test_result_reference_failures(srv, ref, why):
    calls = [["Core/echo", {"a": [1, 2]}, "r1"], ["Core/echo", {"#x": ref}, "r2"],
             ["Core/echo", {"after": 1}, "r3"]]
    st, _, data = api(srv, {"using": [CORE], "methodCalls": calls})
    assert st == 200
    r = json.loads(data)["methodResponses"]
    assert r[0] == ["Core/echo", {"a": [1, 2]}, "r1"]
    assert r[1][0] == "error" and r[1][2] == "r2"
    assert r[1][1]["type"] == "invalidResultReference"
    assert why in r[1][1]["description"]
    assert r[2] == ["Core/echo", {"after": 1}, "r3"]  # the others still run


def test_reference_and_plain_argument_is_invalid_arguments(srv):
    calls = [["Core/echo", {"a": 1}, "r1"],
             ["Core/echo", {"a": 2, "#a": {"resultOf": "r1", "name": "Core/echo",
                                            "path": "/a"}}, "r2"]]
    r = json.loads(api(srv, {"using": [CORE], "methodCalls": calls})[2])["methodResponses"]
    assert r[1] == ["error", {"type": "invalidArguments",
                              "description": "a given both plain and as a result reference"},
                    "r2"]


def test_unknown_method_and_method_outside_using(srv):
    calls = [["Foo/bar", {}, "x"], ["Core/echo", {}, "y"]]
    r = json.loads(api(srv, {"using": [CORE], "methodCalls": calls})[2])["methodResponses"]
    assert r == [["error", {"type": "unknownMethod"}, "x"], ["Core/echo", {}, "y"]]
    # Core/echo without the core capability in "using" is unknown (3.3).
    r = json.loads(api(srv, {"using": [], "methodCalls": [["Core/echo", {}, "z"]]})[2])
    assert r["methodResponses"] == [["error", {"type": "unknownMethod"}, "z"]]


def test_not_json(srv):
    for raw, ctype in ((b"{", "application/json"), (b'{"using": [] "x"}', "application/json"),
                       (b'{"a": 1, "a": 2}', "application/json"),  # I-JSON: no duplicates
                       (b'{"using": ["\xff"], "methodCalls": []}', "application/json"),
                       (b'{"using": ["\\ud800"], "methodCalls": []}', "application/json"),
                       (b'{"using": [], "methodCalls": []} x', "application/json"),
                       (b'{"using": [], "methodCalls": []}', "text/plain")):
        st, h, data = api(srv, None, raw=raw, ctype=ctype)
        assert st == 400, raw
        problem(data, h, "notJSON")


def test_not_request(srv):
    for obj in ([], "x", 5, {"methodCalls": []}, {"using": "core", "methodCalls": []},
                {"using": [CORE]}, {"using": [CORE], "methodCalls": [["Core/echo", {}]]},
                {"using": [CORE], "methodCalls": [["Core/echo", [], "c"]]},
                {"using": [CORE], "methodCalls": [[1, {}, "c"]]},
                {"using": [CORE], "methodCalls": [], "createdIds": {"a": 1}},
                {"using": [1], "methodCalls": []}):
        st, h, data = api(srv, obj)
        assert st == 400, obj
        problem(data, h, "notRequest")


def test_unknown_capability(srv):
    # Contacts are not served: not a capability of ours.
    st, h, data = api(srv, {"using": [CORE, "urn:ietf:params:jmap:contacts"],
                            "methodCalls": []})
    assert st == 400
    assert problem(data, h, "unknownCapability") == {
        "type": "urn:ietf:params:jmap:error:unknownCapability", "status": 400,
        "detail": "unknown capability urn:ietf:params:jmap:contacts"}


def test_too_many_calls(srv):
    calls = [["Core/echo", {}, str(i)] for i in range(17)]
    st, h, data = api(srv, {"using": [CORE], "methodCalls": calls})
    assert st == 400
    p = problem(data, h, "limit")
    assert p["limit"] == "maxCallsInRequest"
    assert api(srv, {"using": [CORE], "methodCalls": calls[:16]})[0] == 200


def test_ten_thousand_calls(srv):
    calls = [["Core/echo", {}, "c"]] * 10000
    st, h, data = api(srv, {"using": [CORE], "methodCalls": calls})
    assert st == 400
    p = problem(data, h, "limit")
    assert p == {"type": "urn:ietf:params:jmap:error:limit", "status": 400,
                 "limit": "maxCallsInRequest", "detail": "more than 16 method calls"}


def test_oversized_request(srv):
    body = json.dumps({"using": [CORE], "methodCalls": [["Core/echo", {"x": "y" * 600000},
                                                         "c"]]}).encode()
    st, h, data = api(srv, None, raw=body)
    assert st == 400
    assert json.loads(data) == {"type": "urn:ietf:params:jmap:error:limit", "status": 400,
                                "limit": "maxSizeRequest",
                                "detail": "the request is larger than 524288 bytes"}


def test_deep_json(srv):
    deep = b'{"using": [], "methodCalls": [["Core/echo", {"a": ' + b"[" * 1000 + b"]" * 1000 \
        + b'}, "c"]]}'
    st, h, data = api(srv, None, raw=deep)
    assert st == 400
    p = problem(data, h, "notJSON")
    assert p == {"type": "urn:ietf:params:jmap:error:notJSON", "status": 400,
                 "detail": "the request is not I-JSON: nested deeper than 64 levels"}
    # 60 levels are fine.
    ok = b'{"using": ["' + CORE.encode() + b'"], "methodCalls": [["Core/echo", {"a": ' \
        + b"[" * 60 + b"]" * 60 + b'}, "c"]]}'
    st, _, data = api(srv, None, raw=ok)
    assert st == 200, data


def test_bad_input_leaves_others_served(srv):
    """Bad requests on some connections while good ones go on."""
    bad = [b"\xff" * 100, b"[" * 5000, b'{"a":' * 3000, b"{" + b'"k": 1,' * 5000]
    errors = []

    def send_bad():
        for raw in bad * 3:
            st, _, _ = api(srv, None, raw=raw)
            if st != 400:
                errors.append(st)

    t = threading.Thread(target=send_bad)
    t.start()
    for i in range(5):
        st, _, data = api(srv, {"using": [CORE], "methodCalls": [["Core/echo", {"i": i}, "c"]]})
        assert st == 200
        assert json.loads(data)["methodResponses"] == [["Core/echo", {"i": i}, "c"]]
    t.join()
    assert errors == []
    srv.check_log()


def test_wrong_methods(srv):
    st, h, _ = request(srv, "GET", "/jmap/api/")
    assert st == 405 and h["allow"] == "POST"
    st, h, _ = request(srv, "POST", "/jmap/session", body=b"x")
    assert st == 405 and h["allow"] == "GET, HEAD"


def upload(srv, data, ctype="application/octet-stream", aid=None, auth=True):
    aid = aid or session(srv)["primaryAccountsHelper"]
    return request(srv, "POST", "/jmap/upload/%s/" % aid, body=data,
                   headers={"Content-Type": ctype}, auth=auth)


def test_upload_download_round_trip(srv):
    aid = session(srv)["primaryAccountsHelper"]
    data = bytes(range(256)) * 1000 + b"\r\n\x00end"
    st, h, body = upload(srv, data, "image/png")
    assert st == 201
    r = json.loads(body)
    blob = "G" + hashlib.sha256(data).hexdigest()
    assert r == {"accountId": aid, "blobId": blob, "type": "image/png", "size": len(data)}
    st, h, got = request(srv, "GET", "/jmap/download/%s/%s/caf%%C3%%A9%%20photo.png?type=image%%2Fpng"
                         % (aid, blob))
    assert st == 200
    assert got == data
    assert h["content-type"] == "image/png"
    assert h["content-disposition"] == "attachment; filename*=UTF-8''caf%C3%A9%20photo.png"
    assert h["cache-control"] == "private, immutable, max-age=31536000"
    st, h, got = request(srv, "GET", "/jmap/download/%s/%s/plain.bin" % (aid, blob))
    assert st == 200 and got == data
    assert h["content-type"] == "application/octet-stream"
    assert h["content-disposition"] == "attachment; filename=\"plain.bin\"; filename*=UTF-8''plain.bin"
    st, h, got = request(srv, "HEAD", "/jmap/download/%s/%s/plain.bin" % (aid, blob))
    assert st == 200 and got == b"" and h["content-length"] == str(len(data))
    # The same bytes again: the same blob.
    assert json.loads(upload(srv, data, "text/plain")[2])["blobId"] == blob
    # Stored once, byte for byte, under the account's folder.
    files = [p for p in srv.files_under("accounts") if p.endswith("/blob/" + blob)]
    assert len(files) == 1
    with open(files[0], "rb") as f:
        assert f.read() == data
    # An empty upload.
    st, _, body = upload(srv, b"")
    assert st == 201 and json.loads(body)["size"] == 0
    empty = json.loads(body)["blobId"]
    st, _, got = request(srv, "GET", "/jmap/download/%s/%s/e" % (aid, empty))
    assert st == 200 and got == b""


def test_blobs_are_private(srv):
    aid = session(srv)["primaryAccountsHelper"]
    st, _, body = upload(srv, b"alice's secret")
    blob = json.loads(body)["blobId"]
    bob = session(srv, BOB)["primaryAccountsHelper"]
    # Bob can neither use Alice's account id nor find her blob in his.
    st, h, _ = request(srv, "GET", "/jmap/download/%s/%s/x" % (aid, blob), auth=basic(BOB))
    assert st == 404 and h["content-type"] == "application/problem+json"
    st, _, _ = request(srv, "GET", "/jmap/download/%s/%s/x" % (bob, blob), auth=basic(BOB))
    assert st == 404
    st, _, _ = upload(srv, b"x", aid=aid, auth=basic(BOB))
    assert st == 404
    st, _, _ = request(srv, "GET", "/jmap/download/%s/%s/x" % (aid, "G" + "0" * 64))
    assert st == 404
    st, _, _ = request(srv, "GET", "/jmap/download/%s/nonsense/x" % aid)
    assert st == 404


def test_upload_too_large(srv):
    st, h, data = upload(srv, b"x" * (1048576 + 1))
    assert st == 413
    assert problem(data, h, "limit", 413)["limit"] == "maxSizeUpload"
    st, _, _ = upload(srv, b"x" * 1048576)
    assert st == 201
    # Far beyond every limit: evhttp's own 413 and close, before the body
    # is read whole (the client may see the close while still sending).
    try:
        st = upload(srv, b"x" * (4 * 1048576))[0]
    except (ssl.SSLError, ConnectionError):
        st = 413
    assert st == 413
    assert upload(srv, b"after")[0] == 201


def test_blob_copy(srv):
    aid = session(srv)["primaryAccountsHelper"]
    blob = json.loads(upload(srv, b"copy me")[2])["blobId"]
    missing = "G" + "1" * 64
    calls = [["Blob/copy", {"fromAccountId": aid, "accountId": aid,
                            "blobIds": [blob, missing, "bad id!"]}, "c1"],
             ["Blob/copy", {"fromAccountId": "A999999", "accountId": aid, "blobIds": []}, "c2"],
             ["Blob/copy", {"fromAccountId": aid, "accountId": "A999999", "blobIds": []}, "c3"],
             ["Blob/copy", {"fromAccountId": aid, "accountId": aid}, "c4"],
             ["Blob/copy", {"fromAccountId": aid, "accountId": aid, "blobIds": [],
                            "extra": 1}, "c5"]]
    r = json.loads(api(srv, {"using": [CORE], "methodCalls": calls})[2])["methodResponses"]
    assert r[0] == ["Blob/copy", {"fromAccountId": aid, "accountId": aid,
                                  "copied": {blob: blob},
                                  "notCopied": {missing: {"type": "blobNotFound"},
                                                "bad id!": {"type": "blobNotFound"}}}, "c1"]
    assert r[1] == ["error", {"type": "fromAccountNotFound"}, "c2"]
    assert r[2] == ["error", {"type": "accountNotFound"}, "c3"]
    assert r[3][0] == "error" and r[3][1]["type"] == "invalidArguments"
    assert r[4] == ["error", {"type": "invalidArguments",
                              "description": "unknown argument extra"}, "c5"]


def test_server_still_serving_after_everything(srv):
    st, _, data = api(srv, {"using": [CORE], "methodCalls": [["Core/echo", {"ok": 1}, "z"]]})
    assert st == 200
    assert srv.alive()
    srv.check_log()


def test_not_request_exact(srv):
    st, h, data = api(srv, {"using": [CORE]})
    assert json.loads(data) == {"type": "urn:ietf:params:jmap:error:notRequest", "status": 400,
                                "detail": "\"methodCalls\" must be an array of Invocations"}
    st, h, data = api(srv, None, raw=b"{", ctype="application/json")
    assert json.loads(data) == {"type": "urn:ietf:params:jmap:error:notJSON", "status": 400,
                                "detail": "the request is not I-JSON: string or '}' expected"
                                          " near end of file at byte 1"}


def test_loopback_dev_mode_over_plain_http(make_server):
    """allow_plaintext_loopback: JMAP on plain HTTP for loopback clients,
    as the mail ports allow password logins without TLS there."""
    s = make_server({"allow_plaintext_loopback": "yes"})
    st, _, data = request(s, "GET", "/jmap/session", https=False)
    assert st == 200
    base = "http://%s:%d" % (HOSTNAME, port_of(s, "http.listen"))
    assert json.loads(data)["apiUrl"] == base + "/jmap/api/"
    st, _, data = api_on(s, {"using": [CORE], "methodCalls": [["Core/echo", {"a": 1}, "c"]]},
                         https=False)
    assert st == 200
    assert json.loads(data)["methodResponses"] == [["Core/echo", {"a": 1}, "c"]]


def test_no_https_listener_is_403(make_server):
    s = make_server({"https.listen": ""})
    st, _, data = request(s, "GET", "/jmap/session", https=False)
    assert st == 403
    assert data == b"JMAP is served over HTTPS only\n"


def api_on(srv, obj, https=True):
    return request(srv, "POST", "/jmap/api/", body=json.dumps(obj).encode(),
                   headers={"Content-Type": "application/json"}, https=https)


def test_concurrent_requests_limit(make_server):
    """A fifth request of a user while four wait for their password
    check in the same worker: the limit error; after them, served."""
    s = make_server({"workers": 1, "log.level": "debug", "auth.fail_delay_ms": "1500",
                     "auth.fail_delay_max_ms": "1500", "auth.block_after": "0"})
    mark = s.log_mark()
    conns = []
    for _ in range(4):
        c = http.client.HTTPSConnection(HOST, port_of(s, "https.listen"), context=ctx(),
                                        timeout=timeout(10))
        c.request("GET", "/jmap/session", headers={"Authorization": basic(ALICE, "wrong")})
        conns.append(c)
    assert s.wait_log(r"action=auth_start user=alice@example.test requests=4", since=mark)
    st, h, data = request(s, "GET", "/jmap/session")
    assert st == 400
    assert json.loads(data) == {"type": "urn:ietf:params:jmap:error:limit", "status": 400,
                                "limit": "maxConcurrentRequests",
                                "detail": "too many requests of this account at once"}
    # Bob is not Alice.
    assert request(s, "GET", "/jmap/session", auth=basic(BOB))[0] == 200
    for c in conns:
        assert c.getresponse().status == 401
        c.close()
    assert request(s, "GET", "/jmap/session")[0] == 200


def test_client_gone_while_password_checked(make_server):
    """The client closes its connection while its request waits for the
    password check (and the failure delay): the answer goes nowhere and
    the server goes on."""
    s = make_server({"workers": 1, "log.level": "debug", "auth.fail_delay_ms": "500",
                     "auth.fail_delay_max_ms": "500"})
    for password in ("wrong", PASSWORD):
        mark = s.log_mark()
        c = http.client.HTTPSConnection(HOST, port_of(s, "https.listen"), context=ctx(),
                                        timeout=timeout(10))
        c.request("GET", "/jmap/session", headers={"Authorization": basic(ALICE, password)})
        assert s.wait_log(r"action=auth_start user=alice@example.test", since=mark)
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        assert s.wait_log(r"jmap session=\S+ .*action=auth mech=PLAIN user=alice@example.test"
                          r" result=(failed|ok)", since=mark, seconds=5)
    assert request(s, "GET", "/jmap/session")[0] == 200
    assert s.alive()
    s.check_log()


def test_head_sends_no_body_on_keep_alive(srv):
    """HEAD answers carry the length but no body, so the next answer on
    the same connection is read right (RFC 9110 9.3.2)."""
    aid = session(srv)["primaryAccountsHelper"]
    blob = json.loads(upload(srv, b"0123456789")[2])["blobId"]
    c = http.client.HTTPSConnection(HOST, port_of(srv, "https.listen"), context=ctx(),
                                    timeout=timeout(10))
    h = {"Authorization": basic()}
    for path, length in (("/jmap/download/%s/%s/n" % (aid, blob), "10"),
                         ("/jmap/session", None)):
        c.request("HEAD", path, headers=h)
        r = c.getresponse()
        assert r.status == 200 and r.read() == b""
        if length:
            assert r.getheader("content-length") == length
        c.request("GET", path, headers=h)
        r = c.getresponse()
        got = r.read()
        assert r.status == 200
        assert got == b"0123456789" or json.loads(got)["username"] == ALICE
    c.close()
