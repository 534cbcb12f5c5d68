#!/usr/bin/env bash
# Makes a real 2,000-photo album on the embedded defaults (SQLite + local blobs, through
# `album bench load`: uploads over HTTP, thumbnails, classification and faces done by the
# workers), starts Postgres (Debian's 15, durable settings) and SeaweedFS 4.48 on
# loopback, moves the album's rows and photos there with `album migrate --database-to
# … --blobs-to …` (every table compared value for value, every blob read back and
# hashed, the album checked on its new stores), runs the blob move again, and serves the
# moved album to check it answers. Output: experiments/album-migrate/output.txt.
#
#   experiments/album-migrate/run.sh [ALBUM_BINARY]   (default target/release/album)
set -euo pipefail
cd "$(dirname "$0")/../.."
album="${1:-target/release/album}"
out=experiments/album-migrate
work=$(mktemp -d)
trap 'scripts/s3-test-server.sh stop "$work/s3"; scripts/pg-test-server.sh stop "$work/pg"; rm -rf "$work"' EXIT
{
  echo "# album-migrate at $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)'), $(date -u +%FT%TZ)"
  echo "## 1. a 2,000-photo album on the embedded defaults"
  "$album" bench load --count 2000 --clients 8 --read-clients 8 --reads 10 \
    --data-dir "$work/album" 2>&1 | grep -v '^\s*$' | grep -v '\[00:' | tail -25
  eval "$(scripts/s3-test-server.sh start "$work/s3")"
  eval "$(scripts/pg-test-server.sh start "$work/pg" --durable)"
  echo "## 2. Postgres $("$(scripts/setup-postgres.sh)/postgres" --version | awk '{print $3}') and SeaweedFS $(data/bin/weed version 2>/dev/null | awk '{print $3}') on loopback"
  "$(scripts/setup-postgres.sh)/psql" -q "$ALBUM_TEST_DATABASE" -c 'CREATE DATABASE album'
  database="${ALBUM_TEST_DATABASE%/postgres}/album"
  bucket="${ALBUM_TEST_BLOBS/album-test?/album-test/album-2k?}"
  echo "targets: $database and $bucket"
  echo "## 3. album migrate"
  /usr/bin/time -f "wall %e s, max RSS %M KB" \
    "$album" migrate --data-dir "$work/album" --database-to "$database" --blobs-to "$bucket" 2>&1 \
    | grep -v '\[00:'
  echo "## 4. again, the blobs only (an interrupted move is run again: nothing is written twice)"
  "$album" migrate --data-dir "$work/album" --blobs-to "$bucket" 2>&1 | grep 'blob(s) copied'
  echo "## 5. the rows again into the now full database: refused, nothing changed"
  "$album" migrate --data-dir "$work/album" --database-to "$database" 2>&1 | grep -v '\[00:' || true
  echo "## 6. the moved album served from Postgres and the bucket"
  "$album" serve --data-dir "$work/served" --database "$database" --blobs "$bucket" \
    --addr 127.0.0.1:0 --workers 0 --no-faces > "$work/serve.out" 2> "$work/serve.log" &
  serve=$!
  for _ in $(seq 1 120); do grep -q 'http://' "$work/serve.out" && break; sleep 0.5; done
  base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -1)
  token=$(curl -s "$base/api/sessions" -H 'content-type: application/json' \
    -d '{"username": "load", "password": "twenty thousand photos"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  curl -s "$base/api/photos?limit=500" -H "authorization: Bearer $token" \
    | python3 -c 'import json, sys; page = json.load(sys.stdin); print("GET /api/photos:", len(page["photos"]), "photos on the first page")'
  curl -s "$base/api/people" -H "authorization: Bearer $token" \
    | python3 -c 'import json, sys; people = json.load(sys.stdin); print("GET /api/people:", len(people), "people,", sum(p["photos"] for p in people), "photos of them")'
  curl -s "$base/api/categories" -H "authorization: Bearer $token" \
    | python3 -c 'import json, sys; print("GET /api/categories:", json.dumps(json.load(sys.stdin))[:300])'
  first=$(curl -s "$base/api/photos?limit=1" -H "authorization: Bearer $token" | python3 -c 'import json, sys; print(json.load(sys.stdin)["photos"][0]["id"])')
  curl -s -o /dev/null -w "GET /api/photos/$first/original: %{http_code}, %{size_download} bytes from the bucket\n" \
    "$base/api/photos/$first/original" -H "authorization: Bearer $token"
  kill -INT "$serve"; wait "$serve" || true
} | tee "$out/output.txt"
