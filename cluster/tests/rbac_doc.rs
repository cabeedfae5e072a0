//! The RBAC docs/audit.md gives `apiload audit` is exactly what the audit
//! reads: every collection with its verbs, nothing more (no Secret, no
//! watch). The end-to-end suite applies the same block and audits with it.

use apiload_cluster::snapshot::collections;
use apiload_yaml::{Limits, Node, load_str};
use std::collections::BTreeSet;
use std::path::Path;

/// The YAML between the `audit-rbac` markers of docs/audit.md.
fn documented_rbac() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/audit.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("<!-- audit-rbac:begin -->").expect("begin marker");
    let end = text.find("<!-- audit-rbac:end -->").expect("end marker");
    let block = &text[start..end];
    let yaml = block.split_once("```yaml\n").expect("a yaml block").1;
    yaml.split_once("```").expect("the block ends").0.to_string()
}

fn strings(n: Option<&Node>) -> Vec<String> {
    n.and_then(Node::as_seq)
        .map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[test]
fn the_documented_cluster_role_grants_exactly_what_the_audit_reads() {
    let mut granted: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut kinds = Vec::new();
    for doc in load_str(&documented_rbac(), &Limits::default()) {
        let doc = doc.unwrap();
        kinds.push(doc.root.get("kind").and_then(Node::as_str).unwrap_or("").to_string());
        if doc.root.get("kind").and_then(Node::as_str) != Some("ClusterRole") {
            continue;
        }
        for rule in doc.root.get("rules").and_then(Node::as_seq).unwrap() {
            for g in strings(rule.get("apiGroups")) {
                for r in strings(rule.get("resources")) {
                    for v in strings(rule.get("verbs")) {
                        granted.insert((g.clone(), r.clone(), v));
                    }
                }
            }
        }
    }
    assert_eq!(kinds, ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]);
    let mut read: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (k, verbs) in collections() {
        for v in verbs {
            read.insert((k.group.to_string(), k.resource.to_string(), v.to_string()));
        }
    }
    // Nodes are read for the copies model, not analysed as objects.
    read.insert((String::new(), "nodes".into(), "list".into()));
    assert_eq!(granted, read);
    assert!(!granted.iter().any(|(_, r, v)| r == "secrets" || v == "watch" || r == "*" || v == "*"));
}
