#!/usr/bin/python3
"""Load tools for bench/pop3/run.sh (Python standard library only).

run.sh uses `deliver`, and `retr --dump` for its unmeasured pass 0; the
measured runs use pop3load.c (the same load as `retr`, at about a third of
the CPU) unless CLIENT=py.

  popload.py deliver --port P --users N --messages M [--size S] [--seed X]
      Generates M deterministic messages of about S bytes for each of the
      users test1..testN@example.test and sends them over SMTP (one session
      per user, all users in parallel, MAIL/RCPT/DATA pipelined per message,
      RFC 2920).  Prints "delivered COUNT in SECONDS s".

  popload.py retr --port P --users N --messages M [--window W] [--dump DIR]
      The POP3 load: one process per user, all started together; each runs
      USER/PASS, STAT, LIST, RETR 1..M, QUIT (no DELE).  Checks every RETR's
      octet count (after removing the dot-stuffing) against LIST, STAT
      against LIST, and the message count against M.  Prints one line of
      tab-separated key=value fields (see cmd_retr).  --dump DIR writes
      every message, un-stuffed, into DIR/testK/Maildir/cur/ as Maildir files
      (name with S= and W= sizes and the seen flag), in the POP3 order.

The client reads with large recv() calls and finds the end of a RETR answer
with bytes.find("\\r\\n.\\r\\n"); it never splits the body into lines.  The
checksum is a sum of CRC-32s of the wire bytes of each body (dot-stuffed),
order independent, so two servers that send the same messages give the same
sum whatever their order.
"""
import argparse
import base64
import json
import os
import random
import resource
import socket
import sys
import time
import zlib

PASSWORD = "pass"
RECV = 256 * 1024


class ProtocolError(Exception):
    pass


class Conn:
    """A socket with a read buffer; lines end in CRLF."""

    def __init__(self, port, quickack=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.quickack = quickack
        self.buf = bytearray()
        self.pos = 0
        self.wire = 0  # bytes received
        self.chunk = bytearray(RECV)
        self.view = memoryview(self.chunk)

    def fill(self):
        if self.quickack:
            # diagnostic: ACK at once instead of the kernel's delayed ACK
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        n = self.sock.recv_into(self.chunk)
        if n == 0:
            raise ProtocolError("connection closed by the server")
        self.wire += n
        self.buf += self.view[:n]

    def compact(self):
        """Drops what has been consumed (only between replies: the offsets
        inside line() and multiline() stay valid while they fill)."""
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0

    def line(self):
        self.compact()
        start = self.pos
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                out = bytes(self.buf[self.pos : i])
                self.pos = i + 2
                return out
            start = max(self.pos, len(self.buf) - 1)
            self.fill()

    def multiline_span(self):
        """After a +OK line: (begin, end) offsets in self.buf of the data up
        to and including the CRLF before the terminating ".CRLF" (as sent,
        dot-stuffed); valid until the next read."""
        # the status line's CRLF is part of the search, for an empty body
        begin = self.pos
        if begin < 2:
            raise ProtocolError("multi-line data without a status line before it")
        start = begin - 2
        while True:
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                self.pos = i + 5
                return begin, i + 2
            start = max(begin - 2, len(self.buf) - 4)
            self.fill()

    def multiline(self):
        begin, end = self.multiline_span()
        return bytes(self.buf[begin:end])

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


def expect_ok(line, what):
    if not line.startswith(b"+OK"):
        raise ProtocolError("%s: %r" % (what, line[:200]))
    return line


def unstuff(body):
    out = body.replace(b"\r\n..", b"\r\n.")
    if out.startswith(b".."):
        out = out[1:]
    return out


def pop3_session(args, k):
    """One user's session; returns a dict of counts."""
    user = args.user_format.format(k)
    c = Conn(args.port, args.quickack)
    expect_ok(c.line(), "greeting")
    c.send(b"USER %s\r\n" % user.encode())
    expect_ok(c.line(), "USER")
    c.send(b"PASS %s\r\n" % PASSWORD.encode())
    expect_ok(c.line(), "PASS")
    c.send(b"STAT\r\n")
    st = expect_ok(c.line(), "STAT").split()
    n_stat, octets_stat = int(st[1]), int(st[2])
    c.send(b"LIST\r\n")
    expect_ok(c.line(), "LIST")
    sizes = {}
    for ln in c.multiline().split(b"\r\n")[:-1]:
        num, size = ln.split()
        sizes[int(num)] = int(size)
    if len(sizes) != n_stat or sum(sizes.values()) != octets_stat:
        raise ProtocolError(
            "%s: STAT %d %d but LIST has %d messages, %d octets"
            % (user, n_stat, octets_stat, len(sizes), sum(sizes.values()))
        )
    if n_stat != args.messages:
        raise ProtocolError("%s: %d messages, expected %d" % (user, n_stat, args.messages))
    mdir = None
    if args.dump:
        mdir = os.path.join(args.dump, "test%d" % k, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(mdir, sub), exist_ok=True)
    octets = 0
    crc = 0
    sent = 0
    got = 0
    window = max(1, args.window)
    while got < n_stat:
        while sent < n_stat and sent - got < window:
            sent += 1
            c.send(b"RETR %d\r\n" % sent)
        got += 1
        expect_ok(c.line(), "RETR %d" % got)
        begin, end = c.multiline_span()
        # no copy of the body: count and checksum in place
        n = end - begin - c.buf.count(b"\r\n..", begin, end)
        if c.buf.startswith(b"..", begin, end):
            n -= 1
        if n != sizes[got]:
            raise ProtocolError("%s: RETR %d gave %d octets, LIST said %d" % (user, got, n, sizes[got]))
        octets += n
        with memoryview(c.buf) as mv:
            crc += zlib.crc32(mv[begin:end])
        if mdir:
            data = unstuff(bytes(c.buf[begin:end]))
            # one second apart: Dovecot gives new files UIDs in name order
            name = "%d.M%dP%d.pop3bench,S=%d,W=%d:2,S" % (1700000000 + got, got, k, n, n)
            with open(os.path.join(mdir, "cur", name), "wb") as f:
                f.write(data)
    c.send(b"QUIT\r\n")
    expect_ok(c.line(), "QUIT")
    c.close()
    return {"messages": got, "octets": octets, "crc": crc, "wire": c.wire}


def run_children(n, work):
    """Forks n children, releases them together, waits for all.  work(k)
    returns a dict.  Returns (wall seconds, list of results, client CPU s)."""
    go_r, go_w = os.pipe()
    kids = []
    for k in range(1, n + 1):
        rr, rw = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            os.close(rr)
            code = 0
            try:
                os.read(go_r, 1)  # returns "" when the parent closes go_w
                res = work(k)
            except Exception as e:  # report any failure to the parent
                res = {"error": "session %d: %s" % (k, e)}
                code = 1
            os.write(rw, json.dumps(res).encode())
            os._exit(code)
        os.close(rw)
        kids.append((pid, rr))
    os.close(go_r)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    os.close(go_w)
    results = []
    for pid, rr in kids:
        data = b""
        while True:
            chunk = os.read(rr, 65536)
            if not chunk:
                break
            data += chunk
        os.close(rr)
        os.waitpid(pid, 0)
        try:
            results.append(json.loads(data))
        except ValueError:
            results.append({"error": "child %d: no result" % pid})
    t1 = time.perf_counter()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime)
    return t1 - t0, results, cpu


def cmd_retr(args):
    wall, results, cpu = run_children(args.users, lambda k: pop3_session(args, k))
    errors = [r["error"] for r in results if "error" in r]
    for e in errors:
        print("popload: " + e, file=sys.stderr)
    ok = [r for r in results if "error" not in r]
    msgs = sum(r["messages"] for r in ok)
    octets = sum(r["octets"] for r in ok)
    wire = sum(r["wire"] for r in ok)
    crc = sum(r["crc"] for r in ok) & 0xFFFFFFFFFFFF
    print(
        "wall=%.3f\tmessages=%d\toctets=%d\twire=%d\tchecksum=%012x\tclient_cpu=%.3f"
        "\tclient_user=%.3f\tclient_sys=%.3f\terrors=%d"
        % (wall, msgs, octets, wire, crc, cpu[0] + cpu[1], cpu[0], cpu[1], len(errors))
    )
    return 1 if errors else 0


# --- message generation and SMTP delivery ---------------------------------

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
    "mike november oscar papa quebec romeo sierra tango uniform victor whiskey "
    "server mailbox message queue delivery protocol header body attachment"
).split()


def make_message(seed, k, i, size):
    """A deterministic MIME message of `size` octets (CRLF line ends, at
    least about 2 KB): a text part (some lines starting with '.', for the
    dot-stuffing, and a padding line to make the size exact) and a base64
    attachment of random bytes filling most of it."""
    rng = random.Random("%d/%d/%d" % (seed, k, i))
    head = (
        "From: Load Generator <bench@client.test>\r\n"
        "To: <test%d@example.test>\r\n"
        "Subject: POP3 benchmark message %d for test%d\r\n"
        "Date: Sat, 01 Nov 2025 12:00:00 +0000\r\n"
        "Message-ID: <pop3bench.%d.%d.%d@client.test>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="=_b"\r\n'
        "\r\n"
        "--=_b\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n" % (k, i, k, seed, k, i)
    )
    lines = []
    for j in range(rng.randint(5, 15)):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        lines.append(("." if j % 4 == 1 else "") + words)
    text = "\r\n".join(lines) + "\r\n"
    att_head = (
        "--=_b\r\n"
        "Content-Type: application/octet-stream\r\n"
        'Content-Disposition: attachment; filename="data%d.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n" % i
    )
    tail = "--=_b--\r\n"
    fixed = len(head) + len(text) + len(att_head) + len(tail)
    full = max(0, (size - fixed - 100) // 78)  # base64 lines: 76 + CRLF
    pad = size - fixed - full * 78 - 2
    enc = base64.b64encode(rng.randbytes(full * 57))
    att = b"".join(enc[p * 76 : p * 76 + 76] + b"\r\n" for p in range(full))
    text += "." + "x" * max(pad - 1, 0) + "\r\n"
    return (head + text + att_head).encode() + att + tail.encode()


def smtp_reply(c):
    """One (possibly multi-line) SMTP reply: returns its code."""
    while True:
        ln = c.line()
        if len(ln) < 4 or ln[3:4] != b"-":
            return int(ln[:3])


def smtp_session(args, k):
    c = Conn(args.port)
    if smtp_reply(c) != 220:
        raise ProtocolError("no 220 greeting")
    c.send(b"EHLO client.test\r\n")
    if smtp_reply(c) != 250:
        raise ProtocolError("EHLO refused")
    rcpt = b"test%d@example.test" % k
    n = 0
    for i in range(1, args.messages + 1):
        data = make_message(args.seed, k, i, args.size)
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        if stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        c.send(b"MAIL FROM:<bench@client.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt)
        codes = (smtp_reply(c), smtp_reply(c), smtp_reply(c))
        if codes != (250, 250, 354):
            raise ProtocolError("message %d: MAIL/RCPT/DATA answered %s" % (i, codes))
        c.send(stuffed + b".\r\n")
        code = smtp_reply(c)
        if code != 250:
            raise ProtocolError("message %d: end of data answered %d" % (i, code))
        n += 1
    c.send(b"QUIT\r\n")
    smtp_reply(c)
    c.close()
    return {"messages": n}


def cmd_deliver(args):
    wall, results, _ = run_children(args.users, lambda k: smtp_session(args, k))
    errors = [r["error"] for r in results if "error" in r]
    for e in errors:
        print("popload: " + e, file=sys.stderr)
    n = sum(r.get("messages", 0) for r in results)
    print("delivered %d in %.1f s" % (n, wall))
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("deliver", "retr"):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--users", type=int, default=10)
        p.add_argument("--messages", type=int, default=500, help="per user")
        if name == "deliver":
            p.add_argument("--size", type=int, default=51200)
            p.add_argument("--seed", type=int, default=1)
        else:
            p.add_argument("--user-format", default="test{}@example.test")
            p.add_argument("--window", type=int, default=1, help="RETRs in flight (pipelining)")
            p.add_argument("--dump", default=None)
            p.add_argument(
                "--quickack",
                action="store_true",
                help="diagnostic: set TCP_QUICKACK before every read (no delayed ACKs)",
            )
    args = ap.parse_args()
    sys.exit(cmd_deliver(args) if args.cmd == "deliver" else cmd_retr(args))


if __name__ == "__main__":
    main()
