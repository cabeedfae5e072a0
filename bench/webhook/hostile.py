#!/usr/bin/env python3
"""apiload-webhook under attack: normal reviews and readiness probes while 500
slowloris connections and four very large reviews hit it at once.

Method (see BENCHMARKS.md, "under attack"):
  - The webhook: the release binary, static mode on testdata/webhook/state,
    enforce mode, every limit at its default.
  - Slowloris: 500 TLS connections, each sending the start of a request's
    headers and then one more header line every second, never finishing;
    one that the webhook closes is opened again at once (an attacker keeps
    the pressure up). One process.
  - Heavy: four processes, each posting a review of a DaemonSet with N
    environment variables (default 107,000: 4.6 MB of JSON) on a new
    connection, waiting --pause seconds after each answer (default 1: four
    large reviews keep arriving together), over and over.
  - Normal: one process, one keep-alive connection, a review every 10 ms
    (about 100 per second, an API server's ordinary rate), alternating a
    DaemonSet that is allowed and one that is denied; client-side latency of
    each.
  - Probe: one process, GET /readyz on a new connection every 100 ms, as the
    kubelet's probes do.
  - After the attack is set up (3 s), everything is measured for --duration
    seconds; --runs runs; the run with the median p99 of normal reviews is
    reported, with the p99 of every run.

Usage: cargo build --release --locked -p apiload-webhook
       python3 bench/webhook/hostile.py [--runs 3] [--duration 30] [--env 160000]
Needs openssl (to make a certificate). Nothing else beyond Python 3.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import selectors
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "target", "release", "apiload-webhook")
STATE = os.path.join(ROOT, "testdata", "webhook", "state")


def review(uid, obj):
    group, _, version = obj["apiVersion"].rpartition("/")
    gvk = {"group": group, "version": version, "kind": obj["kind"]}
    req = {"uid": uid, "kind": gvk, "requestKind": gvk, "operation": "CREATE",
           "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
           "name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
           "userInfo": {"username": "bench"}, "object": obj, "oldObject": None, "dryRun": False}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}).encode()


def daemonset(name, account, env=0):
    spec = {"serviceAccountName": account,
            "containers": [{"name": "agent", "image": "registry.example.com/in-house/agent:2.3",
                            "env": [{"name": f"VAR_{i:06}", "value": f"v{i}"} for i in range(env)]}]}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "monitoring"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def slowloris(host, port, count, ready, stop, out):
    """Holds `count` connections with unfinished headers; reopens closed ones."""
    ctx = tls_context()
    sel = selectors.DefaultSelector()
    opened = reopened = 0

    def open_one():
        nonlocal opened
        s = ctx.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname="localhost")
        s.sendall(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        opened += 1
        return s

    conns = []
    for _ in range(count):
        try:
            conns.append(open_one())
        except OSError:
            pass
    ready.set()
    last_drip = time.time()
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                conns.remove(s)
                try:
                    conns.append(open_one())
                    reopened += 1
                except OSError:
                    pass
        if time.time() - last_drip >= 1.0:
            last_drip = time.time()
            for s in list(conns):
                try:
                    s.send(b"X-Drip: 1\r\n")
                except (ssl.SSLWantWriteError, BlockingIOError):
                    pass
                except OSError:
                    pass
    out.put({"slowloris_opened": opened, "slowloris_reopened": reopened, "slowloris_held_at_end": len(conns)})


def heavy(host, port, body, pause, stop, out):
    ctx = tls_context()
    latencies, decisions = [], {}
    while not stop.is_set():
        started = time.time()
        try:
            c = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
            c.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            text = r.read()
            c.close()
        except OSError as e:
            decisions["error:" + type(e).__name__] = decisions.get("error:" + type(e).__name__, 0) + 1
            continue
        latencies.append(time.time() - started)
        key = str(r.status)
        if r.status == 200:
            resp = json.loads(text)["response"]
            warning = " ".join(resp.get("warnings", []))
            key = "allowed" if resp["allowed"] else "denied"
            key += " (too big)" if "--max-object-bytes" in warning else ""
            key += " (deadline)" if "did not finish" in warning else ""
        decisions[key] = decisions.get(key, 0) + 1
        stop.wait(pause)
    out.put({"heavy_latencies": latencies, "heavy_decisions": decisions})


def normal(host, port, bodies, measure_from, stop, out):
    ctx = tls_context()
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
    latencies, errors, i = [], 0, 0
    while not stop.is_set():
        body = bodies[i % len(bodies)]
        i += 1
        started = time.time()
        try:
            c.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            c.close()
            c = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
        elapsed = time.time() - started
        if started >= measure_from.value:
            if ok:
                latencies.append(elapsed)
            else:
                errors += 1
        time.sleep(0.01)
    out.put({"normal_latencies": latencies, "normal_errors": errors})


def probe(metrics, measure_from, stop, out):
    latencies, failures = [], 0
    while not stop.is_set():
        started = time.time()
        try:
            ok = urllib.request.urlopen(f"http://{metrics}/readyz", timeout=10).status == 200
        except OSError:
            ok = False
        if started >= measure_from.value:
            latencies.append(time.time() - started)
            failures += 0 if ok else 1
        time.sleep(0.1)
    out.put({"probe_latencies": latencies, "probe_failures": failures})


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def start_webhook(work):
    key, crt = os.path.join(work, "tls.key"), os.path.join(work, "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    log_path = os.path.join(work, "webhook.log")
    proc = subprocess.Popen([BINARY, "--tls-cert-file", crt, "--tls-private-key-file", key, "--listen", "127.0.0.1:0",
                             "--metrics-listen", "127.0.0.1:0", "--cluster-state", STATE, "--mode", "enforce"],
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "RUST_LOG": "warn,apiload_webhook::run=info"})
    deadline = time.time() + 60
    while time.time() < deadline:
        for line in open(log_path):
            if '"listening"' in line:
                v = json.loads(line)
                return proc, v["review"], v["metrics"]
        time.sleep(0.1)
    proc.kill()
    sys.exit("the webhook did not start:\n" + open(log_path).read())


def one_run(review_addr, metrics, heavy_body, normal_bodies, duration, pause):
    host, port = review_addr.rsplit(":", 1)
    port = int(port)
    stop, out, ready = mp.Event(), mp.Queue(), mp.Event()
    measure_from = mp.Value("d", time.time() + 1e9)
    procs = [mp.Process(target=slowloris, args=(host, port, 500, ready, stop, out))]
    procs[0].start()
    ready.wait(120)
    procs += [mp.Process(target=heavy, args=(host, port, heavy_body, pause, stop, out)) for _ in range(4)]
    procs += [mp.Process(target=normal, args=(host, port, normal_bodies, measure_from, stop, out)),
              mp.Process(target=probe, args=(metrics, measure_from, stop, out))]
    for p in procs[1:]:
        p.start()
    time.sleep(3)
    measure_from.value = time.time()
    time.sleep(duration)
    stop.set()
    result = {}
    for _ in procs:
        part = out.get(timeout=120)
        for k, v in part.items():
            if isinstance(v, list):
                result.setdefault(k, []).extend(v)
            elif isinstance(v, dict):
                d = result.setdefault(k, {})
                for kk, vv in v.items():
                    d[kk] = d.get(kk, 0) + vv
            else:
                result[k] = result.get(k, 0) + v
    for p in procs:
        p.join(timeout=30)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=30)
    # 107,000 variables: a 4.6 MB review, the size of the outage issue's.
    ap.add_argument("--env", type=int, default=107_000)
    # Seconds each heavy client waits after an answer: 1 keeps four large
    # reviews arriving at once; 0 floods (a bandwidth attack of its own).
    ap.add_argument("--pause", type=float, default=1.0)
    args = ap.parse_args()
    if not os.path.exists(BINARY):
        sys.exit("build first: cargo build --release --locked -p apiload-webhook")
    heavy_body = review("heavy", daemonset("heavy", "collector", args.env))
    normal_bodies = [review(f"n{i}", daemonset(f"agent-{i}", ["agent", "collector"][i % 2])) for i in range(50)]
    work = tempfile.mkdtemp(prefix="apiload-webhook-hostile-")
    proc, review_addr, metrics = start_webhook(work)
    print(f"heavy review: {len(heavy_body) / 1e6:.1f} MB ({args.env} environment variables, pause {args.pause} s); "
          f"normal review: {len(normal_bodies[0])} bytes; load average before: {os.getloadavg()}")
    runs = []
    try:
        for i in range(args.runs):
            r = one_run(review_addr, metrics, heavy_body, normal_bodies, args.duration, args.pause)
            n = r.get("normal_latencies", [])
            summary = {
                "load_average": os.getloadavg()[0],
                "normal_reviews": len(n), "normal_p50_ms": pct(n, 50) * 1000, "normal_p99_ms": pct(n, 99) * 1000,
                "normal_max_ms": max(n, default=float("nan")) * 1000, "normal_errors": r.get("normal_errors", 0),
                "readyz_probes": len(r.get("probe_latencies", [])),
                "readyz_p99_ms": pct(r.get("probe_latencies", []), 99) * 1000,
                "readyz_failures": r.get("probe_failures", 0),
                "heavy_reviews": len(r.get("heavy_latencies", [])),
                "heavy_p50_ms": pct(r.get("heavy_latencies", []), 50) * 1000,
                "heavy_decisions": r.get("heavy_decisions", {}),
                "slowloris_reopened": r.get("slowloris_reopened", 0),
                "slowloris_held_at_end": r.get("slowloris_held_at_end", 0),
                "rss_mib": int(open(f"/proc/{proc.pid}/status").read().split("VmRSS:")[1].split()[0]) // 1024,
            }
            runs.append(summary)
            print(f"run {i + 1}: " + json.dumps(summary))
        runs.sort(key=lambda s: s["normal_p99_ms"])
        med = runs[len(runs) // 2]
        peak = int(open(f"/proc/{proc.pid}/status").read().split("VmHWM:")[1].split()[0]) // 1024
        print(f"median run: normal p50 {med['normal_p50_ms']:.1f} ms, p99 {med['normal_p99_ms']:.1f} ms "
              f"(p99 of the runs: {[round(r['normal_p99_ms'], 1) for r in runs]}), errors {med['normal_errors']}; "
              f"/readyz p99 {med['readyz_p99_ms']:.1f} ms, failures {med['readyz_failures']}; "
              f"heavy reviews {med['heavy_reviews']} (p50 {med['heavy_p50_ms']:.0f} ms) {med['heavy_decisions']}; "
              f"slowloris connections reopened {med['slowloris_reopened']}; peak RSS {peak} MiB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
