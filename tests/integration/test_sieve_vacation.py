"""Sieve vacation (RFC 5230) and redirect at local delivery
(docs/sieve.md "Vacation", "Redirect"): scripts stored with `tern sieve
put`, mail sent with smtplib, replies and redirected copies found in the
queue (DNS points at a dead port, so they stay there: `tern queue list`
and the files under DATA/queue/) or in local INBOXes (imaplib, `tern mail
cat`)."""

import imaplib
import os
import re
import shutil
import smtplib
import tempfile
import time
import uuid

import pytest

from conftest import HOST, HOSTNAME, PASSWORD, timeout

CONF = {"allow_plaintext_loopback": "yes", "dns.resolver": "127.0.0.1:9",
        "queue.timeout.dns": "30s"}
REMOTE = "far@remote.example"

VACATION = ('require "vacation";\r\n'
            'vacation :addresses ["alias@example.test"] "I am away.\r\nBack on Monday.";\r\n')


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def new_user(srv, script=None):
    user = "u%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    if script is not None:
        srv.cli_ok("sieve", "put", "--activate", user, "main", "-", input=script.encode())
    return user


def message(sender, to, subject, extra=""):
    mid = "%s@client.example" % uuid.uuid4().hex
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n%s"
           "\r\nHello.\r\n" % (sender, to, subject, mid, extra)).encode()
    return msg, mid


def send(srv, sender, rcpts, msg):
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        assert s.sendmail(sender, rcpts, msg) == {}


def inbox(srv, user):
    """The bytes of every message in user's INBOX, in UID order."""
    c = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        c.login(user, PASSWORD)
        assert c.select("INBOX", readonly=True)[0] == "OK"
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert typ == "OK"
        return [item[1] for item in data if isinstance(item, tuple)]
    finally:
        c.logout()


def queued(srv, token):
    """(queue row, file bytes) of every queued message whose file holds token."""
    out = srv.cli_ok("queue", "list").stdout.decode()
    lines = [l for l in out.split("\n") if l]
    head = lines[0].split("\t")
    rows = [dict(zip(head, l.split("\t"))) for l in lines[1:]]
    found = []
    for r in rows:
        show = srv.cli_ok("queue", "show", r["ID"]).stdout.decode()
        name = re.search(r"^File: (\S+)$", show, re.M).group(1)
        paths = [p for p in srv.files_under("queue") if p.endswith("/" + name)]
        assert len(paths) == 1, (name, paths)
        with open(paths[0], "rb") as f:
            data = f.read()
        if token.encode() in data:
            found.append((r, data))
    return found


def split(msg):
    head, body = msg.split(b"\r\n\r\n", 1)
    fields = re.split(rb"\r\n(?![ \t])", head)
    return [tuple(f.split(b": ", 1)) for f in fields], body


def reply_fields(data, signed=True):
    """The reply's fields after its two DKIM-Signature fields (queued for
    another server) or none (delivered here), and its body."""
    fields, body = split(data)
    n = 2 if signed else 0
    assert [f[0] for f in fields[:n]] == [b"DKIM-Signature"] * n, fields
    assert all(b" d=example.test;" in f[1] for f in fields[:n])
    return fields[n:], body


def check_reply(fields, body, user, rcpt, subject, mid):
    names = [f[0] for f in fields]
    assert names == [b"From", b"To", b"Subject", b"Date", b"Message-ID", b"In-Reply-To",
                     b"References", b"Auto-Submitted", b"MIME-Version", b"Content-Type",
                     b"Content-Transfer-Encoding"], fields
    d = dict(fields)
    assert d[b"From"] == user.encode()
    assert d[b"To"] == b"<%s>" % rcpt.encode()
    assert d[b"Subject"] == b"Auto: " + subject.encode()
    assert re.match(rb"<[0-9A-Za-z]+\.vacation@%s>$" % re.escape(HOSTNAME.encode()),
                    d[b"Message-ID"]), d
    assert d[b"In-Reply-To"] == b"<%s>" % mid.encode()
    assert d[b"References"] == b"<%s>" % mid.encode()
    assert d[b"Auto-Submitted"] == b"auto-replied"
    assert d[b"Content-Type"] == b"text/plain; charset=utf-8"
    assert d[b"Content-Transfer-Encoding"] == b"7bit"
    assert body == b"I am away.\r\nBack on Monday.\r\n"


def test_vacation_reply_queued_once(srv):
    user = new_user(srv, VACATION)
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(sender, user, "Lunch?")
    send(srv, sender, [user], msg)
    assert len(inbox(srv, user)) == 1  # vacation keeps the message
    got = queued(srv, mid)
    assert len(got) == 1
    row, data = got[0]
    assert row["SENDER"] == "<>" and row["RCPT"] == sender
    check_reply(*reply_fields(data), user, sender, "Lunch?", mid)
    assert srv.wait_log(r"sieve id=\S+ to=<%s> action=vacation rcpt=<%s> result=sent"
                        % (re.escape(user), re.escape(sender)))
    # the same sender again within :days: no second reply
    msg2, mid2 = message(sender, user, "Dinner?")
    send(srv, sender, [user], msg2)
    assert len(inbox(srv, user)) == 2
    assert queued(srv, mid2) == []
    assert srv.wait_log(r"action=vacation result=skipped reason=\"replied to <%s> within "
                        r"the period\"" % re.escape(sender))
    # another sender gets one
    other = "o%s@remote.example" % uuid.uuid4().hex[:8]
    msg3, mid3 = message(other, user, "Hi")
    send(srv, other, [user], msg3)
    assert len(queued(srv, mid3)) == 1


def test_vacation_reply_to_local_sender_in_inbox(srv):
    user = new_user(srv, VACATION)
    local = new_user(srv)
    msg, mid = message(local, user, "Local question")
    send(srv, local, [user], msg)
    got = inbox(srv, local)
    assert len(got) == 1
    assert got[0].startswith(b"Return-Path: <>\r\n")
    check_reply(*reply_fields(got[0][len(b"Return-Path: <>\r\n"):], False), user, local,
                "Local question", mid)
    assert queued(srv, mid) == []


@pytest.mark.parametrize("extra,sender,why", [
    ("List-Id: <news.example.org>\r\n", None, "mailing list"),
    ("List-Unsubscribe: <mailto:u@remote.example>\r\n", None, "mailing list"),
    ("Precedence: bulk\r\n", None, "precedence bulk, list or junk"),
    ("Auto-Submitted: auto-generated\r\n", None, "auto-submitted"),
    ("", "MAILER-DAEMON@remote.example", "automated sender"),
    ("", "owner-news@remote.example", "automated sender"),
    ("", "news-request@remote.example", "automated sender"),
])
def test_vacation_not_for_lists_and_robots(srv, extra, sender, why):
    user = new_user(srv, VACATION)
    sender = sender or "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(sender, user, "Bulk", extra)
    mark = srv.log_mark()
    send(srv, sender, [user], msg)
    assert len(inbox(srv, user)) == 1
    assert srv.wait_log(r"to=<%s> action=vacation result=skipped reason=\"%s\""
                        % (re.escape(user), re.escape(why)), since=mark)
    assert queued(srv, mid) == []


def test_vacation_null_sender_and_not_addressed(srv):
    user = new_user(srv, VACATION)
    msg, mid = message("x@remote.example", user, "Bounce")
    mark = srv.log_mark()
    send(srv, "", [user], msg)
    assert srv.wait_log(r"to=<%s> action=vacation result=skipped reason=\"null sender\""
                        % re.escape(user), since=mark)
    # Bcc'd: the user is in none of To/Cc/Bcc/Resent-*
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg2, mid2 = message(sender, "someone@remote.example", "Bcc")
    send(srv, sender, [user], msg2)
    assert srv.wait_log(r"to=<%s> action=vacation result=skipped reason=\"not addressed "
                        r"to the user\"" % re.escape(user), since=mark)
    # :addresses counts as the user's
    msg3, mid3 = message(sender, "Alias <ALIAS@example.test>", "Via alias")
    send(srv, sender, [user], msg3)
    assert queued(srv, mid) == [] and queued(srv, mid2) == []
    assert len(queued(srv, mid3)) == 1
    assert len(inbox(srv, user)) == 3


def user_with_alias(srv, user, alias, script):
    srv.cli_ok("alias", "add", alias, user)
    srv.cli_ok("sieve", "put", "--activate", user, "main", "-", input=script.encode())
    return user


def test_vacation_subject_from_handle(srv):
    script = ('require "vacation";\r\n'
              'if header :contains "subject" "urgent" {\r\n'
              '  vacation :subject "Away (urgent)" :from "Boss <boss@example.test>"'
              ' :handle "u" "Call me.";\r\n'
              '} else { vacation :handle "u" "Later."; }\r\n')
    user = new_user(srv)
    # :from must be one of the user's addresses: here an alias of theirs
    boss = "boss%s@example.test" % uuid.uuid4().hex[:8]
    user = user_with_alias(srv, user, boss, script.replace("boss@example.test", boss))
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(sender, user, "urgent: help")
    send(srv, sender, [user], msg)
    (row, data), = queued(srv, mid)
    d = dict(reply_fields(data)[0])
    assert d[b"Subject"] == b"Away (urgent)"
    assert d[b"From"] == b"Boss <%s>" % boss.encode()
    # the other branch has the same :handle: no second reply
    msg2, mid2 = message(sender, user, "normal")
    send(srv, sender, [user], msg2)
    assert queued(srv, mid2) == []


def test_redirect_local_and_remote(srv):
    target = new_user(srv)
    user = new_user(srv, 'redirect "%s";\r\nredirect "%s";\r\n' % (target, REMOTE))
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(sender, user, "Forward me")
    send(srv, sender, [user], msg)
    # no implicit keep without :copy
    assert inbox(srv, user) == []
    got = inbox(srv, target)
    assert len(got) == 1 and got[0].endswith(msg)
    # locally the envelope sender is kept; the trace of our first receipt too
    assert got[0].startswith(b"Return-Path: <%s>\r\nReceived: " % sender.encode())
    # to another server it is rewritten with SRS into the user's domain
    (row, data), = queued(srv, mid)
    local = sender.split("@")[0]
    assert re.match(r"SRS0=[0-9A-Za-z+/]{4}=[0-9A-Za-z]{2}=remote\.example=%s@example\.test$"
                    % local, row["SENDER"]), row
    assert row["RCPT"] == REMOTE
    assert srv.wait_log(r"action=srs from=<%s> rewritten=<%s>"
                        % (re.escape(sender), re.escape(row["SENDER"])))
    assert data.endswith(msg) and b"Return-Path" not in data
    # signed for other servers (the domain's keys of `tern init`), then the trace
    fields, _ = split(data)
    names = [f[0] for f in fields]
    assert names[:3] == [b"DKIM-Signature", b"DKIM-Signature", b"Received"], names
    assert b" d=example.test;" in fields[0][1]


def test_redirect_copy_keeps(srv):
    target = new_user(srv)
    user = new_user(srv, 'require "copy";\r\nredirect :copy "%s";\r\nredirect :copy "%s";\r\n'
                    % (target, REMOTE))
    sender = new_user(srv)  # one of ours: not rewritten
    msg, mid = message(sender, user, "Copy me")
    send(srv, sender, [user], msg)
    assert len(inbox(srv, user)) == 1 and len(inbox(srv, target)) == 1
    (row, data), = queued(srv, mid)
    assert row["SENDER"] == sender


def test_redirect_limit_over_scripts(make_server):
    """Four redirects per message and recipient, whatever the scripts: the
    global after-script's fifth is not done, and the message is kept.  An
    address redirected to already (any case) is not sent twice."""
    d = tempfile.mkdtemp(prefix="tern-sieve-")  # the workers' user reads it
    os.chmod(d, 0o755)
    after = os.path.join(d, "after.sieve")
    with open(after, "w") as f:
        f.write('redirect "T0@Remote.Example";\r\nredirect "t3@remote.example";\r\n'
                'redirect "t4@remote.example";\r\n')
    os.chmod(after, 0o644)
    s = make_server(conf=dict(CONF, **{"sieve.after": after}))
    user = new_user(s, "".join('redirect "t%d@remote.example";\r\n' % i for i in range(3)))
    msg, mid = message("a@remote.example", user, "Many")
    send(s, "a@remote.example", [user], msg)
    rows = [r for r, _ in queued(s, mid)]
    assert sorted(r["RCPT"] for r in rows) == ["t%d@remote.example" % i for i in range(4)]
    assert s.wait_log(r"action=redirect rcpt=<t4@remote\.example> error=\"more than 4 "
                      r"redirects\" result=keep")
    assert len(inbox(s, user)) == 1
    shutil.rmtree(d, ignore_errors=True)


def test_redirect_loop_kept(srv):
    target = new_user(srv)
    user = new_user(srv, 'redirect "%s";\r\n' % target)
    hops = "".join("Received: from h%d.example by h%d.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                   % (i, i + 1) for i in range(50))
    msg, mid = message("a@remote.example", user, "Looping", hops)
    send(srv, "a@remote.example", [user], msg)
    assert inbox(srv, target) == []
    assert len(inbox(srv, user)) == 1
    assert srv.wait_log(r"to=<%s> action=redirect rcpt=<%s> error=\"loop: too many Received "
                        r"fields\" result=keep" % (re.escape(user), re.escape(target)))


@pytest.mark.parametrize("target,why", [("nobody-here@example.test", "no such local address"),
                                        ("a..b@remote.example", "not a valid address")])
def test_redirect_not_possible_kept(srv, target, why):
    user = new_user(srv, 'redirect "%s";\r\n' % target)
    msg, mid = message("a@remote.example", user, "Nobody")
    send(srv, "a@remote.example", [user], msg)
    assert len(inbox(srv, user)) == 1
    assert queued(srv, mid) == []
    assert srv.wait_log(r"to=<%s> action=redirect rcpt=<%s> error=\"%s\" result=keep"
                        % (re.escape(user), re.escape(target), why))


def test_vacation_seconds_period_ends(make_server):
    """vacation-seconds (RFC 6131) with sieve.vacation_min_period lowered:
    no second reply within the period, a reply again after it."""
    s = make_server(conf=dict(CONF, **{"sieve.vacation_min_period": "1s"}))
    user = new_user(s, 'require "vacation-seconds";\r\nvacation :seconds 3 "Away.";\r\n')
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    msg, mid = message(sender, user, "one")
    send(s, sender, [user], msg)
    assert len(queued(s, mid)) == 1
    msg2, mid2 = message(sender, user, "two")
    send(s, sender, [user], msg2)
    if time.monotonic() - t0 < 2.5:  # else too slow a machine to tell
        assert queued(s, mid2) == []
    time.sleep(max(0, 3.5 - (time.monotonic() - t0)))
    msg3, mid3 = message(sender, user, "three")
    send(s, sender, [user], msg3)
    assert len(queued(s, mid3)) == 1


def test_vacation_from_not_the_users_ignored(srv):
    # RFC 5230 4.3: a :from the server refuses is ignored, not an error:
    # the reply is from the recipient address
    user = new_user(srv, 'require "vacation";\r\n'
                         'vacation :from "CEO <ceo@elsewhere.example>" "Away.";\r\n')
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    since = srv.log_mark()
    msg, mid = message(sender, user, "hello")
    send(srv, sender, [user], msg)
    (row, data), = queued(srv, mid)
    assert dict(reply_fields(data)[0])[b"From"] == user.encode()
    srv.wait_log(r'action=vacation from="CEO <ceo@elsewhere.example>" note="not the user',
                 since=since)


def test_vacation_from_subaddress_kept(srv):
    # a +detail of the user's own address reaches the account: kept
    user = new_user(srv)
    local = user.split("@")[0]
    away = "%s+away@example.test" % local
    srv.cli_ok("sieve", "put", "--activate", user, "main", "-",
               input=('require "vacation";\r\nvacation :from "%s" "Away.";\r\n' % away).encode())
    sender = "s%s@remote.example" % uuid.uuid4().hex[:8]
    msg, mid = message(sender, user, "hello")
    send(srv, sender, [user], msg)
    (row, data), = queued(srv, mid)
    assert dict(reply_fields(data)[0])[b"From"] == away.encode()
