"""Greylisting on port 25 (issue 16 item 2, docs/spam.md): for a domain
turned on with `tern domain set DOMAIN --greylist on`, an unknown (client
/24 or /64, sender, recipient) triplet gets 451 4.7.1 at RCPT until the
sender retries after spam.greylist_delay (2 s here); then it passes and
stays known.  Skipped for networks that passed spam.greylist_auto_allow
triplets, for spam.greylist_allow, for clients on a spam.dnswl list, for
submission and for mailauth.trusted.

Every test uses its own /24 of 127.0.0.0/8 (Linux routes all of it to
loopback), so their triplets and networks never meet."""

import os
import subprocess
import re
import smtplib
import time

import pytest

from conftest import HOST, PASSWORD, timeout
from test_spam_connect import cmd, connect, reply
from test_spf_cli import DNSMASQ, dnsmasq

DELAY = 2
POSTFIX_BIN = "/usr/sbin/postfix"


def grey(rcpt, wait):
    return ("451 4.7.1 <%s>: Greylisted: a first message from this sender to this recipient "
            "is accepted when it is sent again; try again in %d seconds" % (rcpt, wait))


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(conf={
        "spam.greylist_delay": "%ds" % DELAY,
        "spam.greylist_auto_allow": "2",
        "spam.greylist_allow": "127.0.9.0/24 friend@known.example trusted.example",
        # no SPF at RCPT here (no DNS server): test_spf_pass_* has it
        "spam.greylist_spf_passes": "0",
    })
    r = s.cli_ok("domain", "set", "example.test", "--greylist", "on")
    assert r.stdout.decode() == (
        "example.test: mail from port 25 is greylisted (retries pass after %ds)\n" % DELAY)
    return s


def attempt(srv, source, sender, rcpt):
    """One transaction up to RCPT; the RCPT reply."""
    with connect(srv, source) as s:
        assert reply(s).startswith("220 ")
        assert cmd(s, "EHLO client.example").startswith("250-")
        assert cmd(s, "MAIL FROM:<%s>" % sender) == "250 2.1.0 Ok"
        r = cmd(s, "RCPT TO:<%s>" % rcpt)
        cmd(s, "QUIT")
        return r


def send(srv, source, sender, rcpts, subject):
    """A whole message with smtplib; the refused recipients."""
    with smtplib.SMTP(HOST, srv.smtp_port, source_address=(source, 0),
                      timeout=timeout(10)) as c:
        return c.sendmail(sender, rcpts, ("From: <%s>\r\nSubject: %s\r\n\r\nbody\r\n"
                                          % (sender, subject)).encode())


def test_first_attempt_early_retry_then_pass_after_the_window(srv):
    mark = srv.log_mark()
    sender, rcpt = "news@sender.example", "alice@example.test"
    assert attempt(srv, "127.0.1.2", sender, rcpt) == grey(rcpt, DELAY)
    t0 = time.time()  # the server's first-seen second is no later
    # before the window: still 451 (the wait left, 1 or 2 seconds)
    r = attempt(srv, "127.0.1.2", sender, rcpt)
    assert r in (grey(rcpt, 1), grey(rcpt, 2)), r
    # a whole message, refused for that recipient: nothing stored
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(srv, "127.0.1.2", sender, [rcpt], "grey-early-1")
    code, text = e.value.recipients[rcpt]
    assert code == 451 and text.decode().startswith("4.7.1 <alice@example.test>: Greylisted")
    # The window counts whole seconds from the first attempt's second: it
    # is over DELAY seconds after the first attempt's reply at the latest.
    time.sleep(max(0.0, t0 + DELAY + 0.05 - time.time()))
    # the retry comes from another address of the same /24: passes
    assert send(srv, "127.0.1.3", sender, [rcpt], "grey-pass-1") == {}
    assert len(srv.find_messages(rcpt, "grey-pass-1")) == 1
    assert srv.find_messages(rcpt, "grey-early-1") == []
    # known from now on: at once
    assert attempt(srv, "127.0.1.2", sender, rcpt) == "250 2.1.5 Ok"
    log = r"client=127\.0\.1\.%d action=greylist net=127\.0\.1\.0/24 " \
          r"from=<news@sender\.example> to=<alice@example\.test> result=%s"
    assert srv.wait_log(log % (2, "new wait=2"), since=mark)
    assert len(srv.wait_log(log % (2, "early wait=[12]"), since=mark, count=2)) == 2
    assert srv.wait_log(log % (3, "pass after=[23]"), since=mark)
    assert srv.wait_log(log % (2, "known after=[23]"), since=mark)


def test_each_recipient_is_its_own_triplet_and_other_domains_are_not_greylisted(srv):
    sender = "shop@sender.example"
    refused = send(srv, "127.0.2.2", sender,
                   ["alice@example.test", "bob@example.test", "carol@example.org"],
                   "grey-mixed-1")
    t0 = time.time()
    assert sorted(refused) == ["alice@example.test", "bob@example.test"]
    # example.org does not greylist: carol has it once already
    assert len(srv.find_messages("carol@example.org", "grey-mixed-1")) == 1
    time.sleep(max(0.0, t0 + DELAY + 0.05 - time.time()))
    # the sender retries the two deferred recipients only
    assert send(srv, "127.0.2.2", sender, ["alice@example.test", "bob@example.test"],
                "grey-mixed-1") == {}
    for user in ("alice@example.test", "bob@example.test", "carol@example.org"):
        assert len(srv.find_messages(user, "grey-mixed-1")) == 1, user


def test_network_auto_allowed_after_its_passes(srv):
    mark = srv.log_mark()
    for sender in ("a@one.example", "b@two.example"):
        assert attempt(srv, "127.0.3.2", sender, "alice@example.test").startswith("451 ")
    t0 = time.time()
    time.sleep(max(0.0, t0 + DELAY + 0.05 - time.time()))
    for sender in ("a@one.example", "b@two.example"):
        assert attempt(srv, "127.0.3.2", sender, "alice@example.test") == "250 2.1.5 Ok"
    # two passes (spam.greylist_auto_allow): a new triplet passes at once
    assert attempt(srv, "127.0.3.7", "c@three.example", "bob@example.test") == "250 2.1.5 Ok"
    assert srv.wait_log(r"client=127\.0\.3\.7 action=greylist net=127\.0\.3\.0/24 "
                        r"from=<c@three\.example> to=<bob@example\.test> result=network$",
                        since=mark)
    # another network is not
    assert attempt(srv, "127.0.4.2", "c@three.example", "bob@example.test") == \
        grey("bob@example.test", DELAY)


def test_allowlist_of_clients_senders_and_domains(srv):
    mark = srv.log_mark()
    assert attempt(srv, "127.0.9.5", "x@any.example", "alice@example.test") == "250 2.1.5 Ok"
    assert attempt(srv, "127.0.5.2", "Friend@Known.example", "alice@example.test") == \
        "250 2.1.5 Ok"
    assert attempt(srv, "127.0.5.2", "x@mail.trusted.example", "alice@example.test") == \
        "250 2.1.5 Ok"
    # not a subdomain match by suffix alone, nor another user of the domain
    for sender in ("x@untrusted.example", "other@known.example"):
        assert attempt(srv, "127.0.5.2", sender, "alice@example.test") == \
            grey("alice@example.test", DELAY), sender
    assert len(srv.wait_log(r"action=greylist net=127\.0\.[59]\.0/24 .* result=skip "
                            r"reason=allowlist", since=mark, count=3)) == 3


def test_null_sender_is_greylisted_too(srv):
    assert attempt(srv, "127.0.6.2", "", "alice@example.test") == \
        grey("alice@example.test", DELAY)


def test_trusted_and_submission_are_never_greylisted(srv):
    assert attempt(srv, "127.0.0.1", "new@sender.example", "alice@example.test") == \
        "250 2.1.5 Ok"
    m = re.search(r"(?m)^submission\.listen = .*:(\d+)$", open(srv.conf).read())
    with smtplib.SMTP(HOST, int(m.group(1)), source_address=("127.0.7.2", 0),
                      timeout=timeout(10)) as c:
        c.starttls()
        c.login("bob@example.test", PASSWORD)
        assert c.sendmail("bob@example.test", ["alice@example.test"],
                          b"Subject: grey-submission-1\r\n\r\nbody\r\n") == {}
    assert len(srv.find_messages("alice@example.test", "grey-submission-1")) == 1


def test_domain_set_greylist_cli(make_server):
    srv = make_server(conf={"spam.greylist_delay": "1m", "spam.greylist_spf_passes": "0"})
    r = srv.cli("domain", "set", "example.org", "--greylist", "maybe")
    assert r.returncode == 2
    assert b"--greylist is on or off" in r.stderr, r.stderr
    r = srv.cli("domain", "set", "nowhere.example", "--greylist", "on")
    assert r.returncode == 1 and b"no such domain nowhere.example" in r.stderr, r.stderr
    r = srv.cli_ok("domain", "set", "example.org", "--greylist", "on")
    assert r.stdout == b"example.org: mail from port 25 is greylisted (retries pass after 60s)\n"
    assert attempt(srv, "127.0.8.2", "a@b.example", "carol@example.org") == \
        grey("carol@example.org", 60)
    r = srv.cli_ok("domain", "set", "example.org", "--greylist", "off")
    assert r.stdout == b"example.org: mail is not greylisted\n"
    assert attempt(srv, "127.0.8.2", "a@b.example", "carol@example.org") == "250 2.1.5 Ok"


@pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq is not installed")
def test_client_on_an_allow_list_is_not_greylisted(make_server):
    with dnsmasq(["--address=/2.10.0.127.wl.example/127.0.15.1"],
                 zones=("example",)) as dns:
        srv = make_server(conf={"dns.resolver": dns, "spam.dnswl": "wl.example=-10",
                                "spam.greylist_spf_passes": "0"})
        srv.cli_ok("domain", "set", "example.test", "--greylist", "on")
        mark = srv.log_mark()
        assert attempt(srv, "127.0.10.2", "a@b.example", "alice@example.test") == \
            "250 2.1.5 Ok"
        assert srv.wait_log(r"client=127\.0\.10\.2 action=greylist net=127\.0\.10\.0/24 "
                            r"from=<a@b\.example> to=<alice@example\.test> result=skip "
                            r"reason=dnswl zone=wl\.example", since=mark)
        # not listed: greylisted
        assert attempt(srv, "127.0.10.3", "a@b.example", "alice@example.test") == \
            grey("alice@example.test", 300)
        srv.stop()


@pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq is not installed")
def test_spf_pass_for_a_domain_with_a_good_history_skips(make_server):
    """spam.greylist_spf_passes = 1: once a triplet of good.example passed
    with SPF passing for good.example, its new triplets pass at once when
    SPF passes again; a forged good.example sender (SPF fails) and a
    domain without that history are greylisted."""
    records = ["--txt-record=good.example,v=spf1 ip4:127.0.11.0/24 ip4:127.0.12.0/24 -all",
               "--txt-record=other.example,v=spf1 ip4:127.0.12.0/24 -all"]
    with dnsmasq(records, zones=("example",)) as dns:
        srv = make_server(conf={"dns.resolver": dns, "spam.greylist_delay": "%ds" % DELAY,
                                "spam.greylist_spf_passes": "1",
                                "spam.greylist_auto_allow": "0"})
        srv.cli_ok("domain", "set", "example.test", "--greylist", "on")
        mark = srv.log_mark()
        # SPF passes, but good.example has no history yet
        assert attempt(srv, "127.0.11.2", "a@good.example", "alice@example.test") == \
            grey("alice@example.test", DELAY)
        t0 = time.time()
        assert srv.wait_log(r"action=greylist_spf spf=pass domain=good\.example", since=mark)
        time.sleep(max(0.0, t0 + DELAY + 0.05 - time.time()))
        assert attempt(srv, "127.0.11.2", "a@good.example", "alice@example.test") == \
            "250 2.1.5 Ok"
        # one pass with SPF: a new sender of good.example, another network
        assert attempt(srv, "127.0.12.2", "b@good.example", "bob@example.test") == \
            "250 2.1.5 Ok"
        assert srv.wait_log(r"client=127\.0\.12\.2 action=greylist net=127\.0\.12\.0/24 "
                            r"from=<b@good\.example> to=<bob@example\.test> result=skip "
                            r"reason=spf domain=good\.example passes=1", since=mark)
        # forged: SPF fails from 127.0.13.x
        assert attempt(srv, "127.0.13.2", "c@good.example", "bob@example.test") == \
            grey("bob@example.test", DELAY)
        assert srv.wait_log(r"action=greylist_spf spf=fail domain=good\.example", since=mark)
        # SPF passes for other.example, which has no history
        assert attempt(srv, "127.0.12.2", "d@other.example", "bob@example.test") == \
            grey("bob@example.test", DELAY)
        # mail for a domain that does not greylist asks no SPF at RCPT
        n = len(re.findall("action=greylist_spf", srv.log()[mark:]))
        assert attempt(srv, "127.0.12.2", "e@other.example", "carol@example.org") == \
            "250 2.1.5 Ok"
        assert len(re.findall("action=greylist_spf", srv.log()[mark:])) == n
        srv.stop()


def test_spf_at_rcpt_that_never_answers_is_bounded(make_server):
    """A resolver that never answers: the RCPT waits spam.dns_timeout (1 s)
    for SPF, then greylists as usual; commands pipelined behind it are
    answered in order; a client that leaves while it waits costs nothing."""
    import socket
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))  # never read: no answer
    try:
        srv = make_server(conf={"dns.resolver": "127.0.0.1:%d" % mute.getsockname()[1],
                                "spam.dns_timeout": "1s", "spam.greylist_spf_passes": "1"})
        srv.cli_ok("domain", "set", "example.test", "--greylist", "on")
        mark = srv.log_mark()
        with connect(srv, "127.0.14.2") as s:
            assert reply(s).startswith("220 ")
            assert cmd(s, "EHLO client.example").startswith("250-")
            t0 = time.monotonic()
            s.sendall(b"MAIL FROM:<a@slow.example>\r\nRCPT TO:<alice@example.test>\r\n"
                      b"RCPT TO:<bob@example.test>\r\nQUIT\r\n")
            data = b""
            while not data.endswith(b"\r\n221 2.0.0 Bye\r\n") and \
                    not re.search(rb"\r\n221 [^\r\n]*\r\n$", data):
                chunk = s.recv(4096)
                assert chunk, data
                data += chunk
            took = time.monotonic() - t0
        lines = data.decode().split("\r\n")
        assert lines[0] == "250 2.1.0 Ok"
        assert lines[1] == grey("alice@example.test", 300)
        assert lines[2] == grey("bob@example.test", 300)
        assert lines[3].startswith("221 ")
        assert 0.9 <= took < timeout(5), took
        assert srv.wait_log(r"action=greylist_spf spf=timeout domain=slow\.example "
                            r"note=\"no answer within spam\.dns_timeout; not a pass\"",
                            since=mark)
        # one SPF check per transaction, not per recipient
        assert len(re.findall("action=greylist_spf", srv.log()[mark:])) == 1
        # gone while the RCPT waits
        with connect(srv, "127.0.14.3") as s:
            assert reply(s).startswith("220 ")
            assert cmd(s, "EHLO client.example").startswith("250-")
            s.sendall(b"MAIL FROM:<b@slow.example>\r\nRCPT TO:<alice@example.test>\r\n")
        time.sleep(1.2)  # past the 1 s SPF bound: its timer must not touch the gone session
        with connect(srv, "127.0.14.4") as s:
            assert reply(s).startswith("220 ")
            cmd(s, "QUIT")
        srv.stop()
    finally:
        mute.close()


def _postfix_ready():
    from test_interop_postfix import OPENSSL, POSTFIX
    return os.path.exists(POSTFIX) and os.geteuid() == 0 and os.path.exists(DNSMASQ) \
        and OPENSSL is not None


@pytest.mark.skipif(not _postfix_ready(),
                    reason="needs postfix and dnsmasq installed, root, and openssl")
def test_postfix_retries_and_the_message_arrives_once(tern_bin, request):
    """A real Postfix (Debian) as the sender: its first attempt is
    greylisted, its queue retries (backoff set to 1 s here), the retry
    after the window is accepted, and the message is stored once."""
    from test_interop_postfix import DNS, HOST_PF, Postfix, port_free
    from test_outbound import HOST_B, Peer, inbox_with, pick_world_ports, wait_for
    for _ in range(20):
        base, dns_port = pick_world_ports()
        if port_free(HOST_PF, base + 25):
            break
    dns = DNS(dns_port)
    b = pf = None
    try:
        b = Peer(tern_bin, HOST_B, "b.test", base, dns_port, ["bob@b.test"],
                 conf={"spam.greylist_delay": "%ds" % DELAY})
        b.start()
        b.cli_ok("domain", "set", "b.test", "--greylist", "on")
        pf = Postfix(HOST_PF, base + 25, (HOST_B, base + 25))
        # Postfix's client leaves from its own address (127.0.0.1 is in
        # mailauth.trusted) and retries deferred mail after a second.
        for kv in ("smtp_bind_address = %s" % HOST_PF, "minimal_backoff_time = 1s",
                   "maximal_backoff_time = 1s", "queue_run_delay = 1s"):
            subprocess.run(["postconf", "-c", pf.conf, "-e", kv], check=True)
        subprocess.run([POSTFIX_BIN, "-c", pf.conf, "reload"], check=True, capture_output=True)
        mark = b.log_mark()
        with smtplib.SMTP(HOST_PF, pf.port, timeout=timeout(10)) as c:
            assert c.sendmail("carol@pf.test", ["bob@b.test"],
                              b"From: <carol@pf.test>\r\nSubject: grey-postfix-1\r\n\r\n"
                              b"retried\r\n") == {}
        assert b.wait_log(r"client=127\.0\.0\.5 action=greylist net=127\.0\.0\.0/24 "
                          r"from=<carol@pf\.test> to=<bob@b\.test> result=new wait=2",
                          timeout(15), since=mark)
        inbox_with(b, "bob@b.test", "grey-postfix-1", seconds=30)
        wait_for(lambda: re.search(r"to=<bob@b\.test>.*status=sent", pf.log()), 10,
                 "status=sent in Postfix's log")
        log = pf.log()
        assert re.search(r"to=<bob@b\.test>.*status=deferred \(host 127\.0\.0\.3\[127\.0\.0\.3\] "
                         r"said: 451 4\.7\.1 <bob@b\.test>: Greylisted", log), log[-3000:]
        assert b.wait_log(r"client=127\.0\.0\.5 action=greylist net=127\.0\.0\.0/24 "
                          r"from=<carol@pf\.test> to=<bob@b\.test> result=pass after=[23]",
                          since=mark)
        assert len(b.find_messages("bob@b.test", "grey-postfix-1")) == 1
    finally:
        failed = request.session.testsfailed > 0
        if pf:
            pf.stop()
            pf.cleanup(failed)
        if b:
            b.stop()
            b.check_log()
            b.cleanup(keep=failed)
        dns.stop()
