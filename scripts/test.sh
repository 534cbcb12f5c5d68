#!/usr/bin/env bash
# The test command named in the README: installs what the tests need, then runs them.
#
# 1. the whole workspace on the default build (flex, pure Rust), the web page's test
#    in headless Chromium included (scripts/setup-browser.sh installs it), then every
#    example command of the README and the --help texts on a fresh clone
#    (scripts/run-examples.py); the album service's tests run a second time with the
#    rows in Postgres and the blobs in an S3 bucket on a real SeaweedFS, both started
#    by scripts/test-scale-out.sh;
# 2. the LibTorch build (`--features tch`, against PyPI's PyTorch 2.11.0 in .venv):
#    the layer operations (ATen's kernels behind training/src/ops) and grouped
#    convolution against burn's ops and naive loops on LibTorch CPU, the fused SGD and
#    AdamW against burn's optimisers, one training step of every family with either
#    set of ops, and a real training run on LibTorch CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-browser.sh
cargo build --locked --bin album
cargo test --locked --workspace --no-fail-fast

echo "== the album service's tests with its rows in Postgres and its photos in an S3 bucket (SeaweedFS)"
scripts/test-scale-out.sh

echo "== every example of README.md and of the --help texts, on a fresh clone"
python3 scripts/run-examples.py --album target/debug/album --report target/examples-report.md

echo "== LibTorch (tch feature)"
scripts/setup-torch.sh
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1
torch_lib=$(.venv/bin/python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cargo test --locked -p album-training --features tch --no-fail-fast \
  --test grouped_conv --test ops --test optim --test train_resume
