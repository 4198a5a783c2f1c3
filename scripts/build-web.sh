#!/bin/sh
# Builds the web app (web/, docs/webmail.md) into OUT (default build/web):
# `npm ci` from the npm registry when web/package-lock.json is newer than
# the installed modules, then the esbuild bundle when a source is newer
# than it.  Run by `make build`; nothing here is committed.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-build/web}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$root/web"
stamp=node_modules/.tern-ci
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
	# puppeteer-core drives Debian's chromium: no browser download.
	PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	touch "$stamp"
fi
if [ ! -f "$out/app.js" ] || [ -n "$(find src build.mjs "$stamp" -newer "$out/app.js" 2>/dev/null | head -1)" ]; then
	node build.mjs "$out"
	touch "$out/app.js"
fi
