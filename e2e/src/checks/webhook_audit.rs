//! The webhook's scheduled audit (`--audit-interval`, the chart's
//! `audit.enabled`) against the real API server, with the PolicyReport CRDs
//! Kyverno ships: the webhook is installed from the chart's `audit-enabled`
//! case (its ServiceAccount, its ClusterRole and the audit's own, so the
//! chart's RBAC is what it runs with), started as the other webhook checks
//! start it, with a short interval, and
//!
//! - its PolicyReports appear, and their results are those of
//!   `apiload audit --format policyreport` on the same cluster with the same
//!   configuration and node count (Pods aside: the webhook does not watch
//!   them, docs/audit.md);
//! - a fixed workload's finding is gone at the next run, and the report of
//!   a namespace left without workloads is deleted;
//! - a run that finds nothing changed writes nothing.

use crate::checks::chart::{self, ensure_namespace};
use crate::checks::cluster_audit::{apiload, install_policy_report_crds, stored_reports};
use crate::manifests::{self, kind_of, name_of};
use crate::metrics;
use crate::webhook::{ChartInstall, Webhook};
use crate::{Result, Suite, ensure};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "e2e-webhook-audit";
/// The chart's values combination with the scheduled audit on.
const CASE: &str = "audit-enabled";
/// Both the webhook and `apiload audit` judge for this size.
const NODES: &str = "1000";
const INTERVAL: &str = "3s";
const SCRAPER: &str = "DaemonSet e2e-webhook-audit/scraper";
const WEB: &str = "Deployment e2e-webhook-audit/web";

fn fixture(s: &Suite) -> Result<Vec<Value>> {
    let path = s.args.repo.join("e2e/fixtures/webhook-audit/workloads.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    manifests::documents("workloads.yaml", &text)
}

/// (kind, namespace) of a report → its results, timestamps left out, as
/// JSON text (reports past 1,000 results are split by name: merged here).
type Results = BTreeMap<(String, String), BTreeSet<String>>;

fn results_of<'a>(reports: impl IntoIterator<Item = &'a Value>) -> Results {
    let mut out = Results::new();
    for r in reports {
        let key = (
            r["kind"].as_str().unwrap_or("").to_string(),
            r["metadata"]["namespace"].as_str().unwrap_or("").to_string(),
        );
        let entry = out.entry(key).or_default();
        for result in r["results"].as_array().into_iter().flatten() {
            // The webhook does not watch Pods: a bare Pod is `apiload audit`'s only.
            if result["resources"][0]["kind"] == "Pod" {
                continue;
            }
            let mut result = result.clone();
            result.as_object_mut().map(|m| m.remove("timestamp"));
            entry.insert(result.to_string());
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}

/// `(rule, result)` of every stored result about `workload` (`Kind ns/name`).
fn about(reports: &[Value], workload: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in reports {
        for result in r["results"].as_array().into_iter().flatten() {
            let res = &result["resources"][0];
            let name = format!(
                "{} {}/{}",
                res["kind"].as_str().unwrap_or(""),
                res["namespace"].as_str().unwrap_or(""),
                res["name"].as_str().unwrap_or("")
            );
            if name == workload {
                out.push((
                    result["rule"].as_str().unwrap_or("").to_string(),
                    result["result"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

async fn sample(w: &Webhook, name: &str, filter: &[(&str, &str)]) -> Result<f64> {
    Ok(metrics::sum(&w.metrics().await?, name, filter))
}

async fn successes(w: &Webhook) -> Result<f64> {
    sample(w, "apiload_audit_runs_total", &[("result", "success")]).await
}

/// Waits until `n` more runs than now have published (each sees what the
/// watches delivered before it started).
async fn runs_from_now(w: &Webhook, n: f64, limit: Duration) -> Result<()> {
    let start = successes(w).await?;
    let deadline = Instant::now() + limit;
    loop {
        if successes(w).await? >= start + n {
            return Ok(());
        }
        let failures = sample(w, "apiload_audit_failures_total", &[]).await?;
        ensure!(failures == 0.0, "the scheduled audit failed:\n{}", tail(&w.logs()));
        ensure!(Instant::now() < deadline, "{n} runs did not publish within {limit:?}:\n{}", tail(&w.logs()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Polls the stored reports until `done` holds, within `limit`; returns them.
async fn until(
    s: &Suite,
    w: &Webhook,
    what: &str,
    limit: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let deadline = Instant::now() + limit;
    loop {
        let reports = stored_reports(s).await?;
        if done(&reports) {
            return Ok(reports);
        }
        ensure!(Instant::now() < deadline, "{what}: not within {limit:?}:\n{}", tail(&w.logs()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn writes(w: &Webhook) -> Result<f64> {
    Ok(sample(w, "apiload_audit_report_writes_total", &[("operation", "applied")]).await?
        + sample(w, "apiload_audit_report_writes_total", &[("operation", "deleted")]).await?)
}

pub async fn policy_reports_follow_the_cluster(s: &mut Suite) -> Result<()> {
    install_policy_report_crds(s).await?;
    ensure_namespace(s, NAMESPACE).await?;
    let objects = fixture(s)?;
    chart::apply(s, "webhook-audit-fixture", &objects.iter().collect::<Vec<_>>()).await?;
    let install = crate::checks::admission::install_for(s, CASE).await?;
    let audit_role =
        install.objects.iter().any(|o| kind_of(o) == "ClusterRole" && name_of(o).ends_with("-policyreports"));
    ensure!(audit_role, "the chart's {CASE} case has no ClusterRole for PolicyReports");
    let overrides = [format!("--audit-interval={INTERVAL}"), format!("--nodes={NODES}")];
    let mut w = Webhook::start(s, &install, &overrides, None, "scheduled-audit").await?;
    let result = follow(s, &w, &install).await;
    w.stop();
    // What this check made goes; the reports of other namespaces stay
    // (nothing after this reads them).
    for (kind, name) in [("clusterrolebinding", "e2e-webhook-audit-scraper"), ("clusterrole", "e2e-webhook-audit-pods")]
    {
        let _ = s.kubectl.run(&["delete", kind, name, "--ignore-not-found"], None).await;
    }
    for o in install.objects.iter().filter(|o| name_of(o).ends_with("-policyreports")) {
        let _ = s.kubectl.run(&["delete", &kind_of(o).to_lowercase(), name_of(o), "--ignore-not-found"], None).await;
    }
    let _ = s.kubectl.run(&["delete", "namespace", NAMESPACE, "--wait=false"], None).await;
    result
}

async fn follow(s: &Suite, w: &Webhook, install: &ChartInstall) -> Result<()> {
    let t = Instant::now();
    let reports = until(s, w, "the namespace's PolicyReport", Duration::from_secs(60), |r| {
        about(r, SCRAPER).iter().any(|(_, result)| result == "fail")
    })
    .await?;
    let first_seconds = t.elapsed().as_secs_f64();
    ensure!(
        about(&reports, WEB) == [(String::new(), "pass".to_string())],
        "the quiet Deployment: {:?}",
        about(&reports, WEB)
    );

    // The same results as apiload audit's, on the same cluster: a run that
    // started after the CLI's read has published what the webhook holds.
    let config = s.work("webhook-audit-config.yaml");
    std::fs::write(&config, &install.config).map_err(|e| e.to_string())?;
    let file = s.work("webhook-audit-cli-policyreports.yaml");
    let kubeconfig = s.kubectl.kubeconfig.display().to_string();
    let spec = format!("policyreport={}", file.display());
    let config_arg = config.display().to_string();
    let run = apiload(
        s,
        &[
            "audit",
            "--kubeconfig",
            &kubeconfig,
            "--config",
            &config_arg,
            "--nodes",
            NODES,
            "--progress",
            "never",
            "--format",
            &spec,
        ],
    )
    .await?;
    ensure!(run.code <= 1, "apiload audit exited {}:\n{}", run.code, run.stderr);
    runs_from_now(w, 1.0, Duration::from_secs(60)).await?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let cli = manifests::documents("apiload audit --format policyreport", &text)?;
    let webhook = stored_reports(s).await?;
    let (want, got) = (results_of(&cli), results_of(&webhook));
    if want != got {
        let keys: BTreeSet<&(String, String)> = want.keys().chain(got.keys()).collect();
        let mut diff = Vec::new();
        for k in keys {
            let (a, b) = (want.get(k).cloned().unwrap_or_default(), got.get(k).cloned().unwrap_or_default());
            for r in a.difference(&b) {
                diff.push(format!("{k:?} only apiload audit: {r}"));
            }
            for r in b.difference(&a) {
                diff.push(format!("{k:?} only the webhook: {r}"));
            }
        }
        return Err(format!("the webhook's reports differ from apiload audit's:\n{}", diff.join("\n")));
    }
    let compared: usize = got.values().map(BTreeSet::len).sum();

    // Fixed: without its binding the DaemonSet may watch nothing.
    s.kubectl.ok(&["delete", "clusterrolebinding", "e2e-webhook-audit-scraper"], None).await?;
    let t = Instant::now();
    let reports = until(s, w, "the fixed DaemonSet's finding gone", Duration::from_secs(30), |r| {
        about(r, SCRAPER) == [(String::new(), "pass".to_string())]
    })
    .await?;
    let fixed_seconds = t.elapsed().as_secs_f64();
    ensure!(!about(&reports, WEB).is_empty(), "the Deployment's result went too");

    // No workload left in the namespace: its report is deleted.
    for (kind, name) in [("daemonset", "scraper"), ("deployment", "web"), ("serviceaccount", "scraper")] {
        s.kubectl.ok(&["delete", kind, name, "-n", NAMESPACE], None).await?;
    }
    until(s, w, "the empty namespace's report deleted", Duration::from_secs(30), |r| {
        !r.iter().any(|r| r["metadata"]["namespace"] == NAMESPACE)
    })
    .await?;

    // Nothing changes: nothing is written.
    runs_from_now(w, 1.0, Duration::from_secs(30)).await?;
    let before = writes(w).await?;
    runs_from_now(w, 2.0, Duration::from_secs(30)).await?;
    let after = writes(w).await?;
    ensure!(after == before, "two runs on an unchanged cluster wrote {} reports", after - before);
    ensure!(!w.logs().contains("scheduled audit failed"), "a run failed:\n{}", tail(&w.logs()));
    eprintln!(
        "e2e:      reports {first_seconds:.1} s after start; {compared} results equal to apiload audit's; \
         a fix reflected in {fixed_seconds:.1} s (interval {INTERVAL}); an unchanged cluster costs no write"
    );
    Ok(())
}
