//! Least privilege from what the audit log showed: the grants a workload's
//! ServiceAccount holds and was never seen to use, and the smallest RBAC
//! that allows every call it was seen to make (`apiload learn
//! --suggest-rbac`, docs/learn.md).
//!
//! RBAC matches as the authorizer does (`crate::rbac`): a rule's verb,
//! group and resource (`*`, `resource/subresource`, `*/subresource`), its
//! `resourceNames` — which authorize GETs by name and, since the API server
//! takes the name of a LIST or WATCH from a `metadata.name=` field selector,
//! those too — and the binding's namespace.

use crate::inventory::Inventory;
use crate::kube::resources;
use crate::observed::{NodeEvidence, ObservedCall, Shape};
use crate::rbac::{PolicyRule, Rbac, Scope};
use crate::source::Location;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// A grant of one verb on one resource through one rule.
#[derive(Clone, Debug, PartialEq)]
pub struct GrantUse {
    /// `ClusterRoleBinding agents`.
    pub binding: String,
    /// `ClusterRole agents` (the role the rule is written in).
    pub role: String,
    /// The rule's `verbs` in the input; `None` in a built-in role.
    pub rule: Option<Location>,
    pub verb: String,
    /// `pods`, `deployments.apps`, `pods/log`, `*`.
    pub resource: String,
    pub usage: Usage,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Usage {
    /// Never used in the log.
    Unused,
    /// Granted in every namespace, used only in these.
    OnlyIn(Vec<Box<str>>),
}

/// The grants of `namespace/service_account` in the input (not the
/// bootstrap bindings every account has) that `calls` leave unused, or use
/// in fewer namespaces than granted.
pub fn unused_grants(inv: &Inventory, namespace: &str, service_account: &str, calls: &[ObservedCall]) -> Vec<GrantUse> {
    let used: Vec<&ObservedCall> = calls.iter().filter(|c| c.allowed() && c.shape.path.is_none()).collect();
    let mut out: Vec<GrantUse> = Vec::new();
    for grant in inv.rbac.grants_of_service_account(namespace, service_account) {
        let Some(role) = grant.role else { continue };
        if grant.subject.location.is_none() {
            continue; // a bootstrap binding: every account has it
        }
        for (owner, rule) in inv.rbac.rules(role) {
            for verb in &rule.verbs {
                for group in &rule.api_groups {
                    for resource in &rule.resources {
                        let one = PolicyRule {
                            api_groups: vec![group.clone()],
                            resources: vec![resource.clone()],
                            verbs: vec![verb.clone()],
                            resource_names: rule.resource_names.clone(),
                            origin: None,
                        };
                        let hits: Vec<&&ObservedCall> =
                            used.iter().filter(|c| allows(&one, grant.scope, &c.shape)).collect();
                        let usage = if hits.is_empty() {
                            Usage::Unused
                        } else if grant.scope == Scope::Cluster && hits.iter().all(|c| c.shape.namespace.is_some()) {
                            let mut ns: Vec<Box<str>> = hits
                                .iter()
                                .filter_map(|c| c.shape.namespace.clone())
                                .collect::<BTreeSet<_>>()
                                .into_iter()
                                .collect();
                            ns.truncate(5);
                            let namespaced = resources::lookup(group, resource).is_none_or(|i| i.namespaced);
                            if !namespaced || &**resource == "*" || &**group == "*" {
                                continue;
                            }
                            Usage::OnlyIn(ns)
                        } else {
                            continue;
                        };
                        let entry = GrantUse {
                            binding: grant.binding.display(),
                            role: owner.display(),
                            rule: rule.origin.map(|o| o.verbs),
                            verb: verb.to_string(),
                            resource: if &**resource == "*" || &**group == "*" {
                                format!("{resource} in {}", if group.is_empty() { "the core group" } else { group })
                            } else {
                                resources::display(group, resource)
                            },
                            usage,
                        };
                        if !out.contains(&entry) {
                            out.push(entry);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Whether a rule, bound with `scope`, authorizes a request of this shape.
fn allows(rule: &PolicyRule, scope: Scope<'_>, s: &Shape) -> bool {
    if !rule.allows_verb(&s.verb) || !rule.allows_group(&s.group) || !rule.allows_resource(&s.resource, &s.subresource)
    {
        return false;
    }
    if let Scope::Namespace(ns) = scope
        && s.namespace.as_deref() != Some(ns)
    {
        return false;
    }
    if rule.resource_names.is_empty() {
        return true;
    }
    match &s.name {
        Some(n) if !n.starts_with('<') && &*s.verb != "create" => rule.resource_names.iter().any(|r| r == n),
        _ => false,
    }
}

/// The smallest RBAC that allows what was seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Suggestion {
    /// Rules of a ClusterRole bound by a ClusterRoleBinding.
    pub cluster: Vec<SuggestedRule>,
    /// Rules of a Role per namespace, bound in it.
    pub namespaced: BTreeMap<Box<str>, Vec<SuggestedRule>>,
    /// Non-resource URLs (`/metrics`) and their verbs, for the ClusterRole.
    pub non_resource: Vec<(String, Vec<String>)>,
    /// Requests the bootstrap policy already allows every ServiceAccount
    /// (discovery, `selfsubjectaccessreviews`), with the role that does.
    pub builtin: Vec<(String, String)>,
    /// Requests the log shows refused (403) and nothing else allowed.
    pub refused: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SuggestedRule {
    pub group: Box<str>,
    /// `pods`, `pods/log`.
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    pub resource_names: Vec<String>,
    /// Why the rule is as it is (node-scoped calls RBAC cannot narrow, names per copy).
    pub notes: Vec<String>,
}

/// Verbs in the order RBAC documentation writes them.
const VERB_ORDER: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

/// The rules that allow every allowed call of `calls` made as
/// `namespace/service_account`: a Role in each namespace the calls stay in,
/// a ClusterRole for the rest; `resourceNames` where every copy named the
/// same objects; nothing the bootstrap policy already grants.
pub fn suggest(namespace: &str, service_account: &str, calls: &[ObservedCall]) -> Suggestion {
    let mut out = Suggestion::default();
    // (namespace or cluster, group, resource) → names (None: the whole collection) → verbs, notes.
    type Key = (Option<Box<str>>, Box<str>, String);
    type VerbsAndNotes = (BTreeSet<String>, BTreeSet<String>);
    let mut wanted: BTreeMap<Key, BTreeMap<Option<String>, VerbsAndNotes>> = BTreeMap::new();
    let mut paths: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in calls {
        let s = &c.shape;
        if !c.allowed() {
            let what = c.describe();
            if !out.refused.contains(&what) {
                out.refused.push(what);
            }
            continue;
        }
        if let Some(p) = &s.path {
            match builtin_url(p) {
                Some(role) => push_unique(&mut out.builtin, (format!("{} {p}", s.verb.to_uppercase()), role.into())),
                None => {
                    paths.entry(p.to_string()).or_default().insert(s.verb.to_string());
                }
            }
            continue;
        }
        if let Some(role) = builtin_allows(namespace, service_account, s) {
            push_unique(&mut out.builtin, (c.describe(), role));
            continue;
        }
        let resource =
            if s.subresource.is_empty() { s.resource.to_string() } else { format!("{}/{}", s.resource, s.subresource) };
        let namespaced = resources::lookup(&s.group, &s.resource).is_none_or(|i| i.namespaced);
        let scope = s.namespace.clone().filter(|_| namespaced);
        let name = s.name.as_deref().filter(|n| !n.starts_with('<') && &*s.verb != "create").map(str::to_string);
        let mut notes = BTreeSet::new();
        match (&s.name, &c.node) {
            (_, Some(e)) if *e != NodeEvidence::Several && (&*s.verb == "list" || &*s.verb == "watch") => {
                notes.insert(format!(
                    "listed or watched with a selector on one node ({}): RBAC cannot limit a grant to a selector, so the grant covers every node; the calls stay node-scoped only as long as the agent's configuration does (apiload lint checks it, AL103)",
                    e.describe()
                ));
            }
            (Some(n), _) if &**n == "<node>" => {
                notes.insert("its own node's object, whose name differs per pod: no resourceNames".to_string());
            }
            (Some(n), _) if &**n == "<pod>" => {
                notes.insert("its own pod, whose name differs per pod: no resourceNames".to_string());
            }
            (Some(n), _) if &**n == "<name>" => {
                notes.insert("more objects by name than resourceNames should list: the whole collection".to_string());
            }
            _ => {}
        }
        if scope.is_none() && namespaced && matches!(&*s.verb, "list" | "watch") && c.node.is_none() && s.name.is_none()
        {
            notes.insert(
                "listed or watched in all namespaces, as seen: from a per-node agent, a cluster-wide fan-out"
                    .to_string(),
            );
        }
        let entry = wanted.entry((scope, s.group.clone(), resource)).or_default().entry(name).or_default();
        entry.0.insert(s.verb.to_string());
        entry.1.extend(notes);
    }
    for ((scope, group, resource), by_name) in wanted {
        let unnamed: BTreeSet<String> = by_name.get(&None).map(|(v, _)| v.clone()).unwrap_or_default();
        // Named verbs the whole-collection grant already covers are dropped;
        // named objects with the same verbs share one rule.
        let mut named: BTreeMap<Vec<String>, (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
        for (name, (verbs, notes)) in &by_name {
            let Some(name) = name else { continue };
            let verbs: Vec<String> = ordered(verbs.iter().filter(|v| !unnamed.contains(*v)));
            if verbs.is_empty() {
                continue;
            }
            let e = named.entry(verbs).or_default();
            e.0.push(name.clone());
            e.1.extend(notes.iter().cloned());
        }
        let rules = match &scope {
            Some(ns) => out.namespaced.entry(ns.clone()).or_default(),
            None => &mut out.cluster,
        };
        if let Some((verbs, notes)) = by_name.get(&None) {
            add_rule(rules, &group, &resource, ordered(verbs.iter()), Vec::new(), notes);
        }
        for (verbs, (names, notes)) in named {
            add_rule(rules, &group, &resource, verbs, names, &notes);
        }
    }
    out.non_resource = paths.into_iter().map(|(p, v)| (p, ordered(v.iter()))).collect();
    out
}

/// Adds a rule, or the resource to a rule of the same group, verbs and names.
fn add_rule(
    rules: &mut Vec<SuggestedRule>,
    group: &str,
    resource: &str,
    verbs: Vec<String>,
    resource_names: Vec<String>,
    notes: &BTreeSet<String>,
) {
    let notes: Vec<String> = notes.iter().map(|n| format!("{resource}: {n}")).collect();
    if let Some(r) =
        rules.iter_mut().find(|r| &*r.group == group && r.verbs == verbs && r.resource_names == resource_names)
    {
        r.resources.push(resource.to_string());
        for n in notes {
            if !r.notes.contains(&n) {
                r.notes.push(n);
            }
        }
        return;
    }
    rules.push(SuggestedRule {
        group: group.into(),
        resources: vec![resource.to_string()],
        verbs,
        resource_names,
        notes,
    });
}

fn ordered<'a>(verbs: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = verbs.cloned().collect();
    v.sort_by_key(|x| (VERB_ORDER.iter().position(|o| o == x).unwrap_or(VERB_ORDER.len()), x.clone()));
    v.dedup();
    v
}

fn push_unique(v: &mut Vec<(String, String)>, item: (String, String)) {
    if !v.contains(&item) {
        v.push(item);
    }
}

/// Non-resource URLs the bootstrap policy lets every authenticated user
/// GET: `system:discovery` and `system:public-info-viewer`, bound to
/// `system:authenticated` (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`).
fn builtin_url(path: &str) -> Option<&'static str> {
    const DISCOVERY: &[&str] = &["/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/api", "/apis"];
    const PREFIXES: &[&str] = &["/openapi/", "/api/", "/apis/"];
    (DISCOVERY.contains(&path) || PREFIXES.iter().any(|p| path.starts_with(p)))
        .then_some("ClusterRole system:discovery")
}

/// The bootstrap role that already allows the request to every
/// ServiceAccount of the namespace (through `system:authenticated`,
/// `system:serviceaccounts` and the like), if any.
fn builtin_allows(namespace: &str, service_account: &str, s: &Shape) -> Option<String> {
    static BOOTSTRAP: OnceLock<Rbac> = OnceLock::new();
    let rbac = BOOTSTRAP.get_or_init(|| Rbac::build(&[], &mut Vec::new()));
    for grant in rbac.grants_of_service_account(namespace, service_account) {
        let Some(role) = grant.role else { continue };
        for (owner, rule) in rbac.rules(role) {
            if allows(rule, grant.scope, s) {
                return Some(owner.display());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::{Event, ObjectRef, Recorder, Stage, UserFilter};
    use crate::workload::WorkloadKind;

    fn record(events: &[(&str, &str, ObjectRef<'_>, u16, &str)]) -> Vec<ObservedCall> {
        let mut r = Recorder::new(UserFilter::ServiceAccounts);
        for (verb, uri, object_ref, code, pod) in events {
            let node = format!("node-{}", &pod[pod.len() - 1..]);
            r.record(&Event {
                stage: Stage::ResponseComplete,
                audit_id: "x",
                verb,
                request_uri: uri,
                username: "system:serviceaccount:agents:agent",
                pod_name: Some(pod),
                node_name: Some(&node),
                source_ip: None,
                user_agent: None,
                object_ref: (!object_ref.resource.is_empty()).then_some(*object_ref),
                code: Some(*code),
                request_received: "2026-12-01T00:00:00Z",
                stage_timestamp: "2026-12-01T00:00:00Z",
            })
            .unwrap();
        }
        let o = r.finish();
        o.seen("agents", "agent", WorkloadKind::DaemonSet, "agent", false).unwrap().calls()
    }

    fn pods() -> ObjectRef<'static> {
        ObjectRef { resource: "pods", ..ObjectRef::default() }
    }

    #[test]
    fn the_smallest_rbac_for_what_was_seen() {
        let node = |n: &'static str| ObjectRef { resource: "nodes", name: n, ..ObjectRef::default() };
        let conf =
            ObjectRef { resource: "configmaps", namespace: "agents", name: "agent-config", ..ObjectRef::default() };
        let lease = ObjectRef {
            resource: "leases",
            api_group: "coordination.k8s.io",
            namespace: "agents",
            ..ObjectRef::default()
        };
        let calls = record(&[
            ("list", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&resourceVersion=0", pods(), 200, "agent-bcdf1"),
            ("watch", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&watch=true", pods(), 200, "agent-bcdf1"),
            ("list", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-2&resourceVersion=0", pods(), 200, "agent-bcdf2"),
            ("get", "/api/v1/nodes/node-1", node("node-1"), 200, "agent-bcdf1"),
            ("get", "/api/v1/nodes/node-2", node("node-2"), 200, "agent-bcdf2"),
            ("get", "/api/v1/namespaces/agents/configmaps/agent-config", conf, 200, "agent-bcdf1"),
            ("create", "/apis/coordination.k8s.io/v1/namespaces/agents/leases", lease, 201, "agent-bcdf1"),
            ("list", "/api/v1/secrets", ObjectRef { resource: "secrets", ..ObjectRef::default() }, 403, "agent-bcdf1"),
            ("get", "/openapi/v3", ObjectRef::default(), 200, "agent-bcdf1"),
            ("get", "/metrics", ObjectRef::default(), 200, "agent-bcdf1"),
            (
                "create",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                ObjectRef {
                    resource: "selfsubjectaccessreviews",
                    api_group: "authorization.k8s.io",
                    ..ObjectRef::default()
                },
                201,
                "agent-bcdf1",
            ),
        ]);
        let s = suggest("agents", "agent", &calls);
        let cluster: Vec<(String, Vec<String>, Vec<String>)> =
            s.cluster.iter().map(|r| (r.resources.join(","), r.verbs.clone(), r.resource_names.clone())).collect();
        assert_eq!(
            cluster,
            vec![
                ("nodes".into(), vec!["get".into()], vec![]),
                ("pods".into(), vec!["list".into(), "watch".into()], vec![]),
            ]
        );
        assert!(s.cluster[1].notes[0].contains("cannot limit a grant to a selector"), "{:?}", s.cluster[1].notes);
        assert!(s.cluster[0].notes[0].contains("own node"), "{:?}", s.cluster[0].notes);
        let ns = &s.namespaced["agents"];
        let ns: Vec<(&str, String, Vec<String>, Vec<String>)> =
            ns.iter().map(|r| (&*r.group, r.resources.join(","), r.verbs.clone(), r.resource_names.clone())).collect();
        assert_eq!(
            ns,
            vec![
                ("", "configmaps".into(), vec!["get".into()], vec!["agent-config".into()]),
                ("coordination.k8s.io", "leases".into(), vec!["create".into()], vec![]),
            ]
        );
        assert_eq!(s.non_resource, vec![("/metrics".to_string(), vec!["get".to_string()])]);
        let builtin: Vec<&str> = s.builtin.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(builtin, vec!["ClusterRole system:basic-user", "ClusterRole system:discovery"]);
        assert_eq!(s.refused, vec!["LIST secrets in all namespaces (resourceVersion unset)".to_string()]);
    }

    #[test]
    fn grants_never_used() {
        let text = br#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agent}
rules:
- apiGroups: [""]
  resources: [pods, configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agent}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agent}
subjects: [{kind: ServiceAccount, name: agent, namespace: agents}]
"#;
        let mut sources = crate::source::Sources::new();
        let id = sources.add("rbac.yaml", text);
        let read = crate::object::read_documents(id, apiload_yaml::load_stream(text, &Default::default()), "default");
        let inv = Inventory::build(read.objects, &mut Vec::new());
        let conf = ObjectRef { resource: "configmaps", namespace: "agents", name: "c", ..ObjectRef::default() };
        let calls = record(&[
            ("list", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1", pods(), 200, "agent-bcdf1"),
            ("watch", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1", pods(), 200, "agent-bcdf1"),
            ("get", "/api/v1/namespaces/agents/configmaps/c", conf, 200, "agent-bcdf1"),
        ]);
        let unused = unused_grants(&inv, "agents", "agent", &calls);
        let got: Vec<(String, String, &Usage)> =
            unused.iter().map(|u| (u.verb.clone(), u.resource.clone(), &u.usage)).collect();
        let only = Usage::OnlyIn(vec!["agents".into()]);
        assert_eq!(
            got,
            vec![
                ("get".into(), "pods".into(), &Usage::Unused),
                ("get".into(), "configmaps".into(), &only),
                ("list".into(), "configmaps".into(), &Usage::Unused),
                ("watch".into(), "configmaps".into(), &Usage::Unused),
            ]
        );
        assert!(unused[0].rule.is_some());
    }
}
