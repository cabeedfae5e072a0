//! Behaviour of agents no profile knows: a call inferred from each grant,
//! with what the manifest tells of it.
//!
//! A grant says what a workload *may* call, not what it does. Per granted
//! collection:
//! - Leases the identity may also write are its own locks (leader election,
//!   node heartbeats), which client-go reads and renews by name: not assumed
//!   to be listed or watched.
//! - Namespaces the workload is told to watch (`--watch-namespace`,
//!   `WATCH_NAMESPACE`, …) limit namespaced collections to them.
//! - Otherwise the call covers what the grant covers, and one of:
//!   - the workload is told its node name and the API server filters the
//!     collection by node (`kube::resources::node_filter`): each copy *can*
//!     ask for its own node's objects only — unverified;
//!   - its ServiceAccount is shared with other workloads and it is not told
//!     its node name: the grant may be theirs — unverified;
//!   - neither: nothing lets the copies ask for less, so a use covers the
//!     whole collection.

use super::Behaviour;
use crate::access::{Access, CollectionAccess};
use crate::agent_config::resolve;
use crate::calls::{ApiCall, Basis, CallScope, Inference, NodeIdentity};
use crate::inventory::Inventory;
use crate::kube::resources;
use crate::object::Object;
use crate::profile::ClientLimits;
use crate::workload::{EnvSource, Workload};

/// Flags and variables controllers use to limit their watches to some
/// namespaces; an empty value means all of them. `--watch-namespace`:
/// ingress-nginx, Kong; `--watch-namespaces`: Contour; `--namespaces`:
/// prometheus-operator, kube-state-metrics; `WATCH_NAMESPACE`: operators
/// scaffolded by operator-sdk (comma-separated for several).
const NAMESPACE_FLAGS: &[&str] = &["--watch-namespace", "--watch-namespaces", "--namespaces"];
const NAMESPACE_VARIABLES: &[&str] = &["WATCH_NAMESPACE"];

/// The calls of a workload whose containers no profile explains. `shared_with`
/// names the other workloads running as its ServiceAccount.
pub fn infer(inv: &Inventory, w: &Workload, obj: &Object, access: &Access, shared_with: &[String]) -> Behaviour {
    let node_identity = node_identity(w, obj);
    let watched_namespaces = watched_namespaces(inv, w, obj);
    let calls = access
        .collections
        .values()
        .filter(|c| !is_own_lock(access, c))
        .map(|c| {
            let scope = match (&watched_namespaces, c.cluster_wide) {
                (_, false) => CallScope::Namespaces(c.namespaces.clone()),
                (Some(ns), true) if c.info.is_none_or(|i| i.namespaced) => CallScope::Namespaces(ns.clone()),
                _ => CallScope::Cluster,
            };
            let filter = resources::node_filter(&c.group, &c.resource);
            let inference = match (&node_identity, filter) {
                (Some(identity), Some(filter)) => Inference::NodeScopable { identity: identity.clone(), filter },
                (None, _) if !shared_with.is_empty() => Inference::SharedIdentity { with: shared_with.to_vec() },
                _ => Inference::Unscoped,
            };
            ApiCall {
                group: c.group.clone(),
                resource: c.resource.clone(),
                info: c.info,
                list: c.list,
                watch: c.watch,
                get: false,
                scope,
                basis: Basis::Inferred(inference),
                origin: None,
            }
        })
        .collect();
    Behaviour { calls, node_identity, ..Behaviour::default() }
}

/// Leases the identity may write: the leader-election or heartbeat locks it
/// renews by name (client-go's `leaderelection`), not a collection it watches.
fn is_own_lock(access: &Access, c: &CollectionAccess) -> bool {
    &*c.group == "coordination.k8s.io" && &*c.resource == "leases" && access.writes(&c.group, &c.resource)
}

/// How the workload knows its node: an environment variable from
/// `fieldRef: spec.nodeName` in any container (whatever its name: agents read
/// the variable they define), or the host network.
pub fn node_identity(w: &Workload, obj: &Object) -> Option<NodeIdentity> {
    let from_env = w.containers().flat_map(|c| &c.env).find_map(|e| match &e.source {
        EnvSource::FieldRef(path) if &**path == "spec.nodeName" => {
            Some(NodeIdentity::Env { variable: e.name.value.clone(), location: obj.loc(e.name.span) })
        }
        _ => None,
    });
    from_env.or_else(|| w.pod.host_network.map(|span| NodeIdentity::HostNetwork { location: obj.loc(span) }))
}

/// The namespaces the workload is told to watch, when it is: the values of
/// the conventional flags and variables, the pod's own namespace for
/// `fieldRef: metadata.namespace`.
fn watched_namespaces(inv: &Inventory, w: &Workload, obj: &Object) -> Option<Vec<Box<str>>> {
    let names: Vec<String> = NAMESPACE_FLAGS.iter().map(|f| f.to_string()).collect();
    for c in w.containers() {
        let env = resolve::environment(inv, obj, c);
        let args = crate::profile::command_line(obj, c, &env);
        let value = crate::profile::flag_value(&args, &names).map(|(v, _)| v).or_else(|| {
            env.iter().find(|e| NAMESPACE_VARIABLES.contains(&e.name.as_str())).and_then(|e| e.value.clone())
        });
        let Some(value) = value else { continue };
        let list: Vec<Box<str>> = value
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| if n == "@metadata.namespace@" { obj.ns().into() } else { n.into() })
            .collect();
        // An empty value is the conventions' "all namespaces".
        return (!list.is_empty()).then_some(list);
    }
    None
}

/// Rate limits of a container no profile knows: the flags and variable that
/// client-go based agents commonly expose.
pub fn generic_client_limits(inv: &Inventory, w: &Workload, obj: &Object) -> ClientLimits {
    const QPS_FLAGS: &[&str] = &["--kube-api-qps", "--k8s-client-qps", "--kubernetes-client-qps", "--client-qps"];
    const BURST_FLAGS: &[&str] =
        &["--kube-api-burst", "--k8s-client-burst", "--kubernetes-client-burst", "--client-burst"];
    let mut limits = ClientLimits { default_qps: Some(5.0), ..ClientLimits::default() };
    for c in w.containers() {
        let env = resolve::environment(inv, obj, c);
        let args = crate::profile::command_line(obj, c, &env);
        let names = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if let Some((v, a)) = crate::profile::flag_value(&args, &names(QPS_FLAGS))
            && let Ok(q) = v.parse::<f64>()
        {
            limits.qps = Some((q, a.location));
        }
        if let Some((v, a)) = crate::profile::flag_value(&args, &names(BURST_FLAGS))
            && let Ok(b) = v.parse::<f64>()
        {
            limits.burst = Some((b, a.location));
        }
        if limits.qps.is_none()
            && let Some(e) = env.iter().find(|e| e.name == "KUBE_API_QPS")
            && let Some(q) = e.value.as_deref().and_then(|v| v.parse::<f64>().ok())
        {
            limits.qps = Some((q, e.location));
        }
        if limits.qps.is_some() {
            break;
        }
    }
    limits
}
