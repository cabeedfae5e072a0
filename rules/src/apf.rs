//! API Priority and Fairness: which FlowSchema a workload's requests match.
//!
//! FlowSchemas are tried by ascending `matchingPrecedence`; one matches when
//! one of its rules has a matching subject and a matching resource rule
//! (kubernetes/website `concepts/cluster-administration/flow-control.md`).
//! The bootstrap schemas that matter to ServiceAccounts are
//! `kube-system-service-accounts` (precedence 900, level `workload-high`,
//! distinguished by namespace) and `service-accounts` (9000, `workload-low`,
//! by user) (`pkg/apis/flowcontrol/bootstrap/default.go`).

use crate::calls::{ApiCall, CallScope};
use crate::inventory::Inventory;
use crate::source::Location;
use apiload_yaml::Node;

/// Precedence of the bootstrap `kube-system-service-accounts` FlowSchema.
pub const KUBE_SYSTEM_SERVICE_ACCOUNTS_PRECEDENCE: i64 = 900;

#[derive(Clone, Debug)]
pub struct FlowSchema {
    pub name: String,
    pub precedence: i64,
    pub priority_level: String,
    pub rules: Vec<FlowRule>,
    pub location: Location,
}

#[derive(Clone, Debug, Default)]
pub struct FlowRule {
    pub subjects: Vec<FlowSubject>,
    pub resource_rules: Vec<ResourceRule>,
}

#[derive(Clone, Debug)]
pub enum FlowSubject {
    ServiceAccount { namespace: String, name: String },
    Group(String),
    User(String),
}

#[derive(Clone, Debug, Default)]
pub struct ResourceRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub cluster_scope: bool,
    pub namespaces: Vec<String>,
}

fn strings(n: Option<&Node>) -> Vec<String> {
    n.and_then(Node::as_seq).unwrap_or(&[]).iter().filter_map(Node::as_str).map(str::to_string).collect()
}

/// The FlowSchemas of the input. Malformed parts are skipped: the API server
/// would reject such a FlowSchema, so it could not match anything.
pub fn flow_schemas(inv: &Inventory) -> Vec<FlowSchema> {
    let mut out: Vec<FlowSchema> = inv
        .flow_schemas
        .iter()
        .map(|&i| inv.object(i))
        .filter_map(|obj| {
            let spec = obj.node.get("spec")?;
            let rules = spec
                .get("rules")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .map(|r| FlowRule {
                    subjects: r
                        .get("subjects")
                        .and_then(Node::as_seq)
                        .unwrap_or(&[])
                        .iter()
                        .filter_map(|s| match s.get("kind").and_then(Node::as_str)? {
                            "ServiceAccount" => Some(FlowSubject::ServiceAccount {
                                namespace: s.path(&["serviceAccount", "namespace"])?.as_str()?.to_string(),
                                name: s.path(&["serviceAccount", "name"])?.as_str()?.to_string(),
                            }),
                            "Group" => Some(FlowSubject::Group(s.path(&["group", "name"])?.as_str()?.to_string())),
                            "User" => Some(FlowSubject::User(s.path(&["user", "name"])?.as_str()?.to_string())),
                            _ => None,
                        })
                        .collect(),
                    resource_rules: r
                        .get("resourceRules")
                        .and_then(Node::as_seq)
                        .unwrap_or(&[])
                        .iter()
                        .map(|rr| ResourceRule {
                            verbs: strings(rr.get("verbs")),
                            api_groups: strings(rr.get("apiGroups")),
                            resources: strings(rr.get("resources")),
                            cluster_scope: rr.get("clusterScope").and_then(Node::as_bool).unwrap_or(false),
                            namespaces: strings(rr.get("namespaces")),
                        })
                        .collect(),
                })
                .collect();
            Some(FlowSchema {
                name: obj.name.to_string(),
                precedence: spec.get("matchingPrecedence").and_then(Node::as_i64).unwrap_or(1000),
                priority_level: spec
                    .path(&["priorityLevelConfiguration", "name"])
                    .and_then(Node::as_str)
                    .unwrap_or("")
                    .to_string(),
                rules,
                location: obj.loc(obj.name_span),
            })
        })
        .collect();
    out.sort_by_key(|f| f.precedence);
    out
}

fn subject_matches(s: &FlowSubject, ns: &str, name: &str) -> bool {
    match s {
        FlowSubject::ServiceAccount { namespace, name: n } => namespace == ns && (n == name || n == "*"),
        FlowSubject::Group(g) => {
            g == "system:serviceaccounts" || g == "system:authenticated" || *g == format!("system:serviceaccounts:{ns}")
        }
        FlowSubject::User(u) => *u == format!("system:serviceaccount:{ns}:{name}"),
    }
}

fn any_or(list: &[String], v: &str) -> bool {
    list.iter().any(|x| x == "*" || x == v)
}

fn resource_rule_matches(r: &ResourceRule, call: &ApiCall, ns: &str) -> bool {
    let verb_ok = (call.list && any_or(&r.verbs, "list"))
        || (call.watch && any_or(&r.verbs, "watch"))
        || (call.get && any_or(&r.verbs, "get"));
    let scope_ok = match &call.scope {
        CallScope::Namespaces(list) => list.iter().all(|n| any_or(&r.namespaces, n)),
        CallScope::Object => r.cluster_scope || any_or(&r.namespaces, ns),
        _ => r.cluster_scope,
    };
    verb_ok && any_or(&r.api_groups, &call.group) && any_or(&r.resources, &call.resource) && scope_ok
}

/// The input FlowSchema, lowest precedence first, that the ServiceAccount's
/// calls would match (any one of them).
pub fn matching<'a>(schemas: &'a [FlowSchema], ns: &str, name: &str, calls: &[ApiCall]) -> Option<&'a FlowSchema> {
    schemas.iter().find(|fs| {
        fs.rules.iter().any(|r| {
            r.subjects.iter().any(|s| subject_matches(s, ns, name))
                && calls.iter().any(|c| r.resource_rules.iter().any(|rr| resource_rule_matches(rr, c, ns)))
        })
    })
}
