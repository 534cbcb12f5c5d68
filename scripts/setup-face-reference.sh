#!/usr/bin/env bash
# Creates .venv-faces/ (repo root) with the Python face pipeline that the faces benchmark
# prints beside the Rust one: onnxruntime for the same RetinaFace ONNX and dlib (the
# dlib-bin wheel) for the same descriptor model, run by scripts/bench_faces_reference.py.
# Only for that benchmark; never used by tests or CI. Safe to run again: it does nothing
# when the venv already has the pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-faces
PINS=(dlib-bin==20.0.1.post1 onnxruntime==1.32.0 numpy==2.4.6 pillow==13.0.0)

have_pins() {
  "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as md
want = {"dlib-bin": "20.0.1.post1", "onnxruntime": "1.32.0", "numpy": "2.4.6", "pillow": "13.0.0"}
assert all(md.version(name) == version for name, version in want.items())
import dlib, numpy, onnxruntime, PIL  # noqa: F401,E401  (the wheels must also import)
EOF
}

if [ -x "$VENV/bin/python" ] && have_pins; then
  echo "setup-face-reference: $VENV is ready (${PINS[*]})"
  exit 0
fi

command -v python3 >/dev/null || { echo "setup-face-reference: python3 not found" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup-face-reference: creating $VENV"
  python3 -m venv "$VENV"
fi
echo "setup-face-reference: installing ${PINS[*]}"
# --no-cache-dir: no second copy of the wheels (dlib-bin and onnxruntime are ~20 MB each).
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "${PINS[@]}"
if ! have_pins; then
  echo "setup-face-reference: $VENV does not import the pinned packages after install" >&2
  exit 1
fi
echo "setup-face-reference: $VENV is ready; run: $VENV/bin/python scripts/bench_faces_reference.py --help"
