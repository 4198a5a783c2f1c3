"""The OpenSPF RFC 7208 test suite (release 2014.04, shipped by Debian's
python3-spf as /usr/share/doc/python3-spf/rfc7208-tests.yml.gz) through the
real CLI: every test of every scenario runs `tern auth-check spf HOST HELO
MAILFROM` (libunbound, dns.resolver) against a small DNS server in this
process that serves the scenario's zone data, and the result must be one
of the suite's.

The suite's zone data, served as the suite's own driver (pyspf's
testspf.py) serves it:
  - A, AAAA, MX, PTR, CNAME, TXT and SPF (type 99) records; a TXT/SPF
    value given as a list is one record of several strings;
  - a name with SPF records and no TXT record gets the SPF records as TXT
    too ("auto-magic duplication", see the head of the suite); `TXT: NONE`
    stops that (the name then has no TXT);
  - `TIMEOUT` at a name: a query for a type the name has no record of gets
    no answer at all (Tern's query times out: temperror);
  - a name outside the zone: NXDOMAIN; a name in it without the type:
    NOERROR and no data; names are matched without regard to case;
  - CNAME: the alias and, when its target is in the zone, the target's
    records (chains followed; a loop just ends the chain).
The server answers as a recursive resolver would (RA set, RD echoed), as
libunbound is told to forward everything to dns.resolver.

The suite's driver sets pyspf's default explanation to "DEFAULT";
`explanation: DEFAULT` therefore means "no explanation of the domain's own"
and Tern, which has no default explanation, must print no `explanation:`
line.  Any other `explanation` must be printed exactly.

No case is skipped: SKIPPED below is empty, and stays the one place a
case would be listed with its reason.  Two cases run with an adaptation,
listed in ADAPTED with the reason (both pass).
"""

import gzip
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import threading

import pytest

from conftest import sanitizer_report, timeout

SUITE = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TERN = os.environ.get("TERN_BIN") or os.path.join(ROOT, "build", "tern")

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
    import yaml
    HAVE_DEPS = os.path.exists(SUITE)
except ImportError:
    HAVE_DEPS = False

pytestmark = pytest.mark.skipif(
    not HAVE_DEPS,
    reason="needs python3-spf (the suite), python3-yaml and python3-dnspython "
           "(scripts/install-deps.sh)")

# Cases that cannot run, with the reason.  Empty: every case runs.
SKIPPED = {}

# Cases run with an adaptation, and why.
ADAPTED = {
    "null-text":
        "the zone's TXT record with no strings at all (zero-length RDATA, "
        "which RFC 1035 3.3.14 does not allow: TXT-DATA is one or more "
        "<character-string>s) cannot pass libunbound, which takes the "
        "response for a server failure; it is served as the nearest legal "
        "record, one empty string, which means the same to SPF (3.3: the "
        "strings joined, \"\").",
    "v-macro-ip6":
        "the explanation is compared without regard to case: the suite "
        "wants the %{ir} nibbles of CAFE:BABE::1 in upper case, echoing "
        "how the test writes the client address, which an SMTP server "
        "never sees as text; Tern writes them in lower case, as RFC 7208 "
        "7.4's own %{ir} example does.",
}


# ------------------------------------------------------------ the suite

def load_suite():
    """[(scenario description, test name, test dict, zone)]."""
    if not HAVE_DEPS:
        return []
    with gzip.open(SUITE, "rb") as f:
        docs = list(yaml.safe_load_all(f))
    cases = []
    for doc in docs:
        zone = load_zone(doc.get("zonedata") or {})
        for name, test in doc["tests"].items():
            cases.append((doc["description"], name, test, zone))
    return cases


def load_zone(zonedata):
    """{lower-case name: {"timeout": bool, "records": [(type, value)]}}."""
    zone = {}
    for owner, entries in zonedata.items():
        node = {"timeout": False, "records": []}
        has_txt = False
        spf = []
        for e in entries or []:
            if e == "TIMEOUT":
                node["timeout"] = True
                continue
            (rtype, value), = e.items()
            if rtype in ("TXT", "SPF"):
                if isinstance(value, str):
                    value = [value]
                value = tuple(s.encode("utf-8") for s in value)
                if rtype == "TXT":
                    has_txt = True
                else:
                    spf.append(value)
                if value == (b"NONE",):
                    continue
            node["records"].append((rtype, value))
        if not has_txt:
            node["records"] += [("TXT", v) for v in spf]
        zone[owner.lower().rstrip(".")] = node
    return zone


CASES = load_suite()


# ------------------------------------------------------- the DNS server

def absname(text):
    return dns.name.from_text(text if text.endswith(".") else text + ".")


def zone_key(name):
    """A zone key: the labels' bytes as they are (to_text would escape
    spaces and the like), lower case."""
    return b".".join(name.labels).decode("latin-1").lower().rstrip(".")


def make_rdata(rtype, value):
    IN = dns.rdataclass.IN
    if rtype in ("TXT", "SPF"):
        t = dns.rdatatype.TXT if rtype == "TXT" else dns.rdatatype.SPF
        # No strings at all: see ADAPTED["null-text"].
        return t, dns.rdata.get_rdata_class(IN, t)(IN, t, value or (b"",))
    if rtype == "MX":
        pref, host = value
        return dns.rdatatype.MX, dns.rdata.from_text(IN, dns.rdatatype.MX,
                                                     "%d %s" % (pref, absname(host)))
    if rtype in ("PTR", "CNAME"):
        t = dns.rdatatype.from_text(rtype)
        return t, dns.rdata.from_text(IN, t, absname(value).to_text())
    t = dns.rdatatype.from_text(rtype)
    return t, dns.rdata.from_text(IN, t, str(value))


class ZoneServer:
    """Serves one zone at a time (set_zone), on UDP and TCP, 127.0.0.1."""

    def __init__(self):
        self.zone = {}
        self.lock = threading.Lock()
        self.stopping = False
        for _ in range(100):
            port = random.randint(20000, 60000)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                udp.bind(("127.0.0.1", port))
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            break
        else:
            raise RuntimeError("no free port for the DNS server")
        tcp.listen(16)
        self.port, self.udp, self.tcp = port, udp, tcp
        self.threads = [threading.Thread(target=self.serve_udp, daemon=True),
                        threading.Thread(target=self.serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def set_zone(self, zone):
        with self.lock:
            self.zone = zone

    def answer(self, wire, max_size):
        """The response to the query wire, or None for no answer."""
        try:
            q = dns.message.from_wire(wire)
        except Exception:
            return None
        if len(q.question) != 1:
            return None
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
        question = q.question[0]
        with self.lock:
            zone = self.zone
        name = question.name
        want = question.rdtype
        seen = set()
        while True:
            key = zone_key(name)
            node = zone.get(key)
            if node is None:
                if not r.answer:
                    r.set_rcode(dns.rcode.NXDOMAIN)
                break
            matches = [make_rdata(t, v) for t, v in node["records"]]
            cnames = [rd for t, rd in matches if t == dns.rdatatype.CNAME]
            if cnames and want != dns.rdatatype.CNAME:
                rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.CNAME)
                rrset.add(cnames[0], 60)
                r.answer.append(rrset)
                seen.add(key)
                name = cnames[0].target
                if zone_key(name) in seen:
                    break
                continue
            rds = [rd for t, rd in matches if t == want]
            if not rds and node["timeout"]:
                return None
            if rds:
                rrset = dns.rrset.RRset(name, dns.rdataclass.IN, want)
                for rd in rds:
                    rrset.add(rd, 60)
                r.answer.append(rrset)
            break
        try:
            return r.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            r.answer = []
            r.flags |= dns.flags.TC
            return r.to_wire()

    def serve_udp(self):
        while not self.stopping:
            try:
                wire, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            try:
                q = dns.message.from_wire(wire)
                size = max(512, q.payload) if q.edns >= 0 else 512
            except Exception:
                continue
            out = self.answer(wire, size)
            if out is not None:
                self.udp.sendto(out, peer)

    def serve_tcp(self):
        while not self.stopping:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self.serve_conn, args=(conn,), daemon=True).start()

    def serve_conn(self, conn):
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    head = recv_exact(conn, 2)
                    if head is None:
                        return
                    wire = recv_exact(conn, struct.unpack("!H", head)[0])
                    if wire is None:
                        return
                    out = self.answer(wire, 65535)
                    if out is not None:
                        conn.sendall(struct.pack("!H", len(out)) + out)
            except OSError:
                return

    def close(self):
        self.stopping = True
        self.udp.close()
        self.tcp.close()


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


@pytest.fixture(scope="module")
def world():
    server = ZoneServer()
    base = tempfile.mkdtemp(prefix="tern-openspf-")
    os.chmod(base, 0o755)
    d = os.path.join(base, "t")
    r = subprocess.run([TERN, "init", d, "--domain", "r.test", "--hostname", "mx.r.test",
                        "--resolver", "127.0.0.1:%d" % server.port],
                       capture_output=True, timeout=timeout(60))
    assert r.returncode == 0, r
    conf = os.path.join(d, "tern.conf")
    # Each DNS query of auth-check waits this long: the TIMEOUT cases.
    with open(conf, "a") as f:
        f.write("queue.timeout.dns = 1s\n")
    yield server, conf
    server.close()
    shutil.rmtree(base, ignore_errors=True)


def case_id(case):
    return case[1]


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_openspf(world, case):
    server, conf = world
    scenario, name, test, zone = case
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    server.set_zone(zone)
    expected = test["result"]
    if isinstance(expected, str):
        expected = [expected]
    r = subprocess.run([TERN, "-c", conf, "auth-check", "spf", test["host"], test["helo"],
                        test["mailfrom"] if test["mailfrom"] != "" else "<>"],
                       capture_output=True, text=True, timeout=timeout(60))
    assert not sanitizer_report(r.stderr), r.stderr
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(": ")
        out[k] = v
    why = "%s: %s\n%s" % (scenario, test.get("description", ""), r.stdout)
    assert out["result"] in expected, why
    if "explanation" in test:
        if test["explanation"] == "DEFAULT":
            assert "explanation" not in out, why
        elif name == "v-macro-ip6":
            # See ADAPTED.
            assert out.get("explanation", "").lower() == test["explanation"].lower(), why
        else:
            assert out.get("explanation") == test["explanation"], why
