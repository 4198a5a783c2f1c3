"""Crash safety: "250" means durable, and a crash never shows half a message.

20 client threads deliver in a loop (unique Message-ID and counter in the
Subject of each message) while the server is hurt:
  test_kill9_under_load          SIGKILL to the whole process group, restart
  test_kill9_workers_under_load  SIGKILL to the workers only; the master
                                 replaces them and the load goes on
  test_graceful_stop_under_load  SIGTERM, restart
Afterwards every message that got "250" is in its mailbox exactly once and
complete, nothing appears twice, nothing refused is stored, and only
messages whose reply was lost may appear without a 250.

test_worker_restart: kill -9 the worker holding a connection; a new
connection is served within 2 s by its replacement.
"""

import os
import random
import re
import signal
import smtplib
import threading
import time
import uuid

from conftest import (HOSTNAME, SMTPRaw, child_pids, socket_owner, split_stored, timeout,
                      pid_alive)

ALICE, BOB = "alice@example.test", "bob@example.test"
SENDER = "load@client.example"
THREADS = 20
RUN_SECONDS = 2.0
SUBJECT_RE = re.compile(r"crash (\w+) t(\d+) n(\d+)$")


def crash_msg(run, t, n):
    mid = "crash-%s-%d-%d@client.example" % (run, t, n)
    lines = 5 + ((t * 31 + n * 17) % 9) * 60  # 0.2 .. 25 KB
    body = b"".join(b"line %05d of <%s> .......................\r\n" % (i, mid.encode())
                    for i in range(lines))
    msg = (b"From: <" + SENDER.encode() + b">\r\n"
           b"To: <" + (ALICE if (t + n) % 2 else BOB).encode() + b">\r\n"
           b"Subject: crash %s t%d n%d\r\n" % (run.encode(), t, n)
           + b"Message-ID: <" + mid.encode() + b">\r\n\r\n"
           + body + b"END <" + mid.encode() + b">\r\n")
    return mid, msg


class Load:
    """THREADS clients delivering in a loop; remembers what each message got."""

    def __init__(self, srv, run):
        self.srv = srv
        self.run = run
        self.stop = threading.Event()     # threads end
        self.chaos = threading.Event()    # from here on, failures are expected
        self.lock = threading.Lock()
        self.accepted = {}    # mid -> rcpt               (got 250)
        self.refused = {}     # mid -> reply              (got a 4xx/5xx)
        self.lost = set()     # mids whose reply never came (connection broke)
        self.attempted = {}   # mid -> (t, n, rcpt)
        self.errors = []      # failures outside the chaos
        self.accepted_after_chaos = 0
        self.threads = [threading.Thread(target=self.client, args=(t,), daemon=True)
                        for t in range(THREADS)]

    def start(self):
        for th in self.threads:
            th.start()

    def join(self):
        self.stop.set()
        for th in self.threads:
            th.join(timeout(15))
            assert not th.is_alive(), "a client thread hung"

    def client(self, t):
        n = 0
        while not self.stop.is_set():
            conn = None
            mid = None
            try:
                conn = smtplib.SMTP(self.srv.host, self.srv.smtp_port,
                                    local_hostname="load%d.client.example" % t,
                                    timeout=timeout(10))
                conn.ehlo()
                while not self.stop.is_set():
                    n += 1
                    mid, msg = crash_msg(self.run, t, n)
                    rcpt = ALICE if (t + n) % 2 else BOB
                    with self.lock:
                        self.attempted[mid] = (t, n, rcpt)
                    for step, call in (("MAIL", lambda: conn.mail(SENDER)),
                                       ("RCPT", lambda: conn.rcpt(rcpt)),
                                       ("DATA", lambda: conn.data(msg))):
                        code, resp = call()
                        if code != 250:
                            with self.lock:
                                self.refused[mid] = (step, code, resp)
                            raise RuntimeError("%s: %d %r" % (step, code, resp))
                    with self.lock:
                        self.accepted[mid] = rcpt
                        if self.chaos.is_set():
                            self.accepted_after_chaos += 1
                    mid = None
            except Exception as e:  # noqa: BLE001 - a kill makes every call fail
                with self.lock:
                    if mid is not None and mid not in self.refused:
                        self.lost.add(mid)
                    if not self.chaos.is_set():
                        self.errors.append("thread %d: %r" % (t, e))
                time.sleep(0.02)
            finally:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001
                        pass

    def verify(self, srv):
        """Every 250'd message is there once and complete; nothing else is,
        except messages whose reply was lost."""
        assert self.errors == [], "failures before the chaos:\n" + "\n".join(self.errors[:20])
        assert len(self.accepted) >= 10, "only %d messages accepted" % len(self.accepted)
        visible = {}  # mid -> list of (user, row)
        for user in (ALICE, BOB):
            for row in srv.mail_list(user):
                m = SUBJECT_RE.search(row["SUBJECT"])
                assert m, "unexpected message in %s: %r" % (user, row)
                if m.group(1) != self.run:
                    continue
                mid = "crash-%s-%s-%s@client.example" % (self.run, m.group(2), m.group(3))
                visible.setdefault(mid, []).append((user, row))
        print("accepted %d, lost %d, refused %d of %d attempted; visible %d" % (
            len(self.accepted), len(self.lost), len(self.refused), len(self.attempted),
            len(visible)))

        twice = {mid: v for mid, v in visible.items() if len(v) > 1}
        assert not twice, "messages stored twice: %r" % list(twice.items())[:5]
        missing = [mid for mid in self.accepted if mid not in visible]
        assert not missing, "%d of %d messages that got 250 are gone, e.g. %r" % (
            len(missing), len(self.accepted), missing[:5])
        for mid, rcpt in self.accepted.items():
            assert visible[mid][0][0] == rcpt, (mid, rcpt, visible[mid])
        refused = [(mid, self.refused[mid]) for mid in visible if mid in self.refused]
        assert not refused, "refused messages were stored: %r" % refused[:5]
        # a message without a 250 may be there only if its reply was lost
        unexpected = [mid for mid in visible if mid not in self.accepted and mid not in self.lost]
        assert not unexpected, "messages stored that were never in flight: %r" % unexpected[:5]

        # no partial message: every message that could have been cut (those
        # whose reply was lost, the last few of each thread) and a sample of
        # the rest, byte for byte
        last = {}
        for mid, (t, n, _) in self.attempted.items():
            last.setdefault(t, []).append((n, mid))
        check = {m for m in visible if m in self.lost}
        for items in last.values():
            check.update(mid for _, mid in sorted(items)[-3:] if mid in visible)
        rest = sorted(set(visible) - check)
        check.update(random.sample(rest, min(25, len(rest))))
        for mid in sorted(check):
            user, row = visible[mid][0]
            t, n, _ = self.attempted[mid]
            stored = srv.mail_cat(user, "INBOX", row["UID"])
            _, expected = crash_msg(self.run, t, n)
            received, body = split_stored(stored, SENDER)
            assert body == expected, "message %s stored partially or changed (%d of %d)" % (
                mid, len(body), len(expected))
            assert int(row["SIZE"]) == len(stored), (mid, row["SIZE"], len(stored))
        for mid, v in visible.items():
            t, n, _ = self.attempted[mid]
            _, expected = crash_msg(self.run, t, n)
            assert int(v[0][1]["SIZE"]) > len(expected), "SIZE too small for %s: %r" % (mid, v)


def check_works_and_uids_fresh(srv, run):
    """The (restarted) server delivers, and new UIDs do not reuse old ones."""
    old_uids = {int(r["UID"]) for r in srv.mail_list(ALICE)}
    mid, msg = crash_msg(run, 99, 1)
    with smtplib.SMTP(srv.host, srv.smtp_port, timeout=timeout(10)) as s:
        s.ehlo()
        assert s.mail(SENDER)[0] == 250
        assert s.rcpt(ALICE)[0] == 250
        assert s.data(msg)[0] == 250
    rows = srv.mail_list(ALICE)
    new = [r for r in rows if r["SUBJECT"] == "crash %s t99 n1" % run]
    assert len(new) == 1
    assert int(new[0]["UID"]) > max(old_uids, default=0), (new, max(old_uids, default=0))
    assert len({r["UID"] for r in rows}) == len(rows), "duplicate UIDs in INBOX"


def test_kill9_under_load(make_server):
    srv = make_server(conf={"workers": 2})
    run = uuid.uuid4().hex[:8]
    load = Load(srv, run)
    load.start()
    time.sleep(RUN_SECONDS)
    load.chaos.set()
    srv.kill9()  # master and workers, the whole process group
    load.join()
    srv.start()
    load.verify(srv)
    check_works_and_uids_fresh(srv, run)


def test_kill9_workers_under_load(make_server):
    """Workers die under load; the master replaces them and the load goes on."""
    srv = make_server(conf={"workers": 2})
    run = uuid.uuid4().hex[:8]
    load = Load(srv, run)
    load.start()
    time.sleep(RUN_SECONDS / 2)
    load.chaos.set()
    srv.allow_worker_deaths = True
    victims = child_pids(srv.pid)
    assert victims
    for pid in victims:  # the queue runner too, if it is a child: all must come back
        os.kill(pid, signal.SIGKILL)
    time.sleep(RUN_SECONDS)
    assert srv.alive(), "the master died with its workers"
    with load.lock:
        after = load.accepted_after_chaos
    load.join()
    assert after >= 10, "only %d messages accepted after the workers were killed" % after
    load.verify(srv)
    check_works_and_uids_fresh(srv, run)


def test_graceful_stop_under_load(make_server):
    """SIGTERM under load: nothing that got 250 is lost, nothing doubled."""
    srv = make_server(conf={"workers": 2})
    run = uuid.uuid4().hex[:8]
    load = Load(srv, run)
    load.start()
    time.sleep(RUN_SECONDS / 2)
    load.chaos.set()
    srv.stop()
    load.join()
    srv.start()
    load.verify(srv)
    check_works_and_uids_fresh(srv, run)


def test_worker_restart(make_server):
    srv = make_server(conf={"workers": 1})
    s = SMTPRaw(srv.host, srv.smtp_port)
    assert s.banner[0] == 220
    s.ehlo()
    kids = child_pids(srv.pid)
    worker = socket_owner(kids, srv.smtp_port, s.sock.getsockname()[1])
    assert worker, "no child of the master %d holds our connection (children %r)" % (
        srv.pid, kids)

    srv.allow_worker_deaths = True
    os.kill(worker, signal.SIGKILL)
    assert s.closed_by_server(5), "the killed worker's connection stayed open"
    s.close()

    t0 = time.monotonic()
    s2 = SMTPRaw(srv.host, srv.smtp_port, timeout_s=2)
    elapsed = time.monotonic() - t0
    assert s2.banner == (220, ["%s ESMTP Tern" % HOSTNAME])
    assert elapsed < timeout(2), "greeting took %.1f s after a worker died" % elapsed
    s2.ehlo()
    assert s2.cmd("MAIL FROM:<%s>" % SENDER) == (250, ["2.1.0 Ok"])
    assert s2.cmd("RCPT TO:<%s>" % ALICE) == (250, ["2.1.5 Ok"])
    assert s2.cmd("DATA")[0] == 354
    mid, msg = crash_msg("restart", 1, 1)
    s2.send(msg + b".\r\n")
    code, lines = s2.read_reply()
    assert code == 250, lines
    new_worker = socket_owner(child_pids(srv.pid), srv.smtp_port, s2.sock.getsockname()[1])
    s2.close()

    assert srv.alive(), "the master died with its worker"
    assert not pid_alive(worker)
    assert new_worker and new_worker != worker
    rows = [r for r in srv.mail_list(ALICE) if r["SUBJECT"] == "crash restart t1 n1"]
    assert len(rows) == 1


def test_connections_spread_over_workers_and_port_not_shared(make_server):
    """Each worker accepts on its own SO_REUSEPORT socket, so connections
    are spread over the workers by the kernel; and a second server started
    on the same ports is refused instead of silently joining the group."""
    import socket
    import subprocess
    srv = make_server(conf={"workers": 2})
    workers = srv.workers()
    assert len(workers) == 2
    socks = [socket.create_connection((srv.host, srv.smtp_port), timeout=timeout(10))
             for _ in range(40)]
    try:
        for s in socks:
            assert s.recv(512).startswith(b"220 ")
        owners = [socket_owner(workers, srv.smtp_port, s.getsockname()[1]) for s in socks]
        counts = {pid: owners.count(pid) for pid in workers}
        # Hash-spread: both workers get a fair share (40 connections; a
        # shared socket used to give one worker nearly all of them).
        assert min(counts.values()) >= 5, counts
    finally:
        for s in socks:
            s.close()
    r = subprocess.run([srv.bin, "-c", srv.conf, "serve"], capture_output=True,
                       timeout=timeout(20), stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r
    assert b"Address already in use" in r.stderr, r.stderr


def test_kill9_keeps_flag_changes(make_server):
    """Flag and keyword changes are committed without their own fsync
    (docs/architecture.md): an acknowledged STORE still survives kill -9
    of every process, and so does what was stored before and after."""
    import imaplib
    srv = make_server(conf={"workers": 2, "allow_plaintext_loopback": "yes"})
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=timeout(10)) as s:
        for i in range(1, 6):
            s.sendmail(SENDER, [ALICE], b"Subject: flags %d\r\n\r\nx\r\n" % i)
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    m.login(ALICE, "secret")
    m.select("INBOX")
    assert m.store("1:3", "+FLAGS", "(\\Flagged $Label1)")[0] == "OK"
    assert m.store("2", "-FLAGS", "(\\Flagged)")[0] == "OK"
    assert m.store("5", "+FLAGS", "(\\Answered)")[0] == "OK"
    srv.kill9()
    srv.start()
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    m.login(ALICE, "secret")
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:5", "(FLAGS)")
    assert typ == "OK"
    got = sorted(d.decode() for d in data)
    assert got == ["1 (FLAGS (\\Flagged $Label1))", "2 (FLAGS ($Label1))",
                   "3 (FLAGS (\\Flagged $Label1))", "4 (FLAGS ())", "5 (FLAGS (\\Answered))"]
    m.logout()


def test_kill9_mid_data_leaves_no_spool_files(make_server):
    """kill -9 while clients are inside DATA: the spool files of those
    transactions (nobody will finish them) are gone after the restart, and
    the restarted server still delivers.  (That a held file or a queue file
    of a queued message stays: unit test spool_clean_removes_only_orphans.)"""
    srv = make_server(conf={"workers": 2})
    clients = []
    body = b"".join(b"line %05d of an unfinished message .............\r\n" % i
                    for i in range(400))  # about 20 KB each
    for i in range(6):
        c = SMTPRaw(srv.host, srv.smtp_port, timeout_s=timeout(10))
        assert c.cmd("EHLO client.example")[0] == 250
        assert c.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
        assert c.cmd("RCPT TO:<%s>" % (ALICE if i % 2 else BOB))[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: unfinished %d\r\n\r\n" % i + body)
        clients.append(c)
    deadline = time.monotonic() + timeout(10)
    while len(srv.files_under("spool")) < len(clients):
        assert time.monotonic() < deadline, srv.files_under("spool")
        time.sleep(0.02)
    srv.kill9()
    for c in clients:
        c.close()
    assert len(srv.files_under("spool")) >= len(clients)
    srv.start()
    assert srv.files_under("spool") == []
    assert "action=spool_clean spool_removed=%d" % len(clients) in srv.log()
    check_works_and_uids_fresh(srv, uuid.uuid4().hex[:8])
    assert srv.files_under("spool") == []


APPEND_USERS = ["append%d@example.test" % i for i in range(6)]
APPEND_THREADS = 12
APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


def append_msg(run, t, n):
    lines = 3 + ((t * 13 + n * 7) % 11) * 40  # 0.1 .. 20 KB
    body = b"".join(b"append line %05d of t%d n%d ..........................\r\n" % (i, t, n)
                    for i in range(lines))
    return (b"From: <load@client.example>\r\nSubject: append %s t%d n%d\r\n\r\n"
            % (run.encode(), t, n) + body)


def test_kill9_under_concurrent_appends(make_server):
    """12 IMAP clients on 6 accounts APPEND in a loop (and now and then
    EXPUNGE one of their messages) while every process gets SIGKILL.
    APPEND and EXPUNGE are made durable off the event loop (store-commit.c)
    with their replies held: after the restart every APPEND that got OK is
    there with its bytes under the UID its APPENDUID said, every EXPUNGE
    that got OK took its message away, and new UIDs are above all of
    them."""
    import imaplib
    srv = make_server(conf={"workers": 2, "allow_plaintext_loopback": "yes",
                            "auth.max_pending_per_ip": "0", "auth.block_after": "0"})
    for u in APPEND_USERS:
        srv.cli_ok("user", "add", u, "--password", "secret")
    run = uuid.uuid4().hex[:8]
    lock = threading.Lock()
    chaos = threading.Event()
    acked = {}      # (user, subject) -> (uid, bytes)       APPEND OK
    expunged = {}   # (user, subject) -> uid                EXPUNGE OK
    expunging = set()  # (user, subject) whose EXPUNGE was sent, OK or not
    errors = []

    def client(t):
        user = APPEND_USERS[t % len(APPEND_USERS)]
        try:
            m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=timeout(20))
            m.login(user, "secret")
            m.select("INBOX")
        except Exception as e:  # noqa: BLE001
            if not chaos.is_set():
                with lock:
                    errors.append("t%d login: %r" % (t, e))
            return
        mine = []
        n = 0
        while not chaos.is_set() or n < 3:
            n += 1
            msg = append_msg(run, t, n)
            subject = "append %s t%d n%d" % (run, t, n)
            try:
                typ, data = m.append("INBOX", None, None, msg)
                if typ != "OK":
                    with lock:
                        errors.append("t%d APPEND: %r %r" % (t, typ, data))
                    return
                uid = int(APPENDUID_RE.search(data[0]).group(2))
                with lock:
                    acked[(user, subject)] = (uid, msg)
                mine.append((subject, uid))
                if n % 4 == 0:
                    subject, uid = mine.pop(0)
                    # from here on it may be gone: an EXPUNGE that the
                    # kill cut off before its OK may still be committed
                    with lock:
                        expunging.add((user, subject))
                    typ, _ = m.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
                    assert typ == "OK"
                    # UID EXPUNGE: only this session's message (another
                    # session on the account may have one marked too)
                    typ, data = m.uid("EXPUNGE", str(uid))
                    assert typ == "OK", data
                    with lock:
                        expunged[(user, subject)] = uid
            except Exception as e:  # noqa: BLE001
                if not chaos.is_set():
                    with lock:
                        errors.append("t%d: %r" % (t, e))
                return
            if chaos.is_set() and n > 1000:
                return

    threads = [threading.Thread(target=client, args=(t,), daemon=True)
               for t in range(APPEND_THREADS)]
    for th in threads:
        th.start()
    time.sleep(RUN_SECONDS)
    chaos.set()
    srv.kill9()
    for th in threads:
        th.join(timeout(30))
    assert errors == [], "failures before the kill:\n" + "\n".join(errors[:20])
    assert len(acked) >= 20, "only %d APPENDs acknowledged" % len(acked)
    srv.start()

    stored = {}  # (user, subject) -> row
    for u in APPEND_USERS:
        for row in srv.mail_list(u):
            stored[(u, row["SUBJECT"])] = row
    print("acknowledged %d appends, %d expunges; %d stored" % (
        len(acked), len(expunged), len(stored)))
    for key, (uid, msg) in acked.items():
        if key in expunged:
            assert key not in stored, "expunged (OK) but back after the crash: %r" % (key,)
            continue
        if key in expunging and key not in stored:
            print("EXPUNGE of %r cut off by the kill, committed" % (key,))
            continue  # its EXPUNGE was sent; the kill came before the OK
        assert key in stored, "APPEND got OK but is gone after kill -9: %r" % (key,)
        row = stored[key]
        assert int(row["UID"]) == uid, (key, row, uid)
        assert srv.mail_cat(key[0], "INBOX", uid) == msg, "bytes differ: %r" % (key,)
    # UIDs are never given out twice: a new APPEND lands above all of them
    for u in APPEND_USERS:
        m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=timeout(20))
        m.login(u, "secret")
        typ, data = m.append("INBOX", None, None, append_msg(run, 99, 1))
        assert typ == "OK", data
        uid = int(APPENDUID_RE.search(data[0]).group(2))
        seen = [v[0] for k, v in acked.items() if k[0] == u]
        assert uid > max(seen, default=0), (u, uid, max(seen, default=0))
        m.logout()
