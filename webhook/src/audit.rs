//! The scheduled audit (`--audit-interval`, off by default): every interval
//! the webhook judges the whole cluster state its watches hold, as
//! `apiload audit` judges what it reads, and keeps the cluster's
//! `wgpolicyk8s.io/v1alpha2` PolicyReports up to date (docs/audit.md).
//!
//! The same judgement as `apiload audit`, through the same code: the held
//! objects are kept as an audit's read keeps what it lists
//! (`apiload_cluster::snapshot::held`: owned objects and the bootstrap
//! policy left out), the ConfigMaps the workloads read are fetched
//! (`read_config_maps_by_get`: the webhook may `get` ConfigMaps, not list
//! them), `apiload_cluster::audit::analyze` runs the engine, and
//! `apiload_cluster::policyreport::reports` builds the reports that
//! `apiload audit --format policyreport` prints. The options are the
//! webhook's own — its configuration, its node count (`--nodes`, or the
//! larger of the configured size and the Nodes it watches), annotation
//! exemptions only where the configuration allows them — so the reports say
//! what the webhook would say of each object. What the webhook does not
//! watch is not audited: Pods (a bare Pod is judged by `apiload audit`,
//! not here) and Secrets.
//!
//! Off the request path: the state is copied under its read lock (an `Arc`
//! per object, no tree copied), the analysis runs on a thread of its own
//! at nice 10 (as large reviews do), and the requests use the cache's
//! client and its share of `--kube-api-qps`, never the reviews' share. One
//! run at a time: a run that finds another in progress does nothing.
//! A failed run (the server down, 403 on PolicyReports, the CRDs absent, a
//! timeout) is logged and counted; the webhook serves on, and the next
//! interval tries again.

use crate::config::SOURCE_CONFIG;
use crate::metrics::Metrics;
use crate::review::App;
use apiload_cluster::client::Connected;
use apiload_cluster::list::Lister;
use apiload_cluster::publish::{self, Published};
use apiload_cluster::snapshot::{self, Snapshot};
use apiload_cluster::{ClusterError, ErrorKind};
use apiload_rules::setup::Setup;
use apiload_rules::{Severity, Sources};
use apiload_yaml::Node;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Objects per page when listing apiload's stored reports.
const PAGE_SIZE: u32 = 500;

pub struct Auditor {
    app: Arc<App>,
    conn: Connected,
    running: tokio::sync::Mutex<()>,
}

/// What one run found and did.
#[derive(Debug)]
pub struct Summary {
    /// Workloads judged.
    pub workloads: usize,
    /// Findings, by severity: errors, warnings, infos.
    pub findings: [usize; 3],
    /// Reports the audit built.
    pub reports: usize,
    pub published: Published,
    /// What could not be read (a ConfigMap forbidden) or written (a report
    /// forbidden in one namespace): the run went on without it.
    pub problems: Vec<String>,
}

#[derive(Debug)]
pub enum Outcome {
    Done(Summary),
    /// Another run is in progress.
    Busy,
    /// The caches have not synced yet: nothing worth judging.
    NotReady,
    Failed(ClusterError),
}

/// The metric label of an error.
fn reason(e: &ClusterError) -> &'static str {
    match e.kind {
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::NotServed => "not_served",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Unreachable => "unreachable",
        ErrorKind::Unauthorized | ErrorKind::Expired => "unauthorized",
        ErrorKind::Server | ErrorKind::Gone => "server",
        ErrorKind::Config | ErrorKind::Other => "other",
    }
}

fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Auditor {
    /// `conn`: the client (and its rate limit) the audit's requests go through.
    pub fn new(app: Arc<App>, conn: Connected) -> Auditor {
        Auditor { app, conn, running: tokio::sync::Mutex::new(()) }
    }

    fn metrics(&self) -> &Metrics {
        &self.app.metrics
    }

    /// One run, counted and logged.
    pub async fn run_once(&self) -> Outcome {
        let Ok(_running) = self.running.try_lock() else {
            Metrics::result(&self.metrics().audit_runs, "busy");
            tracing::warn!("scheduled audit: the previous run is still going; this one is skipped");
            return Outcome::Busy;
        };
        if !self.app.cluster.is_ready() {
            Metrics::result(&self.metrics().audit_runs, "not_ready");
            return Outcome::NotReady;
        }
        let started = Instant::now();
        let outcome = self.audit().await;
        let seconds = started.elapsed().as_secs_f64();
        self.metrics().audit_duration.set(seconds);
        match &outcome {
            Outcome::Done(s) => {
                let result = if s.problems.is_empty() { "success" } else { "partial" };
                Metrics::result(&self.metrics().audit_runs, result);
                let m = self.metrics();
                m.audit_last_success.set(now_seconds());
                for (severity, n) in ["error", "warning", "info"].iter().zip(s.findings) {
                    m.audit_findings
                        .get_or_create(&crate::metrics::SeverityLabel { severity: severity.to_string() })
                        .set(n as i64);
                }
                m.audit_reports.set(s.reports as i64);
                for (op, n) in [
                    ("applied", s.published.applied),
                    ("unchanged", s.published.unchanged),
                    ("deleted", s.published.deleted),
                ] {
                    m.audit_writes
                        .get_or_create(&crate::metrics::OperationLabel { operation: op.into() })
                        .inc_by(n as u64);
                }
                for p in &s.problems {
                    tracing::warn!(problem = %p, "scheduled audit: left out");
                }
                tracing::info!(
                    seconds,
                    workloads = s.workloads,
                    errors = s.findings[0],
                    warnings = s.findings[1],
                    infos = s.findings[2],
                    reports = s.reports,
                    applied = s.published.applied,
                    unchanged = s.published.unchanged,
                    deleted = s.published.deleted,
                    requests = s.published.requests,
                    problems = s.problems.len(),
                    "scheduled audit: PolicyReports up to date"
                );
            }
            Outcome::Failed(e) => {
                Metrics::result(&self.metrics().audit_runs, "failed");
                self.metrics()
                    .audit_failures
                    .get_or_create(&crate::metrics::ReasonLabel { reason: reason(e).into() })
                    .inc();
                tracing::error!(error = %e, reason = reason(e), seconds, "scheduled audit failed; the webhook serves on, the next run tries again");
            }
            Outcome::Busy | Outcome::NotReady => {}
        }
        outcome
    }

    async fn audit(&self) -> Outcome {
        let lister = Lister { conn: &self.conn, page_size: PAGE_SIZE };
        let nodes = copy_state(&self.app.cluster);
        let analysis = &self.app.analysis;
        // The JSON and the kept objects off the async threads: for a large
        // state this is most of a second.
        let held = match tokio::task::spawn_blocking(move || {
            snapshot::held(nodes.iter().filter_map(|n| serde_json::from_str(&n.to_json()).ok()))
        })
        .await
        {
            Ok(h) => h,
            Err(e) => return Outcome::Failed(ClusterError::new(ErrorKind::Other, format!("copying the state: {e}"))),
        };
        let wanted = snapshot::config_maps_read(&held.objects, &analysis.profiles);
        let (config_maps, read_problems) = match snapshot::read_config_maps_by_get(&lister, &wanted).await {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(e),
        };
        let mut objects = held.objects;
        objects.extend(config_maps);
        let snap = Snapshot {
            server: self.conn.server.clone(),
            objects,
            nodes: self.app.cluster.nodes(),
            owned: held.owned,
            bootstrap: held.bootstrap,
            ..Snapshot::default()
        };
        let setup = Setup {
            options: analysis.options_for(self.app.cluster.nodes()),
            profiles: analysis.profiles.clone(),
            exemptions: analysis.exemptions_on(apiload_rules::setup::today()),
            fail_on: None,
        };
        let mut sources = Sources::new();
        let config = analysis.sources.get(SOURCE_CONFIG);
        // The webhook keeps its configuration whole (`Source::new`).
        sources.add(config.name.clone(), config.text().unwrap_or("").as_bytes());
        let now = now_seconds();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new().name("apiload-audit".into()).spawn(move || {
            // The engine's threads for a large input are spawned from this
            // one and inherit its nice value (Linux: a thread's own).
            crate::pool::lower_priority();
            let audit = apiload_cluster::audit::analyze(&snap, setup, sources);
            let mut findings = [0; 3];
            for d in &audit.report.diagnostics {
                findings[match d.severity {
                    Severity::Error => 0,
                    Severity::Warning => 1,
                    Severity::Info => 2,
                }] += 1;
            }
            let reports = apiload_cluster::policyreport::reports(&audit, now);
            let _ = tx.send((reports, findings, audit.report.inventory.workloads.len()));
        });
        if let Err(e) = spawned {
            return Outcome::Failed(ClusterError::new(
                ErrorKind::Other,
                format!("cannot start the audit's thread: {e}"),
            ));
        }
        let Ok((reports, findings, workloads)) = rx.await else {
            return Outcome::Failed(ClusterError::new(ErrorKind::Other, "the analysis panicked".to_string()));
        };
        let published = match publish::publish(&lister, &reports).await {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(e),
        };
        let mut problems: Vec<String> = read_problems.iter().map(|p| format!("not audited: {p}")).collect();
        problems.extend(published.problems.iter().map(|p| format!("not written: {p}")));
        Outcome::Done(Summary { workloads, findings, reports: reports.len(), published, problems })
    }
}

/// The state's objects (but ConfigMaps, read fresh by the audit): an
/// `Arc` each, copied under the read lock in one pass of the state.
fn copy_state(cluster: &crate::cluster::Cluster) -> Vec<Arc<Node>> {
    cluster.read().objects().filter(|o| &*o.kind != "ConfigMap").map(|o| o.node.clone()).collect()
}

/// Runs the audit every `interval`, the first as soon as the caches are
/// synced. A run longer than the interval delays the next (no catching up).
pub fn start(auditor: Arc<Auditor>, interval: Duration) {
    tokio::spawn(async move {
        while !auditor.app.cluster.is_ready() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut every = tokio::time::interval(interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            auditor.run_once().await;
        }
    });
}
