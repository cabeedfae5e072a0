#!/usr/bin/env python3
"""Time and peak memory of `apiload lint` on generated corpora of growing size.

    cargo build --release --locked -p apiload
    python3 bench/scale/bench.py [--bin target/release/apiload] [--sizes 10000,100000,1000000] [--runs 5]

For each size N the corpus is `../shared/tools/gen-scale-corpus.py --objects N
--files N/50 --seed 1` (10,000 objects in 200 files, as in BENCHMARKS.md),
made once into `--work` (default /tmp/apiload-scale, shared with
same_output.py) and reused. Each run is

    /usr/bin/time -v apiload lint --no-config --format json --root . . > /dev/null

in the corpus folder, after one warm-up run (the files are in the page cache
for every measured run). Prints, per size, the median wall-clock time and
peak resident set size with their minimum and maximum, the median CPU time
(user + system: less sensitive than wall time to other work on the machine), and the load average
before and after (the machine may be shared: say so next to the figures).
`--taskset CPUS` pins the runs (`taskset -c CPUS`).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import same_output  # noqa: E402  (the corpora and the checkout's layout)


def corpus(work, objects):
    return same_output.generated_corpus(work, objects, max(1, objects // 50))


def measure(binary, folder, taskset):
    argv = ["/usr/bin/time", "-v", binary, "lint", "--no-config", "--format", "json", "--root", ".", "."]
    if taskset:
        argv = ["taskset", "-c", taskset] + argv
    p = subprocess.run(argv, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"error: lint of {folder} exited with {p.returncode}:\n{p.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    user = re.search(r"User time \(seconds\): ([\d.]+)", p.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", p.stderr)
    if not wall or not rss or not user or not system:
        sys.exit(f"error: no figures from /usr/bin/time:\n{p.stderr[-2000:]}")
    h, m, s = wall.groups()
    seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    return seconds, int(rss.group(1)) * 1024, float(user.group(1)) + float(system.group(1))


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(same_output.CHECKOUT, "target", "release", "apiload"))
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", default="/tmp/apiload-scale")
    parser.add_argument("--taskset", help="CPU list to pin the runs to (taskset -c)")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    os.makedirs(args.work, exist_ok=True)
    print("| objects | files | wall median | min – max | CPU (user + system) median | peak RSS median | min – max | load average before → after |")
    print("|---|---|---|---|---|---|---|---|")
    for n in [int(s) for s in args.sizes.split(",")]:
        folder = corpus(args.work, n)
        measure(binary, folder, args.taskset)
        before = load_average()
        runs = [measure(binary, folder, args.taskset) for _ in range(args.runs)]
        after = load_average()
        times = [t for t, _, _ in runs]
        rss = [r / 1e6 for _, r, _ in runs]
        cpu = [c for _, _, c in runs]
        print(
            f"| {n:,} | {max(1, n // 50):,} | {statistics.median(times):.3f} s | {min(times):.3f} – {max(times):.3f} s "
            f"| {statistics.median(cpu):.2f} s | {statistics.median(rss):,.0f} MB | {min(rss):,.0f} – {max(rss):,.0f} MB | {before} → {after} |",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
