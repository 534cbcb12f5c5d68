#!/usr/bin/env bash
# The paper's 20,000-upload load test on the scale-out path, beside the embedded default
# in the same session (the machine is shared and noisy: only figures of one run compare):
#   1. embedded: one `album serve` on SQLite and local files (album bench load);
#   2. scale-out: two `album serve` instances sharing one Postgres (Debian's 15, durable
#      settings) and one SeaweedFS bucket, the client spreading requests over both;
#   3. the same, with the first instance killed with SIGKILL after 10,000 acknowledged
#      uploads: the other instance takes its requests and, once their leases run out,
#      its jobs.
# Every run checks each photo byte for byte, the album against its blobs, and (2, 3)
# that no face was stored twice. Output: experiments/album-load-scale-out/*.txt, *.json.
#
#   experiments/album-load-scale-out/run.sh [ALBUM_BINARY] [COUNT]
#       (default target/release/album, 20000)
set -euo pipefail
cd "$(dirname "$0")/../.."
album="${1:-target/release/album}"
count="${2:-20000}"
out=experiments/album-load-scale-out
work=$(mktemp -d)
trap 'scripts/s3-test-server.sh stop "$work/s3"; scripts/pg-test-server.sh stop "$work/pg"; rm -rf "$work"' EXIT
revision="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
echo "# album-load-scale-out at $revision, $(date -u +%FT%TZ), $count photos" | tee "$out/versions.txt"

echo "## 1. embedded: SQLite and local files"
"$album" bench load --count "$count" --json "$out/embedded.json" \
  > "$out/embedded.txt" 2> "$out/embedded.stderr"
cat "$out/embedded.txt"

eval "$(scripts/s3-test-server.sh start "$work/s3")"
eval "$(scripts/pg-test-server.sh start "$work/pg" --durable)"
psql="$(scripts/setup-postgres.sh)/psql"
{
  echo "Postgres $("$(scripts/setup-postgres.sh)/postgres" --version | awk '{print $3}') (fsync on, synchronous_commit on)"
  echo "SeaweedFS $(data/bin/weed version 2>/dev/null | awk '{print $3}') (weed mini, one volume server)"
} | tee -a "$out/versions.txt"
server="${ALBUM_TEST_DATABASE%/postgres}"

for run in two-instances kill-one; do
  "$psql" -q "$ALBUM_TEST_DATABASE" -c "CREATE DATABASE \"$run\""
  bucket="${ALBUM_TEST_BLOBS/album-test?/album-test/$run?}"
  kill=()
  [[ "$run" == kill-one ]] && kill=(--kill-after $((count / 2)))
  echo "## $run: 2 instances, rows in Postgres, photos in SeaweedFS ${kill[*]}"
  "$album" bench load --count "$count" --instances 2 "${kill[@]}" \
    --database "$server/$run" --blobs "$bucket" --json "$out/$run.json" \
    > "$out/$run.txt" 2> "$out/$run.stderr"
  cat "$out/$run.txt"
done
