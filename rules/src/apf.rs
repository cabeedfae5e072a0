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
    schemas.iter().find(|fs| schema_matches(fs, ns, name, calls))
}

/// The input FlowSchema that takes the ServiceAccount's calls before the
/// bootstrap schema would: any matching one outside kube-system (the
/// bootstrap `service-accounts` comes at 9000, after nearly everything), one
/// below 900 in kube-system (`kube-system-service-accounts`). `None` is what
/// AL401 and AL402 report, and what `apiload mitigate` writes a FlowSchema for.
pub fn covering<'a>(schemas: &'a [FlowSchema], ns: &str, name: &str, calls: &[ApiCall]) -> Option<&'a FlowSchema> {
    let before = if ns == "kube-system" { KUBE_SYSTEM_SERVICE_ACCOUNTS_PRECEDENCE } else { i64::MAX };
    schemas.iter().filter(|f| f.precedence < before).find(|fs| schema_matches(fs, ns, name, calls))
}

fn schema_matches(fs: &FlowSchema, ns: &str, name: &str, calls: &[ApiCall]) -> bool {
    fs.rules.iter().any(|r| {
        r.subjects.iter().any(|s| subject_matches(s, ns, name))
            && calls.iter().any(|c| r.resource_rules.iter().any(|rr| resource_rule_matches(rr, c, ns)))
    })
}

/// The priority levels every API server creates, with their
/// `nominalConcurrencyShares`, in Kubernetes 1.34 (the mandatory `exempt`
/// and `catch-all` and the suggested ones; k8s.io/apiserver v0.34.4
/// `pkg/apis/flowcontrol/bootstrap/default.go`). Every Limited level's
/// concurrency is a share of their sum (245) and of any level added.
pub const BOOTSTRAP_LEVELS: &[(&str, u64)] = &[
    ("exempt", 0),
    ("catch-all", 5),
    ("system", 30),
    ("node-high", 40),
    ("leader-election", 10),
    ("workload-high", 40),
    ("workload-low", 100),
    ("global-default", 20),
];

/// The highest precedence among the bootstrap schemas that must keep
/// their requests (same source): `exempt` 1, `probes` 2,
/// `system-leader-election` 100 (kube-system ServiceAccounts' Leases),
/// `system-node-high` 400, `system-nodes` 500, `kube-controller-manager` and
/// `kube-scheduler` 800. A schema of ours must come after them and before
/// `kube-system-service-accounts` (900).
pub const LAST_SYSTEM_SCHEMA_PRECEDENCE: i64 = 800;

/// A PriorityLevelConfiguration's share of the server: its name and
/// `nominalConcurrencyShares` (Limited, or Exempt, which counts too).
/// Without the field the API server defaults it: 30 for a Limited level,
/// 0 for an Exempt one.
pub fn priority_levels(inv: &Inventory) -> Vec<(String, u64)> {
    inv.objects
        .iter()
        .filter(|o| &*o.kind == "PriorityLevelConfiguration")
        .map(|o| {
            let spec = o.node.get("spec");
            let exempt = spec.and_then(|s| s.get("type")).and_then(Node::as_str) == Some("Exempt");
            let field = spec
                .and_then(|s| s.get(if exempt { "exempt" } else { "limited" }))
                .and_then(|l| l.get("nominalConcurrencyShares"))
                .and_then(Node::as_i64);
            let shares = field.unwrap_or(if exempt { 0 } else { 30 }).max(0) as u64;
            (o.name.to_string(), shares)
        })
        .collect()
}
