//! The webhook binary in static mode, driven over real TLS on loopback with
//! AdmissionReviews shaped as the API server sends them.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

fn fixture(name: &str) -> Value {
    manifest(&std::fs::read_to_string(testdata().join("webhook").join(name)).unwrap())
}

struct Setup {
    _dir: TempDir,
    pki: Pki,
    webhook: Webhook,
    client: HttpsClient,
}

fn start(extra: &[&str]) -> Setup {
    let dir = TempDir::new("static");
    let pki = Pki::new();
    let mut args = tls_args(&dir, &pki);
    args.push("--cluster-state".into());
    args.push(testdata().join("webhook/state").display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    let webhook = Webhook::start(&args);
    let client = https_client(&pki.ca_pem(), None, false);
    Setup { _dir: dir, pki, webhook, client }
}

async fn send(s: &Setup, body: Vec<u8>) -> Reply {
    post(&s.client, s.webhook.review, "/validate", body).await.unwrap()
}

fn warnings(r: &Value) -> Vec<String> {
    r["warnings"].as_array().map(|w| w.iter().map(|x| x.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

#[test]
fn a_risky_daemonset_is_denied_in_enforce_mode_with_rule_chain_and_fix() {
    let s = start(&["--mode", "enforce"]);
    bounded(60, async {
        let reply =
            send(&s, review("uid-risky", "CREATE", &fixture("reviews/collector-daemonset.yaml"), None, false)).await;
        assert_eq!(reply.status, 200);
        let json = reply.json();
        assert_eq!(json["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(json["kind"], "AdmissionReview");
        let r = &json["response"];
        assert_eq!(r["uid"], "uid-risky");
        assert_eq!(r["allowed"], false);
        assert_eq!(r["status"]["code"], 403);
        let message = r["status"]["message"].as_str().unwrap();
        assert!(message.contains("AL101 per-node-cluster-watch"), "{message}");
        assert!(message.contains("DaemonSet monitoring/collector"), "{message}");
        assert!(message.contains("ClusterRoleBinding collector-pods"), "the chain: {message}");
        assert!(message.contains("Fix:"), "{message}");
    });
}

#[test]
fn warn_mode_allows_with_warnings_and_audit_mode_only_records() {
    let warn = start(&["--mode", "warn"]);
    bounded(60, async {
        let body = review("uid-warn", "CREATE", &fixture("reviews/collector-daemonset.yaml"), None, false);
        let r = send(&warn, body).await.response();
        assert_eq!(r["allowed"], true);
        let w = warnings(&r);
        assert!(w.iter().any(|w| w.starts_with("apiload AL101 per-node-cluster-watch")), "{w:?}");
        assert!(w.iter().all(|w| w.chars().count() <= 256));
    });
    let audit = start(&["--mode", "audit"]);
    bounded(60, async {
        let body = review("uid-audit", "CREATE", &fixture("reviews/collector-daemonset.yaml"), None, false);
        let r = send(&audit, body).await.response();
        assert_eq!(r["allowed"], true);
        assert!(warnings(&r).is_empty());
        assert_eq!(r["auditAnnotations"]["mode"], "audit");
        let (_, metrics) = get(audit.webhook.metrics, "/metrics").await.unwrap();
        assert!(metrics.contains(r#"apiload_findings_total{rule="AL101",outcome="recorded"} 1"#), "{metrics}");
        let log = audit.webhook.wait_for_log("uid-audit", Duration::from_secs(5));
        let line: Value = serde_json::from_str(&log).unwrap();
        assert_eq!(line["decision"], "allowed");
        assert!(line["findings"].as_str().unwrap().contains("AL101"), "{log}");
        assert!(line["latency_ms"].as_f64().is_some());
    });
}

#[test]
fn a_safe_daemonset_is_allowed() {
    let s = start(&[]);
    bounded(60, async {
        let r =
            send(&s, review("uid-safe", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false)).await;
        let r = r.response();
        assert_eq!(r["allowed"], true, "{r}");
        assert!(warnings(&r).is_empty(), "{r}");
    });
}

#[test]
fn a_binding_that_arms_an_existing_daemonset_is_denied() {
    let s = start(&[]);
    bounded(60, async {
        let r = send(&s, review("uid-crb", "CREATE", &fixture("reviews/arming-binding.yaml"), None, false))
            .await
            .response();
        assert_eq!(r["allowed"], false, "{r}");
        let message = r["status"]["message"].as_str().unwrap();
        assert!(message.contains("DaemonSet monitoring/agent"), "{message}");
    });
}

#[test]
fn a_config_map_change_that_drops_the_node_filter_is_denied() {
    let s = start(&[]);
    bounded(60, async {
        let old = fixture("state/otel-config.yaml");
        let new = fixture("reviews/otel-config-unscoped.yaml");
        let r = send(&s, review("uid-cm", "UPDATE", &new, Some(&old), false)).await.response();
        assert_eq!(r["allowed"], false, "{r}");
        let message = r["status"]["message"].as_str().unwrap();
        assert!(message.contains("DaemonSet monitoring/otel-agent"), "{message}");
        // Keeping the filter is fine.
        let r = send(&s, review("uid-cm-ok", "UPDATE", &old, Some(&old), false)).await.response();
        assert_eq!(r["allowed"], true, "{r}");
    });
}

#[test]
fn dry_runs_are_judged_the_same_and_change_nothing() {
    let s = start(&[]);
    bounded(60, async {
        let risky = review("uid-dry", "CREATE", &fixture("reviews/collector-daemonset.yaml"), None, true);
        assert_eq!(send(&s, risky).await.response()["allowed"], false);

        // A DaemonSet admitted for real is remembered: a binding that arms it
        // right after is denied. After a dry run, it is not.
        let mut ds = fixture("reviews/node-agent-daemonset.yaml");
        ds["metadata"]["name"] = "dry-agent".into();
        ds["spec"]["template"]["spec"]["automountServiceAccountToken"] = true.into();
        ds["spec"]["template"]["spec"]["serviceAccountName"] = "dry-agent".into();
        let mut binding = fixture("reviews/arming-binding.yaml");
        binding["metadata"]["name"] = "dry-agent-pods".into();
        binding["subjects"][0]["name"] = "dry-agent".into();

        let r = send(&s, review("uid-dry-ds", "CREATE", &ds, None, true)).await.response();
        assert_eq!(r["allowed"], true, "{r}");
        let r = send(&s, review("uid-dry-crb", "CREATE", &binding, None, false)).await.response();
        assert_eq!(r["allowed"], true, "the dry-run DaemonSet is not in the state: {r}");

        ds["metadata"]["name"] = "real-agent".into();
        ds["spec"]["template"]["spec"]["serviceAccountName"] = "real-agent".into();
        binding["metadata"]["name"] = "real-agent-pods".into();
        binding["subjects"][0]["name"] = "real-agent".into();
        let r = send(&s, review("uid-real-ds", "CREATE", &ds, None, false)).await.response();
        assert_eq!(r["allowed"], true, "{r}");
        let r = send(&s, review("uid-real-crb", "CREATE", &binding, None, false)).await.response();
        assert_eq!(r["allowed"], false, "the admitted DaemonSet is armed by the binding: {r}");
    });
}

#[test]
fn malformed_and_oversized_bodies_get_400_and_413_and_the_server_keeps_serving() {
    let s = start(&["--max-request-bytes", "65536"]);
    bounded(60, async {
        for bad in
            [&b"not json"[..], br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#, b"{}", b""]
        {
            let r = send(&s, bad.to_vec()).await;
            assert_eq!(r.status, 400, "{}", r.text());
            assert!(!r.text().is_empty());
        }
        let mut huge = fixture("reviews/collector-daemonset.yaml");
        huge["metadata"]["annotations"] = serde_json::json!({"padding": "x".repeat(100_000)});
        let r = send(&s, review("uid-huge", "CREATE", &huge, None, false)).await;
        assert_eq!(r.status, 413, "{}", r.text());
        let r =
            send(&s, review("uid-after", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false)).await;
        assert_eq!(r.status, 200);
        let (_, metrics) = get(s.webhook.metrics, "/metrics").await.unwrap();
        assert!(metrics.contains(r#"decision="bad_request"} 4"#), "{metrics}");
        assert!(metrics.contains(r#"decision="too_large"} 1"#), "{metrics}");
    });
}

#[test]
fn what_cannot_be_analysed_is_allowed_with_a_warning() {
    let s = start(&[]);
    bounded(60, async {
        // A kind the engine does not read.
        let service = manifest("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {}\n");
        let r = send(&s, review("uid-svc", "CREATE", &service, None, false)).await.response();
        assert_eq!(r["allowed"], true);
        assert!(warnings(&r)[0].contains("not analysed"), "{r}");
        // A workload whose fields have the wrong types.
        let mut broken = fixture("reviews/collector-daemonset.yaml");
        broken["spec"]["template"]["spec"]["containers"] = "not a list".into();
        let r = send(&s, review("uid-broken", "CREATE", &broken, None, false)).await.response();
        assert_eq!(r["allowed"], true, "{r}");
        // An object without a name.
        let nameless = manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: default}\n");
        let r = send(&s, review("uid-nameless", "CREATE", &nameless, None, false)).await.response();
        assert_eq!(r["allowed"], true);
        assert!(warnings(&r)[0].contains("cannot analyse"), "{r}");
        // A Deployment's ReplicaSet, created by the controller: judged
        // through its owner, allowed without a word.
        let mut rs = fixture("reviews/collector-daemonset.yaml");
        rs["kind"] = "ReplicaSet".into();
        rs["metadata"]["name"] = "collector-5d8f7".into();
        rs["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1", "kind": "Deployment",
            "name": "collector", "uid": "6a1f", "controller": true, "blockOwnerDeletion": true}]);
        let r = send(&s, review("uid-rs", "CREATE", &rs, None, false)).await.response();
        assert_eq!(r["allowed"], true, "{r}");
        assert!(warnings(&r).is_empty(), "{r}");
        // DELETE is not reviewed.
        let r =
            send(&s, review("uid-del", "DELETE", &Value::Null, Some(&fixture("state/otel-config.yaml")), false)).await;
        assert_eq!(r.response()["allowed"], true);
    });
}

#[test]
fn health_readiness_metrics_and_http2() {
    let s = start(&[]);
    bounded(60, async {
        assert_eq!(get(s.webhook.metrics, "/healthz").await.unwrap().0, 200);
        assert_eq!(get(s.webhook.metrics, "/readyz").await.unwrap().0, 200);
        let h2 = https_client(&s.pki.ca_pem(), None, true);
        let r = post(
            &h2,
            s.webhook.review,
            "/validate",
            review("uid-h2", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false),
        )
        .await
        .unwrap();
        assert_eq!(r.version, hyper::Version::HTTP_2);
        assert_eq!(r.response()["uid"], "uid-h2");
        let (status, metrics) = get(s.webhook.metrics, "/metrics").await.unwrap();
        assert_eq!(status, 200);
        for name in [
            "apiload_review_duration_seconds_bucket",
            "apiload_reviews_total",
            // Two from the state, one admitted over HTTP/2 above.
            "apiload_cache_objects{kind=\"DaemonSet\"} 3",
            "apiload_cache_age_seconds",
        ] {
            assert!(metrics.contains(name), "{name} missing:\n{metrics}");
        }
        // Only POST /validate exists on the review port.
        let r = post(&s.client, s.webhook.review, "/other", b"{}".to_vec()).await.unwrap();
        assert_eq!(r.status, 404);
    });
}

#[test]
fn the_client_certificate_is_checked_when_a_ca_is_given() {
    let dir = TempDir::new("mtls");
    let pki = Pki::new();
    let mut args = tls_args(&dir, &pki);
    let ca = dir.write("client-ca.crt", &pki.ca_pem());
    args.extend(["--client-ca-file".into(), ca.display().to_string(), "--cluster-state".into()]);
    args.push(testdata().join("webhook/state").display().to_string());
    let webhook = Webhook::start(&args);
    bounded(60, async {
        let body = || review("uid-mtls", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false);
        let anonymous = https_client(&pki.ca_pem(), None, false);
        assert!(
            post(&anonymous, webhook.review, "/validate", body()).await.is_err(),
            "no client certificate, no review"
        );
        let stranger = Pki::new().client();
        let foreign = https_client(&pki.ca_pem(), Some(&stranger), false);
        assert!(post(&foreign, webhook.review, "/validate", body()).await.is_err(), "a certificate from another CA");
        let apiserver = https_client(&pki.ca_pem(), Some(&pki.client()), false);
        assert_eq!(post(&apiserver, webhook.review, "/validate", body()).await.unwrap().status, 200);
    });
}

#[test]
fn bad_configuration_and_certificates_stop_the_start_with_a_clear_error() {
    let dir = TempDir::new("bad");
    let pki = Pki::new();
    let args = tls_args(&dir, &pki);
    let run = |extra: &[String]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_apiload-webhook"))
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--cluster-state", "/nonexistent"])
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let config = dir.write("config.yaml", "rules:\n  AL101: loud\n");
    let mut with_config = args.clone();
    with_config.extend(["--config".into(), config.display().to_string()]);
    let err = run(&with_config);
    assert!(err.contains("config.yaml:2:"), "{err}");
    let other = Pki::new().server("other");
    let key = dir.write("other.key", &other.key);
    let mut mismatched = args.clone();
    mismatched[3] = key.display().to_string();
    let err = run(&mismatched);
    assert!(err.contains("are not a pair"), "{err}");
    let mut missing = args.clone();
    missing[1] = "/nonexistent/tls.crt".into();
    assert!(run(&missing).contains("cannot read /nonexistent/tls.crt"));
}

#[test]
fn annotation_exemptions_count_only_where_the_configuration_allows_them() {
    let exempt = |ds: &mut Value| {
        ds["metadata"]["annotations"] = serde_json::json!({
            "apiload.dev/exempt": "AL101",
            "apiload.dev/exempt-reason": "vendor agent, its watch is budgeted (INC-1234)"
        });
    };
    let mut ds = fixture("reviews/collector-daemonset.yaml");
    exempt(&mut ds);
    // Without configuration, no namespace honours annotations: whoever can
    // edit the DaemonSet cannot exempt it.
    let s = start(&[]);
    bounded(60, async {
        let r = send(&s, review("uid-ann-1", "CREATE", &ds, None, false)).await.response();
        assert_eq!(r["allowed"], false, "{r}");
        assert!(warnings(&r).iter().any(|w| w.contains("AL006")), "the ignored annotation is reported: {r}");
    });
    let dir = TempDir::new("exempt");
    let config = dir.write("config.yaml", "annotationExemptions:\n  namespaces: [monitoring]\n");
    let s = start(&["--config", &config.display().to_string()]);
    bounded(60, async {
        let r = send(&s, review("uid-ann-2", "CREATE", &ds, None, false)).await.response();
        assert_eq!(r["allowed"], true, "{r}");
        let mut elsewhere = ds.clone();
        elsewhere["metadata"]["namespace"] = "tenant-a".into();
        elsewhere["spec"]["template"]["spec"]["serviceAccountName"] = "collector".into();
        let binding = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "tenant-a-collector"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "collector", "namespace": "tenant-a"}]});
        assert_eq!(send(&s, review("uid-ann-3", "CREATE", &binding, None, false)).await.response()["allowed"], true);
        let r = send(&s, review("uid-ann-4", "CREATE", &elsewhere, None, false)).await.response();
        assert_eq!(r["allowed"], false, "tenant-a is not listed: {r}");
    });
    // Configuration exemptions apply by selector, with their reason.
    let config = dir.write(
        "config2.yaml",
        "exemptions:\n  - rules: [AL101]\n    match: {kind: DaemonSet, namespace: monitoring, name: collector}\n    reason: budgeted by the platform team\n",
    );
    let s = start(&["--config", &config.display().to_string()]);
    bounded(60, async {
        let plain = fixture("reviews/collector-daemonset.yaml");
        let r = send(&s, review("uid-cfg", "CREATE", &plain, None, false)).await.response();
        assert_eq!(r["allowed"], true, "{r}");
    });
}

#[test]
fn a_broken_state_file_is_reported_with_its_line_and_the_rest_is_loaded() {
    let dir = TempDir::new("broken-state");
    let pki = Pki::new();
    for f in ["rbac.yaml", "workloads.yaml", "otel-config.yaml"] {
        dir.write(&format!("state/{f}"), &std::fs::read_to_string(testdata().join("webhook/state").join(f)).unwrap());
    }
    dir.write("state/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n");
    dir.write("state/wrong.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n  namespace: [a]\n");
    let mut args = tls_args(&dir, &pki);
    args.extend(["--cluster-state".into(), dir.path().join("state").display().to_string()]);
    let webhook = Webhook::start(&args);
    // The unclosed sequence is found at the end of the document.
    let broken = webhook.wait_for_log("broken.yaml:4:1: YAML syntax error", Duration::from_secs(10));
    assert!(broken.contains("cluster state input"), "{broken}");
    webhook.wait_for_log("wrong.yaml:5:", Duration::from_secs(10));
    let client = https_client(&pki.ca_pem(), None, false);
    bounded(60, async {
        let body = review("uid-after-broken", "CREATE", &fixture("reviews/collector-daemonset.yaml"), None, false);
        let r = post(&client, webhook.review, "/validate", body).await.unwrap().response();
        assert_eq!(r["allowed"], false, "the valid files were loaded: {r}");
    });
}
