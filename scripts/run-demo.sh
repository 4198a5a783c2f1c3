#!/bin/sh
# `make run`: a working Tern on localhost with non-standard ports, a demo
# domain and user, and instructions for connecting a mail client.
# The demo lives in ./demo (kept between runs; `rm -rf demo` starts over).
set -e
TERN=${1:-build/tern}
DIR=${DEMO_DIR:-demo}
BASE=${PORT_BASE:-10000}
DOMAIN=example.test
USER_ADDR=demo@$DOMAIN
PASSWORD=demo

if [ ! -f "$DIR/tern.conf" ]; then
	"$TERN" init "$DIR" --port-base "$BASE" --domain "$DOMAIN" --hostname mail.$DOMAIN
	"$TERN" -c "$DIR/tern.conf" user add "$USER_ADDR" --password "$PASSWORD"
	"$TERN" -c "$DIR/tern.conf" alias add "postmaster@$DOMAIN" "$USER_ADDR"
fi
SMTP_PORT=$((BASE + 25))
cat <<INFO

  Tern is starting on 127.0.0.1 (config: $DIR/tern.conf, data: $DIR/data).

  Demo user:   $USER_ADDR   password: $PASSWORD
  SMTP (receiving, no auth):  127.0.0.1 port $SMTP_PORT

  Send a message:
    swaks --server 127.0.0.1:$SMTP_PORT --to $USER_ADDR --from you@elsewhere.test
  See it stored:
    $TERN -c $DIR/tern.conf mail list $USER_ADDR
    $TERN -c $DIR/tern.conf mail cat $USER_ADDR INBOX 1

  IMAP, POP3, TLS and submission are not served by this version yet, so a
  desktop mail client cannot read the mailbox yet; see README.md.
  Press Ctrl-C to stop.

INFO
exec "$TERN" -c "$DIR/tern.conf" serve
