"""ARC (RFC 8617) against dkimpy (Debian's python3-dkim), an implementation
nobody here wrote: `tern auth-check arc` validates chains sealed by
dkimpy's arc_sign, looking the keys up through dns.resolver (a dnsmasq on
loopback), and dkimpy's arc_verify accepts the sets `tern auth-check
arc-seal` adds.

Zone arc.test:
    dk._domainkey.arc.test   RSA-2048 key (dkimpy's arc_sign is RSA only)
    ed._domainkey.arc.test   Ed25519 key
"""

import base64
import os
import shutil
import subprocess
import tempfile

import dkim
import pytest

from conftest import sanitizer_report, timeout
from test_spf_cli import DNSMASQ, TERN, dnsmasq

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ),
                                reason="dnsmasq is not installed (scripts/install-deps.sh)")


def openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def world():
    base = tempfile.mkdtemp(prefix="tern-arc-")
    os.chmod(base, 0o755)
    rsa_pem = openssl("genrsa", "-traditional", "2048")
    rsa_pub = base64.b64encode(openssl("rsa", "-pubout", "-outform", "DER",
                                       data=rsa_pem)).decode()
    ed_pem = openssl("genpkey", "-algorithm", "ed25519")
    ed_pub = base64.b64encode(openssl("pkey", "-pubout", "-outform", "DER",
                                      data=ed_pem)[-32:]).decode()
    paths = {}
    for name, pem in (("rsa", rsa_pem), ("ed", ed_pem)):
        paths[name] = os.path.join(base, name + ".pem")
        with open(paths[name], "wb") as f:
            f.write(pem)
    rsa_rec = "v=DKIM1; k=rsa; p=" + rsa_pub
    ed_rec = "v=DKIM1; k=ed25519; p=" + ed_pub
    # TXT strings are at most 255 bytes: dnsmasq makes one per comma.
    chunks = [rsa_rec[i:i + 200] for i in range(0, len(rsa_rec), 200)]
    records = ["--txt-record=dk._domainkey.arc.test," + ",".join(chunks),
               "--txt-record=ed._domainkey.arc.test," + ed_rec]
    with dnsmasq(records) as server:
        yield from make_world(base, server, rsa_pem, paths, rsa_rec, ed_rec)


def make_world(base, server, rsa_pem, paths, rsa_rec, ed_rec):
    confs = {}
    for name, resolver in (("ok", server), ("dead", "127.0.0.1:9")):
        d = os.path.join(base, name)
        r = subprocess.run([TERN, "init", d, "--domain", "arc.test", "--hostname",
                            "mx.arc.test", "--resolver", resolver], capture_output=True,
                           timeout=60)
        assert r.returncode == 0, r
        conf = os.path.join(d, "tern.conf")
        with open(conf, "a") as f:
            f.write("mailauth.timeout = 3s\n")
        confs[name] = conf
    yield {"conf": confs, "rsa_pem": rsa_pem, "key": paths,
           "txt": {b"dk._domainkey.arc.test.": rsa_rec.encode(),
                   b"ed._domainkey.arc.test.": ed_rec.encode()}}
    shutil.rmtree(base, ignore_errors=True)


def message(token, ar=b"lists.arc.test; spf=pass smtp.mailfrom=alice@example.com"):
    return (b"Authentication-Results: " + ar + b"\r\n"
            b"From: Alice <alice@example.com>\r\nTo: <list@arc.test>\r\n"
            b"Subject: " + token.encode() + b"\r\nMessage-ID: <" + token.encode() +
            b"@example.com>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            b"\r\nHello,\r\n  this went through a list.\r\n")


def dkimpy_seal(world, msg, srv_id=b"lists.arc.test"):
    sets = dkim.arc_sign(msg, b"dk", b"arc.test", world["rsa_pem"], srv_id)
    assert len(sets) == 3, sets
    return b"".join(sets) + msg


def tern(world, args, msg, conf="ok"):
    r = subprocess.run([TERN, "-c", world["conf"][conf], "auth-check"] + args, input=msg,
                       capture_output=True, timeout=timeout(60))
    assert not sanitizer_report(r.stderr.decode(errors="replace")), r.stderr
    return r


def check(world, msg, conf="ok"):
    r = tern(world, ["arc"], msg, conf)
    assert r.returncode == 0, r
    return r.stdout.decode()


def dnsfunc(world):
    def lookup(name, timeout=5):
        return world["txt"].get(name)
    return lookup


def test_dkimpy_seal_passes(world):
    sealed = dkimpy_seal(world, message("one"))
    assert check(world, sealed) == "arc: pass\nsets: 1\noldest-pass: 0\ndomain: arc.test\n"


def test_dkimpy_two_hops_pass(world):
    hop1 = dkimpy_seal(world, message("two"))
    hop2 = dkimpy_seal(world, b"Authentication-Results: relay.arc.test; arc=pass\r\n" + hop1,
                       srv_id=b"relay.arc.test")
    assert hop2.startswith(b"ARC-Seal: i=2;")
    assert check(world, hop2) == "arc: pass\nsets: 2\noldest-pass: 0\ndomain: arc.test\n"


def test_tampered_body_fails(world):
    sealed = dkimpy_seal(world, message("three"))
    bad = sealed.replace(b"went through", b"went around")
    assert check(world, bad) == ("arc: fail\nsets: 1\ndomain: arc.test\n"
                                 "reason: ARC-Message-Signature i=1: body hash did not verify\n")


def test_tampered_aar_fails(world):
    sealed = dkimpy_seal(world, message("four"))
    bad = sealed.replace(b"i=1; lists.arc.test; spf=pass", b"i=1; lists.arc.test; spf=fail")
    assert bad != sealed
    assert check(world, bad) == ("arc: fail\nsets: 1\ndomain: arc.test\n"
                                 "reason: ARC-Seal i=1: signature did not verify\n")


def test_no_chain_is_none(world):
    assert check(world, message("five")) == "arc: none\nsets: 0\n"


def test_dead_resolver_fails(world):
    sealed = dkimpy_seal(world, message("six"))
    out = check(world, sealed, conf="dead")
    assert out == ("arc: fail\nsets: 1\ndomain: arc.test\nreason: ARC-Message-Signature i=1: "
                   "key dk._domainkey.arc.test: key lookup failed\n"), out


def dkimpy_verify(world, msg, key):
    if key == "ed":
        return  # dkimpy's ARC class knows rsa-sha256 only
    cv, results, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc(world))
    assert (cv, reason) == (dkim.CV_Pass, "success"), results


# Ed25519 seals are checked by Tern only (over DNS): dkimpy's arc_verify
# says "unknown signature algorithm" for them.
@pytest.mark.parametrize("key,sel", [("rsa", "dk"), ("ed", "ed")])
def test_tern_seal_verified_by_dkimpy(world, key, sel):
    seal = ["arc-seal", "--key", world["key"][key], "--domain", "arc.test", "--selector", sel]
    # a fresh message: i=1, cv=none
    r = tern(world, seal + ["--results", "spf=pass smtp.mailfrom=alice@example.com"],
             message("seven-" + key))
    assert r.returncode == 0, r
    out = r.stdout
    assert out.startswith(b"ARC-Seal: i=1; a=%s; cv=none;" %
                          (b"rsa-sha256" if key == "rsa" else b"ed25519-sha256"))
    assert (b"ARC-Authentication-Results: i=1; mx.arc.test; "
            b"spf=pass smtp.mailfrom=alice@example.com;\r\n\tarc=none\r\n") in out
    dkimpy_verify(world, out, key)
    assert check(world, out) == "arc: pass\nsets: 1\noldest-pass: 0\ndomain: arc.test\n"
    # on top of dkimpy's set: i=2, cv=pass, both verifiers agree
    r = tern(world, seal, dkimpy_seal(world, message("eight-" + key)))
    assert r.returncode == 0, r
    out = r.stdout
    assert out.startswith(b"ARC-Seal: i=2; a=")
    assert b"cv=pass;" in out.split(b"\r\n")[0]
    assert b"ARC-Authentication-Results: i=2; mx.arc.test; arc=pass\r\n" in out
    dkimpy_verify(world, out, key)
    assert check(world, out) == "arc: pass\nsets: 2\noldest-pass: 0\ndomain: arc.test\n"


def test_tern_seals_a_broken_chain_with_cv_fail(world):
    broken = dkimpy_seal(world, message("nine")).replace(b"went through", b"went around")
    seal = ["arc-seal", "--key", world["key"]["rsa"], "--domain", "arc.test", "--selector", "dk"]
    r = tern(world, seal, broken)
    assert r.returncode == 0, r
    assert r.stdout.startswith(b"ARC-Seal: i=2; a=rsa-sha256; cv=fail;")
    assert check(world, r.stdout) == ("arc: fail\nsets: 2\ndomain: arc.test\n"
                                      "reason: the latest ARC-Seal (i=2) says cv=fail\n")
    # the chain has ended: not sealed again, the message comes out as it was
    again = tern(world, seal, r.stdout)
    assert again.returncode == 0
    assert again.stdout == r.stdout
    assert b"the chain ended with cv=fail; not sealed" in again.stderr


def test_seal_usage_errors(world):
    r = tern(world, ["arc-seal", "--domain", "arc.test"], message("ten"))
    assert r.returncode == 2
    assert b"needs --key PEM, --domain DOMAIN and --selector SELECTOR" in r.stderr
    r = tern(world, ["arc-seal", "--key", "/nonexistent.pem", "--domain", "arc.test",
                     "--selector", "dk"], message("ten"))
    assert r.returncode == 1
    assert b"cannot open DKIM key /nonexistent.pem" in r.stderr


def test_missing_method_names_arc(world):
    r = subprocess.run([TERN, "-c", world["conf"]["ok"], "auth-check"], capture_output=True,
                       timeout=timeout(30))
    assert r.returncode == 2
    assert b"missing method (spf, message, arc, arc-seal)" in r.stderr
