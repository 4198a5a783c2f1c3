#!/bin/bash
# bench/outbound/run.sh - outbound relay benchmark: Tern against Postfix,
# same run, same sink.
#
# MESSAGES messages of SIZE bytes are injected over SMTP (smtp-source,
# SESSIONS parallel sessions) into each server for x@example.test, an
# alias of y@sink.test; each server relays them to smtp-sink (Postfix's
# test sink: accepts everything, keeps nothing) on 127.0.0.1:SINK.
#   Tern:    alias x@example.test -> y@sink.test; MX of sink.test from a
#            dnsmasq on loopback (dns.resolver), remote_smtp_port = SINK.
#   Postfix: bench/smtp/postfix-peer.sh config plus virtual_alias_maps
#            x@example.test -> y@sink.test and a transport
#            sink.test -> smtp:[127.0.0.1]:SINK.
# For each server and run:
#   relayed/s  = MESSAGES / time from the start of smtp-source until
#                smtp-sink has received all MESSAGES (its -c counter)
#   accepted/s = MESSAGES / wall time of smtp-source
# Reported: medians over RUNS and the ratio Tern/Postfix.  smtp-sink offers
# no STARTTLS, so both relay in plaintext.
# Tern DKIM-signs every relayed message (Ed25519 and RSA-2048 keys of
# example.test).  SIGN=1 makes it a like-for-like signed relay (issue 15):
# the sender is bench@example.test (From: too) and Postfix passes every
# message through OpenDKIM signing with an RSA-2048 key
# (bench/mailauth/stack.sh); after run 1 a sample of SAMPLE messages of
# each server is caught by a dumping smtp-sink and every signature checked
# with dkimpy against the published keys.
#
# Environment (all optional):
#   MESSAGES=20000 SESSIONS=20 SIZE=4096 RUNS=3
#   ONLY=both      tern | postfix | both
#   TERN=/work/main/build/tern
#   TERN_CONF_EXTRA=  extra "key = value" lines for tern.conf ("\n" separated)
#   TIMEOUT=600    seconds to wait for the sink to have everything
#   KEEP=0         1: keep the temp folder (logs) after the run
#   RESULTS=FILE   also write the per-run figures as TSV to FILE
#   SIGN=0         1: Postfix signs with OpenDKIM too, samples verified
#   SAMPLE=5       messages per server in that sample
# Needs root (Postfix; smtp-sink -u; Tern's privilege drop) and dnsmasq.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
RUNS=${RUNS:-3}
ONLY=${ONLY:-both}
TERN=${TERN:-$REPO/build/tern}
TERN_CONF_EXTRA=${TERN_CONF_EXTRA:-}
TIMEOUT=${TIMEOUT:-600}
KEEP=${KEEP:-0}
RESULTS=${RESULTS:-}
SOURCE=/usr/sbin/smtp-source
SINK_BIN=/usr/sbin/smtp-sink
DNSMASQ=/usr/sbin/dnsmasq
PEERSH=$REPO/bench/smtp/postfix-peer.sh
STACKSH=$REPO/bench/mailauth/stack.sh
SIGN=${SIGN:-0}
SAMPLE=${SAMPLE:-5}
FROM=bench@client.test
[ "$SIGN" = 0 ] || FROM=bench@example.test
RCPT=x@example.test

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (Postfix, smtp-sink -u, vmail user)"
case $ONLY in tern | postfix | both) ;; *) die "ONLY must be tern, postfix or both" ;; esac
[ -x "$DNSMASQ" ] || die "dnsmasq is not installed (scripts/install-deps.sh)"
if [ "$ONLY" != postfix ]; then
	[ -x "$TERN" ] || die "$TERN not built (cd $REPO && make build)"
fi

WORK=$(mktemp -d /tmp/tern-bench-outbound.XXXXXX)
chmod 755 "$WORK"
TERN_PID= SINK_PID= DNS_PID=
POSTFIX_UP=0
if [ "$ONLY" != postfix ]; then
	# a private copy: others may rebuild build/tern while this runs
	cp "$TERN" "$WORK/tern.bin"
	TERN=$WORK/tern.bin
fi

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

stop_pid() { # stop_pid PID: TERM the tree, then KILL what is left
	local pids n=0
	[ -n "$1" ] || return 0
	pids=$(descendants "$1")
	kill -TERM "$1" 2>/dev/null || true
	while kill -0 "$1" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	wait "$1" 2>/dev/null || true
}

stop_tern() { stop_pid "$TERN_PID"; TERN_PID=; }
stop_sink() { stop_pid "$SINK_PID"; SINK_PID=; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_tern
	stop_sink
	stop_pid "$DNS_PID"
	if [ $POSTFIX_UP = 1 ]; then
		if [ "$SIGN" = 1 ]; then sh "$STACKSH" peer-stop "$WORK/postfix"; else sh "$PEERSH" stop "$WORK/postfix"; fi
	fi
	if [ "$KEEP" = 1 ] || [ $rc != 0 ]; then
		log "kept $WORK (logs: postfix/postfix.log, tern-*/tern.log, sink-*.out)"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- ports ------------------------------------------------------------------

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
udp_busy() { ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; }

free_port() { # free_port START
	local p=$1
	while port_busy $p || udp_busy $p; do p=$((p + 1)); done
	echo $p
}

free_base() { # a port base N with every standard listener N+port free
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

now() { date +%s.%N; }

# --- the sink and DNS ---------------------------------------------------------

SINK_PORT=$(free_port 30025)
DNS_PORT=$(free_port 30053)

start_dns() {
	"$DNSMASQ" --no-daemon --conf-file=/dev/null --port="$DNS_PORT" \
		--listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
		--local=/test/ --user=root \
		--mx-host=sink.test,mx.sink.test,10 --host-record=mx.sink.test,127.0.0.1 \
		>"$WORK/dnsmasq.log" 2>&1 &
	DNS_PID=$!
	local i
	for i in $(seq 1 50); do
		udp_busy "$DNS_PORT" && return 0
		sleep 0.1
	done
	die "dnsmasq does not listen on $DNS_PORT"
}

start_sink() { # start_sink TAG [DUMPDIR]: a fresh smtp-sink (counter at 0)
	SINK_OUT=$WORK/sink-$1.out
	local dump=()
	[ $# -lt 2 ] || dump=(-d "$2/%M.")
	"$SINK_BIN" -u nobody -c "${dump[@]}" "127.0.0.1:$SINK_PORT" 1024 >"$SINK_OUT" 2>&1 &
	SINK_PID=$!
	wait_banner "$SINK_PORT" 10 || die "smtp-sink does not answer on $SINK_PORT"
}

sink_count() { # messages received so far (the last "mesg=N" of smtp-sink -c)
	local n
	n=$(tail -c 300 "$SINK_OUT" | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2)
	echo "${n:-0}"
}

# --- the servers ------------------------------------------------------------

start_postfix() {
	PF_PORT=$(free_port 2525)
	sh "$PEERSH" setup "$WORK/postfix" "$WORK/postfix-mail" "$PF_PORT"
	postconf -c "$WORK/postfix/postfix-conf" -e \
		"virtual_alias_maps = inline:{ $RCPT=y@sink.test }" \
		"transport_maps = inline:{ sink.test=smtp:[127.0.0.1]:$SINK_PORT }"
	POSTFIX_UP=1
	if [ "$SIGN" = 1 ]; then
		# no DNS is asked for signing: the namespace's resolv.conf is moot
		sh "$STACKSH" peer-setup "$WORK/postfix" 127.0.0.1 sign
		sh "$STACKSH" peer-start "$WORK/postfix"
	else
		sh "$PEERSH" start "$WORK/postfix"
	fi
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
		--hostname mx.example.test --resolver "127.0.0.1:$DNS_PORT" \
		>"$TERN_DIR.init.out" 2>&1 || { cat "$TERN_DIR.init.out" >&2; die "tern init failed"; }
	sed -i "s/^remote_smtp_port *=.*/remote_smtp_port = $SINK_PORT/" "$TERN_DIR/tern.conf"
	grep -q "^remote_smtp_port = $SINK_PORT\$" "$TERN_DIR/tern.conf" \
		|| die "cannot set remote_smtp_port in $TERN_DIR/tern.conf"
	[ -z "$TERN_CONF_EXTRA" ] || printf '%b\n' "$TERN_CONF_EXTRA" >>"$TERN_DIR/tern.conf"
	"$TERN" -c "$TERN_DIR/tern.conf" alias add "$RCPT" y@sink.test >>"$TERN_DIR.init.out" 2>&1 \
		|| { cat "$TERN_DIR.init.out" >&2; die "tern alias add failed"; }
	"$TERN" -c "$TERN_DIR/tern.conf" serve >"$TERN_DIR/tern.log" 2>&1 &
	TERN_PID=$!
	wait_banner "$TERN_PORT" 20 || { tail -20 "$TERN_DIR/tern.log" >&2; die "Tern does not answer on $TERN_PORT"; }
}

# --- one measurement ----------------------------------------------------------

# measure NAME PORT: prints "relayed/s accepted/s relay_s accept_s"
measure() {
	local name=$1 port=$2 t0 t1 t2 n
	t0=$(now)
	"$SOURCE" -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f "$FROM" -t "$RCPT" \
		"127.0.0.1:$port" >"$WORK/source-$name.out" 2>&1 \
		|| { cat "$WORK/source-$name.out" >&2; die "smtp-source to $name failed"; }
	t1=$(now)
	while :; do
		n=$(sink_count)
		[ "$n" -ge "$MESSAGES" ] && break
		if [ "$(echo "$(now) - $t0 > $TIMEOUT" | bc)" = 1 ]; then
			die "$name: only $n of $MESSAGES messages at the sink after ${TIMEOUT}s"
		fi
		sleep 0.05
	done
	t2=$(now)
	[ "$n" = "$MESSAGES" ] || log "$name: the sink counted $n messages, more than $MESSAGES"
	awk -v m="$MESSAGES" -v a="$t0" -v b="$t1" -v c="$t2" \
		'BEGIN { printf "%.1f %.1f %.3f %.3f\n", m / (c - a), m / (b - a), c - a, b - a }'
}

# sample_check NAME PORT ZONE: relay SAMPLE messages to a sink that keeps
# them, and check every DKIM signature of each against ZONE (dkimpy)
sample_check() {
	local name=$1 port=$2 zone=$3 dir=$WORK/sample-$1 n i
	mkdir -p "$dir"
	chown nobody "$dir"
	start_sink "sample-$name" "$dir"
	"$SOURCE" -s 1 -m "$SAMPLE" -l "$SIZE" -f "$FROM" -t "$RCPT" "127.0.0.1:$port" \
		>"$WORK/source-sample-$name.out" 2>&1 || die "smtp-source (sample) to $name failed"
	for i in $(seq 1 200); do
		n=$(find "$dir" -type f | wc -l)
		[ "$n" -ge "$SAMPLE" ] && [ "$(sink_count)" -ge "$SAMPLE" ] && break
		sleep 0.05
	done
	stop_sink
	[ "$n" -ge "$SAMPLE" ] || die "$name: only $n of $SAMPLE sample messages at the sink"
	# the sink writes its own envelope lines (X-Client-Addr: ...) above the message
	/usr/bin/python3 "$REPO/bench/mailauth/dkimtool.py" verify "$zone" "$dir"/* >"$WORK/verify-$name.out" \
		|| { cat "$WORK/verify-$name.out" >&2; die "$name: a sample message does not verify"; }
	log "$name: $(wc -l <"$WORK/verify-$name.out") signatures on $n sample messages verify: $(awk '{ print $2, $3, $4 }' "$WORK/verify-$name.out" | sort | uniq -c | tr -s ' \n' ' ')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- main ---------------------------------------------------------------------

command -v bc >/dev/null || die "bc is needed"
log "MESSAGES=$MESSAGES SIZE=$SIZE SESSIONS=$SESSIONS RUNS=$RUNS SIGN=$SIGN from=$FROM sink=127.0.0.1:$SINK_PORT"
log "uptime: $(uptime)"
start_dns
[ "$ONLY" = tern ] || start_postfix
[ -z "$RESULTS" ] || printf 'run\tserver\trelayed_per_s\taccepted_per_s\trelay_s\taccept_s\n' >"$RESULTS"

TERN_R=() PF_R=()
for run in $(seq 1 "$RUNS"); do
	if [ "$ONLY" != postfix ]; then
		start_tern "$run"
		start_sink "tern-$run"
		read -r rel acc rs as < <(measure tern "$TERN_PORT")
		stop_sink
		# the queue must be empty: every message relayed, nothing left
		left=$("$TERN" -c "$TERN_DIR/tern.conf" queue list | tail -n +2 | wc -l)
		[ "$left" = 0 ] || log "tern: $left queue rows left after the run"
		if [ "$SIGN" = 1 ] && [ "$run" = 1 ]; then
			"$TERN" -c "$TERN_DIR/tern.conf" domain dns example.test >"$WORK/tern.zone"
			sample_check tern "$TERN_PORT" "$WORK/tern.zone"
		fi
		stop_tern
		log "run $run tern:    relayed/s=$rel accepted/s=$acc (relay ${rs}s, inject ${as}s)"
		TERN_R+=("$rel")
		[ -z "$RESULTS" ] || printf '%s\ttern\t%s\t%s\t%s\t%s\n' "$run" "$rel" "$acc" "$rs" "$as" >>"$RESULTS"
	fi
	if [ "$ONLY" != tern ]; then
		start_sink "postfix-$run"
		read -r rel acc rs as < <(measure postfix "$PF_PORT")
		stop_sink
		[ "$SIGN" = 0 ] || [ "$run" != 1 ] || sample_check postfix "$PF_PORT" "$WORK/postfix/example.zone"
		log "run $run postfix: relayed/s=$rel accepted/s=$acc (relay ${rs}s, inject ${as}s)"
		PF_R+=("$rel")
		[ -z "$RESULTS" ] || printf '%s\tpostfix\t%s\t%s\t%s\t%s\n' "$run" "$rel" "$acc" "$rs" "$as" >>"$RESULTS"
	fi
done

echo "outbound relay: $MESSAGES x $SIZE B, $SESSIONS injecting sessions, $RUNS runs (median relayed/s)"
if [ "$ONLY" != postfix ]; then
	T=$(printf '%s\n' "${TERN_R[@]}" | median)
	echo "tern     $T msg/s"
fi
if [ "$ONLY" != tern ]; then
	P=$(printf '%s\n' "${PF_R[@]}" | median)
	echo "postfix  $P msg/s"
fi
if [ "$ONLY" = both ]; then
	echo "ratio    $(awk -v t="$T" -v p="$P" 'BEGIN { printf "%.2f", t / p }') (tern/postfix)"
fi
log "uptime (end): $(uptime)"
