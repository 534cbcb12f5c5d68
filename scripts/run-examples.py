#!/usr/bin/env python3
"""Runs every example command of README.md and of the `album … --help` texts on a fresh
clone of this repository, the way a newcomer would copy them, and checks each outcome:

- it succeeds (exit 0), or
- it is a long job or a server still running, without an error, when its time is up, or
- it fails with one of the messages a fresh clone is expected to give, each saying what
  to do (no photos crawled yet, no run trained yet, no checkpoint in git, a placeholder
  folder of the user's; EXPECTED below, and README.md's "Examples on a fresh clone").

Anything else fails the run: a panic, an undocumented error, an internal error type.
src/help_examples.rs checks in seconds that every example parses; this runs them.

    scripts/run-examples.py [--album target/debug/album] [--seconds 20] [--report FILE]
                            [--only TEXT]

The clone is made from HEAD under target/examples/ (../shared beside it and the face
models scripts/setup.sh fetched into data/weights are linked), so the checkout itself is
never written to. Servers and long jobs are stopped with Ctrl-C (SIGINT) at the limit.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What a fresh clone answers when an example needs what an earlier step makes (the data,
# a trained run) or names a placeholder of the user's. Each is a clear message that says
# what to do; README.md lists them.
EXPECTED = [
    ("no split yet", r"not found: run `album dataset split` first"),
    ("nothing crawled yet", r"has no rows to split|planted faults? not caught"),
    ("no gallery running", r"is the gallery running\?"),
    ("no access log yet", r"access log \S+ not found"),
    ("no run trained yet", r"no run directory at \S+: train one first"),
    ("no album yet", r"album\.db not found: --data-dir names the album's folder"),
    ("no bucket credentials", r"no AWS_ACCESS_KEY_ID is set"),
    ("no Postgres server running", r"cannot open postgres://\S+: .*[Cc]onnection refused"),
    ("no checkpoint in git", r"checkpoints stay out of git"),
    ("a placeholder of the user's", r"is neither a photo nor a folder|: no such folder"),
    ("no LibTorch or GPU here", r"LibTorch sees 0 CUDA device|built without LibTorch; rebuild with"),
]


def album_paths(album: Path) -> list[list[str]]:
    """Every subcommand path, from `album --help`'s Commands lists, recursively."""
    paths, todo = [], [[]]
    while todo:
        path = todo.pop()
        paths.append(path)
        text = run_help(album, path)
        in_commands = False
        for line in text.splitlines():
            if line.startswith("Commands:"):
                in_commands = True
                continue
            if in_commands:
                m = re.match(r"  (\S+)\s", line + " ")
                if not line.strip():
                    in_commands = False
                elif m and m.group(1) != "help":
                    todo.append(path + [m.group(1)])
    return paths


def run_help(album: Path, path: list[str]) -> str:
    return subprocess.run(
        [str(album), *path, "--help"], capture_output=True, text=True, check=True
    ).stdout


def examples_in(text: str) -> list[str]:
    """The `album …` lines, continuations joined, notes dropped, templates skipped (the
    same rules as src/help_examples.rs)."""
    found, lines = [], iter(text.splitlines())
    for line in lines:
        line = line.strip()
        if not line.startswith("album "):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines, "").strip()
        for note in (" #", "  ("):
            if note in line:
                line = line[: line.index(note)]
        line = line.strip()
        if any(t in line for t in ("<", "...", "…")):
            continue
        found.append(line)
    return found


def fenced_code(markdown: str) -> str:
    inside, code = False, []
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif inside:
            code.append(line)
    return "\n".join(code)


def fresh_clone(work: Path) -> Path:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    shared = (ROOT / ".." / "shared").resolve()
    if shared.is_dir():
        (work / "shared").symlink_to(shared)
    # What the README's set-up command puts beside a checkout (scripts/setup.sh: the face
    # models), as a newcomer has it before copying examples.
    weights = ROOT / "data" / "weights"
    if weights.is_dir():
        (clone / "data").mkdir(exist_ok=True)
        (clone / "data" / "weights").symlink_to(weights.resolve())
    return clone


def run_example(command: str, clone: Path, album_dir: Path, seconds: float):
    env = dict(os.environ, PATH=f"{album_dir}:{os.environ['PATH']}", NO_COLOR="1")
    started = time.monotonic()
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=seconds)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C: servers stop cleanly
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        code = None
    return code, output, time.monotonic() - started


def judge(code, output: str):
    """(passed, outcome) for one example."""
    if "panicked at" in output or code == 101:
        return False, "panicked"
    if code == 0:
        return True, "ran"
    if code is None:
        if re.search(r"^(error|Error):", output, re.M):
            return False, "printed an error, then kept running"
        return True, "still running at the time limit (a long job or a server)"
    for name, pattern in EXPECTED:
        if re.search(pattern, output):
            return True, f"failed as documented: {name}"
    return False, f"failed (exit {code}) with an undocumented message"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--album", default=str(ROOT / "target/debug/album"))
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--report", help="also write the table to this file")
    parser.add_argument("--only", help="run only the examples containing this text")
    args = parser.parse_args()
    album = Path(args.album).resolve()
    if not album.is_file():
        print(f"run-examples: no album binary at {album} (cargo build --bin album)", file=sys.stderr)
        return 2

    sources = [("README.md", fenced_code((ROOT / "README.md").read_text()))]
    for path in album_paths(album):
        sources.append((" ".join(["album", *path, "--help"]), run_help(album, path)))
    examples, seen = [], set()
    for source, text in sources:
        for command in examples_in(text):
            if command not in seen and (args.only is None or args.only in command):
                seen.add(command)
                examples.append((source, command))

    clone = fresh_clone(ROOT / "target/examples")
    rows, failures = [], 0
    for i, (source, command) in enumerate(examples, 1):
        code, output, seconds = run_example(command, clone, album.parent, args.seconds)
        passed, outcome = judge(code, output)
        failures += not passed
        last = next((l for l in reversed(output.strip().splitlines()) if l.strip()), "")
        rows.append((passed, source, command, outcome, seconds, last))
        mark = "ok  " if passed else "FAIL"
        print(f"{mark} [{i}/{len(examples)}] {command}\n       {outcome} ({seconds:.0f} s)", flush=True)
        if not passed:
            print("       " + "\n       ".join(output.strip().splitlines()[-8:]), flush=True)

    table = ["| | example | from | outcome | last line |", "|---|---|---|---|---|"]
    for passed, source, command, outcome, seconds, last in rows:
        last = last.replace("|", "\\|")[:100]
        table.append(
            f"| {'ok' if passed else '**fail**'} | `{command}` | {source} | {outcome}, {seconds:.0f} s | {last} |"
        )
    summary = f"{len(rows) - failures} of {len(rows)} examples hold, {failures} fail"
    if args.report:
        Path(args.report).write_text("\n".join([summary, "", *table]) + "\n")
    print(summary)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
