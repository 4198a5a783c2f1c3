#!/bin/bash
# bench/smtp/run.sh - SMTP intake benchmark: Tern against Postfix, same run.
#
# smtp-source (Postfix's load generator) sends MESSAGES messages of SIZE
# bytes over SESSIONS parallel sessions to each server in turn; for each
# server it reports
#   accepted/s  = MESSAGES / wall time of smtp-source
#   delivered/s = MESSAGES / time from the start of smtp-source until all
#                 MESSAGES are in the mailboxes
# Postfix: virtual(8) Maildir delivery; "delivered" = files in the Maildirs'
# new/ (polled every POLL seconds once smtp-source has finished).
# Tern: answers 250 only once the message is stored (fsync), so delivered
# time = accepted time; the count is checked with `tern mail list`.
#
# Environment (all optional):
#   MESSAGES=20000 SESSIONS=20 SIZE=4096 RUNS=3
#   RCPTS=1        1: every message to test1@example.test (smtp-source has no
#                  round-robin); N>1: N smtp-source processes side by side,
#                  SESSIONS/N sessions and MESSAGES/N messages each, process
#                  k sending to testk@example.test (N <= 20)
#   SOURCE_OPTS=   extra smtp-source flags, e.g. "-d" (keep each session's
#                  connection open between messages; default is one
#                  connection per message, as smtp-source does)
#   ONLY=both      tern | postfix | both
#   TERN=/work/main/build/tern
#   TERN_CONF_EXTRA=  extra "key = value" lines appended to tern.conf
#                     (e.g. "log.level = warn"; separate lines with \n)
#   POLL=0.1       Maildir poll interval (s)
#   KEEP=0         1: keep the temp folder (logs, mail) after the run
#   RESULTS=FILE   also write the per-run figures as TSV to FILE
#   MAILAUTH=0     1: sender authentication on both (bench/mailauth/run.sh):
#                  a DKIM-signed message of SIZE body bytes (smtp-source -F),
#                  every client checked, SPF/DKIM/DMARC from a local unbound;
#                  Postfix with OpenDKIM + OpenDMARC + policyd-spf
#   DNS_ADDR=127.53.0.1  where that unbound listens (port 53)
# Needs root (Postfix and its vmail user; Tern's privilege drop).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
RUNS=${RUNS:-3}
RCPTS=${RCPTS:-1}
SOURCE_OPTS=${SOURCE_OPTS:-}
ONLY=${ONLY:-both}
TERN=${TERN:-$REPO/build/tern}
TERN_CONF_EXTRA=${TERN_CONF_EXTRA:-}
POLL=${POLL:-0.1}
KEEP=${KEEP:-0}
RESULTS=${RESULTS:-}
MAILAUTH=${MAILAUTH:-0}
DNS_ADDR=${DNS_ADDR:-127.53.0.1}
SOURCE=/usr/sbin/smtp-source
PEERSH=$HERE/postfix-peer.sh
STACKSH=$REPO/bench/mailauth/stack.sh
FROM=bench@client.test

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (Postfix, vmail user)"
case $ONLY in tern | postfix | both) ;; *) die "ONLY must be tern, postfix or both" ;; esac
[ "$RCPTS" -ge 1 ] && [ "$RCPTS" -le 20 ] || die "RCPTS must be 1..20"
[ $((SESSIONS % RCPTS)) = 0 ] && [ $((MESSAGES % RCPTS)) = 0 ] \
	|| die "SESSIONS and MESSAGES must be multiples of RCPTS"
if [ "$ONLY" != postfix ]; then
	[ -x "$TERN" ] || die "$TERN not built (cd $REPO && make build)"
fi

WORK=$(mktemp -d /tmp/tern-bench-smtp.XXXXXX)
chmod 755 "$WORK"     # Postfix and Tern workers run as other users
TERN_PID=
TERN_DIR=
POSTFIX_UP=0
DNS_UP=0
if [ "$ONLY" != postfix ]; then
	# a private copy: others may rebuild build/tern while this runs
	cp "$TERN" "$WORK/tern.bin"
	TERN_ORIG=$TERN
	TERN=$WORK/tern.bin
fi

# --- process helpers --------------------------------------------------------

# descendants PID: PID and every process below it
descendants() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			q[1] = root; n = 1; out = root
			for (i = 1; i <= n; i++) {
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) { q[++n] = k[j]; out = out " " k[j] }
			}
			print out
		}'
}

# cpu_of ROOTPID...: clock ticks of CPU used by the live trees under the
# ROOTPIDs, plus what their reaped children used (cutime/cstime of every
# live process: Postfix's spawn(8) reaps the policy servers it started)
cpu_of() {
	local r p total=0 f
	for r in "$@"; do
		for p in $(descendants "$r"); do
			f=$(cat /proc/$p/stat 2>/dev/null) || continue
			f=${f##*) }   # fields after "(comm) ": state ppid ... utime(12) stime(13) cutime(14) cstime(15)
			total=$((total + $(echo "$f" | awk '{ print $12 + $13 + $14 + $15 }')))
		done
	done
	echo $total
}
HZ=$(getconf CLK_TCK)

stop_tern() {
	[ -n "$TERN_PID" ] || return 0
	local pids n=0
	pids=$(descendants "$TERN_PID")
	kill -TERM "$TERN_PID" 2>/dev/null || true
	while kill -0 "$TERN_PID" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	wait "$TERN_PID" 2>/dev/null || true
	TERN_PID=
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for p in $SRC_PIDS; do kill "$p" 2>/dev/null || true; done
	stop_tern
	if [ $POSTFIX_UP = 1 ]; then
		if [ "$MAILAUTH" = 1 ]; then sh "$STACKSH" peer-stop "$WORK/postfix"; else sh "$PEERSH" stop "$WORK/postfix"; fi
	fi
	[ $DNS_UP = 0 ] || sh "$STACKSH" dns-stop "$WORK/dns"
	if [ "$KEEP" = 1 ] || [ $rc != 0 ]; then
		log "kept $WORK (logs: postfix/postfix.log, tern-*/tern.log)"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- ports ------------------------------------------------------------------

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

free_port() { # free_port START
	local p=$1
	while port_busy $p; do p=$((p + 1)); done
	echo $p
}

# a port base N with every standard listener N+port free
free_base() {
	local b off ok
	for b in $(seq 20000 1000 59000); do
		ok=1
		for off in 25 80 110 143 443 465 587 993 995 4190; do
			port_busy $((b + off)) && { ok=0; break; }
		done
		[ $ok = 1 ] && { echo $b; return; }
	done
	die "no free port base"
}

wait_banner() { # wait_banner PORT SECONDS
	local i line
	for i in $(seq 1 $(($2 * 10))); do
		if { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
			line=
			read -r -t 5 line <&3 || true
			printf 'QUIT\r\n' >&3 2>/dev/null || true
			exec 3>&- 3<&-
			[[ $line == 220* ]] && return 0
		fi
		sleep 0.1
	done
	return 1
}

# --- servers ----------------------------------------------------------------

start_postfix() {
	PF_PORT=$(free_port 2525)
	sh "$PEERSH" setup "$WORK/postfix" "$WORK/postfix-mail" "$PF_PORT"
	if [ "$MAILAUTH" = 1 ]; then
		sh "$STACKSH" peer-setup "$WORK/postfix" "$DNS_ADDR" verify "$WORK/dns/client.zone"
		POSTFIX_UP=1
		sh "$STACKSH" peer-start "$WORK/postfix"
	else
		POSTFIX_UP=1
		sh "$PEERSH" start "$WORK/postfix"
	fi
	PF_MASTER=$(tr -dc 0-9 <"$WORK/postfix/queue/pid/master.pid")
	# the milters run beside Postfix: their CPU counts for it
	PF_PIDS="$PF_MASTER $([ "$MAILAUTH" = 0 ] || sh "$STACKSH" milter-pids "$WORK/postfix" | tr '\n' ' ')"
	wait_banner "$PF_PORT" 10 || die "Postfix does not answer on $PF_PORT"
}

start_tern() { # start_tern RUN
	local base
	TERN_DIR=$WORK/tern-$1
	mkdir -p "$TERN_DIR"
	chmod 755 "$TERN_DIR"
	base=$(free_base)
	TERN_PORT=$((base + 25))
	"$TERN" init "$TERN_DIR" --port-base "$base" --domain example.test \
		--hostname mx.example.test $([ "$MAILAUTH" = 0 ] || echo "--resolver $DNS_ADDR") \
		>"$TERN_DIR.init.out" 2>&1 \
		|| { cat "$TERN_DIR.init.out" >&2; die "tern init failed"; }
	if [ "$MAILAUTH" = 1 ]; then
		# every client is checked; no greeting delay (Postfix has no
		# postscreen here) and no per-address connection cap (one client)
		printf '%s\n' "mailauth.trusted = 192.0.2.1" "spam.pregreet_wait = 0" \
			"spam.max_connections_per_ip = 0" >>"$TERN_DIR/tern.conf"
	fi
	[ -z "$TERN_CONF_EXTRA" ] || printf '%b\n' "$TERN_CONF_EXTRA" >>"$TERN_DIR/tern.conf"
	for i in $(seq 1 20); do
		"$TERN" -c "$TERN_DIR/tern.conf" user add "test$i@example.test" --password pass \
			>>"$TERN_DIR.init.out" 2>&1 \
			|| { cat "$TERN_DIR.init.out" >&2; die "tern user add failed"; }
	done
	"$TERN" -c "$TERN_DIR/tern.conf" serve >"$TERN_DIR/tern.log" 2>&1 &
	TERN_PID=$!
	wait_banner "$TERN_PORT" 20 || { tail -20 "$TERN_DIR/tern.log" >&2; die "Tern does not answer on $TERN_PORT"; }
	# the master restarts a worker that dies: remember who was there at start
	TERN_PIDS0=$(descendants "$TERN_PID")
}

tern_count() {
	local total=0 i n
	for i in $(seq 1 "$RCPTS"); do
		n=$("$TERN" -c "$TERN_DIR/tern.conf" mail list "test$i@example.test" 2>>"$TERN_DIR/mail-list.err" | tail -n +2 | grep -c . || true)
		total=$((total + n))
	done
	echo $total
}

postfix_count() {
	local total=0 i n
	for i in $(seq 1 "$RCPTS"); do
		n=$(ls -f "$WORK/postfix-mail/test$i/Maildir/new" | wc -l)
		total=$((total + n - 2))
	done
	echo $total
}

# --- sender authentication (MAILAUTH=1) ---------------------------------------

DNS_PID=
dns_cpu() { if [ -n "$DNS_PID" ]; then cpu_of "$DNS_PID"; else echo 0; fi; }
dns_note() { # dns_note SERVER RUN TICKS0 TICKS1: unbound's CPU during the run
	[ "$MAILAUTH" = 1 ] || return 0
	log "$1 run $2: unbound (shared DNS, not in cpu_ms/msg) used $(awk -v c=$(($4 - $3)) -v hz="$HZ" -v m="$MESSAGES" 'BEGIN { printf "%.3f", c * 1000 / hz / m }') ms/msg"
}

# the header section of a stored message, its Authentication-Results fields
# unfolded, one per line
ar_fields() { sed -n '1,/^\r\?$/p' | tr -d '\r' | awk '
	/^[ \t]/ { if (ar) cur = cur " " $0; next }
	{ if (ar) print cur; ar = tolower($0) ~ /^authentication-results:/; cur = $0 }
	END { if (ar) print cur }' | tr -s ' \t' ' '; }

# auth_verdict SERVER RUN PASSED TOTAL SAMPLEFILE: log the counts; a
# message without all three passes keeps the temp folder
auth_verdict() {
	log "$1 run $2: $3 of $4 messages with spf=pass, dkim=pass and dmarc=pass"
	if [ "$2" = 1 ]; then sed 's/^/#   /' "$5" >&2; fi
	local k
	for k in spf dkim dmarc; do
		grep -q "$k=pass" "$5" || { log "$1 run $2: no $k=pass in the sample's Authentication-Results"; KEEP=1; }
	done
	[ "$3" = "$4" ] || { log "$1 run $2: not every message passed every check"; KEEP=1; }
}

auth_check_postfix() {
	[ "$MAILAUTH" = 1 ] || return 0
	local n f
	# Postfix's three fields: policyd-spf's, OpenDKIM's and OpenDMARC's
	n=$(find "$WORK/postfix-mail" -path '*/Maildir/new/*' -type f -print0 \
		| xargs -0 -r awk 'FNR == 1 { s = k = d = 0 } /^\r?$/ { if (s && k && d) ok++; nextfile }
			/spf=pass/ { s = 1 } /dkim=pass/ { k = 1 } /dmarc=pass/ { d = 1 }
			END { print ok + 0 }' | awk '{ t += $1 } END { print t + 0 }')
	f=$(find "$WORK/postfix-mail/test1/Maildir/new" -type f -print -quit)
	if [ -n "$f" ]; then ar_fields <"$f"; fi >"$WORK/ar-postfix-$1"
	auth_verdict postfix "$1" "$n" "$MESSAGES" "$WORK/ar-postfix-$1"
}

auth_check_tern() {
	[ "$MAILAUTH" = 1 ] || return 0
	local n
	n=$(grep -c ' action=mailauth spf=pass dkim=pass dmarc=pass ' "$TERN_DIR/tern.log" || true)
	"$TERN" -c "$TERN_DIR/tern.conf" mail cat test1@example.test INBOX 1 2>&1 | ar_fields >"$WORK/ar-tern-$1"
	auth_verdict tern "$1" "$n" "$MESSAGES" "$WORK/ar-tern-$1"
}

BODY_OPTS="-l $SIZE"
if [ "$MAILAUTH" = 1 ]; then
	sh "$STACKSH" keys "$WORK/dns"
	DNS_UP=1
	sh "$STACKSH" dns-start "$WORK/dns" "$DNS_ADDR" "$WORK/dns/client.zone"
	DNS_PID=$(tr -dc 0-9 <"$WORK/dns/unbound.pid")
	sh "$STACKSH" message "$WORK/dns" "$SIZE" "$WORK/message.eml"
	# the signed message as it is; HELO client.test (its SPF record too)
	BODY_OPTS="-F $WORK/message.eml -M client.test"
fi

# --- one measurement ----------------------------------------------------------

# source_load PORT OUTPREFIX: run the load; returns smtp-source's worst exit
# status.  The clients run in the background (SRC_PIDS) so that a signal
# reaches the trap at once and cleanup can stop them.
SRC_PIDS=
source_load() {
	local port=$1 out=$2 k rc=0 s=$SESSIONS m=$MESSAGES
	if [ "$RCPTS" -gt 1 ]; then s=$((SESSIONS / RCPTS)) m=$((MESSAGES / RCPTS)); fi
	SRC_PIDS=
	for k in $(seq 1 "$RCPTS"); do
		# shellcheck disable=SC2086
		"$SOURCE" $SOURCE_OPTS -s "$s" -m "$m" $BODY_OPTS -f "$FROM" \
			-t "test$k@example.test" "127.0.0.1:$port" >"$out.$k" 2>&1 &
		SRC_PIDS="$SRC_PIDS $!"
	done
	for k in $SRC_PIDS; do wait "$k" || rc=$?; done
	SRC_PIDS=
	return $rc
}

fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }'; }

# prints: run server accepted/s delivered/s accept_s deliver_s cpu_ms/msg delivered srcrc
measure_postfix() {
	local run=$1 t0 t1 t2 c0 c1 n rc=0 last lastn=0 stall
	sh "$PEERSH" clear "$WORK/postfix-mail"
	c0=$(cpu_of $PF_PIDS) d0=$(dns_cpu)
	t0=$EPOCHREALTIME
	source_load "$PF_PORT" "$WORK/source-postfix-$run" || rc=$?
	t1=$EPOCHREALTIME
	# wait for delivery; give up after 60 s without progress
	last=$EPOCHREALTIME
	while :; do
		n=$(postfix_count)
		t2=$EPOCHREALTIME
		[ "$n" -ge "$MESSAGES" ] && break
		if [ "$n" != "$lastn" ]; then lastn=$n; last=$t2; fi
		stall=$(fsub "$t2" "$last")
		if awk -v s="$stall" 'BEGIN { exit !(s > 60) }'; then
			log "postfix run $run: only $n of $MESSAGES delivered after 60 s without progress"
			break
		fi
		sleep "$POLL"
	done
	c1=$(cpu_of $PF_PIDS) d1=$(dns_cpu)
	auth_check_postfix "$run"
	dns_note postfix "$run" "$d0" "$d1"
	[ $rc = 0 ] || log "postfix run $run: smtp-source exit $rc: $(tail -2 "$WORK/source-postfix-$run".* | tr '\n' ' ')"
	printf '%s\tpostfix\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" \
		"$(fdiv "$MESSAGES" "$(fsub "$t1" "$t0")")" "$(fdiv "$MESSAGES" "$(fsub "$t2" "$t0")")" \
		"$(fsub "$t1" "$t0")" "$(fsub "$t2" "$t0")" \
		"$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v m="$MESSAGES" 'BEGIN { printf "%.2f", c * 1000 / hz / m }')" \
		"$n" "$rc"
}

measure_tern() {
	local run=$1 t0 t1 c0 c1 n rc=0 pids
	start_tern "$run"
	c0=$(cpu_of "$TERN_PID") d0=$(dns_cpu)
	t0=$EPOCHREALTIME
	source_load "$TERN_PORT" "$WORK/source-tern-$run" || rc=$?
	t1=$EPOCHREALTIME
	c1=$(cpu_of "$TERN_PID") d1=$(dns_cpu)
	pids=$(descendants "$TERN_PID")
	[ "$pids" = "$TERN_PIDS0" ] || log "tern run $run: process set changed: was [$TERN_PIDS0], now [$pids] (worker died?)"
	kill -0 "$TERN_PID" 2>/dev/null || log "tern run $run: master process is gone"
	stop_tern
	n=$(tern_count)
	auth_check_tern "$run"
	dns_note tern "$run" "$d0" "$d1"
	[ $rc = 0 ] || log "tern run $run: smtp-source exit $rc: $(tail -2 "$WORK/source-tern-$run".* | tr '\n' ' ')"
	[ "$n" = "$MESSAGES" ] || log "tern run $run: mail list shows $n of $MESSAGES messages"
	# anything not at level info/debug (warn, error, a crash's output), and a
	# worker that exited other than with status 0
	awk '$2 !~ /^(info|debug)$/ || (/ action=exited / && !/ status=0( |$)/)' \
		"$TERN_DIR/tern.log" >"$TERN_DIR.problems"
	if [ -s "$TERN_DIR.problems" ]; then
		log "tern run $run: $(wc -l <"$TERN_DIR.problems") warn/error lines in $TERN_DIR/tern.log, first ones:"
		head -5 "$TERN_DIR.problems" | sed 's/^/#   /' >&2
		KEEP=1
	fi
	printf '%s\ttern\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" \
		"$(fdiv "$MESSAGES" "$(fsub "$t1" "$t0")")" "$(fdiv "$MESSAGES" "$(fsub "$t1" "$t0")")" \
		"$(fsub "$t1" "$t0")" "$(fsub "$t1" "$t0")" \
		"$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v m="$MESSAGES" 'BEGIN { printf "%.2f", c * 1000 / hz / m }')" \
		"$n" "$rc"
}

# --- main -------------------------------------------------------------------

[ "$ONLY" = postfix ] || log "tern: $TERN_ORIG ($("$TERN" --version 2>/dev/null | head -1 || true)), copied to $TERN"
log "MESSAGES=$MESSAGES SESSIONS=$SESSIONS SIZE=$SIZE RUNS=$RUNS RCPTS=$RCPTS SOURCE_OPTS='$SOURCE_OPTS' work=$WORK"
if [ "$RCPTS" = 1 ]; then log "smtp-source $SOURCE_OPTS -s $SESSIONS -m $MESSAGES $BODY_OPTS -f $FROM -t test1@example.test 127.0.0.1:PORT"; else log "$RCPTS x smtp-source $SOURCE_OPTS -s $((SESSIONS / RCPTS)) -m $((MESSAGES / RCPTS)) $BODY_OPTS -f $FROM -t testK@example.test 127.0.0.1:PORT (K = 1..$RCPTS)"; fi
log "uptime: $(uptime)"
[ "$ONLY" = tern ] || start_postfix
TSV=$WORK/results.tsv
: >"$TSV"
printf '%-4s %-8s %12s %12s %9s %9s %11s %10s %4s\n' run server accepted/s delivered/s accept_s deliver_s cpu_ms/msg delivered rc
for run in $(seq 1 "$RUNS"); do
	# alternate the order so neither server always goes first
	if [ $((run % 2)) = 1 ]; then order="postfix tern"; else order="tern postfix"; fi
	for s in $order; do
		[ "$ONLY" = both ] || [ "$ONLY" = "$s" ] || continue
		measure_$s "$run" >"$WORK/line"
		cat "$WORK/line" >>"$TSV"
		awk -F'\t' '{ printf "%-4s %-8s %12s %12s %9s %9s %11s %10s %4s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$WORK/line"
		sleep 2   # let the disk settle between servers
	done
done

# medians and ratios
awk -F'\t' '
function median(arr, n,    i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && arr[j-1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j-1]; arr[j-1] = t }
	return (n % 2) ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
}
{ s = $2; n[s]++; a[s, n[s]] = $3; d[s, n[s]] = $4; c[s, n[s]] = $7 }
END {
	runs = 0
	for (s in n) if (n[s] > runs) runs = n[s]
	printf "\nmedians over %d run(s):\n", runs
	printf "%-8s %12s %12s %11s\n", "server", "accepted/s", "delivered/s", "cpu_ms/msg"
	for (s in n) {
		for (i = 1; i <= n[s]; i++) { x[i] = a[s, i]; y[i] = d[s, i]; z[i] = c[s, i] }
		ma[s] = median(x, n[s]); md[s] = median(y, n[s]); mc[s] = median(z, n[s])
	}
	if ("tern" in n) printf "%-8s %12.1f %12.1f %11.2f\n", "tern", ma["tern"], md["tern"], mc["tern"]
	if ("postfix" in n) printf "%-8s %12.1f %12.1f %11.2f\n", "postfix", ma["postfix"], md["postfix"], mc["postfix"]
	if (("tern" in n) && ("postfix" in n) && ma["postfix"] > 0 && md["postfix"] > 0)
		printf "%-8s %12.2f %12.2f %11.2f\n", "ratio", ma["tern"] / ma["postfix"], md["tern"] / md["postfix"], (mc["postfix"] > 0 ? mc["tern"] / mc["postfix"] : 0)
}' "$TSV"
echo "(ratio = Tern / Postfix; cpu_ms/msg = server CPU time per message, all processes)"
log "uptime (end): $(uptime)"
[ -z "$RESULTS" ] || cp "$TSV" "$RESULTS"
