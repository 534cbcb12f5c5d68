#!/usr/bin/env bash
# The full-scale study: the paper's comparison on the whole 6:2:2 split, every family at
# 64 px for 15 epochs on LibTorch CPU (configs/study-full/ says the recipe and widths).
#
#   families  SE-ResNeXt-50, AlexNet, VGG16-BN, GoogLeNet, DenseNet-121
#   depth     SE-ResNeXt-101 and -152 at SE-ResNeXt-50's width
#   ablation  SE-ResNeXt-50 without SE blocks, and with the paper's 1x1-conv + pooling head
#   table2    SE-ResNeXt-50 trained for 5, 10, 20 and 40 epochs (separate runs)
#   table1    the winner's top-1/top-5 and speed at batch 1/4/8 in f32/f16/bf16
#   loso      leave-one-source-out: SE-ResNeXt-50 trained without INRIA, Stanford Cars,
#             Dogs vs. Cats and Paris-6k, scored on their test photos beside its test split
#   robust    the same check for the album's bundle candidates: the current default's
#             recipe, SE-ResNeXt-50 without SE (the families' best SE-ResNeXt-50 on val),
#             and the same with TrivialAugment and crops down to 8 % (each *-loso.toml)
#
# About six hours of a quiet 2-core machine in all, so it is made to be run in sittings:
# started again, it skips finished runs (a run is finished once its test report exists)
# and continues a cut-short one from its last checkpoint. Commit each run directory as it
# finishes (`git add $OUT/runs/<name>`: checkpoints are git-ignored, the metrics, charts,
# config and provenance are not). Needs data/split from scripts/main-job.sh.
#
#   SMART_ALBUM_STUDY_OUT   where the study goes (default experiments/study-full)
#   SMART_ALBUM_STUDY_ONLY  space-separated run names to do now, and "table2" or "reports"
#                           (default: everything, in order)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${SMART_ALBUM_STUDY_OUT:-experiments/study-full}
CONFIGS=configs/study-full
RUNS="alexnet googlenet se-resnext50 se-resnext50-loso densenet vgg16 se-resnext50-no-se
      se-resnext50-conv-head se-resnext101 se-resnext152
      default-recipe-loso se-resnext50-no-se-loso se-resnext50-no-se-ta-loso"
HELD_OUT=inria,stanfordcars,catsdogs,catsdogs200,paris6k

if [ ! -f data/split/train.parquet ]; then
  echo "data/split/train.parquet is missing: run scripts/main-job.sh first (it crawls and splits the photos)" >&2
  exit 2
fi
scripts/setup.sh
scripts/setup-torch.sh
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1
torch_lib=$(.venv/bin/python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cargo build --release --locked --features tch --bin album
album="${CARGO_TARGET_DIR:-target}/release/album"
mkdir -p "$OUT/runs"

# Trains a config into $OUT/runs/<name>, or continues it, then evaluates the best
# checkpoint and the EMA weights on val and, for reporting, the best on test. The test
# report is written last, so a run that has one is finished and is left as it is.
train_and_eval() {
  local name=$1 run="$OUT/runs/$1"
  if [ -f "$run/eval-test/summary.md" ]; then
    echo "$run: finished, reused"
    return
  elif [ -f "$run/config.toml" ] && ls "$run"/checkpoints/last*/state.json >/dev/null 2>&1; then
    echo "== $name: continuing from its last checkpoint"
    "$album" train --resume "$run"
  else
    echo "== $name: training"
    rm -rf "$run"   # a run stopped before its first checkpoint starts again
    "$album" train --config "$CONFIGS/$name.toml" --out "$OUT/runs" --run-id "$name"
  fi
  "$album" eval --run "$run" --device tch-cpu --quiet
  if [ -f "$run/checkpoints/last/ema.bpk" ]; then   # a recipe without EMA has none
    "$album" eval --run "$run" --checkpoint ema --device tch-cpu --quiet
  fi
  if [[ $name == *-loso ]]; then
    "$album" eval --run "$run" --split test --sources "$HELD_OUT" --device tch-cpu --quiet
  fi
  "$album" eval --run "$run" --split test --device tch-cpu --quiet
  echo "$run: finished; commit it with: git add $run"
}

wanted=${SMART_ALBUM_STUDY_ONLY:-$RUNS}
for name in $RUNS; do
  case " $wanted " in *" $name "*) train_and_eval "$name" ;; esac
done

all_finished() {
  for name in "$@"; do [ -f "$OUT/runs/$name/eval-test/summary.md" ] || return 1; done
}

if [ -z "${SMART_ALBUM_STUDY_ONLY:-}" ] || [[ " $wanted " == *" table2 "* ]]; then
  echo "== Table 2: SE-ResNeXt-50 for 5, 10, 20 and 40 epochs, each its own run"
  "$album" sweep epochs --config "$CONFIGS/se-resnext50.toml" --epochs 5,10,20,40 \
    --out "$OUT/table2" --test --quiet
fi

if [ -n "${SMART_ALBUM_STUDY_ONLY:-}" ] && [[ " $wanted " != *" reports "* ]]; then
  echo "reports, LOSO of the full run and Table 1 are left as they are (add \"reports\" to SMART_ALBUM_STUDY_ONLY)"
elif all_finished $RUNS; then
  echo "== reports"
  r="$OUT/runs"
  "$album" report --title "Five families, full split (15 epochs, 64 px, tch-cpu)" \
    --runs "$r/se-resnext50" "$r/alexnet" "$r/vgg16" "$r/googlenet" "$r/densenet" \
    --out "$OUT/families" --quiet
  "$album" report --title "Depth: SE-ResNeXt-50, -101 and -152 at one width" \
    --runs "$r/se-resnext50" "$r/se-resnext101" "$r/se-resnext152" --out "$OUT/depth" --quiet
  "$album" report --title "Ablation: SE blocks and classifier head (SE-ResNeXt-50)" \
    --runs "$r/se-resnext50" "$r/se-resnext50-no-se" "$r/se-resnext50-conv-head" \
    --out "$OUT/ablation" --quiet
  echo "== leave-one-source-out: the same sources scored by the run that trained on them"
  if [ -f "$r/se-resnext50/eval-test-sources-${HELD_OUT//,/+}/summary.md" ]; then
    echo "$r/se-resnext50: already scored on the held-out sources"
  else
    "$album" eval --run "$r/se-resnext50" --split test --sources "$HELD_OUT" --device tch-cpu --quiet
  fi
  echo "== Table 1: SE-ResNeXt-152 at batch 1/4/8 in f32/f16/bf16"
  "$album" bench infer --run "$r/se-resnext152" --batch-sizes 1,4,8 \
    --precisions f32,f16,bf16 --limit 1000 --out "$OUT/table1"
else
  echo "some runs are not finished yet: run this script again to continue them"
fi
echo "study written to $OUT"
