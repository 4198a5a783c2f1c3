"""Quotas through the real protocols: IMAP QUOTA (RFC 9208) with imaplib
and raw commands, OVERQUOTA on APPEND/COPY (RFC 9208 4.3.1), SMTP 452
4.2.2 / 552 5.2.2 at RCPT with smtplib, POP3 DELE, and `tern user quota`.
docs/imap.md "QUOTA", docs/smtp.md "Quotas" and docs/admin.md "Quotas" are
the contract.
"""

import imaplib
import os
import poplib
import re
import smtplib
import sqlite3

import pytest

from conftest import HOST, PASSWORD, timeout
from test_imap import MODULE_CONF, append, client, new_user

SENDER = "sender@client.example"


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def message(n, subject="q"):
    """A message of exactly n bytes (CRLF lines)."""
    head = "From: <%s>\r\nSubject: %s\r\n\r\n" % (SENDER, subject)
    body = "x" * (n - len(head) - 2) + "\r\n"
    msg = (head + body).encode()
    assert len(msg) == n
    return msg


def set_quota(srv, user, *args):
    """`tern user quota USER ARGS...`: its output as text."""
    return srv.cli_ok("user", "quota", user, *args).stdout.decode()


def getquota(c):
    lines, done = c.cmd('GETQUOTA ""')
    assert done == b"OK Getquota completed", (lines, done)
    assert len(lines) == 1, lines
    return lines[0]


def append_no(c, mbox, msg):
    tag = c.tag()
    c.send(("%s APPEND %s {%d+}\r\n" % (tag, mbox, len(msg))).encode() + msg + b"\r\n")
    return c.until(tag)


def smtp_rcpt(srv, user, size=None):
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.ehlo("client.example")
        code, _ = s.mail(SENDER, ["SIZE=%d" % size] if size is not None else [])
        assert code == 250
        return s.rcpt(user)


def smtp_send(srv, user, msg):
    """MAIL without SIZE= (smtplib's sendmail would declare it)."""
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.ehlo("client.example")
        assert s.mail(SENDER)[0] == 250
        code, text = s.rcpt(user)
        if code != 250:
            return code, text
        return s.data(msg)


# ------------------------------------------------------------------ IMAP

def test_capability_lists_quota_not_quotaset(srv):
    user = new_user(srv)
    m = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        m.login(user, PASSWORD)
        typ, data = m.capability()
        caps = data[0].decode().split()
        i = caps.index("QUOTA")  # not by position: later extensions come after
        assert caps[i:i + 4] == ["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "COMPRESS=DEFLATE"]
        assert "QUOTASET" not in caps
    finally:
        m.logout()


def test_unlimited_account_has_an_empty_list(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        assert c.cmd("GETQUOTAROOT INBOX") == (
            [b'* QUOTAROOT "INBOX" ""', b'* QUOTA "" ()'], b"OK Getquotaroot completed")
        assert getquota(c) == b'* QUOTA "" ()'


def test_getquotaroot_and_getquota_exact(srv):
    user = new_user(srv)
    set_quota(srv, user, "10K", "--messages", "5")
    with client(srv, user) as c:
        append(c, "INBOX", message(1500))
        append(c, "Sent", message(1100))
        # 2600 bytes: 3 units of 1024 octets (rounded up), 2 messages
        assert getquota(c) == b'* QUOTA "" (STORAGE 3 10 MESSAGE 2 5)'
        assert c.cmd("GETQUOTAROOT Sent") == (
            [b'* QUOTAROOT "Sent" ""', b'* QUOTA "" (STORAGE 3 10 MESSAGE 2 5)'],
            b"OK Getquotaroot completed")
        # the mailbox need not exist (RFC 9208 4.1.2)
        lines, done = c.cmd("GETQUOTAROOT Nope/Later")
        assert lines[0] == b'* QUOTAROOT "Nope/Later" ""' and done.startswith(b"OK")
        assert c.cmd('GETQUOTA "#user/other"') == ([], b"NO [NONEXISTENT] No such quota root")
        assert c.cmd('SETQUOTA "" (STORAGE 100)') == (
            [], b"NO [NOPERM] Quota limits are set by the administrator")
        assert c.cmd("SETQUOTA")[1].startswith(b"BAD ")
        assert c.cmd("GETQUOTA")[1].startswith(b"BAD ")
    # imaplib's view of the same answers
    m = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        m.login(user, PASSWORD)
        assert m.getquotaroot("INBOX") == (
            "OK", [[b'"INBOX" ""'], [b'"" (STORAGE 3 10 MESSAGE 2 5)']])
        assert m.getquota('""') == ("OK", [b'"" (STORAGE 3 10 MESSAGE 2 5)'])
    finally:
        m.logout()


def test_only_storage_limit_lists_only_storage(srv):
    user = new_user(srv)
    set_quota(srv, user, "1M")
    with client(srv, user) as c:
        append(c, "INBOX", message(100))
        assert getquota(c) == b'* QUOTA "" (STORAGE 1 1024)'


def test_append_over_quota(srv):
    user = new_user(srv)
    set_quota(srv, user, "2K")
    with client(srv, user) as c:
        append(c, "INBOX", message(1500))
        lines, done = append_no(c, "INBOX", message(600))
        assert (lines, done) == ([], b"NO [OVERQUOTA] Quota exceeded, nothing was stored")
        # MULTIAPPEND is all or nothing: the first would fit alone
        tag = c.tag()
        a, b = message(300), message(400)
        c.send(("%s APPEND INBOX {%d+}\r\n" % (tag, len(a))).encode() + a
               + (" {%d+}\r\n" % len(b)).encode() + b + b"\r\n")
        assert c.until(tag) == ([], b"NO [OVERQUOTA] Quota exceeded, nothing was stored")
        assert c.ok("STATUS INBOX (MESSAGES SIZE)") == [b'* STATUS "INBOX" (MESSAGES 1 SIZE 1500)']
        # exactly up to the limit is fine
        append(c, "INBOX", message(2048 - 1500))
        assert getquota(c) == b'* QUOTA "" (STORAGE 2 2)'


def test_message_limit(srv):
    user = new_user(srv)
    set_quota(srv, user, "none", "--messages", "2")
    with client(srv, user) as c:
        append(c, "INBOX", message(200))
        append(c, "INBOX", message(200))
        assert append_no(c, "Drafts", message(200)) == (
            [], b"NO [OVERQUOTA] Quota exceeded, nothing was stored")
        assert getquota(c) == b'* QUOTA "" (MESSAGE 2 2)'


def test_copy_over_quota_move_still_works(srv):
    user = new_user(srv)
    set_quota(srv, user, "3K")
    with client(srv, user) as c:
        append(c, "INBOX", message(1000))
        append(c, "INBOX", message(1000))
        c.ok("SELECT INBOX")
        assert c.cmd("COPY 1:2 Archive") == (
            [], b"NO [OVERQUOTA] Quota exceeded, nothing was copied")
        assert c.ok("STATUS Archive (MESSAGES)") == [b'* STATUS "Archive" (MESSAGES 0)']
        lines, done = c.cmd("COPY 1 Archive")
        assert done.startswith(b"OK [COPYUID "), (lines, done)
        # full now (3000 of 3072 bytes): a MOVE adds nothing, so it works
        lines, done = c.cmd("MOVE 2 Archive")
        assert done == b"OK Move completed", (lines, done)
        assert getquota(c) == b'* QUOTA "" (STORAGE 3 3)'
        assert c.cmd("COPY 1 Trash") == ([], b"NO [OVERQUOTA] Quota exceeded, nothing was copied")


def test_status_deleted_storage(srv):
    user = new_user(srv)
    with client(srv, user) as c:
        for n in (300, 500, 700):
            append(c, "INBOX", message(n))
        c.ok("SELECT INBOX")
        c.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
        assert c.ok("STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)") == [
            b'* STATUS "INBOX" (MESSAGES 3 DELETED 2 DELETED-STORAGE 1000)']
        lines = c.ok('LIST "" INBOX RETURN (STATUS (DELETED-STORAGE))')
        assert lines[-1] == b'* STATUS "INBOX" (DELETED-STORAGE 1000)', lines


def test_expunge_frees_usage(srv):
    user = new_user(srv)
    set_quota(srv, user, "4K", "--messages", "10")
    with client(srv, user) as c:
        append(c, "INBOX", message(2000))
        append(c, "INBOX", message(1000))
        c.ok("SELECT INBOX")
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
        assert getquota(c) == b'* QUOTA "" (STORAGE 1 4 MESSAGE 1 10)'
        c.ok("CREATE Box")
        append(c, "Box", message(1500))
        assert getquota(c) == b'* QUOTA "" (STORAGE 3 4 MESSAGE 2 10)'
        c.ok("UNSELECT")
        c.ok("DELETE Box")
        assert getquota(c) == b'* QUOTA "" (STORAGE 1 4 MESSAGE 1 10)'


# ------------------------------------------------------------------ SMTP

def test_smtp_full_account_gets_452_at_rcpt(srv):
    user = new_user(srv)
    set_quota(srv, user, "2K")
    with client(srv, user) as c:
        append(c, "INBOX", message(2048))  # exactly full
    assert smtp_rcpt(srv, user) == (452, ("4.2.2 <%s>: Mailbox full, try again later"
                                          % user).encode())
    mark = srv.log_mark()
    assert smtp_send(srv, user, message(300))[0] == 452
    srv.wait_log(r"action=rcpt_quota rcpt=%s size=0 result=full" % re.escape(user), since=mark)
    # room again after an EXPUNGE: accepted and stored
    with client(srv, user) as c:
        c.ok("SELECT INBOX")
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
    assert smtp_send(srv, user, message(300, "back"))[0] == 250
    with client(srv, user) as c:
        assert c.ok("STATUS INBOX (MESSAGES)") == [b'* STATUS "INBOX" (MESSAGES 1)']


def test_smtp_size_hint(srv):
    user = new_user(srv)
    set_quota(srv, user, "4K")
    with client(srv, user) as c:
        append(c, "INBOX", message(3000))
    # fits
    assert smtp_rcpt(srv, user, size=1000)[0] == 250
    # would go over: try later
    assert smtp_rcpt(srv, user, size=1200) == (
        452, ("4.2.2 <%s>: Mailbox full, try again later" % user).encode())
    # larger than the limit itself: never
    assert smtp_rcpt(srv, user, size=5000) == (
        552, ("5.2.2 <%s>: Mailbox full: the message is larger than its quota" % user).encode())
    # other recipients of the transaction are not affected
    other = new_user(srv)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.ehlo("client.example")
        assert s.mail(SENDER, ["SIZE=1200"])[0] == 250
        assert s.rcpt(user)[0] == 452
        assert s.rcpt(other)[0] == 250
        assert s.data(message(1200))[0] == 250
    with client(srv, other) as c:
        assert c.ok("STATUS INBOX (MESSAGES SIZE)")[0].startswith(b'* STATUS "INBOX" (MESSAGES 1 ')
    with client(srv, user) as c:
        assert c.ok("STATUS INBOX (MESSAGES)") == [b'* STATUS "INBOX" (MESSAGES 1)']


def test_smtp_end_of_data_refuses_what_cannot_fit(srv):
    """Without SIZE=, RCPT can only see that the account is not full yet;
    at the end of DATA a message for full accounts only is refused whole,
    before anything is stored or acknowledged."""
    user = new_user(srv)
    set_quota(srv, user, "2K")
    with client(srv, user) as c:
        append(c, "INBOX", message(1500))
    mark = srv.log_mark()
    assert smtp_send(srv, user, message(1000)) == (
        452, b"4.2.2 Mailbox full, try again later")
    srv.wait_log(r"action=data_quota size=\d+ result=full", since=mark)
    # larger than the limit itself: never
    fresh = new_user(srv)
    set_quota(srv, fresh, "2K")
    assert smtp_send(srv, fresh, message(3000)) == (
        552, b"5.2.2 Mailbox full: the message is larger than its quota")
    for u, n in ((user, 1), (fresh, 0)):
        with client(srv, u) as c:
            assert c.ok("STATUS INBOX (MESSAGES)") == [b'* STATUS "INBOX" (MESSAGES %d)' % n]


def test_smtp_accepted_is_delivered_even_past_the_limit(srv):
    """A message that also goes to an account with room is delivered to
    every recipient: SMTP has no per-recipient answer after DATA, and a
    message acknowledged is never lost.  The store logs the overshoot."""
    user, other = new_user(srv), new_user(srv)
    set_quota(srv, user, "2K")
    mark = srv.log_mark()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        s.ehlo("client.example")
        assert s.mail(SENDER)[0] == 250
        assert s.rcpt(user)[0] == 250
        assert s.rcpt(other)[0] == 250
        assert s.data(message(3000, "big"))[0] == 250
    srv.wait_log(r"action=deliver account=\d+ result=over_quota", since=mark)
    with client(srv, user) as c:
        # the message, and the warning of quota.warning_percent (90)
        c.ok("SELECT INBOX")
        lines = c.ok("FETCH 1:* (RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        sizes = [int(re.search(rb"RFC822.SIZE (\d+)", ln).group(1)) for ln in lines]
        assert len(sizes) == 2 and sizes[0] > 3000, lines
        assert b"Subject: Your mailbox is almost full" in lines[1], lines
        kib = (sum(sizes) + 1023) // 1024
        assert getquota(c) == b'* QUOTA "" (STORAGE %d 2)' % kib
    with client(srv, other) as c:
        assert c.ok("STATUS INBOX (MESSAGES)") == [b'* STATUS "INBOX" (MESSAGES 1)']
    assert smtp_rcpt(srv, user)[0] == 452


# ------------------------------------------------------------------ POP3

def test_pop3_dele_quit_frees_usage(srv):
    user = new_user(srv)
    set_quota(srv, user, "8K")
    with client(srv, user) as c:
        append(c, "INBOX", message(1500))
        append(c, "INBOX", message(2500))
    p = poplib.POP3(HOST, srv.pop3_port, timeout=timeout(10))
    p.user(user)
    p.pass_(PASSWORD)
    p.dele(1)
    with client(srv, user) as c:  # not before QUIT
        assert getquota(c) == b'* QUOTA "" (STORAGE 4 8)'
    p.quit()
    with client(srv, user) as c:
        assert getquota(c) == b'* QUOTA "" (STORAGE 3 8)'


# ------------------------------------------------------------------- CLI

def test_cli_show_and_set(srv):
    user = new_user(srv)
    r = set_quota(srv, user)
    assert r == ("%s\nstorage: 0 bytes used, unlimited (the default)\n"
                        "messages: 0 used, unlimited (the default)\n" % user)
    with client(srv, user) as c:
        append(c, "INBOX", message(1000))
    r = set_quota(srv, user, "500M", "--messages", "1000")
    assert r == ("%s\nstorage: 1000 bytes used of 524288000 bytes (0%%)"
                        " (set for this user)\n"
                        "messages: 1 used of 1000 (0%%) (set for this user)\n" % user)
    r = set_quota(srv, user, "2G")
    assert "of 2147483648 bytes" in r and "messages: 1 used of 1000" in r
    r = set_quota(srv, user, "none", "--messages", "default")
    assert r == ("%s\nstorage: 1000 bytes used, unlimited (set for this user)\n"
                        "messages: 1 used, unlimited (the default)\n" % user)
    r = set_quota(srv, user, "default")
    assert "storage: 1000 bytes used, unlimited (the default)" in r


def test_cli_errors(srv):
    user = new_user(srv)
    r = srv.cli("user", "quota", user, "12Q")
    r.stderr = r.stderr.decode()
    assert r.returncode == 2
    assert ('tern: user quota: "12Q" is not a size (bytes, or with K, M or G), none or default'
            in r.stderr)
    r = srv.cli("user", "quota", user, "--messages", "-1")
    r.stderr = r.stderr.decode()
    assert r.returncode == 2 and "--messages" in r.stderr
    r = srv.cli("user", "quota", "nobody@example.test")
    r.stderr = r.stderr.decode()
    assert r.returncode == 1 and "no such user nobody@example.test" in r.stderr
    r = srv.cli("user", "quota")
    assert r.returncode == 2


def test_usage_counted_for_an_old_account_database(srv):
    """An account.db made before quotas (no quota_usage) is counted from
    its rows when it is next opened."""
    user = new_user(srv)
    with client(srv, user) as c:
        append(c, "INBOX", message(700))
        append(c, "Sent", message(900))
    dbs = [os.path.join(d, "account.db") for d, _, files in os.walk(srv.data)
           if "account.db" in files]
    for path in dbs:
        con = sqlite3.connect(path, timeout=10)
        n = con.execute("SELECT count(*) FROM messages").fetchone()[0]
        size = con.execute("SELECT coalesce(sum(size), 0) FROM messages").fetchone()[0]
        if (n, size) != (2, 1600):
            con.close()
            continue
        con.executescript("DROP TRIGGER quota_usage_add; DROP TRIGGER quota_usage_del;"
                          " DROP TABLE quota_usage;")
        con.close()
        break
    else:
        pytest.fail("account database not found")
    r = set_quota(srv, user)
    assert "storage: 1600 bytes used" in r and "messages: 2 used" in r


def test_default_from_config(make_server):
    s = make_server(conf=dict(MODULE_CONF, **{"quota.default_storage": "2K",
                                               "quota.default_messages": "50"}))
    user = new_user(s)
    r = set_quota(s, user)
    assert r == ("%s\nstorage: 0 bytes used of 2048 bytes (0%%) (the default)\n"
                        "messages: 0 used of 50 (0%%) (the default)\n" % user)
    with client(s, user) as c:
        assert getquota(c) == b'* QUOTA "" (STORAGE 0 2 MESSAGE 0 50)'
        append(c, "INBOX", message(2000))
        assert append_no(c, "INBOX", message(100))[1].startswith(b"NO [OVERQUOTA]")
    # an account's own limit wins over the default
    set_quota(s, user, "none")
    with client(s, user) as c:
        append(c, "INBOX", message(100))
        assert getquota(c) == b'* QUOTA "" (MESSAGE 2 50)'


def test_warning_at_the_configured_percentage(make_server):
    s = make_server(conf=dict(MODULE_CONF, **{"quota.warning_percent": "50"}))
    user = new_user(s)
    set_quota(s, user, "8K", "--messages", "100")
    mark = s.log_mark()
    assert smtp_send(s, user, message(2000, "one"))[0] == 250  # about 30%: no notice
    assert smtp_send(s, user, message(2000, "two"))[0] == 250  # over 50%: the notice
    s.wait_log(r"action=quota_warning account=\d+ address=%s" % re.escape(user), since=mark)
    assert smtp_send(s, user, message(500, "three"))[0] == 250  # still over: no second one
    with client(s, user) as c:
        c.ok("SELECT INBOX")
        subjects = [ln for ln in c.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")]
        assert [re.search(rb"Subject: ([^\r]*)", ln).group(1) for ln in subjects] == [
            b"one", b"two", b"Your mailbox is almost full", b"three"]
        text = c.ok("FETCH 3 (BODY.PEEK[])")[0]
        assert b"From: Mail System <MAILER-DAEMON@mx.example.test>" in text
        assert ("To: <%s>" % user).encode() in text and b"Auto-Submitted: auto-generated" in text
        assert re.search(rb"storage: [0-9.]+ KB of 8.0 KB \(\d+%; \d+ of 8192 bytes\)", text)
        assert b"messages: 2 of 100 (2%)" in text
        # below the mark again: the next crossing warns again
        c.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
    assert smtp_send(s, user, message(1000, "four"))[0] == 250
    assert smtp_send(s, user, message(3500, "five"))[0] == 250
    s.wait_log(r"action=quota_warning account=\d+ address=%s" % re.escape(user), since=mark,
               count=2)
    with client(s, user) as c:
        c.ok("SELECT INBOX")
        subjects = c.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert [re.search(rb"Subject: ([^\r]*)", ln).group(1) for ln in subjects] == [
            b"four", b"five", b"Your mailbox is almost full"]


def test_domain_limits(srv):
    """A domain's limits are those of its users without their own (each
    user keeps its own usage)."""
    domain = "quota%s.test" % new_user(srv).split("@")[0]
    srv.cli_ok("domain", "add", domain)
    a, b = "a@" + domain, "b@" + domain
    for u in (a, b):
        srv.cli_ok("user", "add", u, "--password", PASSWORD)
    r = srv.cli_ok("domain", "quota", domain, "3K", "--messages", "10").stdout.decode()
    assert r == ("%s\nstorage: 3072 bytes for each user without a limit of its own"
                 " (set for this domain)\nmessages: 10 for each user without a limit of its own"
                 " (set for this domain)\n" % domain)
    set_quota(srv, b, "none")
    assert set_quota(srv, a) == ("%s\nstorage: 0 bytes used of 3072 bytes (0%%) (the domain's"
                                 " default)\nmessages: 0 used of 10 (0%%) (the domain's default)\n"
                                 % a)
    with client(srv, a) as c:
        append(c, "INBOX", message(2500))
        assert getquota(c) == b'* QUOTA "" (STORAGE 3 3 MESSAGE 1 10)'
        assert append_no(c, "INBOX", message(600))[1].startswith(b"NO [OVERQUOTA]")
    with client(srv, b) as c:  # its own (none) wins for storage, the domain's for messages
        append(c, "INBOX", message(2500))
        append(c, "INBOX", message(2500))
        assert getquota(c) == b'* QUOTA "" (MESSAGE 2 10)'
    srv.cli_ok("domain", "quota", domain, "default", "--messages", "default")
    with client(srv, a) as c:
        assert getquota(c) == b'* QUOTA "" ()'
    r = srv.cli("domain", "quota", "nope.example")
    assert r.returncode == 1
    for u in (a, b):
        srv.cli_ok("user", "remove", u)
    srv.cli_ok("domain", "remove", domain)
