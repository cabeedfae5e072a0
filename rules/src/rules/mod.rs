//! The rules: one file each, declared with its id, name, category, default
//! severity and documentation. `docs/rules.md` and `apiload explain` are
//! generated from these declarations.

use crate::analysis::WorkloadAnalysis;
use crate::diagnostic::{Category, Diagnostic, Severity};
use crate::inventory::Inventory;
use crate::object::Object;
use crate::options::Options;
use crate::source::{Location, Sources};
use crate::workload::Workload;

mod agent_config_unreadable;
mod apf_kube_system_workload_high;
mod apf_no_flowschema;
mod broad_group_list_watch;
mod duplicate_object;
pub mod exemptions;
mod invalid_manifest;
mod kubelet_auth_cache_ttl;
mod leader_election_per_node;
mod list_bypasses_watch_cache;
mod per_node_capability_only;
mod per_node_cluster_watch;
mod per_node_node_watch;
mod per_node_secret_watch;
mod per_node_wildcard_grant;
mod rollout_herd;
mod support;
pub use support::thousands;
mod unbounded_client;
mod unresolved_role_ref;

/// Constructors for the findings made while reading input.
pub mod input {
    pub use super::duplicate_object::diagnostic as duplicate;
    pub use super::invalid_manifest::diagnostic as invalid;
}

pub type CheckFn = fn(&Context<'_>, &mut Vec<Diagnostic>);

/// A rule's declaration.
#[derive(Debug)]
pub struct RuleMeta {
    /// Stable id, `AL` and three digits.
    pub id: &'static str,
    /// Stable kebab-case name.
    pub name: &'static str,
    pub category: Category,
    pub severity: Severity,
    /// One line.
    pub summary: &'static str,
    /// What it detects.
    pub detects: &'static str,
    /// Why it matters, with numbers.
    pub why: &'static str,
    /// A manifest that fires.
    pub example: &'static str,
    /// The configuration file the example needs, if any.
    pub example_config: Option<&'static str>,
    /// The fix.
    pub fix: &'static str,
    /// `None` for rules reported while reading input rather than by analysis.
    pub check: Option<CheckFn>,
}

impl PartialEq for RuleMeta {
    fn eq(&self, other: &RuleMeta) -> bool {
        self.id == other.id
    }
}

/// Every rule, in id order.
pub static ALL: &[&RuleMeta] = &[
    &invalid_manifest::RULE,
    &duplicate_object::RULE,
    &unresolved_role_ref::RULE,
    &agent_config_unreadable::RULE,
    &exemptions::EXPIRED,
    &exemptions::INVALID,
    &exemptions::UNUSED,
    &per_node_cluster_watch::RULE,
    &per_node_node_watch::RULE,
    &per_node_capability_only::RULE,
    &per_node_wildcard_grant::RULE,
    &per_node_secret_watch::RULE,
    &broad_group_list_watch::RULE,
    &unbounded_client::RULE,
    &rollout_herd::RULE,
    &leader_election_per_node::RULE,
    &apf_no_flowschema::RULE,
    &apf_kube_system_workload_high::RULE,
    &list_bypasses_watch_cache::RULE,
    &kubelet_auth_cache_ttl::RULE,
];

/// Finds a rule by id or name.
pub fn find(id_or_name: &str) -> Option<&'static RuleMeta> {
    ALL.iter().copied().find(|r| r.id.eq_ignore_ascii_case(id_or_name) || r.name == id_or_name)
}

/// What a rule sees.
pub struct Context<'a> {
    pub sources: &'a Sources,
    pub inventory: &'a Inventory,
    pub analyses: &'a [WorkloadAnalysis],
    pub options: &'a Options,
}

impl<'a> Context<'a> {
    pub fn workload(&self, a: &WorkloadAnalysis) -> (&'a Workload, &'a Object) {
        let w = &self.inventory.workloads[a.workload];
        (w, self.inventory.object(w.object))
    }

    /// Where a finding about a workload's identity points: its
    /// `serviceAccountName`, or its name when it uses the default ServiceAccount.
    pub fn identity_location(&self, a: &WorkloadAnalysis) -> Location {
        let (_, obj) = self.workload(a);
        a.identity.field.unwrap_or_else(|| obj.loc(obj.name_span))
    }
}
