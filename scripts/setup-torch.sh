#!/usr/bin/env bash
# Creates .venv with PyTorch 2.11.0 (the CUDA build PyPI serves, about 4.7 GB with
# torchvision) for the side-by-side benchmarks and for building the `tch` feature.
set -euo pipefail
cd "$(dirname "$0")/.."
if .venv/bin/python -c "import torch, torchvision, PIL; assert torch.__version__.startswith('2.11.0')" 2>/dev/null; then
  exit 0
fi
python3 -m venv .venv
# --no-cache-dir: a cached copy of the wheels would take another ~3 GB of disk.
.venv/bin/pip install --quiet --disable-pip-version-check --no-cache-dir torch==2.11.0 torchvision==0.26.0 pillow numpy
