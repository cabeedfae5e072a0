//! What a workload costs the API server at production size.
//!
//! The model (docs/cost-model.md states it with its sources):
//!
//! - A collection holds `count` objects at the cluster profile's size: per
//!   node (Nodes, node Leases), per pod (Pods, Events, ReplicaSets), per
//!   Service (Endpoints, EndpointSlices), per namespace, or fixed.
//! - One copy's LIST or watch covers the whole collection (cluster scope),
//!   `count / nodes` objects (scoped to its node with `spec.nodeName`, served
//!   from the watch cache's index), the share of the namespaces it names, or
//!   one object.
//! - Every copy makes its initial LISTs at once when the workload is created
//!   or rolled out (a new DaemonSet is not throttled by `maxUnavailable`):
//!   `copies × objects × object size` bytes.
//! - In steady state each watch receives `objects × churn` events; all copies
//!   together `copies × objects × churn`. A cluster-wide watch from every node
//!   therefore grows with N², a node-scoped one with N.
//! - The request rate is capped by the client's QPS limit: `copies × QPS`,
//!   unbounded when the limiter is off.
//! - Leader election makes each copy GET its Lease every retry period (2 s):
//!   `copies / 2` requests per second.
//! - What the audit log showed (basis `observed`) is multiplied the same
//!   way: its calls' scopes and repeated LISTs (`every`) as above, and the
//!   request rate one copy was seen to send, times the copies at
//!   production size.

use crate::analysis::WorkloadAnalysis;
use crate::calls::{ApiCall, CallScope};
use crate::kube::resources::{Count, ResourceInfo};
use crate::options::ClusterProfile;

/// Retry period of client-go leader election as agents configure it
/// (OpenTelemetry's k8s_leader_elector, Beats' leader_retryperiod: 2 s).
const LEASE_RETRY_SECONDS: f64 = 2.0;

/// What the engine assumes for a collection the catalog does not know.
pub const UNKNOWN: ResourceInfo = ResourceInfo {
    group: "",
    resource: "",
    kind: "",
    namespaced: true,
    count: Count::PerPod(0.1),
    object_bytes: 2_000.0,
    churn_per_hour: 1.0,
};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    pub copies: u64,
    /// Watch streams held by all copies.
    pub watches: u64,
    /// Bytes of the initial LISTs when every copy starts at once.
    pub initial_list_bytes: f64,
    /// Watch events per second delivered to all copies in steady state.
    pub watch_events_per_second: f64,
    /// Request rate ceiling under the client's QPS limit; `None` when there
    /// is no limit or it is not known (see `client`).
    pub requests_per_second: Option<f64>,
    pub client: ClientRate,
    /// Lease requests per second when every copy runs leader election.
    pub lease_requests_per_second: f64,
    /// Bytes per second of LISTs repeated by polling calls, in steady state.
    pub poll_bytes_per_second: f64,
    /// Requests per second of all copies at the rate one copy was seen to
    /// send in the audit log; `None` without an observation.
    pub observed_requests_per_second: Option<f64>,
    pub resources: Vec<ResourceEstimate>,
}

/// What is known of the client's rate limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientRate {
    /// A QPS limit, configured or the agent's known default.
    Limited,
    /// A negative QPS: client-go builds no limiter.
    Unbounded,
    /// Neither configured nor known for this agent.
    #[default]
    Unknown,
}

impl ClientRate {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientRate::Limited => "limited",
            ClientRate::Unbounded => "unbounded",
            ClientRate::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceEstimate {
    /// `pods`, `replicasets.apps`.
    pub resource: String,
    /// `cluster`, `namespace`, `node` or `object`.
    pub scope: &'static str,
    pub list: bool,
    pub watch: bool,
    /// Copies that make the call (1 when only the leader does).
    pub copies: u64,
    pub objects_per_copy: f64,
    pub watches: u64,
    pub initial_list_bytes: f64,
    pub watch_events_per_second: f64,
    /// Bytes per second when the call repeats its LIST (`every` seconds).
    pub poll_bytes_per_second: f64,
}

/// Objects in a collection at the profile's size.
pub fn count(info: &ResourceInfo, profile: &ClusterProfile) -> f64 {
    if let Some(n) = profile.override_for(info.group, info.resource).and_then(|o| o.count) {
        return n;
    }
    match info.count {
        Count::PerNode(k) => k * profile.nodes as f64,
        Count::PerPod(k) => k * profile.pods(),
        Count::PerService(k) => k * profile.services(),
        Count::PerNamespace(k) => k * profile.namespaces(),
        Count::Fixed(k) => k,
    }
}

/// The size of one object of the collection at the profile's size.
pub fn object_bytes(info: &ResourceInfo, profile: &ClusterProfile) -> f64 {
    profile.override_for(info.group, info.resource).and_then(|o| o.object_bytes).unwrap_or(info.object_bytes)
}

fn churn_per_second(info: &ResourceInfo, profile: &ClusterProfile) -> f64 {
    profile.override_for(info.group, info.resource).and_then(|o| o.churn_per_hour).unwrap_or(info.churn_per_hour)
        / 3600.0
}

/// The estimate of one call made by `copies` copies.
pub fn call_estimate(call: &ApiCall, copies: u64, profile: &ClusterProfile) -> ResourceEstimate {
    let info = call.info.unwrap_or(&UNKNOWN);
    let total = count(info, profile);
    let copies = if call.origin.as_ref().is_some_and(|o| o.central) { copies.min(1) } else { copies };
    let (scope, objects) = match &call.scope {
        CallScope::Cluster => ("cluster", total),
        CallScope::Namespaces(ns) if info.namespaced => {
            ("namespace", total * (ns.len() as f64 / profile.namespaces().max(1.0)).min(1.0))
        }
        CallScope::Namespaces(_) => ("namespace", total),
        CallScope::Node if info.grows_with_nodes() && !info.namespaced => ("node", 1.0),
        CallScope::Node => ("node", total / profile.nodes.max(1) as f64),
        CallScope::Object => ("object", 1.0),
    };
    let listing = call.list || call.watch;
    let watches = if call.watch { copies } else { 0 };
    let list_bytes = if listing { copies as f64 * objects * object_bytes(info, profile) } else { 0.0 };
    let every = call.origin.as_ref().and_then(|o| o.every).filter(|e| *e > 0.0);
    ResourceEstimate {
        resource: call.display(),
        scope,
        list: call.list,
        watch: call.watch,
        copies,
        objects_per_copy: objects,
        watches,
        initial_list_bytes: list_bytes,
        watch_events_per_second: watches as f64 * objects * churn_per_second(info, profile),
        poll_bytes_per_second: every.map_or(0.0, |e| list_bytes / e),
    }
}

/// Sums call estimates.
pub fn sum<'a>(copies: u64, parts: impl IntoIterator<Item = &'a ResourceEstimate>) -> Estimate {
    let mut e = Estimate { copies, ..Estimate::default() };
    for r in parts {
        e.watches += r.watches;
        e.initial_list_bytes += r.initial_list_bytes;
        e.watch_events_per_second += r.watch_events_per_second;
        e.poll_bytes_per_second += r.poll_bytes_per_second;
        e.resources.push(r.clone());
    }
    e
}

/// The whole workload: every call its copies make.
pub fn estimate(a: &WorkloadAnalysis, profile: &ClusterProfile) -> Estimate {
    let copies = a.fanout.copies;
    let parts: Vec<ResourceEstimate> = a.behaviour.calls.iter().map(|c| call_estimate(c, copies, profile)).collect();
    let mut e = sum(copies, &parts);
    e.client = match a.behaviour.client.effective_qps() {
        Some(q) if q < 0.0 => ClientRate::Unbounded,
        Some(q) => {
            e.requests_per_second = Some(q * copies as f64);
            ClientRate::Limited
        }
        None => ClientRate::Unknown,
    };
    if a.behaviour.leader_elected() {
        e.lease_requests_per_second = copies as f64 / LEASE_RETRY_SECONDS;
    }
    e.observed_requests_per_second =
        a.behaviour.observed.as_ref().map(|o| o.requests_per_copy_per_second * copies as f64);
    e
}

/// `6.0 TB`, `75 GB`, `120 MB`: decimal units, two significant digits.
pub fn bytes(b: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if v >= 10.0 || i == 0 { format!("{v:.0} {}", UNITS[i]) } else { format!("{v:.1} {}", UNITS[i]) }
}

/// `1,250,000` or `0.4` for rates.
pub fn rate(r: f64) -> String {
    if r >= 10.0 { crate::text::thousands(r.round() as u64) } else { format!("{r:.1}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::lookup;

    fn call(resource: &str, scope: CallScope) -> ApiCall {
        ApiCall {
            group: "".into(),
            resource: resource.into(),
            info: lookup("", resource),
            list: true,
            watch: true,
            get: false,
            scope,
            basis: crate::calls::Basis::Inferred(crate::calls::Inference::Unscoped),
            origin: None,
        }
    }

    fn at(nodes: u64, c: &ApiCall) -> ResourceEstimate {
        let profile = ClusterProfile { nodes, ..ClusterProfile::default() };
        call_estimate(c, nodes, &profile)
    }

    #[test]
    fn growth_with_cluster_size() {
        let ratio = |c: &ApiCall, f: fn(&ResourceEstimate) -> f64| f(&at(2_000, c)) / f(&at(1_000, c));
        let cluster_pods = call("pods", CallScope::Cluster);
        let node_pods = call("pods", CallScope::Node);
        let nodes = call("nodes", CallScope::Cluster);
        for f in [|e: &ResourceEstimate| e.initial_list_bytes, |e: &ResourceEstimate| e.watch_events_per_second] {
            assert!((ratio(&cluster_pods, f) - 4.0).abs() < 1e-9);
            assert!((ratio(&node_pods, f) - 2.0).abs() < 1e-9);
            assert!((ratio(&nodes, f) - 4.0).abs() < 1e-9);
        }
    }

    #[test]
    fn the_envelope_numbers() {
        // 5,000 copies × 150,000 pods × 8 KB = 6 TB.
        let e = at(5_000, &call("pods", CallScope::Cluster));
        assert_eq!(bytes(e.initial_list_bytes), "6.0 TB");
        assert_eq!(e.watches, 5_000);
        let own_node = at(5_000, &call("nodes", CallScope::Node));
        assert_eq!(own_node.objects_per_copy, 1.0);
    }

    #[test]
    fn formatting() {
        assert_eq!(bytes(999.0), "999 B");
        assert_eq!(bytes(75e9), "75 GB");
        assert_eq!(bytes(1.25e6), "1.2 MB");
        assert_eq!(rate(0.42), "0.4");
        assert_eq!(rate(12345.6), "12,346");
    }
}
