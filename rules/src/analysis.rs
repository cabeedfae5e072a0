//! Per workload: how many copies run, as whom, with which grants, and what
//! they will actually call. Rules read these analyses; they do not redo joins.

use crate::access::{self, Access, CollectionAccess};
use crate::behaviour::{self, Behaviour};
use crate::copies::{self, FanOut};
use crate::inventory::Inventory;
use crate::object::Object;
use crate::options::{AnnotationPolicy, Options};
use crate::profile::ProfileSet;
use crate::source::{Location, Sources};
use crate::workload::{VolumeSource, Workload};
use std::collections::HashMap;

#[derive(Debug)]
pub struct WorkloadAnalysis {
    /// Index into `Inventory::workloads`.
    pub workload: usize,
    pub fanout: FanOut,
    pub identity: Identity,
    pub access: Access,
    pub behaviour: Behaviour,
}

#[derive(Clone, Debug)]
pub struct Identity {
    pub namespace: Box<str>,
    pub service_account: Box<str>,
    /// The `serviceAccountName` field; `None` when the default is used.
    pub field: Option<Location>,
    pub token: Token,
    /// The other workloads of the input running as the same ServiceAccount
    /// (`Deployment ns/name`): RBAC grants to the identity, so its grants are
    /// what all of them need together.
    pub shared_with: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    /// API credentials are mounted (the default).
    Mounted,
    /// `automountServiceAccountToken: false` on the pod or the ServiceAccount,
    /// and no projected token: the pod cannot call the API as its ServiceAccount.
    Disabled(Location),
}

impl WorkloadAnalysis {
    pub fn cluster_collections(&self) -> impl Iterator<Item = &CollectionAccess> {
        self.access.collections.values().filter(|c| c.cluster_wide)
    }

    pub fn has_api_credentials(&self) -> bool {
        self.identity.token == Token::Mounted
    }

    /// Its copies multiply with the cluster (per node, or at least the
    /// fan-out replica count) and can call the API.
    pub fn fans_out_with_credentials(&self) -> bool {
        self.fanout.per_node && self.has_api_credentials()
    }

    /// The workloads the API Priority and Fairness rules (AL401, AL402) and
    /// `apiload mitigate` look at: fanning out with credentials, and listing
    /// or watching something.
    pub fn fans_out_listing(&self) -> bool {
        self.fans_out_with_credentials() && self.behaviour.calls.iter().any(|c| c.list || c.watch)
    }
}

pub fn analyze_workloads(
    sources: &Sources,
    inv: &Inventory,
    profiles: &ProfileSet,
    options: &Options,
    annotations: &AnnotationPolicy,
    observations: Option<&crate::observed::Observations>,
) -> Vec<WorkloadAnalysis> {
    let users = identity_users(inv);
    let autoscalers = copies::autoscalers(inv);
    crate::parallel::map(&inv.workloads, 128, |i, w| {
        let obj = inv.object(w.object);
        let fanout = copies::fan_out(inv, &autoscalers, w, obj, options);
        let mut identity = identity(inv, w, obj);
        if let Some(all) = users.get(&(identity.namespace.clone(), identity.service_account.clone())) {
            identity.shared_with =
                all.iter().filter(|&&j| j != i).map(|&j| inv.object(inv.workloads[j].object).display()).collect();
            identity.shared_with.sort();
        }
        let access = access::of_service_account(inv, &identity.namespace, &identity.service_account);
        let subject =
            behaviour::Subject { workload: w, object: obj, access: &access, shared_with: &identity.shared_with };
        let mut behaviour = behaviour::infer(sources, inv, profiles, &subject, annotations);
        if let Some(seen) = observations.and_then(|o| observed(o, w, obj, &identity)) {
            let calls = seen.api_calls(identity.field.unwrap_or_else(|| obj.loc(obj.name_span)));
            behaviour::observed::apply(&mut behaviour, &access, calls, observed_numbers(&seen));
        }
        WorkloadAnalysis { workload: i, fanout, identity, access, behaviour }
    })
}

/// What the audit log showed of the workload's own copies (see
/// `crate::observed`): none when it cannot call the API.
fn observed<'o>(
    o: &'o crate::observed::Observations,
    w: &Workload,
    obj: &Object,
    identity: &Identity,
) -> Option<crate::observed::Seen<'o>> {
    if identity.token != Token::Mounted {
        return None;
    }
    o.seen(&identity.namespace, &identity.service_account, w.kind, &obj.name, !identity.shared_with.is_empty())
}

fn observed_numbers(seen: &crate::observed::Seen<'_>) -> behaviour::observed::Observed {
    behaviour::observed::Observed {
        copies: seen.copies.len(),
        seconds: seen.account.seconds(),
        requests_per_copy_per_second: seen.requests_per_copy_per_second(),
        refused: seen.calls().iter().map(|c| c.refused).sum(),
    }
}

/// `(namespace, ServiceAccount)` → the workloads running as it. Objects a
/// controller owns (a Deployment's ReplicaSet) are their owner's copies, not
/// other users.
fn identity_users(inv: &Inventory) -> HashMap<(Box<str>, Box<str>), Vec<usize>> {
    let mut users: HashMap<(Box<str>, Box<str>), Vec<usize>> = HashMap::new();
    for (i, w) in inv.workloads.iter().enumerate() {
        let obj = inv.object(w.object);
        if crate::workload::controlling_owner(obj).is_some() {
            continue;
        }
        let sa = w.pod.service_account.as_ref().map_or("default", |s| &s.value);
        users.entry((obj.ns().into(), sa.into())).or_default().push(i);
    }
    users
}

fn identity(inv: &Inventory, w: &Workload, obj: &Object) -> Identity {
    let namespace: Box<str> = obj.ns().into();
    let (service_account, field) = match &w.pod.service_account {
        Some(sa) => (sa.value.clone(), Some(obj.loc(sa.span))),
        None => ("default".into(), None),
    };
    let projected_token =
        w.pod.volumes.iter().any(|v| matches!(v.source, VolumeSource::Projected { service_account_token: true, .. }));
    let disabled_by = match &w.pod.automount_token {
        Some(a) if !a.value => Some(obj.loc(a.span)),
        Some(_) => None,
        None => inv.service_account(&namespace, &service_account).and_then(|sa| {
            let n = sa.node.get("automountServiceAccountToken")?;
            (n.as_bool() == Some(false)).then(|| sa.loc(n.span))
        }),
    };
    let token = match disabled_by {
        Some(loc) if !projected_token => Token::Disabled(loc),
        _ => Token::Mounted,
    };
    Identity { namespace, service_account, field, token, shared_with: Vec::new() }
}
