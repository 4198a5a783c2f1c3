#!/bin/sh
# Regenerates the expected IMAP answers of the MIME corpus from Dovecot.
#
#   sh scripts/gen-mime-expect.sh [NAME ...]
#
# For every tests/unit/mime-corpus/NAME.eml (or only the NAMEs given) this
# puts the message alone in a throw-away Maildir, runs Dovecot's imap
# binary in pre-authenticated mode on stdin (no daemon, no listener, no
# system service) and stores Dovecot's answers beside the message:
#
#   NAME.envelope        FETCH ENVELOPE
#   NAME.body            FETCH BODY
#   NAME.bodystructure   FETCH BODYSTRUCTURE
#   NAME.sections        BODY.PEEK[s] and BINARY.PEEK[s] for a fixed list of
#                        section specs: records "== KIND SPEC LEN" followed by
#                        LEN bytes and "\n", or "== KIND SPEC NIL" / "NO".
#
# tests/unit/test-mime.c compares Tern's output with these files byte for
# byte.  Where Tern deliberately differs, a file NAME.X.tern beside NAME.X
# holds Tern's answer and the test says why; this script never touches
# those.  Needs dovecot-imapd (apt-get install dovecot-imapd) and python3;
# not run by `make test`.  Run as root it runs imap as user nobody.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
corpus=$root/tests/unit/mime-corpus
imap=/usr/lib/dovecot/imap
if [ ! -x "$imap" ]; then
	echo "gen-mime-expect: $imap not found (apt-get install dovecot-imapd)" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-mime-expect.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/run"
runas=""
if [ "$(id -u)" = 0 ]; then
	runas="runuser -u nobody --"
	chmod 755 "$work"
fi
cat >"$work/dovecot.conf" <<EOF
mail_location = maildir:$work/Maildir
ssl = no
log_path = $work/log
base_dir = $work/run
protocols = imap
listen =
first_valid_uid = 1
EOF
if [ -n "$runas" ]; then
	printf 'mail_uid = nobody\nmail_gid = nogroup\n' >>"$work/dovecot.conf"
fi

# Section specs asked of every message; Dovecot answers NIL/empty for the
# ones a message does not have, and that is compared too.
specs="HEADER TEXT 1 1.MIME 1.HEADER 1.TEXT 2 2.MIME 2.HEADER 2.TEXT 2.1 2.1.MIME 2.2 2.1.1 2.1.2 2.2.1 3 3.MIME 4 5 1.1 1.1.1 1.2 1.2.1 1.2.2"
binspecs="1 2 3 4 5 1.1 2.1 2.2 1.2.2"
# HEADER.FIELDS specs hold blanks: separated by '|'.
hfspecs="HEADER.FIELDS (SUBJECT FROM)|HEADER.FIELDS.NOT (SUBJECT FROM RECEIVED)|2.HEADER.FIELDS (SUBJECT CONTENT-TYPE)|2.HEADER.FIELDS.NOT (SUBJECT)|1.HEADER.FIELDS (CONTENT-TYPE)"

if [ $# -gt 0 ]; then
	names="$*"
else
	names=$(cd "$corpus" && for f in ./*.eml; do basename "$f" .eml; done)
fi

for name in $names; do
	msg=$corpus/$name.eml
	[ -f "$msg" ] || { echo "gen-mime-expect: no $msg" >&2; exit 1; }
	rm -rf "$work/Maildir"
	mkdir -p "$work/Maildir/cur" "$work/Maildir/new" "$work/Maildir/tmp"
	cp "$msg" "$work/Maildir/cur/1.eml:2,"
	[ -z "$runas" ] || chown -R nobody:nogroup "$work"
	# Dovecot may interleave the answers of pipelined commands, so each
	# run of imap gets one FETCH: one for the structure and every BODY
	# section, then one per BINARY section (an unknown encoding fails the
	# whole FETCH).
	items="ENVELOPE BODY BODYSTRUCTURE"
	for s in $specs; do items="$items BODY.PEEK[$s]"; done
	items="$items $(printf '%s' "$hfspecs" | sed 's/^/BODY.PEEK[/; s/|/] BODY.PEEK[/g; s/$/]/')"
	: >"$work/out"
	for fetch in "$items" $(for s in $binspecs; do echo "BINARY.PEEK[$s]"; done); do
		printf 'x EXAMINE INBOX\r\nf FETCH 1 (%s)\r\nz LOGOUT\r\n' "$fetch" >"$work/in"
		# imap wants a pipe or socket on stdin (it polls it), not a file.
		# shellcheck disable=SC2002
		cat "$work/in" | $runas env -i USER=nobody HOME="$work" PATH=/usr/bin:/bin \
			"$imap" -c "$work/dovecot.conf" >>"$work/out"
	done
	SPECS="$specs" BINSPECS="$binspecs" HFSPECS="$hfspecs" /usr/bin/python3 - "$work/out" "$corpus/$name" <<'PY'
import os, re, sys

data = open(sys.argv[1], "rb").read()
dest = sys.argv[2]

def value_end(d, i):
    """End of one IMAP value starting at d[i]: atom/NIL, quoted, literal or list."""
    depth = 0
    while True:
        c = d[i:i + 1]
        if c == b"(":
            depth += 1; i += 1
        elif c == b")":
            depth -= 1; i += 1
        elif c == b'"':
            i += 1
            while d[i:i + 1] != b'"':
                i += 2 if d[i:i + 1] == b"\\" else 1
            i += 1
        elif c == b"{" or d[i:i + 2] == b"~{":
            m = re.match(rb"~?\{(\d+)\}\r\n", d[i:])
            i += m.end() + int(m.group(1))
        elif c == b" ":
            i += 1
            continue
        else:
            m = re.match(rb"[^ ()\r\n]+", d[i:])
            i += m.end()
        if depth == 0:
            return i

def responses():
    """Per FETCH command: dict item -> raw value, or None for NO/BAD."""
    pos = 0
    cur = None
    while pos < len(data):
        nl = data.index(b"\r\n", pos)
        line = data[pos:nl]
        if line.startswith(b"* 1 FETCH ("):
            cur = {}
            i = pos + len(b"* 1 FETCH (")
            while data[i:i + 1] != b")":
                sp = data.index(b" ", i)
                br = data.find(b"[", i, sp)
                if br >= 0:  # a section may hold blanks: up to its "]"
                    sp = data.index(b" ", data.index(b"]", br))
                item = data[i:sp]
                end = value_end(data, sp + 1)
                cur[item] = data[sp + 1:end]
                i = end
                if data[i:i + 1] == b" ":
                    i += 1
            pos = data.index(b"\r\n", i) + 2
            continue
        if line.startswith(b"f OK"):
            yield cur
            cur = None
        elif line.startswith(b"f NO") or line.startswith(b"f BAD"):
            yield None
        pos = nl + 2

def decode(v):
    if v == b"NIL":
        return None
    if v.startswith(b'"'):
        return re.sub(rb"\\(.)", rb"\1", v[1:-1])
    m = re.match(rb"~?\{(\d+)\}\r\n", v)
    return v[m.end():]

res = list(responses())
main = res[0]
for ext in ("envelope", "body", "bodystructure"):
    with open(dest + "." + ext, "wb") as f:
        f.write(main[ext.upper().encode()] + b"\n")
with open(dest + ".sections", "wb") as f:
    for s in os.environ["SPECS"].split():
        b = decode(main[b"BODY[" + s.encode() + b"]"])
        if b is None:
            f.write(b"== BODY %s NIL\n" % s.encode())
        else:
            f.write(b"== BODY %s %d\n" % (s.encode(), len(b)) + b + b"\n")
    for s in os.environ["HFSPECS"].split("|"):
        b = decode(main[b"BODY[" + s.encode() + b"]"])
        if b is None:
            f.write(b"== BODY %s NIL\n" % s.encode())
        else:
            f.write(b"== BODY %s %d\n" % (s.encode(), len(b)) + b + b"\n")
    for s, r in zip(os.environ["BINSPECS"].split(), res[1:]):
        if r is None:
            f.write(b"== BINARY %s NO\n" % s.encode())
            continue
        b = decode(r[b"BINARY[" + s.encode() + b"]"])
        if b is None:
            f.write(b"== BINARY %s NIL\n" % s.encode())
        else:
            f.write(b"== BINARY %s %d\n" % (s.encode(), len(b)) + b + b"\n")
PY
	echo "gen-mime-expect: $name"
done
