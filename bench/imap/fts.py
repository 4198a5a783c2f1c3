#!/usr/bin/python3
"""SEARCH BODY on one mailbox of N messages (default 100,000): Tern without
its full-text index (every message file read: what Tern did before the
index), Tern with it, and Dovecot 2.3 with fts-xapian, on the same
messages.  Not a timed test: it prints medians for docs/performance.md.

    bench/imap/fts.py [--tern build/tern] [--messages 100000] [--size 2000]
                      [--reps 7] [--only tern|dovecot|both] [--keep]

Messages: bench/imap/mailgen.py's (plain text from a small vocabulary, so
"budget" is in nearly every one), each with one more body line
"reference zqNNNN" (NNNN = i mod 5000: each marker in N/5000 messages).
Tern: `tern init`, the messages APPENDed (100 per MULTIAPPEND) with
search.index_max_text = 0 (not indexed), SEARCH timed; then `tern index
rebuild` (timed), SEARCH timed again.  Dovecot: the peers.md configuration
with fts = xapian (fts_autoindex, fts_enforced), `doveadm index` (timed),
SEARCH timed.  Each SEARCH is sent --reps times after one untimed warm-up
on one logged-in connection; the median is printed.  Needs root (Dovecot's
mail user vmail, uid 5000) and dovecot-imapd + dovecot-fts-xapian
(installed with apt-get when missing).  Stdlib only.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mailgen  # noqa: E402

NEEDLES = [("rare", "zq0042"), ("common", "budget"), ("absent", "nosuchword")]


def log(msg):
    print("fts-bench: " + msg, flush=True)


def free_port(lo):
    for p in range(lo, lo + 2000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise RuntimeError("no free port")


def wait_banner(port, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("no IMAP greeting on port %d" % port)


def gen_maildir(root, n, size):
    rng = random.Random("fts/1")
    md = os.path.join(root, "test1", "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    for i in range(n):
        data, _, seen = mailgen.message(rng, 1, i, size)
        data += b"reference zq%04d\r\n" % (i % 5000)
        ts = mailgen.BASE + mailgen.STEP * i
        name = "%d.M%06dP1.bench,S=%d,W=%d:2,%s" % (ts, i, len(data), len(data),
                                                   "S" if seen else "")
        path = os.path.join(md, "cur", name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (ts, ts))


def time_searches(port, user, reps):
    c = mailgen.Conn(port)
    c.line()
    c.cmd(b"LOGIN %s pass" % user.encode())
    c.cmd(b"SELECT INBOX")
    out = {}
    for label, needle in NEEDLES:
        cmd = b"SEARCH BODY " + needle.encode()
        times, hits = [], None
        for k in range(reps + 1):
            t0 = time.monotonic()
            c.n += 1
            tag = b"S%d" % c.n
            c.s.sendall(tag + b" " + cmd + b"\r\n")
            while True:
                ln = c.line()
                if ln.startswith(b"* SEARCH"):
                    hits = len(ln.split()) - 2
                if ln.startswith(tag + b" "):
                    if not ln.startswith(tag + b" OK"):
                        raise RuntimeError("%r -> %r" % (cmd, ln))
                    break
            if k > 0:
                times.append(time.monotonic() - t0)
        out[label] = (statistics.median(times) * 1000.0, hits)
    c.cmd(b"LOGOUT")
    c.s.close()
    return out


def show(name, res):
    for label, needle in NEEDLES:
        ms, hits = res[label]
        log("%-28s SEARCH BODY %-10s (%s, %6d hits): median %9.1f ms"
            % (name, needle, label, hits, ms))


class Tern:
    def __init__(self, binary, work):
        self.bin = os.path.join(work, "tern.bin")
        shutil.copy(binary, self.bin)   # others may rebuild build/tern meanwhile
        self.dir = os.path.join(work, "tern")
        base = free_port(41000) // 1000 * 1000
        while True:
            ports = [base + p for p in (25, 143, 587, 465, 993, 110, 995, 80, 443, 4190)]
            if all(free_port(p) == p for p in ports):
                break
            base += 1000
        self.imap = base + 143
        self.cli("init", self.dir, "--port-base", str(base), "--domain", "example.test",
                 conf=False)
        self.conf = os.path.join(self.dir, "tern.conf")
        self.set(allow_plaintext_loopback="yes", **{"search.index_max_text": "0"})
        self.cli("user", "add", "test1@example.test", "--password", "pass")
        self.proc = None

    def cli(self, *args, conf=True):
        cmd = [self.bin] + (["-c", self.conf] if conf else []) + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr))
        return r.stdout

    def set(self, **kv):
        with open(self.conf) as f:
            lines = f.read().splitlines()
        out = []
        for ln in lines:
            key = ln.lstrip("# ").split(" =")[0]
            if key in kv:
                out.append("%s = %s" % (key, kv.pop(key)))
            else:
                out.append(ln)
        out += ["%s = %s" % kv_ for kv_ in kv.items()]
        with open(self.conf, "w") as f:
            f.write("\n".join(out) + "\n")

    def start(self):
        self.log = open(os.path.join(self.dir, "tern.log"), "ab")
        self.proc = subprocess.Popen([self.bin, "-c", self.conf, "serve"], stdout=self.log,
                                     stderr=self.log, start_new_session=True)
        wait_banner(self.imap)

    def stop(self):
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self.log.close()

    def db_size(self):
        total = 0
        for root, _, files in os.walk(os.path.join(self.dir, "data", "accounts")):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files
                         if f.startswith("account.db"))
        return total


def bench_tern(a, work, mailroot):
    t = Tern(a.tern, work)
    t.start()
    try:
        t0 = time.monotonic()
        mailgen.cmd_append(argparse.Namespace(root=mailroot, port=t.imap, users=1, chunk=100))
        log("tern: appended %d messages, index off, in %.1f s" % (a.messages, time.monotonic() - t0))
        before = time_searches(t.imap, "test1@example.test", a.reps)
        show("tern, no index (files read)", before)
        size0 = t.db_size()
    finally:
        t.stop()
    t.set(**{"search.index_max_text": "1M"})
    t0 = time.monotonic()
    t.cli("index", "rebuild", "test1@example.test")
    rebuild = time.monotonic() - t0
    log("tern: index rebuild of %d messages: %.1f s; account.db %.0f MB -> %.0f MB"
        % (a.messages, rebuild, size0 / 1e6, t.db_size() / 1e6))
    t.start()
    try:
        after = time_searches(t.imap, "test1@example.test", a.reps)
        show("tern, index", after)
        # the cost of indexing at APPEND: the first 10,000 again, to a new user
        t.cli("user", "add", "test2@example.test", "--password", "pass")
        sub = os.path.join(work, "sub")
        os.makedirs(os.path.join(sub, "test2", "Maildir", "cur"))
        src = os.path.join(mailroot, "test1", "Maildir", "cur")
        n2 = min(10000, a.messages)
        for name in sorted(os.listdir(src))[:n2]:
            os.link(os.path.join(src, name), os.path.join(sub, "test2", "Maildir", "cur", name))
        t0 = time.monotonic()
        append_user(t.imap, sub, 2)
        log("tern: appended %d messages, index on, in %.1f s" % (n2, time.monotonic() - t0))
    finally:
        t.stop()
    return before, after


def append_user(port, root, user):
    """mailgen.cmd_append for the one user testUSER."""
    md = os.path.join(root, "test%d" % user, "Maildir", "cur")
    names = sorted(os.listdir(md), key=lambda n: (int(n.split(".")[0]), n))
    c = mailgen.Conn(port)
    c.line()
    c.cmd(b"LOGIN test%d@example.test pass" % user)
    for k in range(0, len(names), 100):
        parts = [b"APPEND INBOX"]
        for name in names[k:k + 100]:
            with open(os.path.join(md, name), "rb") as f:
                data = f.read()
            ts = int(name.split(".")[0])
            parts.append(b" () \"%s\" {%d+}\r\n" % (mailgen.imap_date(ts).encode(), len(data))
                         + data)
        c.cmd(b"".join(parts))
    c.cmd(b"LOGOUT")
    c.s.close()


DOVECOT_CONF = """# Peer-measurement Dovecot config (/work/shared/peers.md), IMAP only,
# with fts-xapian; run with dovecot -c THIS
protocols = imap
listen = 127.0.0.1
base_dir = {work}/dovecot-run
state_dir = {work}/dovecot-state
instance_name = dovecot-ftsbench
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot-info.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/users
}}
first_valid_uid = 5000
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
mail_plugins = $mail_plugins fts fts_xapian
plugin {{
  fts = xapian
  fts_xapian = partial=3 full=20 verbose=0
  fts_autoindex = yes
  fts_enforced = yes
}}
default_vsz_limit = 2G
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def bench_dovecot(a, work, mailroot):
    if not (os.path.exists("/usr/lib/dovecot/imap") and
            os.path.exists("/usr/lib/dovecot/modules/lib21_fts_xapian_plugin.so")):
        log("installing dovecot-imapd dovecot-fts-xapian")
        subprocess.run(["apt-get", "install", "-y", "-q", "dovecot-imapd", "dovecot-fts-xapian"],
                       check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if subprocess.run(["getent", "passwd", "vmail"], stdout=subprocess.DEVNULL).returncode:
        subprocess.run(["groupadd", "-g", "5000", "vmail"])
        subprocess.run(["useradd", "-u", "5000", "-g", "5000", "-M", "-d", "/nonexistent",
                        "-s", "/usr/sbin/nologin", "vmail"], check=True)
    d = os.path.join(work, "dovecot")
    for sub in (d, os.path.join(work, "dovecot-run"), os.path.join(work, "dovecot-state")):
        os.makedirs(sub, exist_ok=True)
    home = os.path.join(work, "dmail")
    shutil.copytree(os.path.join(mailroot, "test1"), os.path.join(home, "test1"))
    subprocess.run(["chown", "-R", "5000:5000", home], check=True)
    with open(os.path.join(d, "users"), "w") as f:
        f.write("test1:{PLAIN}pass:5000:5000::%s/test1\n" % home)
    port = free_port(10143)
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(DOVECOT_CONF.format(work=work, d=d, port=port))
    subprocess.run(["dovecot", "-c", conf], check=True)
    try:
        wait_banner(port)
        t0 = time.monotonic()
        subprocess.run(["doveadm", "-c", conf, "index", "-u", "test1", "INBOX"], check=True)
        log("dovecot: doveadm index of %d messages: %.1f s"
            % (a.messages, time.monotonic() - t0))
        res = time_searches(port, "test1", a.reps)
        show("dovecot 2.3 + fts-xapian", res)
    finally:
        subprocess.run(["doveadm", "-c", conf, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tern", default=os.path.join(HERE, "..", "..", "build", "tern"))
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", choices=("tern", "dovecot", "both"), default="both")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tern-bench-fts.")
    os.chmod(work, 0o755)
    try:
        mailroot = os.path.join(work, "mail")
        t0 = time.monotonic()
        gen_maildir(mailroot, a.messages, a.size)
        log("generated %d messages in %.1f s (%s)" % (a.messages, time.monotonic() - t0, work))
        if a.only in ("tern", "both"):
            bench_tern(a, work, mailroot)
        if a.only in ("dovecot", "both"):
            bench_dovecot(a, work, mailroot)
    finally:
        if a.keep:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
