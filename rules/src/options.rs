//! What the caller can tune: the cluster being protected and the thresholds.

/// The production cluster the manifests will run in. Defaults are the
/// Kubernetes scalability envelope: at most 5,000 nodes, 150,000 pods,
/// 10,000 namespaces and 10,000 Services (kubernetes/community
/// `sig-scalability/configs-and-limits/thresholds.md`; kubernetes/website
/// `docs/setup/best-practices/cluster-large.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterProfile {
    pub nodes: u64,
    /// Average pods per node (150,000 / 5,000); the per-node maximum is 110.
    pub pods_per_node: f64,
    pub namespaces: u64,
    pub services: u64,
}

impl Default for ClusterProfile {
    fn default() -> ClusterProfile {
        ClusterProfile { nodes: 5_000, pods_per_node: 30.0, namespaces: 10_000, services: 10_000 }
    }
}

impl ClusterProfile {
    pub fn pods(&self) -> f64 {
        self.nodes as f64 * self.pods_per_node
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Namespace of objects that have none (`kubectl apply -n`).
    pub default_namespace: String,
    pub cluster: ClusterProfile,
    /// A Deployment, StatefulSet, ReplicaSet or Job with at least this many
    /// copies (replicas, or an HPA's maxReplicas) fans out like a DaemonSet.
    /// Below it, a workload is central: one controller watching the cluster is normal.
    pub fanout_min_replicas: u64,
    /// A per-copy client QPS at or above this is as good as no limit.
    /// Default 1,000: 20 times the kubelet's 50, the highest built-in per-node default.
    pub max_client_qps: f64,
    /// The most requests per second all copies of a workload may be allowed
    /// together (per-copy QPS × copies). Default 5,000,000 (1,000 × 5,000 nodes).
    pub client_qps_budget: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            default_namespace: "default".into(),
            cluster: ClusterProfile::default(),
            fanout_min_replicas: 50,
            max_client_qps: 1_000.0,
            client_qps_budget: 5_000_000.0,
        }
    }
}
