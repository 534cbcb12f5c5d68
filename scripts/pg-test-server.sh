#!/usr/bin/env bash
# Starts or stops a throwaway Postgres cluster on loopback only, on a free port, for the
# scale-out tests and benchmarks (scripts/setup-postgres.sh installs the server).
# initdb refuses to run as root, so as root the cluster runs as the `postgres` user.
#
#   scripts/pg-test-server.sh start DIR [--durable]
#       the cluster's folder (its data, log and socket; a folder of its own under
#       $TMPDIR, which the postgres user can reach) is named in DIR/cluster; prints
#       the shell export ALBUM_TEST_DATABASE
#       (postgres://album@127.0.0.1:PORT/postgres). Without --durable, fsync is off
#       (tests throw the data away); benchmarks pass --durable.
#   scripts/pg-test-server.sh stop DIR
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
action="${1:-}"; dir="${2:-}"; mode="${3:-}"
if [[ -z "$action" || -z "$dir" ]]; then
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2
  exit 1
fi
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    bin=$("$repo/scripts/setup-postgres.sh")
    mkdir -p "$dir"
    cluster=$(mktemp -d -t album-pg.XXXXXX)
    echo "$cluster" > "$dir/cluster"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$cluster"; fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$cluster/data" -U album --auth=trust -E UTF8 --locale=C.UTF-8 >"$cluster/initdb.log" 2>&1 \
      || { echo "pg-test-server: initdb failed; its log:" >&2; tail -20 "$cluster/initdb.log" >&2; exit 1; }
    settings=(-c listen_addresses=127.0.0.1 -c port="$port" -c unix_socket_directories="$cluster"
              -c max_connections=300 -c shared_buffers=128MB)
    if [[ "$mode" != "--durable" ]]; then
      settings+=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
    fi
    as_owner "$bin/pg_ctl" -D "$cluster/data" -l "$cluster/postgres.log" -w -t 60 \
      -o "${settings[*]}" start >/dev/null \
      || { echo "pg-test-server: Postgres did not start; its log:" >&2; tail -20 "$cluster/postgres.log" >&2; exit 1; }
    echo "$bin" > "$dir/bin"
    echo "export ALBUM_TEST_DATABASE='postgres://album@127.0.0.1:$port/postgres'"
    ;;
  stop)
    if [[ -f "$dir/cluster" ]]; then
      cluster=$(cat "$dir/cluster")
      if [[ -f "$dir/bin" ]]; then
        as_owner "$(cat "$dir/bin")/pg_ctl" -D "$cluster/data" -m immediate -w stop >/dev/null 2>&1 || true
      fi
      rm -rf "$cluster"
      rm -f "$dir/cluster" "$dir/bin"
    fi
    ;;
  *) echo "pg-test-server: start or stop, not $action" >&2; exit 1 ;;
esac
