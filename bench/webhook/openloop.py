#!/usr/bin/env python3
"""Open-loop latency of apiload-webhook: reviews sent at fixed rates whatever the answers.

bench.py measures throughput: wrk keeps every connection busy (a closed
loop), so its latency is connections divided by throughput. The API server
does not wait for one review's answer before sending the next, so the
latency it sees at a given rate is measured here with an open loop:

  - State and requests: bench.py's (gen-scale-corpus.py --objects 12,500
    --seed 1 in static mode; 400 AdmissionReviews of bench.py's mix, made by
    bench.make_bodies with the same seed), and bench.py's start of the
    webhook (enforce mode, logs at warn to a file).
  - Load: oha (crates.io) with -q RATE and --latency-correction, so that a
    request's latency is counted from when it was due, not from when a free
    connection sent it (no coordinated omission); 512 TLS keep-alive
    connections; each request's body is a line of the body file, drawn at
    random per request (oha -Z), so the mix holds at every rate.
  - Cores: the webhook is started pinned to one core (taskset semantics via
    sched_setaffinity, inherited by all its threads, so its runtime sizes
    itself for one core), oha to the other with one runtime thread.
  - Each run lasts --warmup + --duration seconds; requests due in the first
    --warmup seconds (the 512 TLS handshakes) are left out of the figures.
    Percentiles come from every request's own times (oha --db-url), so the
    script also reports when the slow ones happened: stall episodes and the
    time between them.
  - Whether the generator keeps up: the achieved rate, and how late oha
    sent each request after it was due (send lag). A lag that grows means
    the figures are the generator's, not the webhook's.
  - Errors: oha's error distribution plus non-2xx answers.

Usage: cargo build --release --locked -p apiload-webhook
       python3 bench/webhook/openloop.py [--rates 500,1000,2000,5000] [--runs 3]
Needs oha (cargo install oha --locked --root /root/.local/oha), openssl,
PyYAML, and a machine with at least two cores.
"""

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402 - bench.py's state, bodies, certificates and start

OHA_DEFAULT = "/root/.local/oha/bin/oha"
# A request slower than this belongs to a stall episode; requests within
# EPISODE_GAP of each other belong to the same one.
SLOW_S = 0.020
EPISODE_GAP_S = 0.100


def find_tools(oha_arg):
    oha = oha_arg or (OHA_DEFAULT if os.path.exists(OHA_DEFAULT) else shutil.which("oha"))
    if not oha or not os.access(oha, os.X_OK):
        sys.exit(f"oha not found (looked at {oha_arg or OHA_DEFAULT} and on PATH): "
                 "cargo install oha --locked --root /root/.local/oha, or pass --oha PATH")
    if not shutil.which("openssl"):
        sys.exit("openssl not found on PATH: the benchmark makes its serving certificate with it "
                 "(apt-get install openssl)")
    version = subprocess.run([oha, "--version"], capture_output=True, text=True).stdout.strip()
    help_text = subprocess.run([oha, "--help"], capture_output=True, text=True).stdout
    for flag in ("--latency-correction", "--db-url", "-Z", "--worker-threads", "--output-format"):
        if flag not in help_text:
            sys.exit(f"{oha} ({version}) has no {flag} option; this benchmark needs oha 1.16 or later")
    return oha, version


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-p * len(sorted_values) // 100)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def episodes(rows):
    """Stall episodes: (first due time, worst latency, requests) of slow requests close in time."""
    slow = sorted((due, lat) for due, lat in rows if lat > SLOW_S)
    out = []
    for due, lat in slow:
        if out and due - out[-1]["last"] <= EPISODE_GAP_S:
            e = out[-1]
            e["last"], e["worst"], e["n"] = due, max(e["worst"], lat), e["n"] + 1
        else:
            out.append({"at": due, "last": due, "worst": lat, "n": 1})
    return out


def sched_wait_seconds(pid):
    """Seconds the process's threads spent runnable but waiting for a CPU
    (/proc/PID/task/*/schedstat, second field): time other processes on the
    webhook's core took from it."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[1])
        except (OSError, IndexError, ValueError):
            pass  # a thread that ended meanwhile
    return total / 1e9


def cpu_seconds(pid):
    """User + system CPU seconds of a process, all threads."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_oha(oha, cpu, addr, rate, conns, seconds, bodies_file, work, n, realtime):
    db = os.path.join(work, f"run-{rate}-{n}.db")
    out = os.path.join(work, f"run-{rate}-{n}.json")
    cmd = (["chrt", "-f", "10"] if realtime else []) + ["taskset", "-c", str(cpu), oha, "-z", f"{seconds}s", "-w", "-c", str(conns), "-q", str(rate),
           "--latency-correction", "--no-tui", "--insecure", "--worker-threads", "1", "-m", "POST",
           "-T", "application/json", "-Z", bodies_file, "--db-url", db, "--output-format", "json", "-o", out,
           f"https://{addr}/validate"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0 or not os.path.exists(out):
        sys.exit(f"oha failed ({run.returncode}): {' '.join(cmd)}\n{run.stdout}\n{run.stderr}")
    summary = json.load(open(out))
    rows = sqlite3.connect(db).execute("SELECT start_latency_correction, start, end, status FROM oha").fetchall()
    os.remove(db)
    return summary, rows


def measure(oha, args, addr, pid, rate, bodies_file, work, n):
    load_before = os.getloadavg()[0]
    cpu_before = cpu_seconds(pid)
    wait_before = sched_wait_seconds(pid)
    summary, rows = run_oha(oha, args.load_cpu, addr, rate, args.connections, args.warmup + args.duration,
                            bodies_file, work, n, args.realtime)
    webhook_cpu = (cpu_seconds(pid) - cpu_before) / (args.warmup + args.duration)
    runqueue_wait = (sched_wait_seconds(pid) - wait_before) / (args.warmup + args.duration)
    load_after = os.getloadavg()[0]
    kept = [(due, start, end, status) for due, start, end, status in rows if due is not None and due >= args.warmup]
    latencies = sorted(end - due for due, _, end, _ in kept)
    lags = sorted(start - due for due, start, _, _ in kept)
    errors = sum(summary.get("errorDistribution", {}).values())
    non2xx = sum(1 for *_, status in kept if not 200 <= status < 300)
    eps = episodes([(due, end - due) for due, _, end, _ in kept])
    starts = [e["at"] for e in eps]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    ms = 1000.0
    return {
        "rate": rate,
        "requests": len(kept),
        "achieved_per_s": len(kept) / args.duration,
        "p50_ms": percentile(latencies, 50) * ms,
        "p99_ms": percentile(latencies, 99) * ms,
        "p999_ms": percentile(latencies, 99.9) * ms,
        "max_ms": (latencies[-1] if latencies else float("nan")) * ms,
        "send_lag_p99_ms": percentile(lags, 99) * ms,
        "send_lag_max_ms": (lags[-1] if lags else float("nan")) * ms,
        "errors": errors,
        "error_kinds": summary.get("errorDistribution", {}),
        "non2xx": non2xx,
        "webhook_cpu": webhook_cpu,
        "runqueue_wait": runqueue_wait,
        "loadavg": [load_before, load_after],
        "episodes": [{"at_s": round(e["at"], 3), "worst_ms": round(e["worst"] * ms, 1), "requests": e["n"]}
                     for e in eps],
        "episode_gap_median_s": statistics.median(gaps) if gaps else None,
    }


def spread(runs, key):
    values = sorted(r[key] for r in runs)
    return statistics.median(values), values[0], values[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=12500)
    ap.add_argument("--bodies", type=int, default=400)
    ap.add_argument("--rates", default="500,1000,2000,5000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=20, help="measured seconds per run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds at the start of each run left out")
    ap.add_argument("--connections", type=int, default=512)
    ap.add_argument("--webhook-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("--oha", help=f"path of oha (default {OHA_DEFAULT}, else PATH)")
    ap.add_argument("--binary", default=bench.BINARY, help="the apiload-webhook to measure (default: this tree's)")
    ap.add_argument("--one-deployment", action="store_true",
                    help="every request the same Deployment UPDATE review (the issue's first measurement)")
    ap.add_argument("--realtime", action="store_true",
                    help="run the webhook and oha at SCHED_FIFO priority 10, so that other processes on their cores "
                         "do not take them (to tell the webhook's own stalls from the machine's)")
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "target", "bench-webhook-openloop.json"))
    args = ap.parse_args()
    oha, oha_version = find_tools(args.oha)
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: cargo build --release --locked -p apiload-webhook")
    cpus = os.sched_getaffinity(0)
    if {args.webhook_cpu, args.load_cpu} - cpus or args.webhook_cpu == args.load_cpu:
        sys.exit(f"--webhook-cpu {args.webhook_cpu} and --load-cpu {args.load_cpu} must be two different "
                 f"cores of this process's {sorted(cpus)}")
    generator = os.path.join(bench.SHARED, "tools", "gen-scale-corpus.py")
    if not os.path.exists(generator):
        sys.exit(f"skipped: {generator} is absent (../shared is needed for the cluster state)")
    bench.BINARY = args.binary
    work = tempfile.mkdtemp(prefix="apiload-webhook-openloop-")
    proc = None
    try:
        state = os.path.join(work, "state")
        subprocess.run([sys.executable, generator, "--objects", str(args.objects), "--files", "200", "--seed", "1",
                        "--out", state], check=True, capture_output=True)
        bodies_dir = os.path.join(work, "bodies")
        os.makedirs(bodies_dir)
        paths, sizes, kinds = bench.make_bodies(state, bodies_dir, args.bodies, random.Random(7))
        if args.one_deployment:
            deployment = next(p for p in paths
                              if b'"kind": "Deployment"' in open(p, "rb").read(300) and
                              b'"operation": "UPDATE"' in open(p, "rb").read())
            paths, sizes, kinds = [deployment], [os.path.getsize(deployment)], {"Deployment": 1}
        bodies_file = os.path.join(work, "bodies.lines")
        with open(bodies_file, "wb") as f:
            for p in paths:
                body = open(p, "rb").read()
                if b"\n" in body:
                    sys.exit(f"{p}: a review body spans lines; oha -Z sends one line per request")
                f.write(body + b"\n")
        crt, key = bench.certificates(work)
        # The webhook inherits this affinity (all its threads, from the start).
        os.sched_setaffinity(0, {args.webhook_cpu})
        if args.realtime:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        proc, addr, _metrics, loaded = bench.start(crt, key, state, os.path.join(work, "webhook.log"))
        if args.realtime:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        os.sched_setaffinity(0, {args.load_cpu})
        print(f"{args.binary}; oha {oha_version}; {os.cpu_count()} cores; webhook on core {args.webhook_cpu}, "
              f"oha on core {args.load_cpu}" + (", both at SCHED_FIFO 10" if args.realtime else ""))
        print(f"state: {loaded['objects']} objects read, {loaded['kept']} kept; {len(paths)} review bodies, "
              f"median {statistics.median(sizes)} bytes, max {max(sizes)}; mix {kinds}")
        print(f"{args.connections} connections, {args.runs} runs of {args.duration} s (+{args.warmup} s left out) "
              f"per rate")
        results = {}
        for rate in [int(r) for r in args.rates.split(",")]:
            runs = [measure(oha, args, addr, proc.pid, rate, bodies_file, work, n) for n in range(args.runs)]
            if proc.poll() is not None:
                sys.exit("the webhook exited during the runs:\n" + open(os.path.join(work, "webhook.log")).read())
            results[rate] = runs
            line = [f"{rate:>5}/s:"]
            for key, name in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"), ("max_ms", "max")):
                med, lo, hi = spread(runs, key)
                line.append(f"{name} {med:.2f} ms ({lo:.2f}–{hi:.2f})")
            ach, _, _ = spread(runs, "achieved_per_s")
            lag, _, lag_hi = spread(runs, "send_lag_p99_ms")
            cpu, _, _ = spread(runs, "webhook_cpu")
            wait, _, _ = spread(runs, "runqueue_wait")
            loads = [x for r in runs for x in r["loadavg"]]
            line.append(f"| achieved {ach:.0f}/s, send lag p99 {lag:.2f} ms (max over runs {lag_hi:.2f}), "
                        f"webhook CPU {cpu * 100:.0f}% of its core, waiting for it {wait * 1000:.0f} ms/s, errors {sum(r['errors'] for r in runs)}, "
                        f"non-2xx {sum(r['non2xx'] for r in runs)}, load average {min(loads):.1f}–{max(loads):.1f}")
            print(" ".join(line))
            for n, r in enumerate(runs):
                eps = r["episodes"]
                worst = sorted(eps, key=lambda e: -e["worst_ms"])[:3]
                print(f"         run {n + 1}: {len(eps)} stall episodes (a request over {SLOW_S * 1000:.0f} ms), "
                      f"median gap {r['episode_gap_median_s'] or 0:.2f} s; worst {worst}"
                      + (f"; errors {r['error_kinds']}" if r["errors"] else ""))
        sustained = [rate for rate, runs in results.items() if spread(runs, "p99_ms")[0] < 10.0]
        best = max(sustained) if sustained else None
        print(f"highest rate measured with a median p99 under 10 ms: {f'{best}/s' if best else 'none'}")
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        json.dump({"binary": args.binary, "oha": oha_version, "connections": args.connections,
                   "bodies": len(paths), "results": results, "highest_rate_p99_under_10ms": best},
                  open(args.out, "w"), indent=1)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
