#!/bin/sh
# stack.sh - the pieces of the sender-authentication benchmarks around the
# servers: a local DNS (unbound) with the sender's SPF, DKIM and DMARC
# records, a DKIM-signed message, and Postfix's authentication stack
# (OpenDKIM and OpenDMARC as milters, postfix-policyd-spf-python as policy
# service), all Debian packages, configured under a temp folder.
#
#   stack.sh keys DIR                      RSA-2048 key of client.test (DIR/client.pem,
#                                          DIR/client.zone with its TXT record)
#   stack.sh dns-start DIR ADDR ZONE...    unbound on ADDR:53 serving client.test
#                                          (SPF, DKIM, DMARC) plus the TXT records of
#                                          the ZONE files; "." answers NXDOMAIN
#   stack.sh dns-stop DIR
#   stack.sh message DIR SIZE OUT          a message From: bench@client.test, signed
#   stack.sh peer-setup PEER ADDR MODE [ZONE]  add the stack to the Postfix of
#                                          bench/smtp/postfix-peer.sh setup PEER ...:
#                                          MODE verify (intake: OpenDKIM verifies with
#                                          the keys of ZONE, OpenDMARC and policyd-spf
#                                          ask ADDR) or sign (outbound:
#                                          OpenDKIM signs for example.test with an
#                                          RSA-2048 key, its record in PEER/example.zone)
#   stack.sh peer-start PEER               start the milters and Postfix in a mount
#                                          namespace whose /etc/resolv.conf names ADDR
#   stack.sh peer-stop PEER                stop them
#   stack.sh milter-pids PEER              the milters' PIDs (for CPU accounting)
#
# The host's /etc/resolv.conf is never changed: policyd-spf (pyspf) and
# OpenDMARC ask the resolvers of resolv.conf, so the peer runs in its own
# mount namespace (unshare -m) with a private one bound over it.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TOOL=$HERE/dkimtool.py
PEERSH=$HERE/../smtp/postfix-peer.sh
SEL=bench
DKIM_PORT_OFF=1
DMARC_PORT_OFF=2

die() { echo "stack.sh: $*" >&2; exit 1; }

ensure_pkgs() { # ensure_pkgs BIN:PACKAGE...
	missing=
	for bp in "$@"; do
		[ -x "${bp%%:*}" ] || missing="$missing ${bp#*:}"
	done
	[ -z "$missing" ] && return 0
	echo "stack.sh: installing$missing" >&2
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null; } \
		|| die "cannot install$missing"
}

# txt_record NAME VALUE: a zone line, VALUE cut into 255-octet strings
txt_record() {
	printf '%s TXT' "$1"
	printf '%s\n' "$2" | fold -w 255 | while IFS= read -r part; do printf ' "%s"' "$part"; done
	echo
}

pubkey_b64() { openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | base64 -w0; }

keys() {
	dir=$1
	mkdir -p "$dir"
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/client.pem" 2>/dev/null
	chmod 644 "$dir/client.pem"
	{
		txt_record "$SEL._domainkey.client.test." "v=DKIM1; k=rsa; p=$(pubkey_b64 "$dir/client.pem")"
		txt_record client.test. "v=spf1 ip4:127.0.0.1 -all"
		txt_record _dmarc.client.test. "v=DMARC1; p=reject; adkim=r; aspf=r"
	} >"$dir/client.zone"
}

dns_ask() { # dns_ask ADDR NAME: the TXT records of NAME (python3-dnspython)
	/usr/bin/python3 -c 'import sys, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = [sys.argv[1]]
r.lifetime = 1
for a in r.resolve(sys.argv[2], "TXT"): print(a.to_text())' "$1" "$2" 2>/dev/null || true
}

dns_start() {
	dir=$1 addr=$2
	shift 2
	ensure_pkgs /usr/sbin/unbound:unbound
	mkdir -p "$dir"
	{
		cat <<EOF
server:
	interface: $addr
	port: 53
	do-ip6: no
	do-daemonize: yes
	username: ""
	chroot: ""
	directory: "$dir"
	pidfile: "$dir/unbound.pid"
	logfile: "$dir/unbound.log"
	use-syslog: no
	verbosity: 1
	num-threads: 1
	access-control: 127.0.0.0/8 allow
	module-config: "iterator"
	do-not-query-localhost: yes
	local-zone: "." static
	local-zone: "client.test." static
	local-zone: "example.test." static
	local-data: "client.test. A 127.0.0.1"
EOF
		# every TXT line of the zone files, as local-data
		for z in "$@"; do
			grep -E '^[^ ;]+ +([0-9]+ +)?(IN +)?TXT ' "$z" | sed -E 's/ +IN +TXT / TXT /' \
				| awk -v q="'" '{ print "\tlocal-data: " q $0 q }'
		done
		cat <<EOF
remote-control:
	control-enable: no
EOF
	} >"$dir/unbound.conf"
	unbound-checkconf "$dir/unbound.conf" >/dev/null || die "bad $dir/unbound.conf"
	unbound -c "$dir/unbound.conf" || die "unbound did not start (log: $dir/unbound.log)"
	n=0
	until dns_ask "$addr" _dmarc.client.test | grep -q DMARC1; do
		n=$((n + 1))
		[ $n -lt 50 ] || die "unbound does not answer on $addr"
		sleep 0.1
	done
}

stop_pidfile() { # stop_pidfile FILE: TERM, wait up to 10 s, then KILL
	[ -f "$1" ] || return 0
	pid=$(tr -dc 0-9 <"$1")
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	n=0
	while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	kill -KILL "$pid" 2>/dev/null || true
}

dns_stop() { stop_pidfile "$1/unbound.pid"; }

message() {
	dir=$1 size=$2 out=$3
	/usr/bin/python3 "$TOOL" sign --key "$dir/client.pem" --domain client.test --selector "$SEL" \
		--from bench@client.test --to test1@example.test --size "$size" "$out"
}

# the port of the first milter: free TCP ports from 31000
milter_port() {
	p=31000
	while ss -Htln "sport = :$p" | grep -q . || ss -Htln "sport = :$((p + 1))" | grep -q .; do
		p=$((p + 10))
	done
	echo $p
}

peer_setup() {
	peer=$1 addr=$2 mode=$3 zone=${4:-}
	conf=$peer/postfix-conf
	[ -f "$conf/main.cf" ] || die "run postfix-peer.sh setup $peer first"
	ensure_pkgs /usr/sbin/opendkim:opendkim /usr/sbin/opendmarc:opendmarc \
		/usr/bin/policyd-spf:postfix-policyd-spf-python
	st=$peer/auth
	mkdir -p "$st/run" "$st/run-dmarc"
	chown opendkim:opendkim "$st/run"
	chown opendmarc:opendmarc "$st/run-dmarc"
	base=$(milter_port)
	echo "$base" >"$st/milter-port"
	echo "nameserver $addr" >"$st/resolv.conf"
	cat >"$st/opendkim.conf" <<EOF
Syslog no
Background yes
Mode $(echo "$mode" | cut -c1)
Socket inet:$((base + DKIM_PORT_OFF))@127.0.0.1
PidFile $st/run/opendkim.pid
UserID opendkim
InternalHosts $st/internal-hosts
EOF
	if [ "$mode" = verify ]; then
		# nobody's mail is "internal" or ignored: every client is checked
		echo 192.0.2.1 >"$st/internal-hosts"
		# OpenDKIM reads the DKIM keys of ZONE from a file (TestDNSData), not
		# from DNS: through libunbound (ResolverConfiguration forwarding to
		# ADDR) this OpenDKIM 2.11.0~beta2 crashed (SIGSEGV in libunbound,
		# or a GPF in libc) after a few hundred messages, at 5 sessions as
		# at 20; with the file it ran 1,500 of 1,500 at 20 sessions
		[ -n "$zone" ] || die "peer-setup PEER ADDR verify needs the ZONE"
		awk '/\._domainkey\./ && / TXT / { n = $1; sub(/\.$/, "", n); sub(/^[^"]*/, ""); gsub(/" "|"| /, ""); print n, $0 }' \
			"$zone" >"$st/dkim-keys"
		chmod 644 "$st/dkim-keys"
		printf '%s\n' "AuthservID mail.example.test" "AlwaysAddARHeader yes" \
			"TestDNSData file:$st/dkim-keys" >>"$st/opendkim.conf"
		cat >"$st/opendmarc.conf" <<EOF
Syslog false
Background true
Socket inet:$((base + DMARC_PORT_OFF))@127.0.0.1
PidFile $st/run-dmarc/opendmarc.pid
UserID opendmarc
AuthservID mail.example.test
TrustedAuthservIDs mail.example.test
IgnoreHosts $st/internal-hosts
PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat
RejectFailures true
FailureReports false
SPFSelfValidate false
EOF
		cat >"$st/policyd-spf.conf" <<EOF
debugLevel = 0
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.1/32
Header_Type = AR
Authserv_Id = mail.example.test
EOF
		postconf -c "$conf" -e \
			"smtpd_milters = inet:127.0.0.1:$((base + DKIM_PORT_OFF)), inet:127.0.0.1:$((base + DMARC_PORT_OFF))" \
			"milter_default_action = tempfail" \
			"smtpd_recipient_restrictions = check_policy_service unix:private/policyd-spf" \
			"policyd-spf_time_limit = 3600"
		cat >>"$conf/master.cf" <<EOF
policyd-spf unix -      n       n       -       0       spawn user=policyd-spf argv=/usr/bin/policyd-spf $st/policyd-spf.conf
EOF
	else
		# sign: one RSA-2048 key (Tern signs with an Ed25519 and an RSA-2048
		# key; this OpenDKIM, 2.11.0~beta2, refuses every form of Ed25519
		# private key tried: PEM PKCS#8, raw seed, seed + public key)
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$st/rsa.pem" 2>/dev/null
		txt_record "pf-rsa._domainkey.example.test." "v=DKIM1; k=rsa; p=$(pubkey_b64 "$st/rsa.pem")" >"$peer/example.zone"
		chown opendkim:opendkim "$st/rsa.pem"
		chmod 600 "$st/rsa.pem"
		echo "rsa example.test:pf-rsa:$st/rsa.pem" >"$st/keytable"
		echo "*@example.test rsa" >"$st/signingtable"
		# mail from the injecting client (127.0.0.1) is signed; the key is
		# under /tmp, which is world-writable: RequireSafeKeys would refuse
		# it (no comments inside: this opendkim.conf parser fails on them)
		echo 127.0.0.1 >"$st/internal-hosts"
		cat >>"$st/opendkim.conf" <<EOF
KeyTable file:$st/keytable
SigningTable refile:$st/signingtable
Canonicalization relaxed/relaxed
OversignHeaders From
RequireSafeKeys false
EOF
		postconf -c "$conf" -e \
			"smtpd_milters = inet:127.0.0.1:$((base + DKIM_PORT_OFF))" \
			"milter_default_action = tempfail"
	fi
	chmod 644 "$st"/*.conf
}

peer_start() {
	peer=$1 st=$1/auth
	[ -f "$st/opendkim.conf" ] || die "run peer-setup first"
	# shellcheck disable=SC2016
	unshare -m sh -ec '
		mount --bind "$1/resolv.conf" /etc/resolv.conf
		opendkim -x "$1/opendkim.conf"
		[ ! -f "$1/opendmarc.conf" ] || opendmarc -c "$1/opendmarc.conf"
		sh "$2" start "$3"' sh "$st" "$PEERSH" "$peer"
	port=$(cat "$st/milter-port")
	for off in $DKIM_PORT_OFF $([ -f "$st/opendmarc.conf" ] && echo $DMARC_PORT_OFF); do
		n=0
		until ss -Htln "sport = :$((port + off))" | grep -q .; do
			n=$((n + 1))
			[ $n -lt 100 ] || die "no milter on port $((port + off))"
			sleep 0.1
		done
	done
}

peer_stop() {
	peer=$1 st=$1/auth
	sh "$PEERSH" stop "$peer"
	stop_pidfile "$st/run/opendkim.pid"
	stop_pidfile "$st/run-dmarc/opendmarc.pid"
}

milter_pids() {
	st=$1/auth
	for f in "$st/run/opendkim.pid" "$st/run-dmarc/opendmarc.pid"; do
		[ -f "$f" ] && tr -dc 0-9 <"$f" && echo
	done
	return 0
}

cmd=${1:-}
[ $# -ge 1 ] && shift
case $cmd in
keys) [ $# = 1 ] || die "usage: keys DIR"; keys "$@" ;;
dns-start) [ $# -ge 2 ] || die "usage: dns-start DIR ADDR [ZONE...]"; dns_start "$@" ;;
dns-stop) [ $# = 1 ] || die "usage: dns-stop DIR"; dns_stop "$@" ;;
message) [ $# = 3 ] || die "usage: message DIR SIZE OUT"; message "$@" ;;
peer-setup) [ $# = 3 ] || [ $# = 4 ] || die "usage: peer-setup PEER ADDR verify ZONE | sign"; peer_setup "$@" ;;
peer-start) [ $# = 1 ] || die "usage: peer-start PEER"; peer_start "$@" ;;
peer-stop) [ $# = 1 ] || die "usage: peer-stop PEER"; peer_stop "$@" ;;
milter-pids) [ $# = 1 ] || die "usage: milter-pids PEER"; milter_pids "$@" ;;
*) die "usage: stack.sh keys|dns-start|dns-stop|message|peer-setup|peer-start|peer-stop|milter-pids ..." ;;
esac
