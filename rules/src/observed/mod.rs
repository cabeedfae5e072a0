//! What the API server's audit log showed ServiceAccounts doing: the calls
//! behind basis `observed`.
//!
//! The front end reads the log and decodes each line into an [`Event`];
//! a [`Recorder`] folds the events into [`Observations`] as they come (what
//! stays in memory is one entry per account, request shape and pod). The
//! analysis attributes an account's requests to the workloads running as it
//! ([`Observations::seen`]) — by the pod names bound tokens carry, or to the
//! account's only workload — and turns them into [`ApiCall`]s
//! ([`Seen::api_calls`]).
//!
//! A request's shape is what decides its cost: verb, collection, namespace,
//! object name, selectors, the resource version of a LIST. What differs per
//! copy is replaced by a placeholder: `<node>` for a node's name in a
//! selector (`spec.nodeName=`, `metadata.name=` of node-named collections,
//! the label of NodeFeatures) or an object name, `<pod>` for the copy's own
//! pod. A selector on one node's objects is node scope: whether each copy
//! asks for its own node (its token names the node, or the values differ
//! between copies) or all ask for the same one, each copy receives one
//! node's objects, which is what the cost model counts.

pub mod event;
mod record;

pub use event::{Event, ListSemantics, ObjectRef, Stage};
pub use record::{Counts, Limits, Recorder, UserFilter};

use crate::calls::{ApiCall, Basis, CallOrigin, CallScope};
use crate::kube::resources;
use crate::source::Location;
use crate::workload::WorkloadKind;

/// Everything a run of audit logs showed.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// By namespace and name.
    pub accounts: Vec<Account>,
    pub counts: Counts,
    /// The logs they come from, as findings name them (`audit.log`), set by the front end.
    pub source: String,
}

/// One ServiceAccount's requests.
#[derive(Clone, Debug)]
pub struct Account {
    pub namespace: Box<str>,
    pub name: Box<str>,
    /// The pods (or, without bound tokens, addresses) requests came from.
    pub copies: Vec<Copy>,
    pub shapes: Vec<Shape>,
    /// (shape, copy, what that copy sent of that shape), sorted.
    pub stats: Vec<(u32, u32, Stats)>,
    /// Seconds since the epoch of the first request and of the last event.
    pub first: f64,
    pub last: f64,
    /// The first few user agents seen.
    pub user_agents: Vec<Box<str>>,
}

/// Where requests came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Copy {
    /// The pod its token was bound to.
    pub pod: Option<Box<str>>,
    /// The node of that pod.
    pub node: Option<Box<str>>,
    /// The connection's address.
    pub address: Option<Box<str>>,
}

/// A request as it costs: verb, what it is about, how it asks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape {
    pub verb: Box<str>,
    pub group: Box<str>,
    pub resource: Box<str>,
    pub subresource: Box<str>,
    pub namespace: Option<Box<str>>,
    /// One object's name (`<node>`, `<pod>` when it is the copy's own;
    /// `<name>` for objects beyond the first 16 names of a shape).
    pub name: Option<Box<str>>,
    pub field_selector: Option<Box<str>>,
    pub label_selector: Option<Box<str>>,
    /// The resource version semantics of a LIST.
    pub list: Option<ListSemantics>,
    /// `limit` or `continue` in a LIST.
    pub paginated: bool,
    /// The path of a non-resource request (`/openapi/v3`, `/metrics`).
    pub path: Option<Box<str>>,
}

/// What one copy sent of one shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub refused: u64,
    /// Other errors (4xx but 403, 5xx).
    pub failed: u64,
    pub first: f64,
    pub last: f64,
    /// Long-running requests (watches), and how many were seen to end.
    pub long_running: u64,
    pub completed: u64,
    pub held_seconds: f64,
    /// The node names it put where `<node>` stands (at most three).
    pub node_values: Vec<Box<str>>,
}

/// How a selector on one node's objects relates to the copies that sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvidence {
    /// Each copy named the node its token is bound to.
    OwnNode,
    /// Each copy named one node, a different one per copy.
    DiffersPerCopy,
    /// One copy was seen: it named one node; whether its own, the log does not say.
    OneCopy,
    /// Every copy named the same node.
    SameForAll(Box<str>),
    /// A copy named several nodes in turn: together they cover more than one node.
    Several,
}

impl NodeEvidence {
    pub fn describe(&self) -> String {
        match self {
            NodeEvidence::OwnNode => "its own node, as its token says".into(),
            NodeEvidence::DiffersPerCopy => "one node per pod, a different one each".into(),
            NodeEvidence::OneCopy => "one node (one pod seen: whether its own, the log does not say)".into(),
            NodeEvidence::SameForAll(n) => format!("node {n} from every pod"),
            NodeEvidence::Several => "several nodes in turn".into(),
        }
    }
}

/// One request shape as a workload's copies sent it.
#[derive(Clone, Debug)]
pub struct ObservedCall {
    pub shape: Shape,
    /// Copies that sent it.
    pub copies: usize,
    pub requests: u64,
    pub refused: u64,
    pub failed: u64,
    /// Requests per copy per hour over the account's whole recording.
    pub per_copy_per_hour: f64,
    /// Median seconds between two requests of one copy, over copies that sent two or more.
    pub interval: Option<f64>,
    pub long_running: u64,
    /// Mean seconds a long-running request was held, over those seen to end.
    pub held: Option<f64>,
    pub node: Option<NodeEvidence>,
}

impl ObservedCall {
    /// Allowed at least once.
    pub fn allowed(&self) -> bool {
        self.requests > self.refused
    }

    pub fn is_collection_read(&self) -> bool {
        matches!(&*self.shape.verb, "list" | "watch") && self.shape.subresource.is_empty()
    }

    /// The scope the engine's calls and cost model speak of.
    pub fn scope(&self) -> CallScope {
        let s = &self.shape;
        let node_scoped = self.node.as_ref().is_some_and(|n| *n != NodeEvidence::Several);
        match &s.name {
            Some(n) if &**n == "<node>" && self.is_collection_read() && node_scoped => CallScope::Node,
            Some(_) => CallScope::Object,
            None if node_scoped => CallScope::Node,
            None => match &s.namespace {
                Some(ns) => CallScope::Namespaces(vec![ns.clone()]),
                None => CallScope::Cluster,
            },
        }
    }

    /// `pods`, `deployments.apps/scale`, or the path of a non-resource request.
    pub fn target(&self) -> String {
        let s = &self.shape;
        if let Some(p) = &s.path {
            return p.to_string();
        }
        let base = resources::display(&s.group, &s.resource);
        if s.subresource.is_empty() { base } else { format!("{base}/{}", s.subresource) }
    }

    /// "LIST pods with fieldSelector=spec.nodeName=<node> (resourceVersion=0)".
    pub fn describe(&self) -> String {
        let s = &self.shape;
        let mut out = format!("{} {}", s.verb.to_uppercase(), self.target());
        if let Some(n) = &s.name {
            out.push_str(&format!(" {n}"));
        }
        if let Some(ns) = &s.namespace {
            out.push_str(&format!(" in namespace {ns}"));
        } else if s.path.is_none() && s.name.is_none() && s.verb.as_ref() != "create" {
            let namespaced = resources::lookup(&s.group, &s.resource).is_none_or(|i| i.namespaced);
            out.push_str(if namespaced { " in all namespaces" } else { " cluster-wide" });
        }
        let mut how = Vec::new();
        if let Some(f) = &s.field_selector {
            how.push(format!("fieldSelector={f}"));
        }
        if let Some(l) = &s.label_selector {
            how.push(format!("labelSelector={l}"));
        }
        if !how.is_empty() {
            out.push_str(&format!(" with {}", how.join(" and ")));
        }
        if let Some(l) = s.list {
            out.push_str(&format!(" (resourceVersion {}{})", l.as_str(), if s.paginated { ", paginated" } else { "" }));
        }
        out
    }
}

impl Account {
    /// `ns/name`.
    pub fn display(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The recording's length for this account, at least a second.
    pub fn seconds(&self) -> f64 {
        if self.last.is_finite() && self.first.is_finite() { (self.last - self.first).max(1.0) } else { 1.0 }
    }

    /// Whether any copy's token named its pod.
    pub fn knows_pods(&self) -> bool {
        self.copies.iter().any(|c| c.pod.is_some())
    }

    /// Every copy.
    pub fn all_copies(&self) -> Vec<u32> {
        (0..self.copies.len() as u32).collect()
    }

    /// The copies whose pods belong to the workload `kind` `name`.
    pub fn copies_of(&self, kind: WorkloadKind, name: &str) -> Vec<u32> {
        (0..self.copies.len() as u32)
            .filter(|&i| self.copies[i as usize].pod.as_deref().is_some_and(|p| pod_of(kind, name, p)))
            .collect()
    }

    /// The shapes `copies` sent, with what they sent of each.
    pub fn calls(&self, copies: &[u32]) -> Vec<ObservedCall> {
        let mut out = Vec::new();
        let seconds = self.seconds();
        let mut i = 0;
        while i < self.stats.len() {
            let shape = self.stats[i].0;
            let mut j = i;
            let mut mine: Vec<(u32, &Stats)> = Vec::new();
            while j < self.stats.len() && self.stats[j].0 == shape {
                let (_, copy, ref s) = self.stats[j];
                if copies.binary_search(&copy).is_ok() {
                    mine.push((copy, s));
                }
                j += 1;
            }
            i = j;
            if mine.is_empty() {
                continue;
            }
            let sum = |f: fn(&Stats) -> u64| mine.iter().map(|(_, s)| f(s)).sum::<u64>();
            let requests = sum(|s| s.count);
            let mut intervals: Vec<f64> = mine
                .iter()
                .filter(|(_, s)| s.count >= 2)
                .map(|(_, s)| (s.last - s.first) / (s.count - 1) as f64)
                .collect();
            intervals.sort_by(f64::total_cmp);
            let completed = sum(|s| s.completed);
            let held: f64 = mine.iter().map(|(_, s)| s.held_seconds).sum();
            let shape = &self.shapes[shape as usize];
            let node = shape_has_node(shape).then(|| self.node_evidence(&mine));
            out.push(ObservedCall {
                shape: shape.clone(),
                copies: mine.len(),
                requests,
                refused: sum(|s| s.refused),
                failed: sum(|s| s.failed),
                per_copy_per_hour: requests as f64 / mine.len() as f64 / seconds * 3600.0,
                interval: (!intervals.is_empty()).then(|| intervals[intervals.len() / 2]),
                long_running: sum(|s| s.long_running),
                held: (completed > 0).then(|| held / completed as f64),
                node,
            });
        }
        out.sort_by(|a, b| a.shape.cmp(&b.shape));
        out
    }

    fn node_evidence(&self, mine: &[(u32, &Stats)]) -> NodeEvidence {
        if mine.iter().any(|(_, s)| s.node_values.len() > 1) {
            return NodeEvidence::Several;
        }
        let values: Vec<(&Copy, &str)> =
            mine.iter().filter_map(|(c, s)| s.node_values.first().map(|v| (&self.copies[*c as usize], &**v))).collect();
        if !values.is_empty() && values.iter().all(|(c, v)| c.node.as_deref() == Some(*v)) {
            return NodeEvidence::OwnNode;
        }
        let first = values.first().map_or("", |(_, v)| *v);
        match values.len() {
            0 | 1 => NodeEvidence::OneCopy,
            _ if values.iter().all(|(_, v)| *v == first) => NodeEvidence::SameForAll(first.into()),
            _ => NodeEvidence::DiffersPerCopy,
        }
    }
}

fn shape_has_node(s: &Shape) -> bool {
    let has = |v: &Option<Box<str>>| v.as_deref().is_some_and(|x| x.contains("<node>"));
    has(&s.name) || has(&s.field_selector) || has(&s.label_selector)
}

/// Whether `pod` is a pod of the workload: the names controllers give
/// their pods — `NAME-xxxxx` (DaemonSet, ReplicaSet, Job:
/// `generateName`), `NAME-HASH-xxxxx` (Deployment, through its
/// ReplicaSet), `NAME-N` (StatefulSet), `NAME-TIME-xxxxx` (CronJob), `NAME`
/// (a Pod).
pub fn pod_of(kind: WorkloadKind, name: &str, pod: &str) -> bool {
    let Some(rest) = pod.strip_prefix(name).and_then(|r| r.strip_prefix('-')) else {
        return kind == WorkloadKind::Pod && pod == name;
    };
    let suffix = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let token =
        |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match kind {
        WorkloadKind::DaemonSet
        | WorkloadKind::ReplicaSet
        | WorkloadKind::ReplicationController
        | WorkloadKind::Job => suffix(rest),
        WorkloadKind::Deployment | WorkloadKind::CronJob => {
            rest.split_once('-').is_some_and(|(a, b)| token(a) && suffix(b))
        }
        WorkloadKind::StatefulSet => !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()),
        WorkloadKind::Pod => false,
    }
}

/// The copies of one workload seen in the log.
#[derive(Clone, Debug)]
pub struct Seen<'a> {
    pub account: &'a Account,
    /// The logs, as [`Observations::source`] names them.
    pub source: &'a str,
    /// Sorted.
    pub copies: Vec<u32>,
}

impl Observations {
    pub fn account(&self, namespace: &str, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| &*a.namespace == namespace && &*a.name == name)
    }

    /// What the log showed of a workload running as `namespace/service_account`:
    /// the requests of its own pods when tokens name them, else all of the
    /// account's when no other workload of the input runs as it (`shared`
    /// says whether one does). `None` when the log holds nothing that can
    /// be shown to be the workload's.
    pub fn seen(
        &self,
        namespace: &str,
        service_account: &str,
        kind: WorkloadKind,
        name: &str,
        shared: bool,
    ) -> Option<Seen<'_>> {
        let account = self.account(namespace, service_account)?;
        let copies = if account.knows_pods() {
            account.copies_of(kind, name)
        } else if shared {
            Vec::new()
        } else {
            account.all_copies()
        };
        (!copies.is_empty()).then_some(Seen { account, source: &self.source, copies })
    }
}

impl Seen<'_> {
    pub fn calls(&self) -> Vec<ObservedCall> {
        self.account.calls(&self.copies)
    }

    /// Requests per second per copy, every request counted.
    pub fn requests_per_copy_per_second(&self) -> f64 {
        let calls = self.calls();
        let total: u64 = calls.iter().map(|c| c.requests).sum();
        total as f64 / self.copies.len().max(1) as f64 / self.account.seconds()
    }

    /// The calls the engine models (LIST, WATCH and GET of a collection's
    /// objects that were allowed), one per collection and scope, with basis
    /// `observed`. `evidence` is where findings point for them (the
    /// workload's identity).
    pub fn api_calls(&self, evidence: Location) -> Vec<ApiCall> {
        let log = if self.source.is_empty() { String::new() } else { format!(" {}", self.source) };
        let calls = self.calls();
        let leader_lock = calls
            .iter()
            .any(|c| &*c.shape.resource == "leases" && matches!(&*c.shape.verb, "update" | "patch" | "create"));
        let mut out: Vec<(ApiCall, Vec<String>)> = Vec::new();
        for c in calls.iter().filter(|c| c.allowed() && c.shape.path.is_none() && c.shape.subresource.is_empty()) {
            let (list, watch, get) = match &*c.shape.verb {
                "list" => (true, false, false),
                "watch" => (false, true, false),
                "get" => (false, false, true),
                _ => continue,
            };
            let scope = c.scope();
            let every = c.interval.filter(|_| list);
            let consistent = c.shape.list == Some(ListSemantics::MostRecent);
            // Made by one copy of several that elect a leader: the leader's.
            let central = leader_lock && self.copies.len() >= 2 && c.copies == 1 && (list || watch);
            let found = out.iter_mut().find(|(a, _)| {
                a.group == c.shape.group
                    && a.resource == c.shape.resource
                    && same_scope_kind(&a.scope, &scope)
                    && a.origin.as_ref().is_some_and(|o| o.central == central)
            });
            let (call, said) = match found {
                Some(entry) => entry,
                None => {
                    out.push((
                        ApiCall {
                            group: c.shape.group.clone(),
                            resource: c.shape.resource.clone(),
                            info: resources::lookup(&c.shape.group, &c.shape.resource),
                            list: false,
                            watch: false,
                            get: false,
                            scope: scope.clone(),
                            basis: Basis::Observed,
                            origin: Some(CallOrigin {
                                agent: self.agent(),
                                feature: String::new(),
                                evidence,
                                because: None,
                                fix: None,
                                central,
                                every: None,
                                consistent_list: false,
                                inherent: None,
                            }),
                        },
                        Vec::new(),
                    ));
                    out.last_mut().expect("just pushed")
                }
            };
            call.list |= list;
            call.watch |= watch;
            call.get |= get;
            if let (CallScope::Namespaces(have), CallScope::Namespaces(more)) = (&mut call.scope, &scope) {
                for ns in more {
                    if !have.contains(ns) {
                        have.push(ns.clone());
                    }
                }
            }
            if let Some(o) = call.origin.as_mut() {
                o.every = match (o.every, every) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                o.consistent_list |= consistent;
            }
            said.push(format!("{} by {} {}", c.describe(), c.copies, if c.copies == 1 { "pod" } else { "pods" }));
        }
        out.into_iter()
            .map(|(mut call, said)| {
                if let Some(o) = call.origin.as_mut() {
                    o.feature = format!("client seen in the audit log{log} ({})", said.join("; "));
                }
                call
            })
            .collect()
    }

    /// The client as its user agent names it, for messages.
    fn agent(&self) -> String {
        match self.account.user_agents.first() {
            Some(ua) => format!("its API client ({})", ua.split(' ').next().unwrap_or(ua)),
            None => "its API client".into(),
        }
    }
}

fn same_scope_kind(a: &CallScope, b: &CallScope) -> bool {
    matches!(
        (a, b),
        (CallScope::Cluster, CallScope::Cluster)
            | (CallScope::Node, CallScope::Node)
            | (CallScope::Object, CallScope::Object)
            | (CallScope::Namespaces(_), CallScope::Namespaces(_))
    )
}

#[cfg(test)]
mod tests;
