#!/usr/bin/env bash
# The five families at full width on 112 px crops, trained on one NVIDIA GPU for as many
# epochs as fit in 8 minutes (configs/gpu-112/; each family gets a fifth of the time,
# `album train --time-limit`), from a data pack that travels with the binary.
#
#   scripts/gpu-study.sh prepare [--small]
#       Here, after `album dataset split` and a `--features tch` release build: packs all
#       of train and 200 val photos a class (`album dataset pack`: 112 x 112 JPEGs under a
#       44 MiB budget, data/gpu-pack/), bundles the stripped, xz-compressed binary, the pack and the few
#       system libraries the charts need into one tar, and cuts it into parts under
#       .gpu/ (git-ignored), each small enough to travel beside the checkout in one call
#       (64 MiB a call, the checkout included). Prints the calls to make.
#
#   scripts/gpu-study.sh train [--small] [--minutes M] [--out DIR]
#       There, in the checkout, once every part has arrived: joins and unpacks the parts,
#       trains each family for M/5 minutes (default 8 in all) on tch-cuda, and writes
#       DIR/gpu-study-runs.tar.gz (the run directories without checkpoints: config,
#       provenance, epoch and batch metrics, charts) and DIR/gpu-study.txt (the log and a
#       table of the families' epochs and best validation top-1).
#
#   scripts/gpu-study.sh unpack FILE
#       Here: the returned runs into experiments/gpu-study/.
#
# --small rehearses both halves on this machine on LibTorch CPU at a tiny size (40
# photos per class at 72 px, the families at 1/8 width, 64 px crops, 20 s each), so the
# route is tested where there is no GPU (experiments/gpu-study-rehearsal/ keeps one).
set -euo pipefail
cd "$(dirname "$0")/.."

step=${1:-}
[ $# -gt 0 ] && shift
small=0
minutes=8
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --small) small=1 ;;
    --minutes) minutes="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) if [ "$step" = unpack ] && [ -z "$out" ]; then out="$1"; else
         echo "gpu-study: unknown argument $1 (see --help)" >&2; exit 2; fi ;;
  esac
  shift
done

families=(alexnet vgg16 googlenet densenet se-resnext152)
gpu=.gpu
if [ "$small" = 1 ]; then
  pack=data/gpu-pack-small
  pack_args=(--per-class 40 --side 72 --max-mib 3)
else
  pack=data/gpu-pack
  pack_args=(--per-class val=200)
fi
call_limit=$((64 * 1024 * 1024))

# Bytes of what travels with every call: tracked files and untracked files git does not
# ignore (the device machine's rule).
checkout_bytes() {
  { git ls-files -z; git ls-files -z --others --exclude-standard; } \
    | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

prepare() {
  local album=${ALBUM:-target/release/album}
  if [ ! -x "$album" ]; then
    echo "gpu-study: no album binary at $album (build it with --features tch, or set ALBUM=...)" >&2
    exit 2
  fi
  if [ ! -f "$pack/pack.json" ]; then
    "$album" dataset pack --out "$pack" "${pack_args[@]}"
  fi
  rm -rf "$gpu" && mkdir -p "$gpu/bundle/lib"
  strip -o "$gpu/bundle/album" "$album"
  xz -T0 -6 "$gpu/bundle/album"
  # The charts' text needs fontconfig and FreeType; a bare CUDA image may lack them.
  ldd "$album" | awk '/fontconfig|freetype|expat|png16|brotli/ {print $3}' \
    | xargs -r -I{} cp -L {} "$gpu/bundle/lib/"
  cp -r "$pack" "$gpu/bundle/pack"
  # gzip: the JPEGs do not shrink, but tar's 512-byte header and padding per photo do
  tar -C "$gpu/bundle" -czf "$gpu/bundle.tar" .
  rm -rf "$gpu/bundle"
  local tree part bundle
  tree=$(checkout_bytes)
  part=$(( (call_limit - tree) - 1024 * 1024 ))
  bundle=$(stat -c %s "$gpu/bundle.tar")
  if [ "$part" -lt $((2 * 1024 * 1024)) ]; then
    echo "gpu-study: the checkout alone is $((tree / 1048576)) MiB: no room beside it in a call" >&2
    exit 1
  fi
  mkdir -p "$gpu/parts"
  split -b "$part" -d -a 2 "$gpu/bundle.tar" "$gpu/parts/bundle.tar."
  sha256sum "$gpu/bundle.tar" | awk '{print $1}' > "$gpu/parts/bundle.sha256"
  rm "$gpu/bundle.tar"
  local n i
  n=$(ls "$gpu"/parts/bundle.tar.* | wc -l)
  i=0
  for f in "$gpu"/parts/bundle.tar.*; do
    mkdir -p "$gpu/call-$i"
    mv "$f" "$gpu/call-$i/"
    i=$((i + 1))
  done
  mv "$gpu/parts/bundle.sha256" "$gpu/call-$((n - 1))/"
  rmdir "$gpu/parts"
  echo "bundle: $((bundle / 1048576)) MiB (binary, pack, chart libraries) in $n parts of at most"
  echo "$((part / 1048576)) MiB beside a $((tree / 1048576)) MiB checkout. Calls to the device machine,"
  echo "back to back (an idle machine is given back within a minute, and the parts with it):"
  for ((i = 0; i < n; i++)); do
    if [ "$i" -lt $((n - 1)) ]; then
      echo "  run  carry=[\"$gpu/call-$i\"]  command: ls -l $gpu/call-*"
    else
      echo "  run  carry=[\"$gpu/call-$i\"]  command: scripts/gpu-study.sh train --out \$OUT"
    fi
  done
}

unpack_bundle() {
  local dest=$gpu/unpacked
  [ -f "$dest/.done" ] && return 0
  local want got
  want=$(cat "$gpu"/call-*/bundle.sha256)
  got=$(cat "$gpu"/call-*/bundle.tar.* | sha256sum | awk '{print $1}')
  if [ "$want" != "$got" ]; then
    echo "gpu-study: the parts under $gpu/ do not make the bundle (sha256 $got, want $want):" >&2
    ls -l "$gpu"/call-* >&2
    exit 1
  fi
  rm -rf "$dest" && mkdir -p "$dest"
  cat "$gpu"/call-*/bundle.tar.* | tar -C "$dest" -xzf -
  if command -v xz >/dev/null; then
    xz -d "$dest/album.xz"
  else
    "$python" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$dest/album.xz" "$dest/album" && rm "$dest/album.xz"
  fi
  chmod +x "$dest/album"
  rm -rf "$pack" && mkdir -p "$(dirname "$pack")" && mv "$dest/pack" "$pack"
  touch "$dest/.done"
}

# The configs as they run: on a GPU as committed; in a rehearsal at 1/8 width on 64 px
# crops of the small pack, on LibTorch CPU.
config_for() {
  local family=$1 config=configs/gpu-112/$1.toml
  if [ "$small" = 0 ]; then
    echo "$config"
    return
  fi
  local small_config=$gpu/configs/$family.toml
  mkdir -p "$gpu/configs"
  sed -e 's/^width = .*/width = 0.125/' -e 's/^resize = .*/resize = 72/' \
      -e 's/^crop = .*/crop = 64/' -e 's/^batch_size = .*/batch_size = 16/' \
      -e "s|^split_dir = .*|split_dir = \"$pack\"|" \
      -e "s|^cache_dir = .*|cache_dir = \"$pack-cache\"|" \
      -e 's/^device = .*/device = "tch-cpu"/' "$config" > "$small_config"
  echo "$small_config"
}

train() {
  python=${PYTHON:-python3}
  [ -x .venv/bin/python ] && [ "$small" = 1 ] && python=.venv/bin/python
  [ -n "$out" ] || out=$gpu/out
  mkdir -p "$out"
  local log=$out/gpu-study.txt
  : > "$log"
  unpack_bundle
  local torch_lib
  torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ! ldconfig -p 2>/dev/null | grep -q libfontconfig.so.1; then
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$PWD/$gpu/unpacked/lib"
  fi
  local album=$gpu/unpacked/album runs=$gpu/runs seconds
  seconds=$(awk -v m="$minutes" -v n=${#families[@]} 'BEGIN {printf "%d", m * 60 / n}')
  [ "$small" = 1 ] && seconds=20
  rm -rf "$runs" && mkdir -p "$runs"
  {
    echo "# scripts/gpu-study.sh train $([ "$small" = 1 ] && echo "--small ")--minutes $minutes: ${seconds} s a family"
    echo "# revision $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    cat "$pack/pack.json" && echo
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  } 2>&1 | tee -a "$log"
  for family in "${families[@]}"; do
    echo "\$ album train --config $(config_for "$family") --run-id $family --time-limit ${seconds}s" | tee -a "$log"
    "$album" train --config "$(config_for "$family")" --out "$runs" --run-id "$family" \
      --time-limit "${seconds}s" --quiet 2>&1 | tee -a "$log" || echo "($family failed)" | tee -a "$log"
  done
  {
    echo
    echo "family,epochs,best_val_top1,seconds"
    for family in "${families[@]}"; do
      [ -f "$runs/$family/summary.json" ] || { echo "$family,-,-,-"; continue; }
      "$python" -c 'import json, sys; s = json.load(open(sys.argv[1]))
print("%s,%d,%.2f,%.0f" % (sys.argv[2], s["epochs_done"], 100 * s["best_val_top1"], s["seconds"]))' \
        "$runs/$family/summary.json" "$family"
    done
  } | tee -a "$log"
  tar -C "$runs" --exclude=checkpoints -czf "$out/gpu-study-runs.tar.gz" .
}

unpack_runs() {
  local file=$out dest=experiments/gpu-study
  [ "$small" = 1 ] && dest=experiments/gpu-study-rehearsal
  [ -f "$file" ] || { echo "gpu-study: unpack needs the returned gpu-study-runs.tar.gz" >&2; exit 2; }
  mkdir -p "$dest"
  tar -C "$dest" -xzf "$file"
  echo "runs in $dest/"
}

case "$step" in
  prepare) prepare ;;
  train) train ;;
  unpack) unpack_runs ;;
  *) echo "usage: scripts/gpu-study.sh prepare|train|unpack [--small] (see --help)" >&2; exit 2 ;;
esac
