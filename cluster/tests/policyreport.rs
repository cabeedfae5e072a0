//! An audit's PolicyReports, from live objects as the API server sends them:
//! their shape against the `wgpolicyk8s.io/v1alpha2` schema
//! (kubernetes-sigs/wg-policy-prototypes `policy-report/crd/v1alpha2/`:
//! `results[].policy` required; `result` one of pass, fail, warn, error,
//! skip; `severity` one of high, medium, low; `timestamp` with `seconds` and
//! `nanos`; `properties` string to string), and the whole stream as a
//! snapshot. The end-to-end suite applies them to a real API server with
//! strict field validation.

use apiload_cluster::audit::{self, Audit};
use apiload_cluster::policyreport::{reports, yaml_stream};
use apiload_cluster::snapshot::{Listed, Snapshot};
use apiload_rules::Sources;
use apiload_rules::settings::Settings;
use apiload_rules::setup::{Flags, Setup};
use serde_json::{Value, json};

fn listed(kind: &'static str, v: Value) -> Listed {
    Listed {
        kind,
        api_version: v["apiVersion"].as_str().unwrap().to_string(),
        namespace: v["metadata"]["namespace"].as_str().map(str::to_string),
        name: v["metadata"]["name"].as_str().unwrap().to_string(),
        uid: v["metadata"]["uid"].as_str().map(str::to_string),
        text: apiload_cluster::yaml_text::to_yaml(&v),
    }
}

fn helm(name: &str, ns: Option<&str>, uid: &str) -> Value {
    let mut m = json!({"name": name, "uid": uid,
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": "node-agent", "meta.helm.sh/release-namespace": "monitoring"}});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

/// A DaemonSet installed by Helm whose every copy may watch every pod, and a
/// quiet Deployment in another namespace.
fn audit() -> Audit {
    let objects = vec![
        listed(
            "ClusterRole",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": helm("pod-watcher", None, "uid-role"),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}),
        ),
        listed(
            "ClusterRoleBinding",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": helm("pod-watcher", None, "uid-binding"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-watcher"},
            "subjects": [{"kind": "ServiceAccount", "name": "pod-watcher", "namespace": "monitoring"}]}),
        ),
        listed(
            "DaemonSet",
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": helm("node-agent", Some("monitoring"), "uid-ds"),
            "spec": {"selector": {"matchLabels": {"app": "node-agent"}}, "template": {
                "metadata": {"labels": {"app": "node-agent"}},
                "spec": {"serviceAccountName": "pod-watcher",
                         "containers": [{"name": "agent", "image": "registry.example.com/node-agent:1.0.0"}]}}}}),
        ),
        listed(
            "ServiceAccount",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": helm("pod-watcher", Some("monitoring"), "uid-sa")}),
        ),
        // List and watch for every ServiceAccount: a finding about no
        // workload, in a cluster-scoped object.
        listed(
            "ClusterRole",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "everyone-reads", "uid": "uid-everyone"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]}]}),
        ),
        listed(
            "ClusterRoleBinding",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "everyone-reads", "uid": "uid-everyone-binding"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "everyone-reads"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts", "apiGroup": "rbac.authorization.k8s.io"}]}),
        ),
        listed(
            "Deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"automountServiceAccountToken": false,
                         "containers": [{"name": "web", "image": "registry.example.com/web:2.0.0"}]}}}}),
        ),
    ];
    let snapshot = Snapshot { server: "https://127.0.0.1:6443".into(), nodes: 1000, objects, ..Snapshot::default() };
    let flags = Flags { nodes: Some(1000), today: "2026-12-02".into(), ..Flags::default() };
    let (setup, errors) = Setup::build(&Settings::default(), &[], None, &flags);
    assert!(errors.is_empty(), "{errors:?}");
    audit::analyze(&snapshot, setup, Sources::new())
}

#[test]
fn reports_fit_the_v1alpha2_schema_and_hold_every_finding() {
    let audit = audit();
    assert!(!audit.report.diagnostics.is_empty(), "the DaemonSet has findings");
    let reports = reports(&audit, 1_796_000_000);
    let kinds: Vec<(&str, &str)> = reports
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["metadata"]["namespace"].as_str().unwrap_or("")))
        .collect();
    // Namespaces in order, the cluster report (the binding to every
    // ServiceAccount) last.
    assert_eq!(kinds, [("PolicyReport", "monitoring"), ("PolicyReport", "shop"), ("ClusterPolicyReport", "")]);
    let cluster = &reports[2];
    assert!(cluster.get("scope").is_none() && cluster["metadata"].get("namespace").is_none(), "{cluster}");
    assert_eq!(cluster["results"][0]["properties"]["ruleId"], "AL106", "{cluster}");
    assert_eq!(cluster["results"][0]["resources"][0]["kind"], "ClusterRoleBinding", "{cluster}");
    let mut findings = 0;
    for r in &reports {
        assert_eq!(r["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(r["metadata"]["labels"]["app.kubernetes.io/managed-by"], "apiload");
        let top: Vec<&String> = r.as_object().unwrap().keys().collect();
        for k in &top {
            assert!(
                ["apiVersion", "kind", "metadata", "scope", "summary", "results"].contains(&k.as_str()),
                "{k} is not in the schema"
            );
        }
        let mut counted = json!({"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0});
        for result in r["results"].as_array().unwrap() {
            assert!(result["policy"].is_string(), "policy is required: {result}");
            let outcome = result["result"].as_str().unwrap();
            assert!(["pass", "fail", "warn", "error", "skip"].contains(&outcome), "{outcome}");
            counted[outcome] = json!(counted[outcome].as_u64().unwrap() + 1);
            if let Some(sev) = result.get("severity") {
                assert!(["high", "medium", "low"].contains(&sev.as_str().unwrap()), "{sev}");
            }
            assert!(result["timestamp"]["seconds"].is_i64() && result["timestamp"]["nanos"].is_i64());
            for (_, v) in result.get("properties").and_then(Value::as_object).into_iter().flatten() {
                assert!(v.is_string(), "properties are strings: {v}");
            }
            for res in result["resources"].as_array().unwrap() {
                assert!(res["uid"].is_string() && res["kind"].is_string() && res["name"].is_string(), "{res}");
            }
            if outcome != "pass" {
                findings += 1;
            }
        }
        assert_eq!(r["summary"], counted);
    }
    assert_eq!(findings, audit.report.diagnostics.len());
    // The quiet Deployment passes.
    let shop = &reports[1]["results"];
    assert_eq!(shop[0]["result"], "pass");
    assert_eq!(shop[0]["resources"][0]["name"], "web");
    // Findings about the DaemonSet name its Helm release.
    for result in reports[0]["results"].as_array().unwrap() {
        assert_eq!(result["properties"]["owner"], "Helm release monitoring/node-agent", "{result}");
    }
}

#[test]
fn the_report_stream() {
    insta::assert_snapshot!(yaml_stream(&reports(&audit(), 1_796_000_000)));
}

#[test]
fn findings_in_live_objects_name_who_installed_them() {
    let audit = audit();
    let d =
        audit.report.diagnostics.iter().find(|d| d.workload.as_ref().is_some_and(|w| w.name == "node-agent")).unwrap();
    let installed: Vec<&str> =
        d.related.iter().filter(|r| r.message.starts_with("installed by")).map(|r| r.message.as_str()).collect();
    assert_eq!(
        installed,
        [
            "installed by Helm release monitoring/node-agent (meta.helm.sh/release-name): fix it in the chart or its values and upgrade the release"
        ]
    );
    assert_eq!(audit.sources.get(d.location.source).name, "<cluster>/monitoring/DaemonSet/node-agent");
}
