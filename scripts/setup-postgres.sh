#!/usr/bin/env bash
# Installs Postgres for the scale-out tests and benchmarks when it is not there: Debian's
# postgresql-15 through apt (the server binaries only; scripts/pg-test-server.sh runs
# throwaway clusters of its own). Prints the folder of initdb and pg_ctl.
set -euo pipefail
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
bin=$(find_bin)
if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup-postgres: Postgres is not installed; run as root, or: apt-get install postgresql-15" >&2
    exit 1
  fi
  echo "setup-postgres: installing postgresql-15 with apt" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >&2
  bin=$(find_bin)
fi
echo "$bin"
