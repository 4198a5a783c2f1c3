"""ManageSieve (RFC 5804; docs/sieve.md "ManageSieve"): exact responses
over a raw socket, Debian's sieve-connect as a real client, and a script
uploaded over ManageSieve filing mail delivered over SMTP."""

import base64
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import uuid

import pytest

from conftest import HOST, PASSWORD, RawClient, timeout
from test_imap_tls import Scram

CONF = {"allow_plaintext_loopback": "yes", "sieve.max_script_size": "1K",
        "sieve.max_scripts": "3"}
FILE_SCRIPT = ('require ["fileinto", "mailbox"];\r\n'
               'if header :contains "subject" "sort me" { fileinto :create "Sorted"; }\r\n')


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def port_of(srv):
    m = re.fullmatch(r"(.*):(\d+)", srv.read_config().get("managesieve.listen", ""))
    assert m, "managesieve.listen is not set"
    return int(m.group(2))


def new_user(srv):
    user = "m%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    return user


def q(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


class MS(RawClient):
    """A bare ManageSieve client; response() returns (lines, final line)."""

    def __init__(self, port, host=HOST, greet=True):
        super().__init__(host, port)
        if greet:
            self.caps, self.greeting = self.response()

    def line(self):
        line = self.raw_line()
        assert b"\n" not in line and b"\r" not in line, line
        return line.decode("utf-8", "surrogateescape")

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """Lines up to and including the OK/NO/BYE line; a line ending in
        a literal {N} is joined with its N octets."""
        lines = []
        while True:
            line = self.line()
            m = re.search(r"\{(\d+)\}$", line)
            if m:
                data = self.exact(int(m.group(1)))
                line = line + "\r\n" + data.decode("utf-8", "surrogateescape") + self.line()
            if re.match(r"(OK|NO|BYE)( |$)", line):
                return lines, line
            lines.append(line)

    def cmd(self, text):
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.send(text + b"\r\n")
        return self.response()

    def ok(self, text):
        lines, final = self.cmd(text)
        assert final.startswith("OK"), (text, lines, final)
        return lines

    def login(self, user, password=PASSWORD):
        ir = base64.b64encode(b"\0%s\0%s" % (user.encode(), password.encode())).decode()
        lines, final = self.cmd('AUTHENTICATE "PLAIN" "%s"' % ir)
        assert (lines, final) == ([], 'OK "Logged in"')

    def starttls(self):
        assert self.cmd("STARTTLS") == ([], 'OK "Begin TLS negotiation now"')
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock)
        return self.response()

    def closed(self):
        self.sock.settimeout(timeout(5))
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True


def caps(lines):
    out = {}
    for l in lines:
        m = re.fullmatch(r'"([^"]*)"(?: "([^"]*)")?', l)
        assert m, l
        out[m.group(1)] = m.group(2)
    return out


def putscript(c, name, text):
    data = text.encode("utf-8")
    return c.cmd(b"PUTSCRIPT " + q(name).encode() + b" {%d+}\r\n" % len(data) + data)


# ------------------------------------------------------- capabilities

def test_greeting_capabilities_exact(srv):
    with MS(port_of(srv)) as c:
        assert c.greeting == 'OK "Tern ManageSieve ready"'
        names = [re.match(r'"([^"]*)"', l).group(1) for l in c.caps]
        assert names == ["IMPLEMENTATION", "SASL", "SIEVE", "STARTTLS", "MAXREDIRECTS",
                         "UNAUTHENTICATE", "VERSION"]
        cap = caps(c.caps)
        assert cap["IMPLEMENTATION"] == "Tern"
        # loopback with allow_plaintext_loopback: as POP3 and IMAP offer
        assert cap["SASL"] == "PLAIN LOGIN SCRAM-SHA-256"
        assert cap["MAXREDIRECTS"] == "4"
        assert cap["VERSION"] == "1.0"
        assert cap["STARTTLS"] is None
        exts = cap["SIEVE"].split()
        for e in ("fileinto", "envelope", "copy", "imap4flags", "mailbox", "subaddress",
                  "vacation", "vacation-seconds", "variables", "relational",
                  "comparator-i;ascii-numeric", "body", "date", "index", "duplicate",
                  "editheader", "include", "environment", "ihave", "encoded-character",
                  "spamtest", "spamtestplus", "virustest"):
            assert e in exts
        assert c.cmd("CAPABILITY") == (c.caps, 'OK "Capability completed"')
        user = new_user(srv)
        c.login(user)
        lines, final = c.cmd("CAPABILITY")
        after = caps(lines)
        assert after["OWNER"] == user and "STARTTLS" not in after
        # every advertised extension is accepted by `require`
        for e in exts:
            assert c.cmd("CHECKSCRIPT %s" % q('require "%s";' % e)) == \
                ([], 'OK "Script is valid"'), e
        assert c.cmd('CHECKSCRIPT "require \\"x-tern-unknown\\";"')[1].startswith("NO ")
        assert c.cmd("LOGOUT") == ([], 'OK "Logout completed"')
        assert c.closed()


def test_no_plaintext_without_tls(make_server):
    s = make_server(conf={"allow_plaintext_loopback": "no"})
    user = "alice@example.test"
    with MS(port_of(s)) as c:
        cap = caps(c.caps)
        assert cap["SASL"] == "SCRAM-SHA-256" and "STARTTLS" in cap
        ir = base64.b64encode(b"\0%s\0%s" % (user.encode(), PASSWORD.encode())).decode()
        assert c.cmd('AUTHENTICATE "PLAIN" "%s"' % ir) == \
            ([], 'NO (ENCRYPT-NEEDED) "Plaintext authentication disallowed without TLS"')
        assert c.cmd("LISTSCRIPTS") == ([], 'NO "Authenticate first"')
        lines, final = c.starttls()
        assert final == 'OK "TLS negotiation successful"'
        cap = caps(lines)
        assert cap["SASL"] == "PLAIN LOGIN SCRAM-SHA-256" and "STARTTLS" not in cap
        assert c.cmd("STARTTLS") == ([], 'NO "TLS is already active"')
        c.login(user)
        assert c.cmd("LISTSCRIPTS") == ([], 'OK "Listscripts completed"')


def test_starttls_injection_is_discarded(srv):
    with MS(port_of(srv)) as c:
        b = base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()).decode()
        c.send('STARTTLS\r\nAUTHENTICATE "PLAIN" "%s"\r\n' % b)
        assert c.response() == ([], 'OK "Begin TLS negotiation now"')
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.sock = ctx.wrap_socket(c.sock)
        lines, final = c.response()
        assert final == 'OK "TLS negotiation successful"' and "STARTTLS" not in caps(lines)
        # the pipelined login was dropped: still not authenticated
        assert c.cmd("LISTSCRIPTS") == ([], 'NO "Authenticate first"')


def test_authenticate_continuations_and_failures(srv):
    user = new_user(srv)
    with MS(port_of(srv)) as c:
        # no initial response: an empty challenge, answered by a literal
        c.send('AUTHENTICATE "PLAIN"\r\n')
        assert c.line() == '""'
        resp = base64.b64encode(b"\0%s\0%s" % (user.encode(), PASSWORD.encode()))
        c.send(b"{%d+}\r\n%s\r\n" % (len(resp), resp))
        assert c.response() == ([], 'OK "Logged in"')
        assert c.cmd('AUTHENTICATE "PLAIN" ""')[1] == 'NO "Command not valid after login"'
    with MS(port_of(srv)) as c:
        c.send('AUTHENTICATE "LOGIN"\r\n')
        assert c.line() == '"%s"' % base64.b64encode(b"Username:").decode()
        assert c.cmd('"*"') == ([], 'NO "Authentication cancelled"')
        bad = base64.b64encode(b"\0%s\0wrong" % user.encode()).decode()
        assert c.cmd('AUTHENTICATE "PLAIN" "%s"' % bad) == ([], 'NO "Authentication failed"')
        assert c.cmd('AUTHENTICATE "CRAM-MD5"') == \
            ([], 'NO "Unsupported authentication mechanism"')
        assert c.cmd('AUTHENTICATE "PLAIN" "%%%"') == ([], 'NO "Invalid base64 data"')
        c.login(user)


def test_scram_final_data_in_ok_sasl_code(srv):
    user = new_user(srv)
    b64 = lambda b: base64.b64encode(b).decode()
    with MS(port_of(srv)) as c:
        sc = Scram(user, PASSWORD)
        c.send('AUTHENTICATE "SCRAM-SHA-256" "%s"\r\n' % b64(sc.first()))
        m = re.fullmatch(r'"([A-Za-z0-9+/=]+)"', c.line())
        assert m
        c.send('"%s"\r\n' % b64(sc.final(base64.b64decode(m.group(1)))))
        lines, final = c.response()
        assert lines == []
        m = re.fullmatch(r'OK \(SASL "([A-Za-z0-9+/=]+)"\) "Logged in"', final)
        assert m, final
        assert base64.b64decode(m.group(1)).decode() == sc.server_sig
        assert c.cmd("LISTSCRIPTS") == ([], 'OK "Listscripts completed"')
    with MS(port_of(srv)) as c:
        sc = Scram(user, PASSWORD)
        c.send('AUTHENTICATE "SCRAM-SHA-256" "%s"\r\n' % b64(sc.first()))
        m = re.fullmatch(r'"([A-Za-z0-9+/=]+)"', c.line())
        c.send('"%s"\r\n' % b64(sc.final(base64.b64decode(m.group(1)), "wrong")))
        assert c.response() == ([], 'NO "Authentication failed"')


# ------------------------------------------------------- script commands

def test_script_lifecycle_exact(srv):
    user = new_user(srv)
    with MS(port_of(srv)) as c:
        c.login(user)
        assert c.cmd("LISTSCRIPTS") == ([], 'OK "Listscripts completed"')
        assert putscript(c, "one", "keep;\r\n") == ([], 'OK "Script stored"')
        # a synchronizing literal is read the same way (no continuation)
        assert c.cmd(b'PUTSCRIPT "two" {10}\r\ndiscard;\r\n') == ([], 'OK "Script stored"')
        assert c.cmd('SETACTIVE "two"') == ([], 'OK "Script activated"')
        assert c.cmd("LISTSCRIPTS") == (['"one"', '"two" ACTIVE'],
                                        'OK "Listscripts completed"')
        assert c.cmd('GETSCRIPT "two"') == (["{10}\r\ndiscard;\r\n"], 'OK "Getscript completed"')
        assert c.cmd('GETSCRIPT "nope"') == \
            ([], 'NO (NONEXISTENT) "There is no script by that name"')
        assert c.cmd('SETACTIVE "nope"') == \
            ([], 'NO (NONEXISTENT) "There is no script by that name"')
        assert c.cmd('DELETESCRIPT "two"') == \
            ([], 'NO (ACTIVE) "The active script cannot be deleted"')
        assert c.cmd('RENAMESCRIPT "two" "one"') == \
            ([], 'NO (ALREADYEXISTS) "A script by the new name exists"')
        assert c.cmd('RENAMESCRIPT "nope" "three"') == \
            ([], 'NO (NONEXISTENT) "There is no script by that name"')
        assert c.cmd('RENAMESCRIPT "two" "zwei"') == ([], 'OK "Script renamed"')
        assert c.cmd("LISTSCRIPTS") == (['"one"', '"zwei" ACTIVE'],
                                        'OK "Listscripts completed"')
        assert c.cmd('SETACTIVE ""') == ([], 'OK "No script is active"')
        assert c.cmd('DELETESCRIPT "zwei"') == ([], 'OK "Script deleted"')
        assert c.cmd('DELETESCRIPT "zwei"') == \
            ([], 'NO (NONEXISTENT) "There is no script by that name"')
        assert c.cmd("LISTSCRIPTS") == (['"one"'], 'OK "Listscripts completed"')
        assert c.cmd('NOOP "sync-42"') == ([], 'OK (TAG "sync-42") "Done"')
        assert c.cmd("NOOP") == ([], 'OK "NOOP completed"')
    # the CLI sees what ManageSieve stored
    r = srv.cli_ok("sieve", "list", user)
    assert r.stdout.decode() == "one\t7\t-\n"


def test_putscript_error_names_line_and_column(srv):
    user = new_user(srv)
    bad = 'require "fileinto";\r\nif true {\r\n  frobnicate "x";\r\n}\r\n'
    with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
        f.write(bad)
    try:
        r = srv.cli_noconf("sieve", "check", f.name)
        assert r.returncode == 2
        err = r.stderr.decode() if isinstance(r.stderr, bytes) else r.stderr
        m = re.fullmatch(re.escape(f.name) + r":(\d+):(\d+): error: (.*)\n", err)
        assert m, r.stderr
    finally:
        os.unlink(f.name)
    assert m.group(1) == "3"
    expect = 'NO "%s:%s: error: %s"' % (m.group(1), m.group(2),
                                        m.group(3).replace("\\", "\\\\").replace('"', '\\"'))
    with MS(port_of(srv)) as c:
        c.login(user)
        assert putscript(c, "bad", bad) == ([], expect)
        assert c.cmd("CHECKSCRIPT %s" % q(bad.replace("\r\n", " "))) [1].startswith('NO "1:')
        assert c.cmd("LISTSCRIPTS") == ([], 'OK "Listscripts completed"')
        assert putscript(c, "empty", "") == ([], 'NO "An empty script is not stored"')


def test_quotas(srv):
    user = new_user(srv)
    with MS(port_of(srv)) as c:
        c.login(user)
        assert c.cmd('HAVESPACE "a" 1024') == ([], 'OK "Putscript would succeed"')
        assert c.cmd('HAVESPACE "a" 1025') == \
            ([], 'NO (QUOTA/MAXSIZE) "Scripts are at most 1024 bytes"')
        assert c.cmd('HAVESPACE "a" x') == ([], 'NO "Syntax error: the size is a number"')
        big = "keep;" + "#" * 1100 + "\r\n"
        assert putscript(c, "big", big) == \
            ([], 'NO (QUOTA/MAXSIZE) "Scripts are at most 1024 bytes"')
        for name in ("s1", "s2", "s3"):
            assert putscript(c, name, "keep;") == ([], 'OK "Script stored"')
        assert c.cmd('HAVESPACE "s4" 10') == \
            ([], 'NO (QUOTA/MAXSCRIPTS) "An account has at most 3 scripts"')
        assert putscript(c, "s4", "keep;") == \
            ([], 'NO (QUOTA/MAXSCRIPTS) "An account has at most 3 scripts"')
        # replacing one is fine
        assert c.cmd('HAVESPACE "s3" 10') == ([], 'OK "Putscript would succeed"')
        assert putscript(c, "s3", "discard;") == ([], 'OK "Script stored"')
        # a literal far over the budget is skipped, answered, and the session goes on
        n = 200000
        c.send(b'PUTSCRIPT "huge" {%d+}\r\n' % n + b"#" * n + b"\r\n")
        assert c.response() == ([], 'NO (QUOTA/MAXSIZE) "Scripts are at most 1024 bytes"')
        assert c.cmd("NOOP") == ([], 'OK "NOOP completed"')


def test_bad_commands_and_bounds(srv):
    user = new_user(srv)
    with MS(port_of(srv)) as c:
        assert c.cmd("FROB") == ([], 'NO "Unknown command"')
        assert c.cmd('PUTSCRIPT "a" "keep;"') == ([], 'NO "Authenticate first"')
        assert c.cmd('NOOP "unterminated') == \
            ([], 'NO "Syntax error: unterminated quoted string"')
        # a bad line's literal is skipped, never read as commands
        assert c.cmd(b'FROB "x {11+}\r\nLOGOUT\r\nxx') == \
            ([], 'NO "Syntax error: unterminated quoted string"')
        assert c.cmd("NOOP") == ([], 'OK "NOOP completed"')
        c.send(b"NOOP " + b"x" * 9000 + b"\r\n")
        assert c.response() == ([], 'NO "Line too long"')
        assert c.cmd("NOOP") == ([], 'OK "NOOP completed"')
        c.login(user)
        assert c.cmd("LISTSCRIPTS extra") == \
            ([], 'NO "Syntax error: wrong number of arguments to LISTSCRIPTS"')
        assert c.cmd("GETSCRIPT name") == ([], 'NO "Syntax error: a script name is a string"')
        assert c.cmd("UNAUTHENTICATE") == ([], 'OK "Unauthenticate completed"')
        assert c.cmd("LISTSCRIPTS") == ([], 'NO "Authenticate first"')
        assert c.cmd("UNAUTHENTICATE") == ([], 'NO "Authenticate first"')
        lines, final = c.cmd("CAPABILITY")
        assert "OWNER" not in caps(lines)
        c.login(user)
    # before login a big literal closes the session
    with MS(port_of(srv)) as c:
        c.send(b'AUTHENTICATE "PLAIN" {100000+}\r\n' + b"A" * 100000 + b"\r\n")
        assert c.response() == ([], 'BYE "Literal too big before login"')
        assert c.closed()


# ------------------------------------------------------- real client

@pytest.mark.skipif(shutil.which("sieve-connect") is None, reason="sieve-connect not installed")
def test_sieve_connect_upload_list_activate_download(srv):
    user = new_user(srv)
    d = tempfile.mkdtemp()
    local = os.path.join(d, "filter.sieve")
    with open(local, "w") as f:
        f.write(FILE_SCRIPT)

    def run(*args):
        cmd = ["sieve-connect", "--server", HOST, "--port", str(port_of(srv)), "--user", user,
               "--passwordfd", "0", "--notlsverify", "--authmech", "PLAIN"] + list(args)
        r = subprocess.run(cmd, input=PASSWORD + "\n", capture_output=True, text=True,
                           timeout=timeout(30))
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    run("--upload", "--localsieve", local, "--remotesieve", "filter")
    run("--activate", "--remotesieve", "filter")
    listed = run("--list")
    assert listed == "\"filter\" ACTIVE\n"
    out = os.path.join(d, "back.sieve")
    run("--download", "--remotesieve", "filter", "--localsieve", out)
    with open(out, "rb") as f:
        assert f.read() == FILE_SCRIPT.encode()
    assert srv.cli_ok("sieve", "list", user).stdout.decode() == "filter\t%d\tactive\n" % len(FILE_SCRIPT)
    shutil.rmtree(d)


# ------------------------------------------------------- it matters

def test_uploaded_script_files_delivered_mail(srv):
    import imaplib
    user = new_user(srv)
    with MS(port_of(srv)) as c:
        c.login(user)
        assert putscript(c, "sort", FILE_SCRIPT) == ([], 'OK "Script stored"')
        assert c.cmd('SETACTIVE "sort"') == ([], 'OK "Script activated"')
    token = uuid.uuid4().hex
    msg = ("From: <s@client.example>\r\nTo: %s\r\nSubject: please sort me %s\r\n\r\nbody\r\n"
           % (user, token)).encode()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        assert s.sendmail("s@client.example", [user], msg) == {}
    i = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        i.login(user, PASSWORD)
        typ, data = i.select("Sorted", readonly=True)
        assert typ == "OK" and data == [b"1"], data
        typ, data = i.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert data[0][1].endswith(msg)
        typ, data = i.select("INBOX", readonly=True)
        assert data == [b"0"]
    finally:
        i.logout()
