#!/usr/bin/python3
"""Email/query on one account of N messages (default 10,000; issue 19):
the 50 newest with collapseThreads, and a few other queries, each timed
over one keep-alive HTTPS connection (credentials cached after the
first request).  Not a timed test: it prints medians for docs/jmap.md.

    bench/jmap/query.py [--tern build/tern] [--messages 10000] [--reps 15] [--keep]

Messages: threads of 4 (a message and three replies with In-Reply-To),
distinct senders and subjects, internal dates one minute apart, a body
line "marker zqNNNN" (NNNN = i mod 1000), APPENDed 100 per MULTIAPPEND.
Uses the integration tests' TernServer (tests/integration/conftest.py)
for the server's folder, config and process.  Stdlib and pytest only.
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import conftest  # noqa: E402

USER = "bench@example.test"
PASSWORD = "bench-pass-1"
MAIL = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


def imap_date(ts):
    return time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(ts))


def message(i):
    root = i - i % 4
    lines = ["From: Sender %d <s%d@example.net>" % (i % 97, i % 97),
             "To: %s" % USER,
             "Subject: %sTopic %d" % ("Re: " if i % 4 else "", root),
             "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                        time.gmtime(1700000000 + 60 * i)),
             "Message-ID: <m%d@bench.test>" % i]
    if i % 4:
        lines.append("In-Reply-To: <m%d@bench.test>" % root)
    body = "Hello,\r\nthis is message %d.\r\nmarker zq%04d\r\n" % (i, i % 1000)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def fill(port, n):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")

    def cmd(tag, data):
        s.sendall(tag + b" " + data + b"\r\n")
        while True:
            ln = f.readline()
            if not ln:
                raise RuntimeError("connection closed")
            if ln.startswith(tag + b" "):
                if not ln.startswith(tag + b" OK"):
                    raise RuntimeError(ln)
                return

    f.readline()
    cmd(b"a", b"LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))
    for k in range(0, n, 100):
        parts = [b"APPEND INBOX"]
        for i in range(k, min(n, k + 100)):
            data = message(i)
            parts.append(b" () \"%s\" {%d+}\r\n" % (imap_date(1700000000 + 60 * i).encode(),
                                                    len(data)) + data)
        cmd(b"b%d" % k, b"".join(parts))
    cmd(b"z", b"LOGOUT")
    s.close()


class Api:
    def __init__(self, port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=600)
        self.auth = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        self.aid = None

    def call(self, name, args):
        body = json.dumps({"using": MAIL, "methodCalls": [[name, args, "c"]]})
        self.c.request("POST", "/jmap/api/", body=body,
                       headers={"Content-Type": "application/json",
                                "Authorization": self.auth})
        r = self.c.getresponse()
        data = r.read()
        assert r.status == 200, data
        resp = json.loads(data)["methodResponses"][0]
        assert resp[0] == name, resp
        return resp[1]

    def session(self):
        self.c.request("GET", "/jmap/session", headers={"Authorization": self.auth})
        r = self.c.getresponse()
        self.aid = next(iter(json.loads(r.read())["accounts"]))


def timed(api, name, args, reps):
    times = []
    res = None
    for _ in range(reps):
        t0 = time.monotonic()
        res = api.call(name, dict(args, accountId=api.aid))
        times.append((time.monotonic() - t0) * 1000.0)
    return statistics.median(times), max(times), res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", default="build/tern")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--keep", action="store_true")
    o = ap.parse_args()
    binary = os.path.join(conftest.tempfile.mkdtemp(prefix="tern-bench-"), "tern")
    shutil.copy(o.tern, binary)  # others may rebuild build/tern meanwhile
    srv = conftest.TernServer(binary, conf={"allow_plaintext_loopback": "yes",
                                            "workers": 1})
    try:
        srv.cli_ok("user", "add", USER, "--password", PASSWORD)
        srv.start()
        t0 = time.monotonic()
        fill(srv.imap_port, o.messages)
        print("APPEND of %d messages: %.1f s" % (o.messages, time.monotonic() - t0))
        port = int(srv.read_config()["https.listen"].rsplit(":", 1)[1])
        api = Api(port)
        api.session()
        t0 = time.monotonic()
        api.call("Mailbox/get", {"accountId": api.aid, "ids": None})
        print("first Mail call (threads and change log of %d messages made): %.0f ms"
              % (o.messages, (time.monotonic() - t0) * 1000.0))
        desc = [{"property": "receivedAt", "isAscending": False}]
        cases = [
            ("Mailbox/get (the sync every Mail call does)", "Mailbox/get", {"ids": None}),
            ("50 newest, collapseThreads", "Email/query",
             {"sort": desc, "collapseThreads": True, "limit": 50}),
            ("50 newest, collapseThreads, calculateTotal", "Email/query",
             {"sort": desc, "collapseThreads": True, "limit": 50, "calculateTotal": True}),
            ("50 newest unread in INBOX", "Email/query",
             {"sort": desc, "limit": 50, "filter": {"notKeyword": "$seen"}}),
            ("text zq0042 (full-text index)", "Email/query",
             {"sort": desc, "limit": 50, "filter": {"text": "zq0042"}}),
            ("sort by from (first 5 runs fill the header cache)", "Email/query",
             {"sort": [{"property": "from"}], "limit": 50}),
            ("SearchSnippet/get of 50", None, None),
            ("Email/queryChanges of the first, nothing changed", "changes", None),
        ]
        for label, name, args in cases:
            if name == "changes":
                a = {"sort": desc, "collapseThreads": True}
                r = api.call("Email/query", dict(a, accountId=api.aid, limit=50))
                med, mx, _ = timed(api, "Email/queryChanges",
                                   dict(a, sinceQueryState=r["queryState"]), o.reps)
                print("%-52s median %8.1f ms  max %8.1f ms" % (label, med, mx))
                continue
            if name is None:
                r = api.call("Email/query", {"accountId": api.aid, "sort": desc, "limit": 50,
                                             "filter": {"text": "zq0042"}})
                med, mx, _ = timed(api, "SearchSnippet/get",
                                   {"filter": {"text": "zq0042"}, "emailIds": r["ids"]}, o.reps)
                print("%-52s median %8.1f ms  max %8.1f ms" % (label, med, mx))
                continue
            med, mx, res = timed(api, name, args, o.reps)
            extra = ""
            if name == "Email/query":
                extra = "  (%d ids%s)" % (len(res["ids"]), ", total %d" % res["total"]
                                          if "total" in res else "")
            print("%-52s median %8.1f ms  max %8.1f ms%s" % (label, med, mx, extra))
    finally:
        srv.stop(check=False)
        srv.cleanup(keep=o.keep)
        shutil.rmtree(os.path.dirname(binary), ignore_errors=True)


if __name__ == "__main__":
    main()
