//! What a workload's API client will actually call.
//!
//! Permission is capability, not behaviour. For containers an agent profile
//! recognises, the profile reads the agent's configuration and says what it
//! calls (see `crate::profile`). For the rest, every collection the workload
//! may list or watch is assumed used, in the scope it was granted — unless
//! its node name from the downward API (`fieldRef: spec.nodeName`) is handed
//! to it, in its arguments or in a configuration file it mounts, which is
//! taken as scoping its calls to its node. Merely defining the variable
//! proves nothing.

mod generic;

use crate::access::Access;
use crate::inventory::Inventory;
use crate::object::Object;
use crate::profile::{self, AgentRun, ClientLimits, ProfileSet};
use crate::source::{Location, Sources};
use crate::workload::Workload;

use crate::calls::{ApiCall, CallScope};
pub use generic::{generic_client_limits, node_name_handed};

#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    pub calls: Vec<ApiCall>,
    /// Evidence that the workload is told its node name and uses it (unknown agents).
    pub node_scope: Option<NodeScope>,
    /// Containers recognised by a profile, and what the profile made of them.
    pub agents: Vec<AgentRun>,
    /// The client rate limit of the container that talks to the API the most.
    pub client: ClientLimits,
}

impl Behaviour {
    /// Whether a profiled agent elects a leader among the copies (granted or not).
    pub fn leader_elected(&self) -> bool {
        self.agents.iter().flat_map(|r| r.calls.iter()).any(|c| c.origin.as_ref().is_some_and(|o| o.central))
    }
}

#[derive(Clone, Debug)]
pub struct NodeScope {
    /// The environment variable holding the node name.
    pub variable: Box<str>,
    /// Where it is handed to the agent.
    pub location: Location,
}

/// Infers the calls of a workload's containers.
pub fn infer(
    sources: &Sources,
    inv: &Inventory,
    profiles: &ProfileSet,
    w: &Workload,
    obj: &Object,
    access: &Access,
) -> Behaviour {
    let mut b = Behaviour::default();
    let mut fallback = false;
    for c in w.containers() {
        let command = c.command.first().or(c.args.first()).map(|a| &*a.value).filter(|a| !a.starts_with('-'));
        let Some(p) = profiles.for_container(c.image.as_ref().map(|i| &*i.value), command) else { continue };
        let run = profile::run(p, sources, inv, w, obj, c);
        fallback |= run.fallback;
        b.agents.push(run);
    }
    // Containers a profile recognised account for the pod's calls; unknown
    // sidecars of a known agent are not assumed to use its grants.
    if b.agents.is_empty() || fallback {
        let generic = generic::infer(sources, inv, w, obj, access);
        b.calls.extend(generic.calls);
        b.node_scope = generic.node_scope;
    }
    for run in &b.agents {
        if !run.fallback {
            b.calls.extend(run.calls.iter().filter(|c| granted(access, c)).cloned());
        }
    }
    b.client = pick_client(&b.agents).unwrap_or_else(|| generic_client_limits(inv, w, obj));
    b
}

/// The limits of the profiled container that sets them (or the first).
fn pick_client(agents: &[AgentRun]) -> Option<ClientLimits> {
    agents.iter().find(|a| a.client.qps.is_some()).or(agents.first()).map(|a| a.client.clone())
}

/// Whether the identity may make the call at all; a call the API server
/// refuses costs little and is not a fan-out.
fn granted(access: &Access, call: &ApiCall) -> bool {
    if call.get && !call.list && !call.watch || call.scope == CallScope::Object {
        return true;
    }
    let Some(a) = access.find(&call.group, &call.resource) else { return false };
    match &call.scope {
        CallScope::Namespaces(ns) => a.cluster_wide || ns.iter().all(|n| a.namespaces.contains(n)),
        _ => a.cluster_wide,
    }
}
