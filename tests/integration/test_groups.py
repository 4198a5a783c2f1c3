"""Group addresses (issue 17 item 7, docs/admin.md "Groups"): `tern group`
add/list/show/set/remove, the posting policy at RCPT TO (port 25: the
envelope sender; submission: the authenticated user), the List-Id and
Reply-To fields in every member's copy, a member leaving, a remote member
queued, and a Sieve redirect to a group.  The resolver is a dead port, so
remote copies stay in the queue to be looked at."""

import os
import smtplib
import ssl
import subprocess
import uuid

import pytest

from conftest import HOST, PASSWORD, timeout

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.org"
CONF = {"dns.resolver": "127.0.0.1:9", "queue.timeout.dns": "30s",
        "mailauth.timeout": "1s", "allow_plaintext_loopback": "yes"}


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def new_group(srv, *args):
    """A fresh group of example.test (its address), made with `group add`."""
    g = "g%s@example.test" % uuid.uuid4().hex[:8]
    srv.cli_ok("group", "add", *args[:-1], g, *args[-1])
    return g


def message(subject, extra=""):
    return ("From: Writer <writer@remote.example>\r\nTo: list\r\nSubject: %s\r\n%s"
            "Message-ID: <%s@remote.example>\r\n\r\nHello.\r\n"
            % (subject, extra, uuid.uuid4().hex)).encode()


def smtp25(srv, sender, rcpts, msg):
    """Sends on port 25; returns {rcpt: (code, text)} of the RCPT replies
    and the DATA code (None when no recipient was accepted)."""
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(10)) as c:
        c.ehlo("client.example")
        assert c.mail(sender)[0] == 250
        got = {r: c.rcpt(r) for r in rcpts}
        ok = [r for r in rcpts if got[r][0] == 250]
        code = c.data(msg)[0] if ok else None
        return {r: (cd, t.decode()) for r, (cd, t) in got.items()}, code


def submit(srv, user, rcpts, msg):
    port = int(srv.read_config()["submission.listen"].rsplit(":", 1)[1])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(HOST, port, timeout=timeout(10)) as c:
        c.ehlo()
        c.starttls(context=ctx)
        c.ehlo()
        c.login(user, PASSWORD)
        assert c.mail(user)[0] == 250
        got = {r: c.rcpt(r) for r in rcpts}
        ok = [r for r in rcpts if got[r][0] == 250]
        code = c.data(msg)[0] if ok else None
        return {r: (cd, t.decode()) for r, (cd, t) in got.items()}, code


def copy_of(srv, user, subject):
    return srv.fetch_one(user, subject)


def after_trace(stored):
    """The stored message after our trace fields (Return-Path,
    Authentication-Results, Received, each maybe folded)."""
    pos = 0
    while True:
        line_end = stored.index(b"\r\n", pos) + 2
        while stored[line_end:line_end + 1] in (b" ", b"\t"):
            line_end = stored.index(b"\r\n", line_end) + 2
        name = stored[pos:stored.index(b":", pos)]
        if name not in (b"Return-Path", b"Authentication-Results", b"Received"):
            return stored[pos:]
        pos = line_end


# --------------------------------------------------------------- the CLI

def test_cli_add_list_show_set_remove(srv):
    g = "sales@example.test"
    r = srv.cli_ok("group", "add", "--policy", "members", "--reply-to", "group", g, ALICE, BOB,
                   "Ext@Remote.example")
    assert r.stdout.decode() == (
        "group sales@example.test: policy members, reply-to group, "
        "List-Id <sales.example.test>\n"
        "member alice@example.test added\nmember bob@example.test added\n"
        "member Ext@remote.example added\n")
    lines = srv.cli_ok("group", "list", "example.test").stdout.decode().splitlines()
    assert "sales@example.test\tmembers\tgroup\t3" in lines
    assert srv.cli_ok("group", "show", g).stdout.decode() == (
        "group:    sales@example.test\npolicy:   members\nreply-to: group\n"
        "list-id:  <sales.example.test>\nmembers:  3\n"
        "  Ext@remote.example\n  alice@example.test\n  bob@example.test\n")
    assert srv.cli_ok("group", "set", g, "--policy", "domains").stdout.decode() == \
        "group sales@example.test: policy domains, reply-to group\n"
    # the members are the alias's targets
    assert "sales@example.test\tbob@example.test" in srv.cli_ok("alias", "list").stdout.decode()
    assert srv.cli_ok("group", "remove", g, BOB).stdout.decode() == \
        "member bob@example.test left sales@example.test\n"
    assert "members:  2\n" in srv.cli_ok("group", "show", g).stdout.decode()
    assert srv.cli_ok("group", "remove", g).stdout.decode() == \
        "group sales@example.test removed\n"
    assert "sales@" not in srv.cli_ok("group", "list").stdout.decode()
    assert "sales@" not in srv.cli_ok("alias", "list").stdout.decode()


def test_cli_last_member_leaving_removes_the_group(srv):
    g = new_group(srv, [ALICE])
    assert srv.cli_ok("group", "remove", g, ALICE).stdout.decode() == (
        "member alice@example.test left %s\ngroup %s removed: its last member left\n" % (g, g))
    r = srv.cli("group", "show", g)
    assert r.returncode == 1 and r.stderr.decode() == "tern: group show: no such group %s\n" % g


def test_cli_errors(srv):
    def fails(code, *args):
        r = srv.cli("group", *args)
        assert r.returncode == code, (args, r)
        return r.stderr.decode()

    # a local member must exist, unless --force
    err = fails(2, "add", "x1@example.test", "nobody@example.test")
    assert "nobody@example.test is in our domain example.test but is no user or alias" in err
    assert srv.cli("group", "show", "x1@example.test").returncode == 1  # nothing made
    srv.cli_ok("group", "add", "--force", "x1@example.test", "nobody@example.test")
    err = fails(2, "add", "--policy", "everyone", "x2@example.test", ALICE)
    assert "--policy is anyone, domains or members, not \"everyone\"" in err
    err = fails(2, "add", "--reply-to", "list", "x2@example.test", ALICE)
    assert "--reply-to is none, group or sender, not \"list\"" in err
    assert "nothing to change" in fails(2, "set", "x1@example.test")
    assert fails(1, "add", ALICE, BOB) == \
        "tern: group add: alice@example.test is a user; a group needs an address of its own\n"
    srv.cli_ok("alias", "add", "plain@example.test", ALICE)
    assert "plain@example.test is an alias; remove it first" in \
        fails(1, "add", "plain@example.test", BOB)
    assert fails(1, "add", "x1@example.test", "nobody@example.test") == \
        "tern: group add: nobody@example.test is already a member of x1@example.test\n"
    assert fails(1, "remove", "x1@example.test", BOB) == \
        "tern: group remove: bob@example.test is not a member of x1@example.test\n"
    assert "domain unknown.example is not one of ours" in \
        fails(1, "add", "g@unknown.example", ALICE)


# ------------------------------------------------------- posting policy

def test_members_only_on_port_25(srv):
    g = new_group(srv, "--policy", "members", [ALICE, BOB])
    subject = "members-%s" % uuid.uuid4().hex
    got, code = smtp25(srv, "writer@remote.example", [g], message(subject))
    assert got[g] == (550, "5.7.1 Only members may post to %s" % g) and code is None
    got, code = smtp25(srv, "", [g], message(subject))  # the null sender is no member
    assert got[g][0] == 550
    msg = message(subject)
    got, code = smtp25(srv, "Bob@example.test", [g], msg)  # case does not matter
    assert got[g][0] == 250 and code == 250
    for user in (ALICE, BOB):
        assert after_trace(copy_of(srv, user, subject)) == \
            b"List-Id: <%s>\r\n" % g.replace("@", ".").encode() + msg


def test_plus_address_of_a_group_is_no_way_around(srv):
    g = new_group(srv, "--policy", "members", [ALICE])
    plus = g.replace("@", "+x@")
    got, _ = smtp25(srv, "writer@remote.example", [plus], message("plus"))
    assert got[plus] == (550, "5.7.1 Only members may post to %s" % g)


def test_domains_policy(srv):
    g = new_group(srv, "--policy", "domains", [ALICE])
    subject = "domains-%s" % uuid.uuid4().hex
    got, _ = smtp25(srv, "writer@remote.example", [g], message(subject))
    assert got[g] == (550, "5.7.1 Only senders of our domains may post to %s" % g)
    got, code = smtp25(srv, CAROL, [g], message(subject))  # example.org is ours
    assert got[g][0] == 250 and code == 250
    assert copy_of(srv, ALICE, subject)


def test_members_only_on_submission_counts_the_user(srv):
    g = new_group(srv, "--policy", "members", [ALICE, BOB])
    subject = "sub-%s" % uuid.uuid4().hex
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n"
           "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhi\r\n"
           % (CAROL, g, subject, subject)).encode()
    got, _ = submit(srv, CAROL, [g], msg)
    assert got[g] == (550, "5.7.1 Only members may post to %s" % g)
    msg = msg.replace(CAROL.encode(), ALICE.encode())
    got, code = submit(srv, ALICE, [g], msg)
    assert got[g][0] == 250 and code == 250
    assert after_trace(copy_of(srv, BOB, subject)) == \
        b"List-Id: <%s>\r\n" % g.replace("@", ".").encode() + msg


def test_one_group_per_transaction(srv):
    g1 = new_group(srv, [ALICE])
    g2 = new_group(srv, [BOB])
    subject = "two-%s" % uuid.uuid4().hex
    got, code = smtp25(srv, "writer@remote.example", [g1, g2, CAROL], message(subject))
    assert got[g1][0] == 250 and got[CAROL][0] == 250 and code == 250
    assert got[g2] == (452, "4.5.3 Error: one group per message; send to %s separately" % g2)
    assert srv.find_messages(BOB, subject) == []


# ------------------------------------------------------ List-Id, Reply-To

@pytest.mark.parametrize("policy", ["none", "group", "sender"])
def test_reply_to(srv, policy):
    g = new_group(srv, "--reply-to", policy, [ALICE])
    lid = b"List-Id: <%s>\r\n" % g.replace("@", ".").encode()
    # a message without Reply-To
    s1 = "rt1-%s-%s" % (policy, uuid.uuid4().hex)
    m1 = message(s1)
    assert smtp25(srv, "writer@remote.example", [g], m1)[1] == 250
    want = {"none": lid, "group": lid + b"Reply-To: <%s>\r\n" % g.encode(),
            "sender": lid + b"Reply-To: Writer <writer@remote.example>\r\n"}[policy]
    assert after_trace(copy_of(srv, ALICE, s1)) == want + m1
    # one with a Reply-To and a List-Id of another list: the List-Id is
    # replaced, the Reply-To only by "group"
    s2 = "rt2-%s-%s" % (policy, uuid.uuid4().hex)
    m2 = message(s2, "Reply-To: <other@remote.example>\r\nList-Id: <up.remote.example>\r\n")
    assert smtp25(srv, "writer@remote.example", [g], m2)[1] == 250
    kept = m2.replace(b"List-Id: <up.remote.example>\r\n", b"")
    if policy == "group":
        assert after_trace(copy_of(srv, ALICE, s2)) == \
            lid + b"Reply-To: <%s>\r\n" % g.encode() + \
            kept.replace(b"Reply-To: <other@remote.example>\r\n", b"")
    else:
        assert after_trace(copy_of(srv, ALICE, s2)) == lid + kept


# ---------------------------------------------- leaving, remote, Sieve

def test_member_leaving_gets_no_more_mail(srv):
    g = new_group(srv, [ALICE, BOB])
    srv.cli_ok("group", "remove", g, BOB)
    subject = "left-%s" % uuid.uuid4().hex
    assert smtp25(srv, "writer@remote.example", [g], message(subject))[1] == 250
    assert copy_of(srv, ALICE, subject)
    assert srv.find_messages(BOB, subject) == []


def test_remote_member_is_queued_with_the_list_fields(srv):
    g = new_group(srv, "--reply-to", "group", [ALICE, "far@remote.example"])
    subject = "remote-%s" % uuid.uuid4().hex
    assert smtp25(srv, "writer@remote.example", [g], message(subject))[1] == 250
    out = srv.cli_ok("queue", "list").stdout.decode()
    assert any("far@remote.example" in l and "SRS0=" in l for l in out.splitlines()), out
    files = [f for f in srv.files_under("queue") if subject.encode() in open(f, "rb").read()]
    assert len(files) == 1, files
    data = open(files[0], "rb").read()
    assert b"\r\nList-Id: <%s>\r\nReply-To: <%s>\r\n" % (g.replace("@", ".").encode(),
                                                       g.encode()) in data
    assert after_trace(copy_of(srv, ALICE, subject)).startswith(b"List-Id: ")


def test_sieve_redirect_to_a_group(srv):
    g = new_group(srv, [ALICE, CAROL])
    srv.cli_ok("sieve", "put", "--activate", BOB, "main", "-",
               input=('redirect "%s";\r\n' % g).encode())
    try:
        subject = "redirect-%s" % uuid.uuid4().hex
        assert smtp25(srv, "writer@remote.example", [BOB], message(subject))[1] == 250
        assert srv.wait_log(r"action=redirect rcpt=<%s> result=sent" % g)
        for user in (ALICE, CAROL):
            assert copy_of(srv, user, subject)
        assert srv.find_messages(BOB, subject) == []
    finally:
        srv.cli_ok("sieve", "deactivate", BOB)
