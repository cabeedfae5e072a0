//! Folding audit events into per-ServiceAccount observations, one event at a
//! time: what a 1 GB log leaves in memory is one entry per (account, request
//! shape, pod), not the requests themselves.

use super::event::{self, Event, Query, Stage};
use super::{Account, Copy, Observations, Shape, Stats};
use crate::kube::resources::{self, NodeFilter};
use std::collections::HashMap;

/// Whose requests to keep.
#[derive(Clone, Debug)]
pub enum UserFilter {
    /// Every ServiceAccount (`system:serviceaccount:*`).
    ServiceAccounts,
    /// These user names only.
    Only(std::collections::HashSet<Box<str>>),
}

impl UserFilter {
    /// Whether requests of `username` are kept; the front end asks before
    /// decoding a whole event.
    pub fn wants(&self, username: &str) -> bool {
        match self {
            UserFilter::ServiceAccounts => event::service_account(username).is_some(),
            UserFilter::Only(users) => users.contains(username),
        }
    }
}

/// What the recorder keeps at most; beyond it requests are counted as
/// dropped, so that a hostile log cannot exhaust memory.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub accounts: usize,
    /// Distinct request shapes (verb, resource, scope, selectors) per account.
    pub shapes_per_account: usize,
    /// Pods (or addresses) per account.
    pub copies_per_account: usize,
    /// Long-running requests started and not yet seen to complete.
    pub open_requests: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { accounts: 20_000, shapes_per_account: 5_000, copies_per_account: 50_000, open_requests: 500_000 }
    }
}

/// How the events of a run were used.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Events handed to the recorder.
    pub events: u64,
    /// Requests recorded (one per request, whatever its stages).
    pub requests: u64,
    /// Events of users the filter does not keep.
    pub other_users: u64,
    /// `RequestReceived` and `Panic` events, and the completions of
    /// long-running requests already counted when they started.
    pub other_stages: u64,
    /// Requests beyond the limits.
    pub dropped: u64,
}

/// Long-running request started and not yet complete.
struct Open {
    account: u32,
    shape: u32,
    copy: u32,
    received: f64,
}

/// Builds [`Observations`] from audit events.
pub struct Recorder {
    filter: UserFilter,
    limits: Limits,
    accounts: Vec<Builder>,
    by_user: HashMap<Box<str>, u32>,
    open: HashMap<Box<str>, Open>,
    counts: Counts,
}

struct Builder {
    account: Account,
    copy_index: HashMap<Box<str>, u32>,
    shape_index: HashMap<Shape, u32>,
    /// Distinct object names seen per shape without its name: beyond
    /// [`NAMES_PER_SHAPE`], names are written `<name>`.
    names: HashMap<Shape, u32>,
    stats: HashMap<(u32, u32), Stats>,
}

/// Objects of one shape kept by name (a controller updates thousands of
/// ReplicaSets: one shape each would say nothing and fill memory).
const NAMES_PER_SHAPE: u32 = 16;

impl Recorder {
    pub fn new(filter: UserFilter) -> Recorder {
        Recorder::with_limits(filter, Limits::default())
    }

    pub fn with_limits(filter: UserFilter, limits: Limits) -> Recorder {
        Recorder {
            filter,
            limits,
            accounts: Vec::new(),
            by_user: HashMap::new(),
            open: HashMap::new(),
            counts: Counts::default(),
        }
    }

    pub fn filter(&self) -> &UserFilter {
        &self.filter
    }

    /// Counts an event the front end skipped without decoding it (another user).
    pub fn skipped_user(&mut self) {
        self.counts.events += 1;
        self.counts.other_users += 1;
    }

    /// Folds in one event. An event that cannot be read (no timestamp) is an
    /// error the front end reports with its line; nothing is recorded.
    pub fn record(&mut self, e: &Event<'_>) -> Result<(), String> {
        self.counts.events += 1;
        if !self.filter.wants(e.username) {
            self.counts.other_users += 1;
            return Ok(());
        }
        let Some((namespace, name)) = event::service_account(e.username) else {
            self.counts.other_users += 1;
            return Ok(());
        };
        if matches!(e.stage, Stage::RequestReceived | Stage::Panic) {
            self.counts.other_stages += 1;
            return Ok(());
        }
        let received = event::timestamp_seconds(e.request_received)
            .ok_or_else(|| format!("requestReceivedTimestamp `{}` is not an RFC 3339 time", e.request_received))?;
        let stage_time = event::timestamp_seconds(e.stage_timestamp).unwrap_or(received);
        if e.stage == Stage::ResponseComplete
            && !self.open.is_empty()
            && let Some(open) = self.open.remove(e.audit_id)
        {
            // The end of a long-running request counted when it started.
            self.counts.other_stages += 1;
            let b = &mut self.accounts[open.account as usize];
            b.account.last = b.account.last.max(stage_time);
            if let Some(s) = b.stats.get_mut(&(open.shape, open.copy)) {
                s.held_seconds += (stage_time - open.received).max(0.0);
                s.completed += 1;
                note_code(s, e.code);
            }
            return Ok(());
        }
        let Some(account) = self.account(e.username, namespace, name) else {
            self.counts.dropped += 1;
            return Ok(());
        };
        let limits = self.limits;
        let b = &mut self.accounts[account as usize];
        let Some(copy) = b.copy(e, limits.copies_per_account) else {
            self.counts.dropped += 1;
            return Ok(());
        };
        let (shape, node_value) = shape_of(e, &b.account.copies[copy as usize]);
        let Some(shape) = b.shape(shape, limits.shapes_per_account) else {
            self.counts.dropped += 1;
            return Ok(());
        };
        self.counts.requests += 1;
        let a = &mut b.account;
        a.first = a.first.min(received);
        a.last = a.last.max(received).max(stage_time);
        if let Some(ua) = e.user_agent.filter(|u| !u.is_empty())
            && a.user_agents.len() < 4
            && !a.user_agents.iter().any(|x| &**x == ua)
        {
            a.user_agents.push(ua.into());
        }
        let s = b.stats.entry((shape, copy)).or_insert_with(|| Stats {
            first: received,
            last: received,
            ..Stats::default()
        });
        s.count += 1;
        s.first = s.first.min(received);
        s.last = s.last.max(received);
        if let Some(v) = node_value
            && !s.node_values.iter().any(|x| **x == *v)
            && s.node_values.len() < 3
        {
            s.node_values.push(v.into());
        }
        match e.stage {
            Stage::ResponseStarted => {
                s.long_running += 1;
                note_code(s, e.code);
                if self.open.len() < limits.open_requests {
                    self.open.insert(e.audit_id.into(), Open { account, shape, copy, received });
                }
            }
            _ => {
                note_code(s, e.code);
                if e.verb == "watch" {
                    // A watch whose start was not logged (the log began
                    // during it, or ResponseStarted is omitted by the policy).
                    s.long_running += 1;
                    s.completed += 1;
                    s.held_seconds += (stage_time - received).max(0.0);
                }
            }
        }
        Ok(())
    }

    fn account(&mut self, username: &str, namespace: &str, name: &str) -> Option<u32> {
        if let Some(&i) = self.by_user.get(username) {
            return Some(i);
        }
        if self.accounts.len() >= self.limits.accounts {
            return None;
        }
        let i = self.accounts.len() as u32;
        self.accounts.push(Builder {
            account: Account {
                namespace: namespace.into(),
                name: name.into(),
                copies: Vec::new(),
                shapes: Vec::new(),
                stats: Vec::new(),
                first: f64::INFINITY,
                last: f64::NEG_INFINITY,
                user_agents: Vec::new(),
            },
            copy_index: HashMap::new(),
            shape_index: HashMap::new(),
            names: HashMap::new(),
            stats: HashMap::new(),
        });
        self.by_user.insert(username.into(), i);
        Some(i)
    }

    /// The observations, accounts in the order of their user names.
    pub fn finish(self) -> Observations {
        let mut accounts: Vec<Account> = self
            .accounts
            .into_iter()
            .map(|b| {
                let mut a = b.account;
                let mut stats: Vec<((u32, u32), Stats)> = b.stats.into_iter().collect();
                stats.sort_by_key(|(k, _)| *k);
                a.stats = stats.into_iter().map(|((shape, copy), s)| (shape, copy, s)).collect();
                a
            })
            .collect();
        accounts.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Observations { accounts, counts: self.counts, source: String::new() }
    }
}

impl Builder {
    /// The copy that sent the request: its pod (the token's), else its address.
    fn copy(&mut self, e: &Event<'_>, limit: usize) -> Option<u32> {
        let key: &str = match (e.pod_name, e.source_ip) {
            (Some(p), _) if !p.is_empty() => p,
            (_, Some(ip)) => ip,
            _ => "",
        };
        if let Some(&i) = self.copy_index.get(key) {
            let c = &mut self.account.copies[i as usize];
            if c.node.is_none() {
                c.node = e.node_name.filter(|n| !n.is_empty()).map(Into::into);
            }
            return Some(i);
        }
        if self.account.copies.len() >= limit {
            return None;
        }
        let i = self.account.copies.len() as u32;
        self.account.copies.push(Copy {
            pod: e.pod_name.filter(|p| !p.is_empty()).map(Into::into),
            node: e.node_name.filter(|n| !n.is_empty()).map(Into::into),
            address: e.source_ip.map(Into::into),
        });
        self.copy_index.insert(key.into(), i);
        Some(i)
    }

    fn shape(&mut self, mut shape: Shape, limit: usize) -> Option<u32> {
        if let Some(&i) = self.shape_index.get(&shape) {
            return Some(i);
        }
        if shape.name.as_deref().is_some_and(|n| !n.starts_with('<')) {
            let family = Shape { name: None, ..shape.clone() };
            let seen = self.names.entry(family).or_insert(0);
            if *seen >= NAMES_PER_SHAPE {
                shape.name = Some("<name>".into());
                if let Some(&i) = self.shape_index.get(&shape) {
                    return Some(i);
                }
            } else {
                *seen += 1;
            }
        }
        if self.account.shapes.len() >= limit {
            return None;
        }
        let i = self.account.shapes.len() as u32;
        self.account.shapes.push(shape.clone());
        self.shape_index.insert(shape, i);
        Some(i)
    }
}

fn note_code(s: &mut Stats, code: Option<u16>) {
    match code {
        Some(403) => s.refused += 1,
        Some(c) if c >= 400 => s.failed += 1,
        _ => {}
    }
}

/// The request's shape, with what differs per copy — its node's name in a
/// selector or an object name, its own pod's name — replaced by `<node>`
/// and `<pod>`; and the node name it used, if any.
fn shape_of(e: &Event<'_>, copy: &Copy) -> (Shape, Option<String>) {
    let q = Query::parse(e.request_uri);
    let Some(r) = e.object_ref.filter(|r| !r.resource.is_empty()) else {
        let shape = Shape { verb: e.verb.into(), path: Some(q.path.into()), ..Shape::default() };
        return (shape, None);
    };
    let filter = resources::node_filter(r.api_group, r.resource);
    let pod = copy.pod.as_deref();
    let node = copy.node.as_deref();
    let mut node_value: Option<String> = None;
    let mut name: Option<Box<str>> = None;
    if !r.name.is_empty() {
        name = Some(if Some(r.name) == pod {
            "<pod>".into()
        } else if filter == Some(NodeFilter::Name) || Some(r.name) == node {
            node_value = Some(r.name.to_string());
            "<node>".into()
        } else {
            r.name.into()
        });
    }
    let mut normalize = |selector: Option<String>, is_field: bool| -> Option<Box<str>> {
        let selector = selector?;
        let parts: Vec<String> = event::requirements(&selector)
            .into_iter()
            .map(|req| {
                if req.op.is_empty() {
                    return req.text;
                }
                let node_key = match filter {
                    Some(NodeFilter::Field(f)) => is_field && req.key == f,
                    Some(NodeFilter::Name) => is_field && req.key == "metadata.name",
                    Some(NodeFilter::Label(l)) => !is_field && req.key == l,
                    None => false,
                };
                if req.op == "=" && !req.value.is_empty() {
                    if is_field && req.key == "metadata.name" && Some(req.value.as_str()) == pod {
                        return format!("{}=<pod>", req.key);
                    }
                    if node_key || Some(req.value.as_str()) == node {
                        node_value = Some(req.value);
                        return format!("{}=<node>", req.key);
                    }
                }
                format!("{}{}{}", req.key, req.op, req.value)
            })
            .collect();
        Some(parts.join(",").into())
    };
    let field_selector = normalize(q.field_selector.clone(), true);
    let label_selector = normalize(q.label_selector.clone(), false);
    let list = (e.verb == "list").then(|| q.list_semantics());
    let shape = Shape {
        verb: e.verb.into(),
        group: r.api_group.into(),
        resource: r.resource.into(),
        subresource: r.subresource.into(),
        namespace: (!r.namespace.is_empty()).then(|| r.namespace.into()),
        name,
        field_selector,
        label_selector,
        list,
        paginated: q.limit || q.continue_token,
        path: None,
    };
    (shape, node_value)
}
