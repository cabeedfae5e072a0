//! What the webhook watches and reviews, derived from the engine's one list
//! of analysed kinds ([`apiload_rules::kube::kinds`]). The Helm chart's
//! ClusterRole and webhook rules are checked against these lists by its tests
//! (`charts/tests`), and the stand-in API server of the live-mode tests
//! serves exactly them, so nothing is kept by hand twice.

use apiload_rules::kube::kinds::{ANALYZED_KINDS, AnalyzedKind, Role};

/// Why the webhook does not watch an analysed kind, when it does not.
pub fn not_watched(kind: &str) -> Option<&'static str> {
    match kind {
        // A cluster has many, and most are not agent configuration.
        "ConfigMap" => Some("read on demand, for the workloads a review reaches"),
        // The webhook never reads Secrets: such agents are judged by their grants.
        "Secret" => Some("never read"),
        // Pods are judged through their controllers; a cache of every Pod would
        // cost more than the rest together.
        "Pod" => Some("judged through their controllers"),
        _ => None,
    }
}

/// Why the webhook is not sent changes of an analysed kind, when it is not.
pub fn not_reviewed(kind: &AnalyzedKind) -> Option<&'static str> {
    match kind.kind {
        _ if kind.role == Role::Context => Some("a change can only remove findings"),
        // Never on the path of a scale-up or a pod restart.
        "Pod" => Some("judged through their controllers"),
        "Secret" => Some("never read"),
        _ => None,
    }
}

/// The collections live mode lists and watches (Nodes aside: they are
/// watched as metadata, for their count).
pub fn watched() -> impl Iterator<Item = &'static AnalyzedKind> {
    ANALYZED_KINDS.iter().filter(|k| not_watched(k.kind).is_none())
}

/// The kinds whose CREATE and UPDATE the API server should send.
pub fn reviewed() -> impl Iterator<Item = &'static AnalyzedKind> {
    ANALYZED_KINDS.iter().filter(|k| not_reviewed(k).is_none())
}

/// Whether the cache watches objects of this kind (admissions of it are
/// confirmed by a watch event).
pub fn is_watched(kind: &str) -> bool {
    watched().any(|k| k.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reviewed_kind_is_watched_or_read_on_demand() {
        // A reviewed change must meet the state it changes.
        for k in reviewed() {
            assert!(is_watched(k.kind) || k.kind == "ConfigMap", "{} is reviewed but not kept", k.kind);
        }
        assert!(is_watched("ReplicationController"), "the engine judges them");
        assert!(reviewed().any(|k| k.kind == "ReplicationController"));
        assert!(!reviewed().any(|k| k.kind == "FlowSchema" || k.kind == "Pod" || k.kind == "Secret"));
    }
}
