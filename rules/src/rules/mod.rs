//! The rules: one file each, declared with its id, name, category, default
//! severity and documentation. `docs/rules.md` and `apiload explain` are
//! generated from these declarations.

use crate::analysis::WorkloadAnalysis;
use crate::diagnostic::Diagnostic;
pub use crate::diagnostic::{RuleInfo, Stage};
use crate::inventory::Inventory;
use crate::object::Object;
use crate::options::Options;
use crate::source::{Location, Sources};
use crate::workload::Workload;

mod agent_config_unreadable;
mod apf_kube_system_workload_high;
mod apf_no_flowschema;
mod broad_group_list_watch;
mod declared_call_not_granted;
pub mod expired_exemption;
mod grant_of_unserved_resource;
pub mod ineffective_exemption;
mod invalid_call_declaration;
mod kubelet_auth_cache_ttl;
mod leader_election_per_node;
mod list_bypasses_watch_cache;
mod per_node_capability_only;
mod per_node_cluster_watch;
mod per_node_node_watch;
mod per_node_secret_watch;
mod per_node_unverified_calls;
mod per_node_wildcard_grant;
mod rollout_herd;
mod support;
mod unbounded_client;
mod unresolved_role_ref;
pub mod unused_exemption;

pub type CheckFn = fn(&Context<'_>, &mut Vec<Diagnostic>);

/// A rule raised by an analysis check: its declaration and the check.
/// (Rules raised while reading input or applying exemptions are declared as
/// a bare [`RuleInfo`] where they are raised.)
#[derive(Debug)]
pub struct Rule {
    pub info: RuleInfo,
    pub check: CheckFn,
}

/// The rules raised outside the analysis checks: while reading input
/// ([`Stage::Input`]) and while applying exemptions ([`Stage::Exemptions`]).
static RAISED_ELSEWHERE: &[&RuleInfo] = &[
    &crate::input::invalid_manifest::RULE,
    &crate::input::duplicate_object::RULE,
    &crate::inferred_namespace::RULE,
    &expired_exemption::RULE,
    &ineffective_exemption::RULE,
    &unused_exemption::RULE,
];

/// The rules of [`Stage::Analysis`], run by `Input::analyze` in id order.
pub static CHECKS: &[&Rule] = &[
    &unresolved_role_ref::RULE,
    &agent_config_unreadable::RULE,
    &invalid_call_declaration::RULE,
    &per_node_cluster_watch::RULE,
    &per_node_node_watch::RULE,
    &per_node_capability_only::RULE,
    &per_node_wildcard_grant::RULE,
    &per_node_secret_watch::RULE,
    &broad_group_list_watch::RULE,
    &per_node_unverified_calls::RULE,
    &grant_of_unserved_resource::RULE,
    &declared_call_not_granted::RULE,
    &unbounded_client::RULE,
    &rollout_herd::RULE,
    &leader_election_per_node::RULE,
    &apf_no_flowschema::RULE,
    &apf_kube_system_workload_high::RULE,
    &list_bypasses_watch_cache::RULE,
    &kubelet_auth_cache_ttl::RULE,
];

/// Every rule, in id order: what `apiload explain`, `apiload rules` and
/// `docs/rules.md` show.
pub fn all() -> &'static [&'static RuleInfo] {
    static ALL: std::sync::OnceLock<Vec<&'static RuleInfo>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<&'static RuleInfo> =
            RAISED_ELSEWHERE.iter().copied().chain(CHECKS.iter().map(|r| &r.info)).collect();
        all.sort_by_key(|r| r.id);
        all
    })
}

/// Finds a rule by id or name.
pub fn find(id_or_name: &str) -> Option<&'static RuleInfo> {
    all().iter().copied().find(|r| r.id.eq_ignore_ascii_case(id_or_name) || r.name == id_or_name)
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
