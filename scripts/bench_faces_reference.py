#!/usr/bin/env python3
"""The Python reference for the faces benchmark: the pipeline a user would pick instead.

It mirrors the Rust pipeline (crate album-faces, see faces/NOTES.md §3) step by step so
that the two faces/s figures can be printed side by side:

1. decode: Pillow, to RGB;
2. detect: RetinaFace-MobileNet0.25 (the same ONNX file) run by onnxruntime on the BGR
   photo minus (104, 117, 123), NCHW float32, no resize unless the longer side is above
   640 (then downscaled, results mapped back); priors, decoding (variances 0.1/0.2),
   score > 0.8, faces with a shorter side under 20 px dropped, greedy NMS at IoU 0.4;
3. align: least-squares similarity (no reflection) from the 5 landmarks to the 150x150
   template, bilinear warp (chip pixel (x, y) is the point (x, y));
4. embed: dlib's ResNet (the same .dat) through dlib.face_recognition_model_v1, one
   batched call per photo.

    .venv-faces/bin/python scripts/bench_faces_reference.py --weights data/weights \\
        --photos-list LIST [--threads 2] [--warmup 5]
    .venv-faces/bin/python scripts/bench_faces_reference.py --weights data/weights --self-check

LIST holds one photo path per line. The first --warmup photos are run but not counted.
The last (only) line on stdout is one JSON object:

    {"photos": n, "faces": n, "faces_per_s": faces / (detect + align + embed seconds),
     "seconds": {"decode": s, "detect": s, "align": s, "embed": s},
     "onnxruntime": "x.y.z", "dlib": "x.y.z", "threads": N}

Exit status: 0 ok, 1 error (message on stderr), 3 a module failed to import (the caller
reports "reference unavailable"). Make the venv with scripts/setup-face-reference.sh.
"""

from __future__ import annotations

import os

# numpy only does small arrays here: keep BLAS from starting a thread pool of its own.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import functools
import io
import json
import sys
import threading
import time
from pathlib import Path

try:
    import dlib
    import numpy as np
    import onnxruntime as ort
    from PIL import Image
except ImportError as _error:
    print(f"bench_faces_reference: cannot import {_error.name}: {_error} "
          "(run scripts/setup-face-reference.sh and use .venv-faces/bin/python)", file=sys.stderr)
    sys.exit(3)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "faces" / "fixtures"
RETINAFACE_FILE = "retinaface-mobilenet0.25.onnx"
DLIB_FILE = "dlib_face_recognition_resnet_model_v1.dat"

MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
LEVELS = ((8, (16, 32)), (16, (64, 128)), (32, (256, 512)))
VARIANCES = (0.1, 0.2)
SCORE_THRESHOLD = 0.8
NMS_IOU = 0.4
MIN_FACE_PX = 20.0
MAX_SIDE = 640
CHIP_SIDE = 150
CHIP_TEMPLATE = np.array(
    [[48.6, 45.0], [101.3, 44.1], [72.8, 78.7], [51.8, 102.4], [99.2, 100.9]])


class BenchError(Exception):
    """A failure worth one line on stderr and exit status 1."""


# ---------------------------------------------------------------------------- detect


@functools.lru_cache(maxsize=64)
def priors(height: int, width: int) -> np.ndarray:
    """[A, 3] float32: anchor centre x, centre y, side, in pixels, in the network's order."""
    per_level = []
    for stride, sizes in LEVELS:
        rows, cols = -(-height // stride), -(-width // stride)
        row, col, size = np.meshgrid(np.arange(rows), np.arange(cols), sizes, indexing="ij")
        per_level.append(np.stack([(col + 0.5) * stride, (row + 0.5) * stride, size], -1)
                         .reshape(-1, 3))
    return np.concatenate(per_level).astype(np.float32)


def decode(loc, conf, landmarks, height, width, threshold=SCORE_THRESHOLD):
    """Raw [A, k] outputs → (scores [n], boxes [n, 4], landmarks [n, 5, 2]) above threshold."""
    prior = priors(height, width)
    if len(prior) != len(loc):
        raise BenchError(f"{width}x{height} needs {len(prior)} anchors, the model gave {len(loc)}")
    keep = conf[:, 1] > threshold
    prior, loc, landmarks = prior[keep], loc[keep], landmarks[keep]
    centre, side = prior[:, None, :2], prior[:, None, 2:3]
    cxcy = centre[:, 0] + loc[:, :2] * VARIANCES[0] * side[:, 0]
    wh = side[:, 0] * np.exp(loc[:, 2:] * VARIANCES[1])
    boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1)
    points = centre + landmarks.reshape(-1, 5, 2) * VARIANCES[0] * side
    return conf[keep, 1], boxes, points


def box_area(boxes):
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def iou(box, boxes):
    """IoU of one x1,y1,x2,y2 box with each of `boxes` (continuous, no "+1")."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    union = box_area(box) + box_area(boxes) - iw * ih
    return np.where(union > 0, iw * ih / np.where(union > 0, union, 1), 0.0)


def nms(scores, boxes, threshold=NMS_IOU):
    """Indices kept by greedy NMS, scores descending (stable: ties keep anchor order)."""
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if not kept or np.all(iou(boxes[i], boxes[kept]) <= threshold):
            kept.append(int(i))
    return kept


def detection_size(width, height, max_side=MAX_SIDE):
    """The size a photo is run at: the longer side capped at max_side, aspect kept."""
    longer = max(width, height)
    if longer <= max_side:
        return width, height
    scale = max_side / longer
    side = lambda v: min(max(int(v * scale + 0.5), 1), max_side)  # Rust's f64::round
    return side(width), side(height)


def downscale(photo: Image.Image, width, height) -> Image.Image:
    """Area averaging for a shrink of 2x or more, a triangle filter below (as the Rust side)."""
    if photo.width >= 2 * width and photo.height >= 2 * height:
        return photo.resize((width, height), Image.Resampling.BOX)
    return photo.resize((width, height), Image.Resampling.BILINEAR)


def to_input(photo: Image.Image) -> np.ndarray:
    """RGB photo → [1, 3, H, W] float32 BGR minus the mean."""
    bgr = np.asarray(photo, dtype=np.float32)[:, :, ::-1] - MEAN_BGR
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None])


def run_net(session, photo: Image.Image):
    """The three raw outputs for one photo, batch axis dropped."""
    loc, conf, landmarks = session.run(["loc", "conf", "landmarks"], {"input": to_input(photo)})
    return loc[0], conf[0], landmarks[0]


def detect(session, photo: Image.Image):
    """Faces in original pixels, best first: list of (score, box [4], landmarks [5, 2])."""
    width, height = detection_size(photo.width, photo.height)
    small = photo if (width, height) == photo.size else downscale(photo, width, height)
    scores, boxes, points = decode(*run_net(session, small), height, width)
    scale = np.array([photo.width / width, photo.height / height], dtype=np.float32)
    boxes, points = boxes * np.tile(scale, 2), points * scale
    big = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= MIN_FACE_PX
    scores, boxes, points = scores[big], boxes[big], points[big]
    return [(float(scores[i]), boxes[i], points[i]) for i in nms(scores, boxes)]


# ----------------------------------------------------------------------------- align


def fit_similarity(source, target):
    """Least-squares p ↦ a·p + t (a complex: rotation and scale, no reflection; Umeyama)."""
    s = source[:, 0] + 1j * source[:, 1]
    d = target[:, 0] + 1j * target[:, 1]
    s0, d0 = s - s.mean(), d - d.mean()
    den = float(np.sum(np.abs(s0) ** 2))
    if den <= np.finfo(float).eps:
        return None
    a = np.sum(d0 * np.conj(s0)) / den
    return a, d.mean() - a * s.mean()


def align(photo: Image.Image, landmarks) -> Image.Image | None:
    """The 150x150 chip for one face; None for degenerate landmarks."""
    fit = fit_similarity(np.asarray(landmarks, dtype=np.float64), CHIP_TEMPLATE)
    if fit is None or fit[0] == 0:
        return None
    a, t = fit
    inv_a, inv_t = 1 / a, -t / a  # chip → photo, pixel centres on integers
    # Pillow samples output pixel x at x + 0.5 and reads input pixel centres at + 0.5.
    shift = inv_t + (0.5 + 0.5j) * (1 - inv_a)
    coeffs = (inv_a.real, -inv_a.imag, shift.real, inv_a.imag, inv_a.real, shift.imag)
    return photo.transform((CHIP_SIDE, CHIP_SIDE), Image.Transform.AFFINE, coeffs,
                           resample=Image.Resampling.BILINEAR)


# ----------------------------------------------------------------------------- embed


def embed(model, chips):
    """128-D descriptors for a list of chips, batched when this dlib has the list overload."""
    arrays = [np.asarray(chip) for chip in chips]
    try:
        return [np.array(v) for v in model.compute_face_descriptor(arrays, 0)]
    except TypeError:
        return [np.array(model.compute_face_descriptor(a, 0)) for a in arrays]


# ------------------------------------------------------------------- threads observed


def thread_cpu():
    """{tid: (name, CPU seconds)} for this process's threads (Linux /proc), or {}."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    except (OSError, ValueError):
        return {}
    return out


class ThreadWatch:
    """CPU used by each thread during the embed calls, to see whether dlib runs threads.

    `ort_threads` are the threads that appeared while the ONNX session was created (its
    intra-op pool); any other thread but the caller's that works during embed, or any
    thread started after the models were loaded, is dlib's.
    """

    def __init__(self, ort_threads):
        self.ort_threads = set(ort_threads)
        self.known = set(thread_cpu())
        self.main = threading.main_thread().native_id
        self.cpu = {}
        self.snapshot = {}

    def start(self):
        self.snapshot = thread_cpu()

    def stop(self):
        for tid, (name, seconds) in thread_cpu().items():
            spent = seconds - self.snapshot.get(tid, (name, 0.0))[1]
            self.cpu[tid] = (name, self.cpu.get(tid, (name, 0.0))[1] + spent)

    def report(self, embed_wall):
        if not self.cpu or embed_wall <= 0:
            return "dlib threads: not observed (no /proc/self/task, or no timed embed calls)"
        sums = {"caller": 0.0, "onnxruntime pool": 0.0, "other": 0.0}
        for tid, (_, seconds) in self.cpu.items():
            kind = ("caller" if tid == self.main else
                    "onnxruntime pool" if tid in self.ort_threads else "other")
            sums[kind] += seconds
        new = set(self.cpu) - self.known
        dlib_threads = new or sums["other"] > 0.02 + 0.02 * embed_wall
        return (f"dlib threads: embed took {embed_wall:.2f} s wall; CPU seconds in it (10 ms "
                f"ticks): " + ", ".join(f"{k} {v:.2f}" for k, v in sums.items())
                + f"; threads started during the run: {len(new)}. Verdict: dlib "
                + ("uses more than one thread" if dlib_threads else "is single-threaded")
                + f" (built with BLAS={dlib.DLIB_USE_BLAS}, CUDA={dlib.DLIB_USE_CUDA})"
                + ("; the onnxruntime pool's CPU is its idle workers spin-waiting after a"
                   " run (--no-spin stops it)" if sums["onnxruntime pool"] > 0.02 * embed_wall else ""))


# ---------------------------------------------------------------------------- bench


def check_weights(weights: Path):
    for name in (RETINAFACE_FILE, DLIB_FILE):
        if not (weights / name).is_file():
            raise BenchError(f"{weights / name} not found (run scripts/fetch-face-weights.sh)")


def load_detector(weights: Path, threads: int, spin: bool = True):
    """onnxruntime session: `threads` intra-op threads (caller included), one inter-op."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(weights / RETINAFACE_FILE), options,
                                providers=["CPUExecutionProvider"])


def load_embedder(weights: Path):
    return dlib.face_recognition_model_v1(str(weights / DLIB_FILE))


def process(path: Path, session, model, times, watch=None):
    """Runs one photo through the four stages, adding each stage's seconds; returns #faces."""
    data = path.read_bytes()
    t0 = time.perf_counter()
    try:
        photo = Image.open(io.BytesIO(data)).convert("RGB")
    except OSError as error:
        raise BenchError(f"{path}: cannot decode: {error}") from error
    t1 = time.perf_counter()
    faces = detect(session, photo)
    t2 = time.perf_counter()
    chips = [c for c in (align(photo, lm) for _, _, lm in faces) if c is not None]
    t3 = time.perf_counter()
    if chips:
        if watch:
            watch.start()
        t3 = time.perf_counter()
        embed(model, chips)
        t4 = time.perf_counter()
        if watch:
            watch.stop()
    else:
        t4 = t3
    for stage, seconds in zip(("decode", "detect", "align", "embed"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
        times[stage] += seconds
    return len(chips)


def read_list(path: Path):
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise BenchError(f"cannot read the photo list {path}: {error}") from error
    photos = [Path(line.strip()) for line in lines if line.strip()]
    missing = [p for p in photos if not p.is_file()]
    if missing:
        raise BenchError(f"{len(missing)} listed photos not found, first: {missing[0]}")
    return photos


def bench(args):
    photos = read_list(args.photos_list)
    if len(photos) <= args.warmup:
        raise BenchError(f"{len(photos)} photos listed, need more than --warmup {args.warmup}")
    check_weights(args.weights)
    before = set(thread_cpu())
    session = load_detector(args.weights, args.threads, spin=not args.no_spin)
    ort_threads = set(thread_cpu()) - before
    model = load_embedder(args.weights)
    watch = ThreadWatch(ort_threads)
    scratch = dict.fromkeys(("decode", "detect", "align", "embed"), 0.0)
    for path in photos[:args.warmup]:
        process(path, session, model, scratch)
    times = dict.fromkeys(scratch, 0.0)
    faces = sum(process(path, session, model, times, watch) for path in photos[args.warmup:])
    busy = times["detect"] + times["align"] + times["embed"]
    print(watch.report(times["embed"]), file=sys.stderr)
    return {
        "photos": len(photos) - args.warmup,
        "faces": faces,
        "faces_per_s": faces / busy if busy > 0 else 0.0,
        "seconds": {k: round(v, 4) for k, v in times.items()},
        "onnxruntime": ort.__version__,
        "dlib": dlib.__version__,
        "threads": args.threads,
    }


# ------------------------------------------------------------------------ self-check


def check_detections(session, rgb: np.ndarray, expected, label):
    """Detections on `rgb` (no downscale needed: fixtures are small) vs the fixture's."""
    faces = detect(session, Image.fromarray(rgb))
    if len(faces) != len(expected):
        return [f"{label}: {len(faces)} faces, fixture has {len(expected)}"]
    worst_box = worst_point = worst_score = 0.0
    for (score, box, points), want in zip(faces, expected):
        worst_box = max(worst_box, float(np.abs(box - want["box_x1_y1_x2_y2"]).max()))
        worst_point = max(worst_point, float(np.abs(points - want["landmarks_xy"]).max()))
        worst_score = max(worst_score, abs(score - want["score"]))
    print(f"self-check {label}: {len(faces)} faces, max |box diff| {worst_box:.2e} px, "
          f"|landmark diff| {worst_point:.2e} px, |score diff| {worst_score:.2e}", file=sys.stderr)
    ok = worst_box < 0.01 and worst_point < 0.01 and worst_score < 1e-4
    return [] if ok else [f"{label}: detections differ from the fixture"]


def check_warp():
    """The Pillow warp samples the photo at to_photo(x, y) with integer pixel centres."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    angle, scale, shift = 0.3, 1.3, np.array([80.3, 31.7])  # chip lands inside
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = CHIP_TEMPLATE @ rot.T + shift  # chip → photo, so the warp must sample here
    chip = np.asarray(align(Image.fromarray(photo), landmarks)).astype(np.float64)
    ys, xs = np.mgrid[0:CHIP_SIDE, 0:CHIP_SIDE]
    px, py = (np.stack([xs, ys], -1).reshape(-1, 2) @ rot.T + shift).T
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    fx, fy = (px - x0)[:, None], (py - y0)[:, None]
    img = photo.astype(np.float64)
    want = ((1 - fx) * (1 - fy) * img[y0, x0] + fx * (1 - fy) * img[y0, x0 + 1]
            + (1 - fx) * fy * img[y0 + 1, x0] + fx * fy * img[y0 + 1, x0 + 1])
    diff = float(np.abs(chip.reshape(-1, 3) - want).max())
    print(f"self-check warp: max |Pillow - numpy bilinear| {diff:.2f} levels", file=sys.stderr)
    return [] if diff <= 1.0 else ["warp: Pillow's affine warp is not the expected bilinear sampling"]


def check_embed(model):
    """Batched descriptors of the fixture chips vs descriptors.json (dlib 20.0.1)."""
    fixture = json.loads((FIXTURES / "descriptors.json").read_text())
    chips = [Image.open(FIXTURES / c["file"]).convert("RGB") for c in fixture["chips"]]
    got = embed(model, chips)
    diff = max(float(np.abs(g - c["descriptor"]).max()) for g, c in zip(got, fixture["chips"]))
    print(f"self-check embed: {len(chips)} chips batched, max |descriptor diff| {diff:.2e}",
          file=sys.stderr)
    return [] if diff < 1e-4 else ["embed: descriptors differ from descriptors.json"]


def self_check(args):
    check_weights(args.weights)
    session, model = load_detector(args.weights, args.threads), load_embedder(args.weights)
    stem = "retinaface-Gonzalo_Sanchez_de_Lozada_0007"
    fixture = json.loads((FIXTURES / f"{stem}.json").read_text())
    rgb = np.asarray(Image.open(FIXTURES / f"{stem}.png").convert("RGB"))
    problems = check_detections(session, rgb, fixture["full"]["detections"], "full 250x250")
    problems += check_detections(session, rgb[0:232, 0:200],
                                 fixture["crop_200x232"]["detections"], "crop 200x232")
    problems += check_warp() + check_embed(model)
    if problems:
        raise BenchError("self-check failed: " + "; ".join(problems))
    print("self-check: ok", file=sys.stderr)


# ------------------------------------------------------------------------------ main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True,
                        help=f"folder with {RETINAFACE_FILE} and {DLIB_FILE}")
    parser.add_argument("--photos-list", type=Path, help="text file, one photo path per line")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--warmup", type=int, default=5, help="photos run first, not counted")
    parser.add_argument("--no-spin", action="store_true",
                        help="stop onnxruntime's idle workers spin-waiting (they spin by default)")
    parser.add_argument("--self-check", action="store_true",
                        help="compare against faces/fixtures and exit")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.warmup < 0:
        parser.error("--threads must be >= 1 and --warmup >= 0")
    if not args.self_check and args.photos_list is None:
        parser.error("--photos-list is required (or --self-check)")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.self_check:
            self_check(args)
            return 0
        print(json.dumps(bench(args)))
        return 0
    except (BenchError, OSError, RuntimeError, ValueError) as error:
        print(f"bench_faces_reference: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
