#!/usr/bin/env bash
# The CPU-scale study, in one command: the paper's comparison redone small enough for a
# 2-core CPU (configs/study/: 500 photos per class and split, 32 px, narrow models, flex).
#
#   families  SE-ResNeXt-50, AlexNet, VGG16-BN, GoogLeNet, DenseNet-121, 10 epochs each
#   table2    SE-ResNeXt-50 trained for 5, 10, 20 and 40 epochs (separate runs)
#   ablation  SE-ResNeXt-50 without SE blocks, and with the paper's 1x1-conv + pooling head
#   table1    the winner's top-1/top-5 and speed at batch 1/4/8 in f32/f16/bf16
#
# Every run directory keeps its config, seed, git revision and data hashes; the reports
# (report.md, table2.md, table1.md, charts, Parquet) sit beside them under $OUT. Started
# again, it reuses finished runs and continues cut-short ones. Needs data/split from
# scripts/main-job.sh. About 45 minutes on 2 quiet cores (it took 40 here, sharing them).
#
#   SMART_ALBUM_STUDY_OUT  where the study goes (default experiments/study-cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${SMART_ALBUM_STUDY_OUT:-experiments/study-cpu}
CONFIGS=configs/study

if [ ! -f data/split/train.parquet ]; then
  echo "data/split/train.parquet is missing: run scripts/main-job.sh first (it crawls and splits the photos)" >&2
  exit 2
fi
scripts/setup.sh
cargo build --release --bin album
album=target/release/album
mkdir -p "$OUT/runs"

# Trains a config into $OUT/runs/<name>, or continues it if a previous study was cut short
# inside it, then evaluates its best checkpoint on val and, for reporting, on test. The
# test report is written last, so a run that has one is finished and is left as it is.
train_and_eval() {
  local name=$1 config=$2 run="$OUT/runs/$1"
  if [ -f "$run/eval-test/summary.md" ]; then
    echo "$run: finished, reused"
    return
  elif [ -d "$run" ]; then
    "$album" train --resume "$run" --quiet
  else
    "$album" train --config "$config" --out "$OUT/runs" --run-id "$name" --quiet
  fi
  evaluate "$run"
}

evaluate() {
  "$album" eval --run "$1" --quiet
  "$album" eval --run "$1" --split test --quiet
}

echo "== Table 2: SE-ResNeXt-50 for 5, 10, 20 and 40 epochs, each its own run"
"$album" sweep epochs --config "$CONFIGS/se-resnext.toml" --epochs 5,10,20,40 \
  --out "$OUT/table2" --test --quiet
se_resnext="$OUT/table2/epochs-10"   # the family comparison's SE-ResNeXt run
[ -f "$se_resnext/eval-val/summary.md" ] || "$album" eval --run "$se_resnext" --quiet

echo "== the other four families, 10 epochs each"
for family in alexnet vgg16 googlenet densenet; do
  train_and_eval "$family" "$CONFIGS/$family.toml"
done

echo "== ablation: no SE blocks; the paper's 1x1-conv + pooling head"
train_and_eval se-resnext-no-se "$CONFIGS/se-resnext-no-se.toml"
train_and_eval se-resnext-conv-head "$CONFIGS/se-resnext-conv-head.toml"

echo "== reports"
"$album" report --title "Five families, CPU scale (10 epochs, 32 px, 500 photos per class)" \
  --runs "$se_resnext" "$OUT/runs/alexnet" "$OUT/runs/vgg16" "$OUT/runs/googlenet" \
  "$OUT/runs/densenet" --out "$OUT/families" --quiet
"$album" report --title "Ablation: SE blocks and classifier head (SE-ResNeXt-50, 10 epochs)" \
  --runs "$se_resnext" "$OUT/runs/se-resnext-no-se" "$OUT/runs/se-resnext-conv-head" \
  --out "$OUT/ablation" --quiet

echo "== Table 1: the winner at batch 1/4/8 in f32/f16/bf16"
winner=$(sed -n 's/^ *"source_run": *"\(.*\)",*$/\1/p' "$OUT/families/bundle/bundle.json")
"$album" bench infer --run "$winner" --batch-sizes 1,4,8 --precisions f32,f16,bf16 \
  --limit 1000 --out "$OUT/table1"
echo "study written to $OUT"
