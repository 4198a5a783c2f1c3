#!/bin/sh
# Runs every libFuzzer target of a fuzz build for a while.
#
#   sh scripts/run-fuzz.sh BUILD_DIR SECONDS
#
# BUILD_DIR was set up with -Dfuzz=true (see fuzz/meson.build).  Each target
# runs for SECONDS (-max_total_time) on a copy of its seed corpus in a
# temporary folder, with its dictionary, so new corpus files never land in
# the repository.  Crash inputs go to fuzz/artifacts/ (ignored by git).
# Exits non-zero if any target crashes, leaks or fails to run.
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
seconds=$2
case $seconds in
'' | *[!0-9]*)
	echo "run-fuzz: SECONDS must be a whole number" >&2
	exit 2
	;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
# Every target fuzz/meson.build declares (one fuzz/fuzz-NAME.c each), so a
# new target runs without being listed twice.
targets=$(cd "$root/fuzz" && ls fuzz-*.c | sed 's/\.c$//' | sort)
artifacts=$root/fuzz/artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/tern-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM

# UBSan only reports by default; make it a crash libFuzzer notices.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"

failed=""
for t in $targets; do
	bin=$build/fuzz/$t
	if [ ! -x "$bin" ]; then
		echo "run-fuzz: $bin not found (set up $build with -Dfuzz=true and build it)" >&2
		failed="$failed $t"
		continue
	fi
	corpus=$work/$t
	mkdir -p "$corpus"
	if [ -d "$root/fuzz/corpus/$t" ]; then
		cp "$root/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null
	fi
	dict=""
	if [ -f "$root/fuzz/$t.dict" ]; then
		dict="-dict=$root/fuzz/$t.dict"
	fi
	log=$work/$t.log
	echo "run-fuzz: $t for ${seconds}s"
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$artifacts/$t-" -print_final_stats=1 \
		$dict "$corpus" >"$log" 2>&1
	rc=$?
	grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | sed "s/^/  /"
	if [ $rc -ne 0 ]; then
		echo "run-fuzz: $t FAILED (exit $rc); last lines of its log:" >&2
		tail -n 40 "$log" >&2
		failed="$failed $t"
	fi
done

if [ -n "$failed" ]; then
	echo "run-fuzz: failures:$failed (inputs in fuzz/artifacts/)" >&2
	exit 1
fi
echo "run-fuzz: all targets ran ${seconds}s without a crash"
