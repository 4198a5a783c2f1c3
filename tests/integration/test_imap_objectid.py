"""IMAP OBJECTID (RFC 8474) and CREATE-SPECIAL-USE (RFC 6154 3), with imaplib.

The ids are JMAP's (docs/jmap.md "Mail"): a mailbox is M and its store id,
an Email E and its message file id, a thread T and its thread id; so the
same object has the same id over IMAP and JMAP.
"""

import imaplib
import re
import uuid

import pytest
from conftest import HOST, timeout
from test_jmap_mail import account, ok

from conftest import PASSWORD  # noqa: E402 (the JMAP helpers log in with it)
CONF = {"workers": 2, "allow_plaintext_loopback": "yes"}


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=CONF)


def new_user(srv):
    user = "o%s@example.test" % uuid.uuid4().hex[:10]
    srv.cli_ok("user", "add", user, "--password", PASSWORD)
    return user


def login(srv, user):
    m = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(20))
    m.login(user, PASSWORD)
    return m


def msg(subject, msgid, refs=None):
    h = "From: a@example.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\n" % (subject, msgid)
    if refs:
        h += "References: <%s>\r\nIn-Reply-To: <%s>\r\n" % (refs, refs)
    return (h + "\r\nbody\r\n").encode()


def test_mailboxid_create_select_status_rename(srv):
    user = new_user(srv)
    m = login(srv, user)
    try:
        typ, data = m._simple_command("CREATE", "Projects")
        assert typ == "OK"
        code = m.untagged_responses.pop("MAILBOXID", None)
        text = data[0].decode()
        mid = re.match(r"\[MAILBOXID \((M\d+)\)\] Create completed", text)
        assert mid, (text, code)
        mid = mid.group(1)
        typ, data = m.status("Projects", "(MAILBOXID MESSAGES)")
        assert data[0].decode() == '"Projects" (MAILBOXID (%s) MESSAGES 0)' % mid
        # a second CREATE of the name: NO, no id
        typ, data = m._simple_command("CREATE", "Projects")
        assert typ == "NO"
        # rename keeps the id (RFC 8474 4)
        assert m.rename("Projects", "Work")[0] == "OK"
        typ, data = m.status("Work", "(MAILBOXID)")
        assert data[0].decode() == '"Work" (MAILBOXID (%s))' % mid
        # SELECT: an untagged OK with the code
        typ, data = m.select("Work")
        assert typ == "OK"
        assert m.untagged_responses["MAILBOXID"] == [("(%s)" % mid).encode()]
        typ, data = m.status("INBOX", "(MAILBOXID)")
        inbox = re.search(rb"MAILBOXID \((M\d+)\)", data[0]).group(1).decode()
        assert inbox != mid
        # LIST-STATUS carries it too
        typ, data = m._simple_command("LIST", '""', "Work", "RETURN", "(STATUS (MAILBOXID))")
        assert m.untagged_responses["STATUS"] == [b'"Work" (MAILBOXID (%s))' % mid.encode()]
        # JMAP names the same mailbox with the same id
        got = ok(srv, user, "Mailbox/get", {"accountId": account(srv, user), "ids": [mid],
                                            "properties": ["name"]})
        assert got["list"] == [{"id": mid, "name": "Work"}]
    finally:
        m.logout()


def test_emailid_threadid_fetch_search_copy(srv):
    user = new_user(srv)
    m = login(srv, user)
    try:
        m.create("Other")
        m.append("INBOX", None, None, msg("A", "a.1@example.test"))
        m.append("INBOX", None, None, msg("Re: A", "a.2@example.test", "a.1@example.test"))
        m.append("INBOX", None, None, msg("C", "c.1@example.test"))
        m.select("INBOX")
        typ, data = m.fetch("1:3", "(EMAILID THREADID)")
        rows = [re.match(rb"(\d) \(EMAILID \((E[0-9a-v]{24})\) THREADID \((T\d+)\)\)", d)
                for d in data]
        assert all(rows), data
        e = [r.group(2).decode() for r in rows]
        t = [r.group(3).decode() for r in rows]
        assert len(set(e)) == 3
        assert t[0] == t[1] != t[2]
        # ids are stable across FETCHes
        typ, data2 = m.fetch("1:3", "(THREADID EMAILID)")
        again = [re.search(rb"EMAILID \((E\w+)\)", d).group(1).decode() for d in data2]
        assert again == e
        # SEARCH EMAILID / THREADID (RFC 8474 6)
        assert m.search(None, "EMAILID", e[1]) == ("OK", [b"2"])
        assert m.search(None, "THREADID", t[0]) == ("OK", [b"1 2"])
        assert m.search(None, "THREADID", "T999999999") == ("OK", [b""])
        assert m.search(None, "EMAILID", "Enothing") == ("OK", [b""])
        with pytest.raises(imaplib.IMAP4.error, match="Invalid object id"):
            m._simple_command("SEARCH", "EMAILID", '"a b"')
        # COPY keeps the EMAILID and THREADID (5.1)
        assert m.copy("2", "Other")[0] == "OK"
        m.select("Other")
        typ, data = m.fetch("1", "(EMAILID THREADID)")
        assert data[0] == ("1 (EMAILID (%s) THREADID (%s))" % (e[1], t[1])).encode()
    finally:
        m.logout()


def test_create_special_use(srv):
    user = new_user(srv)
    m = login(srv, user)
    try:
        typ, data = m._simple_command("CREATE", "Sent2", "(USE (\\Sent))")
        assert typ == "OK", data
        typ, data = m._simple_command("CREATE", "Arch", "(USE (\\Archive \\Junk))")
        assert typ == "OK", data
        typ, data = m.list('""', "*")
        lines = [d.decode() for d in data]
        assert any(re.search(r'\\Sent.*"Sent2"', ln) for ln in lines), lines
        assert any("\\Archive" in ln and "\\Junk" in ln and '"Arch"' in ln for ln in lines), lines
        typ, data = m._simple_command("CREATE", "Everything", "(USE (\\All))")
        assert typ == "NO" and data[0].startswith(b"[USEATTR]"), data
        with pytest.raises(imaplib.IMAP4.error, match="Unknown special-use attribute"):
            m._simple_command("CREATE", "X", "(USE (\\Bogus))")
        with pytest.raises(imaplib.IMAP4.error, match=r"CREATE takes a mailbox name"):
            m._simple_command("CREATE", "Y", "(FOO (\\Sent))")
        assert "Everything" not in " ".join(lines)
    finally:
        m.logout()
