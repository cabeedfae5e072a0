#!/usr/bin/env python3
"""Runs the GitHub Action (action.yml) the way a runner runs a composite
action, on a fresh repository with a risky manifest, and checks what a user
gets: the install step builds apiload, the lint step writes SARIF (paths
relative to the repository, for code scanning), annotations and the job
summary, and the job fails at `fail-on`.

    python3 .ci/action.py

The `uses:` step (github/codeql-action/upload-sarif) cannot run off GitHub:
its input, the SARIF file, is checked instead. Expressions `${{ … }}` are
evaluated for the forms action.yml uses (inputs, github.*, runner.temp,
steps.<id>.outputs.<name>, `==`, `&&`, always()). Needs PyYAML (a dependency
of pre-commit, which .ci/run installs first).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def evaluate(expr: str, ctx: dict) -> object:
    expr = expr.strip()
    if "&&" in expr:
        return all(evaluate(part, ctx) for part in expr.split("&&"))
    if "==" in expr:
        left, right = expr.split("==", 1)
        return str(evaluate(left, ctx)) == str(evaluate(right, ctx))
    if expr == "always()":
        return True
    if expr.startswith("'") and expr.endswith("'"):
        return expr[1:-1]
    value: object = ctx
    for part in expr.split("."):
        value = value[part]  # type: ignore[index]
    return value


def substitute(text: str, ctx: dict) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate(m.group(1), ctx)), text)


def main() -> int:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    work = Path(tempfile.mkdtemp(prefix="apiload-action-"))
    workspace, temp = work / "repo", work / "runner-temp"
    (workspace / "deploy").mkdir(parents=True)
    temp.mkdir()
    shutil.copy(REPO / "testdata/rules/per-node-cluster-watch/fires.yaml", workspace / "deploy/agent.yaml")
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    inputs = {k: v.get("default", "") for k, v in action["inputs"].items()}
    inputs["paths"] = "deploy"
    summary = work / "step-summary.md"
    summary.write_text("")
    ctx: dict = {
        "inputs": inputs,
        "github": {"action_path": str(REPO), "workspace": str(workspace)},
        "runner": {"temp": str(temp)},
        "steps": {},
    }
    failures = []
    exit_codes = {}
    stdout_of = {}
    for step in action["runs"]["steps"]:
        name = step.get("name", step.get("id", "?"))
        if "if" in step and not evaluate(step["if"].strip().removeprefix("${{").removesuffix("}}"), ctx):
            continue
        if "uses" in step:
            sarif = Path(substitute(step["with"]["sarif_file"], ctx))
            if not sarif.is_file():
                failures.append(f"{name}: no SARIF at {sarif}")
                continue
            log = json.loads(sarif.read_text())
            run = log["runs"][0]
            uris = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
            if not any(u == {"uri": "deploy/agent.yaml", "uriBaseId": "%SRCROOT%"} for u in uris):
                failures.append(f"{name}: SARIF locations are not relative to the repository: {uris}")
            if run["originalUriBaseIds"]["%SRCROOT%"]["uri"] != workspace.as_uri() + "/":
                failures.append(f"{name}: %SRCROOT% is {run['originalUriBaseIds']}")
            continue
        output = work / f"output-{len(exit_codes)}"
        output.write_text("")
        env = dict(os.environ, GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary), GITHUB_WORKSPACE=str(workspace))
        # `cargo install` builds in the checkout's target/action, kept between
        # runs, instead of a temporary folder. (Not pre-commit's target:
        # build scripts compiled for another checkout's path cannot be reused.)
        env.setdefault("CARGO_TARGET_DIR", str(REPO / "target/action"))
        script = substitute(step["run"], ctx)
        print(f"action.py: step {name}", flush=True)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=workspace,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        sys.stdout.write(proc.stdout)
        exit_codes[name], stdout_of[name] = proc.returncode, proc.stdout
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        if "id" in step:
            ctx["steps"][step["id"]] = {"outputs": outputs}
    lint = stdout_of.get("Lint", "")
    if "::error file=deploy/agent.yaml,line=14," not in lint:
        failures.append(f"Lint: no annotation on deploy/agent.yaml:14 in:\n{lint}")
    if ctx["steps"].get("lint", {}).get("outputs", {}).get("status") != "1":
        failures.append(f"Lint: status {ctx['steps'].get('lint')} (expected 1: an error finding)")
    if not summary.read_text().startswith("### apiload: 1 error"):
        failures.append(f"the job summary is: {summary.read_text()[:200]!r}")
    if exit_codes.get("Install apiload") != 0:
        failures.append("Install apiload failed")
    if exit_codes.get("Result") != 1:
        failures.append(f"Result exited {exit_codes.get('Result')}, expected 1 (fail-on error)")
    shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print(f"action.py: FAIL: {f}", file=sys.stderr)
    print("action.py: " + ("the action works" if not failures else f"{len(failures)} failures"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
