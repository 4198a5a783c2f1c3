#!/usr/bin/python3
"""DKIM helper for the sender-authentication benchmarks (dkimpy).

  dkimtool.py sign --key PEM --domain D --selector S --from ADDR --to ADDR
                   --size N OUT
      writes one message of about N body bytes (76-character text lines),
      From: ADDR, signed with PEM (RSA: rsa-sha256, relaxed/relaxed), to OUT
      with LF line ends (smtp-source -F adds the CR).

  dkimtool.py verify ZONE MESSAGE...
      verifies every DKIM-Signature of each MESSAGE with the key records of
      ZONE (zone-file TXT records "NAME [IN] TXT "str" "str"...", one
      per line or in ( ) over several, as `tern domain dns` prints them;
      other records are ignored), prints one line per signature
      ("FILE d=D s=S a=A pass|fail") and exits 1 if any message has no
      signature or one that does not verify.

Needs python3-dkim (and python3-nacl for Ed25519).
"""
import argparse
import email.utils
import re
import sys

import dkim


def cmd_sign(a):
    with open(a.key, 'rb') as f:
        key = f.read()
    line = ('The quick brown fox jumps over the lazy dog 0123456789 '
            'abcdefghijklmnopqrst\n')
    body = line * max(1, a.size // len(line))
    msg = ('From: Bench <%s>\nTo: <%s>\nSubject: sender authentication '
           'benchmark\nDate: %s\nMessage-ID: <bench-auth.1@%s>\n'
           'MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n'
           '\n%s') % (a.sender, a.rcpt, email.utils.formatdate(),
                      a.domain, body)
    raw = msg.replace('\n', '\r\n').encode()
    sig = dkim.sign(raw, a.selector.encode(), a.domain.encode(), key,
                    canonicalize=(b'relaxed', b'relaxed'),
                    include_headers=[b'From', b'To', b'Subject', b'Date',
                                     b'Message-ID', b'MIME-Version',
                                     b'Content-Type'])
    out = (sig + raw).replace(b'\r\n', b'\n')
    with open(a.out, 'wb') as f:
        f.write(out)


def load_zone(path):
    keys = {}
    with open(path) as f:
        text = f.read()
    # zone-file syntax: a record in ( ) may span lines; ";" starts a comment
    text = re.sub(r';[^\n"]*$', '', text, flags=re.M)
    text = re.sub(r'\(([^)]*)\)', lambda m: m.group(1).replace('\n', ' '),
                  text)
    for ln in text.splitlines():
        m = re.match(r'\s*(\S+)\s+(?:\d+\s+)?(?:IN\s+)?TXT\s+(.*)$', ln)
        if not m:
            continue
        name = m.group(1).rstrip('.').lower()
        keys[name] = ''.join(re.findall(r'"([^"]*)"', m.group(2)))
    return keys


def cmd_verify(a):
    keys = load_zone(a.zone)

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        v = keys.get(n.rstrip('.').lower())
        return v.encode() if v is not None else None

    bad = 0
    for path in a.messages:
        with open(path, 'rb') as f:
            raw = f.read()
        if b'\r\n' not in raw:
            raw = raw.replace(b'\n', b'\r\n')
        d = dkim.DKIM(raw)
        sigs = [v for (k, v) in d.headers if k.lower() == b'dkim-signature']
        if not sigs:
            print('%s no DKIM-Signature' % path)
            bad += 1
            continue
        for i, s in enumerate(sigs):
            tags = dict(t.strip().split('=', 1) for t in
                        re.sub(rb'\s+', b'', s).decode().split(';')
                        if '=' in t)
            ok = dkim.DKIM(raw).verify(idx=i, dnsfunc=dnsfunc)
            print('%s d=%s s=%s a=%s %s' % (path, tags.get('d'),
                                            tags.get('s'), tags.get('a'),
                                            'pass' if ok else 'fail'))
            bad += 0 if ok else 1
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('sign')
    s.add_argument('--key', required=True)
    s.add_argument('--domain', required=True)
    s.add_argument('--selector', required=True)
    s.add_argument('--from', dest='sender', required=True)
    s.add_argument('--to', dest='rcpt', required=True)
    s.add_argument('--size', type=int, default=4096)
    s.add_argument('out')
    v = sub.add_parser('verify')
    v.add_argument('zone')
    v.add_argument('messages', nargs='+')
    a = p.parse_args()
    if a.cmd == 'sign':
        cmd_sign(a)
        return 0
    return cmd_verify(a)


if __name__ == '__main__':
    sys.exit(main())
