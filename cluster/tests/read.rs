//! The audit's reads against a stand-in API server: what it asks for (paged
//! lists without a resourceVersion, no watch, never a Secret, owned objects
//! as metadata, ConfigMaps only where read), what it keeps, and every bad
//! answer as a clear error.

mod common;

use apiload_cluster::client::{Connect, connect};
use apiload_cluster::snapshot::{self, Quiet, ReadOptions};
use apiload_cluster::{ClusterError, ErrorKind};
use apiload_rules::profile::ProfileSet;
use common::{Fake, TOKEN_USER, kubeconfig, scratch};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn connect_options(kubeconfig: std::path::PathBuf) -> Connect {
    Connect {
        kubeconfig: Some(kubeconfig),
        context: None,
        qps: 50.0,
        burst: 10,
        timeout: Duration::from_secs(5),
        kube_retries: false,
    }
}

fn meta(name: &str, ns: Option<&str>) -> Value {
    let mut m = json!({"name": name, "uid": format!("uid-{name}"), "resourceVersion": "7", "managedFields": [{"manager": "x"}]});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

fn daemonset(name: &str, ns: &str, config_map: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta(name, Some(ns)),
           "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
               "metadata": {"labels": {"app": name}},
               "spec": {"serviceAccountName": name, "containers": [{"name": "agent", "image": "example.com/agent:1",
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/agent"}]}],
                        "volumes": [{"name": "config", "configMap": {"name": config_map}}]}}},
           "status": {"numberReady": 3}})
}

fn owned(kind: &str, name: &str, ns: &str, owner_kind: &str) -> Value {
    let mut m = meta(name, Some(ns));
    m["ownerReferences"] =
        json!([{"apiVersion": "apps/v1", "kind": owner_kind, "name": "owner", "uid": "u", "controller": true}]);
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": m, "spec": {}})
}

/// A small cluster: an agent with its ConfigMap, a Secret, owned and bare
/// ReplicaSets and Pods, bootstrap and custom FlowSchemas, 1,200 Nodes in two pools.
fn seed(fake: &Fake) {
    fake.serve_every_collection();
    fake.add("/apis/apps/v1/daemonsets", daemonset("agent", "monitoring", "agent-config"));
    fake.add("/api/v1/configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("agent-config", Some("monitoring")), "data": {"config.yaml": "a: 1\nb: 2\n"}}));
    fake.add(
        "/api/v1/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("unrelated", Some("monitoring")), "data": {}}),
    );
    fake.add(
        "/api/v1/secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("token", Some("monitoring")), "data": {}}),
    );
    fake.add(
        "/api/v1/serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("agent", Some("monitoring"))}),
    );
    for i in 0..3 {
        fake.add("/apis/apps/v1/replicasets", owned("ReplicaSet", &format!("web-{i}"), "apps", "Deployment"));
        fake.add("/api/v1/pods", owned("Pod", &format!("agent-{i}"), "monitoring", "DaemonSet"));
    }
    fake.add(
        "/apis/apps/v1/replicasets",
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta("bare", Some("apps")), "spec": {}}),
    );
    let mut bootstrap = meta("service-accounts", None);
    bootstrap["annotations"] = json!({"apf.kubernetes.io/autoupdate-spec": "true"});
    fake.add("/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": bootstrap, "spec": {}}));
    fake.add("/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": meta("agents", None), "spec": {}}));
    // The API server's bootstrap policy, which the engine knows built in,
    // and a role of the cluster's own, which it must read.
    let rbac_defaults = |name: &str| {
        let mut m = meta(name, None);
        m["labels"] = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
        m["annotations"] = json!({"rbac.authorization.kubernetes.io/autoupdate": "true"});
        m
    };
    fake.add("/apis/rbac.authorization.k8s.io/v1/clusterroles", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": rbac_defaults("system:node"), "rules": []}));
    fake.add("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": rbac_defaults("system:basic-user"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:basic-user"}}));
    // Labelled like the bootstrap policy, but not part of it: kept.
    fake.add("/apis/rbac.authorization.k8s.io/v1/clusterroles", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": rbac_defaults("agent"), "rules": []}));
    for i in 0..1200 {
        let pool = if i < 1000 { "general" } else { "gpu" };
        let name = format!("node-{i:04}");
        fake.add("/api/v1/nodes", json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "cloud.google.com/gke-nodepool": pool}},
            "spec": if pool == "gpu" { json!({"taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]}) } else { json!({}) },
            "status": {"images": [{"names": ["registry/image:1"], "sizeBytes": 1}]}}));
    }
}

#[tokio::test]
async fn reads_every_collection_paged_without_watches_or_secrets() {
    let fake = Fake::start().await;
    seed(&fake);
    let dir = scratch("read");
    let conn = connect(&connect_options(kubeconfig(&dir, &fake.url(), TOKEN_USER))).await.unwrap();
    let options = ReadOptions { page_size: 500, ..ReadOptions::default() };
    let snap = snapshot::read(&conn, &options, &ProfileSet::builtin(), &Quiet).await.unwrap();

    let names: Vec<String> = snap.objects.iter().map(|o| o.source_name()).collect();
    assert_eq!(
        names,
        [
            "<cluster>/ClusterRole/agent",
            "<cluster>/FlowSchema/agents",
            "<cluster>/apps/ReplicaSet/bare",
            "<cluster>/monitoring/DaemonSet/agent",
            "<cluster>/monitoring/ServiceAccount/agent",
            "<cluster>/monitoring/ConfigMap/agent-config",
        ]
    );
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);
    assert_eq!((snap.nodes, snap.owned, snap.bootstrap), (1200, 6, 3));
    let pools: Vec<(&str, u64)> = snap.pools.iter().map(|p| (p.name.as_str(), p.nodes)).collect();
    assert_eq!(pools, [("general", 1000), ("gpu", 200)]);
    assert_eq!(snap.version, Some((1, 34)));
    // Trimmed: no status, no managedFields.
    let ds = &snap.objects[3].text;
    assert!(
        ds.contains("serviceAccountName: agent") && !ds.contains("numberReady") && !ds.contains("managedFields"),
        "{ds}"
    );

    let requests = fake.requests();
    assert_eq!(snap.requests, requests.len() as u64);
    for r in &requests {
        assert!(!r.path.contains("secrets"), "read a Secret: {r:?}");
        assert!(!r.query.contains_key("watch"), "watched: {r:?}");
        assert_eq!(r.method, "GET");
        if r.query.contains_key("limit") {
            assert_eq!(r.query["limit"], "500");
            assert!(!r.query.contains_key("resourceVersion"), "a paged list with a resourceVersion: {r:?}");
        }
    }
    let node_pages: Vec<_> = requests.iter().filter(|r| r.path == "/api/v1/nodes").collect();
    assert_eq!(node_pages.len(), 3, "1,200 Nodes in pages of 500");
    assert_eq!(node_pages[1].query.get("continue").map(String::as_str), Some("500"));
    // Owned kinds as metadata first, and only the bare ReplicaSet read whole.
    let rs: Vec<_> = requests.iter().filter(|r| r.path.contains("replicasets")).collect();
    assert!(rs[0].accept.contains("as=PartialObjectMetadataList"), "{:?}", rs[0]);
    assert_eq!(rs[1].path, "/apis/apps/v1/namespaces/apps/replicasets/bare");
    assert!(!requests.iter().any(|r| r.path.contains("/pods/")), "owned Pods are not read");
    // The one ConfigMap the agent mounts, by GET.
    let cms: Vec<&str> = requests.iter().filter(|r| r.path.contains("configmaps")).map(|r| r.path.as_str()).collect();
    assert_eq!(cms, ["/api/v1/namespaces/monitoring/configmaps/agent-config"]);
    let profile = snap.cluster_profile();
    assert_eq!(profile["nodes"], 1200);
    assert_eq!(profile["nodePools"][1]["taints"][0]["key"], "gpu");
}

#[tokio::test]
async fn many_config_maps_are_listed_by_namespace_not_fetched_one_by_one() {
    let fake = Fake::start().await;
    fake.serve_every_collection();
    for i in 0..30 {
        fake.add("/apis/apps/v1/daemonsets", daemonset(&format!("agent-{i}"), "monitoring", &format!("config-{i}")));
        fake.add("/api/v1/configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&format!("config-{i}"), Some("monitoring")), "data": {"k": "v"}}));
    }
    fake.add(
        "/api/v1/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("elsewhere", Some("other")), "data": {}}),
    );
    let dir = scratch("config-maps");
    let conn = connect(&connect_options(kubeconfig(&dir, &fake.url(), TOKEN_USER))).await.unwrap();
    let snap = snapshot::read(&conn, &ReadOptions::default(), &ProfileSet::builtin(), &Quiet).await.unwrap();
    assert_eq!(snap.counts["ConfigMap"], 30);
    let cms: Vec<String> =
        fake.requests().iter().filter(|r| r.path.contains("configmaps")).map(|r| r.path.clone()).collect();
    assert_eq!(cms, ["/api/v1/namespaces/monitoring/configmaps"]);
}

#[tokio::test]
async fn a_forbidden_collection_is_reported_and_the_rest_is_read() {
    let fake = Fake::start().await;
    seed(&fake);
    fake.world.lock().unwrap().forbidden.push("horizontalpodautoscalers".into());
    let dir = scratch("forbidden");
    let conn = connect(&connect_options(kubeconfig(&dir, &fake.url(), TOKEN_USER))).await.unwrap();
    let snap = snapshot::read(&conn, &ReadOptions::default(), &ProfileSet::builtin(), &Quiet).await.unwrap();
    assert_eq!(snap.problems.len(), 1, "{:?}", snap.problems);
    let p = &snap.problems[0];
    assert_eq!(p.kind, ErrorKind::Forbidden);
    assert!(p.message.starts_with("listing horizontalpodautoscalers.autoscaling: forbidden (403): "), "{}", p.message);
    assert!(snap.objects.iter().any(|o| o.kind == "DaemonSet"));
}

async fn read_error(conn: Connect) -> ClusterError {
    let conn = match connect(&conn).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    snapshot::read(&conn, &ReadOptions::default(), &ProfileSet::builtin(), &Quiet).await.unwrap_err()
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    // A port nothing listens on: bind, learn it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = scratch("unreachable");
    let server = format!("http://127.0.0.1:{port}");
    let e = read_error(connect_options(kubeconfig(&dir, &server, TOKEN_USER))).await;
    assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
    assert!(e.message.starts_with(&format!("reading /version: cannot reach the API server at {server}")), "{e}");
    assert!(e.message.contains("refused"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts connections and holds them, silent.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = scratch("timeout");
    let mut options = connect_options(kubeconfig(&dir, &format!("http://{addr}"), TOKEN_USER));
    options.timeout = Duration::from_millis(300);
    let t = Instant::now();
    let e = read_error(options).await;
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("did not answer within 0.3 s"), "{e}");
}

#[tokio::test]
async fn refused_credentials_say_what_to_do() {
    let fake = Fake::start().await;
    fake.world.lock().unwrap().unauthorized = true;
    let dir = scratch("unauthorized");
    let e = read_error(connect_options(kubeconfig(&dir, &fake.url(), TOKEN_USER))).await;
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
    assert!(e.message.contains("refused the credentials (401 Unauthorized): they have expired"), "{e}");
}

#[tokio::test]
async fn an_expired_client_certificate_is_an_error_before_any_request() {
    use base64::Engine as _;
    let fake = Fake::start().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["auditor".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 6, 30);
    let cert = params.self_signed(&key).unwrap();
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let user =
        format!("    client-certificate-data: {}\n    client-key-data: {}", b64(cert.pem()), b64(key.serialize_pem()));
    let dir = scratch("expired");
    let e = connect(&connect_options(kubeconfig(&dir, &fake.url(), &user))).await.err().expect("expired");
    assert_eq!(e.kind, ErrorKind::Expired, "{e}");
    assert_eq!(
        e.message,
        "the client certificate of context `test` expired on 2021-06-30 00:00:00 UTC: the API server would refuse it \
         (401); renew it (your provider's get-credentials command, or a new certificate)"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_missing_context_or_kubeconfig_is_named() {
    let dir = scratch("context");
    let path = kubeconfig(&dir, "http://127.0.0.1:1", TOKEN_USER);
    let mut options = connect_options(path.clone());
    options.context = Some("prod".into());
    let e = connect(&options).await.err().expect("no such context");
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.message, format!("{} (contexts): no context `prod`; it has test, other", path.display()));
    let options = connect_options(dir.join("absent"));
    let e = connect(&options).await.err().expect("no file");
    assert!(e.message.starts_with(&dir.join("absent").display().to_string()), "{e}");
    let mut options = connect_options(path);
    options.qps = 0.0;
    assert_eq!(connect(&options).await.err().unwrap().message, "--kube-api-qps and --kube-api-burst must be positive");
}

#[tokio::test]
async fn requests_keep_to_the_rate_limit() {
    let fake = Fake::start().await;
    seed(&fake);
    let dir = scratch("rate");
    let mut options = connect_options(kubeconfig(&dir, &fake.url(), TOKEN_USER));
    options.qps = 20.0;
    options.burst = 4;
    let conn = connect(&options).await.unwrap();
    let read = ReadOptions { page_size: 100, ..ReadOptions::default() };
    snapshot::read(&conn, &read, &ProfileSet::builtin(), &Quiet).await.unwrap();
    let at: Vec<f64> = {
        let r = fake.requests();
        let start = r[0].at;
        r.iter().map(|x| x.at.duration_since(start).as_secs_f64()).collect()
    };
    assert!(at.len() > 20, "{} requests", at.len());
    for i in 0..at.len() {
        for j in i..at.len() {
            let n = (j - i + 1) as f64;
            // Arrival times are the server's: on a busy machine the
            // scheduler can hold requests back and let them arrive together.
            // 50 ms of slack is one request at 20/s; without the limit, all
            // of them arrive within a few milliseconds.
            assert!(n <= 4.0 + 20.0 * (at[j] - at[i] + 0.05), "{n} requests in {:.3} s", at[j] - at[i]);
        }
    }
}
