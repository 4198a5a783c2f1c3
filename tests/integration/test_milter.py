"""External filters through the milter protocol (issue 16 item 7,
docs/spam.md "External filters (milter)").

The milter here is written from scratch in the test (no libmilter): a
socket server speaking the Sendmail milter protocol version 6, whose
replies each test scripts, and which records what Tern sent it.  A
second part runs Debian's rspamd in milter mode on loopback.
"""

import imaplib
import os
import re
import shutil
import smtplib
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import HOST, HOSTNAME, PASSWORD, timeout

USER = "alice@example.test"

# SMFIF_* and SMFIP_*
ADDHDRS, CHGHDRS, QUARANTINE = 0x01, 0x10, 0x20
NOBODY, NR_HDR, SKIP, NR_BODY = 0x10, 0x80, 0x400, 0x80000


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def strings(*s):
    return b"".join(x.encode() + b"\0" for x in s)


class Milter(threading.Thread):
    """A scripted milter.  replies maps a step (connect, helo, mail, rcpt,
    data, header, eoh, body, eom) to the packets it answers with (a list
    of (cmd, data)), or to "hang" (no answer) or raw bytes (garbage).
    Unscripted steps get 'c' (continue).  What Tern sent is recorded in
    .seen (one list of (cmd, data) per connection)."""

    STEP = {b"C": "connect", b"H": "helo", b"M": "mail", b"R": "rcpt", b"T": "data",
            b"L": "header", b"N": "eoh", b"B": "body", b"E": "eom"}

    def __init__(self, replies=None, actions=ADDHDRS | CHGHDRS | QUARANTINE, protocol=0):
        super().__init__(daemon=True)
        self.replies = replies or {}
        self.actions = actions
        self.protocol = protocol
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.endpoint = "inet:%s:%d" % (HOST, self.port)
        self.seen = []
        self.done = threading.Event()
        self.conns = []
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def recv_packet(self, c):
        head = self.recv_exact(c, 4)
        if head is None:
            return None
        n = struct.unpack(">I", head)[0]
        body = self.recv_exact(c, n)
        return None if body is None else (body[:1], body[1:])

    @staticmethod
    def recv_exact(c, n):
        out = b""
        while len(out) < n:
            try:
                got = c.recv(n - len(out))
            except OSError:
                return None
            if not got:
                return None
            out += got
        return out

    def serve(self, c):
        seen = []
        self.seen.append(seen)
        try:
            while True:
                p = self.recv_packet(c)
                if p is None:
                    break
                cmd, data = p
                seen.append((cmd, data))
                if cmd == b"O":
                    c.sendall(packet(b"O", struct.pack(">III", 6, self.actions, self.protocol)))
                    continue
                if cmd in (b"D", b"A"):
                    continue
                if cmd == b"Q":
                    break
                step = self.STEP.get(cmd)
                if step is None:
                    continue
                if step == "header" and self.protocol & NR_HDR:
                    continue
                r = self.replies.get(step)
                if r == "hang":
                    time.sleep(timeout(30))
                    break
                if isinstance(r, str) and r.startswith("progress:"):
                    _, count, pause = r.split(":")
                    for _ in range(int(count)):
                        time.sleep(float(pause))
                        c.sendall(packet(b"p"))
                    c.sendall(packet(b"c"))
                    continue
                if isinstance(r, bytes):
                    c.sendall(r)
                    continue
                for k, d in (r or [(b"c", b"")]):
                    c.sendall(packet(k, d))
        except OSError:
            pass  # Tern closed the connection (a timeout, garbage)
        finally:
            c.close()
            self.done.set()

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

    def cmds(self, i=0):
        return [cmd for cmd, _ in self.seen[i]]

    def data(self, cmd, i=0):
        return [d for k, d in self.seen[i] if k == cmd]


@pytest.fixture
def milter_factory():
    made = []

    def make(**kw):
        m = Milter(**kw)
        m.start()
        made.append(m)
        return m
    yield make
    for m in made:
        m.stop()


def start_tern(make_server, servers, **conf):
    values = {"mailauth.check": "no", "milter.servers": servers,
              "milter.timeout_command": "2s", "milter.timeout_connect": "2s",
              "allow_plaintext_loopback": "yes"}
    values.update(conf)
    return make_server(conf=values)


MSG = ("From: Bob <bob@elsewhere.example>\r\nTo: alice@example.test\r\n"
       "Subject: %s\r\nX-Remove: this goes\r\nMessage-ID: <%s@elsewhere.example>\r\n"
       "\r\nHello Alice,\r\nthe body.\r\n")


def send(srv, subject, rcpts=(USER,), data=None):
    with smtplib.SMTP(srv.host, srv.smtp_port, timeout=timeout(30)) as c:
        c.ehlo("client.example")
        return c.sendmail("bob@elsewhere.example", list(rcpts),
                          data if data is not None else MSG % (subject, subject.replace(" ", "")))


def send_refused(srv, subject, data=None):
    with pytest.raises(smtplib.SMTPException) as e:
        send(srv, subject, data=data)
    return e.value


def imap_fetch(srv, subject, mbox="INBOX"):
    m = imaplib.IMAP4(srv.host, srv.imap_port)
    try:
        m.login(USER, PASSWORD)
        typ, _ = m.select('"%s"' % mbox, readonly=True)
        assert typ == "OK"
        typ, data = m.uid("SEARCH", None, "SUBJECT", '"%s"' % subject)
        uids = data[0].split()
        if not uids:
            return None
        assert len(uids) == 1, uids
        typ, data = m.uid("FETCH", uids[0], "(BODY.PEEK[])")
        assert typ == "OK"
        return data[0][1]
    finally:
        m.logout()


def trace_split(stored):
    """(our Return-Path and Received lines, the rest)."""
    m = re.match(rb"(Return-Path: [^\r\n]*\r\n(?:X-First: [^\r\n]*\r\n)?"
                 rb"Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n)", stored)
    assert m, stored[:300]
    return m.group(1), stored[m.end():]


# --------------------------------------------------------------- the steps

def test_conversation_and_header_changes(make_server, milter_factory):
    eom = [(b"h", strings("X-Filter", "checked by test")),
           (b"i", struct.pack(">I", 0) + strings("X-First", "at the top")),
           (b"m", struct.pack(">I", 1) + strings("Subject", "[tagged] Changes")),
           (b"m", struct.pack(">I", 1) + strings("X-Remove", "")),
           (b"h", strings("X-Folded", "line one\n\tline two")),
           (b"a", b"")]
    m = milter_factory(replies={"eom": eom})
    srv = start_tern(make_server, m.endpoint)
    send(srv, "Changes")
    srv.wait_log(r"action=milter result=accept modified=yes")
    stored = imap_fetch(srv, "Changes")
    assert stored is not None
    _, rest = trace_split(stored)
    # X-First went before everything the milter saw: our Received.
    assert stored.startswith(b"Return-Path: <bob@elsewhere.example>\r\nX-First: at the top\r\n"
                             b"Received: from client.example")
    assert rest == (b"From: Bob <bob@elsewhere.example>\r\nTo: alice@example.test\r\n"
                    b"Subject: [tagged] Changes\r\n"
                    b"Message-ID: <Changes@elsewhere.example>\r\n"
                    b"X-Filter: checked by test\r\nX-Folded: line one\r\n\tline two\r\n"
                    b"\r\nHello Alice,\r\nthe body.\r\n")

    # What the milter was told, in order, with Postfix's usual macros.
    cmds = m.cmds()
    steps = [c for c in cmds if c not in (b"D",)]
    assert steps[:6] == [b"O", b"C", b"H", b"M", b"R", b"T"], steps
    assert steps[-3:] == [b"B", b"E", b"Q"], steps
    assert steps.count(b"L") == 6 and b"N" in steps   # Received + the 5 fields
    macros = {d[:1]: d[1:].split(b"\0") for d in m.data(b"D")}
    conn = macros[b"C"]
    assert conn[conn.index(b"j") + 1] == HOSTNAME.encode()
    assert conn[conn.index(b"{client_addr}") + 1] == b"127.0.0.1"
    assert conn[conn.index(b"{daemon_name}") + 1] == b"smtp"
    mail = macros[b"M"]
    qid = mail[mail.index(b"i") + 1]
    assert re.fullmatch(rb"[0-9A-Za-z]+", qid)
    assert mail[mail.index(b"{mail_addr}") + 1] == b"bob@elsewhere.example"
    assert macros[b"R"][:2] == [b"{rcpt_addr}", USER.encode()]
    assert macros[b"E"][:2] == [b"i", qid]
    connect = m.data(b"C")[0]
    assert connect == b"[127.0.0.1]\0" + b"4" + connect[13:15] + b"127.0.0.1\0"
    assert m.data(b"H") == [b"client.example\0"]
    assert m.data(b"M") == [b"<bob@elsewhere.example>\0"]
    assert m.data(b"R") == [b"<alice@example.test>\0"]
    headers = [d.split(b"\0")[:2] for d in m.data(b"L")]
    assert headers[0][0] == b"Received" and headers[0][1].startswith(b"from client.example")
    assert b"\r" not in headers[0][1]          # folds as LF, no leading space
    assert headers[1:] == [[b"From", b"Bob <bob@elsewhere.example>"],
                           [b"To", b"alice@example.test"], [b"Subject", b"Changes"],
                           [b"X-Remove", b"this goes"],
                           [b"Message-ID", b"<Changes@elsewhere.example>"]]
    assert m.data(b"B") == [b"Hello Alice,\r\nthe body.\r\n"]


@pytest.mark.parametrize("step,reply,code,text", [
    ("connect", [(b"r", b"")], 550, b"5.7.1 Message rejected by a content filter"),
    ("mail", [(b"y", b"553 5.7.1 Sender <bob@elsewhere.example> refused by policy\0")],
     553, b"5.7.1 Sender <bob@elsewhere.example> refused by policy"),
    ("rcpt", [(b"y", b"550 5.1.1 No such user here\0")], 550, b"5.1.1 No such user here"),
    ("header", [(b"t", b"")], 451,
     b"4.7.1 Message deferred by a content filter, try again later"),
    ("eom", [(b"y", b"554 5.7.1 Virus found: EICAR-Test-Signature\0")], 554,
     b"5.7.1 Virus found: EICAR-Test-Signature"),
    ("eom", [(b"y", b"421 4.7.0 Try later\0")], 421, b"4.7.0 Try later"),
    ("eom", [(b"y", b"550-5.7.1 first line\r\n550 5.7.1 last line\0")], 550,
     b"5.7.1 last line"),
])
def test_refusals(make_server, milter_factory, step, reply, code, text):
    m = milter_factory(replies={step: reply})
    srv = start_tern(make_server, m.endpoint)
    e = send_refused(srv, "Refused")
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        pytest.fail("refused at RCPT: %r" % e)
    assert (e.smtp_code, e.smtp_error) == (code, text), e
    assert srv.wait_log(r"action=milter milter=%s result=(reject|tempfail)" % re.escape(
        m.endpoint))
    assert imap_fetch(srv, "Refused") is None
    # The session goes on: the next message (without that milter) is taken.
    m.replies = {}
    send(srv, "Next one")
    assert imap_fetch(srv, "Next one") is not None


def test_discard(make_server, milter_factory):
    m = milter_factory(replies={"eom": [(b"d", b"")]})
    srv = start_tern(make_server, m.endpoint)
    assert send(srv, "Discarded") == {}
    assert srv.wait_log(r"action=milter milter=\S+ result=discard")
    assert imap_fetch(srv, "Discarded") is None


def test_quarantine(make_server, milter_factory):
    m = milter_factory(replies={"eom": [(b"q", b"suspicious attachment\0"), (b"c", b"")]})
    srv = start_tern(make_server, m.endpoint)
    send(srv, "Quarantined")
    line = srv.wait_log(r"result=quarantine")
    assert line and r'reason="suspicious\x20attachment"' in line[0], line
    assert imap_fetch(srv, "Quarantined") is None
    stored = imap_fetch(srv, "Quarantined", mbox="Junk")
    assert stored is not None and stored.endswith(b"\r\n\r\nHello Alice,\r\nthe body.\r\n")


def test_no_reply_and_skip_flags(make_server, milter_factory):
    # NR_HDR: no reply to each header; NOBODY: no body at all.
    m = milter_factory(protocol=NR_HDR | NOBODY,
                       replies={"eom": [(b"h", strings("X-Seen", "yes")), (b"c", b"")]})
    srv = start_tern(make_server, m.endpoint)
    send(srv, "Flags")
    stored = imap_fetch(srv, "Flags")
    assert b"\r\nX-Seen: yes\r\n\r\nHello Alice," in stored
    assert b"B" not in m.cmds() and m.cmds().count(b"L") == 6

    # SKIP: the milter says "skip" to the first body chunk of a message of
    # several chunks; Tern goes to the end of the message.
    m2 = milter_factory(protocol=SKIP, replies={"body": [(b"s", b"")]})
    srv.stop()
    srv.set_config({"milter.servers": m2.endpoint})
    srv.start()
    big = MSG % ("Skipped", "Skipped") + ("x" * 998 + "\r\n") * 200
    send(srv, "Skipped", data=big)
    assert imap_fetch(srv, "Skipped") is not None
    cmds = m2.cmds()
    assert cmds.count(b"B") == 1 and cmds[-2:] == [b"E", b"Q"], cmds
    assert len(m2.data(b"B")[0]) == 65535


def test_no_reply_body_milter_stops_reading(make_server, milter_factory):
    # NR_BODY: Tern sends the body without waiting for replies, but a
    # milter that stops reading it still times out.
    m = milter_factory(protocol=NR_BODY, replies={"body": "hang"})
    srv = start_tern(make_server, m.endpoint, **{"milter.timeout_command": "3s"})
    big = MSG % ("Big", "Big") + ("y" * 998 + "\r\n") * 12000
    assert send_refused(srv, "Big", data=big).smtp_code == 451
    assert srv.wait_log(r"step=body error=\"no reply in time")


def test_progress(make_server, milter_factory):
    # progress restarts the timeout: 4 s of work with a 2 s timeout passes
    m = milter_factory(replies={"eom": "progress:8:0.5"})
    srv = start_tern(make_server, m.endpoint, **{"milter.timeout_command": "2s"})
    send(srv, "Slow scan")
    assert imap_fetch(srv, "Slow scan") is not None
    # ... but not forever
    m.replies = {"eom": "progress:70:0.05"}
    e = send_refused(srv, "Endless scan")
    assert e.smtp_code == 451
    assert srv.wait_log(r"step=eom error=\"too many progress replies\"")


def test_two_milters_in_order(make_server, milter_factory):
    a = milter_factory(replies={"eom": [(b"h", strings("X-A", "1")), (b"c", b"")]})
    b = milter_factory(replies={"eom": [(b"m", struct.pack(">I", 1) + strings("X-A", "2")),
                                        (b"c", b"")]})
    srv = start_tern(make_server, "%s %s" % (a.endpoint, b.endpoint))
    send(srv, "Chain")
    stored = imap_fetch(srv, "Chain")
    assert b"\r\nX-A: 2\r\n\r\n" in stored and b"X-A: 1" not in stored
    # the second saw the first's field
    assert [b"X-A", b"1", b""] in [d.split(b"\0") for d in b.data(b"L")]


def test_action_not_negotiated_is_a_failure(make_server, milter_factory):
    m = milter_factory(actions=ADDHDRS, replies={
        "eom": [(b"m", struct.pack(">I", 1) + strings("Subject", "x")), (b"c", b"")]})
    srv = start_tern(make_server, m.endpoint)
    e = send_refused(srv, "Not offered")
    assert e.smtp_code == 451
    assert srv.wait_log(r"action=milter milter=%s step=eom error=\"a header change it did "
                        r"not negotiate" % re.escape(m.endpoint))


# ------------------------------------------------------------- failures

@pytest.mark.parametrize("action", ["tempfail", "accept"])
def test_milter_down(make_server, action):
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens there now
    endpoint = "inet:%s:%d" % (HOST, port)
    srv = start_tern(make_server, endpoint, **{"milter.default_action": action})
    subject = "Down %s" % action
    if action == "tempfail":
        e = send_refused(srv, subject)
        assert (e.smtp_code, e.smtp_error) == (
            451, b"4.7.1 Error: a content filter is not available now, try again later")
        assert imap_fetch(srv, subject) is None
    else:
        send(srv, subject)
        assert imap_fetch(srv, subject) is not None
    lines = srv.wait_log(r"action=milter milter=%s step=connect error=\"Connection refused\" "
                         r"result=%s" % (re.escape(endpoint), action))
    assert len(lines) == 1, lines


def test_unix_socket_down(make_server):
    srv = start_tern(make_server, "unix:/nonexistent/milter.sock")
    e = send_refused(srv, "Unix down")
    assert e.smtp_code == 451
    assert srv.wait_log(r"milter=unix:/nonexistent/milter.sock step=connect "
                        r"error=\"No such file or directory\"")


@pytest.mark.parametrize("action", ["tempfail", "accept"])
def test_milter_hangs(make_server, milter_factory, action):
    m = milter_factory(replies={"body": "hang"})
    srv = start_tern(make_server, m.endpoint, **{"milter.default_action": action,
                                                 "milter.timeout_command": "2s"})
    subject = "Hang %s" % action
    t0 = time.monotonic()
    if action == "tempfail":
        assert send_refused(srv, subject).smtp_code == 451
    else:
        send(srv, subject)
        assert imap_fetch(srv, subject) is not None
    assert time.monotonic() - t0 < timeout(10)
    assert srv.wait_log(r"step=body error=\"no reply in time \(milter.timeout_command\)\" "
                        r"result=%s" % action)


@pytest.mark.parametrize("garbage,why", [
    (b"\0\0\0\0", "a reply packet of length 0 or over 64 KiB"),
    (struct.pack(">I", 0x7fffffff) + b"c", "a reply packet of length 0 or over 64 KiB"),
    (packet(b"y", b"hello there\0"), "a reply text without a valid SMTP code"),
    (packet(b"y", b"250 2.0.0 fine\0"), "a reply text without a valid SMTP code"),
    (packet(b"Z"), "an unexpected reply"),
    (packet(b"h", b"Bad Name\0value\0"), "an unexpected reply"),  # h before the end
])
def test_garbage(make_server, milter_factory, garbage, why):
    m = milter_factory(replies={"rcpt": garbage})
    srv = start_tern(make_server, m.endpoint)
    assert send_refused(srv, "Garbage").smtp_code == 451
    assert srv.wait_log(r"action=milter milter=%s step=rcpt error=\"%s" % (
        re.escape(m.endpoint), re.escape(why)))
    # other sessions were not held meanwhile: a second message goes through
    # once the milter behaves
    m.replies = {}
    send(srv, "After garbage")
    assert imap_fetch(srv, "After garbage") is not None


def test_garbage_header_change_at_eom(make_server, milter_factory):
    m = milter_factory(replies={"eom": [(b"h", b"Bad Name\0value\0"), (b"c", b"")]})
    srv = start_tern(make_server, m.endpoint, **{"milter.default_action": "accept"})
    send(srv, "Bad header op")
    stored = imap_fetch(srv, "Bad header op")
    assert b"Bad Name" not in stored
    assert srv.wait_log(r"step=eom error=\"a header change it did not negotiate, or a "
                        r"malformed one")


def test_too_many_header_changes(make_server, milter_factory):
    m = milter_factory(replies={"eom": [(b"h", strings("X-Many", "v"))] * 1001 + [(b"c", b"")]})
    srv = start_tern(make_server, m.endpoint, **{"milter.default_action": "accept"})
    send(srv, "Many")
    stored = imap_fetch(srv, "Many")
    assert b"X-Many" not in stored   # that milter's changes are all dropped
    assert srv.wait_log(r"error=\"too many header changes")


def test_other_sessions_not_blocked(make_server, milter_factory):
    m = milter_factory(replies={"eom": "hang"})
    srv = start_tern(make_server, m.endpoint, **{"milter.timeout_command": "5s"})
    results = {}

    def slow():
        try:
            send(srv, "Slow")
        except smtplib.SMTPException as e:
            results["slow"] = e.smtp_code
    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + timeout(10)
    while not (m.seen and b"E" in m.cmds()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b"E" in m.cmds()
    # meanwhile another session is served at once (EHLO, NOOP)
    t0 = time.monotonic()
    with smtplib.SMTP(srv.host, srv.smtp_port, timeout=timeout(10)) as c:
        assert c.ehlo("other.example")[0] == 250
        assert c.noop()[0] == 250
    assert time.monotonic() - t0 < 2
    t.join(timeout(30))
    assert results.get("slow") == 451


def test_submission_not_filtered_by_default(make_server, milter_factory):
    m = milter_factory(replies={"eom": [(b"r", b"")]})
    srv = start_tern(make_server, m.endpoint)
    sub_port = int(srv.read_config()["submission.listen"].rsplit(":", 1)[1])
    with smtplib.SMTP(srv.host, sub_port, timeout=timeout(30)) as c:
        c.ehlo("client.example")
        c.login(USER, PASSWORD)
        c.sendmail(USER, [USER], MSG.replace("bob@elsewhere.example", USER) % ("Sub", "Sub"))
    assert imap_fetch(srv, "Sub") is not None
    assert m.seen == []
    srv.stop()
    srv.set_config({"milter.apply_to_submission": "yes"})
    srv.start()
    with smtplib.SMTP(srv.host, sub_port, timeout=timeout(30)) as c:
        c.ehlo("client.example")
        c.login(USER, PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(USER, [USER], MSG.replace("bob@elsewhere.example", USER) % ("Sub2", "S2"))
    assert e.value.smtp_code == 550
    macros = {d[:1]: d[1:].split(b"\0") for d in m.data(b"D")}
    assert macros[b"C"][macros[b"C"].index(b"{daemon_name}") + 1] == b"submission"
    mail = macros[b"M"]
    assert mail[mail.index(b"{auth_authen}") + 1] == USER.encode()


def test_bad_config(make_server):
    srv = make_server(start=False)
    srv.set_config({"milter.servers": "inet:milter.example:11332"})
    r = srv.cli_noconf("-c", srv.conf, "serve")
    assert r.returncode == 2
    assert b"milter.servers lists at most 8 endpoints" in r.stderr


# ------------------------------------------------------------- rspamd

RSPAMD = "/usr/bin/rspamd"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

RSPAMD_CONF = """\
.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
    type = "file";
    filename = "$LOGDIR/rspamd.log";
    level = "info";
}
worker "rspamd_proxy" {
    bind_socket = "127.0.0.1:%d";
    milter = yes;
    timeout = 60s;
    upstream "local" {
        default = yes;
        self_scan = yes;
    }
    count = 1;
}
"""

# No internet: DNS goes to a port where nothing answers (fast errors).
# task_timeout: rspamd's 8 s default gives up on a scan (and lets the
# message pass) on a loaded 2-core machine; the test wants the verdict.
RSPAMD_OPTIONS = """\
task_timeout = 120s;
dns {
    nameserver = ["127.0.0.1:1"];
    timeout = 0.5s;
    retransmits = 1;
}
"""

RSPAMD_HEADERS = """\
use = ["x-spamd-result", "x-rspamd-queue-id"];
skip_local = false;
skip_authenticated = false;
"""


@pytest.fixture(scope="module")
def rspamd():
    """Debian's rspamd in milter mode (its proxy worker scanning itself),
    self-contained: its own config, run, data and log folder, on a free
    loopback port, no system service, no network."""
    if not os.path.exists(RSPAMD):
        pytest.skip("rspamd is not installed (scripts/install-deps.sh)")
    d = tempfile.mkdtemp(prefix="tern-rspamd-")
    os.makedirs(os.path.join(d, "local.d"))
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    with open(os.path.join(d, "rspamd.conf"), "w") as f:
        f.write(RSPAMD_CONF % port)
    with open(os.path.join(d, "local.d", "options.inc"), "w") as f:
        f.write(RSPAMD_OPTIONS)
    with open(os.path.join(d, "local.d", "milter_headers.conf"), "w") as f:
        f.write(RSPAMD_HEADERS)
    args = [RSPAMD, "-f", "-c", os.path.join(d, "rspamd.conf"), "--var=CONFDIR=/etc/rspamd",
            "--var=LOCAL_CONFDIR=" + d, "--var=RUNDIR=" + d, "--var=DBDIR=" + d,
            "--var=LOGDIR=" + d]
    if os.geteuid() == 0:
        args[2:2] = ["-i", "-u", "root", "-g", "root"]
    out = open(os.path.join(d, "stdout.txt"), "wb")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # rspamd compiles its rules and the TLD list first (a minute on a
        # busy machine); it is up when the proxy port accepts.
        deadline = time.monotonic() + timeout(240)
        while True:
            assert proc.poll() is None, open(os.path.join(d, "stdout.txt")).read()[-3000:]
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                pass
            assert time.monotonic() < deadline, "rspamd did not listen on %d" % port
            time.sleep(0.5)
        yield "inet:%s:%d" % (HOST, port)
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(timeout(20))
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, 9)
            proc.wait()
        out.close()
        shutil.rmtree(d, ignore_errors=True)


def test_rspamd_gtube_rejected(make_server, rspamd):
    srv = start_tern(make_server, rspamd, **{"milter.timeout_command": "60s"})
    e = send_refused(srv, "Gtube", data=MSG.replace("the body.", GTUBE) % ("Gtube", "Gtube"))
    assert (e.smtp_code, e.smtp_error) == (554, b"5.7.1 Gtube pattern")
    assert srv.wait_log(r"action=milter milter=%s result=reject" % re.escape(rspamd))
    assert imap_fetch(srv, "Gtube") is None


def test_rspamd_normal_passes_with_its_headers(make_server, rspamd):
    srv = start_tern(make_server, rspamd, **{"milter.timeout_command": "60s"})
    send(srv, "Normal mail")
    line = srv.wait_log(r"action=milter result=accept modified=yes")
    assert line, srv.log()[-2000:]
    qid = re.search(r" id=(\S+)", line[0]).group(1)
    stored = imap_fetch(srv, "Normal mail")
    _, rest = trace_split(stored)
    head, body = rest.split(b"\r\n\r\n", 1)
    # the message as sent, then rspamd's two fields (in either order)
    sent = (b"From: Bob <bob@elsewhere.example>\r\nTo: alice@example.test\r\n"
            b"Subject: Normal mail\r\nX-Remove: this goes\r\n"
            b"Message-ID: <Normalmail@elsewhere.example>\r\n")
    assert head.startswith(sent), head
    added = re.split(rb"\r\n(?![ \t])", head[len(sent):])
    assert sorted(f.split(b":", 1)[0] for f in added) == [b"X-Rspamd-Queue-Id",
                                                          b"X-Spamd-Result"], added
    assert b"X-Rspamd-Queue-Id: " + qid.encode() in added
    assert [f for f in added if f.startswith(b"X-Spamd-Result: default: False [")]
    assert body == b"Hello Alice,\r\nthe body.\r\n"
