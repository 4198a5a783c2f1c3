#!/bin/bash
# bench/imap/run.sh - mixed IMAP load: Tern against Dovecot, same run.
#
# SESSIONS parallel IMAP sessions (imapload.c, one process each), session s
# on mailbox testK (K = (s-1) % USERS + 1) of MESSAGES messages; each runs
# ITERATIONS times: SELECT INBOX, FETCH 1:100 (FLAGS ENVELOPE), BODIES x
# UID FETCH u BODY.PEEK[], STORE +FLAGS / -FLAGS (\Flagged), UID SEARCH
# SUBJECT word / UNSEEN / SINCE date, APPEND (LITERAL+), IDLE + DONE, NOOP.
# Each command is one op.  For each server it reports
#   op/s        = ops / wall time (the sessions are logged in before the clock starts)
#   cpu_ms/op   = CPU of all the server's processes per op (read by the
#                 client from /proc at the start and at the end of the loop)
#   client_ms/op, and the median latency of each command
# and the medians over RUNS and the ratios Tern / Dovecot.
#
# Mail set-up (once per invocation): mailgen.py writes USERS Maildirs of
# MESSAGES deterministic messages (CRLF, a few KB) for Dovecot, and APPENDs
# the same files, flags and internal dates to Tern (MULTIAPPEND, LITERAL+),
# so both serve byte-identical messages under the same UIDs: the checksum
# of the BODY.PEEK[] literals must be the same for every run of both.
# An unmeasured pass 0 over each server warms caches (Dovecot builds its
# index and cache, Tern its imap_cache) and the page cache.
#
# Environment (all optional):
#   USERS=20 MESSAGES=1000 SIZE=3000 SESSIONS=20 ITERATIONS=100 RUNS=3
#   BODIES=3       UID FETCH BODY.PEEK[] commands per iteration
#   IDLE_MS=0      time in IDLE before DONE (0: DONE as soon as "+" arrives)
#   SEARCHES=7     bit mask of the UID SEARCHes per iteration: 1 SUBJECT,
#                  2 UNSEEN, 4 SINCE (e.g. 6: all but SUBJECT; 0: none)
#   QUICKACK=0     1: the client sets TCP_QUICKACK before every read (never
#                  delays its ACKs): a diagnostic for Nagle stalls, see README
#   PROFILE=mixed  mixed: the loop above.  random: the random concurrent
#                  profile of issue 25 (imapload.c random_iter: per loop,
#                  1/2 LIST + STATUS, SELECT, FETCH of 20 (FLAGS ENVELOPE),
#                  one BODY.PEEK[], 1/2 STORE +/-FLAGS of a random flag or
#                  keyword, 1/4 STORE \Deleted + EXPUNGE of an appended
#                  message, APPEND of a 0.6-30 KB message); columns
#                  subject/unseen/since become list/status/expunge
#   ONLY=both      tern | dovecot | both
#   TERN=/work/main/build/tern
#   TERN_CONF_EXTRA=  extra "key = value" lines appended to tern.conf
#   KEEP=0         1: keep the temp folder (logs, mail) after the run
#   RESULTS=FILE   also write the per-run figures as TSV to FILE
#   STRACE=FILE    count the sync calls of Tern's processes during run 1
#                  (strace -f -c -e trace=fsync,fdatasync,sync_file_range
#                  attached for that pass only) into FILE, and print them
#                  per command: a figure that does not depend on the
#                  machine's noise
# Needs root (Dovecot, vmail user, Tern's privilege drop).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
USERS=${USERS:-20}
MESSAGES=${MESSAGES:-1000}
SIZE=${SIZE:-3000}
SESSIONS=${SESSIONS:-20}
ITERATIONS=${ITERATIONS:-100}
RUNS=${RUNS:-3}
BODIES=${BODIES:-3}
IDLE_MS=${IDLE_MS:-0}
QUICKACK=${QUICKACK:-0}
SEARCHES=${SEARCHES:-7}
ONLY=${ONLY:-both}
PROFILE=${PROFILE:-mixed}
case $PROFILE in
mixed) OPS="select fetch body store subject unseen since append idle noop" ;;
random) OPS="select fetch body store list status expunge append idle noop" ;;
*) echo "run.sh: PROFILE is mixed or random" >&2; exit 2 ;;
esac
TERN=${TERN:-$REPO/build/tern}
TERN_CONF_EXTRA=${TERN_CONF_EXTRA:-}
KEEP=${KEEP:-0}
RESULTS=${RESULTS:-}
STRACE=${STRACE:-}
PY=/usr/bin/python3
GEN=$HERE/mailgen.py

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (Dovecot, vmail user, Tern)"
case $ONLY in tern | dovecot | both) ;; *) die "ONLY must be tern, dovecot or both" ;; esac
[ "$USERS" -ge 1 ] && [ "$USERS" -le 1000 ] || die "USERS must be 1..1000"
[ "$MESSAGES" -ge 100 ] || die "MESSAGES must be at least 100 (FETCH 1:100)"
if [ "$ONLY" != dovecot ]; then
	[ -x "$TERN" ] || die "$TERN not built (cd $REPO && make build)"
fi

ensure_dovecot() {
	[ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] && return 0
	log "installing dovecot-imapd"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null; } \
		|| die "cannot install dovecot-imapd"
}

ensure_vmail() {
	getent group vmail >/dev/null || groupadd -g 5000 vmail
	getent passwd vmail >/dev/null || useradd -u 5000 -g 5000 -M -d /nonexistent -s /usr/sbin/nologin vmail
	[ "$(id -u vmail)" = 5000 ] || die "user vmail exists but is not uid 5000"
}

[ "$ONLY" = tern ] || { ensure_dovecot; ensure_vmail; }

WORK=$(mktemp -d /tmp/tern-bench-imap.XXXXXX)
chmod 755 "$WORK"     # Dovecot's and Tern's workers run as other users
TERN_PID=
DOVECOT_UP=0
if [ "$ONLY" != dovecot ]; then
	# a private copy: others may rebuild build/tern while this runs
	cp "$TERN" "$WORK/tern.bin"
	TERN_ORIG=$TERN
	TERN=$WORK/tern.bin
fi
cc -O2 -Wall -Wextra -o "$WORK/imapload" "$HERE/imapload.c" -lz 2>"$WORK/imapload.build" \
	|| { cat "$WORK/imapload.build" >&2; die "cannot build imapload.c (needs cc and zlib1g-dev)"; }

# --- process helpers (as bench/smtp/run.sh) ------------------------------------

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

stop_dovecot() {
	[ $DOVECOT_UP = 1 ] || return 0
	local pid n=0
	pid=$(cat "$WORK/dovecot-run/master.pid" 2>/dev/null || true)
	doveadm -c "$WORK/dovecot/dovecot.conf" stop >/dev/null 2>&1 \
		|| { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; } || true
	while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
	DOVECOT_UP=0
}

LOAD_PID=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$LOAD_PID" ]; then
		for p in $(descendants "$LOAD_PID"); do kill "$p" 2>/dev/null || true; done
	fi
	stop_tern
	stop_dovecot
	if [ "$KEEP" = 1 ] || [ $rc != 0 ]; then
		log "kept $WORK (logs: tern/tern.log, dovecot/dovecot.log, load-*.out)"
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
	# from a random start: other helpers' test servers pick bases too
	for b in $(seq 20000 1000 59000 | shuf); do
		ok=1
		for off in 25 80 110 143 443 465 587 993 995 4190; do
			port_busy $((b + off)) && { ok=0; break; }
		done
		[ $ok = 1 ] && { echo $b; return; }
	done
	die "no free port base"
}

# owns_port ROOTPID PORT: is the listener on PORT a process of ROOTPID's tree?
owns_port() {
	local pids p
	pids=$(ss -Htlnp "sport = :$2" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2)
	[ -n "$pids" ] || return 1
	for p in $pids; do
		case " $(descendants "$1") " in *" $p "*) ;; *) return 1 ;; esac
	done
}

wait_banner() { # wait_banner PORT SECONDS PREFIX
	local i line
	for i in $(seq 1 $(($2 * 10))); do
		if { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
			line=
			read -r -t 5 line <&3 || true
			printf 'Z LOGOUT\r\n' >&3 2>/dev/null || true
			exec 3>&- 3<&-
			[[ $line == "$3"* ]] && return 0
		fi
		sleep 0.1
	done
	return 1
}

# --- servers ----------------------------------------------------------------

start_tern() {
	local base i
	TERN_DIR=$WORK/tern
	base=$(free_base)
	TERN_IMAP=$((base + 143))
	"$TERN" init "$TERN_DIR" --port-base "$base" --domain example.test \
		--hostname mx.example.test >"$WORK/tern-init.out" 2>&1 \
		|| { cat "$WORK/tern-init.out" >&2; die "tern init failed"; }
	chmod 755 "$TERN_DIR"
	grep -q '^allow_plaintext_loopback = no$' "$TERN_DIR/tern.conf" \
		|| die "tern.conf has no 'allow_plaintext_loopback = no' line to switch on"
	sed -i 's/^allow_plaintext_loopback = no$/allow_plaintext_loopback = yes/' "$TERN_DIR/tern.conf"
	[ -z "$TERN_CONF_EXTRA" ] || printf '%b\n' "$TERN_CONF_EXTRA" >>"$TERN_DIR/tern.conf"
	for i in $(seq 1 "$USERS"); do
		"$TERN" -c "$TERN_DIR/tern.conf" user add "test$i@example.test" --password pass \
			>>"$WORK/tern-init.out" 2>&1 \
			|| { cat "$WORK/tern-init.out" >&2; die "tern user add failed"; }
	done
	local try
	for try in 1 2 3; do
		"$TERN" -c "$TERN_DIR/tern.conf" serve >"$TERN_DIR/tern.log" 2>&1 &
		TERN_PID=$!
		wait_banner "$TERN_IMAP" 20 "* OK" || { tail -20 "$TERN_DIR/tern.log" >&2; die "Tern IMAP does not answer on $TERN_IMAP"; }
		# another server may have taken a port between free_base and our
		# bind: then ours has exited and the banner came from someone else's
		sleep 0.5
		if kill -0 "$TERN_PID" 2>/dev/null && owns_port "$TERN_PID" "$TERN_IMAP"; then
			break
		fi
		log "tern did not get its ports (try $try): $(tail -1 "$TERN_DIR/tern.log")"
		stop_tern
		[ $try -lt 3 ] || die "Tern could not bind its ports"
		base=$(free_base)
		TERN_IMAP=$((base + 143))
		sed -i -E "s/^([a-z0-9_.]+listen = 127\.0\.0\.1:)[0-9]+([0-9]{3})$/\1$((base / 1000))\2/; s/^(remote_smtp_port = )[0-9]+$/\1$((base + 25))/" "$TERN_DIR/tern.conf"
		grep -q "^imap.listen = 127.0.0.1:$TERN_IMAP\$" "$TERN_DIR/tern.conf" || die "cannot move tern.conf to port base $base"
	done
	# the master restarts a worker that dies: remember who was there at start
	TERN_PIDS0=$(descendants "$TERN_PID")
}

# The peer configuration of /work/shared/peers.md, IMAP only (no POP3 or
# LMTP listeners: this bench needs neither), self-contained under $WORK.
start_dovecot() {
	local d=$WORK/dovecot i
	DOVECOT_IMAP=$(free_port 10143)
	mkdir -p "$d" "$WORK/dovecot-run" "$WORK/dovecot-state"
	: >"$d/users"
	for i in $(seq 1 "$USERS"); do
		echo "test$i:{PLAIN}pass:5000:5000::$MAILROOT/test$i" >>"$d/users"
	done
	cat >"$d/dovecot.conf" <<EOF
# Peer-measurement Dovecot config (peers.md), IMAP only; run with dovecot -c THIS
protocols = imap
listen = 127.0.0.1
base_dir = $WORK/dovecot-run
state_dir = $WORK/dovecot-state
instance_name = dovecot-imapbench
log_path = $d/dovecot.log
info_log_path = $d/dovecot-info.log

ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $d/users
}
userdb {
  driver = passwd-file
  args = username_format=%n $d/users
}
first_valid_uid = 5000
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
}

mail_max_userip_connections = 200
default_process_limit = 1200
default_client_limit = 6000
default_vsz_limit = 512M

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_IMAP
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
	dovecot -c "$d/dovecot.conf" || { cat "$d/dovecot.log" >&2 2>/dev/null; die "dovecot did not start"; }
	DOVECOT_UP=1
	wait_banner "$DOVECOT_IMAP" 20 "* OK" || { tail -20 "$d/dovecot.log" >&2; die "Dovecot does not answer on $DOVECOT_IMAP"; }
	DOVECOT_PID=$(cat "$WORK/dovecot-run/master.pid")
	owns_port "$DOVECOT_PID" "$DOVECOT_IMAP" || die "port $DOVECOT_IMAP is not Dovecot's (pid $DOVECOT_PID)"
}

# --- the load -----------------------------------------------------------------

# load PORT ROOTPID ITERATIONS OUT: one pass; its result line goes to OUT.
load() {
	local rc=0
	"$WORK/imapload" "$1" "$USERS" "$SESSIONS" "$3" "$MAILROOT/expect.tsv" "$2" "$BODIES" "$IDLE_MS" "$QUICKACK" "$SEARCHES" "$PROFILE" \
		>"$4" 2>"$4.err" &
	LOAD_PID=$!
	if [ "$2" = "${TERN_PID:-}" ]; then
		# which worker holds each session (the sessions log in first, ~1 s)
		sleep 1
		log "tern sessions per worker process: $(ss -Htnp state established "sport = :$1" 2>/dev/null \
			| grep -o 'pid=[0-9]*' | sort | uniq -c | awk '{ printf "%s%s:%s", sep, $2, $1; sep = " " }')"
	fi
	wait "$LOAD_PID" || rc=$?
	LOAD_PID=
	[ $rc = 0 ] || { cat "$4.err" >&2; die "IMAP load failed (exit $rc): $(cat "$4")"; }
}

field() { tr '\t' '\n' <"$1" | sed -n "s/^$2=//p"; }

# prints: run server op/s wall_s ops cpu_ms/op client_ms/op octets checksum ms_select ... ms_noop op/s_all
measure() { # measure SERVER RUN
	local s=$1 run=$2 port root out=$WORK/load-$1-$2.out pids
	if [ "$s" = tern ]; then port=$TERN_IMAP root=$TERN_PID; else port=$DOVECOT_IMAP root=$DOVECOT_PID; fi
	local strace_pid=
	if [ "$s" = tern ] && [ -n "$STRACE" ] && [ "$run" = 1 ]; then
		# shellcheck disable=SC2046
		strace -f -c -e trace=fsync,fdatasync,sync_file_range -o "$STRACE" \
			$(for p in $(descendants "$TERN_PID"); do printf -- '-p %s ' "$p"; done) 2>/dev/null &
		strace_pid=$!
		sleep 1 # attached before the load starts
	fi
	load "$port" "$root" "$ITERATIONS" "$out"
	if [ -n "$strace_pid" ]; then
		kill -INT "$strace_pid"
		wait "$strace_pid" || true
		log "tern run 1: sync calls (strace) per command: $(awk -v ops="$(field "$out" ops)" \
			'$NF ~ /^(fsync|fdatasync|sync_file_range)$/ { printf "%s %s (%.3f/op) ", $NF, $4, $4 / ops; t += $4 }
			 END { printf "total %d (%.3f/op) over %d commands", t, t / ops, ops }' "$STRACE")"
	fi
	if [ "$s" = tern ]; then
		pids=$(descendants "$TERN_PID")
		[ "$pids" = "$TERN_PIDS0" ] || log "tern run $run: process set changed: was [$TERN_PIDS0], now [$pids] (worker died?)"
	fi
	awk -v run="$run" -v s="$s" -v ops="$OPS" -v line="$(cat "$out")" 'BEGIN {
		n = split(line, f, "\t")
		for (i = 1; i <= n; i++) { eq = index(f[i], "="); v[substr(f[i], 1, eq - 1)] = substr(f[i], eq + 1) }
		printf "%s\t%s\t%.1f\t%.3f\t%d\t%.3f\t%.3f\t%s\t%s", run, s, v["ops_s"], v["wall"], v["ops"],
			v["server_cpu"] * 1000 / v["ops"], v["client_cpu"] * 1000 / v["ops"], v["octets"], v["checksum"]
		n = split(ops, op, " ")
		for (i = 1; i <= n; i++) printf "\t%s", v["ms_" op[i]]
		printf "\t%.1f\n", v["rate_sum"]
	}'
}

HEAD_FMT='%-4s %-8s %7s %8s %6s %6s %9s %9s %6s %6s %6s %6s %7s %6s %6s %6s %6s %6s\n'
print_line() {
	awk -F'\t' -v fmt="$HEAD_FMT" '{ printf fmt, $1, $2, $3, $20, $4, $5, $6, $7, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19 }'
}

# --- main -------------------------------------------------------------------

MAILROOT=$WORK/mail
[ "$ONLY" = dovecot ] || log "tern: $TERN_ORIG ($("$TERN" --version 2>/dev/null | head -1 || true)), copied to $TERN"
[ "$ONLY" = tern ] || log "dovecot: $(dovecot --version)"
log "USERS=$USERS MESSAGES=$MESSAGES SIZE=$SIZE SESSIONS=$SESSIONS ITERATIONS=$ITERATIONS BODIES=$BODIES IDLE_MS=$IDLE_MS QUICKACK=$QUICKACK SEARCHES=$SEARCHES PROFILE=$PROFILE RUNS=$RUNS work=$WORK"
log "uptime: $(uptime)"

log "writing $USERS x $MESSAGES messages (Maildir)"
"$PY" "$GEN" maildir "$MAILROOT" --users "$USERS" --messages "$MESSAGES" --size "$SIZE"
chmod 755 "$MAILROOT"
if [ "$ONLY" != dovecot ]; then
	start_tern
	log "APPENDing them to Tern"
	"$PY" "$GEN" append "$MAILROOT" --port "$TERN_IMAP" --users "$USERS" >"$WORK/append.out" 2>&1 \
		|| { cat "$WORK/append.out" >&2; die "APPEND to Tern failed"; }
	log "$(cat "$WORK/append.out")"
	log "pass 0 over Tern (warm-up, 10 iterations)"
	load "$TERN_IMAP" "$TERN_PID" 10 "$WORK/load-tern-0.out"
	log "tern pass 0: $(cat "$WORK/load-tern-0.out")"
fi
if [ "$ONLY" != tern ]; then
	chown -R 5000:5000 "$MAILROOT"
	start_dovecot
	log "pass 0 over Dovecot (warm-up, builds its index and cache, 10 iterations)"
	load "$DOVECOT_IMAP" "$DOVECOT_PID" 10 "$WORK/load-dovecot-0.out"
	log "dovecot pass 0: $(cat "$WORK/load-dovecot-0.out")"
fi
if [ "$ONLY" = both ] && [ "$(field "$WORK/load-tern-0.out" checksum)" != "$(field "$WORK/load-dovecot-0.out" checksum)" ]; then
	die "pass 0: Tern and Dovecot sent different message bytes (UIDs or files differ)"
fi

TSV=$WORK/results.tsv
: >"$TSV"
# shellcheck disable=SC2086
printf "$HEAD_FMT" run server op/s op/s_all wall_s ops cpu_ms/op client_ms $OPS
for run in $(seq 1 "$RUNS"); do
	# alternate the order so neither server always goes first
	if [ $((run % 2)) = 1 ]; then order="dovecot tern"; else order="tern dovecot"; fi
	for s in $order; do
		[ "$ONLY" = both ] || [ "$ONLY" = "$s" ] || continue
		measure "$s" "$run" >"$WORK/line"
		cat "$WORK/line" >>"$TSV"
		print_line <"$WORK/line"
		sleep 1
	done
done
if [ "$PROFILE" = random ]; then
	echo "(select ... append: median latency in ms of each command; expunge: STORE \\Deleted + EXPUNGE together; idle/noop: not used by this profile)"
else
	echo "(select ... noop: median latency in ms of each command; subject/unseen/since: the three UID SEARCHes; body/store: each command of the kind)"
fi

# every run of both servers must have sent the same message bytes
if [ "$(cut -f8,9 "$TSV" | sort -u | wc -l)" != 1 ]; then
	log "BODY.PEEK[] octets/checksum differ between runs or servers:"
	cut -f2,8,9 "$TSV" | sort | uniq -c >&2
	KEEP=1
	exit 1
fi

if [ "$ONLY" != dovecot ]; then
	# Tern's log: anything not at level info/debug (warn, error, a crash's output)
	awk '$2 !~ /^(info|debug)$/ || (/ action=exited / && !/ status=0( |$)/)' \
		"$TERN_DIR/tern.log" >"$WORK/tern.problems"
	if [ -s "$WORK/tern.problems" ]; then
		log "$(wc -l <"$WORK/tern.problems") warn/error lines in $TERN_DIR/tern.log, first ones:"
		head -5 "$WORK/tern.problems" | sed 's/^/#   /' >&2
		KEEP=1
	fi
fi
if [ "$ONLY" != tern ] && grep -qiE 'error|fatal|panic' "$WORK/dovecot/dovecot.log" 2>/dev/null; then
	log "errors in dovecot.log, first ones:"
	grep -iE 'error|fatal|panic' "$WORK/dovecot/dovecot.log" | head -5 | sed 's/^/#   /' >&2
	KEEP=1
fi

# medians and ratios
awk -F'\t' -v ops="$OPS" '
function median(arr, n,    i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && arr[j-1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j-1]; arr[j-1] = t }
	return (n % 2) ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
}
{ s = $2; n[s]++; for (c = 3; c <= 20; c++) v[s, c, n[s]] = $c }
END {
	runs = 0
	for (s in n) if (n[s] > runs) runs = n[s]
	printf "\nmedians over %d run(s):\n", runs
	fmt = "%-8s %8s %8s %9s %9s %6s %6s %6s %6s %7s %6s %6s %6s %6s %6s\n"
	split(ops, on, " ")
	printf fmt, "server", "op/s", "op/s_all", "cpu_ms/op", "client_ms", on[1], on[2], on[3], on[4], on[5], on[6], on[7], on[8], on[9], on[10]
	nc = split("3 6 7 10 11 12 13 14 15 16 17 18 19 20", cols, " ")
	nc--    # column 20 (op/s_all) is printed apart
	for (s in n) for (k = 1; k <= nc + 1; k++) {
		c = cols[k]
		for (i = 1; i <= n[s]; i++) x[i] = v[s, c, i]
		m[s, c] = median(x, n[s])
	}
	for (si = 1; si <= 2; si++) {
		s = si == 1 ? "tern" : "dovecot"
		if (!(s in n)) continue
		printf "%-8s %8.1f %8.1f %9.3f %9.3f", s, m[s, 3], m[s, 20], m[s, 6], m[s, 7]
		for (k = 4; k <= nc; k++) printf " %6.2f", m[s, cols[k]]
		printf "\n"
	}
	if (("tern" in n) && ("dovecot" in n) && m["dovecot", 3] > 0) {
		printf "%-8s %8.2f %8.2f %9.2f %9s", "ratio", m["tern", 3] / m["dovecot", 3], (m["dovecot", 20] > 0 ? m["tern", 20] / m["dovecot", 20] : 0), (m["dovecot", 6] > 0 ? m["tern", 6] / m["dovecot", 6] : 0), ""
		for (k = 4; k <= nc; k++) printf " %6.2f", (m["dovecot", cols[k]] > 0 ? m["tern", cols[k]] / m["dovecot", cols[k]] : 0)
		printf "\n"
	}
}' "$TSV"
echo "(op/s = ops / wall time until the last session is done; op/s_all = sum over sessions of each one's ops / its own loop time, the rate while all run)"
echo "(ratio = Tern / Dovecot: op/s above 1, cpu_ms/op and latencies below 1 favour Tern; cpu_ms/op = server CPU per op, all processes; client_ms = load client CPU per op; latencies = median ms)"
log "uptime: $(uptime)"
[ -z "$RESULTS" ] || cp "$TSV" "$RESULTS"
