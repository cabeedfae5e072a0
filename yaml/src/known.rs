//! Strings too long to be stored inline that nearly every manifest repeats.
//!
//! A tree stores strings of up to 24 bytes inside the node; a longer one costs
//! an allocation of its own (its bytes rounded up, plus the allocator's
//! header). A few long strings come back in almost every object: the
//! recommended labels (`app.kubernetes.io/instance` and four more, in an
//! object's labels and again in its pod template's), the RBAC API group of
//! every binding's `roleRef` and subjects, Helm's ownership annotations, pod
//! fields such as `terminationGracePeriodSeconds`. Each of those becomes a
//! reference to the program's own copy (`CompactString::const_new`): the same
//! string, no allocation. On the generated 10,000-object corpus that is one
//! long string in eight.
//!
//! Sources: the recommended labels
//! (kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/),
//! the well-known labels, annotations and taints
//! (kubernetes.io/docs/reference/labels-annotations-taints/), the annotations
//! Helm 3 puts on every object of a release, and the API groups and field
//! names of the Kubernetes API reference. Which string is here changes
//! nothing but memory.

use compact_str::CompactString;

/// Sorted (the test holds it), each longer than 24 bytes.
static KNOWN: &[&str] = &[
    "/var/run/secrets/kubernetes.io/serviceaccount",
    "admissionregistration.k8s.io",
    "admissionregistration.k8s.io/v1",
    "apiload.dev/exempt-reason",
    "app.kubernetes.io/component",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "automountServiceAccountToken",
    "deployment.kubernetes.io/revision",
    "flowcontrol.apiserver.k8s.io",
    "flowcontrol.apiserver.k8s.io/v1",
    "kubectl.kubernetes.io/default-container",
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubectl.kubernetes.io/restartedAt",
    "kubernetes.io/service-account.name",
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
    "node-role.kubernetes.io/control-plane",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/unschedulable",
    "persistentVolumeClaimRetentionPolicy",
    "pod-security.kubernetes.io/enforce",
    "preferredDuringSchedulingIgnoredDuringExecution",
    "rbac.authorization.k8s.io",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.kubernetes.io/autoupdate",
    "requiredDuringSchedulingIgnoredDuringExecution",
    "successfulJobsHistoryLimit",
    "terminationGracePeriodSeconds",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topologySpreadConstraints",
];

/// The tree's form of a string: the program's own copy when it is one of the
/// strings above, otherwise inline or in an allocation of its own.
pub fn tree_string(text: &str) -> CompactString {
    if text.len() > 24
        && let Ok(i) = KNOWN.binary_search(&text)
    {
        return CompactString::const_new(KNOWN[i]);
    }
    CompactString::new(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_holds_only_strings_stored_out_of_line() {
        for pair in KNOWN.windows(2) {
            assert!(pair[0] < pair[1], "{:?} before {:?}", pair[0], pair[1]);
        }
        for s in KNOWN {
            assert!(s.len() > 24, "{s} would be inline anyway");
        }
    }

    #[test]
    fn a_known_string_is_not_copied_and_others_are_unchanged() {
        let known = tree_string("app.kubernetes.io/instance");
        assert_eq!(known, "app.kubernetes.io/instance");
        assert!(known.as_static_str().is_some());
        let other = tree_string("app.kubernetes.io/instancex");
        assert_eq!(other, "app.kubernetes.io/instancex");
        assert!(other.as_static_str().is_none());
        assert_eq!(tree_string("short"), "short");
    }
}
