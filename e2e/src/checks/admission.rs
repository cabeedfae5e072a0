//! Admission end to end: the API server calls apiload-webhook (live mode,
//! the chart's account, arguments and webhook configuration) and kubectl
//! shows what a user sees.

use crate::checks::chart;
use crate::kubectl::Output;
use crate::metrics;
use crate::webhook::{self, ChartInstall, Webhook};
use crate::{Result, Suite, ensure};
use std::time::{Duration, Instant};

/// The values combination whose chart output the admission checks install.
pub const ENFORCE_CASE: &str = "cert-manager-off-enforce";
pub const WARN_CASE: &str = "cert-manager-off-warn";
const WEBHOOK_NAME: &str = "workloads.webhook.apiload.dev";

fn fixture(s: &Suite, name: &str) -> String {
    s.args.repo.join("e2e/fixtures/admission").join(name).display().to_string()
}

pub async fn install_for(s: &mut Suite, case: &str) -> Result<ChartInstall> {
    let rendered = chart::rendered(s).await?;
    let c = rendered.cases.iter().find(|c| c.name == case).ok_or_else(|| format!("no rendered case {case}"))?;
    ChartInstall::from_case(c)
}

async fn apply(s: &Suite, file: &str, extra: &[&str]) -> Result<Output> {
    let path = fixture(s, file);
    let mut args = vec!["apply", "--server-side", "--field-manager=apiload-e2e", "--force-conflicts", "-f", &path];
    args.extend_from_slice(extra);
    s.kubectl.run(&args, None).await
}

fn denied(out: &Output) -> bool {
    out.code != 0 && out.stderr.contains(&format!("admission webhook \"{WEBHOOK_NAME}\" denied the request"))
}

async fn exists(s: &Suite, kind: &str, namespace: &str, name: &str) -> Result<bool> {
    let out = s.kubectl.run(&["get", kind, name, "-n", namespace, "-o", "name"], None).await?;
    Ok(out.code == 0)
}

/// (Re)starts the webhook from a chart case and registers it.
pub async fn start_webhook(s: &mut Suite, case: &str, config: Option<&str>, label: &str) -> Result<()> {
    if let Some(mut w) = s.webhook.take() {
        w.stop();
    }
    let install = install_for(s, case).await?;
    let w = Webhook::start(s, &install, &[], config, label).await?;
    webhook::register(s, &install, &w).await?;
    s.webhook = Some(w);
    s.install = Some(install);
    // The API server picks up the configuration from its informer: wait
    // until a dry run of a risky DaemonSet reaches this webhook.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = reviews(s).await?;
        let _ = apply(s, "risky-daemonset.yaml", &["--dry-run=server"]).await?;
        if reviews(s).await? > before {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the API server did not call the webhook within 30 s of its registration");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reviews the webhook has answered so far.
async fn reviews(s: &Suite) -> Result<f64> {
    let w = s.webhook.as_ref().ok_or("the webhook is not running")?;
    Ok(metrics::sum(&w.metrics().await?, "apiload_reviews_total", &[]))
}

pub async fn webhook_from_the_chart_is_called(s: &mut Suite) -> Result<()> {
    let base = fixture(s, "base.yaml");
    s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", &base], None).await?;
    let agents = fixture(s, "agents.yaml");
    s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", &agents], None).await?;
    start_webhook(s, ENFORCE_CASE, None, "enforce").await
}

pub async fn risky_daemonset_is_denied_with_the_chain(s: &mut Suite) -> Result<()> {
    let out = apply(s, "risky-daemonset.yaml", &[]).await?;
    ensure!(denied(&out), "not denied: {out:?}");
    for part in [
        "AL101",
        "DaemonSet e2e-agents/telemetry-agent",
        "ClusterRoleBinding e2e-telemetry",
        "ClusterRole e2e-pod-watch",
        "Fix",
    ] {
        ensure!(out.stderr.contains(part), "the denial does not say {part:?}:\n{}", out.stderr);
    }
    ensure!(!exists(s, "daemonset", "e2e-agents", "telemetry-agent").await?, "the denied DaemonSet was stored");
    Ok(())
}

pub async fn dry_run_is_judged_and_changes_nothing(s: &mut Suite) -> Result<()> {
    let before = reviews(s).await?;
    let out = apply(s, "risky-daemonset.yaml", &["--dry-run=server"]).await?;
    ensure!(denied(&out), "a dry run of the risky DaemonSet was not denied: {out:?}");
    ensure!(reviews(s).await? == before + 1.0, "the dry run was not reviewed exactly once");
    let logs = s.webhook.as_ref().map(Webhook::logs).unwrap_or_default();
    ensure!(
        logs.lines().any(|l| l.contains("telemetry-agent") && l.contains("\"dry_run\":true")),
        "no review of the dry run in the webhook's log"
    );
    ensure!(!exists(s, "daemonset", "e2e-agents", "telemetry-agent").await?, "a dry run stored the DaemonSet");
    Ok(())
}

pub async fn arming_binding_is_denied(s: &mut Suite) -> Result<()> {
    let out = apply(s, "arming-binding.yaml", &[]).await?;
    ensure!(denied(&out), "the binding that arms node-agent was not denied: {out:?}");
    ensure!(
        out.stderr.contains("DaemonSet e2e-agents/node-agent"),
        "the denial does not name the DaemonSet:\n{}",
        out.stderr
    );
    ensure!(!exists(s, "clusterrolebinding", "", "e2e-node-agent-pods").await?, "the denied binding was stored");
    Ok(())
}

pub async fn aggregating_label_is_denied(s: &mut Suite) -> Result<()> {
    let out = apply(s, "aggregating-label.yaml", &[]).await?;
    ensure!(denied(&out), "the ClusterRole whose label aggregates a pod watch was not denied: {out:?}");
    ensure!(
        out.stderr.contains("DaemonSet e2e-agents/aggregating-agent"),
        "the denial does not name the DaemonSet:\n{}",
        out.stderr
    );
    Ok(())
}

pub async fn config_map_dropping_the_node_filter_is_denied(s: &mut Suite) -> Result<()> {
    let out = apply(s, "unscoped-config.yaml", &[]).await?;
    ensure!(denied(&out), "the ConfigMap edit that drops the node filter was not denied: {out:?}");
    ensure!(
        out.stderr.contains("DaemonSet e2e-agents/otel-agent"),
        "the denial does not name the DaemonSet:\n{}",
        out.stderr
    );
    let cm = s
        .kubectl
        .ok(&["get", "configmap", "otel-agent", "-n", "e2e-agents", "-o", "jsonpath={.data.config\\.yaml}"], None)
        .await?;
    ensure!(cm.stdout.contains("node_from_env_var"), "the stored configuration lost its node filter");
    Ok(())
}

/// A ReplicaSet or Job whose controller owner was judged is admitted
/// without a review of its own, while the same object without an owner is not.
pub async fn owned_replicasets_and_jobs_are_not_held_up(s: &mut Suite) -> Result<()> {
    let owners = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: e2e-web, namespace: e2e-agents}
spec:
  replicas: 1
  selector: {matchLabels: {app: e2e-web}}
  template:
    metadata: {labels: {app: e2e-web}}
    spec:
      containers: [{name: web, image: registry.example.com/web:1.0}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: e2e-report, namespace: e2e-agents}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: report, image: registry.example.com/report:1.0}]
"#;
    let out = s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", "-"], Some(owners)).await?;
    ensure!(out.warnings().is_empty(), "the owners drew warnings: {:?}", out.warnings());
    let uid = |kind: &'static str, name: &'static str| {
        let k = s.kubectl.clone();
        async move {
            k.ok(&["get", kind, name, "-n", "e2e-agents", "-o", "jsonpath={.metadata.uid}"], None)
                .await
                .map(|o| o.stdout.trim().to_string())
        }
    };
    let deployment_uid = uid("deployment", "e2e-web").await?;
    let cronjob_uid = uid("cronjob", "e2e-report").await?;
    // Pods that would watch every pod of the cluster, 200 at once.
    let owned = |owner: Option<(&str, &str, &str, &str)>, name: &str, kind: &str| {
        let owner_refs = owner
            .map(|(api, k, n, uid)| {
                format!(
                    "  ownerReferences: [{{apiVersion: {api}, kind: {k}, name: {n}, uid: \"{uid}\", controller: true, blockOwnerDeletion: true}}]\n"
                )
            })
            .unwrap_or_default();
        let pod = "      serviceAccountName: telemetry\n      containers: [{name: agent, image: registry.example.com/platform/telemetry-agent:4.2.0}]\n";
        match kind {
            "ReplicaSet" => format!(
                "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\n  namespace: e2e-agents\n{owner_refs}spec:\n  replicas: 200\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n{pod}"
            ),
            _ => format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  namespace: e2e-agents\n{owner_refs}spec:\n  parallelism: 200\n  completions: 200\n  template:\n    spec:\n      restartPolicy: Never\n{pod}"
            ),
        }
    };
    let cases = [
        (owned(Some(("apps/v1", "Deployment", "e2e-web", &deployment_uid)), "e2e-web-7d9f", "ReplicaSet"), true),
        (owned(Some(("batch/v1", "CronJob", "e2e-report", &cronjob_uid)), "e2e-report-29000000", "Job"), true),
        (owned(None, "e2e-unowned-rs", "ReplicaSet"), false),
        (owned(None, "e2e-unowned-job", "Job"), false),
    ];
    for (text, admitted) in &cases {
        let out =
            s.kubectl.run(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", "-"], Some(text)).await?;
        let first_line = text.lines().take(4).collect::<Vec<_>>().join(" ");
        if *admitted {
            ensure!(out.code == 0, "an owned object was held up ({first_line}): {}", out.stderr);
            ensure!(out.warnings().is_empty(), "an owned object drew warnings ({first_line}): {:?}", out.warnings());
        } else {
            ensure!(denied(&out), "the same object without an owner was not denied ({first_line}): {out:?}");
        }
    }
    Ok(())
}

/// failurePolicy Ignore: a webhook that stalls (SIGSTOP: connections are
/// accepted, nothing answers) or is gone leaves the API server admitting,
/// within the configuration's timeoutSeconds.
pub async fn a_stalled_or_stopped_webhook_fails_open(s: &mut Suite) -> Result<()> {
    let timeout = s
        .install
        .as_ref()
        .and_then(|i| i.webhook_configuration["webhooks"][0]["timeoutSeconds"].as_u64())
        .ok_or("the chart's webhook has no timeoutSeconds")?;
    let policy = s.install.as_ref().map(|i| i.webhook_configuration["webhooks"][0]["failurePolicy"].clone());
    ensure!(policy == Some(serde_json::json!("Ignore")), "the chart's failurePolicy is {policy:?}");
    let w = s.webhook.as_ref().ok_or("the webhook is not running")?;
    w.signal(libc::SIGSTOP);
    let t = Instant::now();
    let out = apply(s, "risky-daemonset.yaml", &["--dry-run=server"]).await;
    let stalled = t.elapsed();
    if let Some(w) = s.webhook.as_ref() {
        w.signal(libc::SIGCONT);
    }
    let out = out?;
    ensure!(out.code == 0, "with the webhook stalled the API server did not admit: {}", out.stderr);
    ensure!(
        stalled >= Duration::from_secs(timeout) && stalled < Duration::from_secs(timeout + 5),
        "admitted after {stalled:?}, the timeout is {timeout} s"
    );
    if let Some(mut w) = s.webhook.take() {
        w.stop();
    }
    let t = Instant::now();
    let out = apply(s, "risky-daemonset.yaml", &["--dry-run=server"]).await?;
    let stopped = t.elapsed();
    ensure!(out.code == 0, "with the webhook stopped the API server did not admit: {}", out.stderr);
    ensure!(stopped < Duration::from_secs(timeout + 5), "admitted only after {stopped:?}");
    eprintln!(
        "e2e:      stalled webhook: admitted after {:.1} s; stopped webhook: after {:.1} s",
        stalled.as_secs_f64(),
        stopped.as_secs_f64()
    );
    s.measured.insert(
        "fail_open_seconds".into(),
        serde_json::json!({"stalled": stalled.as_secs_f64(), "stopped": stopped.as_secs_f64(), "timeout": timeout}),
    );
    start_webhook(s, ENFORCE_CASE, None, "enforce-again").await
}

const EXEMPT_ANNOTATIONS: &str =
    "    apiload.dev/exempt: \"*\"\n    apiload.dev/exempt-reason: \"e2e: the owner says it is fine\"\n";

fn annotated_daemonset(namespace: &str, name: &str, annotations: &str, labels: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  annotations:\n{annotations}  labels:\n    app: {name}\n{labels}spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      serviceAccountName: telemetry\n      containers: [{{name: agent, image: registry.example.com/platform/telemetry-agent:4.2.0}}]\n"
    )
}

/// Annotation exemptions count only in the namespaces the configuration
/// lists; nothing an editor of the object can set lets it skip review.
pub async fn exemptions_only_where_the_configuration_allows(s: &mut Suite) -> Result<()> {
    let kubectl = s.kubectl.clone();
    let apply_text = |text: String| {
        let k = kubectl.clone();
        async move {
            k.run(
                &["apply", "--server-side", "--field-manager=apiload-e2e", "--dry-run=server", "-f", "-"],
                Some(&text),
            )
            .await
        }
    };
    // The chart's defaults honour no annotation anywhere.
    for ns in ["e2e-agents", "e2e-team-a"] {
        let out = apply_text(annotated_daemonset(ns, "exempt-me", EXEMPT_ANNOTATIONS, "")).await?;
        ensure!(denied(&out), "an annotation exempted a DaemonSet in {ns} under the chart's defaults: {out:?}");
    }
    // The chart's configuration, with annotation exemptions allowed in
    // e2e-team-a. The list holds namespace names (or "*"), not patterns.
    let install = s.install.clone().ok_or("no chart install")?;
    let mut config = crate::manifests::documents("the chart's config.yaml", &install.config)?
        .into_iter()
        .next()
        .unwrap_or_else(|| serde_json::json!({}));
    ensure!(
        config.get("annotationExemptions").is_none(),
        "the chart's default configuration already sets annotationExemptions"
    );
    config["annotationExemptions"] = serde_json::json!({"namespaces": ["e2e-team-a"]});
    let config = config.to_string();
    start_webhook(s, ENFORCE_CASE, Some(&config), "exemptions").await?;
    let out = apply_text(annotated_daemonset("e2e-team-a", "exempt-me", EXEMPT_ANNOTATIONS, "")).await?;
    ensure!(
        out.code == 0,
        "the annotation did not exempt in e2e-team-a, where the configuration allows it: {}",
        out.stderr
    );
    let out = apply_text(annotated_daemonset("e2e-agents", "exempt-me", EXEMPT_ANNOTATIONS, "")).await?;
    ensure!(denied(&out), "the annotation exempted in e2e-agents, where the configuration does not allow it: {out:?}");
    start_webhook(s, ENFORCE_CASE, None, "enforce-after-exemptions").await
}

/// No label on the object lets it skip review: not the chart's own opt-out
/// label (`apiload.dev/webhook: disabled`), which only a namespace may carry.
pub async fn no_label_on_the_object_skips_review(s: &mut Suite) -> Result<()> {
    let labels = "    apiload.dev/webhook: disabled\n";
    let text = annotated_daemonset("e2e-agents", "opted-out", "    example.com/owner: e2e\n", labels);
    let out = s
        .kubectl
        .run(&["apply", "--server-side", "--field-manager=apiload-e2e", "--dry-run=server", "-f", "-"], Some(&text))
        .await?;
    ensure!(
        denied(&out),
        "a risky DaemonSet labelled apiload.dev/webhook=disabled was admitted: the chart's objectSelector lets any \
         editor of an object opt it out of review"
    );
    Ok(())
}

pub async fn warn_mode_prints_warnings(s: &mut Suite) -> Result<()> {
    start_webhook(s, WARN_CASE, None, "warn").await?;
    let out = apply(s, "risky-daemonset.yaml", &[]).await?;
    ensure!(out.code == 0, "warn mode refused the DaemonSet: {}", out.stderr);
    let warnings = out.warnings();
    ensure!(warnings.iter().any(|w| w.contains("AL101")), "kubectl printed no AL101 warning: {:?}", out.stderr);
    ensure!(exists(s, "daemonset", "e2e-agents", "telemetry-agent").await?, "warn mode did not store the DaemonSet");
    s.kubectl.ok(&["delete", "daemonset", "telemetry-agent", "-n", "e2e-agents"], None).await?;
    start_webhook(s, ENFORCE_CASE, None, "enforce-after-warn").await
}
