"""Integration tests for the `tern` command line: init, domain, user, alias
and mail sub-commands, exit codes and error messages.

The binary comes from $TERN_BIN (default: build/tern of this checkout).
Standard library and pytest only.
"""

import os
import re
import shutil
import smtplib
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import doc_config_keys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TERN = os.environ.get("TERN_BIN") or os.path.join(ROOT, "build", "tern")
HEADER_LINE = "UID\tDATE\tFROM\tSUBJECT\tSIZE\tFLAGS\n"


def tern(*args, conf=None, input=None, timeout=60):
    """Runs tern [-c conf] args...; returns the CompletedProcess (text)."""
    cmd = [TERN]
    if conf is not None:
        cmd += ["-c", str(conf)]
    cmd += [str(a) for a in args]
    return subprocess.run(cmd, input=input, capture_output=True, text=True,
                          timeout=timeout)


def ok(*args, **kw):
    r = tern(*args, **kw)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


def read_conf(path):
    """Active keys of a tern.conf, as a dict."""
    keys = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            k, _, v = line.partition("=")
            keys[k.strip()] = v.strip()
    return keys


@pytest.fixture
def workdir(tmp_path):
    """A folder for tern init.  As root, init makes the data folder belong
    to an unprivileged user (nobody), which must be able to reach it; pytest's
    tmp_path sits under a 0700 folder, so use a world-searchable one."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    d = tempfile.mkdtemp(prefix="tern-cli-", dir="/tmp")
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def inst(workdir):
    """An initialised instance with domain example.test; returns tern.conf."""
    d = os.path.join(workdir, "inst")
    ok("init", d, "--hostname", "mail.example.test", "--domain", "example.test")
    return os.path.join(d, "tern.conf")


# ------------------------------------------------------------------ top level

def test_help_lists_every_command():
    r = ok("--help")
    for c in ("init", "serve", "domain", "user", "alias", "mail", "-c FILE", "--version"):
        assert c in r.stdout
    assert r.stderr == ""


def test_unknown_command_is_usage_error():
    r = tern("frobnicate")
    assert r.returncode == 2
    assert "frobnicate" in r.stderr
    assert "usage" in r.stderr


def test_missing_config_names_file(workdir):
    missing = os.path.join(workdir, "nope.conf")
    r = tern("domain", "list", conf=missing)
    assert r.returncode == 2
    assert missing in r.stderr


@pytest.mark.parametrize("cmd", ["init", "domain", "user", "alias", "mail"])
def test_command_help(cmd):
    r = ok(cmd, "--help")
    assert "usage" in r.stdout
    assert cmd in r.stdout


@pytest.mark.parametrize("args", [
    ["domain", "add", "--help"],
    ["user", "add", "--help"],
    ["alias", "remove", "--help"],
    ["mail", "cat", "--help"],
])
def test_sub_command_help(args):
    r = ok(*args)
    assert "usage" in r.stdout


# ----------------------------------------------------------------------- init

def test_init_creates_files(workdir):
    d = os.path.join(workdir, "new")
    r = ok("init", d, "--hostname", "mx.example.test")
    assert "Next steps" in r.stdout
    for f in ("tern.conf", "data", "tls/cert.pem", "tls/key.pem"):
        assert os.path.exists(os.path.join(d, f)), f
    keys = read_conf(os.path.join(d, "tern.conf"))
    assert keys["hostname"] == "mx.example.test"
    assert keys["data_dir"] == "data"
    assert keys["smtp.listen"] == "127.0.0.1:25"
    assert keys["remote_smtp_port"] == "25"
    assert keys["tls.cert"] == "tls/cert.pem"
    assert keys["tls.key"] == "tls/key.pem"
    assert keys["dns.resolver"] == ""
    assert keys["pop3.listen"] == "127.0.0.1:110"
    assert keys["imap.listen"] == "127.0.0.1:143"
    assert keys["pop3s.listen"] == "127.0.0.1:995"
    assert keys["managesieve.listen"] == "127.0.0.1:4190"
    assert keys["imaps.listen"] == "127.0.0.1:993"
    assert keys["submission.listen"] == "127.0.0.1:587"
    assert keys["submissions.listen"] == "127.0.0.1:465"
    if os.geteuid() != 0:
        assert keys["user"] == ""
    else:
        assert keys["user"] in ("tern", "nobody")
    text = open(os.path.join(d, "tern.conf")).read()
    # Every listener is served now: none is left commented out.
    assert "# Not served by this version yet" not in text
    # Every active key comes with a comment line just above it.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("#"), line
    # The new config works: an admin command runs against it.
    r = ok("domain", "list", conf=os.path.join(d, "tern.conf"))
    assert r.stdout == ""


def test_init_writes_every_key_and_marks_restart_keys(workdir):
    """The config init writes names every key of docs/config.md (set, or
    commented out at its default) and no other, and the comment above a
    key says "(restart)" exactly for the keys the doc says need one (init
    takes that from the key table, the reload code's source too)."""
    d = os.path.join(workdir, "marks")
    ok("init", d, "--port-base", "30000")
    doc = doc_config_keys()
    marked = {}
    comment = []
    with open(os.path.join(d, "tern.conf")) as f:
        lines = f.read().splitlines()
    for line in lines:
        m = re.fullmatch(r"(# )?([a-z][a-z0-9_.]*) =( .*)?", line)
        if m:
            key = m.group(2)
            assert key in doc, "tern init writes %s, which docs/config.md lacks" % key
            assert key not in marked, "tern init writes %s twice" % key
            marked[key] = any("(restart)" in c for c in comment)
            comment = []
        elif line.startswith("#"):
            comment.append(line)
        else:
            comment = []
    assert sorted(marked) == sorted(doc), "keys docs/config.md has but init does not write"
    wrong = sorted(k for k in doc if marked[k] != doc[k])
    assert wrong == [], "(restart) in tern.conf disagrees with docs/config.md for %s" % wrong
    assert sum(doc.values()) >= 12  # the listeners, data_dir, user, workers
    # the file still loads: an admin command runs against it
    ok("domain", "list", conf=os.path.join(d, "tern.conf"))


def test_init_in_existing_empty_dir(workdir):
    d = os.path.join(workdir, "empty")
    os.mkdir(d)
    ok("init", d)
    assert os.path.exists(os.path.join(d, "tern.conf"))


def test_init_port_base_and_address(workdir):
    d = os.path.join(workdir, "pb")
    ok("init", d, "--port-base", "20000", "--address", "127.0.0.2",
       "--resolver", "127.0.0.1:5353")
    conf = os.path.join(d, "tern.conf")
    keys = read_conf(conf)
    assert keys["smtp.listen"] == "127.0.0.2:20025"
    assert keys["remote_smtp_port"] == "20025"
    assert keys["dns.resolver"] == "127.0.0.1:5353"
    assert keys["pop3.listen"] == "127.0.0.2:20110"
    assert keys["imap.listen"] == "127.0.0.2:20143"
    assert keys["pop3s.listen"] == "127.0.0.2:20995"
    assert keys["managesieve.listen"] == "127.0.0.2:24190"
    assert keys["imaps.listen"] == "127.0.0.2:20993"
    assert keys["submission.listen"] == "127.0.0.2:20587"
    assert keys["submissions.listen"] == "127.0.0.2:20465"


def test_init_ipv6_address(workdir):
    d = os.path.join(workdir, "v6")
    ok("init", d, "--address", "::1", "--port-base", "30000")
    assert read_conf(os.path.join(d, "tern.conf"))["smtp.listen"] == "[::1]:30025"


def test_init_certificate(workdir):
    d = os.path.join(workdir, "tls")
    ok("init", d, "--hostname", "mail.example.test")
    cert = os.path.join(d, "tls", "cert.pem")
    key = os.path.join(d, "tls", "key.pem")
    r = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", cert],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "CN = mail.example.test" in r.stdout
    assert "DNS:mail.example.test" in r.stdout
    assert "DNS:localhost" in r.stdout
    assert "IP Address:127.0.0.1" in r.stdout
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    # The key belongs to the certificate.
    pub_cert = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", cert],
                              capture_output=True, text=True).stdout
    pub_key = subprocess.run(["openssl", "pkey", "-pubout", "-in", key],
                             capture_output=True, text=True).stdout
    assert pub_cert and pub_cert == pub_key
    # A client that trusts exactly this certificate accepts it.
    r = subprocess.run(["openssl", "verify", "-CAfile", cert, cert],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # Valid for 825 days.
    r = subprocess.run(["openssl", "x509", "-noout", "-checkend", str(824 * 86400),
                        "-in", cert], capture_output=True, text=True)
    assert r.returncode == 0


def test_init_refuses_non_empty_dir(workdir):
    d = os.path.join(workdir, "full")
    os.mkdir(d)
    open(os.path.join(d, "something"), "w").close()
    r = tern("init", d)
    assert r.returncode == 2
    assert d in r.stderr
    assert os.listdir(d) == ["something"]


def test_init_refuses_file(workdir):
    f = os.path.join(workdir, "afile")
    open(f, "w").close()
    r = tern("init", f)
    assert r.returncode == 2
    assert f in r.stderr


@pytest.mark.parametrize("args,named", [
    (["--port-base", "abc"], "--port-base"),
    (["--port-base", "65000"], "--port-base"),
    (["--address", "not-an-ip"], "--address"),
    (["--resolver", "dns.example"], "--resolver"),
    (["--hostname", "bad host"], "--hostname"),
    (["--domain", "-bad.example"], "--domain"),
    (["--user", "no-such-user-tern-test"], "--user"),
    (["--bogus", "x"], "--bogus"),
    (["--hostname"], "--hostname"),
])
def test_init_bad_arguments(workdir, args, named):
    d = os.path.join(workdir, "bad")
    r = tern("init", d, *args)
    assert r.returncode == 2, r.stderr
    assert named in r.stderr
    assert not os.path.exists(d)


def test_init_missing_dir():
    r = tern("init")
    assert r.returncode == 2
    assert "usage" in r.stderr


# --------------------------------------------------------------------- domain

def test_domain_round_trip(inst):
    ok("domain", "add", "Other.Example", conf=inst)
    r = ok("domain", "list", conf=inst)
    assert r.stdout.splitlines() == ["example.test", "other.example"]
    ok("domain", "remove", "other.example", conf=inst)
    r = ok("domain", "list", conf=inst)
    assert r.stdout.splitlines() == ["example.test"]


def test_domain_errors(inst):
    r = tern("domain", "add", "example.test", conf=inst)
    assert r.returncode == 1 and "example.test" in r.stderr
    r = tern("domain", "remove", "unknown.example", conf=inst)
    assert r.returncode == 1 and "unknown.example" in r.stderr
    r = tern("domain", "add", "bad..name", conf=inst)
    assert r.returncode == 2 and "bad..name" in r.stderr
    assert tern("domain", "add", conf=inst).returncode == 2
    assert tern("domain", conf=inst).returncode == 2
    assert tern("domain", "frob", conf=inst).returncode == 2
    assert tern("domain", "list", "extra", conf=inst).returncode == 2


def test_domain_remove_with_users_fails(inst):
    ok("user", "add", "a@example.test", "--password", "pw", conf=inst)
    r = tern("domain", "remove", "example.test", conf=inst)
    assert r.returncode == 1
    assert "example.test" in r.stderr
    assert ok("domain", "list", conf=inst).stdout == "example.test\n"


# ----------------------------------------------------------------------- user

def test_user_round_trip(inst):
    ok("domain", "add", "two.example", conf=inst)
    ok("user", "add", "Alice@Example.Test", "--password", "secret1", conf=inst)
    ok("user", "add", "bob@example.test", "--password=secret2", conf=inst)
    ok("user", "add", "carol@two.example", "--password", "secret3", conf=inst)
    r = ok("user", "list", conf=inst)
    assert r.stdout.splitlines() == ["alice@example.test", "bob@example.test",
                                     "carol@two.example"]
    r = ok("user", "list", "two.example", conf=inst)
    assert r.stdout.splitlines() == ["carol@two.example"]
    ok("user", "passwd", "alice@example.test", "--password", "new", conf=inst)
    ok("user", "remove", "bob@example.test", conf=inst)
    r = ok("user", "list", "example.test", conf=inst)
    assert r.stdout.splitlines() == ["alice@example.test"]


def test_user_add_reads_password_from_stdin(inst):
    ok("user", "add", "stdin@example.test", conf=inst, input="from-stdin\n")
    assert "stdin@example.test" in ok("user", "list", conf=inst).stdout
    ok("user", "passwd", "stdin@example.test", conf=inst, input="another\r\n")


def test_user_add_empty_password_refused(inst):
    r = tern("user", "add", "e@example.test", conf=inst, input="\n")
    assert r.returncode == 2
    assert "password" in r.stderr
    r = tern("user", "add", "e@example.test", conf=inst, input="")
    assert r.returncode == 2
    r = tern("user", "add", "e@example.test", "--password", "", conf=inst)
    assert r.returncode == 2
    assert ok("user", "list", conf=inst).stdout == ""


def test_user_errors(inst):
    r = tern("user", "add", "x@unknown.example", "--password", "pw", conf=inst)
    assert r.returncode == 1 and "unknown.example" in r.stderr
    ok("user", "add", "dup@example.test", "--password", "pw", conf=inst)
    r = tern("user", "add", "DUP@example.test", "--password", "pw", conf=inst)
    assert r.returncode == 1 and "dup@example.test" in r.stderr
    r = tern("user", "remove", "ghost@example.test", conf=inst)
    assert r.returncode == 1 and "ghost@example.test" in r.stderr
    r = tern("user", "passwd", "ghost@example.test", "--password", "x", conf=inst)
    assert r.returncode == 1 and "ghost@example.test" in r.stderr
    r = tern("user", "list", "unknown.example", conf=inst)
    assert r.returncode == 1 and "unknown.example" in r.stderr
    r = tern("user", "add", "not-an-address", "--password", "pw", conf=inst)
    assert r.returncode == 2 and "not-an-address" in r.stderr
    assert tern("user", "add", conf=inst).returncode == 2
    assert tern("user", "remove", conf=inst).returncode == 2
    r = tern("user", "remove", "a@example.test", "--password", "x", conf=inst)
    assert r.returncode == 2 and "--password" in r.stderr


# ---------------------------------------------------------------------- alias

def test_alias_round_trip(inst):
    ok("user", "add", "alice@example.test", "--password", "pw", conf=inst)
    ok("alias", "add", "info@example.test", "alice@example.test", "ext@remote.example",
       conf=inst)
    ok("alias", "add", "@example.test", "alice@example.test", conf=inst)
    r = ok("alias", "list", conf=inst)
    lines = r.stdout.splitlines()
    assert "info@example.test\talice@example.test" in lines
    assert "info@example.test\text@remote.example" in lines
    assert "@example.test\talice@example.test" in lines
    assert len(lines) == 3
    ok("alias", "remove", "info@example.test", "ext@remote.example", conf=inst)
    lines = ok("alias", "list", "example.test", conf=inst).stdout.splitlines()
    assert sorted(lines) == ["@example.test\talice@example.test",
                             "info@example.test\talice@example.test"]
    ok("alias", "remove", "info@example.test", conf=inst)
    ok("alias", "remove", "@example.test", conf=inst)
    assert ok("alias", "list", conf=inst).stdout == ""


def test_alias_errors(inst):
    r = tern("alias", "add", "x@unknown.example", "a@example.test", conf=inst)
    assert r.returncode == 1 and "unknown.example" in r.stderr
    r = tern("alias", "add", "x@example.test", conf=inst)
    assert r.returncode == 2
    r = tern("alias", "add", "x@example.test", "not an address", conf=inst)
    assert r.returncode == 2 and "not an address" in r.stderr
    r = tern("alias", "add", "@bad..domain", "a@example.test", conf=inst)
    assert r.returncode == 2 and "bad..domain" in r.stderr
    r = tern("alias", "list", "unknown.example", conf=inst)
    assert r.returncode == 1 and "unknown.example" in r.stderr
    assert tern("alias", "remove", conf=inst).returncode == 2


# ----------------------------------------------------------------- bad config

def test_broken_config_line_names_file_and_line(inst):
    with open(inst, "a") as f:
        f.write("this line has no equals sign\n")
    n = len(open(inst).read().splitlines())
    r = tern("domain", "list", conf=inst)
    assert r.returncode == 2
    assert f"{os.path.realpath(inst)}:{n}" in r.stderr


def test_unknown_config_key_names_file_and_line(inst):
    with open(inst, "a") as f:
        f.write("no_such_key = 1\n")
    n = len(open(inst).read().splitlines())
    r = tern("user", "list", conf=inst)
    assert r.returncode == 2
    assert f"{os.path.realpath(inst)}:{n}" in r.stderr
    assert "no_such_key" in r.stderr


def test_missing_data_dir_is_runtime_error(inst):
    shutil.rmtree(os.path.join(os.path.dirname(inst), "data"))
    r = tern("domain", "list", conf=inst)
    assert r.returncode == 1
    assert "data" in r.stderr
    assert not os.path.exists(os.path.join(os.path.dirname(inst), "data"))


# ----------------------------------------------------------------------- mail

def test_mail_list_empty_inbox(inst):
    ok("user", "add", "alice@example.test", "--password", "pw", conf=inst)
    r = ok("mail", "list", "alice@example.test", conf=inst)
    assert r.stdout == HEADER_LINE
    r = ok("mail", "list", "alice@example.test", "Sent", conf=inst)
    assert r.stdout == HEADER_LINE


def test_mail_errors(inst):
    ok("user", "add", "alice@example.test", "--password", "pw", conf=inst)
    r = tern("mail", "list", "ghost@example.test", conf=inst)
    assert r.returncode == 1 and "ghost@example.test" in r.stderr
    r = tern("mail", "list", "alice@example.test", "NoSuchBox", conf=inst)
    assert r.returncode == 1 and "NoSuchBox" in r.stderr
    r = tern("mail", "cat", "alice@example.test", "INBOX", "1", conf=inst)
    assert r.returncode == 1 and "1" in r.stderr
    r = tern("mail", "cat", "alice@example.test", "INBOX", "x1", conf=inst)
    assert r.returncode == 2 and "x1" in r.stderr
    r = tern("mail", "cat", "alice@example.test", "INBOX", "0", conf=inst)
    assert r.returncode == 2
    assert tern("mail", "list", conf=inst).returncode == 2
    assert tern("mail", "cat", "alice@example.test", "INBOX", conf=inst).returncode == 2


def _free_port_base():
    """A port base whose listener ports are all free right now."""
    from conftest import pick_port_base
    return pick_port_base()


def _wait_port(port, proc, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def test_mail_list_and_cat_after_delivery(workdir):
    """End to end: a message delivered over SMTP shows up in `mail list`,
    and `mail cat` gives back the stored bytes."""
    base = _free_port_base()
    d = os.path.join(workdir, "deliver")
    ok("init", d, "--hostname", "mail.example.test", "--domain", "example.test",
       "--port-base", str(base))
    conf = os.path.join(d, "tern.conf")
    ok("user", "add", "alice@example.test", "--password", "pw", conf=conf)
    proc = subprocess.Popen([TERN, "-c", conf, "serve"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        if not _wait_port(base + 25, proc):
            proc.kill()
            _, err = proc.communicate(timeout=10)
            pytest.fail("tern serve did not start: " + err[-2000:])
        body = ("From: Bob <bob@remote.example>\r\n"
                "To: alice@example.test\r\n"
                "Subject: Hello\r\n\tfolded\x01 there\r\n"
                "\r\n"
                "Body line\r\n")
        with smtplib.SMTP("127.0.0.1", base + 25, timeout=20) as s:
            s.sendmail("bob@remote.example", ["alice@example.test"], body)
        lines = []
        deadline = time.time() + 10
        while time.time() < deadline:
            r = ok("mail", "list", "alice@example.test", conf=conf)
            lines = r.stdout.splitlines()
            if len(lines) > 1:
                break
            time.sleep(0.2)
        assert lines[0] + "\n" == HEADER_LINE
        assert len(lines) == 2, lines
        uid, date, frm, subject, size, flags = lines[1].split("\t")
        assert uid.isdigit()
        assert len(date) == 20 and date.endswith("Z") and date[10] == "T"
        assert frm == "Bob <bob@remote.example>"
        # Unfolded; the folding tab shows as a space, other controls as '?'.
        assert subject == "Hello folded? there"
        assert flags == "-"
        r = subprocess.run([TERN, "-c", conf, "mail", "cat", "alice@example.test", "INBOX",
                            uid], capture_output=True)
        assert r.returncode == 0, r.stderr
        assert len(r.stdout) == int(size)
        assert b"Subject: Hello\r\n" in r.stdout
        assert r.stdout.endswith(b"Body line\r\n")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ------------------------------------------- what a new administrator sees

def test_alias_to_nobody_refused_unless_forced(inst):
    """A local target that is no user or alias is refused (exit 2, nothing
    added); --force adds it and `alias list` marks it."""
    ok("user", "add", "alice@example.test", "--password", "pw", conf=inst)
    r = tern("alias", "add", "foo@example.test", "alice@example.test", "nobody@example.test",
             conf=inst)
    assert r.returncode == 2
    assert r.stderr == ("tern: alias add: nobody@example.test is in our domain example.test "
                        "but is no user or alias, so mail to foo@example.test would not "
                        "arrive; add the user first, or give --force\n")
    assert r.stdout == ""
    assert ok("alias", "list", conf=inst).stdout == ""  # nothing half-added
    # Users, aliases, plus-addresses of users, postmaster and remote
    # addresses are all fine targets.
    ok("alias", "add", "team@example.test", "alice@example.test", conf=inst)
    ok("alias", "add", "foo@example.test", "team@example.test", "alice+news@example.test",
       "postmaster@example.test", "someone@remote.example", conf=inst)
    r = ok("alias", "add", "--force", "bar@example.test", "ghost@example.test", conf=inst)
    assert r.stdout == "alias bar@example.test -> ghost@example.test added\n"
    lines = ok("alias", "list", conf=inst).stdout.splitlines()
    assert "bar@example.test\tghost@example.test\t(no such user or alias)" in lines
    assert "foo@example.test\tteam@example.test" in lines
    assert "foo@example.test\talice+news@example.test" in lines
    assert "foo@example.test\tsomeone@remote.example" in lines
    assert len(lines) == 6
    # Once the user exists, the mark goes away.
    ok("user", "add", "ghost@example.test", "--password", "pw", conf=inst)
    lines = ok("alias", "list", conf=inst).stdout.splitlines()
    assert "bar@example.test\tghost@example.test" in lines


def test_init_next_steps_name_the_binary_as_invoked(workdir):
    """The commands `tern init` suggests work as printed: they use the path
    tern was started with (build/tern is not on PATH)."""
    d = os.path.join(workdir, "steps")
    r = ok("init", d, "--domain", "example.test")
    assert "  %s -c %s/tern.conf user add you@example.test" % (TERN, d) in r.stdout
    assert "  %s -c %s/tern.conf serve\n" % (TERN, d) in r.stdout
    assert "  %s -c %s/tern.conf domain dns example.test" % (TERN, d) in r.stdout
    # and that one works as printed: the DNS records, the DKIM keys init made
    out = subprocess.run([TERN, "-c", "%s/tern.conf" % d, "domain", "dns", "example.test"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "._domainkey.example.test. IN TXT" in out.stdout, out


def test_domain_remove_names_the_domain_once(inst):
    ok("user", "add", "alice@example.test", "--password", "pw", conf=inst)
    r = tern("domain", "remove", "example.test", conf=inst)
    assert r.returncode == 1
    assert r.stderr == ("tern: domain remove: example.test: still has accounts; "
                        "remove them first\n")


def test_import_error_lists_every_scheme(inst, workdir):
    path = os.path.join(workdir, "passwd")
    with open(path, "w") as f:
        f.write("bob@example.test:{MD5}abc::::::\n")
    r = tern("user", "import-passwd", path, conf=inst)
    assert r.returncode != 0
    assert ("{YESCRYPT}, {SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT}, {CRYPT} with "
            "$y$, $6$, $5$, $2b$, $2y$ or $2a$") in r.stderr
    usage = ok("user", "--help").stdout
    assert "{YESCRYPT}, {SHA512-CRYPT}" in usage and "{SHA256-CRYPT}" in usage
