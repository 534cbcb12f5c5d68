#!/usr/bin/env python3
"""How the album's "people by faces" rule would have sorted a folder, for a grid of rules.

Reads the database `album bench classify --data-dir DIR --people-face-share 0` left behind
(the classifier's category per photo, every detected face with its score and box) and the
folder of category sub-folders it uploaded, and prints, per rule, the share of photos in
the right smart album overall and per category. A rule puts a photo in "people" when one
of its faces scores at least MIN_SCORE and its shorter side is at least SHARE of the
photo's shorter side; otherwise the classifier's answer stands. Standard library only.

    scripts/people-by-faces.py DIR/album.db FOLDER [--csv OUT.csv]
"""
import argparse
import collections
import csv
import json
import os
import sqlite3
import sys

SCORES = [0.8, 0.9, 0.95, 0.99]
SHARES = [1 / 16, 1 / 8]
PROBABILITIES = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db")
    parser.add_argument("folder")
    parser.add_argument("--csv", help="also write the table here")
    args = parser.parse_args()
    truth = {}
    for category in sorted(os.listdir(args.folder)):
        for name in os.listdir(os.path.join(args.folder, category)):
            truth[name] = category
    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    photos = {
        pid: (name, model, min(w, h), json.loads(p or "{}").get("people", 0.0))
        for pid, name, model, w, h, p in con.execute(
            "SELECT id, name, model_category, width, height, model_probabilities FROM photos")
    }
    missing = [name for name, *_ in photos.values() if name not in truth]
    if missing:
        sys.exit(f"{len(missing)} photos are not in {args.folder} (e.g. {missing[0]})")
    faces = collections.defaultdict(list)
    for pid, score, w, h in con.execute("SELECT photo_id, score, w, h FROM faces"):
        faces[pid].append((score, min(w, h)))
    categories = sorted(set(truth[name] for name, *_ in photos.values()))
    with_faces = sum(1 for pid in photos if faces[pid])
    print(f"{len(photos)} photos, {with_faces} with a detected face\n")
    header = ["min_score", "min_share", "min_probability", "accuracy"] + categories
    rules = [(None, None, None)] + [
        (score, share, probability)
        for score in SCORES for share in SHARES for probability in PROBABILITIES]
    rows = []
    for min_score, share, min_probability in rules:
        right, total = collections.Counter(), collections.Counter()
        for pid, (name, model, side, people) in photos.items():
            category = model
            if min_score is not None and people >= min_probability and any(
                    s >= min_score and m >= share * side for s, m in faces[pid]):
                category = "people"
            true = truth[name]
            total[true] += 1
            right[true] += category == true
        rows.append([
            "classifier alone" if min_score is None else min_score,
            "" if share is None else round(share, 4),
            "" if min_probability is None else min_probability,
            round(100 * sum(right.values()) / sum(total.values()), 2),
        ] + [round(100 * right[c] / total[c], 1) for c in categories])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")
    if args.csv:
        with open(args.csv, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)


if __name__ == "__main__":
    main()
