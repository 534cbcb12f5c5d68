#!/usr/bin/env bash
# Where the upload time goes: 5,000 uploads without models into each combination of
# rows (SQLite, Postgres) and blobs (local files, SeaweedFS), one instance, then two.
# Output: experiments/album-load-scale-out/upload-cost.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
album=target/release/album
out=experiments/album-load-scale-out
work=$(mktemp -d)
trap 'scripts/s3-test-server.sh stop "$work/s3"; scripts/pg-test-server.sh stop "$work/pg"; rm -rf "$work"' EXIT
eval "$(scripts/s3-test-server.sh start "$work/s3")"
eval "$(scripts/pg-test-server.sh start "$work/pg" --durable)"
psql="$(scripts/setup-postgres.sh)/psql"
server="${ALBUM_TEST_DATABASE%/postgres}"
{
echo "# upload cost by store, $(git rev-parse --short HEAD), $(date -u +%FT%TZ): 5,000 uploads, 16 clients, no classifier, no faces, jobs not awaited"
for combo in sqlite-local sqlite-s3 postgres-local postgres-s3 postgres-s3-x2; do
  args=(--count 5000 --no-model --no-faces --jobs-time-limit-s 0 --read-clients 8 --reads 10)
  case $combo in
    *postgres*) "$psql" -q "$ALBUM_TEST_DATABASE" -c "CREATE DATABASE \"$combo\""; args+=(--database "$server/$combo");;
  esac
  case $combo in
    *s3*) args+=(--blobs "${ALBUM_TEST_BLOBS/album-test?/album-test/$combo?}");;
  esac
  case $combo in *x2) args+=(--instances 2);; esac
  echo "## $combo"
  { "$album" bench load "${args[@]}" 2>&1 || true; } | grep "uploads \|store  "
done
} | tee "$out/upload-cost.txt"
