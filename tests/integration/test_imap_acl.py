"""Shared mailboxes through the real protocol: ACL (RFC 4314: SETACL,
DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS, rights enforced), the Other Users
namespace (RFC 2342) and `tern acl`.  Two users' sessions at once: the
owner grants, the other sees the mailbox appear, uses it within its
rights and loses it when they are taken back.
"""

import imaplib

import pytest

from test_imap import MODULE_CONF, PASSWORD, append, client, new_user

MSG = b"From: a@example.test\r\nSubject: shared one\r\n\r\nHello, team.\r\n"


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def shared_box(srv):
    """alice with a mailbox Sales holding MSG (uid 1); bob; the name bob
    sees it under."""
    alice, bob = new_user(srv), new_user(srv)
    with client(srv, alice) as a:
        a.ok("CREATE Sales")
        assert append(a, "Sales", MSG) == 1
    return alice, bob, '"Other Users/%s/Sales"' % alice


def test_namespace_and_capability(srv):
    with client(srv, new_user(srv)) as c:
        assert c.cmd("NAMESPACE") == (
            [b'* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL'], b"OK Namespace completed")
        assert c.ok("CAPABILITY")[0].split()[-2:] == [b"ACL", b"LIST-MYRIGHTS"]


def test_read_only_share(srv):
    alice, bob, box = shared_box(srv)
    with client(srv, alice) as a, client(srv, bob) as b:
        # nothing shared yet: not listed, and not revealed
        assert b.ok('LIST "" "Other Users/%s/*"' % alice) == []
        assert b.cmd("SELECT " + box)[1] == b"NO [NONEXISTENT] Mailbox does not exist"
        assert a.cmd("SETACL Sales %s lr" % bob) == ([], b"OK Setacl completed")
        assert b.ok('LIST "" "Other Users/%s/*"' % alice) == [
            b'* LIST (\\HasNoChildren) "/" ' + box.encode()]
        lines, done = b.cmd("SELECT " + box)
        assert done == b"OK [READ-ONLY] SELECT completed"
        assert b"* 1 EXISTS" in lines
        assert b"* OK [PERMANENTFLAGS ()] Read-only mailbox" in lines
        assert b.cmd("FETCH 1 BODY[]") == (
            [b"* 1 FETCH (BODY[] {%d}\r\n" % len(MSG) + MSG + b")"],
            b"OK Fetch completed")
        assert b.cmd("STORE 1 +FLAGS (\\Flagged)")[1] == b"NO [NOPERM] Permission denied"
        assert b.cmd("STORE 1 +FLAGS (\\Seen)")[1] == b"NO [NOPERM] Permission denied"
        assert b.cmd("EXPUNGE")[1] == b"NO [NOPERM] Permission denied"
        # FETCH BODY[] without 's' did not set \Seen for the owner either
        a.ok("SELECT Sales")
        assert a.cmd("FETCH 1 FLAGS")[0] == [b"* 1 FETCH (FLAGS (\\Recent))"]
        assert b.cmd("STATUS %s (MESSAGES UNSEEN)" % box) == (
            [b"* STATUS " + box.encode() + b" (MESSAGES 1 UNSEEN 1)"],
            b"OK Status completed")
        # bob may not administer, delete, rename or create there
        assert b.cmd("SETACL %s anyone lr" % box)[1] == b"NO [NOPERM] Permission denied"
        assert b.cmd("GETACL %s" % box)[1] == b"NO [NOPERM] Permission denied"
        assert b.cmd("DELETE %s" % box)[1] == b"NO [NOPERM] Permission denied"
        assert b.cmd("RENAME %s Mine" % box)[1] == b"NO [NOPERM] Permission denied"
        assert b.cmd('CREATE "Other Users/%s/Sales/Sub"' % alice)[1] == \
            b"NO [NOPERM] Permission denied"
        assert b.cmd("COPY 1 INBOX")[1] == \
            b"NO [CANNOT] Copying between accounts is not supported"


def test_write_rights_and_idle_both_ways(srv):
    alice, bob, box = shared_box(srv)
    with client(srv, alice) as a, client(srv, bob) as b:
        a.ok("SETACL Sales %s lrswite" % bob)
        lines, done = b.cmd("SELECT " + box)
        assert done == b"OK [READ-WRITE] SELECT completed"
        assert (b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen \\*)]"
                b" Flags permitted") in lines
        a.ok("SELECT Sales")
        a.send("i IDLE\r\n")
        assert a.line() == b"+ idling"
        # \Recent as for EXAMINE: bob sees it, only the owner takes it
        assert b.cmd("STORE 1 +FLAGS (\\Flagged)") == (
            [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))"], b"OK Store completed")
        # the owner's IDLE wakes for bob's change
        assert a.line() == b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"
        b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert a.line() == b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Deleted \\Recent))"
        assert b.cmd("EXPUNGE") == ([b"* 1 EXPUNGE"], b"OK Expunge completed")
        assert a.line() == b"* 1 EXPUNGE"
        a.send("DONE\r\n")
        assert a.line() == b"i OK Idle completed"
        # and bob's IDLE wakes for the owner's append
        b.send("j IDLE\r\n")
        assert b.line() == b"+ idling"
        append(a, "Sales", MSG)
        assert b.line() == b"* 1 EXISTS"
        # \Recent: 0 if alice's session took it first
        assert b.line() in (b"* 0 RECENT", b"* 1 RECENT")
        b.send("DONE\r\n")
        assert b.line() == b"j OK Idle completed"


def test_append_needs_i(srv):
    alice, bob, box = shared_box(srv)
    with client(srv, alice) as a, client(srv, bob) as b:
        a.ok("SETACL Sales %s lr" % bob)
        tag = b.tag()
        b.send(("%s APPEND %s {%d+}\r\n" % (tag, box, len(MSG))).encode() + MSG + b"\r\n")
        assert b.until(tag) == ([], b"NO [NOPERM] Permission denied")
        a.ok("SETACL Sales %s +i" % bob)
        assert append(b, box, MSG) == 2
        a.ok("SELECT Sales")
        assert a.cmd("UID FETCH 2 BODY.PEEK[]")[0] == [
            b"* 2 FETCH (UID 2 BODY[] {%d}\r\n" % len(MSG) + MSG + b")"]


def test_acl_responses(srv):
    alice, bob, box = shared_box(srv)
    with client(srv, alice) as a, client(srv, bob) as b:
        assert a.cmd("SETACL Sales %s lrs" % bob) == ([], b"OK Setacl completed")
        a.ok("SETACL Sales anyone l")
        assert a.cmd("GETACL Sales") == (
            [b'* ACL "Sales" "%s" lrswipkxtea "anyone" l "%s" lrs'
             % (alice.encode(), bob.encode())],
            b"OK Getacl completed")
        assert a.cmd("LISTRIGHTS Sales %s" % bob) == (
            [b'* LISTRIGHTS "Sales" "%s" "" l r s w i p t e' % bob.encode()],
            b"OK Listrights completed")
        assert a.cmd("LISTRIGHTS Sales %s" % alice) == (
            [b'* LISTRIGHTS "Sales" "%s" lrswipkxtea' % alice.encode()],
            b"OK Listrights completed")
        assert a.cmd("MYRIGHTS Sales") == ([b'* MYRIGHTS "Sales" lrswipkxtea'],
                                           b"OK Myrights completed")
        assert b.cmd("MYRIGHTS " + box) == ([b"* MYRIGHTS " + box.encode() + b" lrs"],
                                            b"OK Myrights completed")
        # +/- change the rights; k x a are the owner's (LISTRIGHTS): dropped
        a.ok("SETACL Sales %s +wkxa" % bob)
        a.ok("SETACL Sales %s -s" % bob)
        assert b.ok("MYRIGHTS " + box) == [b"* MYRIGHTS " + box.encode() + b" lrw"]
        # the obsolete 'd' is "xte" (RFC 4314 2.1.1): 't' and 'e' here
        a.ok("SETACL Sales %s ld" % bob)
        assert b.ok("MYRIGHTS " + box) == [b"* MYRIGHTS " + box.encode() + b" lte"]
        # refusals
        assert a.cmd("SETACL Sales %s lz" % bob) == ([], b"BAD Unknown right")
        assert a.cmd("SETACL Sales -%s l" % bob) == (
            [], b"NO [CANNOT] Negative rights are not supported")
        assert a.cmd("SETACL Sales nobody@example.test l") == ([], b"NO [CANNOT] No such user")
        assert a.cmd("SETACL Sales %s l" % alice) == (
            [], b"NO [CANNOT] The owner always has all rights")
        assert a.cmd("GETACL Nope") == ([], b"NO [NONEXISTENT] Mailbox does not exist")


def test_deleteacl_and_rights_removed_mid_session(srv):
    alice, bob, box = shared_box(srv)
    with client(srv, alice) as a, client(srv, bob) as b:
        a.ok("SETACL Sales %s lr" % bob)
        b.ok("SELECT " + box)
        assert b.cmd("DELETEACL %s %s" % (box, bob))[1] == b"NO [NOPERM] Permission denied"
        assert a.cmd("DELETEACL Sales %s" % bob) == ([], b"OK Deleteacl completed")
        # the selected mailbox can no longer be read
        assert b.cmd("FETCH 1 FLAGS") == ([], b"NO [NOPERM] Permission denied")
        b.ok("UNSELECT")
        assert b.ok('LIST "" "Other Users/%s/*"' % alice) == []
        assert b.cmd("SELECT " + box)[1] == b"NO [NONEXISTENT] Mailbox does not exist"
        assert b.cmd("MYRIGHTS " + box)[1] == b"NO [NONEXISTENT] Mailbox does not exist"
        assert a.ok("GETACL Sales") == [b'* ACL "Sales" "%s" lrswipkxtea' % alice.encode()]


def test_anyone_and_deleted_mailbox(srv):
    alice, bob, box = shared_box(srv)
    with client(srv, alice) as a, client(srv, bob) as b:
        a.ok("SETACL Sales anyone lr")
        assert b.cmd("MYRIGHTS " + box)[0] == [b"* MYRIGHTS " + box.encode() + b" lr"]
        a.ok("DELETE Sales")
        a.ok("CREATE Sales")  # a new mailbox: not shared
        assert b.cmd("SELECT " + box)[1] == b"NO [NONEXISTENT] Mailbox does not exist"
        assert a.ok("GETACL Sales") == [b'* ACL "Sales" "%s" lrswipkxtea' % alice.encode()]


def test_imaplib_two_users(srv):
    alice, bob, box = shared_box(srv)
    ma = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    mb = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    try:
        ma.login(alice, PASSWORD)
        mb.login(bob, PASSWORD)
        assert ma.setacl("Sales", bob, "lrs") == ("OK", [b"Setacl completed"])
        typ, data = mb.list('""', '"Other Users/%s/*"' % alice)
        assert data == [b'(\\HasNoChildren) "/" ' + box.encode()]
        assert mb.select(box, readonly=False)[0] == "OK"
        typ, data = mb.fetch("1", "(BODY[])")
        assert data[0][1] == MSG
        ma.select("Sales")
        assert ma.fetch("1", "(FLAGS)")[1] == [b"1 (FLAGS (\\Seen \\Recent))"]
        assert mb.store("1", "+FLAGS", "\\Answered")[0] == "NO"
        assert ma.myrights("Sales") == ("OK", [b'"Sales" lrswipkxtea'])
    finally:
        ma.logout()
        mb.logout()


def test_cli(srv):
    alice, bob, box = shared_box(srv)
    out = srv.cli_ok("acl", "set", alice, "Sales", bob, "rl")
    assert out.stdout.decode() == '%s "Sales": %s lr\n' % (alice, bob)
    out = srv.cli_ok("acl", "list", alice, "Sales")
    assert out.stdout.decode() == "%s lrswipkxtea\n%s lr\n" % (alice, bob)
    with client(srv, bob) as b:
        assert b.ok("MYRIGHTS " + box) == [b"* MYRIGHTS " + box.encode() + b" lr"]
        bad = srv.cli("acl", "set", alice, "Sales", bob, "lra")
        assert bad.returncode == 1
        assert b"right 'a' is the owner's only" in bad.stderr
        bad = srv.cli("acl", "set", alice, "Sales", "nobody@example.test", "l")
        assert bad.returncode == 1 and b"no such user" in bad.stderr
        out = srv.cli_ok("acl", "remove", alice, "Sales", bob)
        assert out.stdout.decode() == '%s "Sales": %s removed\n' % (alice, bob)
        assert b.cmd("MYRIGHTS " + box)[1] == b"NO [NONEXISTENT] Mailbox does not exist"
    assert srv.cli_ok("acl", "list", alice, "Sales").stdout.decode() == "%s lrswipkxtea\n" % alice


def test_removed_user_leaves_no_rights(srv):
    """A new account with a removed user's address inherits nothing."""
    alice, bob, box = shared_box(srv)
    srv.cli_ok("acl", "set", alice, "Sales", bob, "lr")
    srv.cli_ok("user", "remove", bob)
    assert srv.cli_ok("acl", "list", alice, "Sales").stdout.decode() == \
        "%s lrswipkxtea\n" % alice
    srv.cli_ok("user", "add", bob, "--password", PASSWORD)
    with client(srv, bob) as b:
        assert b.ok('LIST "" "Other Users/%s/*"' % alice) == []
        assert b.cmd("SELECT " + box)[1] == b"NO [NONEXISTENT] Mailbox does not exist"


def test_list_myrights(srv):
    """RFC 8440: LIST ... RETURN (MYRIGHTS) adds a MYRIGHTS line after each
    mailbox's LIST line."""
    alice, bob, box = shared_box(srv)
    with client(srv, alice) as a, client(srv, bob) as b:
        a.ok("SETACL Sales %s l" % bob)
        # LIST-STATUS only with 'r'
        assert b.cmd('LIST "" "Other Users/%s/*" RETURN (STATUS (MESSAGES))' % alice) == (
            [b'* LIST (\\HasNoChildren) "/" ' + box.encode()], b"OK List completed")
        a.ok("SETACL Sales %s lrs" % bob)
        assert b.cmd('LIST "" "Other Users/%s/*" RETURN (STATUS (MESSAGES))' % alice) == (
            [b'* LIST (\\HasNoChildren) "/" ' + box.encode(),
             b"* STATUS " + box.encode() + b" (MESSAGES 1)"], b"OK List completed")
        assert b.cmd('LIST "" "Other Users/%s/*" RETURN (MYRIGHTS)' % alice) == (
            [b'* LIST (\\HasNoChildren) "/" ' + box.encode(),
             b"* MYRIGHTS " + box.encode() + b" lrs"],
            b"OK List completed")
        assert a.cmd('LIST "" "Sales" RETURN (MYRIGHTS STATUS (MESSAGES))') == (
            [b'* LIST (\\HasNoChildren) "/" "Sales"',
             b'* STATUS "Sales" (MESSAGES 1)',
             b'* MYRIGHTS "Sales" lrswipkxtea'],
            b"OK List completed")


def test_search_and_examine_shared(srv):
    alice, bob, box = shared_box(srv)
    with client(srv, alice) as a, client(srv, bob) as b:
        append(a, "Sales", b"Subject: other\r\n\r\nNothing here.\r\n")
        a.ok("SETACL Sales %s lrswite" % bob)
        # EXAMINE is read-only whatever the rights
        assert b.cmd("EXAMINE " + box)[1] == b"OK [READ-ONLY] EXAMINE completed"
        assert b.cmd("STORE 1 +FLAGS (\\Seen)")[1] == b"NO [READ-ONLY] Mailbox is read-only"
        assert b.cmd("SEARCH TEXT team") == ([b"* SEARCH 1"], b"OK Search completed")
        assert b.cmd("UID SEARCH SUBJECT other") == ([b"* SEARCH 2"], b"OK Search completed")
        assert b.cmd("SEARCH UNSEEN") == ([b"* SEARCH 1 2"], b"OK Search completed")
