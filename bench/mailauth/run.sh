#!/bin/bash
# bench/mailauth/run.sh - SMTP intake with sender authentication on, Tern
# against Postfix + OpenDKIM + OpenDMARC + postfix-policyd-spf-python, same
# run (issue 15).  It is bench/smtp/run.sh with MAILAUTH=1: every message is
# the same DKIM-signed one (rsa-sha256, 2048 bits, d=client.test, SIZE body
# bytes, sent with smtp-source -F), from bench@client.test with HELO
# client.test, which publishes SPF (ip4:127.0.0.1), the DKIM key and DMARC
# p=reject in a local unbound (DNS_ADDR, port 53) that both servers ask.
# Neither server trusts the client: Tern runs all its port-25 checks (SPF,
# DKIM, DMARC, ARC, the content score); Postfix passes every message through
# policyd-spf (policy service), OpenDKIM (verify) and OpenDMARC (milters).
# After each run, every delivered message must carry spf=pass, dkim=pass
# and dmarc=pass in its Authentication-Results; the fields of one are shown.
# Environment: as bench/smtp/run.sh (MESSAGES, SESSIONS, SIZE, RUNS, RCPTS,
# SOURCE_OPTS, ONLY, TERN, TERN_CONF_EXTRA, KEEP, RESULTS), and DNS_ADDR.
set -euo pipefail
MAILAUTH=1 exec "$(cd "$(dirname "$0")" && pwd)/../smtp/run.sh" "$@"
