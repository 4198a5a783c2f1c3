#!/bin/sh
# postfix-peer.sh - a self-contained Postfix peer for Tern's SMTP benchmarks.
#
#   postfix-peer.sh setup PEER MAILROOT PORT   write config + queue under PEER,
#                                              Maildirs test1..test20 under MAILROOT
#   postfix-peer.sh start PEER                 postfix -c PEER/postfix-conf start
#   postfix-peer.sh stop PEER                  postfix -c PEER/postfix-conf stop (quiet)
#   postfix-peer.sh count MAILROOT             number of files in every Maildir new/
#   postfix-peer.sh clear MAILROOT             empty every Maildir new/ and cur/
#
# The configuration is the one in /work/shared/peers.md (Debian 12 Postfix
# 3.7, default-tuned, virtual(8) Maildir delivery, every service chroot n),
# except that config_directory, queue_directory, data_directory and the log
# live under PEER, so /etc/postfix needs no main.cf.  Needs root (Postfix's
# master runs as root; virtual(8) delivers as vmail, uid/gid 5000, which is
# created here if missing).  Installs the postfix package if missing.
set -eu

USERS=20

die() { echo "postfix-peer: $*" >&2; exit 1; }

ensure_postfix() {
	if [ ! -x /usr/sbin/postfix ] || [ ! -x /usr/sbin/smtp-source ]; then
		echo "postfix-peer: installing postfix (No configuration)" >&2
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null; } \
			|| die "cannot install postfix"
	fi
}

ensure_vmail() {
	getent group vmail >/dev/null || groupadd -g 5000 vmail
	getent passwd vmail >/dev/null || useradd -u 5000 -g 5000 -M -d /nonexistent -s /usr/sbin/nologin vmail
	[ "$(id -u vmail)" = 5000 ] || die "user vmail exists but is not uid 5000"
}

setup() {
	peer=$1 mailroot=$2 port=$3
	[ "$(id -u)" = 0 ] || die "must run as root"
	ensure_postfix
	ensure_vmail
	conf=$peer/postfix-conf
	mkdir -p "$conf" "$peer/queue" "$peer/data" "$mailroot"
	chmod 755 "$peer" "$mailroot"
	chown postfix:postfix "$peer/data"
	i=1
	: >"$conf/vmailbox"
	while [ $i -le $USERS ]; do
		echo "test$i@example.test test$i/Maildir/" >>"$conf/vmailbox"
		mkdir -p "$mailroot/test$i/Maildir/new" "$mailroot/test$i/Maildir/cur" "$mailroot/test$i/Maildir/tmp"
		i=$((i + 1))
	done
	chown -R 5000:5000 "$mailroot"

	cat >"$conf/main.cf" <<EOF
# Peer-measurement Postfix config, as /work/shared/peers.md, self-contained.
compatibility_level = 3.6
config_directory = $conf
queue_directory = $peer/queue
data_directory = $peer/data
meta_directory = /etc/postfix
myhostname = mail.example.test
mydomain = example.test
myorigin = \$myhostname
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = \$myhostname ESMTP
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
maillog_file_prefixes = $peer
maillog_file = $peer/postfix.log
smtp_dns_support_level = disabled
smtp_host_lookup = native

virtual_mailbox_domains = example.test
virtual_mailbox_base = $mailroot
virtual_mailbox_maps = hash:$conf/vmailbox
virtual_uid_maps = static:5000
virtual_gid_maps = static:5000
virtual_minimum_uid = 5000
virtual_transport = virtual
EOF

	cat >"$conf/master.cf" <<EOF
# Debian 12 default services, smtp listener on 127.0.0.1:$port, chroot n.
127.0.0.1:$port inet n   -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	postmap -c "$conf" "hash:$conf/vmailbox"
	# create the queue directories with the right owners now, not at start
	postfix -c "$conf" check >/dev/null 2>&1 || postfix -c "$conf" check
}

start() {
	peer=$1
	postfix -c "$peer/postfix-conf" start >/dev/null 2>&1 || {
		postfix -c "$peer/postfix-conf" start
		die "postfix start failed (log: $peer/postfix.log)"
	}
}

stop() {
	peer=$1
	[ -f "$peer/postfix-conf/main.cf" ] || return 0
	postfix -c "$peer/postfix-conf" stop >/dev/null 2>&1 || true
	# wait for the master to go (postfix stop returns before it has)
	pidf=$peer/queue/pid/master.pid
	n=0
	while [ -f "$pidf" ] && pid=$(tr -dc 0-9 <"$pidf") && [ -n "$pid" ] \
		&& kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
		postfix -c "$peer/postfix-conf" abort >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
	fi
}

count() {
	mailroot=$1 total=0
	for d in "$mailroot"/test*/Maildir/new; do
		n=$(ls -f "$d" | wc -l)
		total=$((total + n - 2))
	done
	echo $total
}

clear() {
	mailroot=$1
	for d in "$mailroot"/test*/Maildir; do
		find "$d/new" "$d/cur" "$d/tmp" -type f -delete
	done
}

cmd=${1:-}
[ $# -ge 1 ] && shift
case $cmd in
setup) [ $# = 3 ] || die "usage: setup PEER MAILROOT PORT"; setup "$@" ;;
start) [ $# = 1 ] || die "usage: start PEER"; start "$@" ;;
stop) [ $# = 1 ] || die "usage: stop PEER"; stop "$@" ;;
count) [ $# = 1 ] || die "usage: count MAILROOT"; count "$@" ;;
clear) [ $# = 1 ] || die "usage: clear MAILROOT"; clear "$@" ;;
*) die "usage: postfix-peer.sh setup|start|stop|count|clear ..." ;;
esac
