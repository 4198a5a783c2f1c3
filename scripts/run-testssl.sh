#!/bin/sh
# Runs testssl.sh (Debian package testssl.sh, command `testssl`) against
# every TLS entry point of a throw-away Tern instance: SMTP STARTTLS, POP3
# STLS and implicit-TLS pop3s.  Slow (minutes per listener), so it is run
# by hand, not by `make test`; docs/security.md summarises its findings.
#
#   sh scripts/run-testssl.sh [TERN_BIN] [OUT_DIR]
#
# TERN_BIN defaults to build/tern; OUT_DIR (default testssl-out/) receives
# one .log (the human-readable report) and one .json per listener.  Extra
# testssl options can be given in TESTSSL_OPTS (e.g. "--fast").
set -eu

bin=${1:-build/tern}
out=${2:-testssl-out}
testssl=$(command -v testssl || command -v testssl.sh || true)
if [ -z "$testssl" ]; then
	echo "run-testssl: testssl not found (apt-get install testssl.sh)" >&2
	exit 2
fi
[ -x "$bin" ] || { echo "run-testssl: no tern binary at $bin" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
mkdir -p "$out"
out=$(cd "$out" && pwd)

dir=$(mktemp -d /tmp/tern-testssl.XXXXXX)
chmod 755 "$dir"
base=$((40000 + $$ % 20 * 1000))
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"$bin" init "$dir/t" --port-base "$base" --hostname mx.example.test \
	--domain example.test >/dev/null
"$bin" -c "$dir/t/tern.conf" serve >"$out/serve.log" 2>&1 &
pid=$!
i=0
until grep -q 'worker action=start' "$out/serve.log" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "run-testssl: server did not start" >&2; exit 1; }
	sleep 0.1
done

run() {
	name=$1
	shift
	echo "run-testssl: $name ..."
	rm -f "$out/$name.json" "$out/$name.log"
	# testssl exits non-zero when it finds something; the report says what
	"$testssl" --quiet --color 0 --warnings batch --ip one ${TESTSSL_OPTS:-} \
		--jsonfile "$out/$name.json" --logfile "$out/$name.log" "$@" >/dev/null 2>&1 || true
	grep -E '"severity" *: *"(LOW|MEDIUM|HIGH|CRITICAL|WARN)"' "$out/$name.json" | wc -l |
		sed "s/^/run-testssl: $name: findings LOW or worse (see $name.json): /"
}

run smtp-starttls --starttls smtp "127.0.0.1:$((base + 25))"
run pop3-stls --starttls pop3 "127.0.0.1:$((base + 110))"
run pop3s "127.0.0.1:$((base + 995))"
echo "run-testssl: reports in $out"
