#!/bin/bash
# bench/tls/run.sh - full TLS 1.3 handshakes per second on imaps: Tern and
# Dovecot in the same run (see bench/README.md, "tls/run.sh").
#
#   sudo bench/tls/run.sh                     # 3 runs x 10 s (5 slices), 8 client processes
#   SECONDS_RUN=3 RUNS=1 bench/tls/run.sh     # quick check
#   KEY=rsa bench/tls/run.sh                  # RSA-2048 instead of ECDSA P-256
#
# One certificate and key, made here in the temp folder, serve both servers.
# The load is tlsload.c (connect, full handshake, read the greeting, close;
# PROCS processes side by side).  Each run measures Tern, Dovecot in its
# default high-security login mode and (DOVECOT_PERF=1) Dovecot in
# performance mode, the order rotating between runs, and prints
# handshakes/s, server CPU ms per handshake, then medians and ratios.
# A run gives each server SECONDS_RUN s in SLICES turns, the servers
# alternating, so that the other jobs on the machine weigh on all alike.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PROCS=${PROCS:-8}
SECONDS_RUN=${SECONDS_RUN:-10}
RUNS=${RUNS:-3}
SLICES=${SLICES:-5}
KEY=${KEY:-ec}
SUITE=${SUITE:-TLS_AES_256_GCM_SHA384}
GROUP=${GROUP:-X25519}
DOVECOT_PERF=${DOVECOT_PERF:-1}
ONLY=${ONLY:-both}
TERN=${TERN:-$REPO/build/tern}
TERN_CONF_EXTRA=${TERN_CONF_EXTRA:-}
KEEP=${KEEP:-0}
RESULTS=${RESULTS:-}

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (Dovecot, Tern's privilege drop)"
case $ONLY in tern | dovecot | both) ;; *) die "ONLY must be tern, dovecot or both" ;; esac
case $KEY in ec | rsa) ;; *) die "KEY must be ec (P-256) or rsa (2048)" ;; esac
[ "$PROCS" -ge 1 ] && [ "$PROCS" -le 256 ] || die "PROCS must be 1..256"
[ "$SLICES" -ge 1 ] || die "SLICES must be at least 1"
if [ "$ONLY" != dovecot ]; then
	[ -x "$TERN" ] || die "$TERN not built (cd $REPO && make build)"
fi

ensure_dovecot() {
	[ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap-login ] && return 0
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

WORK=$(mktemp -d /tmp/tern-bench-tls.XXXXXX)
chmod 755 "$WORK"
TERN_PID=
DOVECOTS=
LOAD_PID=
if [ "$ONLY" != dovecot ]; then
	cp "$TERN" "$WORK/tern.bin" # a private copy: others may rebuild meanwhile
	TERN_ORIG=$TERN
	TERN=$WORK/tern.bin
fi
cc -O2 -Wall -Wextra -o "$WORK/tlsload" "$HERE/tlsload.c" -lssl -lcrypto 2>"$WORK/tlsload.build" \
	|| { cat "$WORK/tlsload.build" >&2; die "cannot build tlsload.c (needs cc and libssl-dev)"; }

# --- process helpers (as bench/imap/run.sh) ------------------------------------

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

stop_dovecot() { # stop_dovecot NAME
	local d=$WORK/$1 pid n=0
	pid=$(cat "$d/run/master.pid" 2>/dev/null || true)
	doveadm -c "$d/dovecot.conf" stop >/dev/null 2>&1 \
		|| { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; } || true
	while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? d
	trap - EXIT INT TERM
	if [ -n "$LOAD_PID" ]; then
		for p in $(descendants "$LOAD_PID"); do kill "$p" 2>/dev/null || true; done
	fi
	stop_tern
	for d in $DOVECOTS; do stop_dovecot "$d"; done
	if [ "$KEEP" = 1 ] || [ $rc != 0 ]; then
		log "kept $WORK (logs: tern/tern.log, dovecot*/dovecot.log, load-*.out)"
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

free_base() {
	local b off ok
	for b in $(seq 20000 1000 59000 | shuf); do # other helpers pick bases too
		ok=1
		for off in 25 80 110 143 443 465 587 993 995 4190; do
			port_busy $((b + off)) && { ok=0; break; }
		done
		[ $ok = 1 ] && { echo $b; return; }
	done
	die "no free port base"
}

owns_port() { # owns_port ROOTPID PORT
	local pids p
	pids=$(ss -Htlnp "sport = :$2" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2)
	[ -n "$pids" ] || return 1
	for p in $pids; do
		case " $(descendants "$1") " in *" $p "*) ;; *) return 1 ;; esac
	done
}

# wait_imaps PORT SECONDS: a TLS handshake and an IMAP greeting on PORT
wait_imaps() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		if printf 'Z LOGOUT\r\n' | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$1" \
			-servername mx.example.test 2>/dev/null | grep -q '^\* OK'; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# --- certificate ------------------------------------------------------------

mkdir -p "$WORK/tls"
if [ "$KEY" = ec ]; then
	KEYARGS=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
else
	KEYARGS=(-newkey rsa:2048)
fi
openssl req -x509 "${KEYARGS[@]}" -sha256 -nodes -days 30 -subj /CN=mx.example.test \
	-addext subjectAltName=DNS:mx.example.test -keyout "$WORK/tls/key.pem" \
	-out "$WORK/tls/cert.pem" >"$WORK/tls/req.out" 2>&1 \
	|| { cat "$WORK/tls/req.out" >&2; die "openssl req failed"; }
chmod 600 "$WORK/tls/key.pem"

# --- servers ----------------------------------------------------------------

# start_tern: tries a few port bases (another server may take a port
# between free_base and Tern's bind)
start_tern() {
	local try
	for try in 1 2 3 4 5; do
		try_tern && return 0
		log "tern did not start on try $try (port taken?): $(grep -m1 -i 'in use' "$TERN_DIR/tern.log" || true)"
		stop_tern
		rm -rf "$TERN_DIR"
	done
	die "Tern does not start (last log: see above)"
}

try_tern() {
	local base
	TERN_DIR=$WORK/tern
	base=$(free_base)
	TERN_PORT=$((base + 993))
	"$TERN" init "$TERN_DIR" --port-base "$base" --domain example.test \
		--hostname mx.example.test >"$WORK/tern-init.out" 2>&1 \
		|| { cat "$WORK/tern-init.out" >&2; die "tern init failed"; }
	chmod 755 "$TERN_DIR"
	grep -q '^tls.cert = ' "$TERN_DIR/tern.conf" && grep -q '^tls.key = ' "$TERN_DIR/tern.conf" \
		&& grep -q "^imaps.listen = 127.0.0.1:$TERN_PORT\$" "$TERN_DIR/tern.conf" \
		|| die "tern.conf has no tls.cert/tls.key/imaps.listen lines to change"
	sed -i -e "s|^tls.cert = .*|tls.cert = $WORK/tls/cert.pem|" \
		-e "s|^tls.key = .*|tls.key = $WORK/tls/key.pem|" "$TERN_DIR/tern.conf"
	[ -z "$TERN_CONF_EXTRA" ] || printf '%b\n' "$TERN_CONF_EXTRA" >>"$TERN_DIR/tern.conf"
	"$TERN" -c "$TERN_DIR/tern.conf" serve >"$TERN_DIR/tern.log" 2>&1 &
	TERN_PID=$!
	# a quick exit is a port taken meanwhile; then the greeting could
	# even come from someone else's server on that port
	sleep 0.5
	kill -0 "$TERN_PID" 2>/dev/null || return 1
	wait_imaps "$TERN_PORT" 20 || { tail -20 "$TERN_DIR/tern.log" >&2; die "Tern imaps does not answer on $TERN_PORT"; }
	kill -0 "$TERN_PID" 2>/dev/null || return 1
	owns_port "$TERN_PID" "$TERN_PORT" || die "port $TERN_PORT is not Tern's (pid $TERN_PID)"
	TERN_PIDS0=$(descendants "$TERN_PID")
}

# start_dovecot NAME MODE: the peer configuration of peers.md, IMAP only,
# with ssl = yes and only an imaps listener, self-contained under
# $WORK/NAME.  MODE hs: imap-login in its default high-security mode (one
# process per connection, service_count = 1); perf: performance mode
# (service_count = 0, process_min_avail = one per CPU).
start_dovecot() {
	local name=$1 mode=$2 d=$WORK/$1 port login
	port=$(free_port 10993) # an earlier instance is listening already: skipped
	mkdir -p "$d/run" "$d/state"
	echo "test1:{PLAIN}pass:5000:5000::$WORK/mail/test1" >"$d/users"
	if [ "$mode" = perf ]; then
		login="  service_count = 0
  process_min_avail = $(nproc)"
	else
		login="  # default high-security mode: service_count = 1, one process per connection"
	fi
	cat >"$d/dovecot.conf" <<EOF
# Peer-measurement Dovecot config (peers.md), imaps only; run with dovecot -c THIS
protocols = imap
listen = 127.0.0.1
base_dir = $d/run
state_dir = $d/state
instance_name = tern-bench-$name
log_path = $d/dovecot.log
info_log_path = $d/dovecot-info.log

# TLS: the certificate and key Tern serves; everything else at Dovecot's
# defaults (ssl_min_protocol TLSv1.2, OpenSSL's TLS 1.3 suites and groups)
ssl = yes
ssl_cert = <$WORK/tls/cert.pem
ssl_key = <$WORK/tls/key.pem
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
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $port
    ssl = yes
  }
$login
}
EOF
	dovecot -c "$d/dovecot.conf" || { cat "$d/dovecot.log" >&2 2>/dev/null; die "dovecot ($name) did not start"; }
	DOVECOTS="$DOVECOTS $name"
	wait_imaps "$port" 20 || { tail -20 "$d/dovecot.log" >&2; die "Dovecot ($name) does not answer on $port"; }
	local pid
	pid=$(cat "$d/run/master.pid")
	owns_port "$pid" "$port" || die "port $port is not Dovecot's (pid $pid)"
	eval "PORT_${name//-/_}=$port ROOT_${name//-/_}=$pid"
}

# --- the load -----------------------------------------------------------------

field() { tr '\t' '\n' <"$1" | sed -n "s/^$2=//p"; }

# slice SERVER RUN SECONDS: one tlsload pass, its line appended to
# load-SERVER-RUN.out (its latency histogram added to load-SERVER-RUN.hist)
slice() {
	local s=$1 run=$2 secs=$3 port root out=$WORK/load-$1-$2 rc=0 v
	v=${s//-/_}
	if [ "$s" = tern ]; then port=$TERN_PORT root=$TERN_PID; else
		eval "port=\$PORT_$v root=\$ROOT_$v"
	fi
	TLSLOAD_HIST=$out.hist "$WORK/tlsload" "$port" "$PROCS" "$secs" "$root" "$SUITE" "$GROUP" \
		mx.example.test >"$out.line" 2>"$out.err" &
	LOAD_PID=$!
	wait "$LOAD_PID" || rc=$?
	LOAD_PID=
	[ $rc = 0 ] || { cat "$out.err" >&2; die "$s run $run: TLS load failed (exit $rc): $(cat "$out.line")"; }
	[ "$(field "$out.line" version)" = TLSv1.3 ] || die "$s run $run: not TLS 1.3: $(cat "$out.line")"
	[ "$(field "$out.line" resumed)" = 0 ] || die "$s run $run: resumed handshakes: $(cat "$out.line")"
	cat "$out.line" >>"$out.out"
	if [ "$s" = tern ]; then
		local pids
		pids=$(descendants "$TERN_PID")
		[ "$pids" = "$TERN_PIDS0" ] || log "tern run $run: process set changed: was [$TERN_PIDS0], now [$pids] (worker died?)"
	fi
}

# summary SERVER RUN: the TSV line of a run (its slices summed; latencies
# from the last slice, which has the histogram of them all)
# run server hs/s wall_s handshakes cpu_ms/hs client_ms/hs p50 p90 p99 tickets/hs cipher group key
summary() {
	awk -v run="$2" -v s="$1" -F'\t' '{
		for (i = 1; i <= NF; i++) { eq = index($i, "="); v[substr($i, 1, eq - 1)] = substr($i, eq + 1) }
		hs += v["handshakes"]; wall += v["wall"]; scpu += v["server_cpu"]; ccpu += v["client_cpu"]
		tk += v["tickets"] * v["handshakes"]
	}
	END {
		printf "%s\t%s\t%.1f\t%.3f\t%d\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\n", run, s,
			hs / wall, wall, hs, scpu * 1000 / hs, ccpu * 1000 / hs, v["lat_p50"], v["lat_p90"],
			v["lat_p99"], tk / hs, v["cipher"], v["group"], v["key"]
	}' "$WORK/load-$1-$2.out"
}

FMT='%-4s %-12s %8s %7s %9s %9s %9s %7s %7s %7s %7s  %s\n'
print_line() {
	awk -F'\t' -v fmt="$FMT" '{ printf fmt, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 "/" $13 "/" $14 }'
}

# --- main -------------------------------------------------------------------

SERVERS=
[ "$ONLY" = dovecot ] || SERVERS="tern"
if [ "$ONLY" != tern ]; then
	SERVERS="$SERVERS dovecot"
	[ "$DOVECOT_PERF" != 1 ] || SERVERS="$SERVERS dovecot-perf"
fi
[ "$ONLY" = dovecot ] || log "tern: $TERN_ORIG ($("$TERN" --version 2>/dev/null | head -1 || true)), copied to $TERN"
[ "$ONLY" = tern ] || log "dovecot: $(dovecot --version)"
log "openssl: $(openssl version)"
log "KEY=$KEY SUITE=$SUITE GROUP=$GROUP PROCS=$PROCS SECONDS_RUN=$SECONDS_RUN SLICES=$SLICES RUNS=$RUNS servers:$SERVERS work=$WORK"
log "uptime: $(uptime)"

[ "$ONLY" = dovecot ] || start_tern
if [ "$ONLY" != tern ]; then
	start_dovecot dovecot hs
	[ "$DOVECOT_PERF" != 1 ] || start_dovecot dovecot-perf perf
fi
for s in $SERVERS; do
	slice "$s" 0 1
	summary "$s" 0 >"$WORK/line"
	log "warm-up $s: $(print_line <"$WORK/line")"
done

TSV=$WORK/results.tsv
: >"$TSV"
printf "$FMT" run server hs/s wall_s hs cpu_ms/hs client_ms p50_ms p90_ms p99_ms tkt/hs cipher/group/key
read -r -a order <<<"$SERVERS"
SLICE_S=$(awk -v t="$SECONDS_RUN" -v n="$SLICES" 'BEGIN { printf "%.3f", t / n }')
n=${#order[@]}
for run in $(seq 1 "$RUNS"); do
	# SLICES rounds of SECONDS_RUN/SLICES s per server, the servers taking
	# turns (the first one rotating), so that a change in the machine's
	# background load hits every server alike
	for k in $(seq 1 "$SLICES"); do
		for i in $(seq 0 $((n - 1))); do
			slice "${order[$(((i + run + k) % n))]}" "$run" "$SLICE_S"
			sleep 0.2
		done
	done
	for s in $SERVERS; do
		summary "$s" "$run" >"$WORK/line"
		cat "$WORK/line" >>"$TSV"
		print_line <"$WORK/line"
	done
done
echo "(hs/s = full handshakes completed, with the greeting read, per second of wall time; cpu_ms/hs = CPU of all the server's processes per handshake; client_ms = tlsload's CPU per handshake; p50/p90/p99 = ms from connect() to the greeting; tkt/hs = TLS 1.3 session tickets the server sent per handshake, never used)"

# every handshake must have negotiated the same cipher, group and key
if [ "$(cut -f12,13,14 "$TSV" | sort -u | wc -l)" != 1 ]; then
	log "the servers negotiated different parameters:"
	cut -f2,12,13,14 "$TSV" | sort | uniq -c >&2
	KEEP=1
fi

if [ "$ONLY" != dovecot ]; then
	awk '$2 !~ /^(info|debug)$/ || (/ action=exited / && !/ status=0( |$)/)' \
		"$TERN_DIR/tern.log" >"$WORK/tern.problems"
	if [ -s "$WORK/tern.problems" ]; then
		log "$(wc -l <"$WORK/tern.problems") warn/error lines in $TERN_DIR/tern.log, first ones:"
		head -5 "$WORK/tern.problems" | sed 's/^/#   /' >&2
		KEEP=1
	fi
fi
for d in $DOVECOTS; do
	if grep -qiE 'error|fatal|panic' "$WORK/$d/dovecot.log" 2>/dev/null; then
		log "errors in $d/dovecot.log, first ones:"
		grep -iE 'error|fatal|panic' "$WORK/$d/dovecot.log" | head -5 | sed 's/^/#   /' >&2
		KEEP=1
	fi
done

# medians and ratios
awk -F'\t' -v servers="$SERVERS" '
function median(arr, n,    i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && arr[j-1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j-1]; arr[j-1] = t }
	return (n % 2) ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
}
{ s = $2; n[s]++; for (c = 3; c <= 11; c++) v[s, c, n[s]] = $c }
END {
	ns = split(servers, sv, " ")
	runs = 0
	for (s in n) if (n[s] > runs) runs = n[s]
	printf "\nmedians over %d run(s):\n", runs
	fmt = "%-12s %8s %9s %9s %7s %7s %7s\n"
	printf fmt, "server", "hs/s", "cpu_ms/hs", "client_ms", "p50_ms", "p90_ms", "p99_ms"
	nc = split("3 6 7 8 9 10", cols, " ")
	for (s in n) for (k = 1; k <= nc; k++) {
		c = cols[k]
		for (i = 1; i <= n[s]; i++) x[i] = v[s, c, i]
		m[s, c] = median(x, n[s])
	}
	for (i = 1; i <= ns; i++) {
		s = sv[i]
		if (!(s in n)) continue
		printf "%-12s %8.1f %9.3f %9.3f %7.2f %7.2f %7.2f\n", s, m[s, 3], m[s, 6], m[s, 7], m[s, 8], m[s, 9], m[s, 10]
	}
	if ("tern" in n) for (i = 1; i <= ns; i++) {
		s = sv[i]
		if (s == "tern" || !(s in n) || m[s, 3] <= 0 || m[s, 6] <= 0) continue
		printf "%-12s %8.2f %9.2f %9s %7.2f %7.2f %7.2f\n", "tern/" s, m["tern", 3] / m[s, 3],
			m["tern", 6] / m[s, 6], "", m["tern", 8] / m[s, 8], m["tern", 9] / m[s, 9], m["tern", 10] / m[s, 10]
	}
}' "$TSV"
echo "(ratios: hs/s above 1, cpu_ms/hs and latencies below 1 favour Tern)"
log "uptime: $(uptime)"
[ -z "$RESULTS" ] || cp "$TSV" "$RESULTS"
