//! The API calls an agent makes, as the engine models them: which
//! collection, which verbs, in which scope, and why it is thought to make them.
//! Profiles produce them from an agent's configuration; the behaviour layer
//! infers them for agents no profile knows; cost and the rules read them.

use crate::kube::resources::{self, ResourceInfo};
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
    /// True when the call is assumed from the grants alone.
    pub inferred: bool,
    /// What in the agent's configuration makes the call (profiles only).
    pub origin: Option<CallOrigin>,
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
    /// small fixed-size cluster-scoped collection such as Namespaces or
    /// StorageClasses is left to the estimate).
    pub fn reportable_fanout(&self) -> bool {
        self.fans_out() && resources::is_sizeable(self.info)
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
