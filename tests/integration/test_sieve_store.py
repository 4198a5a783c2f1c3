"""Sieve scripts stored per account with the CLI (docs/sieve.md "Storing
scripts"): `tern sieve put|list|get|activate|deactivate|delete USER ...`,
checked when stored, at most one active, size and count limits.
"""

import pytest

ALICE = "alice@example.test"
GOOD = b'require "fileinto";\r\nif header :contains "subject" "x" { fileinto "X"; }\r\n'


@pytest.fixture
def inst(make_server):
    """An instance that is never started: the CLI works on its data folder."""
    return make_server(start=False)


def put(inst, name, body, *opts, user=ALICE):
    return inst.cli("sieve", "put", *opts, user, name, "-", input=body)


def listing(inst, user=ALICE):
    r = inst.cli_ok("sieve", "list", user)
    return [line.split("\t") for line in r.stdout.decode().splitlines()]


def test_put_get_list_round_trip(inst):
    r = put(inst, "main", GOOD)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"stored main for alice@example.test\n"
    assert inst.cli_ok("sieve", "get", ALICE, "main").stdout == GOOD
    assert listing(inst) == [["main", str(len(GOOD)), "-"]]
    # Replacing keeps one script of that name; the user is case-insensitive.
    assert put(inst, "main", b"keep;\n", user="Alice@Example.TEST").returncode == 0
    assert inst.cli_ok("sieve", "get", ALICE, "main").stdout == b"keep;\n"
    assert listing(inst) == [["main", "6", "-"]]
    # A script from a file, and a UTF-8 name.
    path = inst.dir + "/s.sieve"
    with open(path, "wb") as f:
        f.write(GOOD)
    inst.cli_ok("sieve", "put", ALICE, "Ünï", path)
    assert listing(inst) == [["main", "6", "-"], ["Ünï", str(len(GOOD)), "-"]]
    assert listing(inst, "bob@example.test") == []


def test_one_active_script(inst):
    assert put(inst, "a", GOOD, "--activate").returncode == 0
    put(inst, "b", b"discard;\n")
    assert listing(inst) == [["a", str(len(GOOD)), "active"], ["b", "9", "-"]]
    inst.cli_ok("sieve", "activate", ALICE, "b")
    assert listing(inst) == [["a", str(len(GOOD)), "-"], ["b", "9", "active"]]
    # The active script cannot be deleted; an inactive one can.
    r = inst.cli("sieve", "delete", ALICE, "b")
    assert r.returncode == 1 and b'script "b" is active' in r.stderr
    inst.cli_ok("sieve", "delete", ALICE, "a")
    assert listing(inst) == [["b", "9", "active"]]
    inst.cli_ok("sieve", "deactivate", ALICE)
    assert listing(inst) == [["b", "9", "-"]]
    inst.cli_ok("sieve", "delete", ALICE, "b")
    assert listing(inst) == []


def test_script_with_error_is_not_stored(inst):
    r = put(inst, "bad", b'require "fileinto";\nif true {\n  fileinto 42;\n}\n')
    assert r.returncode == 2
    assert r.stderr.startswith(b"-:3:"), r.stderr
    assert b"error:" in r.stderr
    r = put(inst, "bad", b'require "x-tern-unknown";\n')
    assert r.returncode == 2 and r.stderr.startswith(b"-:1:"), r.stderr
    assert listing(inst) == []
    # A failed replacement leaves the old script as it was.
    put(inst, "main", GOOD)
    assert put(inst, "main", b"if {").returncode == 2
    assert inst.cli_ok("sieve", "get", ALICE, "main").stdout == GOOD


def test_limits(inst):
    inst.set_config({"sieve.max_script_size": "100", "sieve.max_scripts": "2"})
    r = put(inst, "big", b"keep;" + b" " * 100)
    assert r.returncode == 2
    assert r.stderr == b"-:1:1: error: script larger than 100 bytes\n"
    assert put(inst, "exact", b"keep;" + b" " * 95).returncode == 0
    assert put(inst, "two", b"keep;\n").returncode == 0
    r = put(inst, "three", b"keep;\n")
    assert r.returncode == 1 and b"2 scripts, the most allowed" in r.stderr
    # Replacing an existing one is fine at the limit.
    assert put(inst, "two", b"discard;\n").returncode == 0
    assert [row[0] for row in listing(inst)] == ["exact", "two"]


@pytest.mark.parametrize("args, code, text", [
    (["get", ALICE, "nope"], 1, b'has no script "nope"'),
    (["activate", ALICE, "nope"], 1, b'has no script "nope"'),
    (["delete", ALICE, "nope"], 1, b'has no script "nope"'),
    (["list", "nobody@example.test"], 1, b"no such user nobody@example.test"),
    (["list", "not-an-address"], 2, b"not a valid address"),
    (["get", ALICE, "a\tb"], 2, b"no control characters"),
    (["get", ALICE, ""], 2, b"1 to 128 bytes"),
    (["get", ALICE, "x" * 129], 2, b"1 to 128 bytes"),
    (["put", ALICE, "x"], 2, b"expects USER NAME FILE"),
    (["list"], 2, b"expects USER"),
])
def test_errors(inst, args, code, text):
    r = inst.cli("sieve", *args)
    assert r.returncode == code, r
    assert text in r.stderr, r.stderr
