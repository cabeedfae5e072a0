#!/usr/bin/env python3
"""Memory of apiload-webhook's cluster cache per kept object.

Method (see BENCHMARKS.md, "Memory of the cluster cache"):
  - States from ../shared/tools/gen-scale-corpus.py --objects N --files N/50
    --seed 1 (made once into --work and reused), loaded in static mode: the
    webhook parses them with the linter's loader and keeps what it keeps from
    a watch (Services and other kinds no analysis reads are dropped).
  - For each size, --runs starts of the webhook; 2 s after it logs that it
    is listening (the state is loaded before it listens), VmRSS is read from
    /proc/PID/status and the process stopped. The figure per object is
    (median RSS - median RSS of the empty state) / objects kept.
  - A "cluster of N nodes" state adds N Node objects to the 10k state
    (--nodes), as a 5,000-node cluster's watch would.

Usage: cargo build --release --locked -p apiload-webhook
       python3 bench/webhook/cache_memory.py [--sizes 10000,50000,100000] [--runs 3] [--nodes 5000] [--bin PATH]
Needs openssl (for the serving certificate) and ../shared beside the checkout.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the webhook's start-up and certificates)


def generated(work, objects):
    out = os.path.join(work, f"gen-{objects}-seed1")
    if not os.path.isdir(out):
        subprocess.run([sys.executable, os.path.join(bench.SHARED, "tools", "gen-scale-corpus.py"), "--objects",
                        str(objects), "--files", str(max(1, objects // 50)), "--seed", "1", "--out", out],
                       check=True, capture_output=True)
    return out


def nodes_file(folder, count):
    path = os.path.join(folder, "nodes.yaml")
    with open(path, "w") as f:
        for i in range(count):
            pool = ("general", "memory", "gpu")[i % 3]
            f.write(f"---\napiVersion: v1\nkind: Node\nmetadata:\n  name: node-{i:05d}\n  labels:\n"
                    f"    kubernetes.io/hostname: node-{i:05d}\n    node.kubernetes.io/instance-type: m6i.4xlarge\n"
                    f"    cloud.google.com/gke-nodepool: {pool}\n    topology.kubernetes.io/zone: zone-{i % 3}\n")
    return path


def measure(crt, key, paths, work, runs):
    rss, loaded = [], None
    for i in range(runs):
        log = os.path.join(work, f"webhook-{i}.log")
        proc, _, _, loaded = bench.start_with(crt, key, paths, log)
        try:
            # The allocator returns what parsing freed shortly after; read
            # the cache's own footprint, not the loader's high-water mark.
            time.sleep(2)
            rss.append(bench.vm_kib(proc.pid, "VmRSS"))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return statistics.median(rss), min(rss), max(rss), loaded or {"objects": 0, "kept": 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,50000,100000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--work", default="/tmp/apiload-webhook-cache")
    ap.add_argument("--bin", default=bench.BINARY, help="the apiload-webhook to measure")
    args = ap.parse_args()
    bench.BINARY = os.path.abspath(args.bin)
    if not os.path.exists(bench.BINARY):
        sys.exit("build first: cargo build --release --locked -p apiload-webhook")
    if not os.path.isdir(os.path.join(bench.SHARED, "tools")):
        sys.exit(f"error: {bench.SHARED} is missing: this benchmark needs ../shared beside the checkout")
    os.makedirs(args.work, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="apiload-webhook-cache-")
    crt, key = bench.certificates(tmp)
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    base, lo, hi, _ = measure(crt, key, [empty], tmp, args.runs)
    print(f"empty state: RSS {base / 1024:.1f} MiB ({lo / 1024:.1f} – {hi / 1024:.1f})")
    rows = []
    cases = [(f"{int(n):,} objects", [generated(args.work, int(n))]) for n in args.sizes.split(",") if n]
    if args.nodes:
        ten = generated(args.work, 10000)
        extra = os.path.join(args.work, f"nodes-{args.nodes}")
        os.makedirs(extra, exist_ok=True)
        nodes_file(extra, args.nodes)
        cases.append((f"10,000 objects + {args.nodes:,} Nodes", [ten, extra]))
    for name, paths in cases:
        med, lo, hi, loaded = measure(crt, key, paths, tmp, args.runs)
        kept = loaded.get("kept", 0)
        per = (med - base) * 1024 / kept if kept else 0
        rows.append({"state": name, "read": loaded.get("objects"), "kept": kept, "rss_kib": med,
                     "min_kib": lo, "max_kib": hi, "bytes_per_kept_object": round(per)})
        print(f"{name}: {loaded.get('objects'):,} read, {kept:,} kept; RSS {med / 1024:.1f} MiB "
              f"({lo / 1024:.1f} – {hi / 1024:.1f}); {per / 1024:.2f} KiB per kept object above the empty state")
    print(json.dumps(rows))


if __name__ == "__main__":
    sys.exit(main())
