#!/usr/bin/env python3
"""Checks that a change leaves `apiload lint`'s reports exactly as they were.

    python3 bench/scale/same_output.py record BASELINE_DIR [--bin target/release/apiload]
    python3 bench/scale/same_output.py check BASELINE_DIR [--bin target/release/apiload]

`record` lints every input below and writes one file per run into
BASELINE_DIR; `check` lints them again with the binary given and compares
each run with the recorded one, printing the first differing line of each
report that changed. Exit status: 0 when every run is identical, 1 when one
differs, 2 on a usage error.

The inputs:
- every case of `../shared/corpus` (beside the checkout), linted alone, as
  `../shared/tools/eval-corpus.py` lints it, and the whole corpus at once;
- the generated corpora of 10,000 and 100,000 objects
  (`../shared/tools/gen-scale-corpus.py --seed 1`, 200 and 2,000 files, the
  figures of BENCHMARKS.md), made once into `--work` (default
  /tmp/apiload-scale) and reused: the generator's output is byte-identical for
  the same arguments.

Each run is `apiload lint --no-config --format json --root . .` with the input
folder as the working directory, so that every path in the report is
relative to it and nothing depends on where the folders are. A run's record
is its exit status, its stderr and its whole JSON report. Nothing is removed
from the report: it holds no timing, no absolute path (every path is under
`--root`) and no other field that changes from run to run, so the records
are compared as they are; a field that came to need removing would be a
change of output to explain, not to hide.
"""

import argparse
import difflib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(CHECKOUT), "shared")
GENERATED = [(10_000, 200), (100_000, 2_000)]


def generated_corpus(work, objects, files):
    """The generated corpus of `objects` objects, made on first use."""
    out = os.path.join(work, f"gen-{objects}-{files}-seed1")
    if not os.path.exists(os.path.join(out, "ground-truth.json")):
        tool = os.path.join(SHARED, "tools", "gen-scale-corpus.py")
        subprocess.run(
            [sys.executable, tool, "--objects", str(objects), "--files", str(files), "--seed", "1", "--out", out],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def inputs(work):
    """(name, folder) of every run."""
    corpus = os.path.join(SHARED, "corpus")
    if not os.path.isdir(corpus):
        sys.exit(f"error: {corpus} is missing: this check needs ../shared beside the checkout")
    runs = []
    for case in sorted(os.listdir(corpus)):
        if os.path.isfile(os.path.join(corpus, case, "manifest.yaml")):
            runs.append((f"corpus-{case}", os.path.join(corpus, case)))
    runs.append(("corpus-all", corpus))
    for objects, files in GENERATED:
        runs.append((f"generated-{objects}", generated_corpus(work, objects, files)))
    return runs


def lint(binary, folder):
    """The record of one run: exit status, stderr and the JSON report."""
    p = subprocess.run(
        [binary, "lint", "--no-config", "--format", "json", "--root", ".", "."],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if p.returncode not in (0, 1):
        sys.exit(f"error: lint of {folder} exited with {p.returncode}:\n{p.stderr}")
    try:
        json.loads(p.stdout)
    except ValueError as e:
        sys.exit(f"error: lint of {folder} did not print JSON: {e}")
    return f"exit status: {p.returncode}\n--- stderr\n{p.stderr}--- report\n{p.stdout}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["record", "check"])
    parser.add_argument("baseline", help="folder of the recorded runs")
    parser.add_argument("--bin", default=os.path.join(CHECKOUT, "target", "release", "apiload"))
    parser.add_argument("--work", default="/tmp/apiload-scale", help="where the generated corpora are kept")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        print(f"error: {binary} is not an executable (cargo build --release --locked -p apiload)", file=sys.stderr)
        return 2
    os.makedirs(args.work, exist_ok=True)
    runs = inputs(args.work)
    if args.mode == "record":
        os.makedirs(args.baseline, exist_ok=True)
    differ = 0
    for name, folder in runs:
        record = lint(binary, folder)
        path = os.path.join(args.baseline, name + ".txt")
        if args.mode == "record":
            with open(path, "w") as f:
                f.write(record)
            continue
        try:
            with open(path) as f:
                before = f.read()
        except OSError as e:
            print(f"error: no recorded run for {name}: {e}", file=sys.stderr)
            return 2
        if before == record:
            continue
        differ += 1
        diff = difflib.unified_diff(
            before.splitlines(), record.splitlines(), "recorded/" + name, "now/" + name, n=2, lineterm=""
        )
        print("\n".join(list(diff)[:40]))
    if args.mode == "record":
        print(f"recorded {len(runs)} runs into {args.baseline}")
        return 0
    print(f"{len(runs) - differ} of {len(runs)} runs identical" + (f", {differ} differ" if differ else ""))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
