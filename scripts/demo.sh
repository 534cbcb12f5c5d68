#!/usr/bin/env bash
# The album, running on demo photos: starts `album serve` on a data folder of its own,
# signs up a demo account (the first account, so it is the admin), uploads photos of the
# five categories and several people from the shared sets, waits until they are
# thumbnailed, classified and grouped into people, and prints the address and the
# sign-in. The album keeps running until Ctrl-C. A second run reuses the folder and its
# photos (delete data/demo to start over).
#
#   SMART_ALBUM_DEMO_DIR     the album's data folder        (default data/demo)
#   SMART_ALBUM_DEMO_ADDR    where it listens               (default 127.0.0.1:8080)
#   SMART_ALBUM_PHOTOS       five-class photo folder        (default ../shared/datasets/five-class)
#   SMART_ALBUM_FACES        faces folder, one per person   (default ../shared/datasets/faces)
#   SMART_ALBUM_DEMO_PER_CLASS  photos per category         (default 12)
#   SMART_ALBUM_DEMO_PEOPLE     people, 6 photos each       (default 6)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${SMART_ALBUM_DEMO_DIR:-data/demo}
ADDR=${SMART_ALBUM_DEMO_ADDR:-127.0.0.1:8080}
PHOTOS=${SMART_ALBUM_PHOTOS:-../shared/datasets/five-class}
FACES=${SMART_ALBUM_FACES:-../shared/datasets/faces}
PER_CLASS=${SMART_ALBUM_DEMO_PER_CLASS:-12}
PEOPLE=${SMART_ALBUM_DEMO_PEOPLE:-6}
USERNAME=guest
PASSWORD=photos-of-the-five-classes
BASE="http://$ADDR"

album=${CARGO_TARGET_DIR:-target}/release/album
if [ ! -x "$album" ]; then
  scripts/setup.sh
  cargo build --release --locked --bin album
fi
for folder in "$PHOTOS" "$FACES"; do
  [ -d "$folder" ] || { echo "demo: $folder not found (set SMART_ALBUM_PHOTOS / SMART_ALBUM_FACES)" >&2; exit 2; }
done

# warnings only (failed sign-ins, failed jobs); RUST_LOG=info shows every request
RUST_LOG=${RUST_LOG:-warn} "$album" serve --data-dir "$DIR" --addr "$ADDR" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 300); do
  curl -fs "$BASE/api/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "demo: album serve failed to start (is $ADDR in use?)" >&2; exit 1; }
  sleep 0.2
done

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
credentials="{\"username\": \"$USERNAME\", \"password\": \"$PASSWORD\"}"
# The first run creates the account; later runs find it taken and sign in.
curl -fs -X POST "$BASE/api/users" -H 'content-type: application/json' -d "$credentials" >/dev/null || true
token=$(curl -fsS -X POST "$BASE/api/sessions" -H 'content-type: application/json' \
  -d "$credentials" | json_field "['token']") || {
  echo "demo: cannot sign in as $USERNAME: $DIR belongs to another album (delete it or set SMART_ALBUM_DEMO_DIR)" >&2
  exit 1
}
auth=(-H "authorization: Bearer $token")

# Uploads files in batches of 20 (one request each); a refused file is reported by the
# service per file and does not stop the rest.
upload() {
  local batch=()
  for file in "$@"; do
    batch+=(-F "photo=@$file")
    if [ ${#batch[@]} -ge 40 ]; then
      curl -fsS "${auth[@]}" "${batch[@]}" "$BASE/api/photos" >/dev/null
      batch=()
    fi
  done
  if [ ${#batch[@]} -gt 0 ]; then
    curl -fsS "${auth[@]}" "${batch[@]}" "$BASE/api/photos" >/dev/null
  fi
}

count=$(curl -fsS "${auth[@]}" "$BASE/api/photos?limit=1" | json_field "['photos'].__len__()" 2>/dev/null || echo 0)
if [ "$count" = 0 ]; then
  echo "demo: uploading $PER_CLASS photos of each category and $PEOPLE people"
  for class in people animals landscape vehicles buildings; do
    mapfile -t files < <(find "$PHOTOS/$class" -maxdepth 1 -type f -name '*.jpg' | sort | head -n "$PER_CLASS")
    upload "${files[@]}"
  done
  # people with at least 6 photos, the first $PEOPLE of them by name
  mapfile -t people < <(for d in "$FACES"/*/; do
    [ "$(find "$d" -maxdepth 1 -name '*.jpg' | wc -l)" -ge 6 ] && echo "$d"
  done | sort | head -n "$PEOPLE")
  for person in "${people[@]}"; do
    mapfile -t files < <(find "$person" -maxdepth 1 -name '*.jpg' | sort | head -n 6)
    upload "${files[@]}"
  done
fi

echo "demo: waiting for thumbnails, categories and people"
for _ in $(seq 600); do
  left=$(curl -fsS "${auth[@]}" "$BASE/api/jobs" |
    python3 -c "import json,sys; t=json.load(sys.stdin)['total']; print(t['queued']+t['running'])")
  [ "$left" = 0 ] && break
  sleep 1
done

cat <<EOF

  The album is running at $BASE/
  Sign in as "$USERNAME" with the password "$PASSWORD".
  Data: $DIR. Ctrl-C stops it (a second run of scripts/demo.sh starts it again).

EOF
wait $server
