//! The API calls an agent makes, as the engine models them: which
//! collection, which verbs, in which scope, and why it is thought to make them.
//! Profiles produce them from an agent's configuration; the behaviour layer
//! infers them for agents no profile knows; cost and the rules read them.

use crate::kube::resources::{self, NodeFilter, ResourceInfo};
use crate::source::Location;

#[derive(Clone, Debug)]
pub struct ApiCall {
    pub group: Box<str>,
    pub resource: Box<str>,
    pub info: Option<&'static ResourceInfo>,
    pub list: bool,
    pub watch: bool,
    /// Reads single objects by name.
    pub get: bool,
    pub scope: CallScope,
    /// What the call rests on.
    pub basis: Basis,
    /// What makes the call: the agent's configuration key (profiles), the
    /// owner's declaration (declared calls). `None` for inferred calls.
    pub origin: Option<CallOrigin>,
}

/// What a call attributed to a workload rests on. A grant says what an
/// agent *may* call; only a profile, a declaration or an observation says
/// what it *does*.
#[derive(Clone, Debug, PartialEq)]
pub enum Basis {
    /// A profile read the agent's configuration (`origin` names the key).
    Profile,
    /// The workload's owner declared it (`apiload.dev/api-calls`).
    Declared,
    /// The API server's audit log showed it.
    Observed,
    /// The grants and the manifest's signals only.
    Inferred(Inference),
}

impl Basis {
    /// As the JSON output names it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Basis::Profile => "profile",
            Basis::Declared => "declared",
            Basis::Observed => "observed",
            Basis::Inferred(_) => "inferred",
        }
    }

    /// Known to be made (not merely permitted).
    pub fn is_known(&self) -> bool {
        !matches!(self, Basis::Inferred(_))
    }
}

/// What can be told of a call inferred from a grant.
#[derive(Clone, Debug, PartialEq)]
pub enum Inference {
    /// Nothing lets the copies ask for less: the API server cannot filter the
    /// collection by node, or the workload is not told its node name. If the
    /// call is made, it covers its whole scope.
    Unscoped,
    /// The workload is told its node name and the API server filters this
    /// collection by node: each copy can ask for its own node's objects only.
    NodeScopable { identity: NodeIdentity, filter: NodeFilter },
    /// The ServiceAccount is shared with other workloads and the workload is
    /// not told its node name: the grant may be theirs, and nothing shows
    /// that this workload calls the API at all.
    SharedIdentity { with: Vec<String> },
}

/// How a workload knows which node it runs on.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeIdentity {
    /// An environment variable set from `fieldRef: spec.nodeName`, whatever its name.
    Env { variable: Box<str>, location: Location },
    /// `hostNetwork: true`: the pod's host name is the node's, which is the
    /// node's name unless the kubelet overrides it (`--hostname-override`).
    HostNetwork { location: Location },
}

impl NodeIdentity {
    pub fn location(&self) -> Location {
        match self {
            NodeIdentity::Env { location, .. } | NodeIdentity::HostNetwork { location } => *location,
        }
    }

    /// "its node name (`NODE_NAME` from `spec.nodeName`)".
    pub fn describe(&self) -> String {
        match self {
            NodeIdentity::Env { variable, .. } => format!("its node name (`{variable}` from `spec.nodeName`)"),
            NodeIdentity::HostNetwork { .. } => "its node name (the host name, as it uses the host network)".into(),
        }
    }
}

/// Why a profiled agent makes a call.
#[derive(Clone, Debug)]
pub struct CallOrigin {
    /// The agent (`OpenTelemetry Collector`).
    pub agent: String,
    /// The feature (`k8s_attributes processor `k8s_attributes``).
    pub feature: String,
    /// The configuration key that decides.
    pub evidence: Location,
    pub because: Option<String>,
    pub fix: Option<String>,
    /// Made by the elected leader only.
    pub central: bool,
    /// Seconds between LISTs, for a call that polls.
    pub every: Option<f64>,
    /// LISTs with the most-recent semantic (a quorum read).
    pub consistent_list: bool,
    /// Inherent to the agent's role.
    pub inherent: Option<String>,
}

impl ApiCall {
    pub fn display(&self) -> String {
        resources::display(&self.group, &self.resource)
    }

    /// Cluster-scoped and about one object per node.
    pub fn is_node_collection(&self) -> bool {
        self.info.is_some_and(|i| !i.namespaced && i.grows_with_nodes())
    }

    /// A list or watch of the whole collection from every copy.
    pub fn fans_out(&self) -> bool {
        self.scope == CallScope::Cluster
            && (self.list || self.watch)
            && !self.origin.as_ref().is_some_and(|o| o.central)
    }

    /// A fan-out the rules report: of a namespaced collection, a collection
    /// that grows with the cluster, or one the catalog does not know (a
    /// small fixed-size cluster-scoped collection such as StorageClasses is
    /// left to the estimate) — and one that can be shown: known to be made,
    /// or inferred with nothing that lets the copies ask for less.
    pub fn reportable_fanout(&self) -> bool {
        self.sizeable_fanout()
            && matches!(
                self.basis,
                Basis::Profile | Basis::Declared | Basis::Observed | Basis::Inferred(Inference::Unscoped)
            )
    }

    /// A fan-out inferred from a grant that the copies could avoid, or that
    /// may not be this workload's at all: not something apiload can show.
    pub fn unverified_fanout(&self) -> bool {
        self.sizeable_fanout()
            && matches!(self.basis, Basis::Inferred(Inference::NodeScopable { .. } | Inference::SharedIdentity { .. }))
    }

    fn sizeable_fanout(&self) -> bool {
        self.fans_out() && resources::is_sizeable(self.info)
    }

    /// The call as machine-readable output names it.
    pub fn reference(&self) -> crate::diagnostic::CallRef {
        let verbs = [("list", self.list), ("watch", self.watch), ("get", self.get)];
        crate::diagnostic::CallRef {
            resource: self.display(),
            verbs: verbs.iter().filter(|(_, on)| *on).map(|(v, _)| *v).collect(),
            scope: match self.scope {
                CallScope::Cluster => "cluster",
                CallScope::Namespaces(_) => "namespace",
                CallScope::Node => "node",
                CallScope::Object => "object",
            },
            basis: self.basis.as_str(),
            inference: match &self.basis {
                Basis::Inferred(Inference::Unscoped) => Some("unscoped"),
                Basis::Inferred(Inference::NodeScopable { .. }) => Some("node-scopable"),
                Basis::Inferred(Inference::SharedIdentity { .. }) => Some("shared-identity"),
                _ => None,
            },
        }
    }

    /// "LIST and WATCH" / "WATCH" / "LIST".
    pub fn verbs(&self) -> &'static str {
        match (self.list, self.watch) {
            (true, true) => "LIST and WATCH",
            (false, true) => "WATCH",
            _ => "LIST",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum CallScope {
    /// All namespaces (or a cluster-scoped collection as a whole).
    Cluster,
    Namespaces(Vec<Box<str>>),
    /// Objects of the copy's own node only (field selector `spec.nodeName` or `metadata.name`).
    Node,
    /// One named object.
    Object,
}
