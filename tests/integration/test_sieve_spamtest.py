"""Sieve spamtest, spamtestplus and virustest (RFC 5235) at delivery
(docs/sieve.md "Spamtest"): the test sees the content stage's score of
this recipient (docs/spam.md), mapped onto 1..10 and 0..100 % by the
recipient's junk and reject scores; mail that was not scored (a trusted
client, submission) is "0", not tested.  Mail goes in over SMTP
(smtplib), scripts with `tern sieve put`, the mailboxes are read over
IMAP (imaplib) and `tern mail cat`; `tern sieve test` takes the results
as options.

Clients connect from 127.0.0.2 (127.0.0.1 is in mailauth.trusted, whose
mail is not scored); mailauth.check is off, so no DNS is needed.
"""

import email.utils
import imaplib
import re
import smtplib
import subprocess
import time
import uuid

import pytest

from conftest import HOST, PASSWORD, timeout

SOURCE = "127.0.0.2"
SENDER = "sender@elsewhere.example"
CONF = {"mailauth.check": "no", "allow_plaintext_loopback": "yes"}

# files each message by its spamtest results: "st<1..10>-p<0..100>", or
# "untested" when no score was computed
BY_SCORE = (
    'require ["spamtestplus", "fileinto", "mailbox", "variables", "relational",\r\n'
    '         "comparator-i;ascii-numeric"];\r\n'
    'if spamtest :count "eq" :comparator "i;ascii-numeric" "0" {\r\n'
    '    fileinto :create "untested"; stop;\r\n'
    '}\r\n'
    'if spamtest :matches "*" { set "v" "${1}"; }\r\n'
    'if spamtest :percent :matches "*" { fileinto :create "st${v}-p${1}"; }\r\n')


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def new_user(srv, script):
    user = "u%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    srv.cli_ok("sieve", "put", "--activate", user, "main", "-", input=script.encode())
    return user


def clean(rcpt, subject, sender=SENDER):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@elsewhere.example>\r\n"
            "Date: %s\r\n\r\nThe meeting agenda for %s.\r\n"
            % (sender, rcpt, subject, uuid.uuid4().hex, email.utils.formatdate(usegmt=True),
               subject)).encode()


def future(rcpt, subject):
    """A Date a week ahead: FUTURE_DATE, 2.0 points."""
    return clean(rcpt, subject).replace(
        b"Date: ", b"Date: %s\r\nX-Old-Date: "
        % email.utils.formatdate(time.time() + 7 * 86400, usegmt=True).encode(), 1)


def spammy(rcpt, subject):
    """No Message-ID (1) and an .exe attachment (4): 5.0 points."""
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nsee attached\r\n"
            "--b\r\nContent-Type: application/octet-stream; name=\"setup.exe\"\r\n\r\n"
            "TVo=\r\n--b--\r\n"
            % (SENDER, rcpt, subject, email.utils.formatdate(usegmt=True))).encode()


def send(srv, rcpt, data, source=SOURCE):
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(30),
                      source_address=(source, 0)) as c:
        c.ehlo("client.example")
        assert c.sendmail(SENDER, [rcpt], data) == {}


def mailboxes(srv, user):
    """{mailbox: number of messages} of every mailbox of user."""
    c = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(10))
    try:
        c.login(user, PASSWORD)
        typ, data = c.list()
        assert typ == "OK"
        out = {}
        for line in data:
            name = re.search(rb'"([^"]*)"$', line).group(1).decode()
            typ, st = c.status('"%s"' % name, "(MESSAGES)")
            assert typ == "OK", st
            out[name] = int(re.search(rb"MESSAGES (\d+)", st[0]).group(1))
        return out
    finally:
        c.logout()


def filed(srv, user, mbox, subject, sent):
    """The one message subject in mbox: our trace lines (and X-Spam-*
    fields when scored), then the bytes sent."""
    got = srv.fetch_one(user, subject, mbox)
    assert got.endswith(sent), got
    return got


def test_score_mapped_onto_spamtest(srv):
    user = new_user(srv, BY_SCORE)
    a, b, c = clean(user, "Clean one"), future(user, "Two points"), spammy(user, "Five points")
    send(srv, user, a)
    send(srv, user, b)
    send(srv, user, c)
    # 0.0 -> 1 and 0 %; 2.0 below junk 5 -> 1 + 4*2/5 = 2 and 50*2/5 = 20 %;
    # 5.0, at the junk score (never refused: the top is 10) -> 5 and 50 %
    assert {k: v for k, v in mailboxes(srv, user).items() if v} == \
        {"st1-p0": 1, "st2-p20": 1, "st5-p50": 1}
    assert b"X-Spam-Score: 0.0\r\n" in filed(srv, user, "st1-p0", "Clean one", a)
    assert b"X-Spam-Score: 2.0\r\n" in filed(srv, user, "st2-p20", "Two points", b)
    assert b"X-Spam-Score: 5.0\r\n" in filed(srv, user, "st5-p50", "Five points", c)


def test_not_scored_is_not_tested(srv):
    user = new_user(srv, BY_SCORE)
    # 127.0.0.1 is in mailauth.trusted: no content stage
    sent = spammy(user, "Trusted client")
    send(srv, user, sent, source="127.0.0.1")
    got = filed(srv, user, "untested", "Trusted client", sent)
    assert b"X-Spam-" not in got
    # submission is never scored
    m = re.search(r"(?m)^submission\.listen = .*:(\d+)$", open(srv.conf).read())
    sub = clean(user, "Submitted", sender=user)
    with smtplib.SMTP(HOST, int(m.group(1)), source_address=(SOURCE, 0),
                      timeout=timeout(30)) as c:
        c.ehlo("client.example")
        c.starttls()
        c.login(user, PASSWORD)
        assert c.sendmail(user, [user], sub) == {}
    filed(srv, user, "untested", "Submitted", sub)
    assert {k: v for k, v in mailboxes(srv, user).items() if v} == {"untested": 2}


def test_threshold_moves_the_mapping(srv):
    """RFC 5235 3.2.1's example: ge 3 -> spam-trap.  The user's own junk
    score 8 makes 5.0 a 1 + 4*5/8 = 3, below the Junk verdict; with a
    junk score 10 it is 1 + 4*5/10 = 3 too, 2.0 a 1."""
    script = ('require ["spamtest", "fileinto", "mailbox", "relational", "comparator-i;ascii-numeric"];\r\n'
              'if spamtest :value "eq" :comparator "i;ascii-numeric" "0"\r\n'
              '{ fileinto :create "INBOX.unclassified"; }\r\n'
              'elsif spamtest :value "ge" :comparator "i;ascii-numeric" "5"\r\n'
              '{ fileinto :create "INBOX.spam"; }\r\n'
              'elsif spamtest :value "ge" :comparator "i;ascii-numeric" "3"\r\n'
              '{ fileinto :create "INBOX.spam-trap"; }\r\n')
    user = new_user(srv, script)
    a = spammy(user, "At junk five")
    send(srv, user, a)
    filed(srv, user, "INBOX.spam", "At junk five", a)
    srv.cli_ok("spam", "thresholds", user, "--junk", "8")
    b, c = spammy(user, "At junk eight"), future(user, "Low at eight")
    send(srv, user, b)
    send(srv, user, c)
    got = filed(srv, user, "INBOX.spam-trap", "At junk eight", b)
    assert b"X-Spam-Status: No, score=5.0 junk_score=8 " in got
    # 2.0 with junk 8: 1 + 4*2/8 = 2, no rule: the implicit keep, INBOX
    filed(srv, user, "INBOX", "Low at eight", c)
    d = clean(user, "Trusted at eight")
    send(srv, user, d, source="127.0.0.1")
    filed(srv, user, "INBOX.unclassified", "Trusted at eight", d)
    assert {k: v for k, v in mailboxes(srv, user).items() if v} == {
        "INBOX": 1, "INBOX.spam": 1, "INBOX.spam-trap": 1, "INBOX.unclassified": 1}


def test_virustest_is_always_not_tested(srv):
    script = ('require ["virustest", "fileinto", "mailbox", "relational", "comparator-i;ascii-numeric"];\r\n'
              'if virustest :value "ge" :comparator "i;ascii-numeric" "4" { discard; stop; }\r\n'
              'if allof (virustest :value "eq" :comparator "i;ascii-numeric" "0",\r\n'
              '          virustest :count "eq" :comparator "i;ascii-numeric" "0")\r\n'
              '{ fileinto :create "unscanned"; }\r\n')
    user = new_user(srv, script)
    a = spammy(user, "Has an exe")
    send(srv, user, a)
    filed(srv, user, "unscanned", "Has an exe", a)
    assert {k: v for k, v in mailboxes(srv, user).items() if v} == {"unscanned": 1}


def test_percent_needs_spamtestplus(srv):
    user = "u%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    p = srv.cli("sieve", "put", user, "bad", "-",
                input=b'require "spamtest";\r\nif spamtest :percent "0" { discard; }\r\n')
    assert p.returncode == 2
    assert p.stderr == b"-:2:13: error: unknown tagged argument ':percent' for spamtest\n"


def test_sieve_test_cli_results(tern_bin, tmp_path):
    """`tern sieve test` is "not tested" unless --spamtest and
    --spamtest-percent give the results."""
    script = tmp_path / "s.sieve"
    script.write_bytes(BY_SCORE.encode())
    msg = clean("bob@example.test", "Cli")

    def run(*opts):
        return subprocess.run([tern_bin, "sieve", "test", str(script)] + list(opts),
                              input=msg, capture_output=True, timeout=60)

    assert run().stdout == b"fileinto untested create\n"
    assert run("--spamtest", "7", "--spamtest-percent", "73").stdout == \
        b"fileinto st7-p73 create\n"
    # given one, the other is not tested: "0" for :matches
    assert run("--spamtest", "10").stdout == b"fileinto st10-p0 create\n"
    for bad in (("--spamtest", "11"), ("--spamtest-percent", "101"), ("--spamtest", "05"),
                ("--spamtest", "-1"), ("--spamtest",)):
        p = run(*bad)
        assert p.returncode == 2 and p.stdout == b"", bad
    assert run("--spamtest", "x").stderr.startswith(b"tern: x: expected a number 0..10\n")
