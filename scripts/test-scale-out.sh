#!/usr/bin/env bash
# The album service's whole test suite (serving/tests and its unit tests) again, on the
# scale-out back ends: blobs in an S3 bucket on a real SeaweedFS, started here on
# loopback and stopped afterwards. scripts/test.sh runs it after the embedded default.
#
# Usage: scripts/test-scale-out.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-seaweedfs.sh >/dev/null
server=$(mktemp -d)
trap 'scripts/s3-test-server.sh stop "$server"; rm -rf "$server"' EXIT
eval "$(scripts/s3-test-server.sh start "$server")"
echo "== album-serving on S3 blobs ($ALBUM_TEST_BLOBS, SeaweedFS $(data/bin/weed version 2>/dev/null | awk '{print $3}'))"
cargo test --locked -p album-serving --no-fail-fast --test '*' "$@"
