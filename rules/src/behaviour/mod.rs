//! What a workload's API client will actually call, and on what basis.
//!
//! Permission is capability, not behaviour. For containers an agent profile
//! recognises, the profile reads the agent's configuration and says what it
//! calls (basis `profile`, see `crate::profile`). For the rest, a call is
//! inferred from each grant (basis `inferred`, see `generic`), with what the
//! manifest tells of it: whether the copies could ask for their own node's
//! objects only, or whether the grant may be another workload's.

mod generic;
pub mod observed;

use crate::access::Access;
use crate::inventory::Inventory;
use crate::object::Object;
use crate::profile::{self, AgentRun, ClientLimits, ProfileSet};
use crate::source::Sources;
use crate::workload::Workload;

use crate::calls::{ApiCall, CallScope, NodeIdentity};
use crate::declared::{self, Declaration};
use crate::options::AnnotationPolicy;
pub use generic::{generic_client_limits, node_identity};

#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    pub calls: Vec<ApiCall>,
    /// How the workload knows its node, when calls are inferred for it.
    pub node_identity: Option<NodeIdentity>,
    /// The owner's declaration (`apiload.dev/api-calls`), and whether it
    /// counts here (where annotations are trusted).
    pub declaration: Option<(Declaration, bool)>,
    /// Containers recognised by a profile, and what the profile made of them.
    pub agents: Vec<AgentRun>,
    /// The client rate limit of the container that talks to the API the most.
    pub client: ClientLimits,
    /// What the API server's audit log showed of the workload, when it was given.
    pub observed: Option<observed::Observed>,
}

impl Behaviour {
    /// Whether a profiled agent elects a leader among the copies (granted or not).
    pub fn leader_elected(&self) -> bool {
        self.agents.iter().flat_map(|r| r.calls.iter()).any(|c| c.origin.as_ref().is_some_and(|o| o.central))
    }
}

/// What the analysis knows of a workload before its behaviour.
pub struct Subject<'a> {
    pub workload: &'a Workload,
    pub object: &'a Object,
    pub access: &'a Access,
    /// The other workloads running as its ServiceAccount.
    pub shared_with: &'a [String],
}

/// Infers the calls of a workload's containers. `annotations` says where
/// the owner's declaration counts.
pub fn infer(
    sources: &Sources,
    inv: &Inventory,
    profiles: &ProfileSet,
    subject: &Subject<'_>,
    annotations: &AnnotationPolicy,
) -> Behaviour {
    let Subject { workload: w, object: obj, access, shared_with } = *subject;
    let mut b = Behaviour::default();
    let declaration = declared::read(w, obj);
    let mut fallback = false;
    for c in w.containers() {
        let command = c.command.first().or(c.args.first()).map(|a| &*a.value).filter(|a| !a.starts_with('-'));
        let Some(p) = profiles.for_container(c.image.as_ref().map(|i| &*i.value), command) else { continue };
        let run = profile::run(p, sources, inv, w, obj, c);
        fallback |= run.fallback;
        b.agents.push(run);
    }
    let trusted = declaration.as_ref().is_some_and(|_| annotations.allows(obj.ns()));
    if let Some(d) = declaration.as_ref().filter(|_| trusted) {
        // The owner's word replaces inference; a declared call the grants do
        // not allow is refused by the API server (AL109 says so).
        b.calls.extend(d.calls.iter().filter(|c| granted(access, c)).cloned());
    } else if b.agents.is_empty() || fallback {
        // Containers a profile recognised account for the pod's calls;
        // unknown sidecars of a known agent are not assumed to use its grants.
        let generic = generic::infer(inv, w, obj, access, shared_with);
        b.calls.extend(generic.calls);
        b.node_identity = generic.node_identity;
    }
    for run in &b.agents {
        if !run.fallback {
            b.calls.extend(run.calls.iter().filter(|c| granted(access, c)).cloned());
        }
    }
    b.client = pick_client(&b.agents).unwrap_or_else(|| generic_client_limits(inv, w, obj));
    b.declaration = declaration.map(|d| (d, trusted));
    b
}

/// The limits of the profiled container that sets them (or the first).
fn pick_client(agents: &[AgentRun]) -> Option<ClientLimits> {
    agents.iter().find(|a| a.client.qps.is_some()).or(agents.first()).map(|a| a.client.clone())
}

/// Whether the identity may make the call at all; a call the API server
/// refuses costs little and is not a fan-out.
pub fn granted(access: &Access, call: &ApiCall) -> bool {
    if call.get && !call.list && !call.watch || call.scope == CallScope::Object {
        return true;
    }
    let Some(a) = access.find(&call.group, &call.resource) else { return false };
    match &call.scope {
        CallScope::Namespaces(ns) => a.cluster_wide || ns.iter().all(|n| a.namespaces.contains(n)),
        _ => a.cluster_wide,
    }
}
