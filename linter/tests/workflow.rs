//! How teams adopt apiload: configuration files, baselines, Helm output on stdin.

mod common;

use common::{scratch, shared};

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `apiload` with a fixed date, so that exemption expiry does not depend on the clock.
fn apiload() -> Command {
    let mut c = common::apiload();
    c.env("APILOAD_TODAY", "2026-01-01");
    c
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(rel)
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn rules(v: &Value) -> Vec<String> {
    v["diagnostics"].as_array().unwrap().iter().map(|d| d["rule"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_configuration_file_is_found_upward_and_applied() {
    let dir = scratch("config-upward");
    std::fs::create_dir_all(dir.join("charts/agent")).unwrap();
    std::fs::copy(testdata("rules/per-node-cluster-watch/fires.yaml"), dir.join("charts/agent/ds.yaml")).unwrap();
    std::fs::write(dir.join(".apiload.yaml"), "failOn: never\nrules:\n  AL401: off\n").unwrap();
    let out =
        apiload().args(["lint", "--format", "json", "ds.yaml"]).current_dir(dir.join("charts/agent")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "failOn: never");
    let v = json(&out);
    assert!(rules(&v).contains(&"AL101".to_string()) && !rules(&v).contains(&"AL401".to_string()), "{:?}", rules(&v));
    // --no-config ignores it.
    let out = apiload()
        .args(["lint", "--no-config", "--format", "json", "ds.yaml"])
        .current_dir(dir.join("charts/agent"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(rules(&json(&out)).contains(&"AL401".to_string()));
}

#[test]
fn a_bad_configuration_is_a_usage_error_with_its_position() {
    let dir = scratch("config-bad");
    let cfg = dir.join("apiload.yaml");
    std::fs::write(&cfg, "rules:\n  AL101: off\n  AL999: warning\n").unwrap();
    let out = apiload().args(["lint", "--config"]).arg(&cfg).arg(testdata("examples")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apiload.yaml:3:3: invalid configuration: no rule `AL999`"), "{err}");
    std::fs::write(&cfg, "exemptions:\n- match: {kind: DaemonSet}\n  rules: [AL101]\n").unwrap();
    let out = apiload().args(["lint", "--config"]).arg(&cfg).arg(testdata("examples")).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("apiload.yaml:2:3: invalid configuration: an exemption needs a `reason`")
    );
}

#[test]
fn config_exemptions_for_a_third_party_chart_and_their_expiry() {
    let dir = scratch("config-exempt");
    let cfg = dir.join("apiload.yaml");
    std::fs::write(
        &cfg,
        "exemptions:\n- match: {kind: DaemonSet, namespace: kube-system, name: cilium}\n  rules: [\"*\"]\n  reason: CNI, budgeted in CAP-9\n  expires: 2026-06-30\n",
    )
    .unwrap();
    let corpus = testdata("rules/unbounded-client/fires.yaml");
    let out = apiload().args(["lint", "--format", "json", "--config"]).arg(&cfg).arg(&corpus).output().unwrap();
    let v = json(&out);
    assert!(v["diagnostics"].as_array().unwrap().iter().all(|d| d["workload"]["name"] != "cilium"));
    assert!(v["summary"]["suppressed"].as_u64().unwrap() >= 1);
    let out = apiload()
        .env("APILOAD_TODAY", "2026-07-01")
        .args(["lint", "--format", "json", "--config"])
        .arg(&cfg)
        .arg(&corpus)
        .output()
        .unwrap();
    let v = json(&out);
    assert!(rules(&v).contains(&"AL005".to_string()));
    assert!(v["diagnostics"].as_array().unwrap().iter().any(|d| d["workload"]["name"] == "cilium"));
}

#[test]
fn a_baseline_hides_old_findings_and_shows_new_ones() {
    let dir = scratch("baseline");
    let old = testdata("rules/per-node-cluster-watch/fires.yaml");
    let baseline = dir.join("baseline.json");
    let out = apiload().args(["lint", "--no-config", "--write-baseline"]).arg(&baseline).arg(&old).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Same input: nothing new, exit 0.
    let out = apiload()
        .args(["lint", "--no-config", "--format", "json", "--baseline"])
        .arg(&baseline)
        .arg(&old)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert!(rules(&v).is_empty() && v["summary"]["baselined"].as_u64().unwrap() >= 1);
    // Lines shift and the cluster grows: still the same findings.
    let shifted = dir.join("shifted.yaml");
    std::fs::write(&shifted, format!("# a new comment\n\n{}", std::fs::read_to_string(&old).unwrap())).unwrap();
    let out = apiload()
        .args(["lint", "--no-config", "--nodes", "3000", "--baseline"])
        .arg(&baseline)
        .arg(&shifted)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // A new risky DaemonSet is reported.
    let new = testdata("rules/per-node-node-watch/fires.yaml");
    let out = apiload()
        .args(["lint", "--no-config", "--format", "json", "--baseline"])
        .arg(&baseline)
        .arg(&shifted)
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let names: Vec<&str> =
        v["diagnostics"].as_array().unwrap().iter().filter_map(|d| d["workload"]["name"].as_str()).collect();
    assert!(names.contains(&"route-agent") && !names.contains(&"telemetry-agent"), "{names:?}");
    // A baseline that is not one is a usage error.
    std::fs::write(&baseline, "{\"not\": 1}").unwrap();
    let out = apiload().args(["lint", "--no-config", "--baseline"]).arg(&baseline).arg(&old).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `helm template … | apiload lint -` on every chart of the corpus: the same
/// findings as linting the file, attributed to the templates Helm names.
#[test]
fn helm_output_on_stdin_names_the_templates() {
    let Some(corpus) = shared("corpus") else { return };
    let mut cases: Vec<_> = std::fs::read_dir(&corpus).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    let mut attributed = 0;
    for case in cases.iter().filter(|c| c.join("manifest.yaml").is_file()) {
        let manifest = case.join("manifest.yaml");
        let text = std::fs::read(&manifest).unwrap();
        let direct =
            json(&apiload().args(["lint", "--no-config", "--format", "json"]).arg(&manifest).output().unwrap());
        let mut child = apiload()
            .args(["lint", "--no-config", "--format", "json", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&text).unwrap();
        let piped = json(&child.wait_with_output().unwrap());
        let key = |v: &Value| -> Vec<(String, String, String)> {
            let mut k: Vec<_> = v["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| (d["rule"].to_string(), d["workload"].to_string(), d["message"].to_string()))
                .collect();
            k.sort();
            k
        };
        assert_eq!(key(&direct), key(&piped), "{}", case.display());
        for d in piped["diagnostics"].as_array().unwrap() {
            let file = d["location"]["file"].as_str().unwrap();
            if String::from_utf8_lossy(&text).contains("# Source: ") {
                assert!(file.contains("/templates/") || file.ends_with(".yaml"), "{file}");
                assert_ne!(file, "<stdin>", "{}", case.display());
                assert!(d["location"]["input_line"].as_u64().unwrap() > d["location"]["line"].as_u64().unwrap());
                attributed += 1;
            }
        }
    }
    assert!(attributed > 10, "findings attributed to templates: {attributed}");
}
