#!/usr/bin/env bash
# The measurement behind the album's "people by faces" rule (experiments/people-by-faces/):
# every validation photo goes through a real `album serve` with the rule off (`album bench
# classify --people-face-share 0`), which stores the classifier's answer and every face the
# detector found; scripts/people-by-faces.py then scores a grid of rules on that database.
# Twice: on the photos as they are (at most 112 px on the short side, so only faces of 20 px
# and more, a fifth of the photo, are found) and on a sample of 300 per category enlarged 6×,
# where faces clear the detector's floor as they do in a camera's photos. Validation only:
# the rule is chosen here, never on test. Needs data/split (scripts/main-job.sh), the face
# models (scripts/fetch-face-weights.sh), .venv's Pillow (scripts/setup-torch.sh) and a
# release build of album.
set -euo pipefail
cd "$(dirname "$0")/.."
album="${CARGO_TARGET_DIR:-target}/release/album"
out=${1:-experiments/people-by-faces}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

.venv/bin/python - "$work" <<'PY'
# data/split/val.csv as folders of symlinks per category, and the enlarged sample.
import csv, os, random, sys
from PIL import Image
work = sys.argv[1]
rows = list(csv.DictReader(open("data/split/val.csv")))
by_class = {}
for row in rows:
    name = row["image_url"].rsplit("/", 1)[1]
    path = os.path.abspath(os.path.join("data/split", row["path"]))
    os.makedirs(f"{work}/val/{row['class']}", exist_ok=True)
    os.symlink(path, f"{work}/val/{row['class']}/{name}")
    by_class.setdefault(row["class"], []).append((name, path))
random.seed(1)
for category, photos in sorted(by_class.items()):
    os.makedirs(f"{work}/val-6x/{category}", exist_ok=True)
    for name, path in random.sample(sorted(photos), 300):
        image = Image.open(path).convert("RGB")
        image.resize((image.width * 6, image.height * 6), Image.LANCZOS).save(
            f"{work}/val-6x/{category}/{name}", quality=90)
PY

for set in val val-6x; do
  "$album" bench classify --photos "$work/$set" --data-dir "$work/$set-album" \
    --people-face-share 0 --json "$out/$set-classifier.json"
  scripts/people-by-faces.py "$work/$set-album/album.db" "$work/$set" --csv "$out/$set-rules.csv" \
    | tee "$out/$set-rules.md"
done
