"""The SMTP receiver through the real protocol (docs/smtp.md is the contract).

One server serves the whole module (workers = 1, so a session that misbehaves
shares its event loop with the "parallel" session that must still deliver).
Tests that need another config start their own server.
"""

import email.utils
import os
import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

from conftest import (HOSTNAME, SMTPRaw, child_pids, parse_received, socket_owner,
                      split_stored, timeout)

MAX_SIZE = 1024 * 1024
MAX_RCPT = 5
MODULE_CONF = {
    "workers": 1,
    "smtp.max_recipients": MAX_RCPT,
    "smtp.max_message_size": "1M",
}
ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.org"
DAVE, ERIN, FRANK = "dave@example.test", "erin@example.test", "frank@example.org"
SENDER = "sender@client.example"
HELO_NAME = "client.example.net"

OK_MAIL = (250, ["2.1.0 Ok"])
OK_RCPT = (250, ["2.1.5 Ok"])
OK = (250, ["2.0.0 Ok"])
GO_AHEAD = (354, ["End data with <CR><LF>.<CR><LF>"])
NEED_MAIL = (503, ["5.5.1 Error: need MAIL command"])
NEED_RCPT = (503, ["5.5.1 Error: need RCPT command"])
NESTED_MAIL = (503, ["5.5.1 Error: nested MAIL command"])
NEED_EHLO = (503, ["5.5.1 Error: send HELO/EHLO first"])
TOO_BIG = (552, ["5.3.4 Message size exceeds fixed maximum message size"])
BARE_EOL = (554, ["5.5.2 Error: bare CR or LF in message (RFC 5321 2.3.8)"])
LINE_TOO_LONG = (500, ["5.5.2 Error: line too long"])
NUL_BYTE = (500, ["5.5.2 Error: NUL byte in command"])
UNKNOWN_CMD = (500, ["5.5.1 Error: command not recognized"])
SYNTAX = (501, ["5.5.4 Syntax error in parameters"])
NEED_UTF8 = (553, ["5.6.7 Non-ASCII address requires SMTPUTF8"])
QUEUED_RE = re.compile(r"2\.0\.0 Ok: queued as (\S+)")


def no_user(addr):
    return (550, ["5.1.1 <%s>: Recipient address rejected: User unknown" % addr])


def relay_denied(addr):
    return (554, ["5.7.1 <%s>: Relay access denied" % addr])


# ------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(conf=MODULE_CONF, start=False)
    for user in (DAVE, ERIN, FRANK):
        s.cli_ok("user", "add", user, "--password", "secret")
    s.cli_ok("alias", "add", "josé@example.test", ALICE)
    s.cli_ok("alias", "add", "team@example.test", ALICE, BOB)
    s.cli_ok("alias", "add", "ext@example.test", ALICE, "someone@remote.example")
    s.cli_ok("domain", "add", "catch.test")
    s.cli_ok("alias", "add", "@catch.test", BOB)
    s.cli_ok("alias", "add", "--force", "loop1@example.test", "loop2@example.test")
    s.cli_ok("alias", "add", "loop2@example.test", "loop1@example.test")
    s.start()
    return s


@pytest.fixture(autouse=True)
def healthy(srv):
    """After every test the module server still runs and its log is clean."""
    workers = srv.workers()
    yield
    assert srv.alive(), "the server exited:\n" + srv.log()[-4000:]
    srv.check_log()
    assert srv.workers() == workers, "worker processes changed (a crash?): %r -> %r" % (
        workers, srv.workers())


def new_token():
    return "t" + uuid.uuid4().hex[:16]


def make_msg(tok, body=b"Hello.\r\nThis is a test.\r\n", sender=SENDER, to=ALICE,
             extra_headers=b""):
    if isinstance(body, str):
        body = body.encode("utf-8")
    return (b"From: Sender <" + sender.encode() + b">\r\n"
            b"To: <" + to.encode() + b">\r\n"
            b"Subject: test " + tok.encode() + b"\r\n"
            b"Message-ID: <" + tok.encode() + b"@client.example>\r\n"
            b"Date: " + email.utils.formatdate(localtime=True).encode() + b"\r\n"
            + extra_headers + b"\r\n" + body)


def smtp(srv, helo=HELO_NAME):
    return smtplib.SMTP(srv.host, srv.smtp_port, local_hostname=helo, timeout=timeout(20))


def raw(srv, **kw):
    s = SMTPRaw(srv.host, srv.smtp_port, **kw)
    assert s.banner == (220, ["%s ESMTP Tern" % HOSTNAME]), s.banner
    return s


def deliver(srv, rcpts, msg, sender=SENDER, mail_options=()):
    """Sends msg with smtplib; every command must succeed; returns the
    queue id from "250 2.0.0 Ok: queued as ID"."""
    with smtp(srv) as s:
        assert s.ehlo()[0] == 250
        assert s.mail(sender, list(mail_options)) == (250, b"2.1.0 Ok")
        for r in rcpts:
            assert s.rcpt(r) == (250, b"2.1.5 Ok"), r
        code, resp = s.data(msg)
        assert code == 250, (code, resp)
        m = QUEUED_RE.fullmatch(resp.decode())
        assert m, resp
        return m.group(1)


def raw_transaction(s, rcpts, data, sender=SENDER, mail_params=""):
    """MAIL/RCPT/DATA over a raw session (data is sent as is, it must be
    dot-stuffed and end with CRLF.CRLF); returns the final reply."""
    assert s.cmd("MAIL FROM:<%s>%s" % (sender, mail_params)) == OK_MAIL
    for r in rcpts:
        assert s.cmd("RCPT TO:<%s>" % r) == OK_RCPT, r
    assert s.cmd("DATA") == GO_AHEAD
    s.send(data)
    return s.read_reply()


def queued_id(reply):
    code, lines = reply
    assert code == 250 and len(lines) == 1, reply
    m = QUEUED_RE.fullmatch(lines[0])
    assert m, reply
    return m.group(1)


def assert_stored_exactly(srv, user, tok, msg, sender=SENDER, rcpt=None, proto="ESMTP",
                          qid=None, helo=HELO_NAME):
    """user's INBOX has exactly one message with tok, and it is
    Return-Path + Received + msg, byte for byte."""
    stored = srv.fetch_one(user, tok)
    received, rest = split_stored(stored, sender)
    assert rest == msg, "stored body differs:\n%r\n!=\n%r" % (rest[:3000], msg[:3000])
    fields = parse_received(received)
    assert fields["helo"] == helo
    assert fields["ip"] == "127.0.0.1"
    assert fields["by"] == HOSTNAME
    assert fields["proto"] == proto
    assert fields["for"] == rcpt, fields
    if qid is not None:
        assert fields["id"] == qid, "Received id %r, but the reply said queued as %r" % (
            fields["id"], qid)
    return stored


def assert_not_stored(srv, tok, users=(ALICE, BOB)):
    for u in users:
        assert srv.find_messages(u, tok) == [], "%s got a message that was refused" % u
    assert srv.message_files_with(tok) == [], "a message file holds a refused message"


def assert_spool_empty(srv, seconds=1.0):
    deadline = time.monotonic() + timeout(seconds)
    while True:
        left = srv.files_under("spool")
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert left == [], "files left in the spool: %r" % left


class Parallel:
    """A second session, opened before the bad input and kept open through
    it (MAIL and RCPT already given), that must still deliver afterwards."""

    def __init__(self, srv):
        self.srv = srv

    def __enter__(self):
        self.tok = new_token()
        self.s = smtp(self.srv, helo="parallel.example.net")
        assert self.s.ehlo()[0] == 250
        assert self.s.mail("parallel@client.example") == (250, b"2.1.0 Ok")
        assert self.s.rcpt(BOB) == (250, b"2.1.5 Ok")
        return self

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                t0 = time.monotonic()
                code, resp = self.s.data(make_msg(self.tok, to=BOB,
                                                  sender="parallel@client.example"))
                assert code == 250, "parallel session after the bad input: %d %r" % (code, resp)
                assert len(self.srv.find_messages(BOB, self.tok)) == 1
                assert time.monotonic() - t0 < timeout(5), "parallel delivery was slow"
                self.s.quit()
        finally:
            self.s.close()
        return False


@pytest.fixture
def parallel(srv):
    return Parallel(srv)


# ---------------------------------------------------- greeting and EHLO

def test_banner(srv):
    s = raw(srv)
    assert s.raw == ["220 %s ESMTP Tern" % HOSTNAME]
    s.close()


def test_ehlo_capabilities_exact(srv):
    with raw(srv) as s:
        assert s.cmd("EHLO " + HELO_NAME)[0] == 250
        assert s.raw == [
            "250-" + HOSTNAME,
            "250-PIPELINING",
            "250-SIZE %d" % MAX_SIZE,
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250-CHUNKING",
            "250-DSN",
            "250-STARTTLS",  # tern init makes a certificate (test_tls.py)
            "250 ENHANCEDSTATUSCODES",
        ]


def test_helo_then_smtp_delivery(srv):
    tok = new_token()
    msg = make_msg(tok)
    with raw(srv) as s:
        assert s.cmd("HELO old.client.example") == (250, [HOSTNAME])
        qid = queued_id(raw_transaction(s, [ALICE], msg + b".\r\n"))
        assert s.cmd("QUIT") == (221, ["2.0.0 Bye"])
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, proto="SMTP", qid=qid,
                          helo="old.client.example")


def test_helo_ehlo_need_argument(srv):
    with raw(srv) as s:
        assert s.cmd("EHLO") == SYNTAX
        assert s.cmd("HELO") == SYNTAX
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == NEED_EHLO


def test_not_offered_and_unknown_commands(srv):
    with raw(srv) as s:
        s.ehlo()
        for line in ("AUTH PLAIN AGFsaWNlAHNlY3JldA==",):
            code, lines = s.cmd(line)
            assert code == 502 and lines[0].startswith("5.5.1"), (line, code, lines)
        assert s.cmd("FOO bar") == UNKNOWN_CMD
        assert s.cmd("NOOP") == OK


def test_commands_are_case_insensitive(srv):
    tok = new_token()
    msg = make_msg(tok)
    with raw(srv) as s:
        assert s.cmd("ehlo " + HELO_NAME)[0] == 250
        assert s.cmd("mail from:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RcPt To:<%s>" % ALICE) == OK_RCPT
        assert s.cmd("data") == GO_AHEAD
        s.send(msg + b".\r\n")
        queued_id(s.read_reply())
        assert s.cmd("quit") == (221, ["2.0.0 Bye"])
    assert len(srv.find_messages(ALICE, tok)) == 1


# ------------------------------------------------------- what is stored

def test_plain_message_stored_exactly(srv):
    tok = new_token()
    msg = make_msg(tok, body=b"Hello Alice.\r\n\r\nTwo paragraphs,\r\nthree lines.\r\n")
    qid = deliver(srv, [ALICE], msg)
    stored = assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, qid=qid)
    rows = srv.find_messages(ALICE, tok)
    assert int(rows[0]["SIZE"]) == len(stored), rows
    assert rows[0]["FROM"] and "sender@client.example" in rows[0]["FROM"], rows


def test_received_header_fields(srv):
    tok = new_token()
    msg = make_msg(tok, to=BOB)
    with smtp(srv, helo="helo-name.example") as s:
        s.ehlo()
        s.mail("someone@elsewhere.example")
        s.rcpt(BOB)
        code, resp = s.data(msg)
        assert code == 250
    stored = srv.fetch_one(BOB, tok)
    received, rest = split_stored(stored, "someone@elsewhere.example")
    assert rest == msg
    f = parse_received(received)
    assert (f["helo"], f["ip"], f["by"], f["proto"], f["for"]) == (
        "helo-name.example", "127.0.0.1", HOSTNAME, "ESMTP", BOB)
    assert resp.decode() == "2.0.0 Ok: queued as " + f["id"]


def test_sender_case_preserved(srv):
    # RFC 5321 2.4: the local part is case-sensitive in transport
    tok = new_token()
    sender = "Mixed.Case-Sender@Client.Example"
    msg = make_msg(tok, sender=sender)
    qid = deliver(srv, [ALICE], msg, sender=sender)
    stored = srv.fetch_one(ALICE, tok)
    # the domain is case-insensitive (lower-casing it is fine), the local part is not
    first = stored.split(b"\r\n", 1)[0]
    assert first in (b"Return-Path: <Mixed.Case-Sender@Client.Example>",
                     b"Return-Path: <Mixed.Case-Sender@client.example>"), first
    received, rest = split_stored(stored, first[len("Return-Path: <"):-1])
    assert rest == msg
    assert parse_received(received)["id"] == qid


@pytest.mark.parametrize("sep", [b"\n", b"\r"], ids=["LF", "CR"])
def test_no_header_injection_through_helo(srv, sep):
    tok = new_token()
    msg = make_msg(tok)
    with raw(srv) as s:
        s.send(b"EHLO evil.example" + sep + b"X-Injected-" + tok.encode() + b": 1\r\n")
        code, _ = s.read_reply()
        s.pending(0.3)
        if code != 250:
            s.ehlo()
        reply = raw_transaction(s, [ALICE], msg + b".\r\n")
        queued_id(reply)
    stored = srv.fetch_one(ALICE, tok)
    received, rest = split_stored(stored, SENDER)
    assert rest == msg
    assert b"X-Injected" not in received, received
    assert b"\r" not in received.replace(b"\r\n", b"") and b"\n" not in received.replace(
        b"\r\n", b""), received
    for line in srv.log().splitlines():
        assert not line.startswith("X-Injected"), line


def test_null_sender(srv):
    tok = new_token()
    msg = make_msg(tok, sender="mailer-daemon@client.example")
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<>") == OK_MAIL
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        assert s.cmd("DATA") == GO_AHEAD
        s.send(msg + b".\r\n")
        queued_id(s.read_reply())
    stored = srv.fetch_one(ALICE, tok)
    received, rest = split_stored(stored, "")
    assert rest == msg


def test_dot_stuffing_roundtrip_smtplib(srv):
    tok = new_token()
    body = (b".\r\n..\r\n...\r\n.leading dot\r\n..two leading dots\r\n"
            b" .space first\r\nend.\r\n.\r\nlast line\r\n")
    msg = make_msg(tok, body=body)
    qid = deliver(srv, [ALICE], msg)  # smtplib dot-stuffs
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, qid=qid)


def test_dot_unstuffing_raw(srv):
    tok = new_token()
    head = make_msg(tok, body=b"")
    sent_body = b"..\r\n...\r\n..x\r\nplain\r\n....dots\r\n. \r\n.x\r\n"
    want_body = b".\r\n..\r\n.x\r\nplain\r\n...dots\r\n \r\nx\r\n"
    with raw(srv) as s:
        s.ehlo()
        qid = queued_id(raw_transaction(s, [ALICE], head + sent_body + b".\r\n"))
    assert_stored_exactly(srv, ALICE, tok, head + want_body, rcpt=ALICE, qid=qid)


def test_pipelining_one_write(srv):
    tok = new_token()
    msg = make_msg(tok, to=BOB)
    with raw(srv) as s:
        s.ehlo()
        s.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<nobody@example.test>\r\n"
               "RCPT TO:<%s>\r\nDATA\r\n" % (SENDER, ALICE, BOB))
        assert s.read_reply() == OK_MAIL
        assert s.read_reply() == OK_RCPT
        assert s.read_reply() == no_user("nobody@example.test")
        assert s.read_reply() == OK_RCPT
        assert s.read_reply() == GO_AHEAD
        s.send(msg + b".\r\nQUIT\r\n")
        queued_id(s.read_reply())
        assert s.read_reply() == (221, ["2.0.0 Bye"])
        assert s.closed_by_server()
    a = srv.fetch_one(ALICE, tok)
    b = srv.fetch_one(BOB, tok)
    assert a == b
    received, rest = split_stored(a, SENDER)
    assert rest == msg
    assert parse_received(received)["for"] is None  # two recipients: no "for"


def test_pipelining_back_to_back_transactions(srv):
    toks = [new_token() for _ in range(3)]
    msgs = [make_msg(t) for t in toks]
    with raw(srv) as s:
        s.ehlo()
        # RFC 2920: DATA ends a group; send the first group, then each
        # message together with the next group's commands.
        s.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER.encode(), ALICE.encode()))
        for i, m in enumerate(msgs):
            assert s.read_reply() == OK_MAIL
            assert s.read_reply() == OK_RCPT
            assert s.read_reply() == GO_AHEAD
            if i + 1 < len(msgs):
                nxt = b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER.encode(), ALICE.encode())
            else:
                nxt = b"QUIT\r\n"
            s.send(m + b".\r\n" + nxt)
            queued_id(s.read_reply())
        assert s.read_reply() == (221, ["2.0.0 Bye"])
    for t, m in zip(toks, msgs):
        assert_stored_exactly(srv, ALICE, t, m, rcpt=ALICE)


# ------------------------------------------------------------------ BDAT

EIGHT_BIT_LINE = bytes(b for b in range(1, 256) if b not in (10, 13))


def bdat_parts(tok):
    head = make_msg(tok, body=b"", extra_headers=b"Content-Transfer-Encoding: 8bit\r\n")
    return [
        head + b".leading dot is not stuffing in BDAT\r\n",
        b".\r\n..two\r\n" + EIGHT_BIT_LINE + b"\r",  # CR here, its LF in the next chunk
        b"\nmiddle\r\n.\r\nnot the end in BDAT\r\nlast line\r\n",
    ]


def test_bdat_chunks(srv):
    tok = new_token()
    parts = bdat_parts(tok)
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s> BODY=8BITMIME" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        for p in parts:
            s.send(b"BDAT %d\r\n" % len(p) + p)
            code, lines = s.read_reply()
            assert code == 250 and re.match(r"2\.\d\.\d+ ", lines[0]), (code, lines)
        qid = queued_id(s.cmd("BDAT 0 LAST"))
        assert s.cmd("QUIT") == (221, ["2.0.0 Bye"])
    assert_stored_exactly(srv, ALICE, tok, b"".join(parts), rcpt=ALICE, qid=qid)


def test_bdat_pipelined_with_last(srv):
    tok = new_token()
    parts = bdat_parts(tok)
    with raw(srv) as s:
        s.ehlo()
        blob = ("MAIL FROM:<%s> BODY=8BITMIME\r\nRCPT TO:<%s>\r\n" % (SENDER, BOB)).encode()
        for p in parts[:-1]:
            blob += b"BDAT %d\r\n" % len(p) + p
        blob += b"BDAT %d LAST\r\n" % len(parts[-1]) + parts[-1]
        s.send(blob)
        assert s.read_reply() == OK_MAIL
        assert s.read_reply() == OK_RCPT
        for _ in parts[:-1]:
            assert s.read_reply()[0] == 250
        qid = queued_id(s.read_reply())
        assert s.pending() == b""
    assert_stored_exactly(srv, BOB, tok, b"".join(parts), rcpt=BOB, qid=qid)


def test_bdat_then_data_refused(srv):
    tok = new_token()
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        part = make_msg(tok)
        s.send(b"BDAT %d\r\n" % len(part) + part)
        assert s.read_reply()[0] == 250
        assert s.cmd("DATA") == (503, ["5.5.1 Error: DATA after BDAT"])
        assert s.cmd("RSET") == OK
    assert_not_stored(srv, tok)


def test_bdat_bare_lf_refused(srv, parallel):
    tok = new_token()
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
            part = make_msg(tok, body=b"line one\nline two\r\n")
            s.send(b"BDAT %d LAST\r\n" % len(part) + part)
            assert s.read_reply() == BARE_EOL
            assert s.cmd("NOOP") == OK
    assert_not_stored(srv, tok)


def test_bdat_over_size_limit(srv, parallel):
    tok = new_token()
    body = (b"x" * 998 + b"\r\n") * 1200  # 1.2 MB > 1M
    part = make_msg(tok, body=body)
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
            half = len(part) // 2
            s.send(b"BDAT %d\r\n" % half + part[:half])
            code, _ = s.read_reply()
            assert code == 250  # the first chunk is under the limit
            s.send(b"BDAT %d LAST\r\n" % (len(part) - half) + part[half:])
            assert s.read_reply() == TOO_BIG
            assert s.cmd("NOOP") == OK
    assert_not_stored(srv, tok)
    assert_spool_empty(srv)


# -------------------------------------------------------- 8BITMIME, UTF-8

def test_8bitmime_body_stored_exactly(srv):
    tok = new_token()
    body = "Grüße aus Köln — ünïcödé ✓ 日本語\r\nZweite Zeile: ½ € ß\r\n".encode("utf-8")
    msg = make_msg(tok, body=body, extra_headers=b"MIME-Version: 1.0\r\n"
                   b"Content-Type: text/plain; charset=utf-8\r\n"
                   b"Content-Transfer-Encoding: 8bit\r\n")
    qid = deliver(srv, [ALICE], msg, mail_options=["BODY=8BITMIME"])
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, qid=qid)


def test_smtputf8_alias(srv):
    tok = new_token()
    sender = "søren@client.example"
    msg = ("From: Søren <søren@client.example>\r\nTo: José <josé@example.test>\r\n"
           "Subject: utf8 %s\r\nMessage-ID: <%s@client.example>\r\n\r\nHej José!\r\n"
           % (tok, tok)).encode("utf-8")
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s> SMTPUTF8 BODY=8BITMIME" % sender) == OK_MAIL
        assert s.cmd("RCPT TO:<josé@example.test>") == OK_RCPT
        assert s.cmd("DATA") == GO_AHEAD
        s.send(msg + b".\r\n")
        qid = queued_id(s.read_reply())
    assert_stored_exactly(srv, ALICE, tok, msg, sender=sender, rcpt="josé@example.test",
                          proto="UTF8SMTP", qid=qid)


def test_non_ascii_without_smtputf8(srv):
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<søren@client.example>") == NEED_UTF8
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<josé@example.test>") == NEED_UTF8
        assert s.cmd("DATA") == NEED_RCPT


# --------------------------------------------------- recipients, aliases

def test_multiple_recipients_stored_once(srv):
    tok = new_token()
    msg = make_msg(tok)
    qid = deliver(srv, [ALICE, BOB], msg)
    a = srv.fetch_one(ALICE, tok)
    b = srv.fetch_one(BOB, tok)
    assert a == b
    received, rest = split_stored(a, SENDER)
    assert rest == msg
    f = parse_received(received)
    assert f["for"] is None and f["id"] == qid
    files = srv.message_files_with(tok)
    assert len(files) == 2, files
    st = [os.stat(p) for p in files]
    assert st[0].st_ino == st[1].st_ino and st[0].st_dev == st[1].st_dev, \
        "not one file hard-linked into both accounts: %r" % files
    acct = [os.path.dirname(os.path.dirname(p)) for p in files]
    assert acct[0] != acct[1], files
    assert_spool_empty(srv)
    assert os.stat(files[0]).st_nlink == 2


def test_alias_to_several_users(srv):
    tok = new_token()
    msg = make_msg(tok, to="team@example.test")
    deliver(srv, ["team@example.test"], msg)
    a = srv.fetch_one(ALICE, tok)
    b = srv.fetch_one(BOB, tok)
    assert a == b and a.endswith(msg)
    assert srv.find_messages(CAROL, tok) == []


def test_alias_to_remote_is_queued(srv):
    tok = new_token()
    msg = make_msg(tok, to="ext@example.test")
    deliver(srv, ["ext@example.test"], msg)
    assert srv.fetch_one(ALICE, tok).endswith(msg)
    # The queue runner may already have tried it (and bounced or deferred
    # it: remote.example does not resolve here), so look at the record
    # rather than at the queue folder.
    out = srv.cli_ok("trace", "%s@client.example" % tok).stdout.decode()
    # forwarded: the envelope sender is rewritten with SRS (test_srs.py)
    local, domain = SENDER.split("@")
    assert re.search(r"queued    someone@remote\.example from SRS0=[a-z2-7]{4}=[a-z2-7]{2}=%s=%s"
                     r"@example\.test" % (re.escape(domain), re.escape(local)), out), out
    # The local copy is in the same message's journey, with its account
    # and folder, and the alias on the way.
    assert re.search(r"\n  [-0-9]+ [:0-9]+  delivered ext@example\.test to %s's mailbox, "
                     r"folder INBOX \(through alias ext@example\.test\)\n" % re.escape(ALICE),
                     out), out
    assert out.count("\nMessage ") == 0 and out.startswith("Message "), out


def test_catch_all(srv):
    tok = new_token()
    msg = make_msg(tok, to="whoever-%s@catch.test" % tok)
    deliver(srv, ["whoever-%s@catch.test" % tok, "X.Y@CATCH.TEST"], msg)
    assert srv.fetch_one(BOB, tok).endswith(msg)


def test_plus_addressing(srv):
    tok = new_token()
    msg = make_msg(tok, to="alice+tag@example.test")
    qid = deliver(srv, ["alice+tag@example.test"], msg)
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt="alice+tag@example.test", qid=qid)


@pytest.mark.parametrize("rcpt", ["ALICE@EXAMPLE.TEST", "Alice@Example.Test",
                                  "alice@EXAMPLE.test"])
def test_case_insensitive_recipient(srv, rcpt):
    tok = new_token()
    msg = make_msg(tok, to=rcpt)
    deliver(srv, [rcpt], msg)
    assert srv.fetch_one(ALICE, tok).endswith(msg)


def test_postmaster(srv):
    tok = new_token()
    msg = make_msg(tok, to="postmaster@example.org")
    deliver(srv, ["postmaster@example.org"], msg)
    # example.org has no postmaster account or alias: its oldest account
    assert srv.fetch_one(CAROL, tok).endswith(msg)
    tok2 = new_token()
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<postmaster>") == OK_RCPT
        assert s.cmd("RCPT TO:<PostMaster@Example.Test>") == OK_RCPT
        assert s.cmd("DATA") == GO_AHEAD
        s.send(make_msg(tok2) + b".\r\n")
        queued_id(s.read_reply())


def test_bare_postmaster_is_the_servers(make_server):
    """RFC 5321 4.5.1: <postmaster> is the server's postmaster: postmaster@
    the host name's domain (here mx.example.test -> example.test, whose
    oldest account is alice), never the alphabetically first domain's
    customer; a domain of ours with no account sends its postmaster there
    too; the `postmaster` key names it explicitly."""
    s = make_server(start=False)
    s.cli_ok("domain", "add", "aaa.example")
    s.cli_ok("user", "add", "customer@aaa.example", "--password", "secret")
    s.cli_ok("domain", "add", "empty.example")
    s.start()
    for rcpt in ("postmaster", "postmaster@empty.example"):
        tok = new_token()
        msg = make_msg(tok, to=rcpt)
        deliver(s, [rcpt], msg)
        assert s.fetch_one(ALICE, tok).endswith(msg)
    # postmaster@aaa.example is still aaa.example's own
    tok = new_token()
    msg = make_msg(tok, to="postmaster@aaa.example")
    deliver(s, ["postmaster@aaa.example"], msg)
    assert s.fetch_one("customer@aaa.example", tok).endswith(msg)
    s.stop()
    s.set_config({"postmaster": BOB})
    s.start()
    tok = new_token()
    msg = make_msg(tok, to="postmaster")
    deliver(s, ["postmaster"], msg)
    assert s.fetch_one(BOB, tok).endswith(msg)


def test_user_added_while_running(srv):
    tok = new_token()
    srv.cli_ok("user", "add", "gina@example.test", "--password", "secret")
    msg = make_msg(tok, to="gina@example.test")
    deliver(srv, ["gina@example.test"], msg)
    assert srv.fetch_one("gina@example.test", tok).endswith(msg)


def test_recipient_delimiter_dash(make_server):
    other = make_server(conf={"recipient_delimiter": "-", "workers": 1})
    tok = new_token()
    msg = make_msg(tok, to="alice-tag@example.test")
    with raw(other) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<alice+tag@example.test>") == no_user("alice+tag@example.test")
        assert s.cmd("RCPT TO:<alice-tag@example.test>") == OK_RCPT
        assert s.cmd("DATA") == GO_AHEAD
        s.send(msg + b".\r\n")
        queued_id(s.read_reply())
    assert other.fetch_one(ALICE, tok).endswith(msg)


# ---------------------------------------------------- simple commands

def test_vrfy_expn_help_noop_rset_quit(srv):
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("VRFY alice@example.test") == (
            252, ["2.5.2 Cannot VRFY user, but will accept message and attempt delivery"])
        assert s.cmd("EXPN team@example.test") == (502, ["5.5.1 Error: EXPN not supported"])
        code, lines = s.cmd("HELP")
        assert code == 214 and all(l.startswith("2.0.0") for l in lines), (code, lines)
        assert s.cmd("NOOP") == OK
        assert s.cmd("RSET") == OK
        s.send(b"QUIT\r\nNOOP\r\n")  # nothing after QUIT is answered
        assert s.read_reply() == (221, ["2.0.0 Bye"])
        assert s.pending(0.5) == b""
        assert s.closed_by_server()


def test_rset_clears_transaction(srv):
    tok = new_token()
    msg = make_msg(tok, to=BOB)
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<first@client.example>") == OK_MAIL
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        assert s.cmd("RSET") == OK
        assert s.cmd("RCPT TO:<%s>" % BOB) == NEED_MAIL
        assert s.cmd("DATA") == NEED_MAIL
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL  # not "nested"
        assert s.cmd("RCPT TO:<%s>" % BOB) == OK_RCPT
        assert s.cmd("DATA") == GO_AHEAD
        s.send(msg + b".\r\n")
        qid = queued_id(s.read_reply())
    # only bob, and the sender of the second MAIL
    assert srv.find_messages(ALICE, tok) == []
    assert_stored_exactly(srv, BOB, tok, msg, rcpt=BOB, qid=qid)


def test_ehlo_resets_transaction(srv):
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        s.ehlo()  # RFC 5321 4.1.4: EHLO clears the transaction
        assert s.cmd("RCPT TO:<%s>" % ALICE) == NEED_MAIL
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL


# --------------------------------------------------------- bad input

@pytest.mark.parametrize("after_ehlo", [True, False], ids=["after-ehlo", "before-ehlo"])
def test_one_megabyte_command_line(srv, parallel, after_ehlo):
    with parallel:
        with raw(srv) as s:
            if after_ehlo:
                s.ehlo()
            # if the tail were parsed as commands it would draw more replies
            # (500 5.5.1 ..., 221 for a QUIT, 421 after too many errors)
            s.send(b"NOOP " + b"QUIT" * 262144 + b"\r\n")
            assert s.read_reply() == LINE_TOO_LONG
            assert s.cmd("NOOP") == OK
            assert s.pending() == b""
            if not after_ehlo:
                s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL


def test_command_line_length_boundaries(srv):
    with raw(srv) as s:
        # RFC 5321 4.5.3.1.4: 512 octets including CRLF
        assert s.cmd("NOOP " + "x" * (512 - 7)) == OK
        assert s.cmd("NOOP " + "x" * (513 - 7)) == LINE_TOO_LONG
        s.ehlo()
        assert s.cmd("NOOP " + "x" * (2048 - 7)) == OK
        assert s.cmd("NOOP " + "x" * (2049 - 7)) == LINE_TOO_LONG
        assert s.cmd("NOOP") == OK


def test_nul_byte_in_command(srv, parallel):
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            assert s.cmd(b"NOOP\x00") == NUL_BYTE
            assert s.cmd(b"\x00NOOP") == NUL_BYTE
            assert s.cmd(b"MAIL FROM:<a\x00b@client.example>") == NUL_BYTE
            assert s.cmd("RCPT TO:<%s>" % ALICE) == NEED_MAIL  # the MAIL did not count
            assert s.cmd("NOOP") == OK
            assert s.pending() == b""


def test_commands_out_of_order(srv, parallel):
    tok = new_token()
    msg = make_msg(tok)
    with parallel:
        with raw(srv) as s:
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == NEED_EHLO
            assert s.cmd("RCPT TO:<%s>" % ALICE) in (NEED_EHLO, NEED_MAIL)
            s.ehlo()
            assert s.cmd("RCPT TO:<%s>" % ALICE) == NEED_MAIL
            assert s.cmd("DATA") == NEED_MAIL
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == NESTED_MAIL
            assert s.cmd("DATA") == NEED_RCPT
            assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
            assert s.cmd("DATA") == GO_AHEAD
            s.send(msg + b".\r\n")
            qid = queued_id(s.read_reply())
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, qid=qid)


def test_data_when_every_rcpt_refused(srv, parallel):
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            assert s.cmd("RCPT TO:<nobody@example.test>") == no_user("nobody@example.test")
            assert s.cmd("RCPT TO:<x@elsewhere.test>") == relay_denied("x@elsewhere.test")
            assert s.cmd("DATA") == (554, ["5.5.1 Error: no valid recipients"])
            assert s.cmd("RSET") == OK


def test_foreign_and_unknown_recipients(srv, parallel):
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            assert s.cmd("RCPT TO:<x@elsewhere.test>") == relay_denied("x@elsewhere.test")
            assert s.cmd("RCPT TO:<alice@example.test.evil>") == relay_denied(
                "alice@example.test.evil")
            assert s.cmd("RCPT TO:<nobody@example.test>") == no_user("nobody@example.test")
            assert s.cmd("RCPT TO:<alice@example.org>") == no_user("alice@example.org")
            assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT


def test_syntax_errors(srv):
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<@@client.example>") == (553, ["5.1.7 Bad sender address syntax"])
        assert s.cmd("MAIL FROM:<%s> FOO=BAR" % SENDER) == (555, ["5.5.4 Unsupported parameter"])
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<@@example.test>") == (501, ["5.1.3 Bad recipient address syntax"])
        assert s.cmd("RCPT TO:<%s> FOO=BAR" % ALICE) == (555, ["5.5.4 Unsupported parameter"])
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        assert s.cmd("RSET") == OK


def test_too_many_recipients(srv, parallel):
    tok = new_token()
    msg = make_msg(tok)
    accepted = [ALICE, BOB, CAROL, DAVE, ERIN]
    assert len(accepted) == MAX_RCPT
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            for r in accepted:
                assert s.cmd("RCPT TO:<%s>" % r) == OK_RCPT
            assert s.cmd("RCPT TO:<%s>" % FRANK) == (452, ["4.5.3 Error: too many recipients"])
            assert s.cmd("DATA") == GO_AHEAD
            s.send(msg + b".\r\n")
            queued_id(s.read_reply())
    for r in accepted:
        assert srv.fetch_one(r, tok).endswith(msg)
    assert srv.find_messages(FRANK, tok) == []


def test_size_parameter(srv, parallel):
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            for size in (MAX_SIZE + 1, 10 ** 10, 99999999999999999999):
                assert s.cmd("MAIL FROM:<%s> SIZE=%d" % (SENDER, size)) == TOO_BIG, size
            assert s.cmd("MAIL FROM:<%s> SIZE=%d" % (SENDER, MAX_SIZE)) == OK_MAIL
            assert s.cmd("RSET") == OK
            tok = new_token()
            msg = make_msg(tok)
            qid = queued_id(raw_transaction(s, [ALICE], msg + b".\r\n",
                                            mail_params=" SIZE=%d" % len(msg)))
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, qid=qid)


def test_hundred_megabytes_streamed_over_limit(srv, parallel):
    tok = new_token()
    line = b"y" * 998 + b"\r\n"
    chunk = line * 64
    with parallel:
        with raw(srv, timeout_s=60) as s:
            s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
            assert s.cmd("DATA") == GO_AHEAD
            s.send(make_msg(tok, body=b""))
            sent = 0
            while sent < 100 * 1024 * 1024:
                s.send(chunk)
                sent += len(chunk)
            s.send(b".\r\n")
            assert s.read_reply() == TOO_BIG
            assert s.cmd("NOOP") == OK
    assert_not_stored(srv, tok, users=(ALICE,))
    assert_spool_empty(srv)


@pytest.mark.parametrize("bad", [b"line one\nline two\r\n", b"line one\rline two\r\n",
                                 b"ends in bare LF\n"], ids=["LF", "CR", "LF-at-end"])
def test_bare_cr_lf_in_data(srv, parallel, bad):
    tok = new_token()
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
            assert s.cmd("DATA") == GO_AHEAD
            s.send(make_msg(tok, body=b"first\r\n" + bad) + b"more\r\n.\r\n")
            assert s.read_reply() == BARE_EOL
            assert s.pending() == b""
            assert s.cmd("NOOP") == OK
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL  # transaction was reset
    assert_not_stored(srv, tok)
    assert_spool_empty(srv)


@pytest.mark.parametrize("fake_end", [b"\r\n.\n", b"\n.\r\n", b"\n.\n", b"\r\n.\r",
                                      b"\r.\r\n"],
                         ids=["CRLF-dot-LF", "LF-dot-CRLF", "LF-dot-LF", "CRLF-dot-CR",
                              "CR-dot-CRLF"])
def test_smuggling_pattern_does_not_end_data(srv, parallel, fake_end):
    tok, tok2 = new_token(), new_token()
    smuggled = (b"MAIL FROM:<evil@client.example>\r\nRCPT TO:<" + BOB.encode() + b">\r\n"
                b"DATA\r\n" + make_msg(tok2, to=BOB) + b".\r\n")
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
            assert s.cmd("DATA") == GO_AHEAD
            s.send(make_msg(tok, body=b"hello") + fake_end + smuggled)
            # the only end of data is the final CRLF.CRLF; the message has bare
            # LFs, so it is refused as a whole, and nothing else is answered
            assert s.read_reply() == BARE_EOL
            assert s.pending() == b""
            assert s.cmd("NOOP") == OK
    assert_not_stored(srv, tok)
    assert_not_stored(srv, tok2)


def test_line_too_long_in_data(srv, parallel):
    tok = new_token()
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
            assert s.cmd("DATA") == GO_AHEAD
            s.send(make_msg(tok, body=b"z" * 70000 + b"\r\nshort\r\n") + b".\r\n")
            assert s.read_reply() == (554, ["5.5.2 Error: line too long"])
            assert s.cmd("NOOP") == OK
    assert_not_stored(srv, tok, users=(ALICE,))


@pytest.mark.parametrize("mode", ["DATA", "BDAT"])
def test_disconnect_mid_data(srv, parallel, mode):
    tok = new_token()
    with parallel:
        s = raw(srv)
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        partial = make_msg(tok, body=b"partial body\r\n" * 500)
        if mode == "DATA":
            assert s.cmd("DATA") == GO_AHEAD
            s.send(partial)
        else:
            s.send(b"BDAT %d LAST\r\n" % (len(partial) + 1000) + partial)
        time.sleep(0.2)
        s.close()
        time.sleep(0.2)
    assert_spool_empty(srv, seconds=1.0)
    assert_not_stored(srv, tok, users=(ALICE,))


def test_too_many_errors(srv, parallel):
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            errors = 0
            while True:
                code, lines = s.cmd("BOGUS")
                if code != 500:
                    break
                assert (code, lines) == UNKNOWN_CMD
                errors += 1
                assert errors <= 10, "no 421 after %d errors (smtp.max_errors = 10)" % errors
            assert (code, lines) == (421, ["4.7.0 %s Error: too many errors" % HOSTNAME])
            # 10 errors allowed: the 421 answers the 10th or the 11th one
            assert errors in (9, 10), errors
            assert s.closed_by_server(), "connection left open after 421"


def test_bdat_refused_chunk_is_discarded(srv, parallel):
    # RFC 3030 2: after a failed BDAT the octets are read and thrown away,
    # never taken for commands
    chunk = b"QUIT\r\nRSET\r\n"
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            s.send(b"BDAT %d\r\n" % len(chunk) + chunk)
            assert s.read_reply() == NEED_MAIL
            assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
            s.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
            assert s.read_reply() == NEED_RCPT
            assert s.cmd("NOOP") == OK
            assert s.pending() == b""


def test_bdat_pipelined_after_failure(srv, parallel):
    tok = new_token()
    part = make_msg(tok)
    with parallel:
        with raw(srv) as s:
            s.ehlo()
            s.send(b"MAIL FROM:<" + SENDER.encode() + b">\r\n"
                   b"RCPT TO:<nobody@example.test>\r\n"
                   + b"BDAT %d\r\n" % len(part) + part
                   + b"BDAT 12 LAST\r\nQUIT\r\nQUIT\r\n")
            assert s.read_reply() == OK_MAIL
            assert s.read_reply() == no_user("nobody@example.test")
            first = s.read_reply()
            assert first[0] in (503, 554) and first[1][0].startswith("5.5."), first
            second = s.read_reply()
            assert second[0] >= 500, second
            assert s.cmd("NOOP") == OK  # neither chunk was read as commands
            assert s.pending() == b""
    assert_not_stored(srv, tok)


def test_bdat_syntax_variants(srv):
    tok = new_token()
    part = make_msg(tok)
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        s.send(b"bdat 000%d last\r\n" % len(part) + part)  # RFC 3030: 1*DIGIT, any case
        qid = queued_id(s.read_reply())
    assert_stored_exactly(srv, ALICE, tok, part, rcpt=ALICE, qid=qid)


def test_bdat_huge_chunk_then_disconnect(srv, parallel):
    """A 10 GB BDAT announcement costs no memory; the client then leaves."""
    tok = new_token()
    with parallel:
        s = raw(srv)
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        s.send(b"BDAT 10000000000 LAST\r\n" + make_msg(tok) + b"z" * 2000000)
        time.sleep(0.2)
        s.close()
    assert_spool_empty(srv)
    assert_not_stored(srv, tok, users=(ALICE,))


def test_bdat_bare_cr_at_the_very_end(srv):
    tok = new_token()
    part = make_msg(tok, body=b"body\r\nends in CR\r")
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT
        s.send(b"BDAT %d\r\n" % len(part) + part)
        assert s.read_reply()[0] == 250
        assert s.cmd("BDAT 0 LAST") == BARE_EOL
    assert_not_stored(srv, tok, users=(ALICE,))


def test_byte_by_byte(srv):
    """Every command and the message arrive one byte per segment."""
    tok = new_token()
    msg = make_msg(tok, body=b".dot\r\nline\r\n")
    with raw(srv) as s:
        s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def trickle(data):
            for i in range(len(data)):
                s.send(data[i:i + 1])
                if i % 4 == 0:
                    time.sleep(0.0005)

        trickle(b"EHLO " + HELO_NAME.encode() + b"\r\n")
        assert s.read_reply()[0] == 250
        trickle(b"MAIL FROM:<" + SENDER.encode() + b">\r\n")
        assert s.read_reply() == OK_MAIL
        trickle(b"RCPT TO:<" + ALICE.encode() + b">\r\n")
        assert s.read_reply() == OK_RCPT
        trickle(b"DATA\r\n")
        assert s.read_reply() == GO_AHEAD
        trickle(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        qid = queued_id(s.read_reply())
        part = make_msg(new_token())
        trickle(b"MAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<" + BOB.encode() + b">\r\n"
                + b"BDAT %d LAST\r\n" % len(part) + part)
        assert s.read_reply() == OK_MAIL
        assert s.read_reply() == OK_RCPT
        queued_id(s.read_reply())
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, qid=qid)


def test_long_data_line_under_64k_accepted(srv):
    tok = new_token()
    msg = make_msg(tok, body=b"w" * 60000 + b"\r\nshort\r\n")
    qid = deliver(srv, [ALICE], msg)
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, qid=qid)


def test_message_just_under_size_limit(srv):
    tok = new_token()
    head = make_msg(tok, body=b"")
    line = b"v" * 998 + b"\r\n"
    msg = head + line * ((MAX_SIZE - 20000 - len(head)) // len(line))
    assert len(msg) < MAX_SIZE - 10000
    qid = deliver(srv, [ALICE], msg, mail_options=["SIZE=%d" % len(msg)])
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, qid=qid)


def test_alias_loop(srv):
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        assert s.cmd("RCPT TO:<loop1@example.test>") == (
            550, ["5.4.6 <loop1@example.test>: alias expansion loop"])
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT


def test_duplicate_recipients_delivered_once(srv):
    tok = new_token()
    msg = make_msg(tok)
    qid = deliver(srv, [ALICE, "ALICE@example.test", "alice+x@example.test",
                        "team@example.test"], msg)
    assert len(srv.find_messages(ALICE, tok)) == 1, "alice got the message more than once"
    assert len(srv.find_messages(BOB, tok)) == 1
    assert srv.fetch_one(ALICE, tok).endswith(msg)
    assert qid


def test_quoted_local_part_sender(srv):
    tok = new_token()
    sender = '"john q. doe"@client.example'
    msg = make_msg(tok)
    with raw(srv) as s:
        s.ehlo()
        qid = queued_id(raw_transaction(s, [ALICE], msg + b".\r\n", sender=sender))
    stored = srv.fetch_one(ALICE, tok)
    received, rest = split_stored(stored, sender)
    assert rest == msg
    assert parse_received(received)["id"] == qid


def test_overlong_addresses(srv):
    # RFC 5321 4.5.3.1.1: local part <= 64 octets, 4.5.3.1.3: path <= 256
    long_local = "a" * 300
    with raw(srv) as s:
        s.ehlo()
        code, lines = s.cmd("MAIL FROM:<%s@client.example>" % long_local)
        assert (code, lines[0][:5]) == (553, "5.1.7"), (code, lines)
        assert s.cmd("MAIL FROM:<%s>" % SENDER) == OK_MAIL
        code, lines = s.cmd("RCPT TO:<%s@example.test>" % long_local)
        assert (code, lines[0][:5]) == (501, "5.1.3"), (code, lines)
        code, lines = s.cmd("RCPT TO:<alice@%s.example.test>" % ".".join(["d" * 60] * 5))
        assert code in (501, 554) and lines[0][:5] in ("5.1.3", "5.7.1"), (code, lines)
        assert s.cmd("RCPT TO:<%s>" % ALICE) == OK_RCPT


def test_parameters_are_case_insensitive(srv):
    with raw(srv) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<%s> body=8bitmime size=1000" % SENDER) == OK_MAIL
        assert s.cmd("RSET") == OK
        assert s.cmd("MAIL FROM:<%s> BODY=7BIT" % SENDER) == OK_MAIL


def test_ehlo_address_literal(srv):
    tok = new_token()
    msg = make_msg(tok)
    with raw(srv) as s:
        assert s.cmd("EHLO [127.0.0.1]")[0] == 250
        qid = queued_id(raw_transaction(s, [ALICE], msg + b".\r\n"))
    assert_stored_exactly(srv, ALICE, tok, msg, rcpt=ALICE, qid=qid, helo="[127.0.0.1]")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_client_that_never_reads_replies(srv, parallel):
    """Backpressure (docs/style.md): a client that pipelines commands but
    never reads the replies must not make the worker buffer without limit
    nor stall the other sessions."""
    with parallel:
        hog = raw(srv)
        hog.ehlo()
        worker = socket_owner(child_pids(srv.pid), srv.smtp_port, hog.sock.getsockname()[1])
        assert worker, "cannot find the worker serving the session"
        rss0 = rss_kb(worker)
        hog.sock.setblocking(False)
        chunk = b"NOOP\r\n" * 10000
        sent, stalled, limit = 0, None, 96 * 1024 * 1024
        deadline = time.monotonic() + timeout(20)
        while sent < limit and time.monotonic() < deadline:
            try:
                sent += hog.sock.send(chunk)
                stalled = None
            except BlockingIOError:
                if stalled is None:
                    stalled = time.monotonic()
                elif time.monotonic() - stalled > 1.0:
                    break
                time.sleep(0.01)
        grown = rss_kb(worker) - rss0
        print("sent %d MB, worker grew %d kB" % (sent >> 20, grown))
        assert sent < limit, "the server read %d MB of commands whose replies nobody read" % (
            sent >> 20)
        assert grown < 48 * 1024, "worker grew by %d MB" % (grown >> 10)
        hog.close()


def test_connections_reset_at_every_stage(srv, parallel):
    part = make_msg(new_token())
    stages = [
        b"",
        b"EHLO x.example\r\nMAIL FROM:<a@client.example>\r\nRC",
        b"EHLO x.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<alice@example.test>"
        b"\r\nDATA\r\n" + part[:100],
        b"EHLO x.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<alice@example.test>"
        b"\r\nBDAT 5000 LAST\r\n" + part,
        b"EHLO x.example\r\n" + b"A" * 5000,
    ]
    with parallel:
        for i in range(40):
            c = socket.create_connection((srv.host, srv.smtp_port), timeout=timeout(10))
            if i % 3:
                c.recv(100)
            c.sendall(stages[i % len(stages)])
            if i % 2:
                time.sleep(0.01)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        time.sleep(0.3)
    assert_spool_empty(srv)


def test_many_concurrent_sessions(srv):
    toks = [new_token() for _ in range(40)]
    failures = []

    def one(tok):
        try:
            deliver(srv, [BOB], make_msg(tok, to=BOB))
        except Exception as e:  # noqa: BLE001
            failures.append("%s: %r" % (tok, e))

    threads = [threading.Thread(target=one, args=(t,)) for t in toks]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout(60))
    assert failures == []
    subjects = [r["SUBJECT"] for r in srv.mail_list(BOB)]
    for tok in toks:
        assert sum(tok in subj for subj in subjects) == 1, tok


def test_shutdown_sends_421(make_server):
    other = make_server(conf={"workers": 1})
    s = raw(other)
    s.ehlo()
    other.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    try:
        s.send(b"NOOP\r\n")
    except OSError:
        pass
    assert s.read_reply() == (421, ["4.3.2 %s Service shutting down" % HOSTNAME])
    assert s.closed_by_server()
    other.proc.wait(timeout(10))


# -------------------------------------------------------------- logging

def test_log_line_per_transaction(srv):
    tok = new_token()
    sender = "log-%s@client.example" % tok
    msg = make_msg(tok, sender=sender)
    qid = deliver(srv, [ALICE, BOB], msg, sender=sender)
    lines = srv.wait_log(re.escape("from=<%s>" % sender))
    assert len(lines) == 1, "want one log line for the transaction: %r" % lines
    line = lines[0]
    assert re.search(r"\binfo\b.*\bsmtp id=", line), line
    kv = dict(re.findall(r"(\w+)=(\S+)", line.split(" smtp ", 1)[1]))
    assert kv["id"] == qid, line
    assert kv["client"] == "127.0.0.1", line
    assert kv["helo"] == HELO_NAME, line
    assert kv["rcpt"] == "<%s>,<%s>" % (ALICE, BOB), line
    stored = srv.fetch_one(ALICE, tok)
    assert int(kv["size"]) in (len(msg), len(stored)), line
    assert kv["result"] == "250", line
    assert re.fullmatch(r"\d+", kv["ms"]), line


def test_log_line_for_refused_message(srv):
    tok = new_token()
    sender = "refused-%s@client.example" % tok
    with raw(srv) as s:
        s.ehlo()
        assert raw_transaction(s, [ALICE], make_msg(tok, body=b"a\nb\r\n") + b".\r\n",
                               sender=sender) == BARE_EOL
    lines = srv.wait_log(re.escape("from=<%s>" % sender))
    assert len(lines) == 1 and "result=554" in lines[0], lines


# ---------------------------------------------------------------- swaks

def swaks(srv, *args, data=None):
    exe = shutil.which("swaks")
    if exe is None:
        pytest.skip("swaks is not installed")
    cmd = [exe, "--server", srv.host, "--port", str(srv.smtp_port),
           "--ehlo", HELO_NAME, "--from", SENDER] + list(args)
    return subprocess.run(cmd, input=data, capture_output=True, timeout=timeout(30))


def test_swaks_pipeline(srv):
    tok = new_token()
    r = swaks(srv, "--to", "%s,%s" % (ALICE, BOB), "--pipeline",
              "--header", "Subject: swaks %s" % tok, "--body", "Sent by swaks.")
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out + r.stderr.decode()
    # pipelined: both RCPTs are sent before the MAIL reply is read
    lines = out.splitlines()
    first_rcpt = next(i for i, l in enumerate(lines) if l.startswith(" -> RCPT TO"))
    mail_reply = next(i for i, l in enumerate(lines) if "2.1.0 Ok" in l)
    assert first_rcpt < mail_reply, out
    assert re.search(r"^<- +250 2\.0\.0 Ok: queued as \S+$", out, re.M), out
    a = srv.fetch_one(ALICE, tok)
    assert a == srv.fetch_one(BOB, tok)
    assert b"Sent by swaks." in a


def test_swaks_8bit(srv, tmp_path):
    tok = new_token()
    body = "Grüße, ünïcödé ✓ — swaks\r\n".encode("utf-8")
    msg = make_msg(tok, body=body, extra_headers=b"MIME-Version: 1.0\r\n"
                   b"Content-Type: text/plain; charset=utf-8\r\n"
                   b"Content-Transfer-Encoding: 8bit\r\n")
    r = swaks(srv, "--to", ALICE, "--data", "-", "--no-data-fixup", data=msg + b".\r\n")
    assert r.returncode == 0, r.stdout.decode("utf-8", "replace")
    stored = srv.fetch_one(ALICE, tok)
    assert body in stored
    received, rest = split_stored(stored, SENDER)
    assert rest == msg
