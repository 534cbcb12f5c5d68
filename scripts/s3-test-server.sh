#!/usr/bin/env bash
# Starts or stops a throwaway SeaweedFS (data/bin/weed, scripts/setup-seaweedfs.sh) on
# loopback only, every port a free one, with one bucket and a signing key, for the
# scale-out tests and benchmarks.
#
#   scripts/s3-test-server.sh start DIR   data, log and pid in DIR; prints shell exports:
#                                         ALBUM_TEST_BLOBS (s3://album-test?endpoint=…),
#                                         AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#   scripts/s3-test-server.sh stop DIR
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
weed="$repo/data/bin/weed"
action="${1:-}"; dir="${2:-}"
if [[ -z "$action" || -z "$dir" ]]; then
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2
  exit 1
fi

case "$action" in
  start)
    [[ -x "$weed" ]] || "$repo/scripts/setup-seaweedfs.sh" >/dev/null
    mkdir -p "$dir/data"
    # nine free ports: master, volume, filer, s3, admin and their gRPC ports
    read -r -a ports < <(python3 -c '
import socket
held = [socket.socket() for _ in range(9)]
for s in held: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))')
    key="album-test-key"; secret="album-test-secret-$RANDOM$RANDOM"
    AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" \
    nohup "$weed" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" \
      -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
      -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
      -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" \
      -admin.port="${ports[8]}" -admin.ui=false -webdav=false \
      -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
      -bucket=album-test >"$dir/weed.log" 2>&1 &
    echo $! > "$dir/weed.pid"
    endpoint="http://127.0.0.1:${ports[6]}"
    # ready once every part says so and S3 answers (an unsigned request: 403)
    ready=""
    for _ in $(seq 1 120); do
      code=$(curl -s -o /dev/null -w '%{http_code}' "$endpoint/album-test" || true)
      if [[ "$code" =~ ^(200|403)$ ]] && grep -q "components are running" "$dir/weed.log"; then
        ready=1; break
      fi
      if ! kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null; then
        echo "s3-test-server: SeaweedFS stopped while starting; its log:" >&2
        tail -20 "$dir/weed.log" >&2
        exit 1
      fi
      sleep 0.5
    done
    if [[ -z "$ready" ]]; then
      echo "s3-test-server: SeaweedFS did not answer within 60 s; its log: $dir/weed.log" >&2
      exit 1
    fi
    echo "export ALBUM_TEST_BLOBS='s3://album-test?endpoint=$endpoint'"
    echo "export AWS_ACCESS_KEY_ID='$key' AWS_SECRET_ACCESS_KEY='$secret'"
    ;;
  stop)
    if [[ -f "$dir/weed.pid" ]]; then
      pid=$(cat "$dir/weed.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/weed.pid"
    fi
    ;;
  *) echo "s3-test-server: start or stop, not $action" >&2; exit 1 ;;
esac
