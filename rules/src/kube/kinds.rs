//! The kinds the engine analyses, with where each one lives in the API.
//!
//! This table is the one list: the inventory keeps only these kinds, the
//! review judges the ones whose change can add a finding, and front ends that
//! hold a cluster's state (the webhook's watches, its Helm chart's RBAC and
//! webhook rules) derive what they list, watch and review from it.

/// What the analysis does with objects of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Runs pods: analysed in full, and judged in full when it changes.
    Workload,
    /// Read by the analysis of workloads (identity, RBAC, configuration,
    /// autoscaling): a change is judged by the findings it brings them.
    Reference,
    /// Read by the analysis, but a change can only remove findings (API
    /// Priority and Fairness, namespaces): never judged on its own.
    Context,
}

/// One analysed kind: its API group, the version front ends read it at, its
/// resource (plural, as RBAC and admission rules name it) and scope.
#[derive(Debug, PartialEq, Eq)]
pub struct AnalyzedKind {
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub role: Role,
}

impl AnalyzedKind {
    /// `apps/v1`, `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }
}

const fn k(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    role: Role,
) -> AnalyzedKind {
    AnalyzedKind { group, version, resource, kind, namespaced, role }
}

use Role::*;

/// Every kind the engine reads. Versions are the ones every supported
/// Kubernetes release serves (1.30 and later).
pub static ANALYZED_KINDS: &[AnalyzedKind] = &[
    k("apps", "v1", "daemonsets", "DaemonSet", true, Workload),
    k("apps", "v1", "deployments", "Deployment", true, Workload),
    k("apps", "v1", "statefulsets", "StatefulSet", true, Workload),
    k("apps", "v1", "replicasets", "ReplicaSet", true, Workload),
    k("", "v1", "replicationcontrollers", "ReplicationController", true, Workload),
    k("batch", "v1", "jobs", "Job", true, Workload),
    k("batch", "v1", "cronjobs", "CronJob", true, Workload),
    k("", "v1", "pods", "Pod", true, Workload),
    k("", "v1", "serviceaccounts", "ServiceAccount", true, Reference),
    k("rbac.authorization.k8s.io", "v1", "roles", "Role", true, Reference),
    k("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, Reference),
    k("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, Reference),
    k("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, Reference),
    k("", "v1", "configmaps", "ConfigMap", true, Reference),
    k("", "v1", "secrets", "Secret", true, Reference),
    k("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, Reference),
    k("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "FlowSchema", false, Context),
    k(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "prioritylevelconfigurations",
        "PriorityLevelConfiguration",
        false,
        Context,
    ),
    k("", "v1", "namespaces", "Namespace", false, Context),
];

/// The entry for `kind`, when the engine analyses it.
pub fn analyzed(kind: &str) -> Option<&'static AnalyzedKind> {
    ANALYZED_KINDS.iter().find(|k| k.kind == kind)
}

/// Whether the analysis reads objects of `kind`; the others are dropped as
/// soon as they are identified. Front ends may drop them even earlier.
pub fn is_analyzed_kind(kind: &str) -> bool {
    analyzed(kind).is_some()
}
