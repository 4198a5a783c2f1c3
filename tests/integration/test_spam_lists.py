"""Sender authentication in the spam score and the per-user sender lists
(issue 16 items 3-4, docs/spam.md "Rules" and "Sender lists"):
SPF_FAIL / SPF_SOFTFAIL / DMARC_FAIL points from the checks of port 25,
`tern spam allow|block|unlist|senders`, allowed senders that count only
when verified, and the addresses a user writes to through submission
allowed automatically.

The client sends from 127.0.0.2 (127.0.0.1 is trusted and not checked);
DNS is a dnsmasq with the test domains' SPF and DMARC records.
"""

import os
import re
import smtplib
import ssl

import pytest

from conftest import HOST, PASSWORD, timeout
from test_dkim import port_of
from test_spf_cli import DNSMASQ, dnsmasq

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")

CLIENT = "127.0.0.2"
ALICE = "alice@example.test"
# Scores: no Message-ID 1 point, an .exe attachment 4: 5, the Junk score.
JUNKY = ("Content-Type: multipart/mixed; boundary=b\r\n", "--b\r\nContent-Type: text/plain\r\n\r\n"
         "see attached\r\n--b\r\nContent-Type: application/octet-stream; name=run.exe\r\n\r\n"
         "MZ\r\n--b--\r\n")


@pytest.fixture(scope="module")
def dns():
    records = [
        "--txt-record=good.test,v=spf1 ip4:%s -all" % CLIENT,
        "--txt-record=_dmarc.good.test,v=DMARC1; p=none",
        "--txt-record=bad.test,v=spf1 -all",
        "--txt-record=_dmarc.bad.test,v=DMARC1; p=none",
        "--txt-record=soft.test,v=spf1 ~all",
    ]
    with dnsmasq(records) as addr:
        yield addr


@pytest.fixture
def srv(make_server, dns):
    return make_server(conf={"dns.resolver": dns, "mailauth.timeout": "5s",
                             "allow_plaintext_loopback": "yes"})


def message(frm, token, junky=False):
    head = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (
        frm, ALICE, token)
    if junky:
        return head + "MIME-Version: 1.0\r\n" + JUNKY[0] + "\r\n" + JUNKY[1]
    return head + "Message-ID: <%s@client.example>\r\n\r\nHello.\r\n" % token


def send(srv, sender, msg, frm=None):
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(20),
                      source_address=(CLIENT, 0)) as c:
        c.ehlo("client.example")
        c.sendmail(sender, [ALICE], msg)


def status(srv, token, mbox):
    raw = srv.fetch_one(ALICE, token, mbox).decode()
    m = re.search(r"^X-Spam-Status: ([^\r\n]*)", raw, re.M)
    assert m, raw
    return m.group(1)


def test_sender_authentication_counts_in_the_score(srv):
    send(srv, "boss@bad.test", message("boss@bad.test", "forged-1"))
    assert status(srv, "forged-1", "Junk") == (
        "Yes, score=5.0 junk_score=5 reject_score=0 rules=SPF_FAIL:2.0,DMARC_FAIL:3.0 "
        "bayes=untrained")
    send(srv, "news@soft.test", message("news@soft.test", "soft-1"))
    assert status(srv, "soft-1", "INBOX") == (
        "No, score=1.0 junk_score=5 reject_score=0 rules=SPF_SOFTFAIL:1.0 bayes=untrained")
    send(srv, "me@good.test", message("me@good.test", "good-1"))
    assert status(srv, "good-1", "INBOX") == (
        "No, score=0.0 junk_score=5 reject_score=0 rules=none bayes=untrained")


def test_weights_zero_turn_the_rules_off(make_server, dns):
    s = make_server(conf={"dns.resolver": dns, "mailauth.timeout": "5s",
                          "spam.rule_spf_fail": "0", "spam.rule_dmarc_fail": "0"})
    send(s, "boss@bad.test", message("boss@bad.test", "forged-0"))
    assert status(s, "forged-0", "INBOX").startswith("No, score=0.0 ")


def test_allowed_sender_counts_only_when_verified(srv):
    # before: the junky message of a verified sender goes to Junk
    send(srv, "me@good.test", message("me@good.test", "before-allow", junky=True))
    assert status(srv, "before-allow", "Junk").startswith("Yes, score=5.0 ")
    r = srv.cli_ok("spam", "allow", ALICE, "@Good.Test")
    assert r.stdout.decode() == (
        "%s: @good.test allowed (its authenticated mail never goes to Junk)\n" % ALICE)
    send(srv, "me@good.test", message("me@good.test", "after-allow", junky=True))
    assert status(srv, "after-allow", "INBOX") == (
        "No, score=5.0 junk_score=5 reject_score=0 "
        "rules=MISSING_MESSAGE_ID:1.0,EXECUTABLE_ATTACHMENT:4.0 sender=allowed:@good.test "
        "bayes=untrained")
    # a forger can write the allowed address too: not verified, no effect
    srv.cli_ok("spam", "allow", ALICE, "boss@bad.test")
    send(srv, "boss@bad.test", message("boss@bad.test", "forged-allowed"))
    assert status(srv, "forged-allowed", "Junk") == (
        "Yes, score=5.0 junk_score=5 reject_score=0 rules=SPF_FAIL:2.0,DMARC_FAIL:3.0 "
        "sender=allowed_unverified:boss@bad.test bayes=untrained")


def test_blocked_sender_goes_to_junk(srv):
    srv.cli_ok("spam", "block", ALICE, "@good.test")
    srv.cli_ok("spam", "allow", ALICE, "me@good.test")  # more specific: wins
    send(srv, "me@good.test", message("me@good.test", "specific-allow"))
    assert "sender=allowed:me@good.test" in status(srv, "specific-allow", "INBOX")
    # the domain's block covers its subdomains; a block needs no
    # verification (mail.good.test has no SPF, and good.test's DMARC
    # policy covers it: it fails DMARC, 3 points, not enough for Junk)
    send(srv, "x@mail.good.test", message("x@mail.good.test", "blocked-sub"))
    assert status(srv, "blocked-sub", "Junk") == (
        "Yes, score=3.0 junk_score=5 reject_score=0 rules=DMARC_FAIL:3.0 "
        "sender=blocked:@good.test bayes=untrained")
    out = srv.cli_ok("spam", "senders", ALICE).stdout.decode().splitlines()
    assert [line.split()[:2] for line in out] == [["allow", "me@good.test"],
                                                  ["block", "@good.test"]], out
    assert srv.cli_ok("spam", "unlist", ALICE, "@good.test").stdout.decode() == (
        "%s: @good.test removed from the sender lists\n" % ALICE)
    send(srv, "x@mail.good.test", message("x@mail.good.test", "unblocked"))
    assert status(srv, "unblocked", "INBOX").startswith("No, score=3.0 ")
    r = srv.cli("spam", "unlist", ALICE, "@good.test")
    assert r.returncode == 1 and b"not on the sender lists" in r.stderr, r
    r = srv.cli("spam", "block", ALICE, "not an address")
    assert r.returncode == 2, r


def submit(srv, rcpt, token):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@example.test>\r\n\r\n"
           "Hi.\r\n" % (ALICE, rcpt, token, token))
    with smtplib.SMTP(HOST, port_of(srv, "submission.listen"), timeout=timeout(10)) as c:
        c.starttls(context=ctx)
        c.login(ALICE, PASSWORD)
        c.sendmail(ALICE, [rcpt], msg)


def test_addresses_written_to_are_allowed(srv):
    submit(srv, "Friend@good.test", "to-friend")
    out = srv.cli_ok("spam", "senders", ALICE).stdout.decode()
    assert re.fullmatch(r"allow  friend@good\.test +wrote to, last \d{4}-\d\d-\d\d\n", out), out
    send(srv, "friend@good.test", message("friend@good.test", "reply-1", junky=True))
    assert "sender=allowed:friend@good.test" in status(srv, "reply-1", "INBOX")
    # a hand-made entry is not changed by sent mail
    srv.cli_ok("spam", "block", ALICE, "friend@good.test")
    submit(srv, "friend@good.test", "to-friend-2")
    out = srv.cli_ok("spam", "senders", ALICE).stdout.decode()
    assert out.startswith("block  friend@good.test"), out


def test_sent_recipients_not_kept_when_off(make_server, dns):
    s = make_server(conf={"dns.resolver": dns, "spam.allow_sent_recipients": "no"})
    submit(s, "friend@good.test", "to-friend-off")
    assert s.cli_ok("spam", "senders", ALICE).stdout == b""


def test_thresholds_per_domain_and_user(srv):
    out = srv.cli_ok("spam", "thresholds", ALICE).stdout.decode()
    assert out == ("%s\n  junk: from 5 (spam.junk_score)\n"
                   "  refused: never (spam.content_reject_score)\n" % ALICE), out
    out = srv.cli_ok("spam", "thresholds", "example.test", "--junk", "3").stdout.decode()
    assert out == ("example.test\n  junk: from 3 (set for example.test)\n"
                   "  refused: never (spam.content_reject_score)\n"), out
    # the domain's junk score: a DMARC failure (3 points) goes to Junk
    send(srv, "x@mail.good.test", message("x@mail.good.test", "dom-junk"))
    assert status(srv, "dom-junk", "Junk").startswith(
        "Yes, score=3.0 junk_score=3 reject_score=0 rules=DMARC_FAIL:3.0 ")
    # the user's own wins over the domain's
    out = srv.cli_ok("spam", "thresholds", ALICE, "--junk", "1", "--reject", "4").stdout.decode()
    assert out == ("%s\n  junk: from 1 (set for %s)\n  refused: from 4 (set for %s)\n"
                   % (ALICE, ALICE, ALICE)), out
    send(srv, "news@soft.test", message("news@soft.test", "user-junk"))
    assert status(srv, "user-junk", "Junk").startswith(
        "Yes, score=1.0 junk_score=1 reject_score=4 rules=SPF_SOFTFAIL:1.0 ")
    uid = srv.find_messages(ALICE, "user-junk", "Junk")[0]["UID"]
    out = srv.cli_ok("spam", "explain", ALICE, "Junk", str(uid)).stdout.decode()
    assert ("\nThresholds: Junk from 1 (set for %s); refused from 4 (set for %s)\n"
            % (ALICE, ALICE)) in out, out
    trace = srv.cli_ok("trace", "<user-junk@client.example>").stdout.decode()
    assert ("folder Junk (spam score 1.0, at or above the junk score 1 set for %s: "
            "filed into Junk)" % ALICE) in trace, trace
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, "boss@bad.test", message("boss@bad.test", "user-reject"))
    assert e.value.smtp_code == 550 and b"score 5.0" in e.value.smtp_error, e.value
    # bad values, and back to the defaults
    r = srv.cli("spam", "thresholds", ALICE, "--junk", "5", "--reject", "2")
    assert r.returncode == 2 and b"must not be below the junk score" in r.stderr, r
    r = srv.cli("spam", "thresholds", ALICE, "--junk", "0")
    assert r.returncode == 2, r
    r = srv.cli("spam", "thresholds", "nowhere.test", "--junk", "4")
    assert r.returncode == 1 and b"no such domain nowhere.test" in r.stderr, r
    srv.cli_ok("spam", "thresholds", ALICE, "--junk", "default", "--reject", "default")
    out = srv.cli_ok("spam", "thresholds", ALICE).stdout.decode()
    assert out == ("%s\n  junk: from 3 (set for example.test)\n"
                   "  refused: never (spam.content_reject_score)\n" % ALICE), out
