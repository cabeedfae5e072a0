//! What a workload's identity may LIST or WATCH, and through which binding →
//! role → rule chains: RBAC resolved per collection, as the authorizer would
//! answer for each.

use crate::inventory::Inventory;
use crate::kube::resources::{self, CATALOG, ResourceInfo};
use crate::rbac::{Grant, PolicyRule, RoleDef, Scope};
use crate::source::Location;
use std::collections::BTreeMap;

/// Collections the identity may LIST or WATCH, and how it got them.
#[derive(Debug, Default)]
pub struct Access {
    pub collections: BTreeMap<(Box<str>, Box<str>), CollectionAccess>,
    /// Bindings of the identity whose roleRef resolves to nothing.
    pub unresolved: Vec<Location>,
    /// Names of unresolved roles, for messages.
    pub unresolved_roles: Vec<String>,
    /// Collections the identity may create, update or patch (by name or
    /// not): Leases it writes are its own leader-election or heartbeat locks.
    pub writes: std::collections::BTreeSet<(Box<str>, Box<str>)>,
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
    /// The rule's resources and, unless only the core group, its API groups:
    /// `pods, nodes`, `* in apps`.
    pub resources: String,
    pub wildcard: bool,
}

impl Access {
    /// Whether the identity may write objects of the collection.
    pub fn writes(&self, group: &str, resource: &str) -> bool {
        self.writes.contains(&(Box::from(group), Box::from(resource)))
    }

    /// The access to a collection, through a wildcard grant if need be.
    pub fn find(&self, group: &str, resource: &str) -> Option<&CollectionAccess> {
        let get = |g: &str, r: &str| self.collections.get(&(Box::from(g), Box::from(r)));
        get(group, resource).or_else(|| get(group, "*")).or_else(|| get("*", resource)).or_else(|| get("*", "*"))
    }
}

/// The access of ServiceAccount `namespace/service_account`.
pub fn of_service_account(inv: &Inventory, namespace: &str, service_account: &str) -> Access {
    let mut acc = Access::default();
    // In the order of the bindings' names, not of their arrival: a review
    // (which gathers objects in its own order) words findings as a whole
    // lint does.
    let mut grants = inv.rbac.grants_of_service_account(namespace, service_account);
    grants.sort_by_cached_key(|g| g.binding.display());
    for grant in grants {
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
    if ["create", "update", "patch"].iter().any(|v| rule.allows_verb(v)) {
        for group in rule.api_groups.iter().filter(|g| &***g != "*") {
            for resource in rule.resources.iter().filter(|r| !r.contains('/') && &***r != "*") {
                acc.writes.insert((group.clone(), resource.clone()));
            }
        }
    }
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
        resources: rule_target(rule),
        wildcard: rule.has_wildcard(),
    };
    for group in &rule.api_groups {
        for resource in &rule.resources {
            if resource.contains('/') || resources::NOT_COLLECTIONS.contains(&&**resource) {
                continue; // subresources and create-only resources are not collections
            }
            if resources::not_served(group, resource) {
                continue; // `apiGroups: [apps]`, `resources: [pods]` grants nothing (AL108)
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

/// What a rule grants on, as a message names it: its resources, and its API
/// groups unless it names only the core group.
pub fn rule_target(rule: &PolicyRule) -> String {
    let resources = rule.resources.join(", ");
    if rule.api_groups.iter().all(|g| g.is_empty()) {
        return resources;
    }
    if rule.api_groups.iter().any(|g| &**g == "*") {
        return format!("{resources} in every API group");
    }
    let groups: Vec<&str> =
        rule.api_groups.iter().map(|g| if g.is_empty() { "the core group" } else { &**g }).collect();
    let groups = match groups.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    format!("{resources} in {groups}")
}
