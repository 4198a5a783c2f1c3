#!/usr/bin/python3
"""Self-test of the two POP3 load clients (pop3load.c and popload.py)
against a scripted fake server: edge cases of the multi-line parsing
(empty body, body starting with "..", lines of dots, a terminator split
over many reads) and a server whose LIST lies, which must fail the run.

    /usr/bin/python3 bench/pop3/selftest.py      (needs cc and zlib1g-dev)
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
BODIES = [  # as sent: dot-stuffed, CRLF
    b"",
    b"..starts with a dot\r\nx\r\n",
    b"a\r\n..\r\n...\r\nend. x.\r\n",
    b"Subject: x\r\n\r\n..dot line\r\nend\r\n",
]


def unstuffed(b):
    o = b.replace(b"\r\n..", b"\r\n.")
    return o[1:] if o.startswith(b"..") else o


def serve(conn, lie, slow):
    f = conn.makefile("rb")
    conn.sendall(b"+OK ready\r\n")
    for ln in f:
        w = ln.split()
        cmd = w[0].upper()
        if cmd == b"STAT":
            conn.sendall(b"+OK %d %d\r\n" % (len(BODIES), sum(len(unstuffed(b)) for b in BODIES) + lie))
        elif cmd == b"LIST":
            lines = b"".join(
                b"%d %d\r\n" % (i + 1, len(unstuffed(b)) + (lie if i == 2 else 0)) for i, b in enumerate(BODIES)
            )
            conn.sendall(b"+OK\r\n" + lines + b".\r\n")
        elif cmd == b"RETR":
            data = b"+OK\r\n" + BODIES[int(w[1]) - 1] + b".\r\n"
            if slow:  # one byte per segment
                for j in range(len(data)):
                    conn.sendall(data[j : j + 1])
                    time.sleep(0.001)
            else:
                conn.sendall(data)
        elif cmd == b"QUIT":
            conn.sendall(b"+OK bye\r\n")
            break
        else:
            conn.sendall(b"+OK\r\n")
    conn.close()


def main():
    tmp = tempfile.mkdtemp(prefix="pop3bench-selftest.")
    exe = os.path.join(tmp, "pop3load")
    subprocess.run(["cc", "-O2", "-Wall", "-o", exe, os.path.join(HERE, "pop3load.c"), "-lz"], check=True)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    port = srv.getsockname()[1]
    octets = sum(len(unstuffed(b)) for b in BODIES)
    crc = sum(zlib.crc32(b) for b in BODIES) & 0xFFFFFFFFFFFF
    want = ("messages=%d\toctets=%d\t" % (len(BODIES), octets), "checksum=%012x\t" % crc)
    failures = 0
    for client in ("c", "py"):
        for lie, slow in ((0, 0), (0, 1), (1, 0)):
            t = threading.Thread(target=lambda: serve(srv.accept()[0], lie, slow))
            t.start()
            if client == "c":
                cmd = [exe, str(port), "1", str(len(BODIES))]
            else:
                cmd = [sys.executable, os.path.join(HERE, "popload.py"), "retr", "--port", str(port),
                       "--users", "1", "--messages", str(len(BODIES))]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            t.join()
            if lie:
                ok = r.returncode == 1 and "RETR 3 gave 19 octets, LIST said 20" in r.stderr
            else:
                ok = r.returncode == 0 and all(w in r.stdout for w in want)
            print("%s %s lie=%d slow=%d: rc=%d %s" % ("ok  " if ok else "FAIL", client, lie, slow,
                                                   r.returncode, (r.stdout + r.stderr).strip()))
            failures += not ok
    os.unlink(exe)
    os.rmdir(tmp)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
