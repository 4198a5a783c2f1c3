#!/usr/bin/python3
"""Memory per idle SMTP connection: Tern (and Postfix's smtpd for comparison).

Opens CONNECTIONS SMTP connections that each read the 220 banner and then
sit idle, and reports how much the server's summed RSS and PSS (all of its
processes: /proc/PID/smaps_rollup of the master and every descendant) grew,
per connection, in KiB.

    idle.py                      start a fresh Tern (build/tern), 2,000 connections
    idle.py --attach PORT:PID    measure an already running Tern (PID = master)
    idle.py --postfix            also Postfix smtpd, 100 connections (see below)
    idle.py --postfix-only       Postfix alone

Postfix forks one smtpd per connection and caps every service at
default_process_limit = 100, so connection 101 onwards waits in the listen
queue without a banner: Postfix is measured with 100 connections (its
per-connection cost does not depend on the count).  Must run as root for
Postfix (and to read another user's smaps_rollup).
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

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PEERSH = os.path.join(HERE, "postfix-peer.sh")
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
    """(rss_kib, pss_kib) of one process, or None if it is gone."""
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


# --- connections ---------------------------------------------------------------

def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < need + 50:
        sys.exit("idle.py: RLIMIT_NOFILE hard limit %d is too low for %d connections" % (hard, need))


def read_banner(s, timeout):
    s.settimeout(timeout)
    data = b""
    while b"\n" not in data:
        chunk = s.recv(512)
        if not chunk:
            raise ConnectionError("closed before the banner")
        data += chunk
    # a multi-line banner ("220-...") continues until "220 "
    while not any(l.startswith(b"220 ") for l in data.split(b"\r\n")):
        chunk = s.recv(512)
        if not chunk:
            raise ConnectionError("closed inside the banner")
        data += chunk
    if not data.startswith(b"220"):
        raise ConnectionError("banner: %r" % data[:80])
    return data


def open_idle(port, count, timeout=10.0):
    socks = []
    t0 = time.monotonic()
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            read_banner(s, timeout)
        except (OSError, ConnectionError) as e:
            s.close()
            for x in socks:
                x.close()
            raise RuntimeError("connection %d of %d: %s" % (i + 1, count, e))
        socks.append(s)
    return socks, time.monotonic() - t0


def still_open(socks):
    """How many connections the server has not closed."""
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                continue
            alive += 1      # it said something (e.g. a 421)
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def tcp_mem_kib():
    """Kernel memory of all TCP sockets (both ends), KiB, /proc/net/sockstat."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                w = line.split()
                return int(w[w.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


def measure(name, root, port, count, settle):
    k0 = tcp_mem_kib()
    before = memory(root)
    log("%s: %d processes before, %d KiB RSS, %d KiB PSS"
        % (name, sum(before[2].values()), before[0], before[1]))
    socks, took = open_idle(port, count)
    log("%s: %d connections open with banners in %.1f s" % (name, len(socks), took))
    time.sleep(settle)
    after = memory(root)
    k1 = tcp_mem_kib()
    alive = still_open(socks)
    for s in socks:
        s.close()
    if alive != count:
        log("%s: WARNING only %d of %d connections still open after %.0f s"
            % (name, alive, count, settle))
    procs = ", ".join("%s x%d" % kv for kv in sorted(after[2].items()))
    return {
        "server": name, "connections": count,
        "rss0": before[0], "pss0": before[1], "rss1": after[0], "pss1": after[1],
        "nproc0": sum(before[2].values()), "nproc1": sum(after[2].values()),
        "procs": procs, "alive": alive, "tcpmem": k1 - k0,
    }


# --- servers -------------------------------------------------------------------

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


def listening(port):
    """Is something listening on TCP port (IPv4)?  Reads /proc/net/tcp, so
    it neither connects nor binds."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                return True
    return False


def wait_banner(port, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                read_banner(s, 5)
                s.sendall(b"QUIT\r\n")
                return True
        except (OSError, ConnectionError):
            time.sleep(0.1)
    return False


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


class Tern:
    def __init__(self, binary, work, extra):
        self.dir = os.path.join(work, "tern")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        base = next(b for b in range(20000, 60000, 1000)
                    if all(port_free(b + p) for p in STD_PORTS))
        self.port = base + 25
        subprocess.run([binary, "init", self.dir, "--port-base", str(base),
                        "--domain", "example.test", "--hostname", "mx.example.test"],
                       check=True, stdout=subprocess.DEVNULL)
        conf = os.path.join(self.dir, "tern.conf")
        if extra:
            with open(conf, "a") as f:
                f.write(extra.replace("\\n", "\n") + "\n")
        subprocess.run([binary, "-c", conf, "user", "add", "test1@example.test",
                        "--password", "pass"], check=True, stdout=subprocess.DEVNULL)
        self.logf = open(os.path.join(self.dir, "tern.log"), "wb")
        self.proc = subprocess.Popen([binary, "-c", conf, "serve"],
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        if not wait_banner(self.port, 20):
            self.stop()
            sys.exit("idle.py: Tern does not answer on port %d (log %s)" % (self.port, self.logf.name))
        time.sleep(1)   # let every worker finish starting

    def stop(self):
        stop_tree(self.pid)
        self.logf.close()


class Postfix:
    def __init__(self, work):
        peer = os.path.join(work, "postfix")
        self.peer = peer
        self.port = next(p for p in range(2525, 3000) if port_free(p))
        subprocess.run(["sh", PEERSH, "setup", peer, os.path.join(work, "postfix-mail"),
                        str(self.port)], check=True)
        subprocess.run(["sh", PEERSH, "start", peer], check=True)
        with open(os.path.join(peer, "queue", "pid", "master.pid")) as f:
            self.pid = int(f.read().strip())
        # wait for the listener without connecting: a probe connection would
        # leave an smtpd behind (max_idle 100 s) and spoil the baseline
        end = time.monotonic() + 10
        while not listening(self.port):
            if time.monotonic() > end:
                self.stop()
                sys.exit("idle.py: Postfix does not listen on port %d" % self.port)
            time.sleep(0.1)
        time.sleep(1)

    def stop(self):
        subprocess.run(["sh", PEERSH, "stop", self.peer])


def report(results):
    print("%-8s %6s %9s %9s %9s %9s %9s" % (
        "server", "conns", "procs", "RSS0 KiB", "RSS1 KiB", "PSS0 KiB", "PSS1 KiB"))
    for r in results:
        print("%-8s %6d %4d->%-4d %9d %9d %9d %9d" % (
            r["server"], r["connections"], r["nproc0"], r["nproc1"],
            r["rss0"], r["rss1"], r["pss0"], r["pss1"]))
    print()
    print("%-8s %6s %14s %14s" % ("server", "conns", "RSS KiB/conn", "PSS KiB/conn"))
    for r in results:
        n = r["connections"]
        print("%-8s %6d %14.1f %14.1f" % (r["server"], n, (r["rss1"] - r["rss0"]) / n,
                                          (r["pss1"] - r["pss0"]) / n))
    for r in results:
        print("# %s processes after: %s" % (r["server"], r["procs"]))
    for r in results:
        print("# %s: kernel TCP buffer memory (both ends, not in RSS/PSS) grew %d KiB"
              % (r["server"], r["tcpmem"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=2000, help="Tern connections (2000)")
    ap.add_argument("--postfix-connections", type=int, default=100,
                    help="Postfix connections (100 = default_process_limit)")
    ap.add_argument("--tern", default=os.path.join(REPO, "build", "tern"))
    ap.add_argument("--tern-conf-extra", default="",
                    help='lines appended to tern.conf, e.g. "workers = 2"')
    ap.add_argument("--attach", metavar="PORT:PID", help="measure a running Tern instead")
    ap.add_argument("--postfix", action="store_true", help="also measure Postfix")
    ap.add_argument("--postfix-only", action="store_true", help="measure Postfix alone")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds to wait after the last connection before measuring")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    a = ap.parse_args()

    raise_nofile(max(a.connections, a.postfix_connections))
    work = tempfile.mkdtemp(prefix="tern-bench-idle.")
    os.chmod(work, 0o755)
    servers = []
    results = []
    ok = False
    try:
        if not a.postfix_only:
            if a.attach:
                port, pid = a.attach.split(":")
                tern_port, tern_pid = int(port), int(pid)
            else:
                if not os.access(a.tern, os.X_OK):
                    sys.exit("idle.py: %s not built (make build)" % a.tern)
                # a private copy: others may rebuild build/tern meanwhile
                binary = os.path.join(work, "tern.bin")
                shutil.copy2(a.tern, binary)
                t = Tern(binary, work, a.tern_conf_extra)
                servers.append(t)
                tern_port, tern_pid = t.port, t.pid
            results.append(measure("tern", tern_pid, tern_port, a.connections, a.settle))
        if a.postfix or a.postfix_only:
            if os.geteuid() != 0:
                sys.exit("idle.py: Postfix needs root")
            p = Postfix(work)
            servers.append(p)
            results.append(measure("postfix", p.pid, p.port, a.postfix_connections, a.settle))
        ok = True
    finally:
        for s in servers:
            s.stop()
        if a.keep or not ok:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(results)


if __name__ == "__main__":
    main()
