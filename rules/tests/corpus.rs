//! The engine against the labelled real-world corpus (`../shared/corpus`):
//! precision and recall over (workload, category) pairs, as
//! `shared/tools/eval-corpus.py` scores them.

mod common;

use apiload_yaml::{Limits, Node};
use common::*;
use std::collections::BTreeSet;

const SCORED: &[&str] = &["fanout-cluster-watch", "fanout-node-watch", "fanout-capability-only", "unbounded-client"];

#[test]
fn corpus_precision_and_recall() {
    let Some(corpus) = shared("corpus") else { return };
    let mut cases: Vec<_> = std::fs::read_dir(&corpus).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    let mut mismatches = Vec::new();
    for case in cases.iter().filter(|c| c.join("manifest.yaml").is_file()) {
        let expected_text = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
        let expected = apiload_yaml::load_str(&expected_text, &Limits::default()).remove(0).unwrap().root;
        let mut want = BTreeSet::new();
        for w in expected.get("workloads").and_then(Node::as_seq).unwrap_or(&[]) {
            let (kind, name) =
                (w.get("kind").and_then(Node::as_str).unwrap(), w.get("name").and_then(Node::as_str).unwrap());
            for c in w.get("categories").and_then(Node::as_seq).unwrap_or(&[]).iter().filter_map(Node::as_str) {
                if SCORED.contains(&c) {
                    want.insert((kind.to_string(), name.to_string(), c.to_string()));
                }
            }
        }
        let text = std::fs::read_to_string(case.join("manifest.yaml")).unwrap();
        let (_, report) = analyze(&[("manifest.yaml", &text)], Default::default());
        let got: BTreeSet<_> = report
            .diagnostics
            .iter()
            .filter(|d| SCORED.contains(&d.rule.category.as_str()))
            .filter_map(|d| {
                d.workload.as_ref().map(|w| (w.kind.clone(), w.name.clone(), d.rule.category.as_str().to_string()))
            })
            .collect();
        tp += want.intersection(&got).count();
        fp += got.difference(&want).count();
        fneg += want.difference(&got).count();
        if want != got {
            mismatches.push(format!("{}: expected {want:?}, reported {got:?}", case.display()));
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    assert!(tp > 0, "no case scored");
    assert!(
        precision >= 0.95 && recall >= 0.95,
        "precision {precision:.3} recall {recall:.3}\n{}",
        mismatches.join("\n")
    );
}
