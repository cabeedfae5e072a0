#!/usr/bin/env python3
"""Latency and throughput of apiload-webhook under wrk, over HTTPS on loopback.

Method (see BENCHMARKS.md):
  - Cluster state: ../shared/tools/gen-scale-corpus.py (--objects, default
    12,500: 10,000+ objects the webhook keeps once Services are dropped),
    loaded in static mode.
  - Review bodies: AdmissionReviews shaped as the API server sends them, for
    objects of that state — DaemonSets, Deployments and StatefulSets (UPDATE,
    old and new object), ClusterRoleBindings, RoleBindings, ServiceAccounts and
    ConfigMaps — in the proportions of an ordinary rollout day. wrk cycles
    through them.
  - wrk (Debian's 4.1.0): 2 threads, N connections, 20 s per run after a 5 s
    warm-up, 3 runs per connection count; the script's done() prints p50, p99
    and requests per second; the median run is reported.
  - Peak memory: VmHWM of the webhook process at the end.

Usage: cargo build --release --locked -p apiload-webhook
       python3 bench/webhook/bench.py [--objects N] [--runs R] [--duration S]
Needs wrk and openssl (Debian packages) and PyYAML (to turn the generated
manifests into review bodies).
"""

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
BINARY = os.path.join(ROOT, "target", "release", "apiload-webhook")

LUA = r"""
local bodies = {}
local i = 0
function init(args)
  local list = io.open(args[1]):read("*a")
  for path in list:gmatch("[^\n]+") do
    local f = io.open(path, "rb"); bodies[#bodies + 1] = f:read("*a"); f:close()
  end
  i = math.random(#bodies)
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/validate", {["Content-Type"] = "application/json"}, bodies[i])
end
function done(summary, latency, requests)
  io.write(string.format("RESULT {\"p50_us\": %d, \"p99_us\": %d, \"max_us\": %d, \"requests\": %d, \"seconds\": %f, \"errors\": %d, \"non2xx\": %d}\n",
    latency:percentile(50), latency:percentile(99), latency.max, summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
"""


def load_docs(path):
    """Splits a generated file into (kind, text) documents (the generator writes block YAML)."""
    text = open(path).read()
    for doc in re.split(r"^---\s*$", text, flags=re.M):
        m = re.search(r"^kind:\s*(\S+)", doc, flags=re.M)
        if m:
            yield m.group(1), doc


def to_json(yaml_text):
    """YAML -> JSON through the project's own loader (apiload lint would be overkill): PyYAML if present."""
    import yaml  # noqa: PLC0415 - only the benchmark needs it

    return yaml.safe_load(yaml_text)


def plural(kind):
    k = kind.lower()
    return k[:-1] + "ies" if k.endswith("y") else k + "s"


def review(uid, obj, operation):
    api_version = obj["apiVersion"]
    group, version = api_version.split("/", 1) if "/" in api_version else ("", api_version)
    gvk = {"group": group, "version": version, "kind": obj["kind"]}
    gvr = {"group": group, "version": version, "resource": plural(obj["kind"])}
    req = {
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": obj["metadata"]["name"],
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller",
                     "groups": ["system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"]},
        "object": obj,
        "oldObject": obj if operation == "UPDATE" else None,
        "dryRun": False,
        "options": {"kind": "UpdateOptions" if operation == "UPDATE" else "CreateOptions",
                    "apiVersion": "meta.k8s.io/v1", "fieldManager": "argocd-controller"},
    }
    if obj["metadata"].get("namespace"):
        req["namespace"] = obj["metadata"]["namespace"]
    return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": req}


# Share of reviews per kind on an ordinary day of rollouts.
MIX = {"Deployment": 30, "DaemonSet": 15, "StatefulSet": 10, "ConfigMap": 20,
       "ServiceAccount": 10, "RoleBinding": 8, "ClusterRoleBinding": 5, "ClusterRole": 2}


def make_bodies(state_dir, out_dir, count, rng):
    by_kind = {}
    for name in sorted(os.listdir(state_dir)):
        if name.endswith(".yaml"):
            for kind, doc in load_docs(os.path.join(state_dir, name)):
                if kind in MIX:
                    by_kind.setdefault(kind, []).append(doc)
    paths, sizes, kinds = [], [], {}
    for n in range(count):
        kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        obj = to_json(rng.choice(by_kind[kind]))
        operation = "UPDATE" if rng.random() < 0.8 else "CREATE"
        body = json.dumps(review(f"bench-{n}", obj, operation)).encode()
        path = os.path.join(out_dir, f"review-{n:04}.json")
        open(path, "wb").write(body)
        paths.append(path)
        sizes.append(len(body))
        kinds[kind] = kinds.get(kind, 0) + 1
    return paths, sizes, kinds


def certificates(d):
    key, crt = os.path.join(d, "tls.key"), os.path.join(d, "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return crt, key


def start(crt, key, state, log_path):
    return start_with(crt, key, [state], log_path)


def start_with(crt, key, states, log_path):
    """Starts the webhook with its logs in a file (a pipe nobody reads would block it)."""
    log = open(log_path, "w")
    state_args = [a for s in states for a in ("--cluster-state", s)]
    proc = subprocess.Popen([BINARY, "--tls-cert-file", crt, "--tls-private-key-file", key,
                             "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                             *state_args, "--mode", "enforce"],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "RUST_LOG": "warn,apiload_webhook::run=info"})
    deadline = time.time() + 120
    while time.time() < deadline:
        loaded, listening = None, None
        for line in open(log_path):
            if "static cluster state loaded" in line:
                loaded = json.loads(line)
            if '"listening"' in line:
                listening = json.loads(line)
        if listening:
            return proc, listening["review"], listening["metrics"], loaded
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    sys.exit("the webhook did not start:\n" + open(log_path).read())


def vm(pid, field):
    return vm_kib(pid, field) // 1024  # MiB


def vm_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_wrk(addr, conns, seconds, lua, listfile):
    threads = min(2, conns)
    run = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "10s",
                          "-s", lua, f"https://{addr}/validate", "--", listfile],
                         capture_output=True, text=True)
    m = re.search(r"RESULT (\{.*\})", run.stdout)
    if run.returncode != 0 or not m:
        sys.exit(f"wrk failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / r["seconds"]
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=12500)
    ap.add_argument("--bodies", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", default="1,64,512")
    args = ap.parse_args()
    if not os.path.exists(BINARY):
        sys.exit("build first: cargo build --release --locked -p apiload-webhook")
    work = tempfile.mkdtemp(prefix="apiload-webhook-bench-")
    try:
        state = os.path.join(work, "state")
        subprocess.run([sys.executable, os.path.join(SHARED, "tools", "gen-scale-corpus.py"), "--objects",
                        str(args.objects), "--files", "200", "--seed", "1", "--out", state],
                       check=True, capture_output=True)
        bodies_dir = os.path.join(work, "bodies")
        os.makedirs(bodies_dir)
        paths, sizes, kinds = make_bodies(state, bodies_dir, args.bodies, random.Random(7))
        listfile = os.path.join(work, "bodies.txt")
        open(listfile, "w").write("\n".join(paths) + "\n")
        lua = os.path.join(work, "post.lua")
        open(lua, "w").write(LUA)
        crt, key = certificates(work)
        proc, addr, metrics, loaded = start(crt, key, state, os.path.join(work, "webhook.log"))
        print(f"state: {loaded['objects']} objects read, {loaded['kept']} kept; "
              f"{len(paths)} review bodies, median {statistics.median(sizes)} bytes, "
              f"max {max(sizes)}; mix {kinds}")
        print(f"RSS after loading: {vm(proc.pid, 'VmRSS')} MiB")
        results = {}
        for conns in [int(c) for c in args.connections.split(",")]:
            run_wrk(addr, conns, 5, lua, listfile)  # warm-up
            runs = [run_wrk(addr, conns, args.duration, lua, listfile) for _ in range(args.runs)]
            runs.sort(key=lambda r: r["p99_us"])
            med = runs[len(runs) // 2]
            results[conns] = {"runs": runs, "median": med}
            print(f"{conns:>4} connections: p50 {med['p50_us'] / 1000:.2f} ms, p99 {med['p99_us'] / 1000:.2f} ms, "
                  f"{med['rps']:.0f} req/s, errors {med['errors']}, non-2xx {med['non2xx']} "
                  f"(p99 of the runs: {[round(r['p99_us'] / 1000, 2) for r in runs]} ms; "
                  f"req/s: {[round(r['rps']) for r in runs]})")
        peak = vm(proc.pid, "VmHWM")
        text = urllib.request.urlopen(f"http://{metrics}/metrics").read().decode()
        agg = {}
        for m in re.finditer(r'apiload_reviews_total\{[^}]*decision="(\w+)"\} (\S+)', text):
            agg[m.group(1)] = agg.get(m.group(1), 0) + int(float(m.group(2)))
        print(f"peak RSS (VmHWM): {peak} MiB; decisions over all runs: {agg}")
        proc.terminate()
        proc.wait(timeout=30)
        json.dump({"results": results, "peak_rss_mib": peak, "decisions": agg},
                  open(os.path.join(ROOT, "target", "bench-webhook.json"), "w"), indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
