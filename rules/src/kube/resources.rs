//! The collections a client can LIST and WATCH, with what the engine needs to
//! know about each: its scope, how its size follows the cluster, and typical
//! object size and churn for the cost model.
//!
//! Sizes are typical JSON sizes of real objects (managedFields included, as a
//! LIST returns them); churn is watch events per object per hour in steady
//! state. Both are deliberately round numbers: the estimates they feed are
//! orders of magnitude, and a cluster profile can override the counts.

/// How a collection's size follows the cluster.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Count {
    /// Objects per node (Nodes: 1; node Leases: 1; CSINodes: 1).
    PerNode(f64),
    /// Objects per pod (Pods: 1; Events: ~1 alive per pod within their 1h TTL).
    PerPod(f64),
    /// Objects per Service (Endpoints: 1; EndpointSlices: ~1.2).
    PerService(f64),
    /// Objects per namespace (ConfigMaps, Secrets, ServiceAccounts, ...).
    PerNamespace(f64),
    /// A roughly fixed number, whatever the cluster size.
    Fixed(f64),
}

#[derive(Debug, PartialEq)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub resource: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub count: Count,
    /// Typical size of one object, bytes.
    pub object_bytes: f64,
    /// Watch events per object per hour.
    pub churn_per_hour: f64,
}

impl ResourceInfo {
    /// True for collections that hold about one object per node: a watch of
    /// them from every node makes N² traffic.
    pub fn grows_with_nodes(&self) -> bool {
        matches!(self.count, Count::PerNode(_))
    }

    /// `pods`, `deployments.apps`: how `kubectl` names it.
    pub fn display(&self) -> String {
        display(self.group, self.resource)
    }
}

pub fn display(group: &str, resource: &str) -> String {
    if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") }
}

const fn r(
    group: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    count: Count,
    object_bytes: f64,
    churn_per_hour: f64,
) -> ResourceInfo {
    ResourceInfo { group, resource, kind, namespaced, count, object_bytes, churn_per_hour }
}

use Count::*;

/// Known collections. Groups of custom resources that per-node agents watch
/// (Cilium, Calico) are here too, because their scope decides the category.
pub static CATALOG: &[ResourceInfo] = &[
    // core
    r("", "pods", "Pod", true, PerPod(1.0), 8_000.0, 4.0),
    r("", "nodes", "Node", false, PerNode(1.0), 12_000.0, 6.0),
    r("", "services", "Service", true, PerService(1.0), 1_500.0, 0.1),
    r("", "endpoints", "Endpoints", true, PerService(1.0), 4_000.0, 2.0),
    r("", "namespaces", "Namespace", false, PerNamespace(1.0), 600.0, 0.01),
    r("", "events", "Event", true, PerPod(1.0), 1_000.0, 1.0),
    r("", "configmaps", "ConfigMap", true, PerNamespace(3.0), 4_000.0, 0.05),
    r("", "secrets", "Secret", true, PerNamespace(3.0), 4_000.0, 0.05),
    r("", "serviceaccounts", "ServiceAccount", true, PerNamespace(2.0), 700.0, 0.01),
    r("", "persistentvolumeclaims", "PersistentVolumeClaim", true, PerPod(0.1), 1_500.0, 0.1),
    r("", "persistentvolumes", "PersistentVolume", false, PerPod(0.1), 1_500.0, 0.1),
    r("", "replicationcontrollers", "ReplicationController", true, Fixed(100.0), 4_000.0, 0.1),
    r("", "resourcequotas", "ResourceQuota", true, PerNamespace(1.0), 1_000.0, 1.0),
    r("", "limitranges", "LimitRange", true, PerNamespace(0.5), 700.0, 0.01),
    r("", "podtemplates", "PodTemplate", true, Fixed(100.0), 4_000.0, 0.01),
    r("", "componentstatuses", "ComponentStatus", false, Fixed(3.0), 500.0, 0.0),
    // apps
    r("apps", "deployments", "Deployment", true, PerPod(0.1), 6_000.0, 1.0),
    r("apps", "replicasets", "ReplicaSet", true, PerPod(0.5), 6_000.0, 1.0),
    r("apps", "statefulsets", "StatefulSet", true, PerPod(0.01), 6_000.0, 1.0),
    r("apps", "daemonsets", "DaemonSet", true, Fixed(50.0), 6_000.0, 6.0),
    r("apps", "controllerrevisions", "ControllerRevision", true, PerPod(0.05), 6_000.0, 0.01),
    // legacy group of the same collections
    r("extensions", "deployments", "Deployment", true, PerPod(0.1), 6_000.0, 1.0),
    r("extensions", "replicasets", "ReplicaSet", true, PerPod(0.5), 6_000.0, 1.0),
    r("extensions", "daemonsets", "DaemonSet", true, Fixed(50.0), 6_000.0, 6.0),
    r("extensions", "ingresses", "Ingress", true, PerService(0.2), 2_000.0, 0.1),
    r("extensions", "networkpolicies", "NetworkPolicy", true, PerNamespace(1.0), 1_500.0, 0.01),
    // batch
    r("batch", "jobs", "Job", true, PerPod(0.02), 5_000.0, 2.0),
    r("batch", "cronjobs", "CronJob", true, PerPod(0.005), 5_000.0, 1.0),
    // discovery, events
    r("discovery.k8s.io", "endpointslices", "EndpointSlice", true, PerService(1.2), 3_000.0, 2.0),
    r("events.k8s.io", "events", "Event", true, PerPod(1.0), 1_000.0, 1.0),
    // networking
    r("networking.k8s.io", "ingresses", "Ingress", true, PerService(0.2), 2_000.0, 0.1),
    r("networking.k8s.io", "networkpolicies", "NetworkPolicy", true, PerNamespace(1.0), 1_500.0, 0.01),
    r("networking.k8s.io", "ingressclasses", "IngressClass", false, Fixed(3.0), 500.0, 0.0),
    r("networking.k8s.io", "ipaddresses", "IPAddress", false, PerService(1.0), 500.0, 0.1),
    r("networking.k8s.io", "servicecidrs", "ServiceCIDR", false, Fixed(2.0), 500.0, 0.0),
    // coordination: node heartbeats live here (one Lease per node, renewed every 10 s)
    r("coordination.k8s.io", "leases", "Lease", true, PerNode(1.0), 500.0, 360.0),
    // storage
    r("storage.k8s.io", "storageclasses", "StorageClass", false, Fixed(5.0), 700.0, 0.0),
    r("storage.k8s.io", "csidrivers", "CSIDriver", false, Fixed(5.0), 700.0, 0.0),
    r("storage.k8s.io", "csinodes", "CSINode", false, PerNode(1.0), 1_000.0, 0.01),
    r("storage.k8s.io", "volumeattachments", "VolumeAttachment", false, PerPod(0.1), 1_000.0, 0.1),
    r("storage.k8s.io", "csistoragecapacities", "CSIStorageCapacity", true, PerNode(1.0), 800.0, 1.0),
    r("storage.k8s.io", "volumeattributesclasses", "VolumeAttributesClass", false, Fixed(5.0), 500.0, 0.0),
    // policy, autoscaling
    r("policy", "poddisruptionbudgets", "PodDisruptionBudget", true, PerPod(0.02), 1_000.0, 2.0),
    r("autoscaling", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, PerPod(0.02), 2_000.0, 4.0),
    // rbac
    r("rbac.authorization.k8s.io", "roles", "Role", true, PerNamespace(2.0), 1_000.0, 0.01),
    r("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", true, PerNamespace(2.0), 800.0, 0.01),
    r("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", false, Fixed(300.0), 2_000.0, 0.01),
    r("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", false, Fixed(300.0), 800.0, 0.01),
    // cluster configuration
    r(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        Fixed(200.0),
        60_000.0,
        0.01,
    ),
    r(
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        Fixed(20.0),
        3_000.0,
        0.01,
    ),
    r(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        Fixed(20.0),
        3_000.0,
        0.01,
    ),
    r(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        false,
        Fixed(20.0),
        3_000.0,
        0.01,
    ),
    r("apiregistration.k8s.io", "apiservices", "APIService", false, Fixed(60.0), 1_000.0, 0.01),
    r("node.k8s.io", "runtimeclasses", "RuntimeClass", false, Fixed(3.0), 500.0, 0.0),
    r("scheduling.k8s.io", "priorityclasses", "PriorityClass", false, Fixed(10.0), 500.0, 0.0),
    r(
        "certificates.k8s.io",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        false,
        PerNode(1.0),
        2_000.0,
        0.01,
    ),
    r("flowcontrol.apiserver.k8s.io", "flowschemas", "FlowSchema", false, Fixed(20.0), 1_000.0, 0.1),
    r(
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        "PriorityLevelConfiguration",
        false,
        Fixed(10.0),
        1_000.0,
        0.1,
    ),
    // metrics API (aggregated; LIST only, no WATCH)
    r("metrics.k8s.io", "pods", "PodMetrics", true, PerPod(1.0), 800.0, 0.0),
    r("metrics.k8s.io", "nodes", "NodeMetrics", false, PerNode(1.0), 500.0, 0.0),
    // dynamic resource allocation: drivers publish ResourceSlices per node
    r("resource.k8s.io", "resourceslices", "ResourceSlice", false, PerNode(1.0), 3_000.0, 0.1),
    r("resource.k8s.io", "resourceclaims", "ResourceClaim", true, PerPod(0.05), 2_000.0, 2.0),
    r("resource.k8s.io", "deviceclasses", "DeviceClass", false, Fixed(5.0), 1_000.0, 0.0),
    r("resource.k8s.io", "resourceclaimtemplates", "ResourceClaimTemplate", true, PerNamespace(0.1), 1_000.0, 0.0),
    r("resource.k8s.io", "devicetaintrules", "DeviceTaintRule", false, Fixed(5.0), 1_000.0, 0.0),
    // the rest of the built-in groups: small, fixed-size collections
    r("coordination.k8s.io", "leasecandidates", "LeaseCandidate", true, Fixed(20.0), 500.0, 60.0),
    r("certificates.k8s.io", "clustertrustbundles", "ClusterTrustBundle", false, Fixed(5.0), 4_000.0, 0.0),
    r(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        false,
        Fixed(20.0),
        1_000.0,
        0.01,
    ),
    r(
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicies",
        "MutatingAdmissionPolicy",
        false,
        Fixed(20.0),
        3_000.0,
        0.01,
    ),
    r(
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
        "MutatingAdmissionPolicyBinding",
        false,
        Fixed(20.0),
        1_000.0,
        0.01,
    ),
    r(
        "storagemigration.k8s.io",
        "storageversionmigrations",
        "StorageVersionMigration",
        false,
        Fixed(5.0),
        1_000.0,
        0.0,
    ),
    r("internal.apiserver.k8s.io", "storageversions", "StorageVersion", false, Fixed(100.0), 1_000.0, 0.0),
    // Cilium (cilium.io): CiliumEndpoints follow pods, CiliumNodes follow nodes.
    // node-feature-discovery: one NodeFeature per node and producer (nfd-worker,
    // NVIDIA's gpu-feature-discovery), labelled with its node.
    r("nfd.k8s-sigs.io", "nodefeatures", "NodeFeature", true, PerNode(1.0), 6_000.0, 0.1),
    r("nfd.k8s-sigs.io", "nodefeaturerules", "NodeFeatureRule", false, Fixed(10.0), 2_000.0, 0.0),
    r("cilium.io", "ciliumendpoints", "CiliumEndpoint", true, PerPod(1.0), 2_500.0, 4.0),
    r("cilium.io", "ciliumendpointslices", "CiliumEndpointSlice", false, PerPod(0.01), 25_000.0, 4.0),
    r("cilium.io", "ciliumnodes", "CiliumNode", false, PerNode(1.0), 4_000.0, 6.0),
    r("cilium.io", "ciliumidentities", "CiliumIdentity", false, PerPod(0.1), 1_000.0, 0.1),
    r("cilium.io", "ciliumnetworkpolicies", "CiliumNetworkPolicy", true, PerNamespace(1.0), 2_000.0, 0.01),
    r(
        "cilium.io",
        "ciliumclusterwidenetworkpolicies",
        "CiliumClusterwideNetworkPolicy",
        false,
        Fixed(20.0),
        2_000.0,
        0.01,
    ),
    r("cilium.io", "ciliumexternalworkloads", "CiliumExternalWorkload", false, Fixed(5.0), 1_000.0, 0.0),
    r("cilium.io", "ciliumlocalredirectpolicies", "CiliumLocalRedirectPolicy", true, Fixed(5.0), 1_000.0, 0.0),
    r("cilium.io", "ciliumloadbalancerippools", "CiliumLoadBalancerIPPool", false, Fixed(5.0), 1_000.0, 0.0),
    r("cilium.io", "ciliumcidrgroups", "CiliumCIDRGroup", false, Fixed(5.0), 1_000.0, 0.0),
    r("cilium.io", "ciliumnodeconfigs", "CiliumNodeConfig", true, Fixed(5.0), 1_000.0, 0.0),
    r("cilium.io", "ciliumenvoyconfigs", "CiliumEnvoyConfig", true, Fixed(10.0), 3_000.0, 0.01),
    r("cilium.io", "ciliumclusterwideenvoyconfigs", "CiliumClusterwideEnvoyConfig", false, Fixed(10.0), 3_000.0, 0.01),
    r("cilium.io", "ciliumbgppeeringpolicies", "CiliumBGPPeeringPolicy", false, Fixed(5.0), 1_000.0, 0.0),
    r("cilium.io", "ciliumpodippools", "CiliumPodIPPool", false, Fixed(5.0), 1_000.0, 0.0),
    // Calico (crd.projectcalico.org): IPAM blocks and affinities follow nodes.
    r("crd.projectcalico.org", "blockaffinities", "BlockAffinity", false, PerNode(1.0), 700.0, 0.01),
    r("crd.projectcalico.org", "ipamblocks", "IPAMBlock", false, PerNode(1.0), 6_000.0, 4.0),
    r("crd.projectcalico.org", "ipamhandles", "IPAMHandle", false, PerPod(1.0), 600.0, 1.0),
    r("crd.projectcalico.org", "hostendpoints", "HostEndpoint", false, PerNode(1.0), 800.0, 0.01),
    r("crd.projectcalico.org", "felixconfigurations", "FelixConfiguration", false, PerNode(1.0), 800.0, 0.01),
    r("crd.projectcalico.org", "ippools", "IPPool", false, Fixed(5.0), 700.0, 0.0),
    r("crd.projectcalico.org", "networkpolicies", "NetworkPolicy", true, PerNamespace(1.0), 1_500.0, 0.01),
    r("crd.projectcalico.org", "globalnetworkpolicies", "GlobalNetworkPolicy", false, Fixed(20.0), 1_500.0, 0.01),
    r("crd.projectcalico.org", "networksets", "NetworkSet", true, Fixed(20.0), 1_000.0, 0.01),
    r("crd.projectcalico.org", "globalnetworksets", "GlobalNetworkSet", false, Fixed(20.0), 1_000.0, 0.01),
    r("crd.projectcalico.org", "clusterinformations", "ClusterInformation", false, Fixed(1.0), 500.0, 0.0),
    r("crd.projectcalico.org", "bgpconfigurations", "BGPConfiguration", false, Fixed(2.0), 500.0, 0.0),
    r("crd.projectcalico.org", "bgppeers", "BGPPeer", false, Fixed(5.0), 500.0, 0.0),
    r(
        "crd.projectcalico.org",
        "kubecontrollersconfigurations",
        "KubeControllersConfiguration",
        false,
        Fixed(1.0),
        500.0,
        0.0,
    ),
];

/// How the API server can restrict a LIST or watch of a collection to the
/// objects of one node, so that an agent told its node name can ask for only
/// its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeFilter {
    /// A field selector on a field holding the node's name, indexed by the
    /// watch cache (`spec.nodeName` of Pods, `pkg/registry/core/pod/storage`;
    /// of ResourceSlices, `pkg/registry/resource/resourceslice/strategy.go`).
    Field(&'static str),
    /// Objects named after their node: `metadata.name=<node>`, a field
    /// selector every resource supports, and since Kubernetes 1.27 served by
    /// the watch cache's name partitioning (Nodes, CSINodes, CiliumNodes).
    Name,
    /// A label holding the node's name, selected server-side (the API server
    /// still evaluates it over the whole collection, but each copy receives
    /// only its own objects): NodeFeatures' `nfd.node.kubernetes.io/node-name`.
    Label(&'static str),
}

impl NodeFilter {
    /// The selector a copy would send, with `<node>` for its node's name.
    pub fn selector(self) -> String {
        match self {
            NodeFilter::Field(f) => format!("fieldSelector={f}=<node>"),
            NodeFilter::Name => "fieldSelector=metadata.name=<node>".into(),
            NodeFilter::Label(l) => format!("labelSelector={l}=<node>"),
        }
    }
}

/// How (if at all) the API server filters a collection by node. Only these:
/// Services, EndpointSlices, Namespaces, ConfigMaps, Events and custom
/// resources the catalog does not know cannot be restricted to one node.
pub fn node_filter(group: &str, resource: &str) -> Option<NodeFilter> {
    match (group, resource) {
        ("", "pods") | ("resource.k8s.io", "resourceslices") => Some(NodeFilter::Field("spec.nodeName")),
        ("", "nodes") | ("storage.k8s.io", "csinodes") | ("cilium.io", "ciliumnodes") | ("metrics.k8s.io", "nodes") => {
            Some(NodeFilter::Name)
        }
        ("nfd.k8s-sigs.io", "nodefeatures") => Some(NodeFilter::Label("nfd.node.kubernetes.io/node-name")),
        _ => None,
    }
}

/// Whether a collection is big enough for a per-node watch of it to be a
/// finding: namespaced collections, and cluster-scoped ones that grow with
/// the cluster (nodes, pods, Services, namespaces). Unknown collections
/// (custom resources) count. Fixed-size cluster configuration (StorageClasses,
/// CRDs) is left to the estimate.
pub fn is_sizeable(info: Option<&ResourceInfo>) -> bool {
    info.is_none_or(|i| i.namespaced || !matches!(i.count, Count::Fixed(_)))
}

/// Resources that only accept `create` (reviews, bindings): granting `list`
/// on them grants nothing.
pub const NOT_COLLECTIONS: &[&str] = &[
    "bindings",
    "tokenreviews",
    "subjectaccessreviews",
    "selfsubjectaccessreviews",
    "localsubjectaccessreviews",
    "selfsubjectrulesreviews",
    "selfsubjectreviews",
];

/// The API groups the API server itself serves (and the metrics API, served
/// by metrics-server everywhere): the catalog lists every resource of them,
/// so a rule naming another resource in one of these groups grants nothing.
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "metrics.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// Resources built-in groups served once and no longer do, still named by
/// old charts: not collections to watch, but not mistakes either.
const RETIRED: &[(&str, &str)] = &[("policy", "podsecuritypolicies"), ("extensions", "podsecuritypolicies")];

/// Whether a built-in API group does not serve `resource` (`apiGroups:
/// [apps]`, `resources: [pods]`): a grant of it grants nothing. `false` for
/// groups the catalog does not own (custom resources) and for `*`.
pub fn not_served(group: &str, resource: &str) -> bool {
    let base = resource.split('/').next().unwrap_or(resource);
    BUILT_IN_GROUPS.contains(&group)
        && base != "*"
        && lookup(group, base).is_none()
        && !NOT_COLLECTIONS.contains(&base)
        && !RETIRED.contains(&(group, base))
}

/// Looks a collection up by API group and plural resource name.
pub fn lookup(group: &str, resource: &str) -> Option<&'static ResourceInfo> {
    CATALOG.iter().find(|r| r.group == group && r.resource == resource)
}

/// Looks a collection up by resource name in any group, the core group first
/// (for configuration that names resources without their group).
pub fn lookup_any_group(resource: &str) -> Option<&'static ResourceInfo> {
    lookup("", resource).or_else(|| CATALOG.iter().find(|r| r.resource == resource))
}

/// Looks a collection up by kind (`Pod`, `Node`), the core group first.
pub fn lookup_kind(kind: &str) -> Option<&'static ResourceInfo> {
    CATALOG.iter().find(|r| r.kind == kind && r.group.is_empty()).or_else(|| CATALOG.iter().find(|r| r.kind == kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_no_duplicates() {
        for (i, a) in CATALOG.iter().enumerate() {
            for b in &CATALOG[i + 1..] {
                assert!(!(a.group == b.group && a.resource == b.resource), "{} twice", a.display());
            }
        }
    }

    #[test]
    fn node_filters_name_only_collections_the_catalog_knows() {
        for (g, r) in
            [("", "pods"), ("", "nodes"), ("resource.k8s.io", "resourceslices"), ("nfd.k8s-sigs.io", "nodefeatures")]
        {
            assert!(node_filter(g, r).is_some() && lookup(g, r).is_some(), "{g}/{r}");
        }
        for (g, r) in
            [("", "services"), ("discovery.k8s.io", "endpointslices"), ("", "namespaces"), ("example.com", "widgets")]
        {
            assert!(node_filter(g, r).is_none(), "{g}/{r}");
        }
    }

    #[test]
    fn resources_a_built_in_group_does_not_serve() {
        assert!(not_served("apps", "pods"));
        assert!(not_served("", "deployments"));
        assert!(!not_served("apps", "deployments"));
        assert!(!not_served("", "pods/log"));
        assert!(!not_served("", "bindings"));
        assert!(!not_served("authorization.k8s.io", "subjectaccessreviews"));
        assert!(!not_served("example.com", "anything"));
        assert!(!not_served("apps", "*"));
    }

    #[test]
    fn node_growth() {
        assert!(lookup("", "nodes").unwrap().grows_with_nodes());
        assert!(!lookup("", "pods").unwrap().grows_with_nodes());
        assert_eq!(lookup_any_group("endpointslices").unwrap().group, "discovery.k8s.io");
        assert_eq!(lookup_kind("Event").unwrap().group, "");
    }
}
