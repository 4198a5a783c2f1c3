#!/usr/bin/python3
"""Memory per idle IMAP connection in IDLE: Tern, and Dovecot in the same run.

Opens CONNECTIONS IMAP connections that each LOGIN (users test1..testUSERS
round-robin), SELECT INBOX (MESSAGES messages, the same files for both
servers, from mailgen.py) and enter IDLE, and reports how much the
server's summed RSS and PSS (all of its processes: /proc/PID/smaps_rollup
of the master and every descendant) grew, per connection, in KiB.

    idle.py                           Tern 10,000 + Dovecot 1,000 (defaults)
    idle.py --connections 2000 --dovecot-connections 0      Tern alone
    idle.py --dovecot-client-limit 1000 --dovecot-connections 10000
        Dovecot's best case: one imap process serves up to 1,000 sessions

Dovecot by default runs one imap process per connection (service imap
client_limit = 1); the peer configuration of peers.md caps processes at
default_process_limit = 1200, so it is measured with 1,000 connections
unless told otherwise (its cost per connection is one imap process).
Connections are opened in batches (BATCH connections LOGIN together), so
that Tern's password checks (yescrypt, ~25 ms each) run on both workers.
Must run as root (Dovecot, and reading the servers' smaps_rollup).
"""

import argparse
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GEN = os.path.join(HERE, "mailgen.py")
PY = "/usr/bin/python3"
STD_PORTS = (25, 80, 110, 143, 443, 465, 587, 993, 995, 4190)


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


# --- processes and memory ----------------------------------------------------

def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(root):
    kids = children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def rollup(pid):
    rss = pss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        return None
    return rss, pss


def memory(root):
    """Summed RSS, PSS (KiB) of root's tree, and {comm: count}."""
    rss = pss = 0
    names = {}
    for p in tree(root):
        m = rollup(p)
        if m is None:
            continue
        rss += m[0]
        pss += m[1]
        c = comm(p)
        names[c] = names.get(c, 0) + 1
    return rss, pss, names


def tcp_mem_kib():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                w = line.split()
                return int(w[w.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


def stop_tree(root, seconds=10):
    pids = tree(root)
    try:
        os.kill(root, signal.SIGTERM)
    except ProcessLookupError:
        pass
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if os.waitpid(root, os.WNOHANG)[0] == root:
                break
        except ChildProcessError:
            try:
                os.kill(root, 0)
            except ProcessLookupError:
                break
        time.sleep(0.1)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(root, 0)
    except ChildProcessError:
        pass


def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def owns_port(root, port):
    """Is the listener on port held by root's tree only?"""
    out = subprocess.run(["ss", "-Htlnp", "sport = :%d" % port], capture_output=True,
                         text=True).stdout
    pids = {int(x.split("=")[1]) for x in out.replace(",", " ").split() if x.startswith("pid=")}
    return bool(pids) and pids <= set(tree(root))


# --- IMAP connections ----------------------------------------------------------

class Imap:
    def __init__(self, port, timeout):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.comp = self.decomp = None

    def send(self, data):
        if self.comp is not None:
            data = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)

    def deflate(self):
        """After the tagged OK of COMPRESS DEFLATE (RFC 4978)."""
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)
        if self.buf:
            self.buf = self.decomp.decompress(self.buf)

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("closed by the server")
            self.buf += self.decomp.decompress(d) if self.decomp else d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def until(self, tag):
        """Reads up to the tagged line (must be OK); tag b"+" stops at a continuation."""
        while True:
            l = self.line()
            if tag == b"+" and l.startswith(b"+"):
                return l
            if l.startswith(b"* BYE"):
                raise ConnectionError(l.decode(errors="replace"))
            if l.startswith(tag + b" "):
                if not l.startswith(tag + b" OK"):
                    raise ConnectionError(l.decode(errors="replace"))
                return l


def open_idle(port, count, users, batch, timeout=60.0, compress=False):
    conns = []
    t0 = time.monotonic()
    for start in range(0, count, batch):
        group = []
        for i in range(start, min(count, start + batch)):
            c = Imap(port, timeout)
            c.user = i % users + 1
            group.append(c)
        try:
            for c in group:
                if not c.line().startswith(b"* OK"):
                    raise ConnectionError("no greeting")
                c.s.sendall(b"a LOGIN test%d@example.test pass\r\n" % c.user)
            for c in group:
                c.until(b"a")
                if compress:
                    c.send(b"z COMPRESS DEFLATE\r\n")
            for c in group:
                if compress:
                    # the OK is the last plain line; nothing follows it yet
                    c.until(b"z")
                    c.deflate()
                c.send(b"b SELECT INBOX\r\n")
            for c in group:
                c.until(b"b")
                c.send(b"c IDLE\r\n")
            for c in group:
                c.until(b"+")
        except (OSError, ConnectionError) as e:
            for c in conns + group:
                c.s.close()
            raise RuntimeError("connection %d..%d of %d: %s" % (start + 1, start + len(group), count, e))
        conns.extend(group)
    return conns, time.monotonic() - t0


def still_open(conns):
    alive = 0
    for c in conns:
        c.s.setblocking(False)
        try:
            if c.s.recv(1, socket.MSG_PEEK) == b"":
                continue
            alive += 1      # it said something (e.g. "* OK Still here")
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def measure(name, root, port, count, users, batch, settle, compress=False):
    k0 = tcp_mem_kib()
    before = memory(root)
    log("%s: %d processes before, %d KiB RSS, %d KiB PSS"
        % (name, sum(before[2].values()), before[0], before[1]))
    conns, took = open_idle(port, count, users, batch, compress=compress)
    log("%s: %d connections logged in, INBOX selected, in IDLE, in %.1f s" % (name, len(conns), took))
    time.sleep(settle)
    after = memory(root)
    k1 = tcp_mem_kib()
    alive = still_open(conns)
    for c in conns:
        c.s.close()
    if alive != count:
        log("%s: WARNING only %d of %d connections still open after %.0f s" % (name, alive, count, settle))
    procs = ", ".join("%s x%d" % kv for kv in sorted(after[2].items()))
    return {
        "server": name, "connections": count,
        "rss0": before[0], "pss0": before[1], "rss1": after[0], "pss1": after[1],
        "nproc0": sum(before[2].values()), "nproc1": sum(after[2].values()),
        "procs": procs, "alive": alive, "tcpmem": k1 - k0, "secs": took,
    }


# --- servers -------------------------------------------------------------------

def wait_greeting(port, proc, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            c = Imap(port, 2)
            ok = c.line().startswith(b"* OK")
            c.s.sendall(b"z LOGOUT\r\n")
            c.s.close()
            if ok:
                return True
        except (OSError, ConnectionError):
            pass
        time.sleep(0.1)
    return False


class Tern:
    def __init__(self, binary, work, mail, users, extra):
        import random
        self.dir = os.path.join(work, "tern")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        bases = list(range(20000, 60000, 1000))
        random.shuffle(bases)       # other helpers' test servers pick bases too
        base = next(b for b in bases if all(port_free(b + p) for p in STD_PORTS))
        self.port = base + 143
        subprocess.run([binary, "init", self.dir, "--port-base", str(base),
                        "--domain", "example.test", "--hostname", "mx.example.test"],
                       check=True, stdout=subprocess.DEVNULL)
        conf = os.path.join(self.dir, "tern.conf")
        with open(conf) as f:
            text = f.read()
        if "\nallow_plaintext_loopback = no\n" not in text:
            sys.exit("idle.py: tern.conf has no 'allow_plaintext_loopback = no' line")
        text = text.replace("\nallow_plaintext_loopback = no\n", "\nallow_plaintext_loopback = yes\n")
        # each "key = value" of extra replaces the key's line (a key may not
        # be given twice), or is appended
        lines = text.split("\n")
        for kv in extra.replace("\\n", "\n").split("\n"):
            if "=" not in kv:
                continue
            key = kv.split("=", 1)[0].strip()
            hits = [i for i, l in enumerate(lines) if l.split("=", 1)[0].strip() == key]
            if hits:
                lines[hits[0]] = kv.strip()
            else:
                lines.insert(len(lines) - 1, kv.strip())
        text = "\n".join(lines)
        with open(conf, "w") as f:
            f.write(text)
        for u in range(1, users + 1):
            subprocess.run([binary, "-c", conf, "user", "add", "test%d@example.test" % u,
                            "--password", "pass"], check=True, stdout=subprocess.DEVNULL)
        self.logf = open(os.path.join(self.dir, "tern.log"), "wb")
        self.proc = subprocess.Popen([binary, "-c", conf, "serve"],
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        if not wait_greeting(self.port, self.proc, 20) or not owns_port(self.pid, self.port):
            self.stop()
            sys.exit("idle.py: Tern does not answer on port %d (log %s)" % (self.port, self.logf.name))
        subprocess.run([PY, GEN, "append", mail, "--port", str(self.port), "--users", str(users)],
                       check=True, stdout=subprocess.DEVNULL)
        time.sleep(1)

    def stop(self):
        stop_tree(self.pid)
        self.logf.close()


class Dovecot:
    def __init__(self, work, mail, users, client_limit, connections):
        d = os.path.join(work, "dovecot")
        self.conf = os.path.join(d, "dovecot.conf")
        self.run = os.path.join(work, "dovecot-run")
        for p in (d, self.run, os.path.join(work, "dovecot-state")):
            os.makedirs(p, exist_ok=True)
        self.port = next(p for p in range(10143, 11000) if port_free(p))
        with open(os.path.join(d, "users"), "w") as f:
            for u in range(1, users + 1):
                f.write("test%d:{PLAIN}pass:5000:5000::%s/test%d\n" % (u, mail, u))
        per_user = -(-connections // users)
        limits = """mail_max_userip_connections = %d
default_process_limit = 1200
default_client_limit = 6000
default_vsz_limit = 512M
""" % max(200, per_user + 10)
        if client_limit > 1:
            limits += """service imap {
  service_count = 0
  client_limit = %d
  process_limit = %d
}
""" % (client_limit, -(-connections // client_limit) + 10)
        # the peer configuration of peers.md, IMAP only, self-contained
        with open(self.conf, "w") as f:
            f.write("""# Peer-measurement Dovecot config (peers.md), IMAP only; run with dovecot -c THIS
protocols = imap
listen = 127.0.0.1
base_dir = %(run)s
state_dir = %(work)s/dovecot-state
instance_name = dovecot-imapidle
log_path = %(d)s/dovecot.log
info_log_path = %(d)s/dovecot-info.log

ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%n %(d)s/users
}
userdb {
  driver = passwd-file
  args = username_format=%%n %(d)s/users
}
first_valid_uid = 5000
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
}

%(limits)s
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    port = 0
  }
}
""" % {"run": self.run, "work": work, "d": d, "limits": limits, "port": self.port})
        subprocess.run(["dovecot", "-c", self.conf], check=True)
        self.pid = None
        end = time.monotonic() + 20
        while self.pid is None:     # the daemon writes its pid file a moment later
            try:
                with open(os.path.join(self.run, "master.pid")) as f:
                    self.pid = int(f.read().strip())
            except (OSError, ValueError):
                if time.monotonic() > end:
                    self.stop()
                    sys.exit("idle.py: Dovecot wrote no master.pid")
                time.sleep(0.1)
        if not wait_greeting(self.port, None, 20) or not owns_port(self.pid, self.port):
            self.stop()
            sys.exit("idle.py: Dovecot does not answer on port %d" % self.port)
        time.sleep(2)   # let the probe's processes exit

    def stop(self):
        subprocess.run(["doveadm", "-c", self.conf, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if self.pid is None:
            return
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def report(results):
    print("%-14s %6s %11s %9s %9s %9s %9s %7s" % (
        "server", "conns", "procs", "RSS0 KiB", "RSS1 KiB", "PSS0 KiB", "PSS1 KiB", "open_s"))
    for r in results:
        print("%-14s %6d %5d->%-5d %9d %9d %9d %9d %7.1f" % (
            r["server"], r["connections"], r["nproc0"], r["nproc1"],
            r["rss0"], r["rss1"], r["pss0"], r["pss1"], r["secs"]))
    print()
    print("%-14s %6s %14s %14s" % ("server", "conns", "RSS KiB/conn", "PSS KiB/conn"))
    for r in results:
        n = r["connections"]
        print("%-14s %6d %14.1f %14.1f" % (r["server"], n, (r["rss1"] - r["rss0"]) / n,
                                          (r["pss1"] - r["pss0"]) / n))
    for r in results:
        print("# %s processes after: %s" % (r["server"], r["procs"]))
    for r in results:
        print("# %s: kernel TCP buffer memory (both ends, not in RSS/PSS) grew %d KiB"
              % (r["server"], r["tcpmem"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=10000, help="Tern connections (10000)")
    ap.add_argument("--dovecot-connections", type=int, default=1000,
                    help="Dovecot connections (1000; 0: Dovecot not measured)")
    ap.add_argument("--dovecot-client-limit", type=int, default=1,
                    help="service imap client_limit (1 = Dovecot's default: a process per connection)")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--messages", type=int, default=100, help="messages in each INBOX")
    ap.add_argument("--batch", type=int, default=100, help="connections logging in together")
    ap.add_argument("--tern", default=os.path.join(REPO, "build", "tern"))
    ap.add_argument("--tern-conf-extra",
                    default="smtp.max_connections = 20000\nauth.max_pending_per_ip = 0\n"
                            "auth.max_pending_per_account = 0\nauth.block_after = 0\n"
                            "auth.prefix_block_after = 0",
                    help="lines appended to tern.conf (default raises the per-worker "
                         "session cap of 5,000, so one worker may hold all connections, and "
                         "lifts the login limiter's bounds on checks in flight: %d logins "
                         "at once from one address look like an attack to it)" % 100)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--compress", action="store_true",
                    help="COMPRESS=DEFLATE (RFC 4978) on every connection before SELECT")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    a = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("idle.py: must run as root")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # Tern inherits it
    need = max(a.connections, a.dovecot_connections) + 100
    if hard < need:
        sys.exit("idle.py: RLIMIT_NOFILE hard limit %d is too low for %d connections" % (hard, need))
    log("RLIMIT_NOFILE %d (hard %d); uptime: %s" % (hard, hard, os.popen("uptime").read().strip()))

    work = tempfile.mkdtemp(prefix="tern-bench-imapidle.")
    os.chmod(work, 0o755)
    mail = os.path.join(work, "mail")
    subprocess.run([PY, GEN, "maildir", mail, "--users", str(a.users), "--messages", str(a.messages)],
                   check=True)
    os.chmod(mail, 0o755)
    servers = []
    results = []
    ok = False
    try:
        if a.connections > 0:
            if not os.access(a.tern, os.X_OK):
                sys.exit("idle.py: %s not built (make build)" % a.tern)
            binary = os.path.join(work, "tern.bin")    # a private copy
            shutil.copy2(a.tern, binary)
            t = Tern(binary, work, mail, a.users, a.tern_conf_extra)
            servers.append(t)
            results.append(measure("tern+deflate" if a.compress else "tern", t.pid, t.port,
                                   a.connections, a.users, a.batch, a.settle, a.compress))
            t.stop()
            servers.remove(t)
        if a.dovecot_connections > 0:
            subprocess.run(["chown", "-R", "5000:5000", mail], check=True)
            d = Dovecot(work, mail, a.users, a.dovecot_client_limit, a.dovecot_connections)
            servers.append(d)
            name = "dovecot" if a.dovecot_client_limit <= 1 else "dovecot/cl%d" % a.dovecot_client_limit
            results.append(measure(name, d.pid, d.port, a.dovecot_connections, a.users, a.batch,
                                   a.settle))
        ok = True
    finally:
        for s in servers:
            s.stop()
        if a.keep or not ok:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(results)
    log("uptime: %s" % os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
