#!/usr/bin/env python3
"""Walk a dlib DNN .dat file (dlib::serialize of a whole network) from the first byte to
the last and list its layers with their tensor shapes.

Written for dlib_face_recognition_resnet_model_v1.dat (the 128-D face descriptor net,
`anet_type` in dlib's examples/dnn_face_recognition_ex.cpp), but it follows dlib's
generic rules, so other loss_metric/con/affine/relu/pool/fc networks should parse too.
Standard library only; `load()` returns the weights as Python `array('f')`s, which
numpy.frombuffer() can wrap without copying.

Usage:
    python3 scripts/inspect_dlib_dat.py [data/weights/dlib_face_recognition_resnet_model_v1.dat]
    python3 scripts/inspect_dlib_dat.py FILE --json    # the layer list as JSON

Format, as read from dlib's source (dlib/serialize.h, dlib/float_details.h,
dlib/cuda/tensor.h, dlib/dnn/core.h, layers.h, input.h, loss.h) and confirmed here by
reaching EOF exactly:

- integers: one control byte (bit 7 = negative, low 4 bits = number of magnitude bytes,
  0..8), then the magnitude, little endian. 0 is `00`; 2 is `01 02`; -28 is `81 1c`.
- bool: one ASCII byte, '1' or '0'.
- std::string: length (integer), then the bytes. Layer "details" start with a string
  naming their kind and format version ("con_4", "affine_", ...).
- float/double (scalar): float_details = mantissa (signed integer) then exponent (signed
  integer); value = mantissa * 2**exponent. (serialize.h's header comment says
  exponent first; the code, and this file, put the mantissa first.) Exponent 32000,
  32001, 32002 mean +inf, -inf, NaN.
- tensor (resizable_tensor): version (integer; 2 here), then num_samples, k, nr, nc
  (integers), then num_samples*k*nr*nc float32 little endian. Version 1 (older) stores
  each float as a float_details instead.
- alias_tensor: version (1), num_samples, k, nr, nc; no data (a view into `params`).
- Network nesting. dlib nets are nested templates, outermost (loss) first:
    add_loss_layer: version(1), loss details, subnet
    add_layer:      version(2), subnet, details, bool this_layer_setup_called,
                    bool gradient_input_is_stale, bool get_output_and_gradient_input_disabled,
                    tensor x_grad, tensor cached_output, tensor params_grad
    add_layer on the input layer: version(3), input layer, details, 3 bools, x_grad,
                    cached_output, grad_final, int _sample_expansion_factor
                    (version 2 lacks _sample_expansion_factor)
    add_tag_layer / add_skip_layer: version(1), subnet      (no payload of their own)
  Each wrapper writes its version and then recurses into its subnet before writing its
  own details, so the file holds all the wrappers' version numbers first (outermost
  first), then the input layer, then the layers' details input-first: the first conv
  comes right after the input layer and the fc_no_bias comes last. Tags and skips leave
  only their version `01 01` in the header and nothing in the body; which is which comes
  from the architecture, not the stream (this script infers it: see classify()).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent.parent / "data/weights/dlib_face_recognition_resnet_model_v1.dat"


class ParseError(Exception):
    pass


class Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.p = 0

    def eof(self) -> bool:
        return self.p == len(self.d)

    def byte(self) -> int:
        if self.p >= len(self.d):
            raise ParseError("unexpected EOF")
        b = self.d[self.p]
        self.p += 1
        return b

    def int(self) -> int:
        at = self.p
        c = self.byte()
        if c & 0x70:
            raise ParseError(f"bad integer control byte {c:#04x} at {at}")
        n = c & 0x0F
        if n > 8:
            raise ParseError(f"integer of {n} bytes at {at}")
        raw = self.d[self.p : self.p + n]
        if len(raw) != n:
            raise ParseError("unexpected EOF in integer")
        self.p += n
        v = int.from_bytes(raw, "little")
        return -v if c & 0x80 else v

    def peek_int(self) -> tuple[int, int]:
        save = self.p
        try:
            return self.int(), self.p
        finally:
            self.p = save

    def bool(self) -> bool:
        at = self.p
        c = self.byte()
        if c not in (ord("0"), ord("1")):
            raise ParseError(f"bad bool byte {c:#04x} at {at}")
        return c == ord("1")

    def string(self) -> str:
        n = self.int()
        s = self.d[self.p : self.p + n]
        if len(s) != n:
            raise ParseError("unexpected EOF in string")
        self.p += n
        return s.decode("ascii")

    def scalar(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        if exponent == 32000:
            return float("inf")
        if exponent == 32001:
            return float("-inf")
        if exponent == 32002:
            return float("nan")
        return mantissa * 2.0**exponent

    def tensor(self) -> tuple[tuple[int, int, int, int], array]:
        version = self.int()
        shape = (self.int(), self.int(), self.int(), self.int())
        n = shape[0] * shape[1] * shape[2] * shape[3]
        if version == 2:
            raw = self.d[self.p : self.p + 4 * n]
            if len(raw) != 4 * n:
                raise ParseError("unexpected EOF in tensor data")
            self.p += 4 * n
            a = array("f")
            a.frombytes(raw)
            if sys.byteorder != "little":
                a.byteswap()
            return shape, a
        if version == 1:
            return shape, array("f", (self.scalar() for _ in range(n)))
        raise ParseError(f"tensor version {version} at {self.p}")

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise ParseError(f"alias_tensor version {version}")
        return (self.int(), self.int(), self.int(), self.int())


@dataclass
class Layer:
    kind: str  # dlib details name: "con_4", "affine_", "relu_", ..., or "tag/skip"
    offset: int  # byte offset where this layer's details start (body), or its version (tag/skip)
    attrs: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)  # name -> (n,k,nr,nc)
    params: dict = field(default_factory=dict)  # name -> array('f'), not printed
    role: str = ""  # tag1/tag2/skip1 for tag/skip wrappers (inferred)


def read_details(r: Reader, lay: Layer) -> None:
    """Layer details: starts with a string naming the layer kind + format version."""
    kind = r.string()
    lay.kind = kind
    a = lay.attrs
    if kind == "con_4":
        shape, params = r.tensor()
        a["num_filters"], a["nr"], a["nc"] = r.int(), r.int(), r.int()
        a["stride_y"], a["stride_x"] = r.int(), r.int()
        a["padding_y"], a["padding_x"] = r.int(), r.int()
        filters, biases = r.alias_tensor(), r.alias_tensor()
        a["learning_rate_mult"], a["weight_decay_mult"] = r.scalar(), r.scalar()
        a["bias_learning_rate_mult"], a["bias_weight_decay_mult"] = r.scalar(), r.scalar()
        nf = filters[0] * filters[1] * filters[2] * filters[3]
        lay.shapes = {"params": shape, "filters": filters, "biases": biases}
        lay.params = {"filters": params[:nf], "biases": params[nf:]}
        if nf + biases[1] * biases[0] * biases[2] * biases[3] != len(params):
            raise ParseError("con_: params size != filters + biases")
    elif kind == "affine_":
        shape, params = r.tensor()
        gamma, beta = r.alias_tensor(), r.alias_tensor()
        a["mode"] = {0: "CONV_MODE", 1: "FC_MODE"}.get(r.int(), "?")
        ng = gamma[0] * gamma[1] * gamma[2] * gamma[3]
        lay.shapes = {"params": shape, "gamma": gamma, "beta": beta}
        lay.params = {"gamma": params[:ng], "beta": params[ng:]}
    elif kind in ("bn_con2", "bn_fc2"):  # not in this file (its bn layers were saved as affine_)
        shape, params = r.tensor()
        gamma, beta = r.alias_tensor(), r.alias_tensor()
        for name in ("means", "invstds", "running_means", "running_variances"):
            lay.shapes[name], lay.params[name] = r.tensor()
        a["num_updates"], a["running_stats_window_size"] = r.int(), r.int()
        for name in ("learning_rate_mult", "weight_decay_mult", "bias_learning_rate_mult", "bias_weight_decay_mult", "eps"):
            a[name] = r.scalar()
        lay.shapes.update(params=shape, gamma=gamma, beta=beta)
        ng = gamma[0] * gamma[1] * gamma[2] * gamma[3]
        lay.params.update(gamma=params[:ng], beta=params[ng:])
    elif kind in ("relu_", "add_prev_"):
        pass
    elif kind in ("max_pool_2", "avg_pool_2"):
        a["nr"], a["nc"], a["stride_y"], a["stride_x"] = r.int(), r.int(), r.int(), r.int()
        a["padding_y"], a["padding_x"] = r.int(), r.int()
    elif kind == "fc_2":
        a["num_outputs"], a["num_inputs"] = r.int(), r.int()
        shape, params = r.tensor()
        weights, biases = r.alias_tensor(), r.alias_tensor()
        a["bias_mode"] = {0: "FC_HAS_BIAS", 1: "FC_NO_BIAS"}.get(r.int(), "?")
        for name in ("learning_rate_mult", "weight_decay_mult", "bias_learning_rate_mult", "bias_weight_decay_mult"):
            a[name] = r.scalar()
        nw = weights[0] * weights[1] * weights[2] * weights[3]
        lay.shapes = {"params": shape, "weights": weights, "biases": biases}
        lay.params = {"weights": params[:nw]}
        if len(params) > nw:
            lay.params["biases"] = params[nw:]
    else:
        raise ParseError(f"unknown layer kind {kind!r} at {lay.offset}")


def read_input_layer(r: Reader) -> Layer:
    lay = Layer(kind="", offset=r.p)
    kind = r.string()
    lay.kind = kind
    if kind == "input_rgb_image_sized":
        lay.attrs = {"avg_red": r.scalar(), "avg_green": r.scalar(), "avg_blue": r.scalar(), "NR": r.int(), "NC": r.int()}
    elif kind == "input_rgb_image":
        lay.attrs = {"avg_red": r.scalar(), "avg_green": r.scalar(), "avg_blue": r.scalar()}
    else:
        raise ParseError(f"unknown input layer {kind!r}")
    return lay


def looks_like_input(r: Reader) -> bool:
    save = r.p
    try:
        n = r.int()
        return 0 < n < 64 and r.d[r.p : r.p + 5] == b"input"
    except ParseError:
        return False
    finally:
        r.p = save


def parse(data: bytes) -> dict:
    r = Reader(data)
    net: dict = {}
    loss_version = r.int()
    if loss_version != 1:
        raise ParseError(f"add_loss_layer version {loss_version}")
    loss_kind = r.string()
    net["loss"] = {"kind": loss_kind}
    if loss_kind == "loss_metric_2":
        net["loss"]["margin"] = r.scalar()
        net["loss"]["dist_thresh"] = r.scalar()
    elif loss_kind != "loss_metric_":
        raise ParseError(f"unsupported loss {loss_kind!r}")

    # Header: every wrapper's version, outermost first, until the input layer.
    wrappers: list[tuple[int, int]] = []  # (version, offset)
    while not looks_like_input(r):
        at = r.p
        v = r.int()
        if v not in (1, 2, 3):
            raise ParseError(f"unexpected wrapper version {v} at {at}")
        wrappers.append((v, at))
    net["header_versions"] = "".join(str(v) for v, _ in wrappers)
    if not wrappers:
        raise ParseError("no layers")
    input_version, _ = wrappers[-1]
    net["input"] = read_input_layer(r)

    # Body: the innermost add_layer (over the input layer) first, then outwards.
    layers: list[Layer] = []
    for idx, (v, at) in enumerate(reversed(wrappers)):
        first = idx == 0
        if first:
            if input_version not in (2, 3):
                raise ParseError(f"input add_layer version {input_version}")
        elif v == 1:  # add_tag_layer or add_skip_layer: nothing but the version
            layers.append(Layer(kind="tag/skip", offset=at))
            continue
        elif v != 2:
            raise ParseError(f"add_layer version {v} at {at}")
        lay = Layer(kind="", offset=r.p)
        read_details(r, lay)
        lay.attrs["_state"] = "".join("1" if r.bool() else "0" for _ in range(3))
        extra = ("x_grad", "cached_output", "grad_final") if first else ("x_grad", "cached_output", "params_grad")
        for name in extra:
            shape, _ = r.tensor()
            if shape[0] * shape[1] * shape[2] * shape[3]:
                lay.shapes[name] = shape
        if first and input_version == 3:
            lay.attrs["_sample_expansion_factor"] = r.int()
        layers.append(lay)
    if not r.eof():
        raise ParseError(f"{len(data) - r.p} bytes left after the last layer")
    net["layers"] = layers
    net["bytes"] = len(data)
    classify(layers)
    return net


def classify(layers: list[Layer]) -> None:
    """Name each tag/skip from the context (ResNet blocks of dlib's anet_type):
    a tag/skip right before a con_ that follows a relu_/max_pool_ is tag1 (block input);
    the pair between a block's last affine_ and its avg_pool_ is tag2, skip1."""
    for i, lay in enumerate(layers):
        if lay.kind != "tag/skip":
            continue
        nxt = layers[i + 1].kind if i + 1 < len(layers) else ""
        prv = layers[i - 1].kind if i else ""
        if nxt == "con_4":
            lay.role = "tag1"
        elif prv == "affine_" and nxt == "tag/skip":
            lay.role = "tag2"
        elif prv == "tag/skip" and nxt == "avg_pool_2":
            lay.role = "skip1"
        else:
            lay.role = "tag/skip?"


def load(path: Path | str = DEFAULT) -> dict:
    return parse(Path(path).read_bytes())


def count_params(layers: list[Layer]) -> int:
    return sum(len(v) for lay in layers for v in lay.params.values())


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--json", action="store_true", help="print the layer list as JSON")
    args = ap.parse_args(argv)
    try:
        net = load(args.file)
    except ParseError as e:
        print(f"inspect_dlib_dat: {args.file}: {e}", file=sys.stderr)
        return 1
    layers = net["layers"]
    if args.json:
        out = {
            "file": str(args.file),
            "bytes": net["bytes"],
            "loss": net["loss"],
            "input": {"kind": net["input"].kind, **net["input"].attrs},
            "header_versions": net["header_versions"],
            "layers": [
                {"i": i, "kind": l.role or l.kind, "offset": l.offset, **{k: v for k, v in l.attrs.items()},
                 "shapes": {k: list(v) for k, v in l.shapes.items()}}
                for i, l in enumerate(layers)
            ],
            "parameters": count_params(layers),
        }
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    print(f"{args.file}: {net['bytes']} bytes, parsed to EOF")
    print(f"loss: {net['loss']}")
    print(f"wrappers: {len(net['header_versions'])} (versions, outermost first: {net['header_versions']})")
    inp = net["input"]
    print(f"input: {inp.kind} {inp.attrs}")
    print("layers, input-first (file order):")
    for i, l in enumerate(layers):
        attrs = {k: v for k, v in l.attrs.items() if not k.startswith("_") and not k.endswith("_mult")}
        shapes = " ".join(f"{k}={'x'.join(map(str, v))}" for k, v in l.shapes.items() if k != "params")
        print(f"  {i:3d} @{l.offset:>9d} {l.role or l.kind:<12s} {attrs if attrs else ''} {shapes}".rstrip())
    counts: dict = {}
    for l in layers:
        counts[l.role or l.kind] = counts.get(l.role or l.kind, 0) + 1
    print(f"counts: {counts}")
    print(f"parameters (float32): {count_params(layers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
