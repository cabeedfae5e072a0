//! Prometheus metrics on `/metrics`.

use crate::cluster::Cluster;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    pub kind: String,
    pub operation: String,
    /// allowed, denied, not_analysed, too_big, deadline, error, bad_request,
    /// too_large, overloaded, body_timeout
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub rule: String,
    /// denied, warned, recorded
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// review, ops
    pub listener: String,
    /// accepted, evicted, refused, tls_error, handshake_timeout, header_timeout, idle_timeout
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// forbidden, not_served, timeout, unreachable, unauthorized, server, other
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabel {
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    /// applied, unchanged, deleted
    pub operation: String,
}

pub struct Metrics {
    registry: Registry,
    pub review_seconds: Family<KindLabel, Histogram>,
    pub reviews: Family<ReviewLabels, Counter>,
    pub findings: Family<FindingLabels, Counter>,
    pub cache_objects: Family<KindLabel, Gauge>,
    pub cache_age: Family<KindLabel, Gauge<f64, AtomicU64>>,
    pub cluster_nodes: Gauge,
    pub pending_admissions: Gauge,
    pub watch_errors: Family<KindLabel, Counter>,
    pub cert_reloads: Family<ResultLabel, Counter>,
    pub configmap_reads: Family<ResultLabel, Counter>,
    pub connections: Family<ConnectionLabels, Counter>,
    /// The scheduled audit (`audit.rs`).
    pub audit_runs: Family<ResultLabel, Counter>,
    pub audit_failures: Family<ReasonLabel, Counter>,
    pub audit_last_success: Gauge,
    pub audit_duration: Gauge<f64, AtomicU64>,
    pub audit_findings: Family<SeverityLabel, Gauge>,
    pub audit_reports: Gauge,
    pub audit_writes: Family<OperationLabel, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("apiload");
        // 50 µs to ~1.6 s.
        let review_seconds = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00005, 2.0, 16))
        });
        registry.register(
            "review_duration_seconds",
            "Time from a review's arrival to its answer, by kind of the reviewed object",
            review_seconds.clone(),
        );
        let reviews = Family::default();
        registry.register("reviews", "Reviews answered, by kind, operation and decision", Family::clone(&reviews));
        let findings = Family::default();
        registry.register(
            "findings",
            "Findings of reviews, by rule and what was done with them",
            Family::clone(&findings),
        );
        let cache_objects = Family::default();
        registry.register("cache_objects", "Objects in the cluster cache, by kind", Family::clone(&cache_objects));
        let cache_age = Family::default();
        registry.register(
            "cache_age_seconds",
            "Seconds since each cached collection was last listed or had a watch event",
            Family::clone(&cache_age),
        );
        let cluster_nodes = Gauge::default();
        registry.register("cluster_nodes", "Nodes the cluster has (metadata watch)", cluster_nodes.clone());
        let pending_admissions = Gauge::default();
        registry.register(
            "pending_admissions",
            "Objects admitted by this replica that no watch event has confirmed yet",
            pending_admissions.clone(),
        );
        let watch_errors = Family::default();
        registry.register(
            "watch_errors",
            "Errors of the cache's list/watch streams, by kind",
            Family::clone(&watch_errors),
        );
        let cert_reloads = Family::default();
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads, by result",
            Family::clone(&cert_reloads),
        );
        let configmap_reads = Family::default();
        registry.register(
            "configmap_reads",
            "ConfigMaps read from the API server for reviews, by result",
            Family::clone(&configmap_reads),
        );
        let connections = Family::default();
        registry.register(
            "connections",
            "Connections by listener and what became of them (accepted, evicted, refused, timeouts)",
            Family::clone(&connections),
        );
        let audit_runs = Family::default();
        registry.register(
            "audit_runs",
            "Runs of the scheduled audit, by result (success, partial, failed, busy, not_ready)",
            Family::clone(&audit_runs),
        );
        let audit_failures = Family::default();
        registry.register(
            "audit_failures",
            "Failed runs of the scheduled audit, by reason (forbidden, not_served, timeout, unreachable, unauthorized, server, other)",
            Family::clone(&audit_failures),
        );
        let audit_last_success = Gauge::default();
        registry.register(
            "audit_last_success_timestamp_seconds",
            "Unix time of the scheduled audit's last run that published its PolicyReports (0: none yet)",
            audit_last_success.clone(),
        );
        let audit_duration = Gauge::default();
        registry.register(
            "audit_duration_seconds",
            "How long the scheduled audit's last run took",
            audit_duration.clone(),
        );
        let audit_findings = Family::default();
        registry.register(
            "audit_findings",
            "Findings of the scheduled audit's last published run, by severity",
            Family::clone(&audit_findings),
        );
        let audit_reports = Gauge::default();
        registry.register(
            "audit_reports",
            "PolicyReports and ClusterPolicyReports of the scheduled audit's last published run",
            audit_reports.clone(),
        );
        let audit_writes = Family::default();
        registry.register(
            "audit_report_writes",
            "What the scheduled audit did to each report: applied (new or changed), unchanged, deleted",
            Family::clone(&audit_writes),
        );
        Metrics {
            registry,
            audit_runs,
            audit_failures,
            audit_last_success,
            audit_duration,
            audit_findings,
            audit_reports,
            audit_writes,
            connections,
            review_seconds,
            reviews,
            findings,
            cache_objects,
            cache_age,
            cluster_nodes,
            pending_admissions,
            watch_errors,
            cert_reloads,
            configmap_reads,
        }
    }

    pub fn review(&self, kind: &str, operation: &str, decision: &str, seconds: f64) {
        self.review_seconds.get_or_create(&KindLabel { kind: kind.to_string() }).observe(seconds);
        self.reviews
            .get_or_create(&ReviewLabels {
                kind: kind.to_string(),
                operation: operation.to_string(),
                decision: decision.to_string(),
            })
            .inc();
    }

    pub fn connection(&self, listener: &str, event: &str) {
        self.connections
            .get_or_create(&ConnectionLabels { listener: listener.to_string(), event: event.to_string() })
            .inc();
    }

    pub fn finding(&self, rule: &str, outcome: &str) {
        self.findings.get_or_create(&FindingLabels { rule: rule.to_string(), outcome: outcome.to_string() }).inc();
    }

    pub fn result(family: &Family<ResultLabel, Counter>, result: &str) {
        family.get_or_create(&ResultLabel { result: result.to_string() }).inc();
    }

    /// The text exposition, with the cache gauges read now.
    pub fn render(&self, cluster: &Cluster) -> String {
        self.cache_objects.clear();
        for (kind, n) in cluster.sizes() {
            self.cache_objects.get_or_create(&KindLabel { kind }).set(n as i64);
        }
        for (kind, age) in cluster.ages() {
            self.cache_age.get_or_create(&KindLabel { kind: kind.to_string() }).set(age);
        }
        self.cluster_nodes.set(cluster.nodes() as i64);
        self.pending_admissions.set(cluster.pending_admissions() as i64);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
