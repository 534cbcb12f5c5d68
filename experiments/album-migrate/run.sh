#!/usr/bin/env bash
# Makes a real 2,000-photo album on the embedded defaults (SQLite + local blobs, through
# `album bench load`: uploads over HTTP, thumbnails, classification and faces done by the
# workers), moves its photos into an S3 bucket on a real SeaweedFS with `album migrate`,
# and checks the album against the bucket. Output: experiments/album-migrate/output.txt.
#
#   experiments/album-migrate/run.sh [ALBUM_BINARY]   (default target/release/album)
set -euo pipefail
cd "$(dirname "$0")/../.."
album="${1:-target/release/album}"
out=experiments/album-migrate
work=$(mktemp -d)
trap 'scripts/s3-test-server.sh stop "$work/s3"; rm -rf "$work"' EXIT
{
  echo "# album-migrate at $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)'), $(date -u +%FT%TZ)"
  echo "## 1. a 2,000-photo album on the embedded defaults"
  "$album" bench load --count 2000 --clients 8 --read-clients 8 --reads 10 \
    --data-dir "$work/album" 2>&1 | grep -v '^\s*$' | tail -25
  echo "## 2. SeaweedFS $(data/bin/weed version 2>/dev/null | awk '{print $3}') on loopback"
  eval "$(scripts/s3-test-server.sh start "$work/s3")"
  bucket="${ALBUM_TEST_BLOBS/album-test?/album-test/album-2k?}"
  echo "target: $bucket"
  echo "## 3. album migrate"
  /usr/bin/time -f "wall %e s, max RSS %M KB" \
    "$album" migrate --data-dir "$work/album" --blobs-to "$bucket" 2>&1
  echo "## 4. again (an interrupted move is run again: nothing is written twice)"
  "$album" migrate --data-dir "$work/album" --blobs-to "$bucket" 2>&1 | grep 'blob(s) copied'
} | tee "$out/output.txt"
