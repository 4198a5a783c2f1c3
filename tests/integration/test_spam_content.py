"""The content stage of port 25 (issue 16 items 3-6, docs/spam.md
"Content stage"): a per-user statistical classifier trained through IMAP
(MOVE/COPY into Junk, $Junk / $NotJunk) and `tern spam learn`, its score
in X-Spam-Score / X-Spam-Status, Junk filing, refusal at
spam.content_reject_score, and `tern spam explain`.

Clients connect from 127.0.0.2 (127.0.0.1 is in mailauth.trusted, whose
mail is not checked); mailauth.check is off, so no DNS is needed.
"""

import email.utils
import imaplib
import os
import re
import smtplib
import time

import pytest

from conftest import PASSWORD, timeout

SOURCE = "127.0.0.2"
USER = "alice@example.test"

SPAM_WORDS = ("viagra cialis pharmacy discount pills cheap offer winner "
              "lottery prize casino bitcoin investment guaranteed")
HAM_WORDS = ("meeting agenda project quarterly report review schedule "
             "budget minutes colleague deadline presentation")


def message(subject, words, extra="", headers=""):
    return ("From: sender@elsewhere.example\r\nTo: %s\r\nSubject: %s\r\n"
            "Message-ID: <%s@elsewhere.example>\r\nDate: %s\r\n"
            "%s\r\n%s %s\r\n" % (USER, subject, re.sub(r"\W", "", subject),
                                 email.utils.formatdate(usegmt=True), headers, words, extra))


def send(srv, data, rcpts=(USER,), source=SOURCE):
    with smtplib.SMTP(srv.host, srv.smtp_port, timeout=timeout(30),
                      source_address=(source, 0)) as c:
        c.ehlo("client.example")
        return c.sendmail("sender@elsewhere.example", list(rcpts), data)


def stored(srv, subject, mbox="INBOX", user=USER):
    return srv.fetch_one(user, subject, mbox)


def header(msg, name):
    """The raw (folded) value of the field name of a stored message."""
    head = msg.split(b"\r\n\r\n", 1)[0].decode()
    m = re.search(r"^%s:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)" % re.escape(name), head, re.M | re.I)
    return m.group(1) if m else None


@pytest.fixture
def server_config():
    return {"mailauth.check": "no", "spam.bayes_min_trained": "2",
            "allow_plaintext_loopback": "yes"}


def imap(srv, user=USER):
    m = imaplib.IMAP4(srv.host, srv.imap_port)
    m.login(user, PASSWORD)
    return m


def uids_of(m, subject):
    typ, data = m.uid("SEARCH", None, "SUBJECT", '"%s"' % subject)
    assert typ == "OK", data
    return data[0].decode().split()


def train(srv):
    """Three spam and three ham messages over SMTP; the spam moved into
    Junk with MOVE, the ham marked $NotJunk.  Returns the IMAP client
    (INBOX selected)."""
    for i in range(3):
        send(srv, message("Spam %d" % i, SPAM_WORDS, "extra%d" % i))
        send(srv, message("Ham %d" % i, HAM_WORDS, "other%d" % i))
    m = imap(srv)
    assert m.select("INBOX")[0] == "OK"
    spam = uids_of(m, "Spam")
    ham = uids_of(m, "Ham")
    assert len(spam) == 3 and len(ham) == 3
    mark = srv.log_mark()
    typ, data = m.uid("MOVE", ",".join(spam), "Junk")
    assert typ == "OK", data
    assert srv.wait_log(r"action=spam_train class=spam reason=into_junk messages=3 trained=3",
                        since=mark)
    typ, data = m.uid("STORE", ",".join(ham), "+FLAGS", "($NotJunk)")
    assert typ == "OK", data
    assert srv.wait_log(r"action=spam_train class=ham reason=keyword_notjunk messages=3 "
                        r"trained=3", since=mark)
    return m


def move_one(srv, m, src, subject, cmd, dest):
    """UID MOVE or COPY of the message subject from src to dest; the
    training log line it caused ("" if none: training is done before the
    reply)."""
    assert m.select(src)[0] == "OK"
    uid = uids_of(m, subject)
    assert len(uid) == 1
    mark = srv.log_mark()
    assert m.uid(cmd, uid[0], dest)[0] == "OK"
    lines = [l for l in srv.log()[mark:].splitlines() if "action=spam_train" in l]
    return lines[0] if lines else ""


def explain(srv, mbox, subject):
    rows = srv.find_messages(USER, subject, mbox)
    assert len(rows) == 1, rows
    return srv.cli_ok("spam", "explain", USER, mbox, rows[0]["UID"]).stdout.decode()


STATUS_RE = (r" (Yes|No), score=(-?\d+\.\d) junk_score=5 reject_score=(\d+) rules=none "
             r"bayes=(0\.\d{4}|1\.0000)\r\n\ttokens=((?:[a-z0-9:.$'-]+:0\.\d\d,?)+)$")


def test_untrained_headers_and_forged_ones_dropped(server):
    send(server, message("Hello one", HAM_WORDS,
                         headers="X-Spam-Status: No, forged\r\nX-Spam-Score: -99\r\n"))
    msg = stored(server, "Hello one")
    assert header(msg, "X-Spam-Score") == " 0.0"
    assert header(msg, "X-Spam-Status") == (
        " No, score=0.0 junk_score=5 reject_score=0 rules=none bayes=untrained")
    assert b"forged" not in msg and b"-99" not in msg
    # our fields come right after our trace lines
    assert re.search(rb"^Return-Path: <sender@elsewhere.example>\r\nReceived: .*?\r\n"
                     rb"X-Spam-Score: 0.0\r\nX-Spam-Status: ", msg, re.S)
    assert server.wait_log(r"action=spam rcpt=<alice@example.test> score=0.0 verdict=inbox "
                           r"junk_score=5 reject_score=0 status=\"rules=none bayes=untrained\"")


def test_trusted_and_submission_not_scored(server):
    send(server, message("From loopback", HAM_WORDS), source="127.0.0.1")
    msg = stored(server, "From loopback")
    assert header(msg, "X-Spam-Score") is None
    assert header(msg, "X-Spam-Status") is None


def test_learning_through_imap(server):
    m = train(server)
    # a new message like the spam: Junk, with the headers
    send(server, message("Another offer", SPAM_WORDS, "fresh"))
    assert server.find_messages(USER, "Another offer") == []
    msg = stored(server, "Another offer", "Junk")
    score = header(msg, "X-Spam-Score")
    st = re.fullmatch(STATUS_RE, header(msg, "X-Spam-Status"))
    assert st, header(msg, "X-Spam-Status")
    assert st.group(1) == "Yes" and score == " " + st.group(2)
    assert float(st.group(2)) >= 9.0 and st.group(3) == "0"
    assert float(st.group(4)) > 0.95
    spam_score = st.group(2)
    tokens = st.group(5).split(",")
    assert 1 <= len(tokens) <= 5
    assert server.wait_log(r"action=spam rcpt=<alice@example.test> score=%s verdict=junk "
                           % re.escape(st.group(2)))
    # and one like the ham: INBOX
    send(server, message("Project sync", HAM_WORDS, "fresh"))
    st = re.fullmatch(STATUS_RE, header(stored(server, "Project sync"), "X-Spam-Status"))
    assert st and st.group(1) == "No" and float(st.group(2)) < -9.0
    # the trace names the score
    out = server.cli_ok("trace", "<Anotheroffer@elsewhere.example>").stdout.decode()
    assert ("folder Junk (spam score %s, at or above spam.junk_score 5: filed into Junk)"
            % spam_score) in out, out
    # moving one spam back to the INBOX trains it as ham, undoing its spam
    assert "class=ham reason=out_of_junk messages=1 trained=1" in move_one(
        server, m, "Junk", "Spam 0", "MOVE", "INBOX")
    out = explain(server, "INBOX", "Spam 0")
    assert "Training of alice@example.test: 2 spam and 4 ham messages" in out, out
    assert "\nThis message: trained as ham\n" in out
    # copying it into Junk again trains spam again (once)
    assert "class=spam reason=into_junk messages=1 trained=1" in move_one(
        server, m, "INBOX", "Spam 0", "COPY", "Junk")
    out = explain(server, "Junk", "Spam 0")
    assert "Training of alice@example.test: 3 spam and 3 ham messages" in out, out
    assert "\nThis message: trained as spam\n" in out
    # out of Junk into the Trash trains nothing
    assert move_one(server, m, "Junk", "Spam 1", "MOVE", "Trash") == ""
    m.logout()


def mbox_of(subjects, words):
    out = ""
    for i, subj in enumerate(subjects):
        body = message(subj, words, "cli%d" % i).replace("\r\n", "\n")
        out += "From sender@elsewhere.example Mon Dec  7 05:00:00 2026\n%s>From quoted\n\n" % body
    return out.encode()


def test_learn_cli_and_explain(server):
    spam = mbox_of(["Spam a", "Spam b", "Spam c"], SPAM_WORDS)
    r = server.cli_ok("spam", "learn", "--spam", USER, input=spam)
    out = r.stdout.decode().splitlines()
    assert out[0] == "alice@example.test: 3 messages read, 3 trained as spam, 0 already so"
    assert re.fullmatch(r"alice@example.test has now trained 3 spam and 0 ham messages "
                        r"\(\d+ tokens\)", out[1]), out
    # the same again changes nothing
    r = server.cli_ok("spam", "learn", "--spam", USER, input=spam)
    assert r.stdout.decode().splitlines()[0] == (
        "alice@example.test: 3 messages read, 0 trained as spam, 3 already so")
    # a maildir folder of ham (readable by `user`, as tern drops to it)
    md = os.path.join(server.base, "md")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub), mode=0o755)
    for i in range(3):
        with open(os.path.join(md, "cur" if i else "new", "m%d" % i), "wb") as f:
            f.write(message("Ham %d" % i, HAM_WORDS, "md%d" % i).encode())
        os.chmod(f.name, 0o644)
    r = server.cli_ok("spam", "learn", "--ham", USER, md)
    out = r.stdout.decode().splitlines()
    assert out[0] == "alice@example.test: 3 messages read, 3 trained as ham, 0 already so"
    assert out[1].startswith("alice@example.test has now trained 3 spam and 3 ham messages")
    # spam score: what messages would score now, nothing stored or trained
    mixed = (mbox_of(["Probe spam"], SPAM_WORDS) + mbox_of(["Probe ham"], HAM_WORDS))
    r = server.cli_ok("spam", "score", USER, input=mixed)
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 3, lines
    assert re.fullmatch(r"(9|10)\.\d\tjunk\tmessage 1", lines[0]), lines
    assert re.fullmatch(r"-(9|10)\.\d\tinbox\tmessage 2", lines[1]), lines
    assert lines[2] == "alice@example.test: 2 messages scored: 1 inbox, 1 junk, 0 refused"
    r = server.cli_ok("spam", "score", USER, md)
    lines = r.stdout.decode().splitlines()
    assert lines[-1] == "alice@example.test: 3 messages scored: 3 inbox, 0 junk, 0 refused"
    assert sorted(l.split("\t")[1:] for l in lines[:-1]) == [
        ["inbox", os.path.join(md, "cur", "m1")], ["inbox", os.path.join(md, "cur", "m2")],
        ["inbox", os.path.join(md, "new", "m0")]], lines
    assert "3 spam and 3 ham messages" in server.cli_ok(
        "spam", "learn", "--ham", USER, md).stdout.decode()  # score trained nothing
    # bad usage
    r = server.cli("spam", "learn", "--spam", "--ham", USER, input=b"")
    assert r.returncode == 2 and b"give one of --spam and --ham" in r.stderr
    r = server.cli("spam", "learn", USER, input=b"")
    assert r.returncode == 2
    r = server.cli("spam", "explain", USER, "INBOX", "99")
    assert r.returncode == 1 and b'no message with UID 99 in "INBOX" of alice@example.test' in r.stderr
    r = server.cli("spam", "learn", "--spam", "nobody@example.test", input=b"")
    assert r.returncode == 1 and b"no such user nobody@example.test" in r.stderr
    # a new spam goes to Junk; explain says why
    send(server, message("Cheap again", SPAM_WORDS, "new"))
    out = explain(server, "Junk", "Cheap again").splitlines()
    uid = server.find_messages(USER, "Cheap again", "Junk")[0]["UID"]
    assert out[0] == 'Message UID %s in "Junk" of alice@example.test' % uid
    assert out[1] == "Score now: 10.0, which means the Junk folder"
    assert out[2] == "Rules: 0.0 points (rules=none; weights spam.rule_*)"
    out.pop(2)
    assert out[2] == ("Thresholds: Junk from spam.junk_score = 5; never refused "
                      "(spam.content_reject_score = 0)")
    assert re.fullmatch(r"Training of alice@example.test: 3 spam and 3 ham messages, "
                        r"\d+ tokens kept", out[3]), out
    assert out[4] == "This message: not trained"
    m = re.fullmatch(r"Classifier: spam probability (1\.0000|0\.99\d\d) from (\d+) telling "
                     r"tokens, worth 10\.0 of spam.bayes_weight = 10 points", out[5])
    assert m, out
    assert out[6].startswith("Tokens that count most")
    # viagra was in the 3 spam and no ham: (0.5 * 0.45 + 3) / 3.45
    assert "  0.9348  viagra" + " " * 34 + "  3 spam, 0 ham" in out, out
    assert len(out) == 7 + min(20, int(m.group(2)))


def test_content_reject_and_big_messages(make_server):
    server = make_server(conf={"mailauth.check": "no", "spam.bayes_min_trained": "2",
                               "spam.content_reject_score": "9"})
    server.cli_ok("spam", "learn", "--spam", USER, input=mbox_of(["S1", "S2"], SPAM_WORDS))
    server.cli_ok("spam", "learn", "--ham", USER, input=mbox_of(["H1", "H2"], HAM_WORDS))
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(server, message("Refuse me", SPAM_WORDS))
    assert e.value.smtp_code == 550
    assert e.value.smtp_error.decode() == (
        "5.7.1 Message refused: its content looks like spam (score 10.0; this server "
        "refuses from 9)")
    # to two users: alice refuses, bob has trained nothing: delivered, alice's in Junk
    send(server, message("Two users", SPAM_WORDS), rcpts=(USER, "bob@example.test"))
    assert server.find_messages(USER, "Two users", "Junk")
    assert server.find_messages("bob@example.test", "Two users")
    # 50 MB: the tokenizer reads its start only, so it is classified at once
    big = message("Big spam", SPAM_WORDS, "x" * 10) + ("filler " * 11 + "\r\n") * 630000
    assert len(big) > 49 * 1000 * 1000
    t0 = time.monotonic()
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(server, big)
    assert e.value.smtp_code == 550
    assert time.monotonic() - t0 < timeout(60)
    # a million tiny MIME parts (13 MB): accepted, delivered
    many = ("From: sender@elsewhere.example\r\nTo: %s\r\nSubject: Many parts\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            "--b\r\n\r\n%s\r\n" % (USER, HAM_WORDS)
            + "--b\r\n\r\nxyz\r\n" * 1000000 + "--b--\r\n")
    t0 = time.monotonic()
    send(server, many)
    assert time.monotonic() - t0 < timeout(60)
    assert server.find_messages(USER, "Many parts")
    assert len(server.wait_log(r"action=spam rcpt=<alice@example.test> score=\S+ "
                               r"verdict=\w+", count=4)) == 4


def test_rules_untrained(server):
    """Without training the rules alone count: no Message-ID (1) and an
    .exe attachment (4) reach spam.junk_score 5."""
    data = ("From: sender@elsewhere.example\r\nTo: %s\r\nSubject: Your invoice\r\n"
            "Date: %s\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nsee attached\r\n"
            "--b\r\nContent-Type: application/octet-stream; name=\"invoice.pdf.exe\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--b--\r\n"
            % (USER, email.utils.formatdate(usegmt=True)))
    send(server, data)
    msg = stored(server, "Your invoice", "Junk")
    assert header(msg, "X-Spam-Score") == " 5.0"
    assert header(msg, "X-Spam-Status") == (
        " Yes, score=5.0 junk_score=5 reject_score=0 "
        "rules=MISSING_MESSAGE_ID:1.0,EXECUTABLE_ATTACHMENT:4.0 bayes=untrained")
    # a Date a week ahead: 2 points, INBOX
    future = email.utils.formatdate(time.time() + 7 * 86400, usegmt=True)
    send(server, message("From the future", HAM_WORDS).replace(
        "Date: ", "Date: %s\r\nX-Old-Date: " % future, 1))
    assert header(stored(server, "From the future"), "X-Spam-Status") == (
        " No, score=2.0 junk_score=5 reject_score=0 rules=FUTURE_DATE:2.0 bayes=untrained")
    uid = server.find_messages(USER, "From the future")[0]["UID"]
    out = server.cli_ok("spam", "explain", USER, "INBOX", uid).stdout.decode().splitlines()
    assert out[1] == "Score now: 2.0, which means the INBOX"
    assert out[2] == "Rules: 2.0 points (rules=FUTURE_DATE:2.0; weights spam.rule_*)"
    assert out[6] == ("Classifier: not used yet: it counts once alice@example.test has "
                      "trained at least 2 spam and 2 ham messages (spam.bayes_min_trained)")


def junk_by_rules(subject):
    """An untrained user's Junk by the rules alone (no Message-ID, an
    .exe attachment: 5 points)."""
    return ("From: sender@elsewhere.example\r\nTo: %s\r\nSubject: %s\r\n"
            "Date: %s\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nsee attached\r\n"
            "--b\r\nContent-Type: application/octet-stream; name=\"setup.exe\"\r\n\r\n"
            "TVo=\r\n--b--\r\n" % (USER, subject, email.utils.formatdate(usegmt=True)))


def test_sieve_overrides_junk(server):
    server.cli_ok("sieve", "put", "--activate", USER, "main", "-", input=(
        'require "fileinto";\r\n'
        'if header :contains "subject" "keep-me" { fileinto "INBOX"; stop; }\r\n'
        'if header :contains "X-Spam-Status" "Yes," { fileinto "Archive"; }\r\n').encode())
    send(server, junk_by_rules("Please keep-me"))
    assert header(stored(server, "Please keep-me"), "X-Spam-Score") == " 5.0"
    # the script sees our field and files by it
    send(server, junk_by_rules("Filed by score"))
    assert header(stored(server, "Filed by score", "Archive"), "X-Spam-Score") == " 5.0"
    assert server.find_messages(USER, "Filed by score", "Junk") == []
    # without a fileinto the implicit keep goes to Junk
    server.cli_ok("sieve", "put", "--activate", USER, "main", "-",
                  input=b'require "imap4flags";\r\naddflag "$Seen";\r\n')
    send(server, junk_by_rules("Implicit keep"))
    assert server.find_messages(USER, "Implicit keep", "Junk")


def test_junk_folder_made_when_missing(server):
    m = imap(server)
    assert m.delete("Junk")[0] == "OK"
    m.logout()
    send(server, junk_by_rules("No Junk yet"))
    assert server.find_messages(USER, "No Junk yet", "Junk")
    m = imap(server)
    typ, data = m.list('""', "Junk")
    assert typ == "OK" and data == [b'(\\HasNoChildren \\Junk) "/" "Junk"'], data
    m.logout()
