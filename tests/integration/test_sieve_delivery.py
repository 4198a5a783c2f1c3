"""Sieve at local delivery (docs/sieve.md "At delivery"): scripts stored
with `tern sieve put`, mail delivered over SMTP (smtplib), folders, flags
and exact stored bytes checked over IMAP (imaplib)."""

import imaplib
import os
import re
import smtplib
import tempfile
import uuid

import pytest

from conftest import HOST, PASSWORD, timeout

SENDER = "sender@client.example"
CONF = {"allow_plaintext_loopback": "yes"}


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def new_user(srv, script=None):
    user = "u%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    if script is not None:
        srv.cli_ok("sieve", "put", "--activate", user, "main", "-", input=script.encode())
    return user


def message(rcpt, subject):
    return ("From: Sender <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@client.example>\r\n"
            "\r\nHello %s.\r\n" % (SENDER, rcpt, subject, uuid.uuid4().hex, subject)).encode()


def send(srv, rcpts, msg):
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        refused = s.sendmail(SENDER, rcpts, msg)
    assert refused == {}


def mailbox(srv, user, name):
    """[(flags, bytes)] of every message in mailbox name, in UID order."""
    c = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        c.login(user, PASSWORD)
        typ, _ = c.select('"%s"' % name, readonly=True)
        assert typ == "OK", name
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        assert typ == "OK"
        out = []
        for item in data:
            if isinstance(item, tuple):
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode()
                # \Recent is the session's, not a stored flag: this
                # read-only session sees it on new mail (docs/imap.md)
                out.append((sorted(f for f in flags.split() if f != "\\Recent"), item[1]))
        return out
    finally:
        c.logout()


def mailboxes(srv, user):
    c = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        c.login(user, PASSWORD)
        typ, data = c.list()
        assert typ == "OK"
        return sorted(re.search(rb'"([^"]*)"$', l).group(1).decode() for l in data)
    finally:
        c.logout()


def stored(copy, msg):
    """The stored bytes are our trace lines, then exactly what was sent."""
    assert copy.endswith(msg), copy
    assert copy[:-len(msg)].startswith(b"Return-Path: <%s>\r\nReceived: " % SENDER.encode()) or \
        copy[:-len(msg)].startswith(b"Received: "), copy
    return True


def test_fileinto_with_flags_and_implicit_keep(srv):
    user = new_user(srv, 'require ["fileinto", "imap4flags"];\r\n'
                         'if header :contains "subject" "invoice" {\r\n'
                         '  fileinto :flags ["\\\\Seen", "$Invoice"] "Archive";\r\n'
                         '} elsif header :contains "subject" "flagme" {\r\n'
                         '  addflag "\\\\Flagged";\r\n'
                         '}\r\n')
    inv, plain, flag = (message(user, s) for s in ("Invoice 42", "hello", "flagme"))
    send(srv, [user], inv)
    send(srv, [user], plain)
    send(srv, [user], flag)
    archive = mailbox(srv, user, "Archive")
    assert [f for f, _ in archive] == [["$Invoice", "\\Seen"]]
    assert stored(archive[0][1], inv)
    inbox = mailbox(srv, user, "INBOX")
    assert [f for f, _ in inbox] == [[], ["\\Flagged"]]
    assert stored(inbox[0][1], plain) and stored(inbox[1][1], flag)


def test_fileinto_create_and_missing_mailbox(srv):
    user = new_user(srv, 'require ["fileinto", "mailbox"];\r\n'
                         'if header :is "subject" "list" { fileinto :create "Lists/tern"; }\r\n'
                         'if header :is "subject" "nowhere" { fileinto "NoSuch"; }\r\n')
    lst, nowhere = message(user, "list"), message(user, "nowhere")
    send(srv, [user], lst)
    send(srv, [user], nowhere)
    boxes = mailboxes(srv, user)
    assert "Lists" in boxes and "Lists/tern" in boxes and "NoSuch" not in boxes
    filed = mailbox(srv, user, "Lists/tern")
    assert len(filed) == 1 and stored(filed[0][1], lst)
    # fileinto a mailbox that does not exist (no :create): the INBOX.
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], nowhere)


def test_discard_and_other_recipient_unaffected(srv):
    user = new_user(srv, 'if header :contains "subject" "spam" { discard; }\r\n')
    other = new_user(srv)
    spam, ham = message(user, "spam offer"), message(user, "ham")
    send(srv, [user, other], spam)
    send(srv, [user], ham)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], ham)
    for box in ("Junk", "Trash", "Archive"):
        assert mailbox(srv, user, box) == []
    theirs = mailbox(srv, other, "INBOX")
    assert len(theirs) == 1 and stored(theirs[0][1], spam)


def test_runtime_error_keeps_in_inbox(srv):
    # Five redirects pass the limit of four per run: a runtime error, so
    # only the implicit keep remains (and nothing is redirected).
    user = new_user(srv, 'require "fileinto";\r\nfileinto "Junk";\r\n' +
                    "".join('redirect "x%d@elsewhere.example";\r\n' % i for i in range(5)))
    msg = message(user, "loop")
    send(srv, [user], msg)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], msg)
    assert mailbox(srv, user, "Junk") == []
    assert srv.wait_log(r"sieve id=\S+ to=<%s> script=\"\(user\)\" action=run error=" % re.escape(user),
                 seconds=10)


@pytest.mark.parametrize("cmd", ["reject", "ereject"])
def test_reject_refused_at_smtp_time(srv, cmd):
    """RFC 5429: the only recipient's script rejects: 550 with the reason
    (one line), nothing stored."""
    user = new_user(srv, 'require "%s";\r\n%s "Not here.\r\nGo away.";\r\n' % (cmd, cmd))
    msg = message(user, "rej")
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail(SENDER, [user], msg)
        assert e.value.smtp_code == 550
        assert e.value.smtp_error == b"5.7.1 Not here.  Go away."
        assert s.noop()[0] == 250  # the session goes on
    assert mailbox(srv, user, "INBOX") == []
    assert srv.wait_log(r"sieve id=\S+ action=reject reply=\"550 5\.7\.1 Not here\.  Go "
                        r"away\.\" result=refused")


def parts_of(raw):
    """The top header and the parts of a multipart message, split at its
    boundary (report parts as bytes, as stored)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    b = b"--" + re.search(rb'boundary="([^"]+)"', head).group(1)
    chunks = (b"\r\n" + body).split(b"\r\n" + b)
    assert chunks[-1].startswith(b"--"), chunks[-1]
    return head, [c[2:].partition(b"\r\n\r\n") for c in chunks[1:-1]]


@pytest.mark.parametrize("cmd", ["reject", "ereject"])
def test_reject_with_other_recipients_sends_a_notice(srv, cmd):
    """One of two recipients rejects: one SMTP reply cannot refuse the
    message for one of them only, so it is accepted, the rejecting
    recipient gets nothing and the sender a notice (RFC 5429 2.1.2: a
    DSN for ereject; 2.2.1: an MDN for reject), here delivered to the
    sender's own INBOX."""
    user = new_user(srv, 'require "%s";\r\n%s "Not from you, sorry.\r\n'
                         'Caf\u00e9 closed.";\r\n' % (cmd, cmd))
    other = new_user(srv)
    sender = new_user(srv)
    msg = message(user, "rej2-" + cmd)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as c:
        assert c.sendmail(sender, [user, other], msg) == {}
    assert mailbox(srv, user, "INBOX") == []
    assert len(mailbox(srv, other, "INBOX")) == 1
    kind = "dsn" if cmd == "ereject" else "mdn"
    assert srv.wait_log(r"sieve id=\S+ to=<%s> action=reject notice=%s rcpt=<%s> "
                        r"result=discarded" % (re.escape(user), kind, re.escape(sender)))
    got = mailbox(srv, sender, "INBOX")
    assert len(got) == 1
    raw = got[0][1]
    head, parts = parts_of(raw)
    assert b"\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n" in head
    assert b"\r\nTo: <%s>\r\n" % sender.encode() in head
    assert b"\r\nAuto-Submitted: auto-replied\r\n" in head
    orig_id = re.search(rb"Message-ID: (<[^>]+>)", msg).group(1)
    assert b"\r\nIn-Reply-To: " + orig_id + b"\r\n" in head
    report = b"delivery-status" if cmd == "ereject" else b"disposition-notification"
    assert b"Content-Type: multipart/report; report-type=" + report + b";" in head
    h1, _, text = parts[0]
    assert h1 == (b"Content-Type: text/plain; charset=utf-8\r\n"
                  b"Content-Transfer-Encoding: 8bit")
    assert text == (b"Your message to <%s> was refused by the recipient's mail filtering "
                    b"program.\r\nThe reason given was as follows:\r\n\r\n"
                    b"Not from you, sorry.\r\nCaf\xc3\xa9 closed.\r\n" % user.encode())
    h2, _, fields = parts[1]
    if cmd == "ereject":
        assert h2 == b"Content-Type: message/delivery-status"
        assert fields.startswith(b"Reporting-MTA: dns; mx.example.test\r\nArrival-Date: ")
        assert (b"\r\n\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\n"
                b"Status: 5.7.1\r\n" % user.encode()) in fields
    else:
        assert h2 == b"Content-Type: message/disposition-notification"
        assert fields == (b"Reporting-UA: mx.example.test; Tern\r\n"
                          b"Final-Recipient: rfc822; %s\r\nOriginal-Message-ID: %s\r\n"
                          b"Disposition: automatic-action/MDN-sent-automatically; deleted"
                          b"\r\n" % (user.encode(), orig_id))
    h3, _, headers = parts[2]
    assert h3 == b"Content-Type: text/rfc822-headers"
    assert headers.startswith(b"Received: from ") and \
        headers.endswith(b"\r\n" + msg.partition(b"\r\n\r\n")[0] + b"\r\n"), headers
    assert b"Hello rej2" not in raw


def test_reject_notice_not_to_the_null_sender_and_queued_for_remote(srv):
    """No notice to the null sender (RFC 5429 2.1.2): the rejecting
    recipient still gets nothing, logged; a remote sender's notice goes
    to the queue with the null sender."""
    user = new_user(srv, 'require "reject";\r\nreject "no";\r\n')
    other = new_user(srv)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as c:
        assert c.sendmail("<>", [user, other], message(user, "rej-null")) == {}
    assert srv.wait_log(r"sieve id=\S+ to=<%s> action=reject result=discarded notice=none "
                        r"why=\"the envelope sender is empty\"" % re.escape(user))
    assert mailbox(srv, user, "INBOX") == []
    send(srv, [user, other], message(user, "rej-remote"))
    assert srv.wait_log(r"sieve id=\S+ to=<%s> action=reject notice=mdn rcpt=<%s> "
                        r"result=discarded" % (re.escape(user), re.escape(SENDER)))
    # queued for the remote sender (who does not exist: it bounces, and
    # a bounce of a message from <> goes nowhere)
    assert srv.wait_log(r"queue id=\d+ rcpt=<%s> result=" % re.escape(SENDER),
                        seconds=timeout(10))
    assert mailbox(srv, user, "INBOX") == []


def test_inactive_script_does_nothing(srv):
    user = new_user(srv)
    srv.cli_ok("sieve", "put", user, "off", "-", input=b"discard;\r\n")
    msg = message(user, "kept")
    send(srv, [user], msg)
    assert len(mailbox(srv, user, "INBOX")) == 1


def test_global_scripts_before_user_after(make_server):
    d = world_dir()
    before = os.path.join(d, "before.sieve")
    after = os.path.join(d, "after.sieve")
    with open(before, "w") as f:
        f.write('require ["fileinto", "imap4flags"];\r\n'
                'if header :contains "subject" "junk" { fileinto "Junk"; stop; }\r\n'
                'addflag "$Before";\r\n')
    with open(after, "w") as f:
        f.write('require "fileinto";\r\nif header :contains "subject" "archive" '
                '{ fileinto "Archive"; }\r\n')
    srv = make_server(conf=dict(CONF, **{"sieve.before": before, "sieve.after": after}))
    user = new_user(srv, 'require ["fileinto", "imap4flags"];\r\n'
                         'if header :contains "subject" "junk" { fileinto "Trash"; }\r\n'
                         'addflag "$User";\r\n')
    junk, arch, plain = (message(user, s) for s in ("junk", "archive", "plain"))
    for m in (junk, arch, plain):
        send(srv, [user], m)
    # The before script's stop ends that script only; the user's script
    # still runs; every fileinto is done and cancels the one implicit keep.
    assert stored(mailbox(srv, user, "Junk")[0][1], junk)
    assert stored(mailbox(srv, user, "Trash")[0][1], junk)
    assert stored(mailbox(srv, user, "Archive")[0][1], arch)
    # Only the plain one is kept, with the flags of both scripts that ran
    # addflag (before, then user).
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], plain)
    assert inbox[0][0] == ["$Before", "$User"]
    # A user without a script gets the global ones only.
    plain = new_user(srv)
    m = message(plain, "junk")
    send(srv, [plain], m)
    assert stored(mailbox(srv, plain, "Junk")[0][1], m)
    assert mailbox(srv, plain, "INBOX") == []


def test_broken_global_script_is_skipped(make_server):
    d = world_dir()
    before = os.path.join(d, "before.sieve")
    with open(before, "w") as f:
        f.write("if {\r\n")
    srv = make_server(conf=dict(CONF, **{"sieve.before": before}))
    user = new_user(srv)
    msg = message(user, "x")
    send(srv, [user], msg)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], msg)
    assert srv.wait_log(r"script=\"%s\" action=compile error=\"1:" % re.escape(before), seconds=10)


def world_dir():
    """A folder the workers' user can read (pytest's tmp_path is 0700)."""
    d = tempfile.mkdtemp(prefix="tern-sieve-")
    os.chmod(d, 0o755)
    return d


def test_variables_file_by_subject_tag(srv):
    """variables (RFC 5229): a match variable names the folder, set
    :lower changes its case; mail without the tag stays in the INBOX."""
    user = new_user(srv, 'require ["fileinto", "mailbox", "variables", "imap4flags"];\r\n'
                         'if header :matches "Subject" "[*] *" {\r\n'
                         '  set :lower "list" "${1}";\r\n'
                         '  set "fl" "\\\\Flagged";\r\n'
                         '  fileinto :create :flags "${fl}" "Lists/${list}";\r\n'
                         '}\r\n')
    tagged, plain = message(user, "[Tern-Users] hello"), message(user, "no tag")
    send(srv, [user], tagged)
    send(srv, [user], plain)
    assert "Lists/tern-users" in mailboxes(srv, user)
    filed = mailbox(srv, user, "Lists/tern-users")
    assert len(filed) == 1 and stored(filed[0][1], tagged)
    assert filed[0][0] == ["\\Flagged"]
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], plain)


def test_relational_numeric_threshold(srv):
    """relational (RFC 5231) with i;ascii-numeric (RFC 4790): a score of
    12 is over 5 numerically (not as text), 3 is not; :count of the To
    addresses."""
    user = new_user(srv, 'require ["fileinto", "mailbox", "relational",'
                         ' "comparator-i;ascii-numeric"];\r\n'
                         'if header :value "ge" :comparator "i;ascii-numeric"'
                         ' "X-Score" "5" { fileinto :create "Junk"; stop; }\r\n'
                         'if address :count "ge" :comparator "i;ascii-numeric"'
                         ' "To" "2" { fileinto :create "Many"; }\r\n')

    def scored(score, to):
        return message(to, "score %s" % score).replace(
            b"\r\n\r\n", b"\r\nX-Score: %s\r\n\r\n" % score.encode(), 1)
    high, low = scored("12", user), scored("3", user)
    many = scored("3", "%s, other@example.test" % user)
    for m in (high, low, many):
        send(srv, [user], m)
    junk = mailbox(srv, user, "Junk")
    assert len(junk) == 1 and stored(junk[0][1], high)
    lots = mailbox(srv, user, "Many")
    assert len(lots) == 1 and stored(lots[0][1], many)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], low)


def test_body_decoded_text(srv):
    """body (RFC 5173): a word in a base64 text part files the message
    (decoded, not in the raw body); :raw sees the encoded form; a
    message without the word stays in the INBOX."""
    import base64
    user = new_user(srv, 'require ["fileinto", "mailbox", "body"];\r\n'
                         'if body :text :contains "quarterly report" {'
                         ' fileinto :create "Reports"; }\r\n'
                         'elsif body :raw :contains "cXVhcnRlcmx5" {'
                         ' fileinto :create "Raw"; }\r\n')

    def mime(text):
        enc = base64.b64encode(text.encode()).decode()
        return ("From: Sender <%s>\r\nTo: %s\r\nSubject: numbers\r\nMIME-Version: 1.0\r\n"
                "Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n--xx\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--xx--\r\n"
                % (SENDER, user, enc)).encode()
    report, other = mime("Here is the quarterly report."), mime("Nothing to see.")
    send(srv, [user], report)
    send(srv, [user], other)
    filed = mailbox(srv, user, "Reports")
    assert len(filed) == 1 and stored(filed[0][1], report)
    assert "Raw" not in mailboxes(srv, user)
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], other)


def test_date_and_index(srv):
    """date, index (RFC 5260): the first Received field (ours, added at
    delivery) carries today's date as currentdate sees it; :index 2 is
    the client's own Received field; the Date field read in its own zone."""
    user = new_user(srv, 'require ["fileinto", "mailbox", "date", "index", "variables",'
                         ' "imap4flags"];\r\n'
                         'if currentdate :zone "+0000" :matches "date" "*" { set "today" "${0}"; }\r\n'
                         'if date :index 1 :zone "+0000" "received" "date" "${today}" {'
                         ' addflag "today"; }\r\n'
                         'if date :originalzone "date" "hour" "23" { addflag "late"; }\r\n'
                         'if header :index 2 :contains "received" "relay.example" {'
                         ' fileinto :create "Relayed"; }\r\n')
    relayed = ("Received: from relay.example by client.example; Sun, 6 Dec 2026 08:00:00 +0000\r\n"
               "From: Sender <%s>\r\nTo: %s\r\nSubject: dated\r\n"
               "Date: Sun, 6 Dec 2026 23:30:00 -0800\r\n\r\nHi.\r\n" % (SENDER, user)).encode()
    direct = ("From: Sender <%s>\r\nTo: %s\r\nSubject: direct\r\n"
              "Date: Sun, 6 Dec 2026 22:30:00 +0000\r\n\r\nHi.\r\n" % (SENDER, user)).encode()
    send(srv, [user], relayed)
    send(srv, [user], direct)
    filed = mailbox(srv, user, "Relayed")
    assert len(filed) == 1 and stored(filed[0][1], relayed)
    assert filed[0][0] == ["late", "today"]
    inbox = mailbox(srv, user, "INBOX")
    assert len(inbox) == 1 and stored(inbox[0][1], direct)
    assert inbox[0][0] == ["today"]
