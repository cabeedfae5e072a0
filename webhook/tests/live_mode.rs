//! Live mode against a local stand-in for the API server: the kube-rs
//! list/watch code paths run for real — lists from the watch cache,
//! bookmarks, a watch that ends, a 410 that forces a relist — and the
//! cache they keep answers reviews in both directions.

mod common;
#[path = "common/fake_apiserver.rs"]
mod fake_apiserver;

use common::*;
use fake_apiserver::FakeApiServer;
use serde_json::Value;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Value {
    manifest(&std::fs::read_to_string(testdata().join("webhook").join(name)).unwrap())
}

/// Every document of a fixture file.
fn fixtures(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(testdata().join("webhook").join(name)).unwrap();
    apiload_yaml::load_str(&text, &Default::default())
        .into_iter()
        .map(|d| serde_json::from_str(&d.unwrap().root.to_json()).unwrap())
        .collect()
}

fn node(name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                       "spec": {"podCIDR": "10.0.0.0/24"}, "status": {"capacity": {"pods": "110"}}})
}

async fn allowed(
    client: &HttpsClient,
    webhook: &Webhook,
    uid: &str,
    op: &str,
    object: &Value,
    old: Option<&Value>,
) -> Value {
    let r = post(client, webhook.review, "/validate", review(uid, op, object, old, false)).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.response()
}

/// Repeats a review until its `allowed` is `want` (the watch event or relist
/// arrives asynchronously).
async fn until_allowed(client: &HttpsClient, webhook: &Webhook, object: &Value, want: bool, what: &str) {
    let started = Instant::now();
    loop {
        let r = allowed(client, webhook, "uid-poll", "UPDATE", object, Some(object)).await;
        if r["allowed"] == want {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{what}: still allowed={} after 15 s: {r}", !want);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn live_mode_watches_like_a_good_client_and_reviews_against_what_it_sees() {
    let dir = TempDir::new("live");
    let pki = Pki::new();
    bounded(120, async move {
        let api = FakeApiServer::start().await;
        for o in fixtures("state/rbac.yaml") {
            let kind = o["kind"].as_str().unwrap().to_string();
            api.apply(&kind, o);
        }
        for o in fixtures("state/workloads.yaml") {
            api.apply("DaemonSet", o);
        }
        api.apply("ConfigMap", fixture("state/otel-config.yaml"));
        for n in ["node-a", "node-b", "node-c"] {
            api.apply("Node", node(n));
        }
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
                "--configmap-cache-ttl",
                "1s",
            ]
            .map(String::from),
        );
        let webhook = Webhook::start(&args);
        let client = https_client(&pki.ca_pem(), None, false);

        // Ready only once every collection is listed.
        let started = Instant::now();
        while get(webhook.metrics, "/readyz").await.unwrap().0 != 200 {
            assert!(started.elapsed() < Duration::from_secs(20), "never ready:\n{}", webhook.logs().join("\n"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // How it asked: lists from the watch cache, one watch per collection
        // with bookmarks, Nodes as metadata only, no Secrets.
        let requests = api.requests();
        let lists: Vec<_> = requests.iter().filter(|r| !r.is_watch() && !r.path.contains("/namespaces/")).collect();
        assert_eq!(lists.len(), apiload_webhook::kinds::watched().count() + 1, "one list per collection: {lists:#?}");
        assert!(lists.iter().any(|r| r.path == "/api/v1/replicationcontrollers"), "ReplicationControllers are watched");
        for r in &lists {
            assert_eq!(r.query.get("resourceVersion").map(String::as_str), Some("0"), "{r:?}");
        }
        let started = Instant::now();
        while api.open_watches("DaemonSet") != 1 || api.open_watches("Node") != 1 {
            assert!(started.elapsed() < Duration::from_secs(10), "watches not open");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for r in api.requests().iter().filter(|r| r.is_watch()) {
            assert_eq!(r.query.get("allowWatchBookmarks").map(String::as_str), Some("true"), "{r:?}");
        }
        assert!(
            requests.iter().filter(|r| r.path == "/api/v1/nodes").all(|r| r.accept.contains("PartialObjectMetadata"))
        );
        assert!(requests.iter().all(|r| !r.path.contains("secrets")));
        let (_, metrics) = get(webhook.metrics, "/metrics").await.unwrap();
        assert!(metrics.contains("apiload_cluster_nodes 3"), "{metrics}");
        assert!(metrics.contains(r#"apiload_cache_objects{kind="DaemonSet"} 2"#), "{metrics}");

        // Reverse direction against the cache: the binding that arms agent.
        let binding = fixture("reviews/arming-binding.yaml");
        let r = allowed(&client, &webhook, "uid-arm", "CREATE", &binding, None).await;
        assert_eq!(r["allowed"], false, "{r}");

        // Someone creates the binding while the webhook is not asked (an
        // exempt namespace, failurePolicy Ignore): the watch event reaches
        // the cache, and the DaemonSet's next update is denied.
        let agent = fixtures("state/workloads.yaml").remove(0);
        api.apply("ClusterRoleBinding", binding.clone());
        until_allowed(&client, &webhook, &agent, false, "after the binding's watch event").await;

        // A bookmark, then the watch ends: the next watch resumes from the
        // bookmark's resourceVersion instead of relisting.
        let bookmark = api.bookmark("ClusterRoleBinding");
        tokio::time::sleep(Duration::from_millis(200)).await;
        api.end_watches("ClusterRoleBinding");
        let started = Instant::now();
        loop {
            let resumed = api.requests().iter().any(|r| {
                r.path.ends_with("/clusterrolebindings")
                    && r.is_watch()
                    && r.query.get("resourceVersion") == Some(&bookmark.to_string())
            });
            if resumed {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "no watch resumed from bookmark {bookmark}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let clusterrolebinding_lists = |api: &FakeApiServer| {
            api.requests().iter().filter(|r| r.path.ends_with("/clusterrolebindings") && !r.is_watch()).count()
        };
        assert_eq!(clusterrolebinding_lists(&api), 1, "resumed without a relist");

        // The binding goes away in an event the watch never sees; then the
        // history is compacted: 410 Gone, relist, and the cache is right again.
        api.delete_silently("ClusterRoleBinding", binding.clone());
        api.expire("ClusterRoleBinding");
        until_allowed(&client, &webhook, &agent, true, "after the relist").await;
        assert_eq!(clusterrolebinding_lists(&api), 2, "a 410 forces one relist");

        // The ConfigMap a reviewed workload mounts is read on demand and reused.
        let otel = fixtures("state/workloads.yaml").remove(1);
        let reads =
            |api: &FakeApiServer| api.requests().iter().filter(|r| r.path.ends_with("/configmaps/otel-agent")).count();
        let r = allowed(&client, &webhook, "uid-otel-1", "UPDATE", &otel, Some(&otel)).await;
        assert_eq!(r["allowed"], true, "{r}");
        assert_eq!(reads(&api), 1);
        let r = allowed(&client, &webhook, "uid-otel-2", "UPDATE", &otel, Some(&otel)).await;
        assert_eq!(r["allowed"], true, "{r}");
        assert_eq!(reads(&api), 1, "read once within the TTL");
        api.apply_silently("ConfigMap", fixture("reviews/otel-config-unscoped.yaml"));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let r = allowed(&client, &webhook, "uid-otel-3", "UPDATE", &otel, Some(&otel)).await;
        assert_eq!(r["allowed"], false, "the ConfigMap, read again after its TTL, drops the node filter: {r}");
        assert_eq!(reads(&api), 2);

        // An object this replica admitted counts before its watch event:
        // a binding for `late`, then a DaemonSet running as `late`.
        let mut late_binding = binding.clone();
        late_binding["metadata"]["name"] = "late-pods".into();
        late_binding["subjects"][0]["name"] = "late".into();
        assert_eq!(allowed(&client, &webhook, "uid-late-crb", "CREATE", &late_binding, None).await["allowed"], true);
        let mut late = agent.clone();
        late["metadata"]["name"] = "late".into();
        late["spec"]["template"]["spec"]["serviceAccountName"] = "late".into();
        let r = allowed(&client, &webhook, "uid-late-ds", "CREATE", &late, None).await;
        assert_eq!(r["allowed"], false, "{r}");
        let (_, metrics) = get(webhook.metrics, "/metrics").await.unwrap();
        // Admitted and never echoed by this stand-in's watches: the updates of
        // agent and otel-agent, and the binding for late.
        assert!(metrics.contains("apiload_pending_admissions 3"), "{metrics}");

        // A DELETED event takes the object out of the cache, and settles its admission.
        api.delete("DaemonSet", otel.clone());
        let started = Instant::now();
        loop {
            let (_, metrics) = get(webhook.metrics, "/metrics").await.unwrap();
            if metrics.contains(r#"apiload_cache_objects{kind="DaemonSet"} 1"#)
                && metrics.contains("apiload_pending_admissions 2")
            {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "the deletion never reached the cache:\n{metrics}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn live_mode_is_not_ready_without_an_api_server_and_says_why() {
    let dir = TempDir::new("live-down");
    let pki = Pki::new();
    // Nothing listens there.
    let kubeconfig = dir.write(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: \"http://127.0.0.1:9\"}\n\
         users:\n- name: x\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\ncurrent-context: x\n",
    );
    let mut args = tls_args(&dir, &pki);
    args.extend(["--kubeconfig".to_string(), kubeconfig.display().to_string()]);
    let webhook = Webhook::start(&args);
    bounded(60, async move {
        webhook.wait_for_log("watch failed; retrying with backoff", Duration::from_secs(20));
        assert_eq!(get(webhook.metrics, "/readyz").await.unwrap().0, 503);
        assert_eq!(get(webhook.metrics, "/healthz").await.unwrap().0, 200);
    });
}

#[test]
fn every_request_to_the_api_server_goes_through_the_rate_limit() {
    let dir = TempDir::new("live-qps");
    let pki = Pki::new();
    bounded(90, async move {
        let api = FakeApiServer::start().await;
        let kubeconfig = dir.write("kubeconfig", &api.kubeconfig());
        let mut args = tls_args(&dir, &pki);
        args.extend(
            ["--kubeconfig", &kubeconfig.display().to_string(), "--kube-api-qps", "10", "--kube-api-burst", "1"]
                .map(String::from),
        );
        let webhook = Webhook::start(&args);
        // 14 lists and 14 watches at 10 per second: about 2.7 s, not all at once.
        let started = Instant::now();
        while api.requests().len() < 28 {
            assert!(started.elapsed() < Duration::from_secs(30), "only {} requests", api.requests().len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let requests = api.requests();
        let span = requests[27].at - requests[0].at;
        assert!(span >= Duration::from_millis(2400), "28 requests within {span:?}: no rate limit");
        drop(webhook);
    });
}
