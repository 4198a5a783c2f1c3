"""SRS for forwarded mail (issue 15 item 6): an alias of ours that
forwards to another server rewrites the envelope sender into our domain
(SRS0=HHHH=TT=domain=local@alias-domain), so that SPF passes at the next
hop; a bounce sent to that address is accepted and goes back to the
original sender; a forged or damaged SRS address is refused.  The
resolver is a dead port, so everything stays in the queue to be looked
at."""

import re
import smtplib

import pytest

from conftest import HOST, timeout


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(conf={"dns.resolver": "127.0.0.1:9", "queue.timeout.dns": "30s"})
    s.cli_ok("alias", "add", "fwd@example.test", "someone@remote.example", "--force")
    return s


def send(srv, sender, rcpt, subject):
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nhi\r\n"
           % (sender or "mailer-daemon@remote.example", rcpt, subject)).encode()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as c:
        c.ehlo("client.example")
        assert c.mail(sender)[0] == 250
        code, text = c.rcpt(rcpt)
        if code != 250:
            return code, text.decode()
        return c.data(msg)[0], ""


def test_forwarded_sender_rewritten_and_bounce_goes_back(srv):
    assert send(srv, "writer@elsewhere.example", "fwd@example.test", "srs one")[0] == 250
    m = srv.wait_log(r"action=srs from=<writer@elsewhere\.example> "
                     r"rewritten=<(SRS0=[a-z2-7]{4}=[a-z2-7]{2}=elsewhere\.example=writer"
                     r"@example\.test)>")
    assert m
    srs = re.search(r"rewritten=<([^>]+)>", srv.log()).group(1)
    out = srv.cli_ok("queue", "list").stdout.decode()
    assert srs in out and "someone@remote.example" in out, out
    # A bounce for it (null sender) is accepted and queued for the writer.
    assert send(srv, "", srs, "bounce of srs one")[0] == 250
    out = srv.cli_ok("queue", "list").stdout.decode()
    assert "writer@elsewhere.example" in out, out
    # Damaged or forged: refused, nothing queued.
    hh = srs[5:9]
    forged = srs.replace("SRS0=" + hh, "SRS0=" + ("aaaa" if hh != "aaaa" else "bbbb"))
    code, text = send(srv, "", forged, "forged")
    assert code == 550 and "5.1.1" in text, (code, text)
    code, text = send(srv, "", srs.replace("=writer@", "=boss@"), "other user")
    assert code == 550, (code, text)


def test_sender_of_our_own_domain_is_not_rewritten(srv):
    assert send(srv, "alice@example.test", "fwd@example.test", "srs own")[0] == 250
    out = srv.cli_ok("queue", "list").stdout.decode()
    rows = [l for l in out.splitlines() if "alice@example.test" in l and "someone@remote" in l]
    assert rows, out
    assert "SRS0=" not in "".join(rows)
