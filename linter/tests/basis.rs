//! The basis of every finding about API calls, in the JSON and SARIF outputs
//! (docs/output.md): scripts tell a proven fan-out from a suspected one.

mod common;

use common::apiload;
use serde_json::Value;
use std::path::Path;

fn lint(format: &str, fixture: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/rules").join(fixture);
    let out = apiload().args(["lint", "--no-config", "--format", format]).arg(path).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn finding<'a>(v: &'a Value, rule: &str, workload: &str) -> &'a Value {
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule"] == rule && d["workload"]["name"] == workload)
        .unwrap_or_else(|| panic!("no {rule} on {workload} in {v:#}"))
}

#[test]
fn json_findings_say_what_they_rest_on() {
    let unverified = lint("json", "per-node-unverified-calls/fires.yaml");
    let d = finding(&unverified, "AL107", "pod-metrics");
    assert_eq!(d["basis"], "inferred");
    let pods = d["calls"].as_array().unwrap().iter().find(|c| c["resource"] == "pods").unwrap();
    assert_eq!(pods["inference"], "node-scopable");
    assert_eq!(pods["scope"], "cluster");
    assert_eq!(pods["verbs"], serde_json::json!(["list", "watch"]));

    let shown = lint("json", "per-node-cluster-watch/fires.yaml");
    let d = finding(&shown, "AL101", "telemetry-agent");
    assert_eq!(d["basis"], "inferred");
    assert!(d["calls"].as_array().unwrap().iter().all(|c| c["inference"] == "unscoped"));

    let declared = lint("json", "per-node-capability-only/fires.yaml");
    let d = finding(&declared, "AL103", "device-plugin");
    assert_eq!(d["basis"], "declared");
    let d = finding(&declared, "AL103", "pod-metrics");
    assert_eq!(d["basis"], "declared");
    assert_eq!(d["calls"][0]["scope"], "node");

    // Findings about no call carry neither field.
    let hygiene = lint("json", "grant-of-unserved-resource/fires.yaml");
    let d = &hygiene["diagnostics"][0];
    assert!(d.get("basis").is_none() && d.get("calls").is_none(), "{d:#}");
}

#[test]
fn sarif_results_carry_the_basis_in_their_properties() {
    let v = lint("sarif", "per-node-unverified-calls/fires-shared-identity.yaml");
    let result =
        v["runs"][0]["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == "AL107").expect("an AL107 result");
    assert_eq!(result["properties"]["basis"], "inferred");
    assert_eq!(result["properties"]["calls"][0]["inference"], "shared-identity");
}
