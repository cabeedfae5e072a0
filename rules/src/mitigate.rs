//! `apiload mitigate`: for every workload that fans out and that no
//! FlowSchema keeps out of the bootstrap ones (what AL401 and AL402 report),
//! a FlowSchema of its ServiceAccount and a PriorityLevelConfiguration of its
//! own, sized from what its copies send. The plan is decided here, with the
//! figures it came from; front ends write it out (docs/mitigate.md states
//! the model with its sources).
//!
//! The arithmetic is API Priority and Fairness's own (k8s.io/apiserver
//! v0.34.4, what Kubernetes 1.34 runs):
//!
//! - A level's nominal concurrency is `ceil(serverCL × shares / Σ shares)`,
//!   over every level the server has (`pkg/util/flowcontrol/apf_controller.go`,
//!   `finishQueueSetReconfigsLocked`); the server's concurrency limit is
//!   `--max-requests-inflight` + `--max-mutating-requests-inflight`.
//! - The seats a LIST occupies are its estimated memory over 100 KB, at least
//!   1; served from the watch cache the memory counts at most 1 MB (so at
//!   most 10 seats), from etcd at most 100 seats; and never more than the
//!   level's own maximum, `max(1, min(ceil(0.15 × nominalCL), nominalCL /
//!   handSize))` (`pkg/util/flowcontrol/request/list_work_estimator.go`,
//!   `config.go`; `apf_controller.go`). The estimator counts the whole
//!   collection whatever the selector: a node-scoped LIST from the cache
//!   costs what a cluster-wide one does. A GET, a LIST of one named object and
//!   a WATCH that does not ask for initial events occupy one seat.
//! - `lendableCL = round(nominalCL × lendablePercent / 100)`, `borrowingCL =
//!   round(nominalCL × borrowingLimitPercent / 100)`: the level holds between
//!   `nominalCL − lendableCL` and `nominalCL + borrowingCL` seats.
//! - A request waits in its queue at most a quarter of the request timeout
//!   (`pkg/server/config.go`: `RequestTimeout/4`, 60 s by default), then it is
//!   rejected with 429 and the client retries later.
//!
//! What is assumed rather than read from the source: how long a request
//! holds its seats (`HOLD_SECONDS`, `LIST_BYTES_PER_SECOND`).

use crate::analysis::WorkloadAnalysis;
use crate::apf;
use crate::calls::{ApiCall, CallScope};
use crate::cost;
use crate::diagnostic::ObjectRef;
use crate::options::ClusterProfile;
use std::collections::BTreeMap;

/// The API server's default `--max-requests-inflight` and
/// `--max-mutating-requests-inflight` (k8s.io/apiserver `pkg/server/config.go`,
/// `NewConfig`): with APF on, their sum is the server's concurrency limit.
pub const DEFAULT_MAX_REQUESTS_INFLIGHT: u64 = 400;
pub const DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT: u64 = 200;

/// Where our FlowSchemas go: after every bootstrap schema that must keep its
/// requests (leader election at 100, the nodes' at 400 and 500, the
/// controller manager's and the scheduler's at 800) and before the schemas
/// that would otherwise take a ServiceAccount's requests
/// (`kube-system-service-accounts` at 900, `service-accounts` at 9000).
pub const PRECEDENCE: i64 = 850;
const _: () = assert!(
    PRECEDENCE > apf::LAST_SYSTEM_SCHEMA_PRECEDENCE && PRECEDENCE < apf::KUBE_SYSTEM_SERVICE_ACCOUNTS_PRECEDENCE
);

/// The work estimator's constants (list_work_estimator.go, config.go, v0.34.4).
const BYTES_PER_SEAT: f64 = 100_000.0;
const CACHE_MAX_MEMORY: f64 = 1_000_000.0;
const MAX_LIST_SEATS: u64 = 100;
/// A level's largest request, as a fraction of its nominal concurrency
/// (`priorityLevelMaxSeatsPercent`, apf_controller.go).
const LEVEL_MAX_SEATS_FRACTION: f64 = 0.15;

/// Assumed: how long a small request (a GET, a WATCH's start, a LIST of at
/// most a few hundred KB) holds its seats. Measure it on the server with
/// `apiserver_flowcontrol_request_execution_seconds` and adjust the shares.
pub const HOLD_SECONDS: f64 = 0.1;
/// Assumed: how fast the API server writes out a large LIST; its seats are
/// held meanwhile. The end-to-end suite's cost check measured 66 MB/s for 20
/// concurrent cluster-wide LISTs on 2 cores (docs/cost-model.md); a
/// production server does better per LIST.
pub const LIST_BYTES_PER_SECOND: f64 = 100e6;
/// client-go's reflector ends a watch after `minWatchTimeout × (1 + rand)`,
/// `minWatchTimeout` 5 minutes (tools/cache/reflector.go): on average every
/// 7.5 minutes each watch is opened again.
pub const WATCH_RENEWAL_SECONDS: f64 = 450.0;
/// How long a request may wait in its queue: a quarter of the default
/// request timeout of 60 s (`pkg/server/config.go`).
pub const QUEUE_WAIT_SECONDS: f64 = 15.0;
/// The most of the server a level of ours is given for its steady traffic
/// (10%): containment is the point. A level still gets what its widest LIST
/// needs to be costed in full.
pub const MAX_LEVEL_FRACTION: f64 = 0.10;
/// All our levels together take at most half of the server.
const MAX_TOTAL_FRACTION: f64 = 0.5;

/// The API server's concurrency limits (`kube-apiserver` flags).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerLimits {
    pub max_requests_inflight: u64,
    pub max_mutating_requests_inflight: u64,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_requests_inflight: DEFAULT_MAX_REQUESTS_INFLIGHT,
            max_mutating_requests_inflight: DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT,
        }
    }
}

impl ServerLimits {
    /// The server's concurrency limit under APF: the sum of the two.
    pub fn concurrency_limit(&self) -> u64 {
        (self.max_requests_inflight + self.max_mutating_requests_inflight).max(1)
    }
}

/// Everything `apiload mitigate` writes, and why.
#[derive(Debug)]
pub struct Plan {
    pub server: ServerLimits,
    /// `serverCL`.
    pub server_cl: u64,
    pub nodes: u64,
    /// The levels the server already has: bootstrap and input, by name
    /// (an input level of a bootstrap name replaces it).
    pub levels: Vec<(String, u64)>,
    /// Their shares together.
    pub existing_shares: u64,
    /// All shares once ours are added.
    pub total_shares: u64,
    /// True when ours together wanted more than half of the server and were
    /// scaled down to it.
    pub scaled_down: bool,
    pub mitigations: Vec<Mitigation>,
    /// Fan-out workloads left alone: a FlowSchema of the input takes their
    /// requests already.
    pub covered: Vec<Covered>,
}

#[derive(Debug, Clone)]
pub struct Covered {
    pub workload: ObjectRef,
    pub copies: u64,
    pub flow_schema: String,
}

/// One ServiceAccount's FlowSchema and priority level.
#[derive(Debug, Clone)]
pub struct Mitigation {
    /// Of both objects: `apiload-<namespace>-<serviceaccount>`.
    pub name: String,
    pub namespace: String,
    pub service_account: String,
    /// The fan-out workloads running as it, with their copies.
    pub workloads: Vec<(ObjectRef, u64)>,
    pub copies: u64,
    pub precedence: i64,
    /// The requests one start of a copy makes (its initial LISTs and watches).
    pub requests: Vec<RequestCost>,
    pub herd: Herd,
    pub steady: Vec<SteadyPart>,
    /// Seats the steady traffic holds at once: Σ rate × seats × hold.
    pub steady_seats: f64,
    pub level: Level,
}

/// What one request of a copy's start costs.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestCost {
    /// `pods`, `replicasets.apps`.
    pub resource: String,
    /// `LIST` or `WATCH`.
    pub verb: &'static str,
    /// `cluster`, `namespace`, `node` or `object`.
    pub scope: &'static str,
    /// Copies that make it (1 when only the leader does).
    pub copies: u64,
    /// Objects in the collection, as the work estimator counts them.
    pub collection_objects: f64,
    pub object_bytes: f64,
    /// Bytes one request returns.
    pub bytes: f64,
    pub from_cache: bool,
    /// Seats before the level's own maximum applies.
    pub seats: u64,
    pub hold_seconds: f64,
}

/// Every copy starting at once (a rollout, or the DaemonSet's creation,
/// which its controller never throttles).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Herd {
    pub requests: u64,
    pub seats: u64,
    /// Σ seats × hold of all of them.
    pub seat_seconds: f64,
    /// The widest single request, in seats.
    pub widest_seats: u64,
}

/// One part of the steady traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct SteadyPart {
    pub what: String,
    pub per_second: f64,
    pub seats: u64,
    pub hold_seconds: f64,
}

/// The PriorityLevelConfiguration's numbers, with the ones they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Level {
    /// The nominal concurrency the sizing asked for.
    pub target_cl: u64,
    /// The smallest nominal concurrency whose maximum seats cover the widest request.
    pub width_cl: u64,
    /// `MAX_LEVEL_FRACTION` of the server.
    pub cap_cl: u64,
    /// True when the steady traffic needs more than `cap_cl`.
    pub steady_capped: bool,
    pub shares: u64,
    /// What the API server computes from the shares.
    pub nominal_cl: u64,
    pub max_seats: u64,
    /// Seats kept from lending: `nominalCL − lendableCL`.
    pub guaranteed: u64,
    pub lendable_percent: u64,
    pub borrowing_limit_percent: u64,
    pub queues: u64,
    pub hand_size: u64,
    pub queue_length_limit: u64,
    /// Herd requests the level dispatches per second at its nominal concurrency.
    pub dispatch_per_second: f64,
    /// Seconds for the whole herd to get through.
    pub herd_seconds: f64,
}

/// The most seats the work estimator gives one request of a level
/// (apf_controller.go): `max(1, min(ceil(0.15 × CL), CL / handSize))`,
/// and never above the LIST maximum of 100.
pub fn max_seats(nominal_cl: u64, hand_size: u64) -> u64 {
    let by_fraction = (nominal_cl as f64 * LEVEL_MAX_SEATS_FRACTION).ceil() as u64;
    let by_hand = nominal_cl / hand_size.max(1);
    by_fraction.min(by_hand).clamp(1, MAX_LIST_SEATS)
}

/// The smallest nominal concurrency (up to `limit`) whose maximum seats are
/// at least `seats`.
pub fn width_cl(seats: u64, hand_size: u64, limit: u64) -> u64 {
    (1..=limit.max(1)).find(|&cl| max_seats(cl, hand_size) >= seats).unwrap_or(limit.max(1))
}

/// `ceil(serverCL × shares / total)`, as the API server computes a level's
/// nominal concurrency.
pub fn nominal_cl(server_cl: u64, shares: u64, total_shares: u64) -> u64 {
    if total_shares == 0 {
        return 0;
    }
    (server_cl as f64 * shares as f64 / total_shares as f64).ceil() as u64
}

/// The seats one LIST occupies, as the work estimator gives them, before
/// the level's maximum: the collection's memory over 100 KB (at most 1 MB
/// from the watch cache), 1 to 100.
pub fn list_seats(collection_objects: f64, object_bytes: f64, from_cache: bool) -> u64 {
    let memory = collection_objects.max(0.0) * object_bytes.max(0.0);
    let memory = if from_cache { memory.min(CACHE_MAX_MEMORY) } else { memory };
    ((memory / BYTES_PER_SEAT).ceil() as u64).clamp(1, MAX_LIST_SEATS)
}

/// How long a request returning `bytes` holds its seats (assumed; see
/// `HOLD_SECONDS`, `LIST_BYTES_PER_SECOND`).
pub fn hold_seconds(bytes: f64) -> f64 {
    (bytes / LIST_BYTES_PER_SECOND).max(HOLD_SECONDS)
}

/// The share of every new level, so that each gets at least its target
/// nominal concurrency when all of them are added to `existing` shares:
/// from `n_i / (existing + Σ n) = target_i / serverCL`, i.e.
/// `n_i = target_i × existing / (serverCL − Σ target)`, rounded up and
/// raised until the API server's own rounding gives each its target.
pub fn shares_for(server_cl: u64, existing: u64, targets: &[u64]) -> Vec<u64> {
    let sum: u64 = targets.iter().sum();
    let room = server_cl.saturating_sub(sum).max(1);
    let mut shares: Vec<u64> =
        targets.iter().map(|&t| ((t as f64 * existing as f64 / room as f64).ceil() as u64).max(1)).collect();
    // Each raise only helps its level and costs the others a little; a few
    // rounds settle it (bounded, for safety).
    for _ in 0..10_000 {
        let total = existing + shares.iter().sum::<u64>();
        let short: Vec<usize> =
            (0..shares.len()).filter(|&i| nominal_cl(server_cl, shares[i], total) < targets[i]).collect();
        if short.is_empty() {
            break;
        }
        for i in short {
            shares[i] += 1;
        }
    }
    shares
}

/// `lendablePercent`: as much as can be lent while `guaranteed` seats stay
/// (`lendableCL = round(CL × percent / 100)`).
pub fn lendable_percent(nominal_cl: u64, guaranteed: u64) -> u64 {
    (0..=100u64)
        .rev()
        .find(|&p| {
            let lendable = (nominal_cl as f64 * p as f64 / 100.0).round() as u64;
            nominal_cl.saturating_sub(lendable) >= guaranteed.min(nominal_cl)
        })
        .unwrap_or(0)
}

/// `apiload-<namespace>-<serviceaccount>`, within the 63 characters of a
/// label value and a DNS label; a longer one keeps its start and ends in a
/// hash of the whole, so that it stays unique and the same from run to run.
pub fn object_name(namespace: &str, service_account: &str) -> String {
    const LIMIT: usize = 63;
    let full = format!("apiload-{namespace}-{service_account}");
    if full.len() <= LIMIT {
        return full;
    }
    // FNV-1a, 64 bits: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{namespace}/{service_account}").bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let suffix = format!("-{:010x}", h >> 24);
    let keep = LIMIT - suffix.len();
    let mut head: String = full.chars().take(keep).collect();
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    head + &suffix
}

/// What one start of the workload's copies costs, per request.
fn requests(a: &WorkloadAnalysis, profile: &ClusterProfile) -> Vec<RequestCost> {
    let copies = a.fanout.copies;
    let mut out = Vec::new();
    for c in a.behaviour.calls.iter().filter(|c| c.list || c.watch) {
        let est = cost::call_estimate(c, copies, profile);
        let info = c.info.unwrap_or(&cost::UNKNOWN);
        let object_bytes = cost::object_bytes(info, profile);
        let collection = cost::count(info, profile);
        let from_cache = !from_etcd(c, profile);
        let bytes = est.objects_per_copy * object_bytes;
        let seats = if c.scope == CallScope::Object { 1 } else { list_seats(collection, object_bytes, from_cache) };
        out.push(RequestCost {
            resource: c.display(),
            verb: "LIST",
            scope: est.scope,
            copies: est.copies,
            collection_objects: collection,
            object_bytes,
            bytes,
            from_cache,
            seats,
            hold_seconds: hold_seconds(bytes),
        });
        if c.watch {
            out.push(RequestCost {
                resource: c.display(),
                verb: "WATCH",
                scope: est.scope,
                copies: est.copies,
                collection_objects: collection,
                object_bytes,
                bytes: 0.0,
                from_cache: true,
                seats: 1,
                hold_seconds: HOLD_SECONDS,
            });
        }
    }
    out
}

/// A LIST with the most-recent semantic is a quorum read from etcd before
/// Kubernetes 1.31 (AL403); everything else informers ask is served from
/// the watch cache.
fn from_etcd(c: &ApiCall, profile: &ClusterProfile) -> bool {
    c.origin.as_ref().is_some_and(|o| o.consistent_list) && profile.kubernetes_minor < 31
}

/// The steady traffic of one workload: watches opened again, Lease GETs of
/// leader election, LISTs on a timer, and what the audit log showed besides.
fn steady(a: &WorkloadAnalysis, requests: &[RequestCost], profile: &ClusterProfile) -> Vec<SteadyPart> {
    let mut out = Vec::new();
    let watches: u64 = requests.iter().filter(|r| r.verb == "WATCH").map(|r| r.copies).sum();
    if watches > 0 {
        out.push(SteadyPart {
            what: format!(
                "{} watches opened again every {:.1} minutes on average",
                crate::text::thousands(watches),
                WATCH_RENEWAL_SECONDS / 60.0
            ),
            per_second: watches as f64 / WATCH_RENEWAL_SECONDS,
            seats: 1,
            hold_seconds: HOLD_SECONDS,
        });
    }
    let est = cost::estimate(a, profile);
    // kube-system's Lease requests go to `system-leader-election` (100), before ours.
    if est.lease_requests_per_second > 0.0 && a.identity.namespace.as_ref() != "kube-system" {
        out.push(SteadyPart {
            what: "Lease GETs of leader election, every copy every 2 s".into(),
            per_second: est.lease_requests_per_second,
            seats: 1,
            hold_seconds: HOLD_SECONDS,
        });
    }
    for c in a.behaviour.calls.iter().filter(|c| c.list || c.watch) {
        let Some(every) = c.origin.as_ref().and_then(|o| o.every).filter(|e| *e > 0.0) else { continue };
        let Some(r) = requests.iter().find(|r| r.verb == "LIST" && r.resource == c.display()) else { continue };
        out.push(SteadyPart {
            what: format!("LISTs of {} every {every} s", r.resource),
            per_second: r.copies as f64 / every,
            seats: r.seats,
            hold_seconds: r.hold_seconds,
        });
    }
    if let Some(rate) = est.observed_requests_per_second.filter(|r| *r > 0.0) {
        out.push(SteadyPart {
            what: "other requests the audit log showed".into(),
            per_second: rate,
            seats: 1,
            hold_seconds: HOLD_SECONDS,
        });
    }
    out
}

/// The plan for a report's workloads.
pub fn plan(report: &crate::Report, server: ServerLimits) -> Plan {
    let inv = &report.inventory;
    let profile = &report.options.cluster;
    let schemas = apf::flow_schemas(inv);
    let server_cl = server.concurrency_limit();

    // The levels the server has: bootstrap, replaced or joined by the input's.
    let mut levels: BTreeMap<String, u64> = apf::BOOTSTRAP_LEVELS.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    levels.extend(apf::priority_levels(inv));
    let existing_shares: u64 = levels.values().sum();

    struct Group<'a> {
        analyses: Vec<&'a WorkloadAnalysis>,
    }
    let mut groups: BTreeMap<(String, String), Group<'_>> = BTreeMap::new();
    let mut covered = Vec::new();
    for a in &report.analyses {
        if !a.fans_out_listing() {
            continue;
        }
        let obj = inv.object(inv.workloads[a.workload].object);
        if crate::workload::controlling_owner(obj).is_some() {
            continue; // judged through its owner
        }
        let id = &a.identity;
        if let Some(fs) = apf::covering(&schemas, &id.namespace, &id.service_account, &a.behaviour.calls) {
            covered.push(Covered { workload: obj.reference(), copies: a.fanout.copies, flow_schema: fs.name.clone() });
            continue;
        }
        groups
            .entry((id.namespace.to_string(), id.service_account.to_string()))
            .or_insert_with(|| Group { analyses: Vec::new() })
            .analyses
            .push(a);
    }

    let hand_size = 1;
    let cap_cl = ((server_cl as f64 * MAX_LEVEL_FRACTION).ceil() as u64).max(1);
    let mut mitigations: Vec<Mitigation> = groups
        .into_iter()
        .map(|((namespace, service_account), g)| {
            let mut workloads = Vec::new();
            let mut reqs = Vec::new();
            let mut steady_parts = Vec::new();
            for a in &g.analyses {
                let obj = inv.object(inv.workloads[a.workload].object);
                workloads.push((obj.reference(), a.fanout.copies));
                let r = requests(a, profile);
                steady_parts.extend(steady(a, &r, profile));
                reqs.extend(r);
            }
            let herd = Herd {
                requests: reqs.iter().map(|r| r.copies).sum(),
                seats: reqs.iter().map(|r| r.copies * r.seats).sum(),
                seat_seconds: reqs.iter().map(|r| r.copies as f64 * r.seats as f64 * r.hold_seconds).sum(),
                widest_seats: reqs.iter().map(|r| r.seats).max().unwrap_or(1),
            };
            let steady_seats: f64 = steady_parts.iter().map(|s| s.per_second * s.seats as f64 * s.hold_seconds).sum();
            let width = width_cl(herd.widest_seats, hand_size, server_cl);
            let steady_cl = steady_seats.ceil() as u64;
            let level = Level {
                target_cl: width.max(steady_cl.min(cap_cl)).max(1),
                width_cl: width,
                cap_cl,
                steady_capped: steady_cl > cap_cl,
                hand_size,
                queues: 1,
                ..Level::default()
            };
            Mitigation {
                name: object_name(&namespace, &service_account),
                copies: workloads.iter().map(|(_, c)| c).sum(),
                namespace,
                service_account,
                workloads,
                precedence: PRECEDENCE,
                requests: reqs,
                herd,
                steady: steady_parts,
                steady_seats,
                level,
            }
        })
        .collect();

    // Our levels together take at most half of the server.
    let wanted: u64 = mitigations.iter().map(|m| m.level.target_cl).sum();
    let most = (server_cl as f64 * MAX_TOTAL_FRACTION).floor() as u64;
    let scaled_down = wanted > most;
    if scaled_down {
        for m in &mut mitigations {
            m.level.target_cl = ((m.level.target_cl as f64 * most as f64 / wanted as f64).floor() as u64).max(1);
        }
    }
    let targets: Vec<u64> = mitigations.iter().map(|m| m.level.target_cl).collect();
    let shares = shares_for(server_cl, existing_shares, &targets);
    let total_shares = existing_shares + shares.iter().sum::<u64>();
    for (m, n) in mitigations.iter_mut().zip(shares) {
        let l = &mut m.level;
        l.shares = n;
        l.nominal_cl = nominal_cl(server_cl, n, total_shares);
        l.max_seats = max_seats(l.nominal_cl, l.hand_size);
        // Kept from lending: the steady traffic, and one widest request.
        let keep = (m.steady_seats.ceil() as u64).max(m.herd.widest_seats.min(l.max_seats));
        l.lendable_percent = lendable_percent(l.nominal_cl, keep);
        l.guaranteed = l.nominal_cl - (l.nominal_cl as f64 * l.lendable_percent as f64 / 100.0).round() as u64;
        // Never more than its own seats: the herd waits instead of borrowing
        // the seats of every other level.
        l.borrowing_limit_percent = 0;
        // Seat-seconds of the herd, with every request at most the level's maximum seats.
        let seat_seconds: f64 =
            m.requests.iter().map(|r| r.copies as f64 * r.seats.min(l.max_seats) as f64 * r.hold_seconds).sum();
        l.dispatch_per_second =
            if seat_seconds > 0.0 { l.nominal_cl as f64 * m.herd.requests as f64 / seat_seconds } else { 0.0 };
        l.herd_seconds = if l.nominal_cl > 0 { seat_seconds / l.nominal_cl as f64 } else { 0.0 };
        // What the level can dispatch before a request's wait runs out; a
        // longer queue only holds requests that would be rejected anyway.
        let within_wait = (l.dispatch_per_second * QUEUE_WAIT_SECONDS).ceil() as u64;
        l.queue_length_limit = within_wait.clamp(1, m.herd.requests.max(1));
    }
    Plan {
        server,
        server_cl,
        nodes: profile.nodes,
        levels: levels.into_iter().collect(),
        existing_shares,
        total_shares,
        scaled_down,
        mitigations,
        covered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_shares_sum_to_245() {
        assert_eq!(apf::BOOTSTRAP_LEVELS.iter().map(|(_, s)| s).sum::<u64>(), 245);
    }

    #[test]
    fn nominal_concurrency_of_the_bootstrap_levels_at_600() {
        // ceil(600 × 100 / 245) = ceil(244.9) = 245; ceil(600 × 5 / 245) = ceil(12.24) = 13.
        assert_eq!(nominal_cl(600, 100, 245), 245);
        assert_eq!(nominal_cl(600, 5, 245), 13);
        assert_eq!(nominal_cl(600, 0, 245), 0);
        assert_eq!(nominal_cl(600, 1, 0), 0);
    }

    #[test]
    fn level_max_seats() {
        // workload-low at 600: min(ceil(0.15 × 245) = 37, 245 / 6 = 40) = 37.
        assert_eq!(max_seats(245, 6), 37);
        // leader-election: CL ceil(600 × 10 / 245) = 25; min(ceil(3.75) = 4, 25 / 4 = 6) = 4.
        assert_eq!(max_seats(25, 4), 4);
        assert_eq!(max_seats(3, 6), 1);
        assert_eq!(max_seats(10_000, 1), 100);
    }

    #[test]
    fn width_floor() {
        // 10 seats with one queue: ceil(0.15 × 61) = ceil(9.15) = 10, while ceil(0.15 × 60) = 9.
        assert_eq!(width_cl(10, 1, 600), 61);
        // With a hand of 6 also 60 / 6 = 10 holds: still 61.
        assert_eq!(width_cl(10, 6, 600), 61);
        // 1 seat: the smallest level.
        assert_eq!(width_cl(1, 1, 600), 1);
        // 3 seats: ceil(0.15 × 14) = 3 (2.1 → 3), ceil(0.15 × 13) = 2.
        assert_eq!(width_cl(3, 1, 600), 14);
    }

    #[test]
    fn seats_of_a_list() {
        // 150,000 pods × 8 KB from the watch cache: memory counted at 1 MB → 10 seats.
        assert_eq!(list_seats(150_000.0, 8_000.0, true), 10);
        // The same from etcd: 1.2 GB / 100 KB = 12,000 → the LIST maximum, 100.
        assert_eq!(list_seats(150_000.0, 8_000.0, false), 100);
        // 200 objects × 2 KB = 400 KB → 4 seats either way.
        assert_eq!(list_seats(200.0, 2_000.0, true), 4);
        assert_eq!(list_seats(200.0, 2_000.0, false), 4);
        // An empty collection still takes one seat.
        assert_eq!(list_seats(0.0, 8_000.0, true), 1);
    }

    #[test]
    fn shares_give_each_level_its_target() {
        // One level of 61 seats beside the bootstrap's 245 shares at 600:
        // 61 × 245 / (600 − 61) = 27.73 → 28; ceil(600 × 28 / 273) = ceil(61.54) = 62.
        assert_eq!(shares_for(600, 245, &[61]), vec![28]);
        assert_eq!(nominal_cl(600, 28, 273), 62);
        // 27 would give ceil(600 × 27 / 272) = ceil(59.56) = 60 < 61.
        assert_eq!(nominal_cl(600, 27, 272), 60);
        // Two levels: 61 and 14 of 600; 245 × 61 / 525 = 28.47 → 29, 245 × 14 / 525 = 6.53 → 7;
        // total 281: ceil(600 × 29 / 281) = 62, ceil(600 × 7 / 281) = 15.
        let s = shares_for(600, 245, &[61, 14]);
        assert_eq!(s, vec![29, 7]);
        let total = 245 + 29 + 7;
        assert!(nominal_cl(600, 29, total) >= 61 && nominal_cl(600, 7, total) >= 14);
        // A larger server needs fewer shares for the same seats:
        // 61 × 245 / (3000 − 61) = 5.09 → 6; ceil(3000 × 6 / 251) = 72.
        assert_eq!(shares_for(3_000, 245, &[61]), vec![6]);
    }

    #[test]
    fn lending_keeps_what_is_needed() {
        // 62 seats keeping 10: round(62 × 83 / 100) = round(51.46) = 51 → 11 kept;
        // 84% would lend round(52.08) = 52 → 10 kept, 85% round(52.7) = 53 → 9.
        assert_eq!(lendable_percent(62, 10), 84);
        assert_eq!(lendable_percent(62, 62), 0);
        assert_eq!(lendable_percent(62, 0), 100);
    }

    #[test]
    fn names_fit_and_stay_the_same() {
        assert_eq!(object_name("logging", "log-agent"), "apiload-logging-log-agent");
        let long = object_name("a-namespace-with-a-rather-long-name", "and-a-service-account-even-longer-than-it");
        assert!(long.len() <= 63, "{long}");
        assert!(long.starts_with("apiload-a-namespace-with"));
        assert_eq!(
            long,
            object_name("a-namespace-with-a-rather-long-name", "and-a-service-account-even-longer-than-it")
        );
        assert_ne!(
            long,
            object_name("a-namespace-with-a-rather-long-name", "and-a-service-account-even-longer-than-iu")
        );
    }

    /// The worked example of docs/mitigate.md, by hand.
    #[test]
    fn plan_of_a_daemonset_watching_every_pod() {
        let text = b"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: inv, namespace: ops}\nspec:\n  selector: {matchLabels: {app: inv}}\n  template:\n    metadata: {labels: {app: inv}}\n    spec:\n      serviceAccountName: inv\n      containers: [{name: c, image: registry.example.com/inv:1}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: inv}\nrules: [{apiGroups: [''], resources: [pods], verbs: [list, watch]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: inv}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: inv}\nsubjects: [{kind: ServiceAccount, name: inv, namespace: ops}]\n";
        let mut sources = crate::Sources::new();
        let id = sources.add("inv.yaml", text);
        let mut input = crate::Input::new(crate::Options::default());
        input.add_documents(id, apiload_yaml::load_stream(text, &Default::default()));
        let report = input.analyze(&sources);
        let plan = plan(&report, ServerLimits::default());
        assert_eq!((plan.server_cl, plan.existing_shares, plan.total_shares), (600, 245, 273));
        let [m] = plan.mitigations.as_slice() else { panic!("{plan:#?}") };
        assert_eq!((m.name.as_str(), m.copies, m.precedence), ("apiload-ops-inv", 5_000, 850));
        // 5,000 LISTs of 10 seats held 1.2 GB / 100 MB/s = 12 s, 5,000 WATCHes of 1 seat held 0.1 s.
        assert_eq!((m.herd.requests, m.herd.seats, m.herd.widest_seats), (10_000, 55_000, 10));
        assert!((m.herd.seat_seconds - 600_500.0).abs() < 1e-6, "{}", m.herd.seat_seconds);
        // 5,000 watches every 450 s × 1 seat × 0.1 s.
        assert!((m.steady_seats - 5_000.0 / 450.0 * 0.1).abs() < 1e-9);
        let l = &m.level;
        assert_eq!((l.width_cl, l.cap_cl, l.target_cl, l.steady_capped), (61, 60, 61, false));
        assert_eq!((l.shares, l.nominal_cl, l.max_seats), (28, 62, 10));
        assert_eq!((l.lendable_percent, l.guaranteed, l.borrowing_limit_percent), (84, 10, 0));
        // 62 × 10,000 / 600,500 = 1.0325/s; ceil(15 × 1.0325) = 16; 600,500 / 62 = 9,685 s.
        assert_eq!((l.queues, l.hand_size, l.queue_length_limit), (1, 1, 16));
        assert!((l.herd_seconds - 600_500.0 / 62.0).abs() < 1e-6);
        assert!(plan.covered.is_empty() && !plan.scaled_down);
    }

    #[test]
    fn hold_times() {
        assert_eq!(hold_seconds(0.0), HOLD_SECONDS);
        // 1.2 GB at 100 MB/s.
        assert!((hold_seconds(1.2e9) - 12.0).abs() < 1e-9);
    }
}
