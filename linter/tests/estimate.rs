//! `apiload estimate`: the numbers grow with cluster size as the model says.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(rel)
}

fn estimate(args: &[&str]) -> Value {
    let out =
        Command::new(env!("CARGO_BIN_EXE_apiload")).args(["estimate", "--format", "json"]).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn workload<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["workloads"].as_array().unwrap().iter().find(|w| w["name"] == name).unwrap_or_else(|| panic!("{name} in {v:#}"))
}

#[test]
fn cost_grows_with_n_squared_or_n_as_the_model_says() {
    let growth = testdata("estimate/growth.yaml");
    let growth = growth.to_str().unwrap();
    for n in [500u64, 1000, 2500] {
        let small = estimate(&["--nodes", &n.to_string(), growth]);
        let big = estimate(&["--nodes", &(2 * n).to_string(), growth]);
        for (name, factor) in [("cluster-pods", 4.0), ("node-pods", 2.0), ("all-nodes", 4.0)] {
            for field in ["initial_list_bytes", "watch_events_per_second"] {
                let a = workload(&small, name)[field].as_f64().unwrap();
                let b = workload(&big, name)[field].as_f64().unwrap();
                assert!(a > 0.0, "{name} {field} at {n}");
                assert!((b / a - factor).abs() < 1e-6, "{name} {field}: {a} → {b} at {n} → {}", 2 * n);
            }
            assert_eq!(workload(&big, name)["copies"], 2 * n);
            assert_eq!(workload(&big, name)["watches"], 2 * n);
        }
    }
}

#[test]
fn json_has_the_documented_fields_and_scopes() {
    let v = estimate(&[testdata("estimate/growth.yaml").to_str().unwrap()]);
    for name in ["cluster-pods", "node-pods", "all-nodes"] {
        let w = workload(&v, name);
        for field in [
            "kind",
            "namespace",
            "name",
            "copies",
            "watches",
            "initial_list_bytes",
            "watch_events_per_second",
            "requests_per_second",
        ] {
            assert!(w.get(field).is_some(), "{name}: no {field}");
        }
        let r = &w["resources"][0];
        assert!(r.get("resource").is_some() && r.get("scope").is_some());
    }
    assert_eq!(workload(&v, "cluster-pods")["resources"][0]["scope"], "cluster");
    assert_eq!(workload(&v, "node-pods")["resources"][0]["scope"], "node");
    assert_eq!(workload(&v, "all-nodes")["resources"][0]["resource"], "nodes");
    // 5,000 copies × 150,000 pods × 8 KB.
    assert_eq!(workload(&v, "cluster-pods")["initial_list_bytes"].as_f64().unwrap(), 5_000.0 * 150_000.0 * 8_000.0);
    // Most expensive first.
    assert_eq!(v["workloads"][0]["name"], "cluster-pods");
}

#[test]
fn a_cluster_profile_file_sets_size_and_object_sizes() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster-profile");
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("cluster.yaml");
    std::fs::write(&profile, "nodes: 100\npodsPerNode: 50\nresources:\n  pods: {objectBytes: 1000}\n").unwrap();
    let growth = testdata("estimate/growth.yaml");
    let v = estimate(&["--cluster-profile", profile.to_str().unwrap(), growth.to_str().unwrap()]);
    assert_eq!(v["cluster"]["nodes"], 100);
    assert_eq!(workload(&v, "cluster-pods")["initial_list_bytes"].as_f64().unwrap(), 100.0 * 5_000.0 * 1_000.0);
    // --nodes wins over the file.
    let v = estimate(&["--cluster-profile", profile.to_str().unwrap(), "--nodes", "200", growth.to_str().unwrap()]);
    assert_eq!(v["cluster"]["nodes"], 200);

    std::fs::write(&profile, "nodes: 100\nresources:\n  pods: {size: 3}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_apiload"))
        .args(["estimate", "--cluster-profile"])
        .arg(&profile)
        .arg(&growth)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster.yaml:3:10: invalid cluster profile: unknown key `size`"), "{err}");
}

#[test]
fn declared_node_counts_and_severity_follow_the_estimate() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("expected-nodes");
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(testdata("estimate/growth.yaml")).unwrap().replace(
        "metadata: {name: cluster-pods, namespace: agents}",
        "metadata: {name: cluster-pods, namespace: agents, annotations: {apiload.dev/expected-nodes: \"3\"}}",
    );
    let path = dir.join("m.yaml");
    std::fs::write(&path, text).unwrap();
    let v = estimate(&[path.to_str().unwrap()]);
    assert_eq!(workload(&v, "cluster-pods")["copies"], 3);
    let out =
        Command::new(env!("CARGO_BIN_EXE_apiload")).args(["lint", "--format", "json"]).arg(&path).output().unwrap();
    let lint: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = lint["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["workload"]["name"] == "cluster-pods" && d["rule"] == "AL101")
        .unwrap();
    // Three copies of a pod watch: reported, but not an error.
    assert_eq!(d["severity"], "warning", "{d:#}");
    assert!(d["message"].as_str().unwrap().contains("on its 3 declared nodes"));
}
