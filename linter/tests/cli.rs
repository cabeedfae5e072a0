//! The command line as users and scripts see it: exit codes, stdin, formats.

mod common;

use common::*;

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(rel)
}

#[test]
fn exit_codes_follow_the_contract() {
    let risky = testdata("rules/per-node-cluster-watch/fires.yaml");
    let clean = testdata("rules/per-node-cluster-watch/passes.yaml");
    let code = |args: &[&str], path: &Path| apiload().arg("lint").args(args).arg(path).output().unwrap().status.code();
    assert_eq!(code(&[], &risky), Some(1));
    assert_eq!(code(&["--fail-on", "never"], &risky), Some(0));
    assert_eq!(code(&[], &clean), Some(0));
    // A warning fails only when asked to.
    let warn = testdata("rules/per-node-capability-only/fires.yaml");
    assert_eq!(code(&[], &warn), Some(0));
    assert_eq!(code(&["--fail-on", "warning"], &warn), Some(1));
    assert_eq!(code(&[], Path::new("/definitely/not/here.yaml")), Some(2));
    let out = apiload().args(["lint", "--format", "nope", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_missing_path_is_reported_and_the_others_are_still_linted() {
    let risky = testdata("rules/per-node-cluster-watch/fires.yaml");
    let out = apiload().args(["lint", "--format", "json", "/no/such/file.yaml"]).arg(&risky).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.yaml"));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["diagnostics"].as_array().unwrap().iter().any(|d| d["rule"] == "AL101"));
}

#[test]
fn stdin_is_read_with_dash() {
    let text = std::fs::read(testdata("rules/per-node-cluster-watch/fires.yaml")).unwrap();
    let mut child =
        apiload().args(["lint", "--format", "json", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &json["diagnostics"][0];
    assert_eq!(d["location"]["file"], "<stdin>");
    assert_eq!(d["location"]["line"], 14);
}

#[test]
fn json_output_carries_the_contract_fields() {
    let out = apiload()
        .args(["lint", "--format", "json"])
        .arg(testdata("rules/per-node-cluster-watch/fires.yaml"))
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &json["diagnostics"][0];
    for field in ["rule", "name", "category", "severity", "message", "workload", "location", "related"] {
        assert!(!d[field].is_null(), "missing {field}");
    }
    assert_eq!(d["rule"], "AL101");
    assert_eq!(d["category"], "fanout-cluster-watch");
    assert_eq!(d["severity"], "error");
    assert_eq!(
        d["workload"],
        serde_json::json!({"kind": "DaemonSet", "namespace": "monitoring", "name": "telemetry-agent"})
    );
    assert_eq!(d["location"]["line"], 14);
    assert_eq!(d["location"]["column"], 27);
    assert!(
        d["related"].as_array().unwrap().iter().all(|r| r["line"].as_u64().unwrap() > 0 && r["message"].is_string())
    );
}

#[test]
fn namespace_flag_sets_the_default_namespace() {
    let text = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: a\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: a}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: a\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{kind: ServiceAccount, name: default, namespace: prod}]\n";
    let run = |ns: &str| {
        let mut child = apiload()
            .args(["lint", "--format", "json", "-n", ns, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert!(run("default")["diagnostics"].as_array().unwrap().is_empty());
    assert_eq!(run("prod")["diagnostics"][0]["workload"]["namespace"], "prod");
}

#[test]
fn human_output_shows_the_snippet_without_color_when_piped() {
    let out = apiload().arg("lint").arg(testdata("rules/per-node-cluster-watch/fires.yaml")).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "no ANSI escapes when not a terminal");
    assert!(text.contains("serviceAccountName: telemetry-agent"));
    assert!(text.contains("AL101 per-node-cluster-watch"));
    assert!(text.contains("ClusterRoleBinding telemetry-agent binds it"));
}

#[test]
fn explain_prints_a_rule_and_rejects_unknown_ones() {
    let out = apiload().args(["explain", "AL101"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("per-node-cluster-watch") && text.contains("Why it matters"));
    let out = apiload().args(["explain", "per-node-node-watch"]).output().unwrap();
    assert!(out.status.success());
    let out = apiload().args(["explain", "AL999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_rule_reference_is_generated_and_up_to_date() {
    let out = apiload().args(["rules", "--markdown"]).output().unwrap();
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/rules.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if std::env::var_os("APILOAD_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    assert!(
        on_disk == generated,
        "docs/rules.md is stale: regenerate with `APILOAD_BLESS=1 cargo test -p apiload --test cli` or `apiload rules --markdown > docs/rules.md`"
    );
}
