#!/usr/bin/env bash
# The main job: build the album binary and run the dataset and training stages end to
# end on the embedded defaults (flex CPU, local files). Serves the five-class photos as a
# local gallery site, crawls it, audits the crawl, splits it 6:2:2, benchmarks the data
# pipeline, then trains the CPU SE-ResNeXt config for two epochs (a small real
# experiment, about 5 minutes on 2 cores), and measures the face pipeline on the LFW
# sample (about 30 s). Everything it makes goes under data/ (ignored
# by git); the training run is data/runs/main-job-<UTC time>/.
#
#   SMART_ALBUM_PHOTOS  photo folder to serve   (default ../shared/datasets/five-class)
#   SMART_ALBUM_PORT    gallery port            (default 8765, as configs/crawl/gallery.toml)
#   SMART_ALBUM_FACES   faces folder, one sub-folder per person (default ../shared/datasets/faces)
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${SMART_ALBUM_PHOTOS:-../shared/datasets/five-class}
PORT=${SMART_ALBUM_PORT:-8765}
DATA=data
CRAWL=$DATA/crawl/gallery
LOG=$DATA/gallery-access.log

scripts/setup.sh
cargo build --release --bin album
album=target/release/album
mkdir -p "$DATA"
rm -f "$LOG"

echo "== serving $PHOTOS on http://127.0.0.1:$PORT"
"$album" dataset serve-gallery "$PHOTOS" --addr "127.0.0.1:$PORT" --access-log "$LOG" &
gallery=$!
trap 'kill -INT $gallery 2>/dev/null || true; wait $gallery 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 $gallery 2>/dev/null || { echo "the gallery failed to start" >&2; exit 1; }
  sleep 0.1
done

config=configs/crawl/gallery.toml
if [ "$PORT" != 8765 ]; then
  config=$DATA/gallery-$PORT.toml
  sed "s/127.0.0.1:8765/127.0.0.1:$PORT/g" configs/crawl/gallery.toml > "$config"
fi

echo "== crawl (a second run of this script resumes and fetches nothing new)"
"$album" dataset crawl --config "$config" --out "$CRAWL"
echo "== audit: every photo accounted for, faults caught, robots.txt obeyed"
"$album" dataset audit --source "$PHOTOS" --crawl "$CRAWL" --access-log "$LOG"
echo "== split 6:2:2"
"$album" dataset split --manifest "$CRAWL/manifest.parquet" --out "$DATA/split"
echo "== data pipeline benchmark (Rust vs PyTorch DataLoader; ratio needs scripts/setup-torch.sh)"
"$album" bench data --manifest "$DATA/split/train.parquet" --images 2000 --resize 64 --crop 56
echo "== a small real experiment: SE-ResNeXt-50 (width 0.25, 56 px), 2 epochs on flex"
"$album" train --config configs/cpu/se-resnext.toml --epochs 2 --out "$DATA/runs" \
  --run-id "main-job-$(date -u +%Y%m%d-%H%M%S)"
echo "== faces: detection, verification and clustering into people on the LFW sample"
"$album" faces eval --faces "${SMART_ALBUM_FACES:-../shared/datasets/faces}" --out "$DATA/faces-eval"
echo "== done. To see the album on demo photos: scripts/demo.sh (then open http://127.0.0.1:8080/)"
