"""The JMAP credential cache (jmap.auth_cache_ttl, docs/jmap.md
"Authentication"): a second request with the same HTTP Basic credentials
runs no password check (asserted through the log: one checked login, then
cached ones); a wrong password is never cached and still checked and
delayed; `tern user passwd` and `tern user app-password revoke` end a
cached login at the very next request; jmap.auth_cache_ttl = 0 checks
every request.  One worker, so every request meets the same cache."""
import re
import uuid

from conftest import PASSWORD
from test_app_passwords import add_app
from test_jmap_core import basic, request

CHECKED = r"jmap session=\S+ client=127.0.0.1 action=auth mech=PLAIN user=%s result=%s"
CACHED = r"jmap id=\S+ client=127.0.0.1 action=auth result=ok cached=yes user=%s"


def new_user(srv):
    user = "jc%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    return user


def count(srv, pattern, since):
    return len([l for l in srv.log()[since:].splitlines() if re.search(pattern, l)])


def get_session(srv, user, password):
    return request(srv, "GET", "/jmap/session", auth=basic(user, password))[0]


def make(make_server, ttl=None):
    conf = {"workers": 1, "auth.fail_delay_ms": "10", "auth.fail_delay_max_ms": "20",
            "auth.block_after": "0"}
    if ttl is not None:
        conf["jmap.auth_cache_ttl"] = ttl
    return make_server(conf)


def test_second_request_skips_the_check(make_server):
    s = make(make_server)
    user = new_user(s)
    u = re.escape(user)
    mark = s.log_mark()
    assert get_session(s, user, PASSWORD) == 200
    assert s.wait_log(CHECKED % (u, "ok"), since=mark)
    for _ in range(3):
        assert get_session(s, user, PASSWORD) == 200
    assert s.wait_log(CACHED % u, since=mark, count=3)
    assert count(s, CHECKED % (u, r"\S+"), mark) == 1
    # The user name is lower-cased first: another case is the same login.
    mark = s.log_mark()
    assert get_session(s, user.upper(), PASSWORD) == 200
    assert s.wait_log(CACHED % u, since=mark)
    # A wrong password is checked (and fails) every time: never cached.
    mark = s.log_mark()
    for _ in range(2):
        assert get_session(s, user, "wrong") == 401
    assert s.wait_log(CHECKED % (u, "failed"), since=mark, count=2)
    assert count(s, CACHED % u, mark) == 0
    # The right one is still cached.
    mark = s.log_mark()
    assert get_session(s, user, PASSWORD) == 200
    assert s.wait_log(CACHED % u, since=mark)
    s.check_log()


def test_password_change_ends_cached_login(make_server):
    s = make(make_server)
    user = new_user(s)
    u = re.escape(user)
    assert get_session(s, user, PASSWORD) == 200
    mark = s.log_mark()
    assert get_session(s, user, PASSWORD) == 200
    assert s.wait_log(CACHED % u, since=mark)
    s.cli_ok("user", "passwd", user, "--password", "new-" + PASSWORD)
    mark = s.log_mark()
    assert get_session(s, user, PASSWORD) == 401
    assert s.wait_log(r"action=auth_cache_drop user=%s reason=credentials_changed" % u,
                      since=mark)
    assert s.wait_log(CHECKED % (u, "failed"), since=mark)
    # The new password: checked once, then cached.
    mark = s.log_mark()
    assert get_session(s, user, "new-" + PASSWORD) == 200
    assert get_session(s, user, "new-" + PASSWORD) == 200
    assert s.wait_log(CACHED % u, since=mark)
    assert count(s, CHECKED % (u, "ok"), mark) == 1
    # Setting the same password again makes a new hash (a new salt): the
    # cached login is checked again, and passes.
    s.cli_ok("user", "passwd", user, "--password", "new-" + PASSWORD)
    mark = s.log_mark()
    assert get_session(s, user, "new-" + PASSWORD) == 200
    assert s.wait_log(CHECKED % (u, "ok"), since=mark)
    s.check_log()


def test_app_password_revoke_ends_cached_login(make_server):
    s = make(make_server)
    user = new_user(s)
    u = re.escape(user)
    app = add_app(s, user, "phone")
    other = add_app(s, user, "laptop")
    for pw in (app, app, other, other, PASSWORD, PASSWORD):
        assert get_session(s, user, pw) == 200
    mark = s.log_mark()
    assert get_session(s, user, app) == 200
    assert s.wait_log(CACHED % u + " app_password=phone$", since=mark)
    s.cli_ok("user", "app-password", "revoke", user, "phone")
    mark = s.log_mark()
    assert get_session(s, user, app) == 401
    assert s.wait_log(r"action=auth_cache_drop user=%s reason=credentials_changed" % u,
                      since=mark)
    # The other app password and the main one are untouched.
    assert get_session(s, user, other) == 200
    assert get_session(s, user, PASSWORD) == 200
    assert s.wait_log(CACHED % u + " app_password=laptop$", since=mark)
    assert s.wait_log(CACHED % u + "$", since=mark)
    # Removing the user ends its cached login too.
    s.cli_ok("user", "remove", user)
    mark = s.log_mark()
    assert get_session(s, user, PASSWORD) == 401
    assert s.wait_log(r"action=auth_cache_drop user=%s reason=credentials_changed" % u,
                      since=mark)
    s.check_log()


def test_ttl_zero_checks_every_request(make_server):
    s = make(make_server, ttl="0")
    user = new_user(s)
    u = re.escape(user)
    mark = s.log_mark()
    for _ in range(3):
        assert get_session(s, user, PASSWORD) == 200
    assert s.wait_log(CHECKED % (u, "ok"), since=mark, count=3)
    assert count(s, CACHED % u, mark) == 0
    s.check_log()
