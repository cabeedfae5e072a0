//! The generated corpus of `../shared/tools/gen-scale-corpus.py` (10,000
//! objects, RBAC scattered across 200 files): every DaemonSet judged exactly.
//!
//! The generator's ground truth predates per-collection scoping: it takes a
//! node name handed to the agent as scoping *every* grant, and calls a
//! DaemonSet risky only by its pod grant. apiload follows the API server
//! instead (a node name filters Pods and Nodes, never Namespaces or
//! Services; the host network gives a node name too), so the expectation
//! here is derived from each DaemonSet's recorded variant — what it is
//! granted and told — with those semantics. `eval-scale.py`'s own figures
//! are printed for comparison.

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

type Key = (String, String, String);

fn key(v: &Value) -> Key {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    (s("kind"), s("namespace"), s("name"))
}

/// Whether a generated DaemonSet of `variant` lists or watches a collection
/// that grows with the cluster across it with nothing that can scope it.
/// `None` where the answer depends on what else shares its ServiceAccount.
fn expected_cluster_watch(variant: &str, host_network: bool) -> Option<bool> {
    match variant {
        // pods, namespaces and nodes (or `view`, or `*` in the core group):
        // Namespaces and Services cannot be filtered by node.
        "explicit" | "multi-subject" | "builtin-view" | "wildcard-resources" | "node-field-selector" => Some(true),
        // Pods only: scoped by `spec.nodeName` when it knows its node.
        "wildcard-verbs" => Some(!host_network),
        // The namespace's `default` ServiceAccount, maybe shared.
        "default-sa" => None,
        // Granted only in its namespace, no list/watch, no token, a binding of another namespace.
        _ => Some(false),
    }
}

#[test]
fn generated_corpus_is_judged_as_the_api_server_filters() {
    let Some(tools) = common::shared("tools") else { return };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scale-10k");
    if !dir.join("ground-truth.json").is_file() {
        let generated = Command::new("python3")
            .arg(tools.join("gen-scale-corpus.py"))
            .args(["--objects", "10000", "--files", "200", "--seed", "1", "--out"])
            .arg(&dir)
            .output()
            .expect("python3");
        assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    }
    let truth: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("ground-truth.json")).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_apiload"))
        .args(["lint", "--no-config", "--format", "json"])
        .arg(&dir)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let mut found: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    for d in report["diagnostics"].as_array().unwrap() {
        if d["workload"].is_object() {
            found.entry(key(&d["workload"])).or_default().insert(d["category"].as_str().unwrap().to_string());
        }
    }
    // hostNetwork of every generated DaemonSet, from the manifests.
    let mut host_network: BTreeMap<Key, bool> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in apiload_yaml::load_str(&text, &Default::default()).into_iter().flatten() {
            let root = doc.root;
            if root.get("kind").and_then(|k| k.as_str()) != Some("DaemonSet") {
                continue;
            }
            let meta = |k: &str| root.path(&["metadata", k]).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let hn = root.path(&["spec", "template", "spec", "hostNetwork"]).and_then(|v| v.as_bool());
            host_network.insert(("DaemonSet".into(), meta("namespace"), meta("name")), hn == Some(true));
        }
    }
    let mut wrong = Vec::new();
    let mut judged = 0;
    for group in ["risky", "safe_daemonsets"] {
        for ds in truth[group].as_array().unwrap() {
            let k = key(ds);
            let variant = ds["variant"].as_str().unwrap();
            let Some(want) = expected_cluster_watch(variant, host_network[&k]) else { continue };
            judged += 1;
            let got = found.get(&k).is_some_and(|c| c.contains("fanout-cluster-watch"));
            if got != want {
                wrong.push(format!("{k:?} ({variant}, hostNetwork {}): expected {want}, got {got}", host_network[&k]));
            }
        }
    }
    for d in truth["decoys"].as_array().unwrap() {
        judged += 1;
        if let Some(c) = found.get(&key(d)).filter(|c| c.iter().any(|c| c.starts_with("fanout-"))) {
            wrong.push(format!("decoy {:?} (a central controller) reported {c:?}", key(d)));
        }
    }
    assert!(judged > 200, "only {judged} workloads judged");
    let eval = Command::new("python3")
        .arg(tools.join("eval-scale.py"))
        .args(["--corpus"])
        .arg(&dir)
        .args([
            "--min-recall",
            "0",
            "--min-precision",
            "0",
            "--",
            env!("CARGO_BIN_EXE_apiload"),
            "lint",
            "--no-config",
            "--format",
            "json",
        ])
        .output()
        .expect("python3");
    assert!(
        wrong.is_empty(),
        "{} of {judged} judged wrongly:\n{}\n(eval-scale.py, on the generator's older truth: {})",
        wrong.len(),
        wrong.join("\n"),
        String::from_utf8_lossy(&eval.stdout).lines().last().unwrap_or_default()
    );
}
