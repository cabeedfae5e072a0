//! User profiles: the example of docs/profiles.md works exactly as written,
//! and broken profiles are reported with file, line and column.

mod common;

use common::*;

use serde_json::Value;
use std::path::Path;

/// The fenced block of `docs/profiles.md` whose info string is `yaml <tag>`.
fn doc_block(tag: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/profiles.md")).unwrap();
    let start = doc.find(&format!("```yaml {tag}\n")).unwrap_or_else(|| panic!("no ```yaml {tag} block"));
    let body = &doc[start + format!("```yaml {tag}\n").len()..];
    body[..body.find("```").unwrap()].to_string()
}

fn lint(args: &[&str], manifest: &Path) -> Value {
    let out = apiload().arg("lint").arg("--format").arg("json").args(args).arg(manifest).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_documented_in_house_profile_works_as_documented() {
    let dir = scratch("profiles-doc");
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::write(dir.join("profiles/acme.yaml"), doc_block("profile")).unwrap();
    let manifest = dir.join("manifest.yaml");
    std::fs::write(&manifest, doc_block("manifest")).unwrap();

    // Without the profile the agent is unknown: its grants are all assumed used.
    let plain = lint(&[], &manifest);
    let names = |v: &Value| -> Vec<String> {
        v["diagnostics"].as_array().unwrap().iter().map(|d| d["message"].as_str().unwrap().to_string()).collect()
    };
    assert!(names(&plain).iter().any(|m| m.contains("services")), "{plain:#}");

    // With it, the finding is about the pod watcher, points into the ConfigMap, and Services are not assumed.
    let profiles = dir.join("profiles");
    let report = lint(&["--profiles", profiles.to_str().unwrap()], &manifest);
    let d = report["diagnostics"].as_array().unwrap().iter().find(|d| d["rule"] == "AL101").expect("AL101");
    let msg = d["message"].as_str().unwrap();
    assert!(msg.contains("runs ACME node agent") && msg.contains("pod watcher") && msg.contains("pods"), "{msg}");
    assert!(!msg.contains("services"), "{msg}");
    let related: Vec<&Value> = d["related"].as_array().unwrap().iter().collect();
    assert!(related.iter().any(|r| r["line"] == 9 && r["message"].as_str().unwrap().contains("pod_node")), "{d:#}");
    assert!(d["help"].as_str().unwrap().contains("pod_node: ${NODE_NAME}"));

    // Scoping the watch as the fix says turns the finding into an over-grant warning.
    let fixed = doc_block("manifest")
        .replace("      watch_pods: true\n", "      watch_pods: true\n      pod_node: ${NODE_NAME}\n");
    std::fs::write(&manifest, fixed).unwrap();
    let report = lint(&["--profiles", profiles.to_str().unwrap()], &manifest);
    let fanout: Vec<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["category"].as_str().unwrap().starts_with("fanout-"))
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert_eq!(fanout, vec!["AL103"], "{report:#}");
}

#[test]
fn broken_profiles_are_reported_with_their_position() {
    let dir = scratch("profiles-broken");
    std::fs::write(dir.join("bad.yaml"), "id: bad\nname: Bad\nmatch:\n  images: [x]\nuses:\n  - id: u\n    calls:\n      - resource: pods\n        colour: blue\n").unwrap();
    std::fs::write(
        dir.join("path.yaml"),
        "id: bad-path\nname: Bad\nmatch: {images: [x]}\nuses:\n  - id: u\n    for_each: \"$.a[\"\n    calls: []\n",
    )
    .unwrap();
    let manifest = scratch("profiles-broken-input").join("m.yaml");
    std::fs::write(&manifest, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n").unwrap();
    let out = apiload().args(["lint", "--profiles"]).arg(&dir).arg(&manifest).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:9:9: invalid profile: unknown key `colour`"), "{err}");
    assert!(err.contains("path.yaml:6:15: invalid profile: `for_each`: invalid JSONPath"), "{err}");
}
