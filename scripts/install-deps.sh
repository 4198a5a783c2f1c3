#!/bin/sh
# Installs the Debian packages Tern needs to build and test, only when
# something is missing.  Safe to run often: it asks pkg-config and the PATH
# first and calls apt-get only for what is not there.
set -e

pkgs=""
need_cmd() { command -v "$1" >/dev/null 2>&1 || pkgs="$pkgs $2"; }
need_pc() { pkg-config --exists "$1" 2>/dev/null || pkgs="$pkgs $2"; }
need_file() { [ -e "$1" ] || pkgs="$pkgs $2"; }

need_cmd pkg-config pkg-config
need_cmd meson meson
need_cmd ninja ninja-build
need_cmd gcc gcc
need_cmd clang clang
# `make deb` (dpkg-buildpackage with debhelper, out of tree) and the
# checks of `make test-deb` (tests/deb/test_deb.py: lintian, the unit
# verified by systemd-analyze, man pages rendered by man-db, iproute2 for
# the private network the packaged server runs in).
need_cmd dpkg-buildpackage dpkg-dev
need_cmd dh debhelper
need_cmd lintian lintian
need_cmd systemd-analyze systemd
need_cmd man man-db
need_cmd ip iproute2
need_cmd openssl openssl
need_cmd swaks swaks
# swaks needs these for STARTTLS and implicit TLS (tests/integration/test_submission.py).
need_file /usr/share/perl5/IO/Socket/SSL.pm libio-socket-ssl-perl
perl -MNet::SSLeay -e 1 >/dev/null 2>&1 || pkgs="$pkgs libnet-ssleay-perl"
need_cmd fetchmail fetchmail
need_cmd mbsync isync
# interimap: a QRESYNC client (tests/integration/test_imap_qresync.py).
need_cmd interimap interimap
need_cmd curl curl
# Debian's mutt (GNU SASL) sends through submission (test_submission.py).
need_cmd mutt mutt
need_pc libevent_core libevent-dev
need_pc libevent_openssl libevent-dev
need_pc libevent_extra libevent-dev
# HTTP/1.1 request parsing (src/http/http-wire.c); the package has no .pc file.
need_file /usr/include/http_parser.h libhttp-parser-dev
need_cmd plistutil libplist-utils
# Pigeonhole's sieve-test, the oracle of tests/integration/test_sieve_diff.py.
need_file /usr/bin/sieve-test dovecot-sieve
# A ManageSieve client (tests/integration/test_managesieve.py).
need_cmd sieve-connect sieve-connect
need_pc sqlite3 libsqlite3-dev
need_pc openssl libssl-dev
need_pc libcrypt libcrypt-dev
need_pc libunbound libunbound-dev
# The Public Suffix List for DMARC's Organizational Domain (src/mailauth/dmarc.c).
need_pc libpsl libpsl-dev
# JSON for JMAP (src/jmap, docs/dependencies.md).
need_pc jansson libjansson-dev
# ICU: NFC for JMAP header values (src/jmap/jmap-email-parts.c).
need_pc icu-uc libicu-dev
need_pc zlib zlib1g-dev
need_pc expat libexpat1-dev
need_pc libzip libzip-dev
# HTTPS for MTA-STS policy fetches (src/queue/mta-sts-fetch.c, docs/dependencies.md).
curl-config --ssl-backends 2>/dev/null | grep -q OpenSSL || pkgs="$pkgs libcurl4-openssl-dev"
need_file /usr/share/publicsuffix/public_suffix_list.dafsa publicsuffix
# The DNS server the outbound tests serve their zones from (tests/integration/test_outbound.py).
need_file /usr/sbin/dnsmasq dnsmasq-base
need_file /usr/bin/python3 python3
# Postfix for the interop tests (tests/integration/test_interop_postfix.py)
# and the benchmarks; installed unconfigured, the system service stays off.
need_file /usr/sbin/postfix postfix
# HAProxy in front of Tern with send-proxy-v2 (tests/integration/test_proxy_protocol.py)
# and option httpchk on GET /health (test_health.py);
# installed unconfigured, the system service stays off.
need_file /usr/sbin/haproxy haproxy
/usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || pkgs="$pkgs python3-pytest"
# Runs the integration tests in parallel (Makefile PYTEST_JOBS).
/usr/bin/python3 -c 'import xdist' >/dev/null 2>&1 || pkgs="$pkgs python3-pytest-xdist"
# DKIM interop: dkimpy (with PyNaCl for Ed25519) and OpenDKIM verify what
# Tern signs (tests/integration/test_dkim.py; opendkim's test mode -t).
/usr/bin/python3 -c 'import dkim' >/dev/null 2>&1 || pkgs="$pkgs python3-dkim"
/usr/bin/python3 -c 'import nacl' >/dev/null 2>&1 || pkgs="$pkgs python3-nacl"
need_file /usr/sbin/opendkim-testmsg opendkim-tools
need_file /usr/sbin/opendkim opendkim
# The OpenSPF RFC 7208 test suite (python3-spf ships it), its YAML and the
# DNS server that serves its zones (tests/integration/test_openspf.py).
need_file /usr/share/doc/python3-spf/rfc7208-tests.yml.gz python3-spf
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || pkgs="$pkgs python3-yaml"
/usr/bin/python3 -c 'import dns.message' >/dev/null 2>&1 || pkgs="$pkgs python3-dnspython"
# The Prometheus text format parser that checks GET /metrics (tests/integration/test_metrics.py).
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || pkgs="$pkgs python3-prometheus-client"
# rspamd in milter mode, the peer of the milter interop tests
# (tests/integration/test_milter.py runs its own instance; no service).
need_file /usr/bin/rspamd rspamd
# The web app (web/, docs/webmail.md): Node.js and npm build it (Debian
# 12 ships node 18); Debian's chromium runs its browser tests
# (tests/integration/test_webmail.py, through puppeteer-core).
need_cmd node nodejs
need_cmd npm npm
need_cmd chromium chromium

# The unprivileged account the workers run as when Tern starts as root
# (`tern init` picks it up).
if [ "$(id -u)" = 0 ] && ! getent passwd tern >/dev/null 2>&1; then
	useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin tern
	echo "install-deps: created system user tern"
fi

if [ -z "$pkgs" ]; then
	exit 0
fi
echo "install-deps: installing:$pkgs"
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps: need root (or sudo) to install:$pkgs" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
case " $pkgs " in
*" postfix "*) echo "postfix postfix/main_mailer_type select No configuration" |
	${SUDO:-} debconf-set-selections ;;
esac
${SUDO:-} apt-get update -qq
# Daemons among the packages (postfix, dovecot) must not start as system
# services: tests and benchmarks run their own instances in temp folders.
# policy-rc.d answering 101 tells invoke-rc.d not to start anything.
own_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | ${SUDO:-} tee /usr/sbin/policy-rc.d >/dev/null
	${SUDO:-} chmod 755 /usr/sbin/policy-rc.d
	own_policy=yes
fi
# shellcheck disable=SC2086
rc=0
${SUDO:-} apt-get install -y -qq --no-install-recommends $pkgs >/dev/null || rc=$?
[ -z "$own_policy" ] || ${SUDO:-} rm -f /usr/sbin/policy-rc.d
[ $rc = 0 ] || exit $rc
