"""The content stage of port 25 (issue 16 items 3-6, docs/spam.md
"Content stage"): a per-user statistical classifier trained through IMAP
(MOVE/COPY into Junk, $Junk / $NotJunk) and `tern spam learn`, its score
in X-Spam-Score / X-Spam-Status, Junk filing, refusal at
spam.content_reject_score, and `tern spam explain`.

Clients connect from 127.0.0.2 (127.0.0.1 is in mailauth.trusted, whose
mail is not checked); mailauth.check is off, so no DNS is needed.
"""

import imaplib
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
            "Message-ID: <%s@elsewhere.example>\r\nDate: Mon, 07 Dec 2026 05:00:00 +0000\r\n"
            "%s\r\n%s %s\r\n" % (USER, subject, re.sub(r"\W", "", subject), headers,
                                 words, extra))


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
    return {"mailauth.check": "no", "spam.bayes_min_trained": "2"}


def test_untrained_headers_and_forged_ones_dropped(server):
    send(server, message("Hello one", HAM_WORDS,
                         headers="X-Spam-Status: No, forged\r\nX-Spam-Score: -99\r\n"))
    msg = stored(server, "Hello one")
    assert header(msg, "X-Spam-Score") == " 0.0"
    assert header(msg, "X-Spam-Status") == (
        " No, score=0.0 junk_score=5 reject_score=0 bayes=untrained")
    assert b"forged" not in msg and b"-99" not in msg
    # our fields come right after our trace lines
    assert re.search(rb"^Return-Path: <sender@elsewhere.example>\r\nReceived: .*?\r\n"
                     rb"X-Spam-Score: 0.0\r\nX-Spam-Status: ", msg, re.S)
    assert server.wait_log(r"action=spam rcpt=<alice@example.test> score=0.0 verdict=inbox "
                           r"junk_score=5 reject_score=0 status=\"bayes=untrained\"")


def test_trusted_and_submission_not_scored(server):
    send(server, message("From loopback", HAM_WORDS), source="127.0.0.1")
    msg = stored(server, "From loopback")
    assert header(msg, "X-Spam-Score") is None
    assert header(msg, "X-Spam-Status") is None
