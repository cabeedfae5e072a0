//! Per workload: how many copies run, as whom, with which grants, and what
//! they will actually call. Rules read these analyses; they do not redo joins.

use crate::behaviour::{self, Behaviour};
use crate::inventory::Inventory;
use crate::kube::resources::{self, CATALOG, ResourceInfo};
use crate::object::Object;
use crate::options::Options;
use crate::profile::ProfileSet;
use crate::rbac::{Grant, PolicyRule, RoleDef, Scope};
use crate::source::{Location, Sources};
use crate::workload::{VolumeSource, Workload, WorkloadKind};
use std::collections::BTreeMap;

/// Annotation on a workload declaring how many nodes a DaemonSet pinned to a
/// node pool runs on.
pub const EXPECTED_NODES_ANNOTATION: &str = "apiload.dev/expected-nodes";

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
pub struct FanOut {
    /// How many copies run at production size.
    pub copies: u64,
    /// True when the copies follow the node count (a DaemonSet) or are at
    /// least `fanout_min_replicas`: every copy's API traffic multiplies.
    pub per_node: bool,
    pub basis: Basis,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Basis {
    /// One copy per node; `restricted` when a nodeSelector or node affinity narrows
    /// it to an unknown subset; `declared` from the expected-nodes annotation.
    DaemonSet {
        restricted: bool,
        declared: Option<(u64, Location)>,
    },
    Replicas(Option<Location>),
    Hpa(Location),
    Parallelism(Option<Location>),
    Pod,
}

#[derive(Clone, Debug)]
pub struct Identity {
    pub namespace: Box<str>,
    pub service_account: Box<str>,
    /// The `serviceAccountName` field; `None` when the default is used.
    pub field: Option<Location>,
    pub token: Token,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    /// API credentials are mounted (the default).
    Mounted,
    /// `automountServiceAccountToken: false` on the pod or the ServiceAccount,
    /// and no projected token: the pod cannot call the API as its ServiceAccount.
    Disabled(Location),
}

/// Collections the identity may LIST or WATCH, and how it got them.
#[derive(Debug, Default)]
pub struct Access {
    pub collections: BTreeMap<(Box<str>, Box<str>), CollectionAccess>,
    /// Bindings of the identity whose roleRef resolves to nothing.
    pub unresolved: Vec<Location>,
    /// Names of unresolved roles, for messages.
    pub unresolved_roles: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct CollectionAccess {
    pub group: Box<str>,
    pub resource: Box<str>,
    pub info: Option<&'static ResourceInfo>,
    pub list: bool,
    pub watch: bool,
    /// Granted in every namespace (ClusterRoleBinding).
    pub cluster_wide: bool,
    /// Namespaces of RoleBindings that grant it.
    pub namespaces: Vec<Box<str>>,
    /// Granted only through a `*` in resources.
    pub wildcard: bool,
    pub via: Vec<GrantPath>,
}

impl CollectionAccess {
    pub fn display(&self) -> String {
        resources::display(&self.group, &self.resource)
    }

    /// See [`resources::is_sizeable`].
    pub fn is_sizeable(&self) -> bool {
        resources::is_sizeable(self.info)
    }

    /// Cluster-scoped and about one object per node (Nodes, CSINodes, CiliumNodes).
    pub fn is_node_collection(&self) -> bool {
        self.info.is_some_and(|i| !i.namespaced && i.grows_with_nodes())
    }
}

/// One binding → role → rule chain.
#[derive(Clone, Debug, PartialEq)]
pub struct GrantPath {
    pub binding: String,
    /// The subject entry of the binding (`None` for built-in bindings).
    pub subject: Option<Location>,
    /// The role the binding names.
    pub role: String,
    /// The role the rule is written in (differs through aggregation).
    pub rule_role: String,
    /// The rule's `verbs` (`None` for built-in roles).
    pub rule: Option<Location>,
    pub verbs: String,
    pub resources: String,
    pub wildcard: bool,
}

impl Access {
    /// The access to a collection, through a wildcard grant if need be.
    pub fn find(&self, group: &str, resource: &str) -> Option<&CollectionAccess> {
        let get = |g: &str, r: &str| self.collections.get(&(Box::from(g), Box::from(r)));
        get(group, resource).or_else(|| get(group, "*")).or_else(|| get("*", resource)).or_else(|| get("*", "*"))
    }
}

impl WorkloadAnalysis {
    pub fn cluster_collections(&self) -> impl Iterator<Item = &CollectionAccess> {
        self.access.collections.values().filter(|c| c.cluster_wide)
    }

    pub fn has_api_credentials(&self) -> bool {
        self.identity.token == Token::Mounted
    }
}

pub fn analyze_workloads(
    sources: &Sources,
    inv: &Inventory,
    profiles: &ProfileSet,
    options: &Options,
) -> Vec<WorkloadAnalysis> {
    crate::parallel::map(&inv.workloads, 128, |i, w| {
        let obj = inv.object(w.object);
        let fanout = fan_out(inv, w, obj, options);
        let identity = identity(inv, w, obj);
        let access = access(inv, &identity);
        let behaviour = behaviour::infer(sources, inv, profiles, w, obj, &access);
        WorkloadAnalysis { workload: i, fanout, identity, access, behaviour }
    })
}

fn fan_out(inv: &Inventory, w: &Workload, obj: &Object, options: &Options) -> FanOut {
    let threshold = options.fanout_min_replicas;
    let replicated = |copies: u64, basis: Basis| FanOut { copies, per_node: copies >= threshold, basis };
    match w.kind {
        WorkloadKind::DaemonSet => {
            let declared = obj
                .annotation(EXPECTED_NODES_ANNOTATION)
                .and_then(|(v, span)| v.trim().parse::<u64>().ok().map(|n| (n, obj.loc(span))));
            let copies = declared.as_ref().map_or(options.cluster.nodes, |(n, _)| *n);
            FanOut { copies, per_node: true, basis: Basis::DaemonSet { restricted: w.pod.node_restricted, declared } }
        }
        WorkloadKind::Pod => FanOut { copies: 1, per_node: false, basis: Basis::Pod },
        WorkloadKind::Job | WorkloadKind::CronJob => {
            let n = w.replicas.as_ref().map_or(1, |r| r.value.max(0) as u64);
            replicated(n, Basis::Parallelism(w.replicas.as_ref().map(|r| obj.loc(r.span))))
        }
        _ => {
            if let Some(hpa) = inv.hpa_for(obj.ns(), &obj.kind, &obj.name) {
                return replicated(hpa.max_replicas.max(0) as u64, Basis::Hpa(hpa.max_location));
            }
            let n = w.replicas.as_ref().map_or(1, |r| r.value.max(0) as u64);
            replicated(n, Basis::Replicas(w.replicas.as_ref().map(|r| obj.loc(r.span))))
        }
    }
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
    Identity { namespace, service_account, field, token }
}

fn access(inv: &Inventory, identity: &Identity) -> Access {
    let mut acc = Access::default();
    for grant in inv.rbac.grants_of_service_account(&identity.namespace, &identity.service_account) {
        let Some(role_id) = grant.role else {
            if let Some(loc) = grant.binding.role_ref {
                acc.unresolved.push(loc);
            }
            acc.unresolved_roles.push(format!("{} {}", grant.binding.role_kind.as_str(), grant.binding.role_name));
            continue;
        };
        let bound = inv.rbac.role(role_id);
        for (owner, rule) in inv.rbac.rules(role_id) {
            add_rule(&mut acc, &grant, bound, owner, rule);
        }
    }
    acc
}

fn add_rule(acc: &mut Access, grant: &Grant<'_>, bound: &RoleDef, owner: &RoleDef, rule: &PolicyRule) {
    if !rule.applies_to_collections() {
        return;
    }
    let (list, watch) = (rule.allows_verb("list"), rule.allows_verb("watch"));
    if !list && !watch {
        return;
    }
    let path = GrantPath {
        binding: grant.binding.display(),
        subject: grant.subject.location,
        role: bound.display(),
        rule_role: if std::ptr::eq(bound, owner) {
            bound.display()
        } else {
            format!("{} (aggregated into {})", owner.display(), bound.display())
        },
        rule: rule.origin.map(|o| o.verbs),
        verbs: rule.verbs.join(", "),
        resources: rule.resources.join(", "),
        wildcard: rule.has_wildcard(),
    };
    for group in &rule.api_groups {
        for resource in &rule.resources {
            if resource.contains('/') || resources::NOT_COLLECTIONS.contains(&&**resource) {
                continue; // subresources and create-only resources are not collections
            }
            let wildcard = &**resource == "*";
            let targets: Vec<(Box<str>, Box<str>, Option<&'static ResourceInfo>)> = if wildcard || &**group == "*" {
                let known: Vec<_> = CATALOG
                    .iter()
                    .filter(|i| (&**group == "*" || i.group == &**group) && (wildcard || i.resource == &**resource))
                    .map(|i| (i.group.into(), i.resource.into(), Some(i)))
                    .collect();
                if known.is_empty() { vec![(group.clone(), resource.clone(), None)] } else { known }
            } else {
                vec![(group.clone(), resource.clone(), resources::lookup(group, resource))]
            };
            for (g, r, info) in targets {
                // A RoleBinding never grants cluster-scoped collections.
                if matches!(grant.scope, Scope::Namespace(_)) && info.is_some_and(|i| !i.namespaced) {
                    continue;
                }
                let entry = acc.collections.entry((g.clone(), r.clone())).or_insert_with(|| CollectionAccess {
                    group: g,
                    resource: r,
                    info,
                    list: false,
                    watch: false,
                    cluster_wide: false,
                    namespaces: Vec::new(),
                    wildcard: true,
                    via: Vec::new(),
                });
                entry.list |= list;
                entry.watch |= watch;
                entry.wildcard &= wildcard;
                match grant.scope {
                    Scope::Cluster => entry.cluster_wide = true,
                    Scope::Namespace(ns) => {
                        if !entry.namespaces.iter().any(|n| &**n == ns) {
                            entry.namespaces.push(ns.into());
                        }
                    }
                }
                if !entry.via.contains(&path) {
                    entry.via.push(path.clone());
                }
            }
        }
    }
}
