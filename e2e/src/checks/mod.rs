//! The suite's checks, in the order they run: each one leaves the cluster as
//! the next expects it (the chart's objects removed, the webhook registered
//! only while the admission checks need it).

pub mod admission;
pub mod bootstrap;
pub mod chart;
pub mod cluster_audit;
pub mod cost;
pub mod learn;
pub mod live;
pub mod mitigate;
pub mod rbac;
pub mod record;
pub mod webhook_audit;

use crate::Check;
use std::time::Duration;

macro_rules! check {
    ($name:literal, $secs:literal, $f:path) => {
        Check { name: $name, limit: Duration::from_secs($secs), run: |s| Box::pin($f(s)) }
    };
}

pub const ALL: &[Check] = &[
    check!("control-plane/versions-match", 60, bootstrap::versions_match),
    // First, while no webhook is registered (it would deny the risky agents
    // this check runs on purpose) and no binding of a later check grants its
    // ServiceAccounts anything; it removes what it made before the next one.
    check!("learn/suggested-rbac-covers-what-was-seen", 240, learn::suggested_rbac_covers_what_was_seen),
    // Also before any webhook (it would deny the agent) and on a cluster that
    // holds no other fan-out: `mitigate --cluster` writes for all of them.
    check!("mitigate/the-agents-requests-go-to-its-new-level", 180, mitigate::the_agents_requests_go_to_its_new_level),
    check!("chart/every-values-combination-server-side-applies", 600, chart::every_values_combination_applies),
    // Before rbac: the cluster holds nothing but what these checks load, so
    // that the audit reads what lint reads.
    check!(
        "cluster-audit/reports-what-lint-reports-on-the-same-manifests",
        900,
        cluster_audit::reports_what_lint_reports
    ),
    check!(
        "cluster-audit/its-requests-keep-to-its-rate-limit-and-read-no-secret",
        120,
        cluster_audit::requests_keep_to_the_rate_limit_and_read_no_secret
    ),
    check!(
        "cluster-audit/a-forbidden-collection-is-named-and-the-rest-audited",
        120,
        cluster_audit::a_forbidden_collection_is_named_and_the_rest_audited
    ),
    check!(
        "cluster-audit/policy-reports-apply-and-hold-the-findings",
        300,
        cluster_audit::policy_reports_apply_and_hold_the_findings
    ),
    // Before the admission checks register a webhook that would deny its
    // fixture; after the PolicyReport CRDs are in.
    check!(
        "webhook-audit/policy-reports-follow-the-cluster-as-apiload-audit-reports-it",
        300,
        webhook_audit::policy_reports_follow_the_cluster
    ),
    check!("cluster-audit/bad-connections-are-clear-errors", 120, cluster_audit::bad_connections_are_clear_errors),
    check!("cluster-audit/at-scale-10k-objects-5000-nodes", 900, cluster_audit::at_scale),
    check!("rbac/bootstrap-policy-matches-bootstrap-txt", 120, bootstrap::bootstrap_policy_matches),
    check!("rbac/oracle-agrees-with-subject-access-reviews", 1200, rbac::oracle_agrees_with_the_authorizer),
    check!(
        "admission/the-chart-installs-a-webhook-the-api-server-calls",
        180,
        admission::webhook_from_the_chart_is_called
    ),
    check!(
        "admission/a-risky-daemonset-is-denied-with-its-chain",
        60,
        admission::risky_daemonset_is_denied_with_the_chain
    ),
    check!("admission/a-dry-run-is-judged-and-changes-nothing", 60, admission::dry_run_is_judged_and_changes_nothing),
    check!("admission/a-binding-that-arms-a-daemonset-is-denied", 60, admission::arming_binding_is_denied),
    check!("admission/a-label-that-aggregates-a-watch-is-denied", 60, admission::aggregating_label_is_denied),
    check!(
        "admission/a-config-map-edit-that-drops-the-node-filter-is-denied",
        60,
        admission::config_map_dropping_the_node_filter_is_denied
    ),
    check!(
        "admission/owned-replicasets-and-jobs-are-not-held-up",
        60,
        admission::owned_replicasets_and_jobs_are_not_held_up
    ),
    check!(
        "admission/exemptions-count-only-where-the-configuration-allows",
        300,
        admission::exemptions_only_where_the_configuration_allows
    ),
    check!("admission/no-label-on-the-object-skips-review", 60, admission::no_label_on_the_object_skips_review),
    check!("live/caches-follow-lists-events-and-deletes", 120, live::caches_follow_lists_events_and_deletes),
    check!(
        "live/survives-compaction-and-an-api-server-restart",
        300,
        live::survives_compaction_and_an_api_server_restart
    ),
    check!("admission/warn-mode-prints-warnings", 180, admission::warn_mode_prints_warnings),
    check!(
        "admission/a-stalled-or-stopped-webhook-fails-open",
        180,
        admission::a_stalled_or_stopped_webhook_fails_open
    ),
    check!("live/the-webhooks-requests-in-the-audit-log", 60, live::webhook_requests_in_the_audit_log),
    check!("audit/recorded-clients-match-testdata", 180, record::recorded_clients_match_testdata),
    check!("cost/measured-against-the-model", 1500, cost::measured_against_the_model),
];

/// Checks that fail because of a defect found and not yet fixed, with the
/// defect. They run every time: a failure is reported as known (and counted
/// as skipped), a pass fails the run until the entry is removed, so that
/// the list cannot outlive the defect.
pub const KNOWN_FAILURES: &[(&str, &str)] = &[];

/// A check's way of saying it could not run here (a missing ../shared):
/// counted as skipped, not failed.
pub const SKIP: &str = "skip: ";

/// The generated corpus the RBAC oracle and the cluster audit at scale load
/// (`gen-scale-corpus.py --objects 10000 --files 40 --seed 17`), generated
/// once per run into `scale-corpus`.
pub async fn scale_corpus(s: &crate::Suite, shared: &std::path::Path) -> crate::Result<std::path::PathBuf> {
    let corpus = s.work("scale-corpus");
    if corpus.join("ground-truth.json").is_file() {
        return Ok(corpus);
    }
    let _ = std::fs::remove_dir_all(&corpus);
    let generator = shared.join("tools/gen-scale-corpus.py");
    let out = tokio::process::Command::new("python3")
        .arg(&generator)
        .args(["--objects", "10000", "--files", "40", "--seed", "17", "--out"])
        .arg(&corpus)
        .output()
        .await
        .map_err(|e| format!("{}: {e}", generator.display()))?;
    crate::ensure!(out.status.success(), "{} failed: {}", generator.display(), String::from_utf8_lossy(&out.stderr));
    Ok(corpus)
}
