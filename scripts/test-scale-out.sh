#!/usr/bin/env bash
# The album service's whole test suite (serving/tests) again, on the scale-out back ends:
# rows in Postgres (Debian's postgresql-15, scripts/setup-postgres.sh) and blobs in an S3
# bucket on a real SeaweedFS, both started here on loopback and stopped afterwards.
# scripts/test.sh runs it after the embedded default (SQLite and local files).
#
# Usage: scripts/test-scale-out.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-seaweedfs.sh >/dev/null
scripts/setup-postgres.sh >/dev/null
servers=$(mktemp -d)
trap 'scripts/s3-test-server.sh stop "$servers/s3"; scripts/pg-test-server.sh stop "$servers/pg"; rm -rf "$servers"' EXIT
eval "$(scripts/s3-test-server.sh start "$servers/s3")"
eval "$(scripts/pg-test-server.sh start "$servers/pg")"
postgres_version=$("$(scripts/setup-postgres.sh)/postgres" --version | awk '{print $3}')
echo "== album-serving on Postgres $postgres_version ($ALBUM_TEST_DATABASE) and S3 blobs ($ALBUM_TEST_BLOBS, SeaweedFS $(data/bin/weed version 2>/dev/null | awk '{print $3}'))"
cargo test --locked -p album-serving --no-fail-fast --test '*' "$@"
