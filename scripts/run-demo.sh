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
	# Demo convenience: password logins without TLS from loopback too.
	sed -i 's/^allow_plaintext_loopback = no$/allow_plaintext_loopback = yes/' "$DIR/tern.conf"
	# The web app that `make build` bundled (docs/webmail.md).
	sed -i "s|^#* *http.webroot =.*\$|http.webroot = $(pwd)/build/web|" "$DIR/tern.conf"
	"$TERN" -c "$DIR/tern.conf" user add "$USER_ADDR" --password "$PASSWORD"
	"$TERN" -c "$DIR/tern.conf" alias add "postmaster@$DOMAIN" "$USER_ADDR"
fi
SMTP_PORT=$((BASE + 25))
POP3_PORT=$((BASE + 110))
IMAP_PORT=$((BASE + 143))
IMAPS_PORT=$((BASE + 993))
POP3S_PORT=$((BASE + 995))
SUB_PORT=$((BASE + 587))
SUBS_PORT=$((BASE + 465))
HTTP_PORT=$((BASE + 80))
HTTPS_PORT=$((BASE + 443))
SIEVE_PORT=$((BASE + 4190))
cat <<INFO

  Tern is starting on 127.0.0.1 (config: $DIR/tern.conf, data: $DIR/data).
  Clients connect to localhost, the name the demo certificate carries.

  Demo user:   $USER_ADDR   password: $PASSWORD
  SMTP (receiving, no auth):  localhost port $SMTP_PORT
  Submission (sending, AUTH): localhost port $SUB_PORT (STARTTLS) or $SUBS_PORT (SSL/TLS)
  IMAP (reading, folders):    localhost port $IMAP_PORT (STARTTLS) or $IMAPS_PORT (SSL/TLS)
  POP3 (downloading):         localhost port $POP3_PORT (STARTTLS) or $POP3S_PORT (SSL/TLS)
  Filters (ManageSieve):      localhost port $SIEVE_PORT (STARTTLS)
  Web (HTTPS):                https://localhost:$HTTPS_PORT/ (HTTP $HTTP_PORT redirects)
  Webmail:                    https://localhost:$HTTPS_PORT/ (sign in as the demo user)
  The certificate is self-signed ($DIR/tls/cert.pem): accept it in your
  client.  On loopback, the demo also accepts passwords without TLS.

  Send a message:
    swaks --server localhost:$SMTP_PORT --to $USER_ADDR --from you@elsewhere.test
  See it stored:
    $TERN -c $DIR/tern.conf mail list $USER_ADDR
    $TERN -c $DIR/tern.conf mail cat $USER_ADDR INBOX 1

  Read it with POP3 (any POP3 client, or by hand):
    python3 -c "import poplib; p = poplib.POP3('localhost', $POP3_PORT); p.user('$USER_ADDR'); p.pass_('$PASSWORD'); print(p.stat()); p.quit()"
    fetchmail -p POP3 -P $POP3_PORT -u $USER_ADDR --sslproto '' -k -m 'cat >> demo.mbox' localhost

  Read it with IMAP:
    curl --user '$USER_ADDR:$PASSWORD' 'imap://localhost:$IMAP_PORT/INBOX;UID=1'
    python3 -c "import imaplib; m = imaplib.IMAP4('localhost', $IMAP_PORT); m.login('$USER_ADDR', '$PASSWORD'); print(m.select('INBOX')); m.logout()"

  Send as the demo user (submission, STARTTLS, AUTH):
    swaks --server localhost:$SUB_PORT --tls --auth-user $USER_ADDR --auth-password $PASSWORD --from $USER_ADDR --to $USER_ADDR
  A desktop client (Thunderbird, ...): user name $USER_ADDR, IMAP server
  localhost port $IMAPS_PORT SSL/TLS, SMTP server localhost port $SUBS_PORT SSL/TLS.
  Client auto-configuration (what Thunderbird and Apple Mail fetch):
    curl -k 'https://localhost:$HTTPS_PORT/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=$USER_ADDR'
    curl -k -o demo.mobileconfig 'https://localhost:$HTTPS_PORT/apple/profile.mobileconfig?email=$USER_ADDR'
  JMAP (Core only so far: the session and Core/echo):
    curl -k -u '$USER_ADDR:$PASSWORD' https://localhost:$HTTPS_PORT/jmap/session
  (A demo folder made before HTTP existed has no http.listen/https.listen:
  add them to $DIR/tern.conf or start over with rm -rf $DIR.)
  Press Ctrl-C to stop.

INFO
exec "$TERN" -c "$DIR/tern.conf" serve
