#!/usr/bin/env python3
"""Latency of `apiload lsp`: from `didChange` to `publishDiagnostics`.

    cargo build --release --locked -p apiload
    python3 bench/lsp/bench.py [--bin target/release/apiload] [--edits 40] [--runs 3]
                               [--files 1000 | --objects 20000] [--big-lines 5000] [--breakdown]

Generates a workspace with gen_workspace.py (FILES files, or as many as
OBJECTS objects take, one of them a manifest of BIG_LINES lines), starts the server as an editor would (client
watches files, UTF-16 positions), waits until the workspace is analysed, opens
the big manifest, then sends EDITS full-text changes to it, one at a time,
each after the previous one's diagnostics arrived and a pause (a person
typing, not a burst that the server would coalesce). Two kinds alternate:

- role: a ClusterRole in the big file drops or regains `watch`: the findings
  of its DaemonSet change.
- comment: a comment line changes: the findings stay the same (the server
  still re-parses the file, re-runs the engine over the workspace and
  publishes for the new version).

The clock starts just before the didChange bytes are written and stops when
the publishDiagnostics for that version has been read (before it is parsed).
Each of RUNS runs starts a new server. Prints per run and kind the median,
90th percentile and maximum, then the median of the run medians and p90s with
their min–max; the server's peak resident memory (VmHWM of /proc/PID/status,
read just before shutdown); and the server's own breakdown
(APILOAD_LSP_TIMINGS) when --breakdown is given: how many edits took the
incremental path, how many fell back to a full analysis and why.
"""

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def file_uri(path):
    out = "file://"
    for b in path.encode():
        c = chr(b)
        out += c if (c.isalnum() and b < 128) or c in "-._~/" else "%%%02X" % b
    return out


class Client:
    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=env.pop("_stderr"), env=env)
        self.messages = queue.Queue()
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self.messages.put((time.perf_counter(), None))
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = out.read(length)
            self.messages.put((time.perf_counter(), body))

    def send(self, msg):
        body = json.dumps(msg).encode()
        frame = b"Content-Length: %d\r\n\r\n" % len(body) + body
        t = time.perf_counter()
        self.proc.stdin.write(frame)
        self.proc.stdin.flush()
        return t

    def request(self, method, params):
        i = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == i and "method" not in m)[1]

    def notify(self, method, params):
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, pred, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit("timed out waiting for the server")
            t, body = self.messages.get(timeout=left)
            if body is None:
                raise SystemExit("the server exited")
            m = json.loads(body)
            if "id" in m and "method" in m:  # a request from the server
                self.send({"jsonrpc": "2.0", "id": m["id"], "result": None})
            if pred(m):
                return t, m


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def p90(ts):
    ts = sorted(ts)
    return ts[min(len(ts) - 1, int(round(0.9 * (len(ts) - 1))))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=os.path.join(HERE, "../../target/release/apiload"))
    p.add_argument("--edits", type=int, default=40)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--objects", type=int, help="size the workspace by objects (overrides --files)")
    p.add_argument("--big-lines", type=int, default=5000)
    p.add_argument("--pause", type=float, default=0.15, help="seconds between edits")
    p.add_argument("--breakdown", action="store_true")
    p.add_argument("--perf", metavar="FILE", help="record the server with `perf record -g` during the edits only")
    a = p.parse_args()

    root = tempfile.mkdtemp(prefix="apiload-lsp-bench-")
    size = ["--objects", str(a.objects)] if a.objects else ["--files", str(a.files)]
    subprocess.run([sys.executable, os.path.join(HERE, "gen_workspace.py"), root, *size,
                    "--big-lines", str(a.big_lines)], check=True)
    files = sum(len(fs) for _, _, fs in os.walk(root))
    runs = [run(a, root, files) for _ in range(a.runs)]
    if a.runs > 1:
        for kind in ("role", "comment"):
            meds = [r[kind][0] for r in runs]
            p90s = [r[kind][1] for r in runs]
            print("over %d runs, %-7s edits: median of medians %.1f ms (%.1f–%.1f), median p90 %.1f ms (%.1f–%.1f)"
                  % (a.runs, kind, statistics.median(meds), min(meds), max(meds),
                     statistics.median(p90s), min(p90s), max(p90s)))
        hwm = [r["hwm"] for r in runs if r["hwm"]]
        if hwm:
            print("server peak RSS (VmHWM): median %.0f MiB (%.0f–%.0f)"
                  % (statistics.median(hwm) / 1024, min(hwm) / 1024, max(hwm) / 1024))
    shutil.rmtree(root)


def run(a, root, files):
    big = os.path.join(root, "platform", "big.yaml")
    text = open(big).read()
    lines = text.count("\n")
    role = '  resources: ["pods", "services"]\n  verbs: ["get", "list", "watch"]'
    assert role in text
    edited_role = text.replace(role, role.replace(', "watch"', ""), 1)
    edited_comment = text.replace("# Source: platform/templates/agent-000.yaml", "# Source: platform/templates/agent-000.yaml (edited)", 1)

    env = dict(os.environ)
    log = tempfile.NamedTemporaryFile(prefix="apiload-lsp-bench-", suffix=".log", delete=False)
    env["_stderr"] = log
    if a.breakdown:
        env["APILOAD_LSP_TIMINGS"] = "1"
    c = Client([a.bin, "lsp"], env)
    t_start = time.perf_counter()
    c.request("initialize", {
        "processId": os.getpid(),
        "rootUri": file_uri(root),
        "workspaceFolders": [{"uri": file_uri(root), "name": "bench"}],
        "capabilities": {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}},
    })
    c.notify("initialized", {})
    t_loaded, m = c.wait(lambda m: m.get("method") == "window/logMessage" and "workspace analysed" in m["params"]["message"])
    print(m["params"]["message"])
    print("workspace: %d files, the edited manifest %d lines, %d bytes; loaded and analysed %.0f ms after start"
          % (files, lines, len(text.encode()), (t_loaded - t_start) * 1000))

    uri = file_uri(big)
    version = 1
    c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}})
    c.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
           and m["params"].get("version") == 1)

    recorder = None
    if a.perf:
        recorder = subprocess.Popen(["perf", "record", "-F", "4000", "-g", "--call-graph", "dwarf,32768", "-o", a.perf,
                                     "-p", str(c.proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
    times = {"role": [], "comment": []}
    findings = {}
    for i in range(a.edits):
        kind = "role" if i % 2 == 0 else "comment"
        # role edits alternate between dropping and restoring `watch`.
        if kind == "role":
            new = edited_role if (i // 2) % 2 == 0 else text
        else:
            new = edited_comment if (i // 2) % 2 == 0 else text
        version += 1
        v = version
        msg = {"jsonrpc": "2.0", "method": "textDocument/didChange",
               "params": {"textDocument": {"uri": uri, "version": v}, "contentChanges": [{"text": new}]}}
        body = json.dumps(msg).encode()
        frame = b"Content-Length: %d\r\n\r\n" % len(body) + body
        t0 = time.perf_counter()
        c.proc.stdin.write(frame)
        c.proc.stdin.flush()
        t1, m = c.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
                       and m["params"].get("version") == v)
        times[kind].append((t1 - t0) * 1000)
        findings.setdefault(kind, set()).add(len(m["params"]["diagnostics"]))
        time.sleep(a.pause)

    if recorder:
        recorder.send_signal(2)
        recorder.wait(timeout=120)
    hwm = vm_hwm_kib(c.proc.pid)
    c.request("shutdown", None)
    c.notify("exit", None)
    c.proc.wait(timeout=30)

    result = {"hwm": hwm}
    for kind, ts in times.items():
        ts = sorted(ts)
        result[kind] = (statistics.median(ts), p90(ts))
        print("didChange -> publishDiagnostics, %-7s edits: n=%d median %.1f ms, p90 %.1f ms, max %.1f ms (findings in the file: %s)"
              % (kind, len(ts), statistics.median(ts), p90(ts), ts[-1], sorted(findings[kind])))
    if hwm:
        print("server peak RSS (VmHWM): %.0f MiB" % (hwm / 1024))
    log.close()
    if a.breakdown:
        lines = open(log.name).read().splitlines()
        passes = [l for l in lines if " pass " in l]
        fallbacks = [l for l in lines if "full analysis:" in l]
        print("server breakdown (APILOAD_LSP_TIMINGS): %d incremental passes, %d full passes after an edit"
              % (sum("incremental pass" in l for l in passes), len(fallbacks)))
        for l in sorted(set(l.split("full analysis:", 1)[1].strip() for l in fallbacks)):
            print("  fell back: " + l)
        for l in [l for l in lines if " pass " in l or "parsed" in l][-6:]:
            print("  " + l.strip())
    os.unlink(log.name)
    return result


if __name__ == "__main__":
    main()
