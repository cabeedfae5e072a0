//! Hostile input: every case ends in a clear finding naming the file and line,
//! nothing panics, and the valid documents beside it are still linted.

mod common;

use common::*;

use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// A DaemonSet that must be flagged, so that we can see linting went on.
const RISKY: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: survivor
  namespace: monitoring
spec:
  selector:
    matchLabels: {app: survivor}
  template:
    metadata:
      labels: {app: survivor}
    spec:
      serviceAccountName: survivor
      containers:
      - name: agent
        image: registry.example.com/agent:1
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: survivor
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: ServiceAccount
  name: survivor
  namespace: monitoring
"#;

fn lint_json(path: &Path) -> (Output, Value) {
    let out = apiload().args(["lint", "--format", "json"]).arg(path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (out, json)
}

fn findings<'a>(json: &'a Value, rule: &str) -> Vec<&'a Value> {
    json["diagnostics"].as_array().unwrap().iter().filter(|d| d["rule"] == rule).collect()
}

/// Each hostile file, alone or next to a valid document in the same file.
fn cases() -> Vec<(&'static str, Vec<u8>, u64)> {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..14 {
        let p = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let mut invalid_utf8 = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata:\n  k: \"".to_vec();
    invalid_utf8.extend_from_slice(&[0xC3, 0x28, 0xFF]);
    invalid_utf8.extend_from_slice(b"\"\n");
    let garbage: Vec<u8> = (0..65536u32).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
    vec![
        // (name, bytes, line the error must be reported at)
        ("alias-bomb.yaml", bomb.into_bytes(), 6),
        ("deep-block.yaml", ("- ".repeat(100_000) + "x\n").into_bytes(), 1),
        ("deep-flow.yaml", ("[".repeat(100_000) + &"]".repeat(100_000) + "\n").into_bytes(), 1),
        ("invalid-utf8.yaml", invalid_utf8, 6),
        ("garbage.yaml", garbage, 1),
        ("duplicate-keys.yaml", b"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  name: b\n".to_vec(), 5),
        (
            "wrong-type.yaml",
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: \"three\"\n  template:\n    spec:\n      containers: []\n".to_vec(),
            6,
        ),
        ("not-an-object.yaml", b"just a string\n".to_vec(), 1),
    ]
}

#[test]
fn each_hostile_file_is_reported_with_its_line_and_the_rest_is_linted() {
    for (name, bytes, line) in cases() {
        // The hostile file alone, and the same bytes followed by a valid
        // document in the same file; each beside a valid file.
        let mut same_file = bytes.clone();
        if !same_file.ends_with(b"\n") {
            same_file.push(b'\n');
        }
        same_file.extend_from_slice(b"---\n");
        same_file.extend_from_slice(RISKY.as_bytes());
        for (variant, content) in [("alone", bytes.clone()), ("with-valid", same_file)] {
            let dir = scratch(&format!("hostile-{variant}-{name}"));
            std::fs::write(dir.join(name), &content).unwrap();
            std::fs::write(dir.join("valid.yaml"), RISKY.replace("survivor", "other")).unwrap();

            let (out, json) = lint_json(&dir);
            assert_eq!(out.status.code(), Some(1), "{variant} {name}");
            let errors = findings(&json, "AL001");
            let e = errors
                .iter()
                .find(|d| d["location"]["file"].as_str().unwrap().ends_with(&format!("/{name}")))
                .unwrap_or_else(|| panic!("{variant} {name}: no AL001 in {json:#}"));
            assert_eq!(e["location"]["line"], line, "{variant} {name}: {e:#}");
            assert!(!e["message"].as_str().unwrap().is_empty());
            let flagged: Vec<&str> =
                findings(&json, "AL101").iter().map(|d| d["workload"]["name"].as_str().unwrap()).collect();
            assert!(flagged.contains(&"other"), "{variant} {name}: valid file not linted: {flagged:?}");
            if variant == "with-valid" {
                assert!(flagged.contains(&"survivor"), "{name}: valid document in the same file not linted");
            }
        }
    }
}

#[test]
fn a_file_over_the_size_limit_is_refused_without_reading_it_all() {
    let dir = scratch("hostile-50mb");
    let mut big = Vec::with_capacity(50 * 1024 * 1024 + 100);
    while big.len() < 50 * 1024 * 1024 {
        big.extend_from_slice(b"# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(dir.join("huge.yaml"), &big).unwrap();
    std::fs::write(dir.join("valid.yaml"), RISKY).unwrap();
    let (out, json) = lint_json(&dir);
    assert_eq!(out.status.code(), Some(1));
    let e = findings(&json, "AL001");
    assert_eq!(e.len(), 1);
    assert!(e[0]["location"]["file"].as_str().unwrap().ends_with("huge.yaml"));
    assert_eq!(e[0]["location"]["line"], 1);
    assert!(e[0]["message"].as_str().unwrap().contains("over the limit"), "{:#}", e[0]);
    assert_eq!(findings(&json, "AL101").len(), 1);
}

#[test]
fn empty_documents_and_files_are_quietly_fine() {
    let dir = scratch("hostile-empty");
    std::fs::write(dir.join("empty.yaml"), b"").unwrap();
    std::fs::write(dir.join("comments.yaml"), b"# nothing\n---\n---\n# Source: x\n...\n").unwrap();
    let (out, json) = lint_json(&dir);
    assert_eq!(out.status.code(), Some(0));
    assert!(json["diagnostics"].as_array().unwrap().is_empty());
}
