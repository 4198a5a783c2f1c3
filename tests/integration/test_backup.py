"""`tern backup DIR` and `tern restore DIR` (issue 23 item 4): a backup
taken while mail is delivered and flags and expunges happen over IMAP,
restored into a fresh data folder of a second server: every message
acknowledged before the backup started is there with its UID, UIDVALIDITY,
flags and exact bytes; a queued message is still queued; an incremental
backup takes only new files and drops expunged ones; restore refuses a
folder that is not empty or a backup that is not finished."""

import imaplib
import os
import re
import shutil
import smtplib
import socket
import tempfile
import threading
import uuid

import pytest

from conftest import HOST, PASSWORD, timeout
from test_spf_cli import dnsmasq

ALICE = "alice@example.test"
BOB = "bob@example.test"
CONF = {"allow_plaintext_loopback": "yes"}


def msg(token, size=0):
    return ("From: <writer@remote.example>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Message-ID: <%s@remote.example>\r\n\r\nbody of %s\r\n%s" %
            (ALICE, token, token, token, "x" * size)).encode()


def deliver(srv, rcpts, token, size=0):
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(20)) as c:
        c.sendmail("writer@remote.example", rcpts, msg(token, size))


def imap(srv, user=ALICE):
    c = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(20))
    c.login(user, PASSWORD)
    return c


def mailbox_state(srv, user, mbox="INBOX"):
    """UIDVALIDITY and {uid: (flags, bytes)} of a mailbox over IMAP."""
    c = imap(srv, user)
    typ, _ = c.select(mbox, readonly=True)
    assert typ == "OK"
    uidvalidity = c.untagged_responses.get("UIDVALIDITY", [b"0"])[-1]
    out = {}
    typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    for item in data:
        if not isinstance(item, tuple):
            continue
        head = item[0].decode()
        uid = int(re.search(r"UID (\d+)", head).group(1))
        flags = re.search(r"FLAGS \(([^)]*)\)", head).group(1)
        out[uid] = (set(flags.split()), item[1])
    c.logout()
    return uidvalidity, out


def backup(srv, dest):
    r = srv.cli("backup", dest)
    assert r.returncode == 0, r
    return r.stdout.decode()


def closed_port():
    with socket.socket() as sk:
        sk.bind((HOST, 0))
        return sk.getsockname()[1]


@pytest.fixture(scope="module")
def dns():
    with dnsmasq(["--host-record=remote.test,127.0.0.1"]) as addr:
        yield addr


def test_backup_under_load_restores_everything_acknowledged(make_server, dns):
    # a remote recipient whose server refuses connections: it stays queued
    src = make_server(conf=dict(CONF, remote_smtp_port=str(closed_port()), **{
        "dns.resolver": dns}))
    src.cli_ok("alias", "add", "far@example.test", "someone@remote.test")
    acked = []
    for i in range(20):
        t = "pre-%d-%s" % (i, uuid.uuid4().hex[:8])
        deliver(src, [ALICE, BOB], t, size=2000 * i)
        acked.append(t)
    deliver(src, ["far@example.test"], "queued-" + uuid.uuid4().hex[:8])
    # flags and an expunge before the backup
    c = imap(src)
    c.select("INBOX")
    assert c.uid("STORE", "1:3", "+FLAGS", r"(\Flagged $Label1)")[0] == "OK"
    assert c.uid("STORE", "4", "+FLAGS", r"(\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    c.logout()
    before = mailbox_state(src, ALICE)
    assert 4 not in before[1] and len(before[1]) == 19

    # load while the backup runs: deliveries, flag changes, expunges
    stop = threading.Event()
    started = threading.Event()
    errors = []

    def load():
        n = 0
        try:
            c = imap(src)
            c.select("INBOX")
            while not stop.is_set():
                deliver(src, [ALICE], "load-%d" % n, size=500)
                n += 1
                started.set()
                c.uid("STORE", "5:*", "+FLAGS", r"(\Seen)")
                if n % 3 == 0:
                    c.uid("STORE", str(20 + n), "+FLAGS", r"(\Deleted)")
                    c.expunge()
            c.logout()
        except Exception as e:  # reported below
            errors.append(e)
        started.set()

    th = threading.Thread(target=load)
    th.start()
    dest = os.path.join(src.base, "backup")
    try:
        assert started.wait(timeout(10))  # the load runs before the backup starts
        out = backup(src, dest)
    finally:
        stop.set()
        th.join(timeout(30))
    assert not errors, errors
    m = re.search(r"backup of \S+ into \S+: 3 accounts, (\d+) message files, "
                  r"1 queued messages\n", out)
    assert m, out
    assert os.path.isfile(os.path.join(dest, "data", "BACKUP"))
    assert os.path.isfile(os.path.join(dest, "tern.conf"))
    assert not os.path.exists(os.path.join(dest, "data", "spool"))

    # restore into a second server's fresh data folder
    dst = make_server(conf=CONF, start=False)
    shutil.rmtree(dst.data)
    r = dst.cli("restore", dest)
    assert r.returncode == 0, r
    assert re.match(r"restored \S+ into \S+: \d+ files linked, \d+ copied", r.stdout.decode())
    dst.start()
    uv_src, now_src = mailbox_state(src, ALICE)
    uv, restored = mailbox_state(dst, ALICE)
    assert uv == before[0] == uv_src
    # every message acknowledged before the backup, with its UID and
    # bytes; those untouched by the load with their flags too
    for uid, (flags, data) in before[1].items():
        assert uid in restored, (uid, sorted(restored))
        assert restored[uid][1] == data
        assert before[1][uid][0] <= restored[uid][0]
    assert restored[1][0] == {r"\Flagged", "$Label1"}
    # nothing the source never had: the others are the load's, with the
    # bytes the source has (unless the load expunged them since)
    for uid, (flags, data) in restored.items():
        assert uid in before[1] or b"\r\nSubject: load-" in data, uid
        if uid in now_src:
            assert now_src[uid][1] == data, uid
    # bob's copies (the same files, hard-linked) and the queued message
    _, bob = mailbox_state(dst, BOB)
    assert len(bob) == 20
    q = dst.cli_ok("queue", "list").stdout.decode()
    assert "someone@remote.test" in q, q
    # the restored server takes new mail with the next UID
    deliver(dst, [ALICE], "after-restore")
    _, after = mailbox_state(dst, ALICE)
    assert max(after) > max(restored)


def test_incremental_backup_and_refusals(make_server):
    s = make_server(conf=CONF)
    for i in range(5):
        deliver(s, [ALICE], "inc-%d" % i)
    dest = os.path.join(s.base, "backup")
    out = backup(s, dest)
    assert ": 3 accounts, 5 message files, 0 queued messages\n" in out, out
    assert re.search(r"files: 5 new, 0 kept from the last backup, 0 removed; 5 hard links and 0 copies made", out), out
    # one more message, one expunged: only the new file is taken, the
    # expunged one leaves the backup
    deliver(s, [ALICE], "inc-new")
    c = imap(s)
    c.select("INBOX")
    c.uid("STORE", "2", "+FLAGS", r"(\Deleted)")
    c.expunge()
    c.logout()
    out = backup(s, dest)
    assert ", 5 message files," in out, out
    assert re.search(r"files: 1 new, 4 kept from the last backup, 1 removed; 1 hard links and 0 copies made", out), out
    # on another file system the files are copied, byte for byte
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(s.base).st_dev:
        other_fs = tempfile.mkdtemp(prefix="tern-backup-", dir="/dev/shm")
        try:
            os.chmod(other_fs, 0o755)
            out = backup(s, os.path.join(other_fs, "b"))
            assert re.search(r"files: 5 new, 0 kept from the last backup, 0 removed; "
                             r"0 hard links and 5 copies made", out), out
            for f in s.files_under("accounts"):
                if "/msg/" in f:
                    rel = os.path.relpath(f, s.data)
                    with open(f, "rb") as a, open(os.path.join(other_fs, "b", "data", rel),
                                                  "rb") as b:
                        assert a.read() == b.read()
        finally:
            shutil.rmtree(other_fs)
    # restore refuses a data folder that is not empty
    r = s.cli("restore", dest)
    assert r.returncode == 1 and b"is not empty" in r.stderr, r
    # ... and a backup that is not finished (no BACKUP marker)
    os.unlink(os.path.join(dest, "data", "BACKUP"))
    other = make_server(conf=CONF, start=False)
    shutil.rmtree(other.data)
    r = other.cli("restore", dest)
    assert r.returncode == 1 and b"is not a finished Tern backup" in r.stderr, r
    assert not os.path.exists(other.data) or os.listdir(other.data) == []
    # usage
    r = s.cli("backup")
    assert r.returncode == 2 and b"one folder expected" in r.stderr, r
