#!/usr/bin/env bash
# The GPU check of smart-album's LibTorch route, in one go (under 8 minutes on one GPU):
#
#   1. the layer operations' parity against flex on the GPU (album device check:
#      grouped conv → batch norm → ReLU, forward and backward; TF32 tolerance 1e-3);
#   2. training-step images/s of full-width SE-ResNeXt-50 and -152 at 112 and 224 px,
#      f32 and bf16, beside PyTorch eager on the same GPU (album bench train), with
#      cudnn.benchmark on for both sides.
#
# On a machine with an NVIDIA GPU, PyTorch 2.11 in its Python and no Rust:
#
#   ALBUM=./album-gpu PYTHON=python3 scripts/gpu-check.sh --out gpu-check.txt
#
# where album-gpu is `target/release/album` built here with `--features tch` and
# stripped (README, "GPU and LibTorch"); LD_LIBRARY_PATH must reach torch/lib, which the
# script adds from $PYTHON's torch when it can.
#
# --small rehearses the same steps on LibTorch CPU at a tiny size, so the script is
# tested on a machine without a GPU (experiments/gpu-check/ keeps a rehearsal's output).
set -euo pipefail
cd "$(dirname "$0")/.."

small=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --small) small=1 ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

album=${ALBUM:-target/release/album}
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
if [ ! -x "$album" ]; then
  echo "gpu-check: no album binary at $album (set ALBUM=...; build it with --features tch)" >&2
  exit 2
fi
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null || true)
if [ -n "$torch_lib" ]; then
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

configs=(--config configs/gpu/se-resnext50.toml --config configs/gpu/se-resnext152.toml)
if [ "$small" = 1 ]; then
  device=tch-cpu
  sizes=(32 48)
  sizing=(--batch-size 4 --steps 2 --warmup 1 --profile-steps 1)
  width_note="(rehearsal on LibTorch CPU: full-width models at tiny sizes, batch 4)"
else
  device=tch-cuda
  sizes=(112 224)
  sizing=(--batch-size 64 --steps 10 --warmup 5 --profile-steps 3)
  width_note=""
fi

run() {
  echo
  echo "\$ $*"
  "$@"
}

main() {
  echo "# scripts/gpu-check.sh $([ "$small" = 1 ] && echo --small) $width_note"
  echo "# revision $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  "$python" -c 'import torch; print("# torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' || true
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  run "$album" device check --device "$device"
  for precision in f32 bf16; do
    for crop in "${sizes[@]}"; do
      run "$album" bench train "${configs[@]}" --devices "$device" --crop "$crop" \
        --precision "$precision" --cudnn-benchmark --python "$python" "${sizing[@]}"
    done
  done
}

if [ -n "$out" ]; then
  main 2>&1 | tee "$out"
else
  main
fi
