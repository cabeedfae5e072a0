//! What the caller can tune: the cluster being protected, the thresholds and
//! the rules' settings.

use crate::diagnostic::Severity;

/// The production cluster the manifests will run in. Defaults are the
/// Kubernetes scalability envelope: at most 5,000 nodes, 150,000 pods,
/// 10,000 namespaces and 10,000 Services (kubernetes/community
/// `sig-scalability/configs-and-limits/thresholds.md`; kubernetes/website
/// `docs/setup/best-practices/cluster-large.md`).
///
/// "For smaller clusters, the limits are proportionally lower", so by default
/// namespaces and Services scale with the node count (2 per node: 10,000 at
/// 5,000 nodes); a cluster profile file can set absolute numbers instead.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterProfile {
    pub nodes: u64,
    /// Average pods per node (150,000 / 5,000); the per-node maximum is 110.
    pub pods_per_node: f64,
    pub services_per_node: f64,
    pub namespaces_per_node: f64,
    /// Absolute counts that replace the per-node ratios.
    pub services: Option<f64>,
    pub namespaces: Option<f64>,
    /// Per-collection overrides of the catalog (count, size, churn).
    pub resources: Vec<ResourceOverride>,
    /// Kubernetes minor version of the API servers (1.34 → 34): decides
    /// whether consistent and paginated LISTs are served from the watch cache.
    pub kubernetes_minor: u32,
    /// CPU cores per node, for autoscalers that scale with cores (the
    /// cluster-proportional-autoscaler). 16 is an assumption, not a
    /// published limit: the envelope's 110 pods per node need at least 11
    /// (`min(110, 10 × cores)`).
    pub cores_per_node: f64,
    /// The node pools, with their labels and taints, when the profile names
    /// them: DaemonSets are counted on the pools they schedule on. Without
    /// pools every DaemonSet is assumed on every node, and findings say so.
    pub node_pools: Vec<NodePool>,
}

/// Nodes that share labels and taints (a cloud node pool, a Karpenter NodePool).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NodePool {
    pub name: String,
    pub nodes: u64,
    pub labels: Vec<(String, String)>,
    pub taints: Vec<Taint>,
}

/// A node taint (`key=value:effect`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Taint {
    pub key: String,
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// Replaces what the catalog assumes for one collection.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ResourceOverride {
    pub group: String,
    pub resource: String,
    pub count: Option<f64>,
    pub object_bytes: Option<f64>,
    pub churn_per_hour: Option<f64>,
}

impl Default for ClusterProfile {
    fn default() -> ClusterProfile {
        ClusterProfile {
            nodes: 5_000,
            pods_per_node: 30.0,
            services_per_node: 2.0,
            namespaces_per_node: 2.0,
            services: None,
            namespaces: None,
            resources: Vec::new(),
            kubernetes_minor: 34,
            cores_per_node: 16.0,
            node_pools: Vec::new(),
        }
    }
}

impl ClusterProfile {
    pub fn cores(&self) -> f64 {
        self.nodes as f64 * self.cores_per_node
    }

    pub fn pods(&self) -> f64 {
        self.nodes as f64 * self.pods_per_node
    }

    pub fn services(&self) -> f64 {
        self.services.unwrap_or(self.nodes as f64 * self.services_per_node)
    }

    pub fn namespaces(&self) -> f64 {
        self.namespaces.unwrap_or(self.nodes as f64 * self.namespaces_per_node)
    }

    pub fn override_for(&self, group: &str, resource: &str) -> Option<&ResourceOverride> {
        self.resources.iter().find(|o| o.group == group && o.resource == resource)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Namespace of objects that have none (`kubectl apply -n`).
    pub default_namespace: String,
    /// True when the user gave that namespace (`-n`, the configuration's
    /// `namespace`); otherwise the namespace of objects that name none may be
    /// inferred from the bindings that name their ServiceAccount.
    pub namespace_given: bool,
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
    /// Severity thresholds of the fan-out findings, on the estimate.
    pub thresholds: Thresholds,
    /// A rollout that restarts at least this share of a fan-out agent's copies
    /// at once is a herd (`maxUnavailable`, `maxSurge`).
    pub rollout_max_fraction: f64,
    /// Rules turned off or given another severity (configuration file).
    pub rule_settings: Vec<(&'static str, RuleSetting)>,
}

/// What a rule's setting does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleSetting {
    Off,
    Severity(Severity),
}

impl Options {
    /// The setting of rule `id`: the last one given wins.
    pub fn rule_setting(&self, id: &str) -> Option<RuleSetting> {
        self.rule_settings.iter().rev().find(|(r, _)| *r == id).map(|(_, s)| *s)
    }

    /// Whether rule `id` runs at all.
    pub fn rule_enabled(&self, id: &str) -> bool {
        self.rule_setting(id) != Some(RuleSetting::Off)
    }
}

/// A fan-out finding is an error when its estimate reaches an `error_*`
/// threshold, a warning when it reaches a `warning_*` one, and info below.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Bytes the API server sends when every copy makes its initial LISTs at once.
    pub error_list_bytes: f64,
    pub warning_list_bytes: f64,
    /// Watch events per second delivered to all copies in steady state.
    pub error_events_per_second: f64,
    pub warning_events_per_second: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            error_list_bytes: 100e9,
            warning_list_bytes: 1e9,
            error_events_per_second: 50_000.0,
            warning_events_per_second: 1_000.0,
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            default_namespace: "default".into(),
            namespace_given: false,
            cluster: ClusterProfile::default(),
            fanout_min_replicas: 50,
            max_client_qps: 1_000.0,
            client_qps_budget: 5_000_000.0,
            thresholds: Thresholds::default(),
            rollout_max_fraction: 0.1,
            rule_settings: Vec::new(),
        }
    }
}

/// Where the annotations of a workload count: its exemptions
/// (`apiload.dev/exempt`) and its declared calls (`apiload.dev/api-calls`).
/// The webhook trusts them nowhere unless the cluster admin's configuration
/// names namespaces, so that whoever may edit a workload cannot vouch for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnnotationPolicy {
    Everywhere,
    Namespaces(Vec<String>),
    Nowhere,
}

impl AnnotationPolicy {
    pub fn from_list(list: &[String]) -> AnnotationPolicy {
        if list.iter().any(|n| n == "*") {
            AnnotationPolicy::Everywhere
        } else if list.is_empty() {
            AnnotationPolicy::Nowhere
        } else {
            AnnotationPolicy::Namespaces(list.to_vec())
        }
    }

    pub fn allows(&self, ns: &str) -> bool {
        match self {
            AnnotationPolicy::Everywhere => true,
            // Globs, as in configuration selectors (`team-*`).
            AnnotationPolicy::Namespaces(list) => list.iter().any(|n| crate::text::glob(n, ns)),
            AnnotationPolicy::Nowhere => false,
        }
    }
}
