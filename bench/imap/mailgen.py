#!/usr/bin/python3
"""Mail set-up for bench/imap/run.sh: the same messages for Tern and Dovecot.

    mailgen.py maildir ROOT [--users 20] [--messages 1000] [--size 3000] [--seed 1]
        writes ROOT/testK/Maildir/{cur,new,tmp} for K = 1..USERS (CRLF line
        ends, S= and W= sizes and the flags in the file names, file mtime =
        internal date) and ROOT/expect.tsv: per user, how many of its
        messages each search of the load matches.
    mailgen.py append ROOT --port PORT [--users 20]
        APPENDs every user's Maildir to Tern over IMAP, in file-name order,
        100 messages per MULTIAPPEND command (LITERAL+), with the same flags
        and internal dates, so Tern's UIDs 1..N are Dovecot's.

Deterministic for a given seed.  Stdlib only (run with /usr/bin/python3).
Message i (0-based) of every user has internal date and Date: header
2024-01-01 12:00 UTC + 6 h * i (so SINCE 1-Jun-2024 matches i >= 608); about
one subject in eight holds the word SUBJECT_WORD; 30 % are unseen.
"""

import argparse
import os
import random
import socket
import sys
import time

SUBJECT_WORD = "quarterly"
SINCE = "1-Jun-2024"
BASE = 1704110400          # 2024-01-01 12:00:00 UTC
STEP = 6 * 3600
SINCE_TS = 1717200000      # 2024-06-01 00:00:00 UTC

WORDS = ("report meeting budget review project update notes draft plan team "
         "schedule invoice order status travel lunch agenda minutes release "
         "design issue question answer request offer contract summary weekly "
         "monthly final proposal feedback customer server network backup").split()
NAMES = ("alice bob carol dave erin frank grace heidi ivan judy mallory "
         "niaj olivia peggy rupert sybil trent victor walter").split()
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()


def rfc5322_date(ts):
    t = time.gmtime(ts)
    return "%s, %d %s %d %02d:%02d:%02d +0000" % (
        DAYS[t.tm_wday], t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


def imap_date(ts):
    t = time.gmtime(ts)
    return "%2d-%s-%d %02d:%02d:%02d +0000" % (
        t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


def message(rng, user, i, size):
    """(bytes with CRLF line ends, subject_has_word, seen)"""
    words = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
    has_word = rng.random() < 0.125
    if has_word:
        words.insert(rng.randint(0, len(words)), SUBJECT_WORD.capitalize())
    seen = rng.random() >= 0.3
    sender = rng.choice(NAMES)
    cc = rng.choice(NAMES)
    head = [
        "Return-Path: <%s@example.org>" % sender,
        "Message-ID: <bench.%d.%d@example.org>" % (user, i),
        "Date: " + rfc5322_date(BASE + STEP * i),
        "From: %s %s <%s@example.org>" % (sender.capitalize(), "Example", sender),
        "To: Test User %d <test%d@example.test>" % (user, user),
        "Cc: %s@example.org" % cc,
        "Subject: " + " ".join(words),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "Content-Transfer-Encoding: 7bit",
    ]
    if i > 0 and rng.random() < 0.3:
        head.append("In-Reply-To: <bench.%d.%d@example.org>" % (user, rng.randrange(i)))
    text = "\r\n".join(head) + "\r\n\r\n"
    target = rng.randint(size // 2, size * 3 // 2)
    lines = []
    n = len(text)
    while n < target:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        lines.append(line)
        n += len(line) + 2
    text += "\r\n".join(lines) + "\r\n"
    return text.encode("ascii"), has_word, seen


def cmd_maildir(a):
    expect = []
    for user in range(1, a.users + 1):
        rng = random.Random("%d/%d" % (a.seed, user))
        md = os.path.join(a.root, "test%d" % user, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        subj = since = unseen = 0
        for i in range(a.messages):
            data, has_word, seen = message(rng, user, i, a.size)
            ts = BASE + STEP * i
            name = "%d.M%06dP%d.bench,S=%d,W=%d:2,%s" % (ts, i, user, len(data), len(data),
                                                        "S" if seen else "")
            path = os.path.join(md, "cur", name)
            with open(path, "wb") as f:
                f.write(data)
            os.utime(path, (ts, ts))
            subj += has_word
            since += ts >= SINCE_TS
            unseen += not seen
        expect.append("%d\t%d\t%d\t%d\t%d\n" % (user, a.messages, subj, unseen, since))
    with open(os.path.join(a.root, "expect.tsv"), "w") as f:
        f.write("# user\tmessages\tsubject_%s\tunseen\tsince_%s\n" % (SUBJECT_WORD, SINCE))
        f.writelines(expect)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""
        self.n = 0

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise RuntimeError("connection closed")
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def cmd(self, parts):
        """parts: bytes; returns the tagged line (must be OK)."""
        self.n += 1
        tag = b"L%d" % self.n
        self.s.sendall(tag + b" " + parts + b"\r\n")
        while True:
            l = self.line()
            if l.startswith(tag + b" "):
                if not l.startswith(tag + b" OK"):
                    raise RuntimeError("%r -> %r" % (parts[:80], l[:200]))
                return l


def cmd_append(a):
    t0 = time.monotonic()
    total = 0
    for user in range(1, a.users + 1):
        md = os.path.join(a.root, "test%d" % user, "Maildir", "cur")
        names = sorted(os.listdir(md), key=lambda n: (int(n.split(".")[0]), n))
        c = Conn(a.port)
        if not c.line().startswith(b"* OK"):
            raise RuntimeError("no greeting")
        c.cmd(b"LOGIN test%d@example.test pass" % user)
        for k in range(0, len(names), a.chunk):
            parts = [b"APPEND INBOX"]
            for name in names[k:k + a.chunk]:
                with open(os.path.join(md, name), "rb") as f:
                    data = f.read()
                flags = b"(\\Seen)" if name.endswith("S") else b"()"
                ts = int(name.split(".")[0])
                parts.append(b" %s \"%s\" {%d+}\r\n" % (flags, imap_date(ts).encode(), len(data)) + data)
            c.cmd(b"".join(parts))
            total += len(names[k:k + a.chunk])
        c.cmd(b"LOGOUT")
        c.s.close()
    print("appended %d messages in %.1f s" % (total, time.monotonic() - t0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("maildir")
    m.add_argument("root")
    m.add_argument("--users", type=int, default=20)
    m.add_argument("--messages", type=int, default=1000)
    m.add_argument("--size", type=int, default=3000)
    m.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("append")
    p.add_argument("root")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--chunk", type=int, default=100)
    a = ap.parse_args()
    if a.cmd == "maildir":
        cmd_maildir(a)
    else:
        cmd_append(a)


if __name__ == "__main__":
    sys.exit(main())
