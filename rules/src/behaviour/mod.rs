//! What a workload's API client will actually call.
//!
//! Permission is capability, not behaviour. Without knowledge of the agent,
//! a workload is assumed to use every collection it may list or watch, in the
//! scope it was granted. One piece of evidence narrows that for any agent: its
//! node name from the downward API (`fieldRef: spec.nodeName`) handed to it in
//! its arguments, which is taken as scoping its calls to its node. Merely
//! defining the variable proves nothing.

use crate::analysis::Access;
use crate::inventory::Inventory;
use crate::kube::resources::{self, ResourceInfo};
use crate::object::Object;
use crate::source::Location;
use crate::workload::{EnvSource, Workload};

#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    pub calls: Vec<ApiCall>,
    /// Evidence that the workload is told its node name and uses it.
    pub node_scope: Option<NodeScope>,
}

#[derive(Clone, Debug)]
pub struct ApiCall {
    pub group: Box<str>,
    pub resource: Box<str>,
    pub info: Option<&'static ResourceInfo>,
    pub list: bool,
    pub watch: bool,
    pub scope: CallScope,
    /// True when the call is assumed from the grants alone.
    pub inferred: bool,
}

impl ApiCall {
    pub fn display(&self) -> String {
        resources::display(&self.group, &self.resource)
    }

    /// Cluster-scoped and about one object per node.
    pub fn is_node_collection(&self) -> bool {
        self.info.is_some_and(|i| !i.namespaced && i.grows_with_nodes())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum CallScope {
    /// All namespaces (or a cluster-scoped collection as a whole).
    Cluster,
    Namespaces(Vec<Box<str>>),
    /// Objects of the copy's own node only (field selector `spec.nodeName` or `metadata.name`).
    Node,
}

#[derive(Clone, Debug)]
pub struct NodeScope {
    /// The environment variable holding the node name.
    pub variable: Box<str>,
    /// Where it is handed to the agent.
    pub location: Location,
}

pub fn infer(_inv: &Inventory, w: &Workload, obj: &Object, access: &Access) -> Behaviour {
    let node_scope = node_name_handed(w, obj);
    let calls = access
        .collections
        .values()
        .map(|c| ApiCall {
            group: c.group.clone(),
            resource: c.resource.clone(),
            info: c.info,
            list: c.list,
            watch: c.watch,
            scope: if !c.cluster_wide {
                CallScope::Namespaces(c.namespaces.clone())
            } else if node_scope.is_some() {
                CallScope::Node
            } else {
                CallScope::Cluster
            },
            inferred: true,
        })
        .collect();
    Behaviour { calls, node_scope }
}

/// Finds a `$(VAR)` reference in a container's command or args (or a field
/// selector built in an env value), where `VAR` comes from `fieldRef: spec.nodeName`.
pub fn node_name_handed(w: &Workload, obj: &Object) -> Option<NodeScope> {
    for c in w.containers() {
        let vars: Vec<&str> = c
            .env
            .iter()
            .filter(|e| matches!(&e.source, EnvSource::FieldRef(p) if &**p == "spec.nodeName"))
            .map(|e| &*e.name.value)
            .collect();
        for var in vars {
            let reference = format!("$({var})");
            if let Some(arg) = c.command.iter().chain(&c.args).find(|a| a.value.contains(&reference)) {
                return Some(NodeScope { variable: var.into(), location: obj.loc(arg.span) });
            }
            let selector = format!("spec.nodeName={reference}");
            for e in &c.env {
                if let EnvSource::Value(v) = &e.source
                    && v.value.contains(&selector)
                {
                    return Some(NodeScope { variable: var.into(), location: obj.loc(v.span) });
                }
            }
        }
    }
    None
}
