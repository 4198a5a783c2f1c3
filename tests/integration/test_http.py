"""HTTP and HTTPS (docs/http.md): the evhttp server on http.listen and
https.listen, security headers, the redirect to HTTPS, SNI, limits and the
whole-request deadline (slowloris), static files, and the answers for mail
clients: Thunderbird autoconfig, Outlook autodiscover, the Apple profile
and the MTA-STS policy (RFC 8461).

Clients: curl, Python's http.client, raw sockets, plistutil/plistlib.
"""
import http.client
import os
import plistlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import HOST, HOSTNAME, make_cert, timeout

SEC_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
                               "frame-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
HSTS = "max-age=31536000"

def port_of(srv, key):
    m = re.fullmatch(r"(.*):(\d+)", srv.read_config().get(key, ""))
    assert m, key
    return int(m.group(2))


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server(start=False)
    web = os.path.join(s.dir, "web")
    os.makedirs(os.path.join(web, "sub"))
    os.makedirs(os.path.join(web, ".well-known", "acme-challenge"))
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write("<!doctype html><title>Tern</title>\n")
    with open(os.path.join(web, "sub", "app.js"), "w") as f:
        f.write("console.log(1);\n")
    with open(os.path.join(web, ".well-known", "acme-challenge", "tok123"), "w") as f:
        f.write("tok123.thumb\n")
    with open(os.path.join(web, ".hidden"), "w") as f:
        f.write("hidden\n")
    with open(os.path.join(s.dir, "secret.txt"), "w") as f:
        f.write("outside the web root\n")
    os.symlink(os.path.join(s.dir, "secret.txt"), os.path.join(web, "escape.txt"))
    os.symlink("/etc/passwd", os.path.join(web, "passwd"))
    os.symlink("sub/app.js", os.path.join(web, "inside.js"))
    domains = os.path.join(s.dir, "tls", "domains")
    make_cert(os.path.join(domains, "mta-sts.example.org"), "mta-sts.example.org")
    s.set_config({"http.webroot": "web", "tls.sni_dir": "tls/domains", "http.timeout": "3s",
                  "http.max_header_size": "8K", "mta_sts.mode": "enforce",
                  "mta_sts.max_age": "1d", "workers": 2})
    s.start()
    return s


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def request(srv, method, path, https=True, host=None, body=None, headers=None):
    port = port_of(srv, "https.listen" if https else "http.listen")
    if https:
        conn = http.client.HTTPSConnection(HOST, port, context=ctx(), timeout=timeout(10))
    else:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout(10))
    h = dict(headers or {})
    if host is not None:
        h["Host"] = host
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r, data


def read_answer(s, head_only=False):
    """Reads from s until the server closes (or, head_only, until the end
    of the header), tolerating a reset after the answer; closes s."""
    data = b""
    try:
        while not (head_only and b"\r\n\r\n" in data):
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (ConnectionResetError, ssl.SSLError):
        pass
    s.close()
    return data


def check_security(r, https):
    for k, v in SEC_HEADERS.items():
        assert r.getheader(k) == v, (k, r.getheaders())
    if https:
        assert r.getheader("strict-transport-security") == HSTS
    else:
        assert r.getheader("strict-transport-security") is None


def test_init_writes_http_listeners(srv):
    conf = srv.read_config()
    assert conf["http.listen"] == "%s:%d" % (HOST, srv.port_base + 80)
    assert conf["https.listen"] == "%s:%d" % (HOST, srv.port_base + 443)


def test_static_files_and_headers(srv):
    r, data = request(srv, "GET", "/")
    assert r.status == 200 and data == b"<!doctype html><title>Tern</title>\n"
    assert r.getheader("content-type") == "text/html; charset=utf-8"
    check_security(r, True)
    etag = r.getheader("etag")
    assert etag and etag.startswith('"')
    r, data = request(srv, "GET", "/", headers={"If-None-Match": etag})
    assert r.status == 304 and data == b""
    check_security(r, True)
    r, data = request(srv, "GET", "/sub/app.js")
    assert r.status == 200 and data == b"console.log(1);\n"
    assert r.getheader("content-type") == "text/javascript; charset=utf-8"
    r, data = request(srv, "HEAD", "/sub/app.js")
    assert r.status == 200 and data == b""
    assert r.getheader("content-length") == "16"
    # No body after a HEAD answer: the next answer on the connection parses.
    conn = http.client.HTTPSConnection(HOST, port_of(srv, "https.listen"), context=ctx(),
                                       timeout=timeout(10))
    conn.request("HEAD", "/sub/app.js")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b""
    conn.request("GET", "/sub/app.js")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"console.log(1);\n"
    conn.close()
    r, data = request(srv, "GET", "/inside.js")  # a symlink inside the root
    assert r.status == 200 and data == b"console.log(1);\n"
    r, data = request(srv, "GET", "/nope.html")
    assert r.status == 404
    check_security(r, True)
    r, data = request(srv, "DELETE", "/")
    assert r.status == 501
    r, data = request(srv, "POST", "/sub/app.js", body=b"x")
    assert r.status == 405 and r.getheader("allow") == "GET, HEAD"
    check_security(r, True)


@pytest.mark.parametrize("path", ["/../secret.txt", "/sub/../../secret.txt",
                                  "/%2e%2e/secret.txt", "/sub/%2E%2E/%2e%2e/secret.txt",
                                  "/escape.txt", "/passwd", "/.hidden", "/sub%2f..%2f..%2fsecret.txt",
                                  "/a%00b", "/sub\\..\\..\\secret.txt", "//etc/passwd"])
def test_path_traversal_refused(srv, path):
    for https in (True, False):
        port = port_of(srv, "https.listen" if https else "http.listen")
        # raw request: http.client would not send some of these paths as given
        s = socket.create_connection((HOST, port), timeout=timeout(10))
        if https:
            s = ctx().wrap_socket(s)
        s.sendall(("GET %s HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
                   % path).encode())
        data = read_answer(s)
        status = int(data.split(b" ", 2)[1])
        assert b"outside the web root" not in data and b"root:" not in data
        if https:
            assert status in (400, 404), (path, data[:200])
        else:
            assert status in (301, 400, 404), (path, data[:200])


def test_http_redirects_to_https(srv):
    hport = port_of(srv, "https.listen")
    r, data = request(srv, "GET", "/sub/app.js?x=1", https=False, host="mail.example.test")
    assert r.status == 301
    assert r.getheader("location") == "https://mail.example.test:%d/sub/app.js?x=1" % hport
    check_security(r, False)
    # curl follows it to the HTTPS page
    out = subprocess.run(["curl", "-sS", "-k", "-L", "-o", "-", "-w", "\n%{http_code} %{url_effective}",
                          "--resolve", "mail.example.test:%d:%s" % (port_of(srv, "http.listen"), HOST),
                          "--resolve", "mail.example.test:%d:%s" % (hport, HOST),
                          "http://mail.example.test:%d/sub/app.js" % port_of(srv, "http.listen")],
                         capture_output=True, timeout=timeout(20))
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode() == "console.log(1);\n\n200 https://mail.example.test:%d/sub/app.js" % hport
    # A bad Host cannot inject a header
    r, data = request(srv, "GET", "/", https=False, host="evil.example\\r\\nX: y")
    assert r.status == 400


def test_acme_challenge_on_plain_http(srv):
    r, data = request(srv, "GET", "/.well-known/acme-challenge/tok123", https=False,
                      host="example.test")
    assert r.status == 200 and data == b"tok123.thumb\n"
    check_security(r, False)


def test_sni_certificate_over_https(srv):
    port = port_of(srv, "https.listen")
    for name, want in (("mta-sts.example.org", "mta-sts.example.org"), ("other.example", HOSTNAME)):
        r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (HOST, port), "-brief",
                            "-servername", name], input=b"", capture_output=True,
                           timeout=timeout(10))
        err = r.stderr.decode()
        assert "CONNECTION ESTABLISHED" in err, err
        assert re.search(r"Peer certificate: CN ?= ?%s" % re.escape(want), err), err
    # TLS 1.1 refused as on the mail ports
    r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (HOST, port), "-brief",
                        "-tls1_1", "-cipher", "ALL:@SECLEVEL=0"], input=b"", capture_output=True,
                       timeout=timeout(10))
    assert "CONNECTION ESTABLISHED" not in r.stderr.decode()


def test_keep_alive_and_chunked_body(srv):
    port = port_of(srv, "https.listen")
    conn = http.client.HTTPSConnection(HOST, port, context=ctx(), timeout=timeout(10))
    for _ in range(3):
        conn.request("GET", "/sub/app.js")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"console.log(1);\n"
    # a chunked autodiscover POST on the same connection
    body = AD_REQ % b"alice@example.test"
    conn.request("POST", "/autodiscover/autodiscover.xml", body=iter([body[:50], body[50:]]),
                 headers={"Content-Type": "text/xml"}, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 200, r.read()
    assert b"<Type>IMAP</Type>" in r.read()
    conn.close()


def test_oversized_headers_then_server_goes_on(srv):
    port = port_of(srv, "https.listen")
    s = ctx().wrap_socket(socket.create_connection((HOST, port), timeout=timeout(10)))
    s.sendall(b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    data = read_answer(s)
    if data:
        # evhttp's own answer (docs/http.md "Security headers")
        assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), data[:200]
    r, body = request(srv, "GET", "/")
    assert r.status == 200
    # 10 MB of headers on plain HTTP too
    s = socket.create_connection((HOST, port_of(srv, "http.listen")), timeout=timeout(10))
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: example.test\r\n")
        for _ in range(1000):
            s.sendall(b"X-Pad: " + b"b" * 10000 + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.close()
    r, body = request(srv, "GET", "/")
    assert r.status == 200
    assert srv.alive()


def test_slowloris_cut_without_hurting_others(srv):
    port = port_of(srv, "http.listen")
    slow = socket.create_connection((HOST, port), timeout=timeout(20))
    start = time.monotonic()
    line = b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Slow: " + b"z" * 100
    closed = False
    for i in range(len(line)):
        try:
            slow.sendall(line[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        # another client is served meanwhile
        if i % 2 == 0:
            r, body = request(srv, "GET", "/.well-known/acme-challenge/tok123", https=False,
                              host="example.test")
            assert r.status == 200
        slow.settimeout(1.0)
        try:
            b = slow.recv(100)
            if b == b"":
                closed = True
                break
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
            break
    elapsed = time.monotonic() - start
    slow.close()
    assert closed, "slow client was never cut off"
    # http.timeout is 3 s: cut after about that, well before the 100+ bytes
    assert elapsed < 30
    assert srv.wait_log(r"http client=127\.0\.0\.1 action=timeout", 5)


def tb_fields(xml_bytes):
    root = ET.fromstring(xml_bytes)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    prov = root.find("emailProvider")
    servers = []
    for el in prov:
        if el.tag in ("incomingServer", "outgoingServer"):
            servers.append((el.tag, el.get("type"), el.findtext("hostname"),
                            int(el.findtext("port")), el.findtext("socketType"),
                            el.findtext("authentication"), el.findtext("username")))
    return prov.get("id"), prov.findtext("domain"), servers


def expected_servers(srv):
    return [("incomingServer", "imap", HOSTNAME, port_of(srv, "imaps.listen"), "SSL",
             "password-cleartext", "%EMAILADDRESS%"),
            ("incomingServer", "pop3", HOSTNAME, port_of(srv, "pop3s.listen"), "SSL",
             "password-cleartext", "%EMAILADDRESS%"),
            ("outgoingServer", "smtp", HOSTNAME, port_of(srv, "submissions.listen"), "SSL",
             "password-cleartext", "%EMAILADDRESS%")]


def test_thunderbird_autoconfig(srv):
    for https in (True, False):
        r, data = request(srv, "GET",
                          "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=carol%40example.org",
                          https=https, host="example.org")
        assert r.status == 200, data
        assert r.getheader("content-type") == "application/xml; charset=utf-8"
        check_security(r, https)
        assert tb_fields(data) == ("example.org", "example.org", expected_servers(srv))
    # host autoconfig.DOMAIN, no address
    r, data = request(srv, "GET", "/mail/config-v1.1.xml", https=False,
                      host="autoconfig.example.test")
    assert r.status == 200
    assert tb_fields(data) == ("example.test", "example.test", expected_servers(srv))
    # curl, as Thunderbird would ask
    out = subprocess.run(["curl", "-sS", "-k", "-f",
                          "https://%s:%d/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=nobody%%40example.test"
                          % (HOST, port_of(srv, "https.listen"))],
                         capture_output=True, timeout=timeout(20))
    assert out.returncode == 0, out.stderr
    # an address that does not exist gets the same answer as one that does
    assert tb_fields(out.stdout) == ("example.test", "example.test", expected_servers(srv))


@pytest.mark.parametrize("path,host", [
    ("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=x%40elsewhere.example", "x"),
    ("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=not-an-address", "x"),
    ("/.well-known/autoconfig/mail/config-v1.1.xml", "example.test"),
    ("/mail/config-v1.1.xml", "autoconfig.elsewhere.example"),
    ("/apple/profile.mobileconfig?email=a%40elsewhere.example", "example.test"),
    ("/apple/profile.mobileconfig?email=%3Cx%3E%40example.test", "example.test"),
    ("/.well-known/mta-sts.txt", "mta-sts.elsewhere.example"),
    ("/.well-known/mta-sts.txt", "example.test"),
])
def test_not_our_domain_404(srv, path, host):
    r, data = request(srv, "GET", path, host=host)
    assert r.status == 404, data
    check_security(r, True)


AD_REQ = (b'<?xml version="1.0" encoding="utf-8"?>\r\n'
          b'<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
          b'<Request><EMailAddress>%s</EMailAddress>'
          b'<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>'
          b'</Request></Autodiscover>')
RNS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


def test_autodiscover(srv):
    r, data = request(srv, "POST", "/Autodiscover/Autodiscover.xml", body=AD_REQ % b"bob@example.test",
                      headers={"Content-Type": "text/xml"})
    assert r.status == 200, data
    check_security(r, True)
    root = ET.fromstring(data)
    assert root.tag == "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}Autodiscover"
    acct = root.find(RNS + "Response/" + RNS + "Account")
    assert acct.findtext(RNS + "AccountType") == "email"
    assert acct.findtext(RNS + "Action") == "settings"
    got = [(p.findtext(RNS + "Type"), p.findtext(RNS + "Server"), int(p.findtext(RNS + "Port")),
            p.findtext(RNS + "LoginName"), p.findtext(RNS + "SSL"), p.findtext(RNS + "SPA"),
            p.findtext(RNS + "AuthRequired"))
           for p in acct.findall(RNS + "Protocol")]
    assert got == [("IMAP", HOSTNAME, port_of(srv, "imaps.listen"), "bob@example.test", "on", "off", "on"),
                   ("POP3", HOSTNAME, port_of(srv, "pop3s.listen"), "bob@example.test", "on", "off", "on"),
                   ("SMTP", HOSTNAME, port_of(srv, "submissions.listen"), "bob@example.test", "on", "off", "on")]
    # curl with a namespace prefix
    body = (b'<a:Autodiscover xmlns:a="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
            b'<a:Request><a:EMailAddress> carol@example.org </a:EMailAddress></a:Request></a:Autodiscover>')
    out = subprocess.run(["curl", "-sS", "-k", "-f", "--data-binary", "@-", "-H", "Content-Type: text/xml",
                          "https://%s:%d/autodiscover/autodiscover.xml" % (HOST, port_of(srv, "https.listen"))],
                         input=body, capture_output=True, timeout=timeout(20))
    assert out.returncode == 0, out.stderr
    assert b"<LoginName>carol@example.org</LoginName>" in out.stdout


@pytest.mark.parametrize("body,status", [
    (AD_REQ % b"x@elsewhere.example", 404),
    (AD_REQ % b"not an address", 400),
    (AD_REQ % b"&lt;x&gt;@example.test", 400),
    (b"<Autodiscover><Request></Request></Autodiscover>", 400),
    (b"<!DOCTYPE a [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>", 400),
    ((AD_REQ % b"bob@example.test").replace(b"outlook/responseschema/2006a", b"mobilesync/responseschema/2006"), 404),
    (b"<EMailAddress>" + b"a" * 60000, 400),
], ids=["foreign", "bad", "entity-text", "missing", "xxe", "mobilesync", "unterminated"])
def test_autodiscover_bad_requests(srv, body, status):
    r, data = request(srv, "POST", "/autodiscover/autodiscover.xml", body=body)
    assert r.status == status, data
    r, data = request(srv, "GET", "/autodiscover/autodiscover.xml")
    assert r.status == 405 and r.getheader("allow") == "POST"


def test_autodiscover_body_limit(srv):
    # A body over http.max_body_size (64K): 413.  evhttp's own bound is the
    # largest of this and the JMAP limits (docs/jmap.md), so the body is
    # read before the path's own bound refuses it.
    s = ctx().wrap_socket(socket.create_connection((HOST, port_of(srv, "https.listen")),
                                                   timeout=timeout(10)))
    s.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: example.test\r\n"
              b"Content-Type: text/xml\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000)
    data = read_answer(s, head_only=True)
    assert data.startswith(b"HTTP/1.1 413 "), data[:200]
    # Content-Length over every bound: 413 before any body.
    s = ctx().wrap_socket(socket.create_connection((HOST, port_of(srv, "https.listen")),
                                                   timeout=timeout(10)))
    s.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: example.test\r\n"
              b"Content-Type: text/xml\r\nContent-Length: 1000000000\r\n\r\n")
    data = read_answer(s, head_only=True)
    assert data.startswith(b"HTTP/1.1 413 "), data[:200]
    r, data = request(srv, "GET", "/")
    assert r.status == 200


def test_apple_mobileconfig(srv):
    r, data = request(srv, "GET", "/apple/profile.mobileconfig?email=alice%40example.test")
    assert r.status == 200
    assert r.getheader("content-type") == "application/x-apple-aspen-config"
    check_security(r, True)
    p = plistlib.loads(data)
    assert p["PayloadType"] == "Configuration" and p["PayloadVersion"] == 1
    (acct,) = p["PayloadContent"]
    assert acct["PayloadType"] == "com.apple.mail.managed"
    assert acct["EmailAddress"] == "alice@example.test"
    assert acct["EmailAccountType"] == "EmailTypeIMAP"
    assert acct["IncomingMailServerHostName"] == HOSTNAME
    assert acct["IncomingMailServerPortNumber"] == port_of(srv, "imaps.listen")
    assert acct["IncomingMailServerUseSSL"] is True
    assert acct["IncomingMailServerUsername"] == "alice@example.test"
    assert acct["OutgoingMailServerHostName"] == HOSTNAME
    assert acct["OutgoingMailServerPortNumber"] == port_of(srv, "submissions.listen")
    assert acct["OutgoingMailServerUseSSL"] is True
    assert acct["OutgoingMailServerUsername"] == "alice@example.test"
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-8[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}",
                        acct["PayloadUUID"])
    # the same address gives the same UUIDs (a second download updates)
    r2, data2 = request(srv, "GET", "/apple/profile.mobileconfig?email=alice%40example.test")
    assert data2 == data
    assert shutil.which("plistutil"), "plistutil missing (scripts/install-deps.sh)"
    path = os.path.join(srv.dir, "p.mobileconfig")
    with open(path, "wb") as f:
        f.write(data)
    out = subprocess.run(["plistutil", "-i", path, "-f", "xml"], capture_output=True,
                         timeout=timeout(10))
    if out.returncode != 0:  # older plistutil: no -f
        out = subprocess.run(["plistutil", "-i", path], capture_output=True,
                             timeout=timeout(10))
    assert out.returncode == 0, out.stderr
    assert plistlib.loads(out.stdout) == p


def test_mta_sts_policy(srv):
    r, data = request(srv, "GET", "/.well-known/mta-sts.txt", host="mta-sts.example.org")
    assert r.status == 200
    assert r.getheader("content-type") == "text/plain"
    check_security(r, True)
    assert data == ("version: STSv1\r\nmode: enforce\r\nmx: %s\r\nmax_age: 86400\r\n"
                    % HOSTNAME).encode()
    # RFC 8461 3.3: HTTPS only; plain HTTP redirects
    r, data = request(srv, "GET", "/.well-known/mta-sts.txt", https=False,
                      host="mta-sts.example.org")
    assert r.status == 301
    # curl with SNI gets the mta-sts certificate
    out = subprocess.run(["curl", "-sS", "-k", "-v", "--resolve",
                          "mta-sts.example.org:%d:%s" % (port_of(srv, "https.listen"), HOST),
                          "https://mta-sts.example.org:%d/.well-known/mta-sts.txt"
                          % port_of(srv, "https.listen")],
                         capture_output=True, timeout=timeout(20))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"version: STSv1\r\nmode: enforce\r\n")
    assert b"CN=mta-sts.example.org" in out.stderr.replace(b" ", b"")


def test_config_errors(make_server):
    s = make_server(start=False)
    s.set_config({"mta_sts.mode": "strict"})
    r = s.cli("domain", "list")
    assert r.returncode != 0
    assert b"mta_sts.mode must be enforce, testing or none" in (r.stdout + r.stderr)


def test_sighup_applies_webroot_and_policy(make_server):
    s = make_server(conf={"workers": 1})
    r, data = request(s, "GET", "/x.txt")
    assert r.status == 404
    r, data = request(s, "GET", "/.well-known/mta-sts.txt", host="mta-sts.example.test")
    assert data == ("version: STSv1\r\nmode: testing\r\nmx: %s\r\nmax_age: 604800\r\n"
                    % HOSTNAME).encode()
    old = http.client.HTTPSConnection(HOST, port_of(s, "https.listen"), context=ctx(),
                                      timeout=timeout(10))
    old.request("GET", "/x.txt")
    assert old.getresponse().read() == b"404 Not Found\n"
    os.makedirs(os.path.join(s.dir, "web2"))
    with open(os.path.join(s.dir, "web2", "x.txt"), "w") as f:
        f.write("new root\n")
    s.set_config({"http.webroot": "web2", "mta_sts.mode": "none"})
    os.kill(s.pid, signal.SIGHUP)
    assert s.wait_log(r"worker\d+\[\d+\] reload result=ok", 5)
    # the connection opened before the reload goes on, with the new values
    old.request("GET", "/x.txt")
    r = old.getresponse()
    assert r.status == 200 and r.read() == b"new root\n"
    assert r.getheader("content-type") == "text/plain; charset=utf-8"
    old.close()
    r, data = request(s, "GET", "/.well-known/mta-sts.txt", host="mta-sts.example.test")
    assert data.startswith(b"version: STSv1\r\nmode: none\r\n")
