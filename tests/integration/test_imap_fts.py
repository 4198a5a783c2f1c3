"""The full-text index (docs/imap.md "Full-text index") through the real
protocol: SEARCH BODY and TEXT answered by imaplib over messages delivered
by smtplib, appended and copied by imaplib, after EXPUNGE, after `tern index
rebuild`; a message that cannot be indexed (searched in its file); a 10 MB
message (indexed in part); and a differential test: on a varied corpus the
answers with the index, without it (every file read) and with a tiny index
bound (every message indexed in part) are the same for many needles.
"""

import base64
import imaplib
import os
import quopri
import random
import re
import smtplib
import sqlite3
import time

import pytest

from conftest import HOST, timeout
from test_imap import MODULE_CONF, PASSWORD, client, new_user

SENDER = "sender@client.example"


def imap(srv, user):
    c = imaplib.IMAP4(HOST, srv.imap_port, timeout=timeout(20))
    c.login(user, PASSWORD)
    return c


def search(c, key, needle, uid=False):
    """SEARCH CHARSET UTF-8 key {literal}; the answer as a list of ints."""
    c.literal = needle.encode("utf-8") if isinstance(needle, str) else needle
    if uid:
        typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", key)
    else:
        typ, data = c.search("UTF-8", key)
    assert typ == "OK", (typ, data)
    return [int(x) for x in data[0].split()]


def smtp_send(srv, rcpt, msg):
    if isinstance(msg, str):
        msg = msg.encode("utf-8")
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=timeout(20)) as s:
        s.sendmail(SENDER, [rcpt], msg)


def append(c, mbox, msg):
    if isinstance(msg, str):
        msg = msg.encode("utf-8")
    typ, data = c.append(mbox, None, None, msg)
    assert typ == "OK", (typ, data)


def status(srv, user):
    out = srv.cli_ok("index", "status", user).stdout.decode()
    counts = {}
    for key in ("indexed", "indexed in part", "not indexable", "not indexed"):
        m = re.search(r"^%s: (\d+)" % key, out, re.M)
        assert m, out
        counts[key] = int(m.group(1))
    m = re.search(r"^messages: (\d+) \((\d+) message file", out, re.M)
    counts["messages"], counts["files"] = int(m.group(1)), int(m.group(2))
    return counts


def settled(srv, user, deadline=None):
    """status() once the background indexer has no file of user's left
    (docs/imap.md "Full-text index": rows are written after the commit);
    the last status if that does not happen within the timeout."""
    end = time.monotonic() + (deadline or timeout(20))
    while True:
        st = status(srv, user)
        if st["not indexed"] == 0 or time.monotonic() > end:
            return st
        time.sleep(0.05)


def plain(subject, body, extra=""):
    return ("From: Sender <%s>\r\nTo: rcpt@example.test\r\nSubject: %s\r\n%s"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n%s" % (SENDER, subject, extra, body))


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


def test_delivered_appended_copied_expunged(srv):
    user = new_user(srv)
    smtp_send(srv, user, plain("first", "The zebra crossing is closed.\r\n"))
    smtp_send(srv, user, plain("second", "Nothing to see, only ZEBRAS here.\r\n"))
    c = imap(srv, user)
    append(c, "INBOX", plain("third", "An appended note about Ärger and zebra.\r\n"))
    assert settled(srv, user)["indexed"] == 3      # the searches below ask the index
    c.select("INBOX")
    assert search(c, "BODY", "zebra") == [1, 2, 3]
    assert search(c, "BODY", "ärger") == [3]
    assert search(c, "BODY", "crossing is") == [1]
    assert search(c, "BODY", "second") == []        # a header, not the body
    assert search(c, "TEXT", "second") == [2]
    assert search(c, "TEXT", "sender@client") == [1, 2, 3]
    assert settled(srv, user) == {"indexed": 3, "indexed in part": 0, "not indexable": 0,
                                 "not indexed": 0, "messages": 3, "files": 3}
    # COPY: the copy shares the file and its index row
    typ, data = c.copy("1:2", "Archive")
    assert typ == "OK", data
    assert status(srv, user)["files"] == 3
    assert status(srv, user)["messages"] == 5
    c.select("Archive")
    assert search(c, "BODY", "zebras") == [2]
    assert search(c, "BODY", "zebra", uid=True) == [1, 2]
    # EXPUNGE of one copy keeps the row; of the last one drops it
    c.select("INBOX")
    c.store("2", "+FLAGS.SILENT", "(\\Deleted)")
    c.expunge()
    assert search(c, "BODY", "zebras") == []
    assert search(c, "BODY", "zebra") == [1, 2]
    assert status(srv, user)["indexed"] == 3
    c.select("Archive")
    c.store("1:2", "+FLAGS.SILENT", "(\\Deleted)")
    c.expunge()
    assert status(srv, user) == {"indexed": 2, "indexed in part": 0, "not indexable": 0,
                                 "not indexed": 0, "messages": 2, "files": 2}
    c.logout()


def test_attachment_names(srv):
    """BODY matches attachment file names (RFC 2231 and RFC 2047 values
    decoded), the same with the index and without it."""
    user = new_user(srv)
    c = imap(srv, user)
    msg = ("From: a@b.example\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=xx\r\n\r\n"
           "--xx\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
           "--xx\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;"
           " filename*=UTF-8''Quartalsbericht-%C3%84rger.pdf\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
           "--xx\r\nContent-Type: text/csv; name=\"=?UTF-8?B?w6l0w6kuY3N2?=\"\r\n\r\na,b\r\n"
           "--xx--\r\n")
    append(c, "INBOX", msg)
    assert settled(srv, user)["indexed"] == 1
    c.select("INBOX")
    assert search(c, "BODY", "ärger.pdf") == [1]
    assert search(c, "BODY", "ÉTÉ.CSV") == [1]
    assert search(c, "BODY", "%C3") == []
    c.logout()


def test_index_answers_without_the_file(srv):
    """An indexed message is answered from its row: with its file changed
    behind the store's back, SEARCH still answers what was indexed (a scan
    would not); after `tern index rebuild` it answers the new file."""
    user = new_user(srv)
    c = imap(srv, user)
    append(c, "INBOX", plain("x", "original walrus text\r\n"))
    c.select("INBOX")
    assert search(c, "BODY", "walrus") == [1]
    assert settled(srv, user)["indexed"] == 1
    files = srv.message_files_with("original walrus")
    assert len(files) == 1
    with open(files[0], "rb") as f:
        data = f.read()
    with open(files[0], "wb") as f:
        f.write(data.replace(b"walrus", b"narwal"))
    assert search(c, "BODY", "walrus") == [1]
    assert search(c, "BODY", "narwal") == []
    out = srv.cli_ok("index", "rebuild", user).stdout.decode()
    assert out.splitlines()[0] == "%s: 1 message file indexed" % user
    assert search(c, "BODY", "walrus") == []
    assert search(c, "BODY", "narwal") == [1]
    c.logout()


def test_unindexable_message_is_scanned(srv):
    """Body text that is not UTF-8 (an unknown charset, passed as it is)
    cannot be indexed: the message is delivered, the log says so, status
    counts it, and SEARCH reads its file."""
    user = new_user(srv)
    mark = srv.log_mark()
    raw = (b"From: a@b.example\r\nTo: x@example.test\r\nSubject: bytes\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-unknown\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\nraw \xe9t\xe9 walrus bytes\r\n")
    smtp_send(srv, user, raw)
    lines = srv.wait_log(r"action=index .*result=unindexed reason=\"the decoded text is not UTF-8\"",
                         since=mark)
    assert lines, srv.log()[mark:]
    c = imap(srv, user)
    c.select("INBOX")
    assert search(c, "BODY", "walrus bytes") == [1]
    assert search(c, "BODY", b"\xe9t\xe9") == [1]
    assert search(c, "BODY", "nothing") == []
    assert settled(srv, user)["not indexable"] == 1
    c.logout()


def test_index_error_never_refuses_mail(srv):
    """An SQLite error while indexing (here a trigger the test adds, which
    makes every index row fail) loses nothing: SMTP and APPEND succeed,
    the log says so, the messages are searched in their files, and a
    rebuild indexes them once the error is gone."""
    user = new_user(srv)
    c = imap(srv, user)
    append(c, "INBOX", plain("a", "first walrus\r\n"))
    assert settled(srv, user)["indexed"] == 1
    [f] = srv.message_files_with("first walrus")
    db = os.path.join(os.path.dirname(os.path.dirname(f)), "account.db")
    con = sqlite3.connect(db, timeout=10)
    con.execute("CREATE TRIGGER fts_broken BEFORE INSERT ON fts_docs BEGIN"
                " SELECT RAISE(ABORT, 'index broken for the test'); END")
    con.commit()
    mark = srv.log_mark()
    smtp_send(srv, user, plain("b", "second walrus\r\n"))
    append(c, "INBOX", plain("c", "third walrus\r\n"))
    # written in the background: each pending file is tried again when the
    # account changes, so the first file may be logged twice
    lines = srv.wait_log(r"action=index .*result=unindexed error=.*index broken for the test",
                         since=mark, count=2)
    assert len(lines) >= 2, srv.log()[mark:]
    srv.wait_log(r"action=index account=\d+ files=0 failed=2", since=mark)
    c.select("INBOX")
    assert search(c, "BODY", "walrus") == [1, 2, 3]
    assert search(c, "BODY", "third") == [3]
    st = status(srv, user)
    assert (st["indexed"], st["not indexed"], st["messages"]) == (1, 2, 3), st
    con.execute("DROP TRIGGER fts_broken")
    con.commit()
    con.close()
    srv.cli_ok("index", "rebuild", user)
    st = status(srv, user)
    assert (st["indexed"], st["not indexed"]) == (3, 0), st
    assert search(c, "BODY", "walrus") == [1, 2, 3]
    assert search(c, "BODY", "second") == [2]
    c.logout()


def test_large_message_indexed_in_part(srv):
    """A 10 MB message: its first search.index_max_text octets are indexed,
    a miss is checked in the file, which SEARCH reads up to 4 MiB of text
    (MIME_SEARCH_BODY_MAX), as without the index."""
    user = new_user(srv)
    line = "filler text line of the large message\r\n"
    n = 10 * 1024 * 1024 // len(line)
    body = ["startmarker here\r\n"]
    for i in range(n):
        if i == n // 5:
            body.append("middlemarker here\r\n")   # about 2 MB in
        body.append(line)
    body.append("endmarker here\r\n")               # past 4 MiB
    msg = plain("big", "".join(body))
    assert len(msg) > 10 * 1024 * 1024
    smtp_send(srv, user, msg)
    c = imap(srv, user)
    c.select("INBOX")
    assert search(c, "BODY", "startmarker") == [1]
    assert search(c, "BODY", "middlemarker") == [1]
    assert search(c, "BODY", "endmarker") == []
    assert search(c, "TEXT", "big") == [1]
    st = settled(srv, user)
    assert st["indexed in part"] == 1 and st["indexed"] == 0, st
    c.logout()


def test_short_and_odd_needles(srv):
    """Needles under 3 characters are answered by reading the files; a
    needle with double quotes and one that is FTS5 syntax are plain text."""
    user = new_user(srv)
    c = imap(srv, user)
    append(c, "INBOX", plain("q", 'He said "hi" OR NOT near(x) and left.\r\n'))
    append(c, "INBOX", plain("r", "ab\r\n"))
    c.select("INBOX")
    assert search(c, "BODY", "ab") == [2]
    assert search(c, "BODY", "i") == [1]
    assert search(c, "BODY", '"hi"') == [1]
    assert search(c, "BODY", 'said "') == [1]
    assert search(c, "BODY", "OR NOT") == [1]
    assert search(c, "BODY", "near(x)") == [1]
    assert search(c, "BODY", "*") == []
    c.literal = None
    typ, data = c.search(None, "NOT", "BODY", "left")
    assert (typ, data) == ("OK", [b"2"])
    c.logout()


def test_rebuild_and_status_cli(srv):
    user = new_user(srv)
    r = srv.cli("index", "status", "nobody@example.test")
    assert r.returncode == 1 and "no such user nobody@example.test" in r.stderr.decode(), r
    r = srv.cli("index", "rebuild", user, "NoSuchBox")
    assert r.returncode == 1 and 'has no mailbox "NoSuchBox"' in r.stderr.decode(), r
    r = srv.cli("index", "frobnicate", user)
    assert r.returncode == 2, r
    c = imap(srv, user)
    append(c, "INBOX", plain("a", "alpha\r\n"))
    append(c, "Archive", plain("b", "beta\r\n"))
    assert settled(srv, user)["indexed"] == 2
    out = srv.cli_ok("index", "rebuild", user, "Archive").stdout.decode()
    assert out.splitlines()[0] == '%s: 1 message file indexed in "Archive"' % user
    assert status(srv, user)["indexed"] == 2
    c.logout()


# ------------------------------------------------------------ differential

def qp(text):
    return quopri.encodestring(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


PHRASES = ["Grüße aus München", "ΑΘΉΝΑ και Θεσσαλονίκη", "Москва и ПИТЕР", "straße STRASSE",
           "naïve café résumé", "quarterly REPORT due", "<b>bold</b> &amp; entity",
           "日本語のテキスト", "emoji 🎉 party", "tab\tseparated  spaces", 'quote "marks" here',
           "Ǆemo ǅigraph", "ÀÉÎÕÜ upper latin", "ſtrange long s", "İstanbul ıı"]


def corpus(rng):
    """Varied messages: plain, QP, base64, latin-1, encoded words, HTML,
    multipart/alternative, attachments with names, nested message/rfc822."""
    msgs = []
    for i in range(40):
        p = rng.sample(PHRASES, 3)
        kind = i % 8
        hdr = ("From: =?UTF-8?B?%s?= <s%d@x.example>\r\nTo: r@example.test\r\n"
               "Subject: =?UTF-8?Q?%s?= %s\r\nMIME-Version: 1.0\r\n"
               % (base64.b64encode(p[0].encode()).decode(), i,
                  quopri.encodestring(p[1].encode(), header=True).decode().replace("=\n", ""),
                  "msg %d" % i))
        if kind == 0:
            m = hdr + "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n%s\r\n" % (p[1], p[2])
        elif kind == 1:
            m = (hdr + "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp(p[2] + " " + p[0]))
        elif kind == 2:
            m = (hdr + "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n" + b64(p[0] + "\n" + p[2]))
        elif kind == 3:
            lat = "Grüße naïve café ÀÉÎÕÜ"
            m = (hdr + "Content-Type: text/plain; charset=iso-8859-1\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n" + b64(lat.encode("latin-1")))
        elif kind == 4:
            m = (hdr + 'Content-Type: multipart/alternative; boundary="b%d"\r\n\r\n'
                 "--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
                 "--b%d\r\nContent-Type: text/html; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n--b%d--\r\n"
                 % (i, i, p[1], i, qp("<html><p>%s</p><b>bold</b> &amp; entity</html>" % p[2]), i))
        elif kind == 5:
            m = (hdr + 'Content-Type: multipart/mixed; boundary="m%d"\r\n\r\n'
                 "--m%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
                 "--m%d\r\nContent-Type: application/pdf; name=\"rep%d.pdf\"\r\n"
                 "Content-Disposition: attachment; filename*=UTF-8''Gr%%C3%%BC%%C3%%9Fe%d.pdf\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n%s--m%d--\r\n"
                 % (i, i, p[0], i, i, i, b64(bytes(rng.randrange(256) for _ in range(300))), i))
        elif kind == 6:
            inner = ("From: inner@y.example\r\nSubject: inner %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n" % (p[2], p[1]))
            m = (hdr + 'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n'
                 "--n%d\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                 "--n%d\r\nContent-Type: message/rfc822\r\n\r\n%s\r\n--n%d--\r\n"
                 % (i, i, i, inner, i))
        else:
            m = (hdr + "Content-Type: text/plain; charset=koi8-r\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + \
                "Москва и ПИТЕР".encode("koi8-r") + b"\r\n"
        msgs.append(m.encode("utf-8") if isinstance(m, str) else m)
    # one that cannot be indexed
    msgs.append(b"From: z@z.example\r\nSubject: raw\r\nContent-Type: text/plain; charset=bogus\r\n"
                b"\r\nGr\xfc\xdfe raw \xff\xfe bytes caf\xe9\r\n")
    return msgs


def needles(rng, msgs):
    out = set(PHRASES) | {"msg 1", "msg 3", "rep5.pdf", "grüße5", "inner", "see attached",
                          "koi8", "bold", "&amp;", "caf", "é r", "zzz not there", "ΑΘΉ",
                          "αθή", "ПИТ", "пит", "STRASSE", "straße", "ss", "ı", "ǆ", "ǅ"}
    words = " ".join(PHRASES)
    for _ in range(120):
        a = rng.randrange(len(words))
        s = words[a:a + rng.randrange(1, 12)]
        out.add(s.upper() if rng.random() < 0.3 else s)
    return sorted(n for n in out if n.strip())


def fill(srv, user, msgs):
    c = imap(srv, user)
    for m in msgs:
        append(c, "INBOX", m)
    c.logout()


def answers(srv, user, ns):
    """Every needle's BODY and TEXT answer lines (a raw client with
    LITERAL+: imaplib waits a round trip for each literal)."""
    c = client(srv, user)
    c.ok("EXAMINE INBOX")
    got = {}
    for n in ns:
        for key in ("BODY", "TEXT"):
            b = n.encode("utf-8")
            tag = c.tag()
            c.send(b"%s SEARCH CHARSET UTF-8 %s {%d+}\r\n%s\r\n"
                   % (tag.encode(), key.encode(), len(b), b))
            lines, done = c.until(tag)
            assert done == b"OK Search completed", (n, lines, done)
            got[(n, key)] = lines
    c.close()
    return got


def test_differential(make_server):
    rng = random.Random(18)
    msgs = corpus(rng)
    ns = needles(rng, msgs)
    srv = make_server(conf=dict(MODULE_CONF, **{"search.index_max_text": "0"}))
    scan_user = new_user(srv)
    fill(srv, scan_user, msgs)              # not indexed: every search reads the files
    srv.stop()
    srv.set_config({"search.index_max_text": "64"})
    srv.start()
    part_user = new_user(srv)
    fill(srv, part_user, msgs)              # every message indexed in part
    settled(srv, part_user)
    srv.stop()
    srv.set_config({"search.index_max_text": "1M"})
    srv.start()
    full_user = new_user(srv)
    fill(srv, full_user, msgs)
    settled(srv, full_user)
    st = status(srv, scan_user)
    assert st["not indexed"] == len(msgs) and st["indexed"] == 0, st
    st = status(srv, full_user)
    assert st["indexed"] == len(msgs) - 1 and st["not indexable"] == 1, st
    st = status(srv, part_user)
    assert st["indexed in part"] >= len(msgs) - 2, st
    want = answers(srv, scan_user, ns)
    assert answers(srv, full_user, ns) == want
    assert answers(srv, part_user, ns) == want
    # not vacuous: most needles match something, some match nothing
    hits = [n for n in ns if want[(n, "TEXT")] != [b"* SEARCH"]]
    assert len(hits) > len(ns) // 2 and len(hits) < len(ns), (len(hits), len(ns))
    # after a rebuild the unindexed account is indexed and answers the same
    srv.cli_ok("index", "rebuild", scan_user)
    st = status(srv, scan_user)
    assert st["indexed"] == len(msgs) - 1 and st["not indexed"] == 0, st
    assert answers(srv, scan_user, ns) == want
