"""Shared fixtures for Tern's integration tests.

Every test talks to a real `tern serve` started from a fresh folder made by
`tern init`.  The binary comes from $TERN_BIN (default build/tern); with
TERN_ASAN=1 (the ASan+UBSan build) every time limit is multiplied by 3.

Fixtures
    tern_bin        path of the binary (session scope)
    make_server     factory: make_server(conf={"workers": "2"}, start=True)
                    -> TernServer; stopped and checked at the test's end
    module_server   the same factory, but servers live for the whole module
    server          a ready server (function scope) configured by the
                    `server_config` fixture (override it or parametrize it
                    indirectly to tweak the config)

Helpers (import them: `from conftest import SMTPRaw, ...`)
    SMTPRaw         raw-socket SMTP client for what smtplib cannot express
    make_cert       makes a self-signed certificate and key with openssl
    split_stored    splits a stored message into Return-Path, Received, rest
    parse_received  checks and parses Tern's Received: header
    doc_config_keys every key of docs/config.md and whether it needs a restart
"""

import email.utils
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

DEFAULT_BIN = "/work/main/build/tern"
ASAN = bool(os.environ.get("TERN_ASAN"))
SLOW = 3 if ASAN else 1
HOST = "127.0.0.1"
HOSTNAME = "mx.example.test"
PASSWORD = "secret"
USERS = ("alice@example.test", "bob@example.test", "carol@example.org")

# Every listener `tern init --port-base N` may configure (design.md).
STANDARD_PORTS = (25, 587, 465, 143, 993, 110, 995, 80, 443, 4190)
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")
MAIL_LIST_HEADER = ["UID", "DATE", "FROM", "SUBJECT", "SIZE", "FLAGS"]


def timeout(seconds):
    """A time limit scaled for the (slower) sanitizer build."""
    return seconds * SLOW


def sanitizer_report(text):
    for marker in SANITIZER_MARKERS:
        if marker in text:
            return marker
    return None


# ----------------------------------------------------------------- ports

def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def worker_port_bases():
    """The port bases (20000..60000, step 1000) this test process may use.
    Under pytest-xdist each worker gets its own share, so two workers never
    race for one base between checking it and binding it."""
    bases = list(range(20000, 60001, 1000))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    if worker.startswith("gw") and count > 1:
        index = int(worker[2:])
        bases = [b for b in bases if (b // 1000) % count == index % count]
    return bases


def pick_port_base(avoid=()):
    """A random base of this worker's share whose listener ports are free."""
    bases = worker_port_bases()
    random.shuffle(bases)
    for base in bases:
        if base in avoid:
            continue
        if all(_port_free(base + p) for p in STANDARD_PORTS):
            return base
    raise RuntimeError("no free port base in this worker's share of 20000..60000")


# -------------------------------------------------------------- processes

def group_pids(pgid):
    """Live (non-zombie) processes of a process group."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parens
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) >= 3 and rest[0] != "Z" and int(rest[2]) == pgid:
            pids.append(int(name))
    return pids


def child_pids(pid):
    """Direct children of pid (from /proc/PID/task/*/children)."""
    kids = set()
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return []
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                kids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return sorted(kids)


def proc_comm(pid):
    """The process name (/proc/PID/comm), "" if gone."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def socket_owner(pids, local_port, remote_port):
    """Which of pids holds the TCP socket local_port<->remote_port (as seen
    by the server: local = server port)."""
    want_local = "%04X" % local_port
    want_remote = "%04X" % remote_port
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (fields[1].split(":")[1] == want_local
                    and fields[2].split(":")[1] == want_remote):
                inode = fields[9]
                break
        if inode:
            break
    if not inode or inode == "0":
        return None
    target = "socket:[%s]" % inode
    for pid in pids:
        fd_dir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)) == target:
                    return pid
            except OSError:
                pass
    return None


# ----------------------------------------------------------------- server

SPAM_STAGE_OFF = {"spam.pregreet_wait": "0", "spam.fcrdns_weight": "0"}


class TernServer:
    """One Tern instance in its own temp folder."""

    def __init__(self, tern_bin, conf=None):
        self.bin = tern_bin
        self.base = tempfile.mkdtemp(prefix="tern-it-")
        os.chmod(self.base, 0o755)
        self.dir = self.base
        self.conf = os.path.join(self.dir, "tern.conf")
        self.data = os.path.join(self.dir, "data")
        self.logpath = os.path.join(self.dir, "serve.log")
        self.host = HOST
        self.proc = None
        self.allow_worker_deaths = False
        self.port_base = pick_port_base()
        r = self.cli_noconf("init", self.dir, "--port-base", str(self.port_base),
                            "--domain", "example.test", "--hostname", HOSTNAME)
        assert r.returncode == 0, "tern init failed: %r" % (r,)
        assert os.path.isfile(self.conf), "tern init wrote no %s" % self.conf
        # The connection stage of port 25 (docs/spam.md) off for the tests
        # of other features, which connect from 127.0.0.2 too: no greeting
        # delay, no reverse lookups; test_spam_connect.py turns it on.
        self.set_config(dict(SPAM_STAGE_OFF, **(conf or {})))
        self.smtp_port = self._smtp_port()
        self.cli_ok("domain", "add", "example.org")
        for user in USERS:
            self.cli_ok("user", "add", user, "--password", PASSWORD)

    # -- config
    def read_config(self):
        conf = {}
        with open(self.conf, encoding="utf-8") as f:
            for line in f:
                s = line.strip()
                if not s or s.startswith("#") or "=" not in s:
                    continue
                k, v = s.split("=", 1)
                conf[k.strip()] = v.strip()
        return conf

    def set_config(self, values):
        """Sets keys in tern.conf, rewriting an existing line rather than
        adding a second one (repeated keys are an error)."""
        with open(self.conf, encoding="utf-8") as f:
            lines = f.read().splitlines()
        todo = {k: str(v) for k, v in values.items()}
        out = []
        for line in lines:
            m = re.match(r"\s*([A-Za-z0-9_.]+)\s*=", line)
            if m and m.group(1) in todo:
                out.append("%s = %s" % (m.group(1), todo.pop(m.group(1))))
            else:
                out.append(line)
        for k, v in todo.items():
            out.append("%s = %s" % (k, v))
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")

    @property
    def pop3_port(self):
        """Port of pop3.listen (read from the config, so it follows
        _move_ports)."""
        m = re.fullmatch(r"(.*):(\d+)", self.read_config().get("pop3.listen", ""))
        assert m, "pop3.listen is not set in %s" % self.conf
        return int(m.group(2))

    @property
    def pop3s_port(self):
        """Port of pop3s.listen (read from the config)."""
        m = re.fullmatch(r"(.*):(\d+)", self.read_config().get("pop3s.listen", ""))
        assert m, "pop3s.listen is not set in %s" % self.conf
        return int(m.group(2))

    @property
    def imap_port(self):
        """Port of imap.listen (read from the config, so it follows
        _move_ports)."""
        m = re.fullmatch(r"(.*):(\d+)", self.read_config().get("imap.listen", ""))
        assert m, "imap.listen is not set in %s" % self.conf
        return int(m.group(2))

    @property
    def imaps_port(self):
        """Port of imaps.listen (read from the config)."""
        m = re.fullmatch(r"(.*):(\d+)", self.read_config().get("imaps.listen", ""))
        assert m, "imaps.listen is not set in %s" % self.conf
        return int(m.group(2))

    def _smtp_port(self):
        listen = self.read_config().get("smtp.listen", "")
        m = re.fullmatch(r"(.*):(\d+)", listen)
        assert m, "smtp.listen in %s is %r" % (self.conf, listen)
        return int(m.group(2))

    def _move_ports(self):
        """Moves every listener to a new port base (another run took ours)."""
        new = pick_port_base(avoid=(self.port_base,))
        changes = {}
        for k, v in self.read_config().items():
            m = re.fullmatch(r"(.*):(\d+)", v)
            if k.endswith(".listen") and m:
                port = int(m.group(2)) - self.port_base + new
                changes[k] = "%s:%d" % (m.group(1), port)
        self.set_config(changes)
        self.port_base = new
        self.smtp_port = self._smtp_port()

    # -- CLI
    def cli_noconf(self, *args, input=None):
        return subprocess.run([self.bin] + list(args), input=input,
                              capture_output=True, timeout=timeout(30))

    def cli(self, *args, input=None):
        """Runs `tern -c CONF ARGS...`; returns the CompletedProcess (bytes)."""
        r = subprocess.run([self.bin, "-c", self.conf] + list(args), input=input,
                           capture_output=True, timeout=timeout(30))
        marker = sanitizer_report(r.stderr.decode("utf-8", "replace"))
        if marker:
            pytest.fail("%s in `tern %s`:\n%s" % (marker, " ".join(args),
                                                  r.stderr.decode("utf-8", "replace")))
        return r

    def cli_ok(self, *args, input=None):
        r = self.cli(*args, input=input)
        assert r.returncode == 0, "`tern %s` exited %d: %s" % (
            " ".join(args), r.returncode, r.stderr.decode("utf-8", "replace"))
        return r

    def mail_list(self, user, mbox="INBOX"):
        r = self.cli_ok("mail", "list", user, mbox)
        lines = r.stdout.decode("utf-8", "replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        assert lines, "`mail list` printed nothing (not even its header line)"
        assert lines[0].split("\t") == MAIL_LIST_HEADER, "mail list header: %r" % lines[0]
        rows = []
        for line in lines[1:]:
            cols = line.split("\t")
            assert len(cols) == len(MAIL_LIST_HEADER), "mail list row: %r" % line
            rows.append(dict(zip(MAIL_LIST_HEADER, cols)))
        return rows

    def mail_cat(self, user, mbox, uid):
        return self.cli_ok("mail", "cat", user, mbox, str(uid)).stdout

    def find_messages(self, user, token, mbox="INBOX"):
        """Rows of user's mailbox whose Subject contains token."""
        if isinstance(token, bytes):
            token = token.decode()
        return [r for r in self.mail_list(user, mbox) if token in r["SUBJECT"]]

    def fetch_one(self, user, token, mbox="INBOX"):
        rows = self.find_messages(user, token, mbox)
        assert len(rows) == 1, "%s has %d messages with %r: %r" % (user, len(rows), token, rows)
        return self.mail_cat(user, mbox, rows[0]["UID"])

    # -- files
    def files_under(self, sub):
        top = os.path.join(self.data, sub)
        found = []
        for root, _dirs, files in os.walk(top):
            for name in files:
                found.append(os.path.join(root, name))
        return found

    def message_files_with(self, token):
        """Message files in DATA/accounts/*/*/msg/ whose bytes contain token."""
        if isinstance(token, str):
            token = token.encode()
        hits = []
        for path in self.files_under("accounts"):
            if "%smsg%s" % (os.sep, os.sep) not in path:
                continue
            try:
                with open(path, "rb") as f:
                    if token in f.read():
                        hits.append(path)
            except OSError:
                pass
        return hits

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """Where the log ends now: pass it as wait_log(since=) to look only
        at what comes after."""
        return len(self.log())

    def wait_log(self, pattern, seconds=2, since=0, count=1):
        """Waits until the log (from offset since, see log_mark) has count
        lines matching the regex; returns the matching lines (fewer if the
        time ran out)."""
        deadline = time.monotonic() + timeout(seconds)
        while True:
            lines = [l for l in self.log()[since:].splitlines() if re.search(pattern, l)]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def check_log(self):
        """Fails on sanitizer reports, and on workers that died (the master
        restarts them, which would hide a crash) unless the test killed them
        on purpose (set .allow_worker_deaths)."""
        text = self.log()
        marker = sanitizer_report(text)
        if marker:
            pytest.fail("%s in the server log %s:\n%s" % (marker, self.logpath, text[-6000:]))
        if not self.allow_worker_deaths:
            died = [l for l in text.splitlines()
                    if re.search(r"action=died|action=exited status=[1-9]", l)]
            if died:
                pytest.fail("a worker died (%s):\n%s" % (self.logpath, "\n".join(died[:10])))

    # -- processes
    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def workers(self):
        """The worker processes (children of the master other than the
        queue runner, which names itself "tern-queue")."""
        return [p for p in self.children() if proc_comm(p) != "tern-queue"]

    def children(self):
        """Every child of the master: the workers and the queue runner."""
        return child_pids(self.proc.pid) if self.alive() else []

    def queue_runner(self):
        """pid of the queue runner process, or None."""
        for p in self.children():
            if proc_comm(p) == "tern-queue":
                return p
        return None

    def start(self):
        assert not self.alive(), "server already running"
        for attempt in range(3):
            with open(self.logpath, "ab") as log:
                log.write(b"=== test harness: serve started ===\n")
                log.flush()
                self.proc = subprocess.Popen([self.bin, "-c", self.conf, "serve"],
                                             stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=log, start_new_session=True)
            err = self._wait_banner(timeout(10))
            if err is None:
                return
            self.stop(check=False)
            if "in use" in self.log() and attempt < 2:
                self._move_ports()  # another process took our ports
                continue
            pytest.fail("server did not greet on %s:%d: %s\nlog:\n%s"
                        % (self.host, self.smtp_port, err, self.log()[-4000:]))

    def _wait_banner(self, limit):
        deadline = time.monotonic() + limit
        last = "no connection"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "serve exited with %d" % self.proc.returncode
            try:
                with socket.create_connection((self.host, self.smtp_port), timeout=1) as s:
                    s.settimeout(max(0.1, deadline - time.monotonic()))
                    data = b""
                    while not data.endswith(b"\r\n"):
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    if data.startswith(b"220 "):
                        s.sendall(b"QUIT\r\n")
                        try:
                            s.recv(4096)
                        except OSError:
                            pass
                        return None
                    last = "greeting %r" % data
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        return last

    def _wait_group_gone(self, pgid, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if not group_pids(pgid):
                return True
            time.sleep(0.05)
        return not group_pids(pgid)

    def stop(self, check=True):
        """SIGTERM; the master and its workers must be gone within 10 s."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        pgid = proc.pid
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout(10))
            gone = self._wait_group_gone(pgid, 2)
        except subprocess.TimeoutExpired:
            gone = False
        if not gone:
            left = group_pids(pgid)
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
            if check:
                pytest.fail("SIGTERM did not stop the server within %d s (still running: %s)"
                            % (timeout(10), left or [pgid]))
        if check and proc.returncode not in (0, -signal.SIGTERM):
            pytest.fail("serve exited with %d after SIGTERM\nlog:\n%s"
                        % (proc.returncode, self.log()[-4000:]))

    def kill9(self):
        """kill -9 the master and every worker (the whole process group)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        assert self._wait_group_gone(proc.pid, 5), "processes survived SIGKILL"

    def restart(self):
        self.stop()
        self.start()

    def cleanup(self, keep=False):
        if keep or os.environ.get("TERN_KEEP"):
            return
        shutil.rmtree(self.base, ignore_errors=True)


class _Servers:
    def __init__(self, tern_bin):
        self.tern_bin = tern_bin
        self.servers = []

    def __call__(self, conf=None, start=True):
        srv = TernServer(self.tern_bin, conf)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def finish(self, session):
        errors = []
        for srv in self.servers:
            try:
                srv.stop()
            except BaseException as e:  # pytest.fail raises
                errors.append(str(e))
            try:
                srv.check_log()
            except BaseException as e:  # pytest.fail raises
                errors.append(str(e))
            srv.cleanup(keep=bool(errors) or session.testsfailed > 0)
        if errors:
            pytest.fail("\n".join(errors))


@pytest.fixture(scope="session")
def tern_bin():
    path = os.environ.get("TERN_BIN", DEFAULT_BIN)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("no Tern binary at %s (run `make build` or set TERN_BIN)" % path)
    return path


@pytest.fixture
def make_server(tern_bin, request):
    servers = _Servers(tern_bin)
    yield servers
    servers.finish(request.session)


@pytest.fixture(scope="module")
def module_server(tern_bin, request):
    servers = _Servers(tern_bin)
    yield servers
    servers.finish(request.session)


@pytest.fixture
def server_config():
    """Config keys for the `server` fixture; override or parametrize."""
    return {}


@pytest.fixture
def server(make_server, server_config):
    return make_server(conf=server_config)


# ------------------------------------------------------- docs/config.md

CONFIG_DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "docs", "config.md")


def doc_config_keys():
    """Every key of the table in docs/config.md's "Keys" section, in order:
    {key: True if its "on SIGHUP" column says restart, else False}.  A row
    may name several keys (`a`, `b`); every row must say either "restart"
    or "reloaded..." (anything else fails, so the column stays checkable)."""
    keys = {}
    in_keys = False
    with open(CONFIG_DOC, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                in_keys = line.strip() == "## Keys"
                continue
            if not in_keys or not line.startswith("| `"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            names = re.findall(r"`([^`]+)`", cells[0])
            on_hup = cells[-1]
            assert on_hup == "restart" or on_hup.startswith("reloaded"), \
                "docs/config.md: %s: on SIGHUP column %r" % (names, on_hup)
            for name in names:
                assert name not in keys, "docs/config.md lists %s twice" % name
                keys[name] = on_hup == "restart"
    assert keys, "no key table found in %s" % CONFIG_DOC
    return keys


# ------------------------------------------------------------- raw SMTP

class RawClient:
    """A bare line-protocol client over TCP: exact bytes in and out.
    Subclasses (SMTPRaw, POP3Raw, ...) add the protocol's reply parsing."""

    def __init__(self, host, port, timeout_s=10):
        self.sock = socket.create_connection((host, port), timeout=timeout(timeout_s))
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def raw_line(self):
        """One line as bytes, without its CRLF (reads until one arrives)."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection (pending %r)" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line


class SMTPRaw(RawClient):
    """A bare SMTP client: send bytes, read replies exactly as sent.

    read_reply() returns (code, lines) where lines are the texts after
    "NNN-" / "NNN " (so "250 2.1.0 Ok" gives (250, ["2.1.0 Ok"])); the raw
    lines of the last reply are in .raw.
    """

    def __init__(self, host, port, timeout_s=10, read_banner=True):
        super().__init__(host, port, timeout_s)
        self.raw = []
        self.banner = self.read_reply() if read_banner else None

    def _read_line(self):
        line = self.raw_line()
        assert b"\n" not in line, "bare LF inside a reply line: %r" % line
        return line.decode("utf-8", "surrogateescape")

    def read_reply(self):
        self.raw = []
        lines = []
        code = None
        while True:
            line = self._read_line()
            self.raw.append(line)
            m = re.fullmatch(r"([2-5][0-9][0-9])([ -])(.*)", line, re.S)
            assert m, "malformed reply line %r" % line
            if code is None:
                code = int(m.group(1))
            assert int(m.group(1)) == code, "reply code changed inside a reply: %r" % self.raw
            lines.append(m.group(3))
            if m.group(2) == " ":
                return code, lines

    def cmd(self, line):
        """Sends one command line (CRLF added) and reads its reply."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        return self.read_reply()

    def ehlo(self, name="client.example.net"):
        code, lines = self.cmd("EHLO " + name)
        assert code == 250, (code, lines)
        return lines

    def pending(self, wait=0.3):
        """Bytes the server sent that nobody read yet (waits up to `wait`)."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except (socket.timeout, BlockingIOError):
            pass
        finally:
            self.sock.settimeout(timeout(10))
        data, self.buf = self.buf, b""
        return data

    def closed_by_server(self, wait=5):
        """True if the server closes the connection within `wait` seconds
        (any bytes still unread are dropped)."""
        self.sock.settimeout(timeout(wait))
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(timeout(10))


# ---------------------------------------------------- stored messages

_DKIM_FIELD = re.compile(rb"DKIM-Signature:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*", re.I)


def without_dkim(data):
    """data (a message, bytes or str) without the DKIM-Signature fields of
    its header section (those Tern adds to what leaves for other servers;
    tests/integration/test_dkim.py checks them), and their number."""
    as_str = isinstance(data, str)
    raw = data.encode("utf-8", "surrogateescape") if as_str else data
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head + b"\r\n"
    out, n, pos = [], 0, 0
    while pos < len(lines):
        m = _DKIM_FIELD.match(lines, pos)
        if m and (pos == 0 or lines[pos - 2:pos] == b"\r\n"):
            n += 1
            pos = m.end()
            continue
        nl = lines.index(b"\n", pos) + 1
        out.append(lines[pos:nl])
        pos = nl
    result = b"".join(out)[:-2] + sep + body
    return (result.decode("utf-8", "surrogateescape") if as_str else result), n


def split_stored(stored, sender):
    """Splits a stored message into (received_header_bytes, rest) after
    checking its first line is exactly "Return-Path: <sender>"."""
    if isinstance(sender, str):
        sender = sender.encode("utf-8")
    first = b"Return-Path: <" + sender + b">\r\n"
    assert stored.startswith(first), "stored message starts %r, want %r" % (stored[:200], first)
    rest = stored[len(first):]
    assert rest.startswith(b"Received: "), "no Received: after Return-Path: %r" % rest[:200]
    end = 0
    while True:
        nl = rest.index(b"\r\n", end)
        end = nl + 2
        if rest[end:end + 1] not in (b" ", b"\t"):
            break
    return rest[:end], rest[end:]


RECEIVED_RE = re.compile(
    r"Received: from (?P<helo>\S+) \(\[(?P<ip>[0-9a-fA-F.:]+)\]\)"
    r" by (?P<by>\S+) \(Tern\) with (?P<proto>\S+)"
    r"(?: \(using (?P<tls_version>\S+) with cipher (?P<tls_cipher>[^\s()]+)\))?"
    r" id (?P<id>[^\s;]+)"
    r"(?: for <(?P<for>[^>]*)>)?; (?P<date>.+)")


def parse_received(header):
    """Parses Tern's Received: header (bytes, folded) into a dict; checks
    folding and the date."""
    text = header.decode("utf-8")
    assert text.endswith("\r\n")
    for line in text[:-2].split("\r\n")[1:]:
        assert line[:1] in (" ", "\t") and line.strip(), "bad folded line %r" % line
    unfolded = re.sub(r"\s+", " ", text.replace("\r\n", "")).strip()
    m = RECEIVED_RE.fullmatch(unfolded)
    assert m, "Received: header does not match docs/smtp.md: %r" % text
    d = m.groupdict()
    when = email.utils.parsedate_to_datetime(d["date"])
    assert when.tzinfo is not None, "Received date without zone: %r" % d["date"]
    assert abs(when.timestamp() - time.time()) < 600, "Received date off: %r" % d["date"]
    return d


# ---------------------------------------------------------- certificates

def make_cert(folder, cn, names=(), days=30, key="ec"):
    """Makes folder/cert.pem (self-signed, CN=cn, subjectAltName DNS:cn and
    names) and folder/key.pem (0600) with the openssl command; key is "ec"
    (P-256) or "rsa" (2048).  Returns (cert_path, key_path)."""
    os.makedirs(folder, exist_ok=True)
    cert = os.path.join(folder, "cert.pem")
    keyf = os.path.join(folder, "key.pem")
    newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec"
              else ["-newkey", "rsa:2048"])
    san = ",".join("DNS:" + n for n in (cn,) + tuple(names))
    r = subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", str(days)] + newkey
                       + ["-keyout", keyf, "-out", cert, "-subj", "/CN=" + cn,
                          "-addext", "subjectAltName=" + san],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    os.chmod(keyf, 0o600)
    return cert, keyf


# ------------------------------------------------ reporting hook

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
