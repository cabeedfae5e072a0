//! The scheduled audit (`--audit-interval`) against the stand-in API server
//! (`common/fake_apiserver.rs`, whose header says which faults it shows
//! that the real one cannot): the reports it writes, what it leaves alone,
//! its error paths (403, the CRDs absent, the server down or hanging, one
//! forbidden namespace), one run at a time, and the binary's flag, metrics
//! and logs. In process, with the webhook's own `App` and `Cluster`, except
//! the last tests, which run the binary.

mod common;
#[path = "common/fake_apiserver.rs"]
mod fake_apiserver;

use apiload_cluster::ErrorKind;
use apiload_webhook::audit::{Auditor, Outcome};
use apiload_webhook::cluster::Cluster;
use apiload_webhook::config::{Analysis, SOURCE_STATE};
use apiload_webhook::decide::Mode;
use apiload_webhook::metrics::Metrics;
use apiload_webhook::review::App;
use common::*;
use fake_apiserver::{FakeApiServer, ReportFault};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fixtures(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(testdata().join("webhook").join(name)).unwrap();
    apiload_yaml::load_str(&text, &Default::default())
        .into_iter()
        .map(|d| serde_json::from_str(&d.unwrap().root.to_json()).unwrap())
        .collect()
}

/// A DaemonSet in `team-a` whose account may list and watch every Pod: on
/// every node, a watch of the whole cluster's Pods (an error at any size).
fn risky() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sidecar", "namespace": "team-a"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "sidecar-pods"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "sidecar", "namespace": "team-a"}]}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "sidecar", "namespace": "team-a", "uid": "u-sidecar"},
               "spec": {"selector": {"matchLabels": {"app": "sidecar"}},
                        "template": {"metadata": {"labels": {"app": "sidecar"}},
                                     "spec": {"serviceAccountName": "sidecar",
                                              "containers": [{"name": "c", "image": "registry.example.com/sidecar:1"}]}}}}),
    ]
}

fn object(json: Value) -> apiload_rules::Object {
    apiload_webhook::convert::object(json, SOURCE_STATE, "", "", "").unwrap()
}

/// The webhook's app over a ready cluster state of `objects`, at 1,000 Nodes.
fn ready_app(objects: Vec<Value>) -> Arc<App> {
    let cluster = Arc::new(Cluster::new(true));
    for o in objects {
        cluster.write().upsert(object(o));
    }
    cluster.set_ready(true);
    let analysis = Analysis::load(None, &[], Some(1000)).unwrap();
    Arc::new(App::new(Mode::Warn, analysis, cluster, Arc::new(Metrics::new()), 2))
}

fn state() -> Vec<Value> {
    let mut objects = fixtures("state/rbac.yaml");
    objects.extend(fixtures("state/workloads.yaml"));
    objects.extend(risky());
    objects
}

async fn auditor_of(api: &FakeApiServer, app: Arc<App>, dir: &TempDir) -> Auditor {
    let kubeconfig = dir.write("kubeconfig", &api.kubeconfig());
    let mut conn = apiload_webhook::live::connection(Some(&kubeconfig), 100.0, 100).await.unwrap();
    conn.timeout = Duration::from_secs(2);
    Auditor::new(app, conn)
}

/// (rule, result, Kind namespace/name) of every stored result.
fn results(api: &FakeApiServer) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = api
        .reports()
        .values()
        .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            let res = &r["resources"][0];
            (
                r["rule"].as_str().unwrap_or("").to_string(),
                r["result"].as_str().unwrap_or("").to_string(),
                format!(
                    "{} {}/{}",
                    res["kind"].as_str().unwrap(),
                    res["namespace"].as_str().unwrap_or(""),
                    res["name"].as_str().unwrap()
                ),
            )
        })
        .collect();
    out.sort();
    out
}

fn done(outcome: Outcome) -> apiload_webhook::audit::Summary {
    match outcome {
        Outcome::Done(s) => s,
        other => panic!("the run did not publish: {other:?}"),
    }
}

fn failed(outcome: Outcome) -> apiload_cluster::ClusterError {
    match outcome {
        Outcome::Failed(e) => e,
        other => panic!("the run did not fail: {other:?}"),
    }
}

fn metric(app: &App, name: &str) -> f64 {
    let text = app.metrics.render(&app.cluster);
    text.lines()
        .filter(|l| l.starts_with(name) && (l.len() == name.len() || l[name.len()..].starts_with([' ', '{'])))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn report_writes(api: &FakeApiServer) -> usize {
    api.requests().iter().filter(|r| r.path.contains("wgpolicyk8s.io") && r.method != "GET").count()
}

#[test]
fn reports_are_written_kept_and_follow_the_state() {
    let dir = TempDir::new("audit");
    bounded(60, async move {
        let api = FakeApiServer::start().await;
        for cm in fixtures("state/otel-config.yaml") {
            api.apply("ConfigMap", cm);
        }
        // Another writer's report, and a stale one of apiload's.
        let foreign = json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
                             "metadata": {"name": "kyverno", "namespace": "team-a", "labels": {"app.kubernetes.io/managed-by": "kyverno"}}});
        api.put_report("policyreports", "team-a", "kyverno", foreign.clone());
        api.put_report("policyreports", "gone", "apiload", json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
            "metadata": {"name": "apiload", "namespace": "gone", "labels": {"app.kubernetes.io/managed-by": "apiload"}}}));
        let app = ready_app(state());
        let auditor = auditor_of(&api, app.clone(), &dir).await;

        let first = done(auditor.run_once().await);
        assert!(first.problems.is_empty(), "{:?}", first.problems);
        assert_eq!((first.published.applied, first.published.deleted), (first.reports, 1), "{first:?}");
        // The reports are what the one builder makes, apiload audit's.
        let reports = api.reports();
        assert!(
            reports.contains_key(&("policyreports".into(), "team-a".into(), "kyverno".into())),
            "another writer's report stays"
        );
        assert!(
            !reports.contains_key(&("policyreports".into(), "gone".into(), "apiload".into())),
            "the stale report is deleted"
        );
        let ours: Vec<&Value> =
            reports.values().filter(|r| r["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "apiload").collect();
        assert_eq!(ours.len(), first.reports);
        for r in &ours {
            assert_eq!(r["kind"], "PolicyReport", "no cluster-scoped workload: no ClusterPolicyReport");
            assert_eq!(r["scope"]["name"], r["metadata"]["namespace"]);
        }
        let got = results(&api);
        assert!(
            got.iter()
                .any(|(rule, result, w)| result == "fail" && w == "DaemonSet team-a/sidecar" && rule.contains("watch")),
            "the risky DaemonSet fails: {got:?}"
        );
        assert!(got.iter().any(|(_, result, w)| result == "pass" && w == "DaemonSet monitoring/agent"), "{got:?}");
        // The collector's configuration was read (by GET, as the webhook
        // may): its node filter counts, and nothing says it is unreadable.
        assert!(
            !got.iter().any(|(rule, result, w)| w == "DaemonSet monitoring/otel-agent"
                && (result == "fail" || rule == "agent-config-unreadable")),
            "{got:?}"
        );
        let requests = api.requests();
        assert!(
            requests
                .iter()
                .any(|r| r.method == "GET" && r.path == "/api/v1/namespaces/monitoring/configmaps/otel-agent")
        );
        assert!(!requests.iter().any(|r| r.path.ends_with("/configmaps") && r.method == "GET"), "no ConfigMap list");
        // Writes are server-side applies by apiload, forced.
        for r in requests.iter().filter(|r| r.method == "PATCH") {
            assert_eq!(r.content_type, "application/apply-patch+yaml");
            assert_eq!(r.query.get("fieldManager").map(String::as_str), Some("apiload"));
            assert_eq!(r.query.get("force").map(String::as_str), Some("true"));
        }
        assert_eq!(metric(&app, "apiload_audit_runs_total"), 1.0);
        assert!(metric(&app, "apiload_audit_last_success_timestamp_seconds") > 1.7e9);
        assert!(metric(&app, "apiload_audit_findings") >= 1.0);

        // Nothing changed: nothing is written.
        let writes = report_writes(&api);
        let second = done(auditor.run_once().await);
        assert_eq!(
            (second.published.applied, second.published.unchanged, second.published.deleted),
            (0, first.reports, 0)
        );
        assert_eq!(report_writes(&api), writes, "a quiet cluster costs no write");

        // The risky DaemonSet fixed (its binding removed): its result is a
        // pass at the next run; removed altogether, its namespace's report goes.
        app.cluster.write().remove(&apiload_rules::review::ObjectKey::new("ClusterRoleBinding", "", "sidecar-pods"));
        let third = done(auditor.run_once().await);
        assert_eq!(third.published.applied, 1, "{third:?}");
        let got = results(&api);
        assert!(!got.iter().any(|(_, r, w)| r != "pass" && w == "DaemonSet team-a/sidecar"), "{got:?}");
        assert!(got.iter().any(|(_, r, w)| r == "pass" && w == "DaemonSet team-a/sidecar"), "{got:?}");
        app.cluster.write().remove(&apiload_rules::review::ObjectKey::new("DaemonSet", "team-a", "sidecar"));
        let fourth = done(auditor.run_once().await);
        assert_eq!(fourth.published.deleted, 1, "{fourth:?}");
        assert!(!api.reports().contains_key(&("policyreports".into(), "team-a".into(), "apiload".into())));
        assert_eq!(api.reports()[&("policyreports".into(), "team-a".into(), "kyverno".into())], foreign);
    });
}

#[test]
fn forbidden_reports_fail_the_run_clearly_and_are_counted() {
    let dir = TempDir::new("audit-403");
    bounded(60, async move {
        let api = FakeApiServer::start().await;
        api.set_report_fault(Some(ReportFault::Forbidden));
        let app = ready_app(state());
        let auditor = auditor_of(&api, app.clone(), &dir).await;
        let e = failed(auditor.run_once().await);
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(e.message.contains("403") && e.message.contains("audit.enabled=true"), "{e}");
        assert!(e.message.contains("listing policyreports.wgpolicyk8s.io"), "names the request: {e}");
        assert_eq!(metric(&app, "apiload_audit_failures_total"), 1.0);
        assert!(app.metrics.render(&app.cluster).contains("apiload_audit_failures_total{reason=\"forbidden\"} 1"));
        assert!(app.metrics.render(&app.cluster).contains("apiload_audit_runs_total{result=\"failed\"} 1"));
        assert_eq!(metric(&app, "apiload_audit_last_success_timestamp_seconds"), 0.0);
        // Granted later: the next run publishes.
        api.set_report_fault(None);
        done(auditor.run_once().await);
        assert!(metric(&app, "apiload_audit_last_success_timestamp_seconds") > 0.0);
    });
}

#[test]
fn missing_crds_fail_the_run_and_say_what_to_install() {
    let dir = TempDir::new("audit-404");
    bounded(60, async move {
        let api = FakeApiServer::start().await;
        api.set_report_fault(Some(ReportFault::NotInstalled));
        let app = ready_app(state());
        let auditor = auditor_of(&api, app.clone(), &dir).await;
        let e = failed(auditor.run_once().await);
        assert_eq!(e.kind, ErrorKind::NotServed);
        assert!(e.message.contains("CRDs") && e.message.contains("not installed"), "{e}");
        assert!(app.metrics.render(&app.cluster).contains("apiload_audit_failures_total{reason=\"not_served\"} 1"));
    });
}

#[test]
fn one_forbidden_namespace_costs_only_its_report() {
    let dir = TempDir::new("audit-ns");
    bounded(60, async move {
        let api = FakeApiServer::start().await;
        api.set_report_fault(Some(ReportFault::ForbiddenIn("team-a".into())));
        let app = ready_app(state());
        let auditor = auditor_of(&api, app.clone(), &dir).await;
        let s = done(auditor.run_once().await);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert!(s.problems[0].contains("team-a") && s.problems[0].contains("403"), "{:?}", s.problems);
        assert!(api.reports().contains_key(&("policyreports".into(), "monitoring".into(), "apiload".into())));
        assert!(app.metrics.render(&app.cluster).contains("apiload_audit_runs_total{result=\"partial\"} 1"));
    });
}

#[test]
fn a_forbidden_config_map_is_named_and_its_agent_judged_without_it() {
    let dir = TempDir::new("audit-cm");
    bounded(60, async move {
        let api = FakeApiServer::start().await;
        for cm in fixtures("state/otel-config.yaml") {
            api.apply("ConfigMap", cm);
        }
        api.set_config_maps_forbidden(true);
        let app = ready_app(state());
        let auditor = auditor_of(&api, app.clone(), &dir).await;
        let s = done(auditor.run_once().await);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert!(
            s.problems[0].contains("configmaps monitoring/otel-agent") && s.problems[0].contains("403"),
            "{:?}",
            s.problems
        );
        // Judged as apiload audit judges an agent whose configuration it cannot read.
        let got = results(&api);
        assert!(
            got.iter().any(|(rule, _, w)| rule == "agent-config-unreadable" && w == "DaemonSet monitoring/otel-agent"),
            "{got:?}"
        );
        assert!(app.metrics.render(&app.cluster).contains("apiload_audit_runs_total{result=\"partial\"} 1"));
    });
}

#[test]
fn a_server_down_or_hanging_is_a_failed_run_within_the_deadline() {
    let dir = TempDir::new("audit-down");
    bounded(60, async move {
        // Hanging: report requests answered after the deadline.
        let api = FakeApiServer::start().await;
        api.set_report_fault(Some(ReportFault::Slow(Duration::from_secs(10))));
        let app = ready_app(state());
        let auditor = auditor_of(&api, app.clone(), &dir).await;
        let started = Instant::now();
        let e = failed(auditor.run_once().await);
        assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
        assert!(started.elapsed() < Duration::from_secs(8), "the deadline holds: {:?}", started.elapsed());
        assert!(app.metrics.render(&app.cluster).contains("apiload_audit_failures_total{reason=\"timeout\"} 1"));

        // Down: nothing listens.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let kubeconfig = dir.write(
            "down",
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
                 users:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
            ),
        );
        let mut conn = apiload_webhook::live::connection(Some(&kubeconfig), 100.0, 100).await.unwrap();
        conn.timeout = Duration::from_secs(2);
        let down = Auditor::new(app.clone(), conn);
        let e = failed(down.run_once().await);
        assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
        assert!(e.message.contains(&format!("127.0.0.1:{port}")), "names the server: {e}");
        assert!(app.metrics.render(&app.cluster).contains("apiload_audit_failures_total{reason=\"unreachable\"} 1"));
    });
}

#[test]
fn two_runs_never_overlap_and_an_unready_cache_is_not_audited() {
    let dir = TempDir::new("audit-busy");
    bounded(60, async move {
        let api = FakeApiServer::start().await;
        api.set_report_fault(Some(ReportFault::Slow(Duration::from_millis(800))));
        let app = ready_app(state());
        let auditor = Arc::new(auditor_of(&api, app.clone(), &dir).await);
        let (a, b) = (auditor.clone(), auditor.clone());
        let first = tokio::spawn(async move { a.run_once().await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let second = tokio::spawn(async move { b.run_once().await });
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert!(matches!(second, Outcome::Busy), "{second:?}");
        done(first);
        assert!(app.metrics.render(&app.cluster).contains("apiload_audit_runs_total{result=\"busy\"} 1"));
        // Once it is over, a run goes ahead.
        api.set_report_fault(None);
        done(auditor.run_once().await);

        let unready = ready_app(state());
        unready.cluster.set_ready(false);
        let before = api.requests().len();
        let auditor = auditor_of(&api, unready, &dir).await;
        assert!(matches!(auditor.run_once().await, Outcome::NotReady));
        assert_eq!(api.requests().len(), before, "no request before the caches are synced");
    });
}

fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
}

#[test]
fn the_binary_audits_on_its_interval_counts_failures_and_serves_on() {
    let dir = TempDir::new("audit-bin");
    let pki = Pki::new();
    bounded(90, async move {
        let api = FakeApiServer::start().await;
        for o in state() {
            let kind = o["kind"].as_str().unwrap().to_string();
            api.apply(&kind, o);
        }
        api.apply("Node", node("n1"));
        let kubeconfig = dir.write("kubeconfig", &api.kubeconfig());
        let mut args = tls_args(&dir, &pki);
        args.extend(
            [
                "--kubeconfig",
                &kubeconfig.display().to_string(),
                "--kube-api-qps",
                "50",
                "--kube-api-burst",
                "100",
                "--audit-interval",
                "1s",
            ]
            .map(String::from),
        );
        let webhook = Webhook::start(&args);
        let started = Instant::now();
        while !api.reports().contains_key(&("policyreports".into(), "team-a".into(), "apiload".into())) {
            assert!(started.elapsed() < Duration::from_secs(30), "no report:\n{}", webhook.logs().join("\n"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        webhook.wait_for_log("scheduled audit: PolicyReports up to date", Duration::from_secs(10));
        let (_, text) = get(webhook.metrics, "/metrics").await.unwrap();
        assert!(text.contains("apiload_audit_runs_total{result=\"success\"}"), "{text}");

        // Forbidden from now on: counted, logged, and reviews still answered.
        api.set_report_fault(Some(ReportFault::Forbidden));
        webhook.wait_for_log("scheduled audit failed", Duration::from_secs(10));
        let (_, text) = get(webhook.metrics, "/metrics").await.unwrap();
        assert!(text.contains("apiload_audit_failures_total{reason=\"forbidden\"}"), "{text}");
        assert_eq!(get(webhook.metrics, "/readyz").await.unwrap().0, 200);
        let client = https_client(&pki.ca_pem(), None, false);
        let ds = &risky()[2];
        let r = post(&client, webhook.review, "/validate", review("u1", "UPDATE", ds, Some(ds), false)).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    });
}

#[test]
fn the_flag_needs_live_mode() {
    let dir = TempDir::new("audit-static");
    let pki = Pki::new();
    let mut args = tls_args(&dir, &pki);
    let state = testdata().join("webhook/state").display().to_string();
    args.extend(["--cluster-state", &state, "--audit-interval", "10m"].map(String::from));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apiload-webhook")).args(&args).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--audit-interval needs live mode"), "{stderr}");
}
