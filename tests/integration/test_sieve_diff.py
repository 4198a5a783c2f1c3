"""Differential test of `tern sieve test` against Pigeonhole's sieve-test.

Every script under tests/data/sieve/scripts runs on every message under
tests/data/sieve/messages in both implementations; the sets of actions
must agree after both outputs are put into one canonical form:

    ("store", MAILBOX, copy, frozenset(lowercased flags))   keep = INBOX
    ("redirect", ADDRESS, copy)
    ("reject", REASON) / ("ereject", REASON)
    ("discard",)
    ("vacation", SECONDS, SUBJECT, FROM, HANDLE, REASON)   None: not given
    ("error",)        the run failed and the implicit keep was taken

sieve-test runs standalone: a tiny dovecot config in a temp folder owned
by nobody (Dovecot refuses mail access as root), `-c` that config.

Includes (RFC 6609) come from tests/data/sieve/include/personal and
global, given to sieve-test as its script folders.  Include errors are
not in the corpus (Pigeonhole finds a missing script or a loop when it
compiles, Tern when it runs, as RFC 6609 allows): tests/unit covers them.

The duplicate test (RFC 7352) is compared by the entries it would record
("track", HANDLE, LAST): both tools run with an empty tracking list.

Not in the corpus, covered by tests/unit/test-sieve-run.c instead:
ereject (Debian's Pigeonhole does not know it), and `fileinto :copy "A";
fileinto "A";`, where Pigeonhole keeps the implicit keep although the
second fileinto lacks :copy; Tern follows RFC 3894 and RFC 5228 2.10.3
(one copy in A, the implicit keep cancelled).

spamtest and virustest (RFC 5235) are compared with no spam or virus
result given (Pigeonhole without a status header, `tern sieve test`):
both say "0".  Not compared: the :count of such an untested result, which
RFC 5235 3.1 says is 0 (Tern) and Pigeonhole counts as 1.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "sieve")
SCRIPTS = sorted(os.listdir(os.path.join(DATA, "scripts")))
MESSAGES = sorted(os.listdir(os.path.join(DATA, "messages")))
SIEVE_TEST = "/usr/bin/sieve-test"
ENV_FROM = "alice@example.org"
ENV_TO = "bob+lists@example.com"
NOBODY = 65534

if not os.path.exists(SIEVE_TEST):
    raise RuntimeError("%s is missing: scripts/install-deps.sh installs dovecot-sieve" % SIEVE_TEST)


@pytest.fixture(scope="module")
def pigeonhole_dir():
    d = tempfile.mkdtemp(prefix="tern-sieve-diff-")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "dovecot.conf"), "w") as f:
        # editheader, spamtest, spamtestplus and virustest are off by
        # default in Pigeonhole; without a status header configured its
        # spamtest and virustest say "not tested", as Tern's `sieve test` does
        f.write("mail_location = maildir:%s/mail\n"
                "log_path = /dev/stderr\n"
                "plugin {\n  sieve_extensions = +editheader +spamtest +spamtestplus +virustest\n"
                "  sieve = file:%s/include/personal;active=%s/active.sieve\n"
                "  sieve_global = %s/include/global\n}\n" % (d, d, d, d))
    for sub in ("scripts", "messages", "include"):
        shutil.copytree(os.path.join(DATA, sub), os.path.join(d, sub))
    if os.geteuid() == 0:
        for root, dirs, files in os.walk(d):
            for n in dirs + files + ["."]:
                os.chown(os.path.join(root, n), NOBODY, NOBODY)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_pigeonhole(d, script, message):
    cmd = [SIEVE_TEST, "-c", os.path.join(d, "dovecot.conf"), "-f", ENV_FROM,
           "-r", ENV_TO, os.path.join(d, "scripts", script),
           os.path.join(d, "messages", message)]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
               "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env={"HOME": d, "PATH": "/usr/bin:/bin"})
    # 1: the script failed at runtime and the implicit keep was taken
    assert p.returncode == 0 or (p.returncode == 1 and "implicit keep" in p.stderr), \
        p.stdout + p.stderr
    return p.stdout, p.stderr


def canon_pigeonhole(out, err):
    acts = set()
    if "resolved with successful implicit keep" in err or \
            "final result: failed" in err:
        return {("error",), ("store", "INBOX", False, frozenset())}
    cur = None
    items = []
    body = None  # the lines of a vacation message being read
    for line in out.splitlines():
        if body is not None:
            if line == "END MESSAGE":
                cur["reason"] = "\n".join(body)
                body = None
            else:
                body.append(line)
            continue
        if line == "START MESSAGE" and cur is not None:
            body = []
            continue
        m = re.match(r"^\s+=> (\w+)\s*: (.*)$", line)
        if m and cur is not None:
            cur[m.group(1)] = m.group(2)
            continue
        m = re.match(r"^ \* (.*)$", line)
        if m:
            cur = {"what": m.group(1), "copy": False, "flags": frozenset()}
            items.append(cur)
            continue
        m = re.match(r"^\s+\+ (.*)$", line)
        if m and cur is not None:
            sub = m.group(1)
            if sub == "preserve implicit keep":
                cur["copy"] = True
            elif sub.startswith("add IMAP flags: "):
                cur["flags"] = frozenset(f.lower() for f in sub[16:].split())
    for it in items:
        w = it["what"]
        if w.startswith("store message in folder: "):
            acts.add(("store", w[25:], it["copy"], it["flags"]))
        elif w.startswith("redirect message to: "):
            acts.add(("redirect", w[21:].strip("<>"), it["copy"]))
        elif w.startswith("reject message with reason: "):
            acts.add(("reject", w[28:]))
        elif w.startswith("discard"):
            acts.add(("discard",))
        elif re.match(r"^track (last )?duplicate", w):
            # the entry the duplicate test would record (RFC 7352)
            handle = w.split("with handle: ", 1)[1] if "with handle: " in w else ""
            acts.add(("track", handle, w.startswith("track last ")))
        elif w == "send vacation message:":
            # a handle Pigeonhole made up from the parameters starts
            # with the reason (and goes on over several lines)
            handle, reason = it.get("handle"), it.get("reason", "")
            if handle is not None and ("MIME>" in handle or reason.startswith(handle)):
                handle = None
            acts.add(("vacation", int(it["seconds"]), it.get("subject"), it.get("from"),
                      handle, reason.rstrip("\n")))
        else:
            raise AssertionError("unknown sieve-test action: " + w)
    return acts


def canon_tern(out):
    acts = set()
    vac = dup = None
    for line in out.splitlines() + [""]:
        if dup is not None and line.startswith("  "):
            key, _, val = line[2:].partition(" ")
            dup[key] = val
            continue
        if dup is not None:
            acts.add(("track", dup.get("handle", ""), "last" in dup))
            dup = None
        if line.startswith("duplicate "):
            dup = {}
            continue
        if vac is not None and line.startswith("  "):
            key, _, val = line[2:].partition(" ")
            vac[key] = val
            continue
        if vac is not None:
            handle = vac.get("handle", "")
            acts.add(("vacation", int(vac["seconds"]), vac.get("subject"), vac.get("from"),
                      handle[2:] if handle.startswith("h:") else None,
                      vac["reason"].replace("\\r\\n", "\n").replace("\\n", "\n").rstrip("\n")))
            vac = None
        if line == "":
            continue
        if line.startswith("vacation "):
            vac = {"reason": line[9:]}
            continue
        if line.startswith("error: "):
            acts.add(("error",))
            continue
        flags = frozenset()
        if " flags: " in line:
            line, fl = line.split(" flags: ", 1)
            flags = frozenset(f.lower() for f in fl.split())
        copy = line.endswith(" copy") or " copy " in line
        line = line.replace(" copy", "").replace(" create", "")
        if line.startswith("keep"):
            acts.add(("store", "INBOX", False, flags))
        elif line.startswith("fileinto "):
            acts.add(("store", line[9:], copy, flags))
        elif line.startswith("redirect "):
            acts.add(("redirect", line[9:], copy))
        elif line.startswith("reject ") or line.startswith("ereject "):
            # Pigeonhole's sieve-test reports ereject as reject
            # sieve-test shows each control character as "?"
            reason = line.split(" ", 1)[1].replace("\\r", "?").replace("\\n", "?")
            acts.add(("reject", reason))
        elif line == "discard":
            acts.add(("discard",))
        else:
            raise AssertionError("unknown tern action: " + line)
    return acts


@pytest.mark.parametrize("message", MESSAGES)
@pytest.mark.parametrize("script", SCRIPTS)
def test_same_actions(tern_bin, pigeonhole_dir, script, message):
    out, err = run_pigeonhole(pigeonhole_dir, script, message)
    with open(os.path.join(DATA, "messages", message), "rb") as f:
        p = subprocess.run([tern_bin, "sieve", "test", os.path.join(DATA, "scripts", script),
                            "--from", ENV_FROM, "--to", ENV_TO,
                            "--include-dir", os.path.join(DATA, "include", "personal"),
                            "--global-dir", os.path.join(DATA, "include", "global")],
                           stdin=f, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    want = canon_pigeonhole(out, err)
    got = canon_tern(p.stdout)
    with open(os.path.join(DATA, "messages", message), "rb") as f:
        head = f.read().split(b"\r\n\r\n", 1)[0]
    if script.endswith("-duplicate.sieve") and not re.search(rb"(?im)^message-id:", head):
        # A message without Message-ID has no unique ID: Tern's bare
        # duplicate test is false and records nothing (as Pigeonhole does
        # for a missing :header field); Pigeonhole records one anyway,
        # which would make all such messages duplicates of each other.
        want.discard(("track", "", False))
    assert got == want, "tern:\n%s\nsieve-test:\n%s%s" % (p.stdout, out, err)


def test_check_reports_line_and_column(tern_bin, tmp_path):
    bad = tmp_path / "bad.sieve"
    bad.write_text('require "fileinto";\nif true {\n  fileinto "x"\n}\n')
    p = subprocess.run([tern_bin, "sieve", "check", str(bad)], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr == "%s:4:1: error: expected ';', found '}'\n" % bad
    good = tmp_path / "good.sieve"
    good.write_text('require "fileinto";\nfileinto "x";\n')
    p = subprocess.run([tern_bin, "sieve", "check", str(good)], capture_output=True, text=True)
    assert (p.returncode, p.stdout) == (0, "OK\n")


def test_deep_nesting_refused(tern_bin, tmp_path):
    deep = tmp_path / "deep.sieve"
    deep.write_text("if true {" * 10000 + "}" * 10000)
    p = subprocess.run([tern_bin, "sieve", "check", str(deep)], capture_output=True, text=True)
    assert p.returncode == 2
    assert "nested deeper than 64" in p.stderr


def test_mailbox_exists_option(tern_bin, tmp_path):
    s = tmp_path / "mb.sieve"
    s.write_text('require ["mailbox", "fileinto"];\n'
                 'if mailboxexists "Work" { fileinto "Work"; } else { fileinto "Other"; }\n')
    msg = b"From: a@b.c\r\nSubject: x\r\n\r\nbody\r\n"
    for extra, want in (([], "fileinto Other\n"), (["--mailbox-exists", "Work"], "fileinto Work\n")):
        p = subprocess.run([tern_bin, "sieve", "test", str(s)] + extra, input=msg,
                           capture_output=True)
        assert p.returncode == 0
        assert p.stdout.decode() == want
