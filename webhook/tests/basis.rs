//! The webhook denies only what apiload can show: a fan-out known from a
//! profile or a declaration, or one nothing could scope. A fan-out inferred
//! from grants the agent could scope is a warning, unless the operator opts
//! in to "every per-node agent needs a basis" (`rules: {AL107: error}`).

mod common;

use common::*;
use serde_json::{Value, json};

/// A DaemonSet running as `monitoring/pod-agent`, told its node name, with
/// extra annotations.
fn node_agent(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "monitoring", "annotations": annotations},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "serviceAccountName": "pod-agent",
                    "containers": [{
                        "name": "agent", "image": "registry.example.com/in-house/pod-agent:1.0",
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
                    }]
                }
            }
        }
    })
}

/// Grants `monitoring/pod-agent` a cluster-wide list and watch of pods (and
/// nothing else), reviewed and admitted before the DaemonSets.
async fn grant_pod_watch(webhook: &Webhook, client: &HttpsClient) {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "pods-only"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "pod-agent"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pods-only"},
        "subjects": [{"kind": "ServiceAccount", "name": "pod-agent", "namespace": "monitoring"}]});
    for (uid, object) in [("uid-role", role), ("uid-binding", binding)] {
        let r = post(client, webhook.review, "/validate", review(uid, "CREATE", &object, None, false)).await.unwrap();
        assert_eq!(r.response()["allowed"], true, "{}", r.text());
    }
}

fn start(dir: &TempDir, pki: &Pki, config: Option<&str>) -> (Webhook, HttpsClient) {
    let mut args = tls_args(dir, pki);
    args.extend(["--mode".into(), "enforce".into(), "--cluster-state".into()]);
    args.push(testdata().join("webhook/state").display().to_string());
    if let Some(text) = config {
        args.push("--config".into());
        args.push(dir.write("config.yaml", text).display().to_string());
    }
    (Webhook::start(&args), https_client(&pki.ca_pem(), None, false))
}

fn warnings(r: &Value) -> String {
    r["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

#[test]
fn an_inferred_fan_out_the_agent_could_scope_is_a_warning_unless_a_basis_is_required() {
    let pki = Pki::new();
    let dir = TempDir::new("basis-default");
    let (webhook, client) = start(&dir, &pki, None);
    bounded(60, async {
        grant_pod_watch(&webhook, &client).await;
        let ds = node_agent("pod-agent", json!({}));
        let reply =
            post(&client, webhook.review, "/validate", review("uid-1", "CREATE", &ds, None, false)).await.unwrap();
        let r = reply.response();
        assert_eq!(r["allowed"], true, "{r}");
        assert!(warnings(&r).contains("AL107"), "the unverified calls are a warning: {r}");
    });
    let dir = TempDir::new("basis-required");
    let (webhook, client) = start(&dir, &pki, Some("rules:\n  per-node-unverified-calls: error\n"));
    bounded(60, async {
        grant_pod_watch(&webhook, &client).await;
        let ds = node_agent("pod-agent", json!({}));
        let reply =
            post(&client, webhook.review, "/validate", review("uid-2", "CREATE", &ds, None, false)).await.unwrap();
        let r = reply.response();
        assert_eq!(r["allowed"], false, "{r}");
        assert!(r["status"]["message"].as_str().unwrap().contains("AL107"), "{r}");
    });
}

#[test]
fn declarations_count_only_where_the_configuration_trusts_annotations() {
    let pki = Pki::new();
    // Declared to watch every pod: a known fan-out, denied — where declarations count.
    let cluster_wide = node_agent("declared-agent", json!({"apiload.dev/api-calls": "pods@cluster"}));
    // Declared node-scoped: a known over-grant, a warning.
    let node_scoped = node_agent("scoped-agent", json!({"apiload.dev/api-calls": "pods@node"}));
    let dir = TempDir::new("basis-trusted");
    let (webhook, client) = start(&dir, &pki, Some("annotationExemptions:\n  namespaces: [monitoring]\n"));
    bounded(60, async {
        grant_pod_watch(&webhook, &client).await;
        let r = post(&client, webhook.review, "/validate", review("uid-3", "CREATE", &cluster_wide, None, false))
            .await
            .unwrap()
            .response();
        assert_eq!(r["allowed"], false, "{r}");
        let message = r["status"]["message"].as_str().unwrap();
        assert!(message.contains("AL101") && message.contains("is declared"), "{message}");
        let r = post(&client, webhook.review, "/validate", review("uid-4", "CREATE", &node_scoped, None, false))
            .await
            .unwrap()
            .response();
        assert_eq!(r["allowed"], true, "{r}");
        assert!(warnings(&r).contains("AL103"), "a known over-grant: {r}");
    });
    // By default the webhook trusts no annotation: the declaration is
    // reported as not counting, and the calls are inferred again (AL107).
    let dir = TempDir::new("basis-untrusted");
    let (webhook, client) = start(&dir, &pki, None);
    bounded(60, async {
        grant_pod_watch(&webhook, &client).await;
        let r = post(&client, webhook.review, "/validate", review("uid-5", "CREATE", &node_scoped, None, false))
            .await
            .unwrap()
            .response();
        assert_eq!(r["allowed"], true, "{r}");
        let w = warnings(&r);
        assert!(w.contains("AL008") && w.contains("AL107"), "{r}");
    });
}
