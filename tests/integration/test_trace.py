"""`tern trace` for local deliveries (docs/admin.md "tern trace"): mail
sent over SMTP to a local user, through an alias, through plus-addressing
and the catch-all, and to a user whose Sieve script files it into a folder
or discards it; the trace names the account and the folder of each, and
the rule on the way.  The NXDOMAIN case (the resolver is named) is in
test_outbound.py, which has the test DNS server."""

import re
import smtplib
import sqlite3
import uuid
import os

import pytest

from conftest import HOST, PASSWORD, timeout

SENDER = "sender@client.example"
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf={"allow_plaintext_loopback": "yes"})


def new_user(srv, script=None):
    user = "u%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    if script is not None:
        srv.cli_ok("sieve", "put", "--activate", user, "main", "-", input=script.encode())
    return user


def send(srv, rcpts, subject="trace me"):
    """Sends one message; returns its Message-ID (without <>) and the SMTP
    id of the 250 reply."""
    mid = "%s@client.example" % uuid.uuid4().hex
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\nHello.\r\n"
           % (SENDER, rcpts[0], subject, mid)).encode()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.ehlo()
        s.mail(SENDER)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = s.data(msg)
        assert code == 250, text
    m = re.fullmatch(rb"2\.0\.0 Ok: queued as (\S+)", text)
    assert m, text
    return mid, m.group(1).decode()


def trace(srv, key):
    return srv.cli_ok("trace", key).stdout.decode()


def local_lines(out):
    """The delivered/discarded lines of a trace, without their time."""
    got = []
    for line in out.split("\n"):
        m = re.fullmatch(r"  %s  (delivered|discarded) (.*)" % TIME, line)
        if m:
            got.append("%s %s" % (m.group(1), m.group(2)))
    return got


def test_direct_delivery(srv):
    user = new_user(srv)
    mid, smtp_id = send(srv, [user])
    out = trace(srv, mid)
    m = re.match(r"Message (\d+) from %s, (\d+) bytes, Message-ID %s\n  Received: from .* id %s"
                 % (re.escape(SENDER), re.escape(mid), re.escape(smtp_id)), out)
    assert m, out
    assert local_lines(out) == ["delivered %s to %s's mailbox, folder INBOX" % (user, user)], out
    # Nothing was queued for a local recipient.
    assert "queued" not in out and "Now:" not in out, out
    # The same message by each key `tern trace` takes.
    for key in ("<%s>" % mid, smtp_id, m.group(1), user, user.upper()):
        assert trace(srv, key) == out, key
    # `tern queue` does not list it, and shows it without a file.
    assert user not in srv.cli_ok("queue", "list").stdout.decode()
    show = srv.cli_ok("queue", "show", m.group(1)).stdout.decode()
    assert "File: -\n" in show and "Sender: %s\n" % SENDER in show, show


def test_alias_with_several_targets(srv):
    alice, bob = new_user(srv), new_user(srv)
    alias = "team%s@example.test" % uuid.uuid4().hex[:8]
    srv.cli_ok("alias", "add", alias, alice, bob)
    mid, _ = send(srv, [alias])
    out = trace(srv, mid)
    assert local_lines(out) == [
        "delivered %s to %s's mailbox, folder INBOX (through alias %s)" % (alias, alice, alias),
        "delivered %s to %s's mailbox, folder INBOX (through alias %s)" % (alias, bob, alias),
    ], out
    # Found by the alias (as given in RCPT TO) and by each target account.
    assert trace(srv, alias) == out
    assert trace(srv, bob) == out


def test_plus_address_and_catch_all(srv):
    user = new_user(srv)
    local, domain = user.split("@")
    plus = "%s+news@%s" % (local, domain)
    srv.cli_ok("domain", "add", "catch.test")
    catch = new_user(srv)
    srv.cli_ok("alias", "add", "@catch.test", catch)
    mid, _ = send(srv, [plus, "whoever@catch.test"])
    out = trace(srv, mid)
    assert local_lines(out) == [
        "delivered %s to %s's mailbox, folder INBOX (through plus-addressing)" % (plus, user),
        "delivered whoever@catch.test to %s's mailbox, folder INBOX "
        "(through the catch-all alias @catch.test)" % catch,
    ], out
    assert trace(srv, "whoever@catch.test") == out


def test_sieve_fileinto_and_discard(srv):
    filer = new_user(srv, 'require ["fileinto", "mailbox"];\r\n'
                          'fileinto :create "Work/Reports";\r\n')
    missing = new_user(srv, 'require "fileinto";\r\nfileinto "Nowhere";\r\n')
    dropper = new_user(srv, "discard;\r\n")
    plain = new_user(srv)
    alias = "f%s@example.test" % uuid.uuid4().hex[:8]
    srv.cli_ok("alias", "add", alias, filer)
    mid, _ = send(srv, [alias, missing, dropper, plain])
    out = trace(srv, mid)
    assert local_lines(out) == [
        "delivered %s to %s's mailbox, folder Work/Reports (through alias %s; "
        "filed there by Sieve)" % (alias, filer, alias),
        "delivered %s to %s's mailbox, folder INBOX (Sieve chose the folder Nowhere, "
        "which does not exist)" % (missing, missing),
        "discarded %s for %s's mailbox: nothing stored (discarded by Sieve)"
        % (dropper, dropper),
        "delivered %s to %s's mailbox, folder INBOX" % (plain, plain),
    ], out
    assert srv.find_messages(filer, "trace me", mbox="Work/Reports")
    assert srv.find_messages(missing, "trace me")
    assert srv.find_messages(dropper, "trace me") == []


def test_history_is_pruned_like_the_queue(srv):
    """A local delivery is forgotten after queue.history, as a finished
    remote message is (the queue runner prunes both)."""
    user = new_user(srv)
    mid, _ = send(srv, [user])
    assert local_lines(trace(srv, mid))
    db = sqlite3.connect(os.path.join(srv.data, "server.db"), timeout=10)
    try:
        # Make it look 8 days old (queue.history is 7 days).
        with db:
            db.execute("UPDATE queue_messages SET created = created - 8 * 86400"
                       " WHERE msgid = ?", (mid,))
    finally:
        db.close()
    srv.restart()  # the runner prunes at start and then once in a while
    deadline = 30
    import time
    end = time.monotonic() + timeout(deadline)
    while True:
        r = srv.cli("trace", mid)
        if r.returncode == 1:
            break
        assert time.monotonic() < end, "not pruned: %r" % (r,)
        time.sleep(0.2)
    assert b"no message matches" in r.stderr and b"queue.history" in r.stderr, r
