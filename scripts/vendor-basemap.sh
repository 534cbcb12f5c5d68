#!/usr/bin/env bash
# Fetches the Places map's basemap again (npm's world-atlas 2.0.2, land at 1:110 million)
# into serving/web/vendor/ and checks it is the file the project was built with.
set -euo pipefail
cd "$(dirname "$0")/.."
want=ead5f68119c49a9250902e7da303bcb209341bbb8fefe7369a439b48b704658a
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent world-atlas@2.0.2 >/dev/null && tar xzf world-atlas-2.0.2.tgz)
got=$(sha256sum "$work/package/land-110m.json" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "world-atlas 2.0.2's land-110m.json has SHA-256 $got, not $want" >&2
  exit 1
fi
cp "$work/package/land-110m.json" serving/web/vendor/land-110m.json
echo "serving/web/vendor/land-110m.json: $got"
