//! The one list of analysed kinds agrees with the catalog of collections,
//! the scope objects are read with, and the kinds that run pods
//! (`rules/src/kube/kinds.rs`).

use apiload_rules::kube::kinds::{ANALYZED_KINDS, Role};
use apiload_rules::kube::resources::CATALOG;

#[test]
fn every_analysed_kind_is_in_the_catalog_with_the_same_resource_and_scope() {
    for k in ANALYZED_KINDS {
        let known = CATALOG
            .iter()
            .find(|r| r.group == k.group && r.kind == k.kind)
            .unwrap_or_else(|| panic!("{} is not in the catalog", k.kind));
        assert_eq!((known.resource, known.namespaced), (k.resource, k.namespaced), "{}", k.kind);
        assert_eq!(apiload_rules::object::is_cluster_scoped(k.kind), !k.namespaced, "{}", k.kind);
    }
    let mut kinds: Vec<&str> = ANALYZED_KINDS.iter().map(|k| k.kind).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), ANALYZED_KINDS.len(), "a kind listed twice");
}

#[test]
fn workloads_are_the_kinds_that_run_pods() {
    for k in ANALYZED_KINDS {
        let runs_pods = apiload_rules::workload::WorkloadKind::from_kind(k.kind).is_some();
        assert_eq!(runs_pods, k.role == Role::Workload, "{}", k.kind);
    }
}
