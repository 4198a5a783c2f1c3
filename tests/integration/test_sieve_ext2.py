"""Sieve extensions at delivery, through SMTP (smtplib) and IMAP
(imaplib), with the exact stored bytes checked: duplicate (RFC 7352)."""

import uuid

import pytest

from test_sieve_delivery import SENDER, mailbox, message, new_user, send, stored

CONF = {"allow_plaintext_loopback": "yes"}

DUP = ('require ["duplicate", "fileinto", "mailbox"];\r\n'
       'if duplicate { fileinto :create "Dups"; }\r\n')


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def with_id(rcpt, subject, msgid):
    return ("From: Sender <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n"
            "\r\nHello %s.\r\n" % (SENDER, rcpt, subject, msgid, subject)).encode()


def test_duplicate_message_id(srv):
    user = new_user(srv, DUP)
    mid = "<%s@client.example>" % uuid.uuid4().hex
    first, again, other = (with_id(user, "one", mid), with_id(user, "two", mid),
                           message(user, "three"))
    send(srv, [user], first)
    send(srv, [user], again)
    send(srv, [user], other)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 2 and stored(inbox[0][1], first) and stored(inbox[1][1], other)
    dups = mailbox(srv, user, "Dups")
    assert len(dups) == 1 and stored(dups[0][1], again)
    # the tracking list is per account: another user gets it as new
    user2 = new_user(srv, DUP)
    for_2 = with_id(user2, "one", mid)
    send(srv, [user2], for_2)
    inbox2 = mailbox(srv, user2, "INBOX")
    assert len(inbox2) == 1 and stored(inbox2[0][1], for_2)


def test_duplicate_handle_uniqueid_and_discard(srv):
    # the ID from a variable; handles independent; a duplicate discarded
    user = new_user(srv, 'require ["duplicate", "fileinto", "mailbox", "variables"];\r\n'
                         'if header :matches "subject" "ticket *:*" { set "t" "${1}"; }\r\n'
                         'if duplicate :handle "tickets" :uniqueid "${t}" {\r\n'
                         '  fileinto :create "Followups";\r\n'
                         '} elsif duplicate :handle "other" :uniqueid "${t}" {\r\n'
                         '  discard;\r\n'
                         '}\r\n')
    a1, a2, b1 = (message(user, s) for s in ("ticket 17: new", "ticket 17: more",
                                             "ticket 18: new"))
    for m in (a1, a2, b1):
        send(srv, [user], m)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 2 and stored(inbox[0][1], a1) and stored(inbox[1][1], b1)
    follow = mailbox(srv, user, "Followups")
    assert len(follow) == 1 and stored(follow[0][1], a2)


def test_duplicate_not_recorded_after_runtime_error(srv):
    # RFC 7352 3: the ID goes into the list only when the script succeeds
    # and the message is delivered; a run that fails takes the implicit keep
    user = new_user(srv, 'require ["duplicate", "fileinto"];\r\n'
                         'if not duplicate { fileinto ""; }\r\n')
    mid = "<%s@client.example>" % uuid.uuid4().hex
    m1, m2, m3 = (with_id(user, s, mid) for s in ("one", "two", "three"))
    since = srv.log_mark()
    send(srv, [user], m1)
    srv.wait_log(r"action=run error=\"fileinto an empty mailbox name\"", since=since)
    srv.cli_ok("sieve", "put", "--activate", user, "main", "-", input=DUP.encode())
    send(srv, [user], m2)
    send(srv, [user], m3)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 2 and stored(inbox[0][1], m1) and stored(inbox[1][1], m2)
    dups = mailbox(srv, user, "Dups")
    assert len(dups) == 1 and stored(dups[0][1], m3)


def test_duplicate_without_message_id(srv):
    # no Message-ID: no unique ID, never a duplicate
    user = new_user(srv, DUP)
    m = ("From: <%s>\r\nTo: %s\r\nSubject: x\r\n\r\nbody\r\n" % (SENDER, user)).encode()
    send(srv, [user], m)
    send(srv, [user], m)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 2 and all(stored(c, m) for _, c in inbox)
