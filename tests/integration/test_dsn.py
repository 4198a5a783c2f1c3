"""The DSN extension (RFC 3461) of Tern's SMTP server and how its requests
shape the DSNs the queue runner sends (RFC 3464).

Same world as test_outbound.py (its fixtures are reused): dnsmasq on
loopback, Tern A (a.test) on 127.0.0.2 and Tern B (b.test) on 127.0.0.3.
Mail enters A over SMTP for an alias whose target is remote
(x@a.test -> bob@b.test) or for a local account.
"""

import re
import time
import uuid

import pytest

from conftest import SMTPRaw, without_dkim
from test_outbound import (HOST_A, HOST_B, HOST_FAKE, World, dsn_parts, fields,  # noqa: F401
                           inbox_with, normal_reply, pytestmark, unsigned_part, wait_for,
                           world)

BAD_DSN = (501, ["5.5.4 Syntax error in DSN parameter"])
UNSUPPORTED = (555, ["5.5.4 Unsupported parameter"])


def send(peer, rcpts, subject, mail_params="", sender="alice@a.test", body="Hello there.\r\n"):
    """One message over SMTP; rcpts is a list of (address, parameters).
    Returns (message bytes, Message-ID)."""
    mid = "<%s@a.test>" % uuid.uuid4().hex
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: %s\r\n\r\n%s"
           % (sender, rcpts[0][0], subject, mid, body)).encode()
    with SMTPRaw(peer.host, peer.smtp_port) as c:
        c.ehlo()
        code, lines = c.cmd(("MAIL FROM:<%s> %s" % (sender, mail_params)).rstrip())
        assert code == 250, lines
        for addr, params in rcpts:
            code, lines = c.cmd(("RCPT TO:<%s> %s" % (addr, params)).rstrip())
            assert code == 250, lines
        assert c.cmd("DATA")[0] == 354
        c.send(msg + b".\r\n")
        code, lines = c.read_reply()
        assert code == 250, lines
        c.cmd("QUIT")
    return msg, mid


def report(peer, user, subject, seconds=15):
    """The one DSN with subject in user's INBOX: (raw, header fields,
    [text, delivery-status, original] parts)."""
    rows = inbox_with(peer, user, subject, seconds=seconds)
    assert len(rows) == 1, rows
    raw = peer.mail_cat(user, "INBOX", rows[0]["UID"])
    assert raw.startswith(b"Return-Path: <>\r\n"), raw[:100]
    head, parts = dsn_parts(raw)
    assert len(parts) == 3, parts
    return raw, dict(fields(head)), parts


def status_blocks(part):
    """message/delivery-status part -> (per-message fields, [per-recipient
    field lists]) with the fields in order."""
    assert part.startswith("Content-Description: Delivery report\r\n"
                           "Content-Type: message/delivery-status\r\n\r\n"), part[:200]
    blocks = [b for b in part.split("\r\n\r\n")[1:] if b.strip()]
    return fields(blocks[0]), [fields(b) for b in blocks[1:]]


def without_dates(pairs):
    return [(k, v) for k, v in pairs if not k.endswith("Date")]


# ------------------------------------------------------------------ tests

def test_ehlo_lists_dsn(world):
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    with SMTPRaw(a.host, a.smtp_port) as c:
        code, lines = c.cmd("EHLO client.example")
        assert code == 250
        assert lines[0] == "mx.a.test" and re.fullmatch(r"SIZE \d+", lines[2]), lines
        assert lines[1:2] + lines[3:] == ["PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING",
                                          "DSN", "STARTTLS", "ENHANCEDSTATUSCODES"], lines
    with SMTPRaw(a.host, a.port_base + 587) as c:
        code, lines = c.cmd("EHLO client.example")
        assert code == 250
        assert "DSN" in lines and lines.index("DSN") == lines.index("CHUNKING") + 1, lines


def test_parameter_errors(world):
    a = world.peer(HOST_A, "a.test", ["alice@a.test", "carol@a.test"],
                   conf={"smtp.max_errors": "100"})
    with SMTPRaw(a.host, a.smtp_port) as c:
        c.ehlo()
        m = "MAIL FROM:<alice@a.test> "
        assert c.cmd(m + "RET=FULL RET=HDRS") == BAD_DSN
        assert c.cmd(m + "RET=ALL") == BAD_DSN
        assert c.cmd(m + "ENVID=a ENVID=b") == BAD_DSN
        assert c.cmd(m + "ENVID=" + "x" * 101) == BAD_DSN
        assert c.cmd(m + "ENVID=bad+2") == BAD_DSN
        assert c.cmd(m + "ENVID=ctl+0A") == BAD_DSN
        assert c.cmd(m + "NOTIFY=NEVER") == UNSUPPORTED
        assert c.cmd(m + "RET=hdrs ENVID=" + "x" * 100) == (250, ["2.1.0 Ok"])
        r = "RCPT TO:<carol@a.test> "
        assert c.cmd(r + "NOTIFY=NEVER,SUCCESS") == BAD_DSN
        assert c.cmd(r + "NOTIFY=FAILURE,NEVER") == BAD_DSN
        assert c.cmd(r + "NOTIFY=SOMETIMES") == BAD_DSN
        assert c.cmd(r + "NOTIFY=SUCCESS,") == BAD_DSN
        assert c.cmd(r + "NOTIFY=DELAY NOTIFY=DELAY") == BAD_DSN
        assert c.cmd(r + "ORCPT=carol@a.test") == BAD_DSN
        assert c.cmd(r + "ORCPT=rfc822;a ORCPT=rfc822;a") == BAD_DSN
        assert c.cmd(r + "ORCPT=rfc822;" + "y" * 494) == BAD_DSN  # 501 characters
        assert c.cmd(r + "RET=FULL") == UNSUPPORTED
        assert c.cmd(r + "NOTIFY=success,Delay ORCPT=rfc822;" + "y" * 493) == \
            (250, ["2.1.5 Ok"])
        assert c.cmd("RCPT TO:<alice@a.test> NOTIFY=NEVER ORCPT=rfc822;alice+2B@a.test") == \
            (250, ["2.1.5 Ok"])
        assert c.cmd("RSET") == (250, ["2.0.0 Ok"])


def test_notify_never_gets_no_bounce(world):
    b = world.peer(HOST_B, "b.test", ["bob@b.test"])
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "y@a.test", "nobody@b.test")
    a.cli_ok("alias", "add", "z@a.test", "nobody2@b.test")
    # Same failure twice: NOTIFY=NEVER is silent, the control bounces.
    send(a, [("y@a.test", "NOTIFY=NEVER")], "never one")
    send(a, [("z@a.test", "NOTIFY=FAILURE")], "failure one")
    report(a, "alice@a.test", "Undelivered Mail Returned to Sender")
    wait_for(lambda: a.queue_rows() == [], 10, "empty queue")
    out = a.cli_ok("trace", "nobody@b.test").stdout.decode()
    assert "bounced" in out and "User unknown" in out, out
    time.sleep(1.5)  # a second DSN would show up now
    rows = a.find_messages("alice@a.test", "Undelivered Mail")
    assert len(rows) == 1, rows
    raw = a.mail_cat("alice@a.test", "INBOX", rows[0]["UID"]).decode()
    assert "Final-Recipient: rfc822; nobody2@b.test\r\n" in raw
    assert "nobody@b.test" not in raw
    assert a.files_under("queue") == []


def test_notify_success_relayed_with_envid_and_orcpt(world):
    """The next hop (fake.test) does not offer DSN: A reports "relayed"
    itself as soon as it accepted (RFC 3461 5.2.2 c) and sends it no DSN
    parameters."""
    f = world.fake(lambda n, cmd: normal_reply(cmd))
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@fake.test")
    msg, mid = send(a, [("x@a.test", "NOTIFY=SUCCESS ORCPT=rfc822;X+2Bone@a.test")],
                    "success one", mail_params="RET=FULL ENVID=QQ+2B314+3D")
    raw, hf, (text, status, orig) = report(a, "alice@a.test", "Successful Mail Delivery Report")
    cmds = [c for _, c in f.commands]
    i = next(k for k, c in enumerate(cmds) if c.startswith("MAIL FROM:"))
    assert re.fullmatch(r"MAIL FROM:<alice@a\.test> SIZE=\d+", cmds[i]), cmds
    assert cmds[i + 1:i + 3] == ["RCPT TO:<bob@fake.test>", "DATA"], cmds
    assert hf["From"] == "Mail Delivery System <MAILER-DAEMON@mx.a.test>"
    assert hf["To"] == "<alice@a.test>"
    assert hf["Auto-Submitted"] == "auto-replied"
    assert "<bob@fake.test>\r\n    Handed over to the mail server mx.fake.test [%s], " \
        "which answered:\r\n        250 2.0.0 Ok: queued\r\n" % HOST_FAKE in text, text
    per_msg, rcpts = status_blocks(status)
    assert without_dates(per_msg) == [("Original-Envelope-Id", "QQ+314="),
                                      ("Reporting-MTA", "dns; mx.a.test")]
    assert len(rcpts) == 1
    got = without_dates(rcpts[0])
    assert [k for k, _ in got] == ["Original-Recipient", "Final-Recipient", "Action", "Status",
                                   "Remote-MTA", "Diagnostic-Code"], got
    assert dict(got) == {"Original-Recipient": "rfc822; X+one@a.test",
                         "Final-Recipient": "rfc822; bob@fake.test",
                         "Action": "relayed", "Status": "2.0.0",
                         "Remote-MTA": "dns; mx.fake.test",
                         "Diagnostic-Code": "smtp; 250 2.0.0 Ok: queued"}
    # A success report returns the header only, even with RET=FULL.
    orig = unsigned_part(orig)
    assert orig.startswith("Content-Description: Delivered Message Headers\r\n"
                           "Content-Type: text/rfc822-headers\r\n\r\nReceived: from ")
    assert "Message-ID: %s\r\n" % mid in orig
    assert "Hello there." not in orig
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")
    assert a.files_under("queue") == []
    out = a.cli_ok("trace", mid).stdout.decode()
    assert "success notice sent to the sender" in out, out


def test_dsn_parameters_relayed_to_a_dsn_server(world):
    """The next hop offers DSN: RET, ENVID, NOTIFY and ORCPT go along
    exactly as received (RFC 3461 5.2.1), A sends no "relayed" notice, and
    the message goes as one BDAT chunk (CHUNKING, RFC 3030), byte for byte."""
    def script(n, cmd):
        if cmd.upper().startswith("EHLO"):
            return "250-fake.test\r\n250-PIPELINING\r\n250-DSN\r\n250-CHUNKING\r\n250 8BITMIME"
        if cmd.upper().startswith("BDAT"):
            return "250 2.0.0 Ok: chunk queued"
        return normal_reply(cmd)
    f = world.fake(script)
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@fake.test")
    body = "..leading dot stays\r\nend\r\n"  # dot-stuffed by us, the SMTP client
    msg, mid = send(a, [("x@a.test", "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;X+2Bone@a.test")],
                    "dsn relayed", mail_params="RET=HDRS ENVID=QQ+2B314+3D", body=body)
    wait_for(lambda: a.queue_rows() == [] and f.messages, 15, "delivery to the fake")
    cmds = [c for _, c in f.commands]
    i = next(k for k, c in enumerate(cmds) if c.startswith("MAIL FROM:"))
    assert cmds[i] == "MAIL FROM:<alice@a.test> RET=HDRS ENVID=QQ+2B314+3D", cmds
    assert cmds[i + 1] == "RCPT TO:<bob@fake.test> NOTIFY=SUCCESS,DELAY " \
        "ORCPT=rfc822;X+2Bone@a.test", cmds
    m = re.fullmatch(r"BDAT (\d+) LAST", cmds[i + 2])
    assert m, cmds
    sent = f.messages[0][1]
    assert int(m.group(1)) == len(sent)
    # What went out is the queued message: A's Received: field, then the
    # message as it was, without dot-stuffing.
    sent, n_sigs = without_dkim(sent)
    assert n_sigs == 2
    assert sent.startswith(b"Received: from ")
    assert sent.endswith(msg.replace(b"\r\n..", b"\r\n.")), sent[-300:]
    assert "DATA" not in cmds
    time.sleep(1.5)  # a "relayed" notice would be here by now
    assert a.find_messages("alice@a.test", "Successful Mail Delivery Report") == []
    out = a.cli_ok("trace", mid).stdout.decode()
    assert "success notice" not in out, out


def test_success_notice_comes_from_the_final_server(world):
    """A relays to B (which offers DSN); B delivers and sends the success
    report, with the ENVID and ORCPT that A passed on."""
    b = world.peer(HOST_B, "b.test", ["bob@b.test"])
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")
    msg, mid = send(a, [("x@a.test", "NOTIFY=SUCCESS ORCPT=rfc822;X+2Bone@a.test")],
                    "success from b", mail_params="RET=FULL ENVID=QQ+2B314+3D")
    inbox_with(b, "bob@b.test", "success from b")
    raw, hf, (text, status, orig) = report(a, "alice@a.test", "Successful Mail Delivery Report")
    assert hf["From"] == "Mail Delivery System <MAILER-DAEMON@mx.b.test>"
    assert "<bob@b.test>\r\n    Delivered to the mailbox.\r\n" in text, text
    per_msg, rcpts = status_blocks(status)
    assert without_dates(per_msg) == [("Original-Envelope-Id", "QQ+314="),
                                      ("Reporting-MTA", "dns; mx.b.test")]
    assert [without_dates(r) for r in rcpts] == [[
        ("Original-Recipient", "rfc822; X+one@a.test"),
        ("Final-Recipient", "rfc822; bob@b.test"),
        ("Action", "delivered"), ("Status", "2.0.0")]]
    assert "Message-ID: %s\r\n" % mid in orig
    assert len(a.find_messages("alice@a.test", "Successful Mail Delivery Report")) == 1
    # The stored copy at B is the message A queued, byte for byte after
    # B's own Received: field (it came as one BDAT chunk).
    rows = b.find_messages("bob@b.test", "success from b")
    stored = b.mail_cat("bob@b.test", "INBOX", rows[0]["UID"])
    assert stored.endswith(msg), stored[-200:]
    assert stored.count(b"Received: from ") == 2, stored[:600]


def test_notify_success_local_delivery(world):
    a = world.peer(HOST_A, "a.test", ["alice@a.test", "carol@a.test", "dave@a.test"])
    msg, mid = send(a, [("carol@a.test", "NOTIFY=SUCCESS,FAILURE"), ("dave@a.test", "")],
                    "local success", mail_params="ENVID=local1")
    inbox_with(a, "carol@a.test", "local success")
    inbox_with(a, "dave@a.test", "local success")
    raw, hf, (text, status, orig) = report(a, "alice@a.test", "Successful Mail Delivery Report")
    assert "<carol@a.test>\r\n    Delivered to the mailbox.\r\n" in text
    assert "dave@a.test" not in text  # no NOTIFY: no success report (RFC 3461 5.2.3 c)
    per_msg, rcpts = status_blocks(status)
    assert without_dates(per_msg) == [("Original-Envelope-Id", "local1"),
                                      ("Reporting-MTA", "dns; mx.a.test")]
    assert [without_dates(r) for r in rcpts] == [[("Final-Recipient", "rfc822; carol@a.test"),
                                                  ("Action", "delivered"),
                                                  ("Status", "2.0.0")]]
    assert "Message-ID: %s\r\n" % mid in orig
    wait_for(lambda: a.files_under("queue") == [], 5, "the queue file to go")
    # Without a sender there is never a DSN.
    send(a, [("carol@a.test", "NOTIFY=SUCCESS")], "null sender success", sender="")
    inbox_with(a, "carol@a.test", "null sender success")
    time.sleep(1.5)
    assert len(a.find_messages("alice@a.test", "Successful Mail Delivery Report")) == 1
    assert a.files_under("queue") == []


def test_ret_full_bounce_returns_whole_message(world):
    b = world.peer(HOST_B, "b.test", ["bob@b.test"])
    a = world.peer(HOST_A, "a.test", ["alice@a.test"])
    a.cli_ok("alias", "add", "y@a.test", "nobody@b.test")
    body = "Line one of the body.\r\n..leading dot\r\nLast line.\r\n"
    msg, mid = send(a, [("y@a.test", "NOTIFY=FAILURE ORCPT=rfc822;y@a.test")], "full one",
                    mail_params="RET=FULL ENVID=env+2Dfull", body=body)
    raw, hf, (text, status, orig) = report(a, "alice@a.test",
                                           "Undelivered Mail Returned to Sender")
    per_msg, rcpts = status_blocks(status)
    assert without_dates(per_msg) == [("Original-Envelope-Id", "env-full"),
                                      ("Reporting-MTA", "dns; mx.a.test")]
    got = without_dates(rcpts[0])
    assert got[:4] == [("Original-Recipient", "rfc822; y@a.test"),
                       ("Final-Recipient", "rfc822; nobody@b.test"),
                       ("Action", "failed"), ("Status", "5.1.1")], got
    head = "Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n"
    orig = unsigned_part(orig)
    assert orig.startswith(head + "Received: from "), orig[:300]
    # The whole original as queued: our Received: line, then every byte
    # the client sent (the SMTP dot-stuffing undone).
    assert orig.endswith(msg.decode().replace("\r\n..leading", "\r\n.leading") + "\r\n"), \
        orig[-300:]
    assert "Last line." in orig


def test_delay_notice_only_with_delay(world):
    a = world.peer(HOST_A, "a.test", ["alice@a.test"],
                   conf={"queue.delay_warning": "2s", "queue.lifetime": "7s"})
    a.cli_ok("alias", "add", "x@a.test", "bob@b.test")   # B never runs
    # Another domain (implicit.test: no MX, A 127.0.0.3, where nobody
    # listens either): two jobs of one unreachable destination make the
    # runner spin on reconnects (see the report of helper "dsn").
    a.cli_ok("alias", "add", "w@a.test", "walt@implicit.test")
    send(a, [("x@a.test", "NOTIFY=FAILURE")], "no delay wanted")
    send(a, [("w@a.test", "NOTIFY=DELAY,FAILURE")], "delay wanted")
    rows = inbox_with(a, "alice@a.test", "Delayed Mail (still being retried)", seconds=10)
    raw = a.mail_cat("alice@a.test", "INBOX", rows[0]["UID"]).decode()
    assert "Final-Recipient: rfc822; walt@implicit.test\r\nAction: delayed\r\n" in raw
    assert "bob@b.test" not in raw
    rows = inbox_with(a, "alice@a.test", "Undelivered Mail Returned to Sender", n=2,
                      seconds=20)
    assert len(a.find_messages("alice@a.test", "Delayed Mail")) == 1
    finals = set()
    for r in rows:
        raw = a.mail_cat("alice@a.test", "INBOX", r["UID"]).decode()
        finals |= set(re.findall(r"Final-Recipient: rfc822; (\S+)\r\nAction: failed\r\n"
                                 r"Status: 4\.4\.7\r\n", raw))
    assert finals == {"bob@b.test", "walt@implicit.test"}
    wait_for(lambda: a.queue_rows() == [], 5, "empty queue")


def test_alias_of_several_addresses_reports_expanded(world):
    """RFC 3461 5.2.7.3 (c): an alias with several targets passes ORCPT and
    NOTIFY (without SUCCESS) to each, and A reports "expanded" for it."""
    def script(n, cmd):
        if cmd.upper().startswith("EHLO"):
            return "250-fake.test\r\n250-PIPELINING\r\n250-DSN\r\n250 8BITMIME"
        return normal_reply(cmd)
    f = world.fake(script)
    a = world.peer(HOST_A, "a.test", ["alice@a.test", "carol@a.test"])
    a.cli_ok("alias", "add", "team@a.test", "carol@a.test", "bob@fake.test")
    msg, mid = send(a, [("team@a.test", "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;team@a.test")],
                    "to the team", mail_params="ENVID=team1")
    inbox_with(a, "carol@a.test", "to the team")
    raw, hf, (text, status, orig) = report(a, "alice@a.test", "Successful Mail Delivery Report")
    assert "<team@a.test>\r\n    This address forwards to several addresses; the message " \
        "went on to each\r\n    of them. There are no further reports for them.\r\n" in text, text
    per_msg, rcpts = status_blocks(status)
    assert without_dates(per_msg) == [("Original-Envelope-Id", "team1"),
                                      ("Reporting-MTA", "dns; mx.a.test")]
    assert [without_dates(r) for r in rcpts] == [[
        ("Original-Recipient", "rfc822; team@a.test"),
        ("Final-Recipient", "rfc822; team@a.test"),
        ("Action", "expanded"), ("Status", "2.0.0")]]
    wait_for(lambda: f.messages and a.queue_rows() == [], 15, "delivery to the fake")
    cmds = [c for _, c in f.commands]
    assert "MAIL FROM:<alice@a.test> ENVID=team1" in cmds, cmds
    assert "RCPT TO:<bob@fake.test> NOTIFY=FAILURE ORCPT=rfc822;team@a.test" in cmds, cmds
    time.sleep(1.5)  # no second success report (carol's, bob's) comes
    assert len(a.find_messages("alice@a.test", "Successful Mail Delivery Report")) == 1
    trace = a.cli_ok("trace", mid).stdout.decode()
    assert re.search(r"expanded  team@a\.test an alias: handed on to each of its addresses\n",
                     trace), trace
