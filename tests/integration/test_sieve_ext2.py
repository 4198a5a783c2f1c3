"""Sieve extensions at delivery, through SMTP (smtplib) and IMAP
(imaplib), with the exact stored bytes checked: duplicate (RFC 7352),
editheader (RFC 5293), include (RFC 6609, scripts uploaded over
ManageSieve and a global script folder)."""

import os
import shutil
import tempfile
import uuid

import pytest

from conftest import HOST, HOSTNAME
from test_managesieve import MS, caps, port_of, putscript
from test_sieve_delivery import SENDER, mailbox, message, new_user, send, stored

CONF = {"allow_plaintext_loopback": "yes"}
JUNK = ('require ["fileinto", "mailbox"];\r\n'
        'if header :contains "subject" "offer" { fileinto :create "Junk"; stop; }\r\n')


DUP = ('require ["duplicate", "fileinto", "mailbox"];\r\n'
       'if duplicate { fileinto :create "Dups"; }\r\n')


@pytest.fixture(scope="module")
def srv(module_server):
    # the folder of global scripts (sieve.global_dir), readable by workers
    d = tempfile.mkdtemp(prefix="tern-sieve-global-")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "junk.sieve"), "w") as f:
        f.write(JUNK)
    os.chmod(os.path.join(d, "junk.sieve"), 0o644)
    yield module_server(conf=dict(CONF, **{"sieve.global_dir": d}))
    shutil.rmtree(d, ignore_errors=True)


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


# ------------------------------------------------------------- editheader

def trace_split(copy):
    """(trace lines, the rest): our Return-Path and Received lines first."""
    lines = copy.split(b"\r\n")
    i = 0
    while lines[i].startswith(b"Return-Path:") or lines[i].startswith(b"Received:") or \
            (i > 0 and lines[i][:1] in (b" ", b"\t") and lines[i - 1] != b""):
        i += 1
    return b"\r\n".join(lines[:i]) + b"\r\n", b"\r\n".join(lines[i:])


def test_editheader_per_recipient_copy_exact(srv):
    # one message for two users: the editing script changes only its own
    # copy; the other's is the message file as received
    edit = new_user(srv, 'require ["editheader", "fileinto", "mailbox"];\r\n'
                         'addheader "X-Tag" "tagged";\r\n'
                         'addheader :last "X-Last" "at the end";\r\n'
                         'deleteheader :index 1 "X-Drop";\r\n'
                         'deleteheader "Received";\r\n'
                         'if header :is "X-Tag" "tagged" { fileinto :create "Tagged"; }\r\n')
    plain = new_user(srv)
    msg = ("From: Sender <%s>\r\nTo: %s, %s\r\nX-Drop: first\r\nSubject: edit me\r\n"
           "X-Drop: second\r\nMessage-ID: <%s@client.example>\r\n\r\nBody line.\r\n"
           % (SENDER, edit, plain, uuid.uuid4().hex)).encode()
    send(srv, [edit, plain], msg)
    orig = mailbox(srv, plain, "INBOX")
    assert len(orig) == 1 and stored(orig[0][1], msg)
    tagged = mailbox(srv, edit, "Tagged")
    assert len(tagged) == 1 and mailbox(srv, edit, "INBOX") == []
    trace, rest = trace_split(orig[0][1])
    assert rest == msg
    # Received is protected (RFC 5293 6): still there
    assert b"\r\nReceived: " in b"\r\n" + trace
    if trace.startswith(b"Return-Path:"):
        rp, _, received = trace.partition(b"\r\n")
        want_trace = rp + b"\r\nX-Tag: tagged\r\n" + received
    else:
        want_trace = b"X-Tag: tagged\r\n" + trace
    head, body = msg.split(b"\r\n\r\n", 1)
    want = want_trace + head.replace(b"X-Drop: first\r\n", b"") + \
        b"\r\nX-Last: at the end\r\n\r\n" + body
    assert tagged[0][1] == want


def test_editheader_encoded_value_and_redirect(srv):
    target = new_user(srv)
    user = new_user(srv, 'require ["editheader", "variables", "copy"];\r\n'
                         'if header :matches "subject" "*" { set "s" "${1}"; }\r\n'
                         'deleteheader "subject";\r\n'
                         'addheader :last "Subject" "[gr\u00fc\u00df] ${s}";\r\n'
                         'addheader :last "X-Fwd" "yes";\r\n'
                         'redirect :copy "%s";\r\n' % target)
    m = message(user, "hello")
    send(srv, [user], m)
    head, body = m.split(b"\r\n\r\n", 1)
    edited = head.replace(b"Subject: hello\r\n", b"") + \
        b"\r\nSubject: =?UTF-8?B?W2dyw7zDn10gaGVsbG8=?=\r\nX-Fwd: yes\r\n\r\n" + body
    mine = mailbox(srv, user, "INBOX")
    assert len(mine) == 1 and trace_split(mine[0][1])[1] == edited
    # the redirected copy has the edited header too (RFC 5293 7), with
    # the trace of its own delivery before it
    theirs = mailbox(srv, target, "INBOX")
    assert len(theirs) == 1 and trace_split(theirs[0][1])[1] == edited


def test_editheader_runtime_error_keeps_original(srv):
    user = new_user(srv, 'require ["editheader", "fileinto"];\r\n'
                         'addheader "X-Tag" "x";\r\n'
                         'fileinto "";\r\n')
    m = message(user, "err")
    send(srv, [user], m)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and trace_split(inbox[0][1])[1] == m


# ---------------------------------------------------------------- include

MAIN = ('require ["include", "variables", "fileinto", "mailbox"];\r\n'
        'global "box";\r\n'
        'include :global "junk";\r\n'
        'set "box" "Lists";\r\n'
        'include :optional "not-uploaded";\r\n'
        'include "lists";\r\n')
LISTS = ('require ["include", "variables", "fileinto", "mailbox"];\r\n'
         'global "box";\r\n'
         'if not header :contains "subject" "list" { return; }\r\n'
         'fileinto :create "${box}";\r\n')


def test_include_over_managesieve_and_delivery(srv):
    user = new_user(srv)
    with MS(port_of(srv)) as c:
        assert "include" in caps(c.caps)["SIEVE"].split()
        c.login(user)
        # a missing include is no upload error (RFC 6609): it is found
        # when the script runs
        assert putscript(c, "main", MAIN) == ([], 'OK "Script stored"')
        assert c.cmd('SETACTIVE "main"') == ([], 'OK "Script activated"')
        spam, lst, plain = (message(user, s) for s in ("an offer", "list news", "hello"))
        send(srv, [user], plain)
        # not uploaded yet: a runtime error, the implicit keep
        since = srv.log_mark()
        send(srv, [user], lst)
        srv.wait_log(r'error="include: no personal script \\"lists\\""', since=since)
        assert putscript(c, "lists", LISTS) == ([], 'OK "Script stored"')
        # an include with an error in its name is refused at upload
        lines, final = putscript(c, "bad", 'require "include"; include "a/b";')
        assert final.startswith('NO "1:20: error: include: ') and "not a script name" in final
    send(srv, [user], lst)
    send(srv, [user], spam)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 2 and stored(inbox[0][1], plain) and stored(inbox[1][1], lst)
    lists = mailbox(srv, user, "Lists")
    assert len(lists) == 1 and stored(lists[0][1], lst)
    junk = mailbox(srv, user, "Junk")
    assert len(junk) == 1 and stored(junk[0][1], spam)


def test_include_loop_is_kept(srv):
    user = new_user(srv, 'require "include";\r\ninclude "main";\r\n')
    m = message(user, "loop")
    since = srv.log_mark()
    send(srv, [user], m)
    srv.wait_log(r'error="include: personal script \\"main\\" includes itself"', since=since)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], m)


# ------------------------------------------------------------ environment

def test_environment_items(srv):
    # RFC 5183 at delivery: our host name, the client's address (smtplib
    # connects from loopback), Sieve at final delivery during the SMTP
    # transaction; an item we do not know is false
    user = new_user(srv, 'require ["environment", "fileinto", "mailbox", "variables"];\r\n'
                         'set "f" "";\r\n'
                         'if environment :is "host" "%s" { set "f" "${f}host,"; }\r\n'
                         'if environment :is "domain" "example.test" { set "f" "${f}domain,"; }\r\n'
                         'if environment :is "remote-ip" "%s" { set "f" "${f}ip,"; }\r\n'
                         'if environment :is "location" "MDA" { set "f" "${f}mda,"; }\r\n'
                         'if environment :is "phase" "during" { set "f" "${f}during,"; }\r\n'
                         'if environment :is "name" "Tern" { set "f" "${f}tern,"; }\r\n'
                         'if environment :matches "version" "*.*" { set "f" "${f}version,"; }\r\n'
                         'if environment :contains "x-unknown" "" { set "f" "${f}unknown,"; }\r\n'
                         'fileinto :create "${f}";\r\n' % (HOSTNAME, HOST))
    m = message(user, "env")
    send(srv, [user], m)
    box = mailbox(srv, user, "host,domain,ip,mda,during,tern,version,")
    assert len(box) == 1 and stored(box[0][1], m)
