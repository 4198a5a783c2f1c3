"""`tern user import-passwd` (Dovecot passwd-files) and the SCRAM-SHA-256
keys `user add` / `user passwd` store beside the password hash.

Imported users must then log in through POP3 with their old passwords
(USER/PASS over loopback, allowed by allow_plaintext_loopback = yes).
Hashes of other schemes are made here through libcrypt (ctypes), as
another system would have made them.  Standard library and pytest only.
"""

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import poplib
import sqlite3
import uuid

import pytest

from conftest import HOST, timeout

CONF = {"workers": 1, "allow_plaintext_loopback": "yes"}

_libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
_libcrypt.crypt.restype = ctypes.c_char_p
_libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libcrypt.crypt_gensalt.restype = ctypes.c_char_p
_libcrypt.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                    ctypes.c_int]


def make_hash(prefix, password):
    """A crypt(3) hash of password with scheme prefix ("$6$", "$2b$", ...)."""
    setting = _libcrypt.crypt_gensalt(prefix.encode(), 0, None, 0)
    assert setting and not setting.startswith(b"*"), prefix
    h = _libcrypt.crypt(password.encode(), setting)
    assert h and not h.startswith(b"*"), prefix
    return h.decode()


def pop3_login(srv, user, password):
    """Logs in with USER/PASS; returns the PASS reply (bytes) or the error
    reply of a refused login."""
    c = poplib.POP3(HOST, srv.pop3_port, timeout=timeout(10))
    try:
        c.user(user)
        try:
            return c.pass_(password)
        except poplib.error_proto as e:
            return e.args[0]
    finally:
        c.close()


def logged_in(reply):
    return reply.startswith(b"+OK Logged in")


def db_rows(srv, sql, args=()):
    """Runs one query on server.db and gives back the rows.  Any -wal/-shm
    file this connection creates is handed back to the data folder's
    owner, so the server (run as another user) can still open it."""
    path = os.path.join(srv.data, "server.db")
    st = os.stat(path)
    con = sqlite3.connect(path, timeout=10)
    try:
        rows = con.execute(sql, args).fetchall()
        con.commit()
    finally:
        con.close()
    for suffix in ("-wal", "-shm"):
        p = path + suffix
        if os.path.exists(p):
            os.chown(p, st.st_uid, st.st_gid)
    return rows


def scram_of(srv, user):
    rows = db_rows(srv, "SELECT scram FROM accounts WHERE address = ?", (user,))
    assert len(rows) == 1, rows
    return rows[0][0]


def check_scram_record(record, password):
    """The record is RFC 5803 style and matches password."""
    head, salt_part, keys = record.split("$")
    assert head == "SCRAM-SHA-256"
    iters, salt64 = salt_part.split(":")
    stored64, server64 = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt64),
                                 int(iters))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    assert base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored64
    assert base64.b64encode(server_key).decode() == server64
    return int(iters)


def write_file(srv, name, text):
    path = os.path.join(srv.dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o644)  # the CLI may run as the data folder's user
    return path


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def uniq(tag):
    return "%s%s@example.test" % (tag, uuid.uuid4().hex[:10])


# ---------------------------------------------------------------- import

def test_import_then_pop3_login(srv):
    users = {
        uniq("sha"): ("pw-sha512", "{SHA512-CRYPT}" + make_hash("$6$", "pw-sha512")),
        uniq("blf"): ("pw-bcrypt", "{BLF-CRYPT}" + make_hash("$2b$", "pw-bcrypt")),
        uniq("blfy"): ("pw-bcrypt-y", "{BLF-CRYPT}" + make_hash("$2y$", "pw-bcrypt-y")),
        uniq("yes"): ("pw-yescrypt", "{CRYPT}" + make_hash("$y$", "pw-yescrypt")),
        uniq("six"): ("pw-crypt6", "{CRYPT}" + make_hash("$6$", "pw-crypt6")),
    }
    lines = ["# Dovecot passwd-file", ""]
    for user, (_, h) in users.items():
        lines.append("%s:%s:1000:1000::/home/x::userdb_quota_rule=*:storage=1G" % (user, h))
    lines.append("   # indented comment")
    path = write_file(srv, "users.passwd", "\r\n".join(lines) + "\r\n")
    r = srv.cli_ok("user", "import-passwd", path)
    assert r.stdout.decode() == "imported from %s: 5 added, 0 updated, 0 skipped\n" % path
    listed = srv.cli_ok("user", "list").stdout.decode().split("\n")
    for user, (pw, _) in users.items():
        assert user in listed
        assert logged_in(pop3_login(srv, user, pw)), user
        assert pop3_login(srv, user, pw + "x") == b"-ERR [AUTH] Authentication failed"
        # Imported users have no SCRAM keys (SCRAM reports "unavailable").
        assert scram_of(srv, user) == ""


def test_import_skips_existing_unless_update(srv):
    user = uniq("upd")
    srv.cli_ok("user", "add", user, "--password", "old-password")
    assert scram_of(srv, user) != ""
    path = write_file(srv, "update.passwd",
                      "%s:{SHA512-CRYPT}%s\n" % (user, make_hash("$6$", "new-password")))
    r = srv.cli_ok("user", "import-passwd", path)
    assert r.stdout.decode() == (
        "imported from %s: 0 added, 0 updated, 1 skipped"
        " (they exist; --update replaces their hashes)\n" % path)
    assert logged_in(pop3_login(srv, user, "old-password"))

    r = srv.cli_ok("user", "import-passwd", path, "--update")
    assert r.stdout.decode() == "imported from %s: 0 added, 1 updated, 0 skipped\n" % path
    assert logged_in(pop3_login(srv, user, "new-password"))
    assert not logged_in(pop3_login(srv, user, "old-password"))
    # The old password's SCRAM keys went with it.
    assert scram_of(srv, user) == ""


@pytest.mark.parametrize("line, message", [
    ("{u}:{{PLAIN}}secret", "unsupported or malformed password hash"),
    ("{u}:{{SHA512-CRYPT}}$6$abc", "unsupported or malformed password hash"),
    ("{u}:{{MD5-CRYPT}}$1$abcdefgh$0123456789abcdefghijkl", "unsupported or malformed"),
    ("{u}:", "has no password hash"),
    ("{u}", "expected \"user:password:...\""),
    ("not-an-address:{{CRYPT}}{h}", "\"not-an-address\" is not an address (user@domain)"),
    ("x{r}@unknown.test:{{CRYPT}}{h}", "domain unknown.test is not one of ours"),
])
def test_import_errors_name_the_line_and_change_nothing(srv, line, message):
    good = uniq("good")
    bad = uniq("bad")
    h = make_hash("$6$", "pw")
    text = "# header\n%s:{SHA512-CRYPT}%s\n\n%s\n" % (
        good, h, line.format(u=bad, h=h, r=uuid.uuid4().hex[:6]))
    path = write_file(srv, "bad.passwd", text)
    r = srv.cli("user", "import-passwd", path)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert ("tern: user import-passwd: %s:4: " % path) in err, err
    assert message in err, err
    assert err.endswith("tern: user import-passwd: %s: 1 error, nothing imported\n" % path)
    assert r.stdout == b""
    listed = srv.cli_ok("user", "list").stdout.decode().split("\n")
    assert good not in listed
    assert bad not in listed


def test_import_duplicate_user(srv):
    user = uniq("dup")
    h = make_hash("$6$", "pw")
    path = write_file(srv, "dup.passwd", "%s:{CRYPT}%s\n%s:{CRYPT}%s\n" % (user, h, user, h))
    r = srv.cli("user", "import-passwd", path)
    assert r.returncode == 1
    assert ("%s:2: %s already appears on line 1" % (path, user)) in r.stderr.decode()


def test_import_usage(srv):
    r = srv.cli_ok("user", "import-passwd", "--help")
    assert b"import-passwd FILE [--update]" in r.stdout
    r = srv.cli("user", "import-passwd")
    assert r.returncode == 2
    assert b"missing argument" in r.stderr
    r = srv.cli("user", "import-passwd", os.path.join(srv.dir, "no-such-file"))
    assert r.returncode == 1
    assert b"No such file or directory" in r.stderr


# ------------------------------------------------------------ SCRAM keys

def test_user_add_and_passwd_store_scram_keys(srv):
    user = uniq("scram")
    srv.cli_ok("user", "add", user, "--password", "pencil")
    assert check_scram_record(scram_of(srv, user), "pencil") == 4096
    srv.cli_ok("user", "passwd", user, "--password", "pencil-2")
    rec = scram_of(srv, user)
    check_scram_record(rec, "pencil-2")
    with pytest.raises(AssertionError):
        check_scram_record(rec, "pencil")
    # A password SASLprep might change gets no keys, with a note.
    r = srv.cli_ok("user", "passwd", user, "--password", "caf\u00e9")
    assert b"gets no SCRAM-SHA-256 keys" in r.stderr
    assert scram_of(srv, user) == ""
    assert logged_in(pop3_login(srv, user, "caf\u00e9"))


def test_scram_iterations_configurable(make_server):
    s = make_server(conf={"workers": 1, "auth.scram_iterations": 5000}, start=False)
    user = uniq("iter")
    s.cli_ok("user", "add", user, "--password", "pencil")
    assert check_scram_record(scram_of(s, user), "pencil") == 5000
    s.set_config({"auth.scram_iterations": 100})
    r = s.cli("user", "list")
    assert r.returncode == 2
    assert b"auth.scram_iterations must be 4096..10000000" in r.stderr


def test_old_database_gets_scram_column(make_server):
    s = make_server(conf={"workers": 1}, start=False)
    # A server.db from before SCRAM keys: no accounts.scram column.
    db_rows(s, "ALTER TABLE accounts DROP COLUMN scram")
    cols = [r[1] for r in db_rows(s, "PRAGMA table_info(accounts)")]
    assert "scram" not in cols
    listed = s.cli_ok("user", "list").stdout.decode().split("\n")
    assert "alice@example.test" in listed
    cols = [r[1] for r in db_rows(s, "PRAGMA table_info(accounts)")]
    assert "scram" in cols
    assert scram_of(s, "alice@example.test") == ""
    s.cli_ok("user", "passwd", "alice@example.test", "--password", "pencil")
    check_scram_record(scram_of(s, "alice@example.test"), "pencil")
