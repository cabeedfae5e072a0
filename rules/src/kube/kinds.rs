//! The kinds the engine analyses, with where the API serves them. This is the
//! one list: the inventory keeps objects of these kinds and drops the rest,
//! the review planner judges changes to them, and front ends that fetch a
//! cluster's objects (the webhook's watches) derive their requests from it.

/// A kind the analysis reads, and the collection that serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnalyzedKind {
    pub kind: &'static str,
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// The version front ends request (the analysis reads any version).
    pub version: &'static str,
    /// The resource (plural) of the collection.
    pub resource: &'static str,
    pub namespaced: bool,
}

const fn kind(
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    namespaced: bool,
) -> AnalyzedKind {
    AnalyzedKind { kind, group, version, resource, namespaced }
}

/// Every analysed kind: pod-running workloads, identities and RBAC, the
/// configuration agents read, autoscalers, API Priority and Fairness, and
/// Namespaces (for namespace-scoped exemptions and policies).
pub static ANALYZED_KINDS: &[AnalyzedKind] = &[
    kind("DaemonSet", "apps", "v1", "daemonsets", true),
    kind("Deployment", "apps", "v1", "deployments", true),
    kind("StatefulSet", "apps", "v1", "statefulsets", true),
    kind("ReplicaSet", "apps", "v1", "replicasets", true),
    kind("ReplicationController", "", "v1", "replicationcontrollers", true),
    kind("Job", "batch", "v1", "jobs", true),
    kind("CronJob", "batch", "v1", "cronjobs", true),
    kind("Pod", "", "v1", "pods", true),
    kind("ServiceAccount", "", "v1", "serviceaccounts", true),
    kind("Role", "rbac.authorization.k8s.io", "v1", "roles", true),
    kind("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", false),
    kind("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", true),
    kind("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", false),
    kind("ConfigMap", "", "v1", "configmaps", true),
    kind("Secret", "", "v1", "secrets", true),
    kind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", true),
    kind("FlowSchema", "flowcontrol.apiserver.k8s.io", "v1", "flowschemas", false),
    kind("PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations", false),
    kind("Namespace", "", "v1", "namespaces", false),
];

/// Whether the analysis reads objects of `kind`; the others are dropped as
/// soon as they are identified. Front ends may drop them even earlier.
pub fn is_analyzed_kind(kind: &str) -> bool {
    ANALYZED_KINDS.iter().any(|k| k.kind == kind)
}
