#!/usr/bin/env bash
# The test command named in the README: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked --bin album
cargo test --locked --workspace --no-fail-fast
