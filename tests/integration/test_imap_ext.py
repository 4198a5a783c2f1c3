"""IMAP extensions of issue 18 item 6 through the real protocol: PREVIEW
(RFC 8970). Exact untagged responses with a raw client and with imaplib.
"""

import imaplib

import pytest

from test_imap import MODULE_CONF, PASSWORD, append, client, new_user


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(conf=MODULE_CONF)


HDR = "From: a@example.test\r\nTo: b@example.test\r\nSubject: p\r\n"

PLAIN = HDR + "\r\n  Hello   there,\r\n\r\n\tsecond\x0bline.  \r\n"
HTML = (HDR + "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<html><head><style>p {color: red}</style></head>"
        "<body><p>Caf\xc3\xa9 &amp; <b>bar</b></p>&lt;ok&gt;</body></html>\r\n")
ALT = (HDR + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
       "--BB\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       "iVBORw0KGgo=\r\n"
       "--BB\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
       "Gr=FC=DFe aus K=F6ln\r\n"
       "--BB\r\nContent-Type: text/plain\r\n\r\nnot this one\r\n"
       "--BB--\r\n")
NOTEXT = (HDR + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
          "--BB\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\n"
          "attached text\r\n"
          "--BB\r\nContent-Type: application/octet-stream\r\n\r\nxyz\r\n"
          "--BB--\r\n")
LONG = HDR + "\r\n" + ("\xc3\xa9" + "x " * 3) * 100 + "\r\n"


def lit(n, text):
    """imaplib's tuple for message n's "UID n PREVIEW {...}" literal."""
    b = text.encode()
    return (b"%d (UID %d PREVIEW {%d}" % (n, n, len(b)), b)


def _box(srv):
    user = new_user(srv)
    c = client(srv, user)
    for m in (PLAIN, HTML, ALT, NOTEXT, LONG):
        append(c, "INBOX", m.encode("latin-1"))
    c.ok("SELECT INBOX")
    return user, c


def test_fetch_preview_exact(srv):
    user, c = _box(srv)
    with c:
        # no text part (only an attached text/plain): the empty string
        assert c.ok("FETCH 1,4 PREVIEW") == [
            b'* 1 FETCH (PREVIEW "Hello there, second line.")',
            b'* 4 FETCH (PREVIEW "")']
    # the exact bytes through imaplib (literals for the 8-bit text)
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    try:
        m.login(user, PASSWORD)
        m.select("INBOX")
        typ, data = m.fetch("1:5", "(UID PREVIEW)")
        assert typ == "OK"
        assert data[0] == b'1 (UID 1 PREVIEW "Hello there, second line.")'
        assert data[1] == lit(2, "Café & bar <ok>")
        assert data[2] == b")"
        assert data[3] == lit(3, "Grüße aus Köln")
        assert data[4] == b")"
        assert data[5] == b'4 (UID 4 PREVIEW "")'
        # 200 characters (RFC 8970 3.3 SHOULD), cut on a code point, no
        # trailing blank
        want = (("é" + "x " * 3) * 100)[:200].rstrip(" ")
        assert data[6] == lit(5, want)
        # LAZY: the preview is made at once, never NIL
        typ, data = m.fetch("1", "(PREVIEW (LAZY) FLAGS)")
        assert data == [b'1 (PREVIEW "Hello there, second line." FLAGS ())']
        typ, data = m.uid("FETCH", "1", "PREVIEW (LAZY)")
        assert data == [b'1 (UID 1 PREVIEW "Hello there, second line.")']
    finally:
        m.logout()


def test_fetch_preview_syntax(srv):
    user, c = _box(srv)
    with c:
        for bad in ("FETCH 1 PREVIEW (LAZY", "FETCH 1 PREVIEW (FOO)", "FETCH 1 PREVIEW ()",
                    "FETCH 1 (PREVIEW (LAZY)", "FETCH 1 (FLAGS (LAZY))",
                    "FETCH 1 PREVIEW LAZY"):
            lines, done = c.cmd(bad)
            assert done.startswith(b"BAD"), (bad, lines, done)
            assert lines == []
        # the session goes on
        assert c.ok("FETCH 1 (PREVIEW)") == [b'* 1 FETCH (PREVIEW "Hello there, second line.")']
