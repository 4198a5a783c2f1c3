#!/usr/bin/python3
"""Memory per idle IMAPS (TLS) connection: Tern, and Dovecot in the same run.

Opens CONNECTIONS connections to the server's imaps listener; each completes
a TLS 1.3 handshake and reads the IMAP greeting, then sits idle (with
--login it also LOGINs, SELECTs INBOX and enters IDLE).  Reports how much
the server's summed RSS and PSS (/proc/PID/smaps_rollup of the master and
every descendant) grew, per connection, in KiB.

    idle.py                     Tern 5,000; Dovecot 1,000 (high-security
                                login mode) and 5,000 (performance mode)
    idle.py --login             the same, logged in and in IDLE
    idle.py --dovecot-connections 0 --dovecot-perf-connections 0    Tern alone

One certificate and key (ECDSA P-256, or RSA-2048 with --key rsa), made in
the temp folder, serve both servers.  Dovecot's imap-login runs one process
per connection in its default high-security mode, and the peer
configuration (peers.md) caps each service at default_process_limit = 1200,
so that mode is measured with 1,000 connections; in performance mode
(service_count = 0, process_min_avail = one per CPU) a few login processes
serve every connection, so it takes the same count as Tern.  With --login
Dovecot also runs one imap process per session (capped at 1,200 too), so
both of its modes are measured with 1,000.  Must run as root.
"""

import argparse
import os
import random
import resource
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
STD_PORTS = (25, 80, 110, 143, 443, 465, 587, 993, 995, 4190)
SNI = "mx.example.test"


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


# --- IMAPS connections ---------------------------------------------------------

def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


class Imaps:
    def __init__(self, ctx, port, timeout):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self.s = ctx.wrap_socket(raw, server_hostname=SNI)
        except (OSError, ssl.SSLError):
            raw.close()
            raise
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("closed by the server")
            self.buf += d
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


def open_idle(port, count, login, users, batch, timeout=60.0):
    ctx = client_context()
    conns = []
    t0 = time.monotonic()
    info = None
    for start in range(0, count, batch):
        group = []
        try:
            for i in range(start, min(count, start + batch)):
                c = Imaps(ctx, port, timeout)
                group.append(c)
                if not c.line().startswith(b"* OK"):
                    raise ConnectionError("no * OK greeting")
                if info is None:
                    info = "%s %s" % (c.s.version(), c.s.cipher()[0])
                c.user = i % users + 1
            if login:
                for c in group:
                    c.s.sendall(b"a LOGIN test%d@example.test pass\r\n" % c.user)
                for c in group:
                    c.until(b"a")
                    c.s.sendall(b"b SELECT INBOX\r\n")
                for c in group:
                    c.until(b"b")
                    c.s.sendall(b"c IDLE\r\n")
                for c in group:
                    c.until(b"+")
        except (OSError, ConnectionError, ssl.SSLError) as e:
            for c in conns + group:
                c.s.close()
            raise RuntimeError("connection %d..%d of %d: %s" % (start + 1, start + len(group) + 1,
                                                               count, e))
        conns.extend(group)
    return conns, time.monotonic() - t0, info


def still_open(conns):
    """Connections the server has not closed (no FIN, no error)."""
    p = select.poll()
    for c in conns:
        p.register(c.s.fileno(), select.POLLRDHUP)
    gone = {fd for fd, ev in p.poll(0)
            if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR)}
    return sum(1 for c in conns if c.s.fileno() not in gone)


def measure(name, root, port, count, login, users, batch, settle):
    k0 = tcp_mem_kib()
    before = memory(root)
    log("%s: %d processes before, %d KiB RSS, %d KiB PSS"
        % (name, sum(before[2].values()), before[0], before[1]))
    conns, took, info = open_idle(port, count, login, users, batch)
    log("%s: %d TLS connections (%s) %s in %.1f s"
        % (name, len(conns), info, "logged in, in IDLE" if login else "with greetings", took))
    time.sleep(settle)
    after = memory(root)
    k1 = tcp_mem_kib()
    alive = still_open(conns)
    for c in conns:
        c.s.close()
    if alive != count:
        log("%s: WARNING only %d of %d connections still open after %.0f s"
            % (name, alive, count, settle))
    procs = ", ".join("%s x%d" % kv for kv in sorted(after[2].items()))
    return {
        "server": name, "connections": count,
        "rss0": before[0], "pss0": before[1], "rss1": after[0], "pss1": after[1],
        "nproc0": sum(before[2].values()), "nproc1": sum(after[2].values()),
        "procs": procs, "alive": alive, "tcpmem": k1 - k0, "secs": took,
    }


# --- servers -------------------------------------------------------------------

def wait_greeting(port, proc, seconds):
    ctx = client_context()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            c = Imaps(ctx, port, 2)
            ok = c.line().startswith(b"* OK")
            c.s.sendall(b"z LOGOUT\r\n")
            c.s.close()
            if ok:
                return True
        except (OSError, ConnectionError, ssl.SSLError):
            pass
        time.sleep(0.1)
    return False


def make_cert(work, key):
    d = os.path.join(work, "tls")
    os.mkdir(d)
    keyargs = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec"
               else ["-newkey", "rsa:2048"])
    subprocess.run(["openssl", "req", "-x509"] + keyargs +
                   ["-sha256", "-nodes", "-days", "30", "-subj", "/CN=" + SNI,
                    "-addext", "subjectAltName=DNS:" + SNI,
                    "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(os.path.join(d, "key.pem"), 0o600)
    return os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")


class Tern:
    def __init__(self, binary, work, cert, key, users, extra):
        self.dir = os.path.join(work, "tern")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        bases = list(range(20000, 60000, 1000))
        random.shuffle(bases)       # other helpers' test servers pick bases too
        base = next(b for b in bases if all(port_free(b + p) for p in STD_PORTS))
        self.port = base + 993
        subprocess.run([binary, "init", self.dir, "--port-base", str(base),
                        "--domain", "example.test", "--hostname", SNI],
                       check=True, stdout=subprocess.DEVNULL)
        conf = os.path.join(self.dir, "tern.conf")
        with open(conf) as f:
            lines = f.read().split("\n")
        # each "key = value" replaces the key's line (a key may not be
        # given twice), or is appended
        want = ["tls.cert = " + cert, "tls.key = " + key, "allow_plaintext_loopback = yes"]
        want += [kv.strip() for kv in extra.replace("\\n", "\n").split("\n") if "=" in kv]
        for kv in want:
            k = kv.split("=", 1)[0].strip()
            hits = [i for i, l in enumerate(lines) if l.split("=", 1)[0].strip() == k]
            if hits:
                lines[hits[0]] = kv
            else:
                lines.insert(len(lines) - 1, kv)
        if "imaps.listen = 127.0.0.1:%d" % self.port not in lines:
            sys.exit("idle.py: tern.conf has no imaps.listen line for port %d" % self.port)
        with open(conf, "w") as f:
            f.write("\n".join(lines))
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
        time.sleep(1)

    def stop(self):
        stop_tree(self.pid)
        self.logf.close()

    def problems(self):
        """warn/error lines of Tern's log."""
        out = []
        with open(self.logf.name, errors="replace") as f:
            for l in f:
                w = l.split()
                if len(w) < 2 or w[1] not in ("info", "debug"):
                    out.append(l.rstrip())
        return out


class Dovecot:
    def __init__(self, work, name, perf, cert, key, users, connections):
        d = os.path.join(work, name)
        self.name = name
        self.conf = os.path.join(d, "dovecot.conf")
        self.run = os.path.join(d, "run")
        self.log = os.path.join(d, "dovecot.log")
        mail = os.path.join(work, "mail")
        for p in (d, self.run, os.path.join(d, "state"), mail):
            os.makedirs(p, exist_ok=True)
        os.chmod(mail, 0o755)
        subprocess.run(["chown", "5000:5000", mail], check=True)
        self.port = next(p for p in range(10993, 12000) if port_free(p))
        with open(os.path.join(d, "users"), "w") as f:
            for u in range(1, users + 1):
                f.write("test%d:{PLAIN}pass:5000:5000::%s/test%d\n" % (u, mail, u))
        per_user = -(-connections // users)
        login = ("  service_count = 0\n  process_min_avail = %d\n" % os.cpu_count() if perf
                 else "  # default high-security mode: service_count = 1\n")
        with open(self.conf, "w") as f:
            f.write("""# Peer-measurement Dovecot config (peers.md), imaps only; run with dovecot -c THIS
protocols = imap
listen = 127.0.0.1
base_dir = %(run)s
state_dir = %(d)s/state
instance_name = tern-bench-%(name)s
log_path = %(d)s/dovecot.log
info_log_path = %(d)s/dovecot-info.log

ssl = yes
ssl_cert = <%(cert)s
ssl_key = <%(key)s
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

mail_max_userip_connections = %(maxuser)d
default_process_limit = 1200
default_client_limit = 6000
default_vsz_limit = 512M

service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %(port)d
    ssl = yes
  }
%(login)s}
""" % {"run": self.run, "d": d, "name": name, "cert": cert, "key": key,
                "maxuser": max(200, per_user + 10), "port": self.port, "login": login})
        subprocess.run(["dovecot", "-c", self.conf], check=True)
        self.pid = None
        end = time.monotonic() + 20
        while self.pid is None:
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
        time.sleep(2)   # let the probe's login process exit

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

    def problems(self):
        try:
            with open(self.log, errors="replace") as f:
                return [l.rstrip() for l in f
                        if any(w in l.lower() for w in ("error", "fatal", "panic"))]
        except OSError:
            return []


def report(results, login):
    print("idle %s TLS 1.3 connections" % ("logged-in (LOGIN, SELECT INBOX, IDLE)" if login
                                            else "not logged in (handshake + greeting)"))
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
    ap.add_argument("--connections", type=int, default=5000, help="Tern connections (5000)")
    ap.add_argument("--dovecot-connections", type=int, default=1000,
                    help="Dovecot, high-security login mode (1000; 0: not measured)")
    ap.add_argument("--dovecot-perf-connections", type=int, default=None,
                    help="Dovecot, performance login mode (default: as --connections, "
                         "1000 with --login; 0: not measured)")
    ap.add_argument("--login", action="store_true",
                    help="LOGIN, SELECT INBOX and IDLE on every connection")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--batch", type=int, default=100, help="connections logging in together")
    ap.add_argument("--key", choices=("ec", "rsa"), default="ec",
                    help="ec: ECDSA P-256 (default), rsa: RSA-2048")
    ap.add_argument("--tern", default=os.path.join(REPO, "build", "tern"))
    ap.add_argument("--tern-conf-extra", default="smtp.max_connections = 20000",
                    help="lines for tern.conf (default raises the per-worker session cap "
                         "of 5,000, so one worker may hold all connections)")
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    a = ap.parse_args()
    if a.dovecot_perf_connections is None:
        a.dovecot_perf_connections = 1000 if a.login else a.connections

    if os.geteuid() != 0:
        sys.exit("idle.py: must run as root")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # the servers inherit it
    need = max(a.connections, a.dovecot_connections, a.dovecot_perf_connections) + 100
    if hard < need:
        sys.exit("idle.py: RLIMIT_NOFILE hard limit %d is too low for %d connections" % (hard, need))
    log("RLIMIT_NOFILE %d (hard %d); uptime: %s" % (hard, hard, os.popen("uptime").read().strip()))

    work = tempfile.mkdtemp(prefix="tern-bench-tlsidle.")
    os.chmod(work, 0o755)
    cert, key = make_cert(work, a.key)
    servers = []
    results = []
    problems = []
    ok = False
    try:
        if a.connections > 0:
            if not os.access(a.tern, os.X_OK):
                sys.exit("idle.py: %s not built (make build)" % a.tern)
            binary = os.path.join(work, "tern.bin")    # a private copy
            shutil.copy2(a.tern, binary)
            t = Tern(binary, work, cert, key, a.users, a.tern_conf_extra)
            servers.append(t)
            results.append(measure("tern", t.pid, t.port, a.connections, a.login, a.users,
                                   a.batch, a.settle))
            t.stop()
            servers.remove(t)
            problems += ["tern: " + l for l in t.problems()]
        for name, perf, n in (("dovecot", False, a.dovecot_connections),
                              ("dovecot-perf", True, a.dovecot_perf_connections)):
            if n <= 0:
                continue
            d = Dovecot(work, name, perf, cert, key, a.users, n)
            servers.append(d)
            results.append(measure(name, d.pid, d.port, n, a.login, a.users, a.batch, a.settle))
            d.stop()
            servers.remove(d)
            problems += [name + ": " + l for l in d.problems()]
        ok = True
    finally:
        for s in servers:
            s.stop()
        if a.keep or not ok or problems:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(results, a.login)
    for p in problems[:10]:
        log("log problem: " + p)
    log("uptime: %s" % os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
