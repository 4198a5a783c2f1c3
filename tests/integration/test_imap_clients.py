"""Real IMAP clients against Tern: mbsync (isync), curl and fetchmail.

mbsync syncs a 1,000-message INBOX to a local Maildir and back (flags both
ways, new messages both ways, an expunge), then runs again incrementally.
curl fetches a message by UID.  fetchmail reads a mailbox over IMAP into
an MDA.  The tests are skipped if a client is not installed
(scripts/install-deps.sh installs them).
"""

import os
import re
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from conftest import HOST, timeout

PASSWORD = "secret"
CONF = {"workers": 2, "allow_plaintext_loopback": "yes"}


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def new_user(srv):
    user = "c%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    return user


def fill(srv, user, n, mbox="INBOX"):
    """n messages appended in one pipelined burst (LITERAL+)."""
    s = socket.create_connection((HOST, srv.imap_port), timeout=timeout(30))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), PASSWORD.encode()))
    assert f.readline().startswith(b"a OK")
    out = []
    for i in range(n):
        msg = (b"From: Sender <s@example.org>\r\nTo: %s\r\nSubject: message %d\r\n"
               b"Message-ID: <%d.%s>\r\n\r\nBody of message %d.\r\n"
               % (user.encode(), i, i, user.encode(), i))
        out.append(b"t%d APPEND %s {%d+}\r\n%s\r\n" % (i, mbox.encode(), len(msg), msg))
    s.sendall(b"".join(out))
    done = 0
    while done < n:
        line = f.readline()
        assert line, "connection closed while appending"
        if line.startswith(b"t"):
            assert b" OK [APPENDUID " in line, line
            done += 1
    s.sendall(b"z LOGOUT\r\n")
    s.close()


def imap_cmds(srv, user, *cmds):
    """Runs commands on a fresh session; returns the raw reply bytes."""
    s = socket.create_connection((HOST, srv.imap_port), timeout=timeout(30))
    f = s.makefile("rb")
    f.readline()
    out = b""
    for i, c in enumerate(("LOGIN %s %s" % (user, PASSWORD),) + cmds):
        tag = b"c%d" % i
        s.sendall(tag + b" " + c.encode() + b"\r\n")
        while True:
            line = f.readline()
            assert line
            out += line
            if line.startswith(tag + b" "):
                break
    s.close()
    return out


# ---------------------------------------------------------------- mbsync

def maildir_files(path):
    files = {}
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            files[name] = os.path.join(d, name)
    return files


def maildir_flags(name):
    m = re.search(r":2,([A-Za-z]*)$", name)
    return m.group(1) if m else ""


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
def test_mbsync_1000_both_ways(srv, tmp_path):
    user = new_user(srv)
    fill(srv, user, 1000)
    local = tmp_path / "mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "IMAPAccount tern\n"
        "Host %s\nPort %d\nUser %s\nPass %s\nSSLType None\nAuthMechs LOGIN\n\n"
        "IMAPStore remote\nAccount tern\n\n"
        "MaildirStore local\nPath %s/\nInbox %s/INBOX\n\n"
        "Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\n"
        "Create Both\nExpunge Both\nSyncState *\n"
        % (HOST, srv.imap_port, user, PASSWORD, local, local))

    def mbsync():
        t0 = time.monotonic()
        r = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True,
                           timeout=timeout(120))
        assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
        return time.monotonic() - t0

    took = mbsync()
    assert took < timeout(30), "first sync took %.1f s" % took
    # mbsync (isync 1.4) switches on COMPRESS=DEFLATE when offered
    srv.wait_log(r"action=compress mechanism=DEFLATE")
    inbox = str(local / "INBOX")
    files = maildir_files(inbox)
    assert len(files) == 1000
    sample = sorted(files.values())[0]
    with open(sample, "rb") as f:
        assert b"Subject: message " in f.read()

    # server -> local: flag 10 messages on the server
    imap_cmds(srv, user, "SELECT INBOX", "STORE 1:10 +FLAGS.SILENT (\\Flagged)")
    # local -> server: mark 5 seen, 1 trashed (deleted + expunged), add one.
    # The local files are chosen by their subject, never among the 10 the
    # server flags (file names sort by the time mbsync wrote them, so a
    # position in that order could land on a flagged message).
    def subject_no(path):
        with open(path, "rb") as f:
            m = re.search(rb"Subject: message (\d+)", f.read())
        return int(m.group(1))
    names = sorted(files, key=lambda n: subject_no(files[n]))
    seen_names = []
    for name in names[100:105]:
        path = files[name]
        new = os.path.join(inbox, "cur", os.path.basename(path).split(":2,")[0] + ":2,S")
        os.rename(path, new)
        seen_names.append(new)
    trashed = files[names[200]]
    os.rename(trashed, os.path.join(inbox, "cur",
                                    os.path.basename(trashed).split(":2,")[0] + ":2,T"))
    newmsg = os.path.join(inbox, "new", "1700000000.local.host")
    with open(newmsg, "wb") as f:
        f.write(b"From: me@example.test\r\nSubject: written locally\r\n\r\nhi\r\n")

    took = mbsync()
    assert took < timeout(30)
    out = imap_cmds(srv, user, "SELECT INBOX", "SEARCH FLAGGED", "SEARCH SEEN",
                    "SEARCH SUBJECT \"written locally\"", "STATUS INBOX (MESSAGES)")
    assert re.search(rb"\* SEARCH( \d+){10}\r\n", out), out[-500:]
    assert re.search(rb"\* SEARCH( \d+){5}\r\n", out)
    assert re.search(rb"\* SEARCH \d+\r\n", out)
    assert b'* STATUS "INBOX" (MESSAGES 1000)' in out
    local_flagged = [n for n in maildir_files(inbox) if "F" in maildir_flags(n)]
    assert len(local_flagged) == 10
    assert len(maildir_files(inbox)) == 1000

    # incremental: nothing changed, then one new message on the server
    took = mbsync()
    assert took < timeout(10)
    fill(srv, user, 1)
    mbsync()
    assert len(maildir_files(inbox)) == 1001


# ------------------------------------------------------------------ curl

@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_fetch_by_uid(srv):
    user = new_user(srv)
    fill(srv, user, 3)
    url = "imap://%s:%d/INBOX;UID=2" % (HOST, srv.imap_port)
    r = subprocess.run(["curl", "-s", "-S", "--user", "%s:%s" % (user, PASSWORD), url],
                       capture_output=True, timeout=timeout(30))
    assert r.returncode == 0, r.stderr
    assert r.stdout == (b"From: Sender <s@example.org>\r\nTo: %s\r\nSubject: message 1\r\n"
                        b"Message-ID: <1.%s>\r\n\r\nBody of message 1.\r\n"
                        % (user.encode(), user.encode()))
    # a listing of the mailboxes
    r = subprocess.run(["curl", "-s", "-S", "--user", "%s:%s" % (user, PASSWORD),
                        "imap://%s:%d/" % (HOST, srv.imap_port)],
                       capture_output=True, timeout=timeout(30))
    assert r.returncode == 0
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"' in r.stdout


# ------------------------------------------------------------- fetchmail

@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
def test_fetchmail_reads_over_imap(srv, tmp_path):
    user = new_user(srv)
    fill(srv, user, 4)
    out = tmp_path / "mbox"
    mda = tmp_path / "mda.sh"
    mda.write_text("#!/bin/sh\ncat >> '%s'\necho '=====' >> '%s'\n" % (out, out))
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"
    rc.write_text("poll %s protocol IMAP port %d user \"%s\" password \"%s\" "
                  "sslproto '' mda \"%s\" keep\n" % (HOST, srv.imap_port, user, PASSWORD, mda))
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog", "-v"],
                       capture_output=True, timeout=timeout(60), env=env,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout.decode("utf-8", "replace") + r.stderr.decode(
        "utf-8", "replace")
    text = out.read_bytes()
    assert text.count(b"=====") == 4
    for i in range(4):
        assert b"Subject: message %d" % i in text
    # fetchmail read them with BODY[] (not PEEK): they are \Seen now ("keep")
    got = imap_cmds(srv, user, "SELECT INBOX", "SEARCH SEEN")
    assert b"* SEARCH 1 2 3 4\r\n" in got
