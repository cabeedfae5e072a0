//! The webhook binary against hostile clients and inputs, over TLS on
//! loopback, each probe bounded in time: slow and idle connections, floods
//! of them, bodies in flight, HTTP/2 bodies over the limit, reviews whose
//! analysis is heavy, labels that try to opt an object out, a FIFO in the
//! cluster state, ReplicationControllers, and the drain after SIGTERM.

mod common;

use common::*;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Setup {
    dir: TempDir,
    pki: Pki,
    webhook: Webhook,
    client: HttpsClient,
}

fn start_with_state(state: &str, extra: &[&str]) -> Setup {
    let dir = TempDir::new("hostile");
    let pki = Pki::new();
    let mut args = tls_args(&dir, &pki);
    args.extend(["--cluster-state".to_string(), state.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let webhook = Webhook::start(&args);
    let client = https_client(&pki.ca_pem(), None, false);
    Setup { dir, pki, webhook, client }
}

fn start(extra: &[&str]) -> Setup {
    start_with_state(&testdata().join("webhook/state").display().to_string(), extra)
}

fn fixture(name: &str) -> Value {
    manifest(&std::fs::read_to_string(testdata().join("webhook").join(name)).unwrap())
}

/// A TLS connection to the review port that trusts the test CA.
async fn tls(s: &Setup) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(s.pki.ca_pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(s.webhook.review).await.unwrap();
    connector.connect("localhost".try_into().unwrap(), tcp).await.unwrap()
}

/// Reads until the peer closes; how long that took (`None`: not within `within`).
async fn closed_within<R: AsyncReadExt + Unpin>(r: &mut R, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(started.elapsed()), r.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn timeouts() -> Vec<&'static str> {
    vec!["--header-timeout", "1s", "--idle-timeout", "2s", "--tls-handshake-timeout", "1s"]
}

#[test]
fn slow_headers_silent_and_idle_connections_and_stalled_handshakes_are_closed() {
    let s = start(&timeouts());
    bounded(60, async {
        // Slowloris: headers begun, never finished.
        let mut slow = tls(&s).await;
        slow.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n").await.unwrap();
        let t = closed_within(&mut slow, Duration::from_secs(10)).await.expect("slow headers held open");
        assert!(t >= Duration::from_millis(900), "closed before the header timeout: {t:?}");
        // Connected, nothing sent.
        let mut silent = tls(&s).await;
        assert!(closed_within(&mut silent, Duration::from_secs(10)).await.is_some(), "silent connection held open");
        // A stalled TLS handshake.
        let mut raw = TcpStream::connect(s.webhook.review).await.unwrap();
        assert!(closed_within(&mut raw, Duration::from_secs(10)).await.is_some(), "stalled handshake held open");
        // Idle keep-alive after a request.
        let mut idle = tls(&s).await;
        idle.write_all(b"GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        let t = closed_within(&mut idle, Duration::from_secs(10)).await.expect("idle connection held open");
        assert!(t >= Duration::from_millis(1500), "closed before the idle timeout: {t:?}");
        let (_, metrics) = get(s.webhook.metrics, "/metrics").await.unwrap();
        assert!(metrics.contains(r#"event="header_timeout""#), "{metrics}");
        assert!(metrics.contains(r#"event="idle_timeout""#), "{metrics}");
        assert!(metrics.contains(r#"event="handshake_timeout""#), "{metrics}");
    });
}

#[test]
fn a_flood_of_slow_connections_leaves_reviews_and_probes_answerable() {
    let mut args = vec!["--max-connections", "20", "--max-ops-connections", "10", "--header-timeout", "60s"];
    args.extend(["--idle-timeout", "60s", "--tls-handshake-timeout", "60s"]);
    let s = start(&args);
    bounded(90, async {
        // Twice as many slow clients as the webhook takes, on both ports.
        let mut held = Vec::new();
        for _ in 0..40 {
            let mut c = tls(&s).await;
            c.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
            held.push(c);
        }
        let mut ops_held = Vec::new();
        for _ in 0..20 {
            let mut c = TcpStream::connect(s.webhook.metrics).await.unwrap();
            c.write_all(b"GET /readyz HTTP/1.1\r\n").await.unwrap();
            ops_held.push(c);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A review and the probes still get through: each takes the place
        // of the slow connection that waited longest.
        let body = review("uid-flood", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false);
        let r = post(&s.client, s.webhook.review, "/validate", body).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.response()["uid"], "uid-flood");
        assert_eq!(get(s.webhook.metrics, "/readyz").await.unwrap().0, 200);
        assert_eq!(get(s.webhook.metrics, "/healthz").await.unwrap().0, 200);
        let (_, metrics) = get(s.webhook.metrics, "/metrics").await.unwrap();
        assert!(metrics.contains(r#"apiload_connections_total{listener="review",event="evicted"}"#), "{metrics}");
        drop(held);
        drop(ops_held);
    });
}

#[cfg(unix)]
#[test]
fn with_few_file_descriptors_idle_connections_never_lock_reviews_and_probes_out() {
    // The issue's case: with 128 open files, 116 idle connections made
    // /validate and /readyz unreachable. The limits now fit the open files.
    let dir = TempDir::new("nofile");
    let pki = Pki::new();
    let mut args = tls_args(&dir, &pki);
    args.extend(["--cluster-state".into(), testdata().join("webhook/state").display().to_string()]);
    args.extend(
        ["--idle-timeout", "60s", "--header-timeout", "60s", "--tls-handshake-timeout", "60s"].map(String::from),
    );
    let webhook = Webhook::start_with_open_files(&args, Some(128));
    webhook.wait_for_log("connection limits cut to fit the open-files limit", Duration::from_secs(5));
    let s = Setup { dir, client: https_client(&pki.ca_pem(), None, false), pki, webhook };
    bounded(90, async {
        let mut held = Vec::new();
        for _ in 0..150 {
            match TcpStream::connect(s.webhook.review).await {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
        for _ in 0..40 {
            if let Ok(c) = TcpStream::connect(s.webhook.metrics).await {
                held.push(c);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body = review("uid-nofile", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false);
        let r = post(&s.client, s.webhook.review, "/validate", body).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(get(s.webhook.metrics, "/readyz").await.unwrap().0, 200);
        drop(held);
    });
}

#[test]
fn bodies_in_flight_are_bounded_and_the_rest_get_503() {
    let s = start(&["--max-request-bytes", "524288", "--max-inflight-bytes", "1048576", "--header-timeout", "60s"]);
    bounded(60, async {
        // Two bodies of 512 KiB announced and begun, never finished: the budget is spent.
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = tls(&s).await;
            c.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 524288\r\n\r\n{")
                .await
                .unwrap();
            held.push(c);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body = review("uid-budget", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false);
        let mut padded = body.clone();
        padded.resize(400_000, b' ');
        let r = post(&s.client, s.webhook.review, "/validate", padded).await.unwrap();
        assert_eq!(r.status, 503, "{}", r.text());
        // Bodies that never arrive are cut at the review's deadline (2 s), and the budget comes back.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let r = post(&s.client, s.webhook.review, "/validate", body).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let (_, metrics) = get(s.webhook.metrics, "/metrics").await.unwrap();
        assert!(metrics.contains(r#"decision="overloaded"} 1"#), "{metrics}");
        assert!(metrics.contains(r#"decision="body_timeout"} 2"#), "{metrics}");
        drop(held);
    });
}

#[test]
fn an_oversized_body_over_http2_gets_413_as_over_http1() {
    let s = start(&["--max-request-bytes", "65536"]);
    bounded(60, async {
        let h2 = https_client(&s.pki.ca_pem(), None, true);
        let mut big = fixture("reviews/collector-daemonset.yaml");
        big["metadata"]["annotations"] = json!({"padding": "x".repeat(200_000)});
        let r = post(&h2, s.webhook.review, "/validate", review("uid-big", "CREATE", &big, None, false)).await.unwrap();
        assert_eq!((r.status, r.version), (413, hyper::Version::HTTP_2), "{}", r.text());
        // The same over HTTP/1.1 (ALPN offers none, so the server speaks HTTP/1).
        let mut h1 = tls(&s).await;
        h1.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 200000\r\n\r\n{").await.unwrap();
        let mut buf = [0u8; 256];
        let n = h1.read(&mut buf).await.unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        // And the connection serves the next review.
        let ok = review("uid-next", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false);
        assert_eq!(post(&h2, s.webhook.review, "/validate", ok).await.unwrap().status, 200);
    });
}

/// A DaemonSet with `n` environment variables (about 30 bytes of JSON each).
fn env_heavy(name: &str, n: usize) -> Value {
    let env: Vec<Value> = (0..n).map(|i| json!({"name": format!("VAR_{i:06}"), "value": format!("v{i}")})).collect();
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "monitoring"},
           "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
           "spec": {"serviceAccountName": "collector", "containers": [{"name": "c", "image": "busybox", "env": env}]}}}})
}

#[test]
fn heavy_reviews_never_hold_small_reviews_or_health_past_the_deadline() {
    // The issue's case: four reviews of DaemonSets with 45,000 variables at
    // once held an unrelated review for 4.4 s and /healthz for 6.9 s.
    let s = start(&["--request-timeout", "2s", "--analysis-workers", "2"]);
    bounded(120, async {
        // As the API server writes it: `request.uid` first.
        let heavy = format!(
            r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":"uid-heavy","kind":{{"group":"apps","version":"v1","kind":"DaemonSet"}},"name":"heavy","namespace":"monitoring","operation":"CREATE","userInfo":{{"username":"admin"}},"object":{}}}}}"#,
            env_heavy("heavy", 45_000)
        )
        .into_bytes();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (client, addr, body) = (s.client.clone(), s.webhook.review, heavy.clone());
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let r = post(&client, addr, "/validate", body).await.unwrap();
                (r, started.elapsed())
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let small = review("uid-small", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false);
        let r = post(&s.client, s.webhook.review, "/validate", small).await.unwrap();
        let small_took = started.elapsed();
        assert_eq!(r.status, 200);
        let response = r.response();
        assert!(
            response["warnings"]
                .as_array()
                .is_none_or(|w| w.iter().all(|w| !w.as_str().unwrap().contains("did not finish"))),
            "the small review was judged, not cut by the deadline: {response}"
        );
        assert!(small_took < Duration::from_secs(2), "the small review waited {small_took:?}");
        let started = Instant::now();
        assert_eq!(get(s.webhook.metrics, "/healthz").await.unwrap().0, 200);
        assert!(started.elapsed() < Duration::from_secs(2), "/healthz took {:?}", started.elapsed());
        for t in tasks {
            let (r, took) = t.await.unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.response()["uid"], "uid-heavy");
            // Answered by the deadline (judged, or allowed with a warning), plus the body's transfer.
            assert!(took < Duration::from_secs(4), "a heavy review took {took:?}");
        }
        // The log's latency includes the queueing.
        let logs = s.webhook.logs();
        let line = logs.iter().find(|l| l.contains("uid-heavy") && l.contains("queued_ms")).expect("a review log line");
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["latency_ms"].as_f64().unwrap() >= v["queued_ms"].as_f64().unwrap(), "{line}");
    });
}

#[test]
fn an_object_over_the_size_limit_is_allowed_at_once_with_a_warning() {
    let s = start(&["--max-object-bytes", "100000"]);
    bounded(60, async {
        let r = post(
            &s.client,
            s.webhook.review,
            "/validate",
            review("uid-xl", "CREATE", &env_heavy("xl", 10_000), None, false),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let response = r.response();
        assert_eq!(response["allowed"], true);
        assert!(response["warnings"][0].as_str().unwrap().contains("--max-object-bytes"), "{response}");
    });
}

#[test]
fn labels_on_the_object_never_exempt_it() {
    // The chart's old opt-out label, on the object: the webhook still judges it.
    let s = start(&["--mode", "enforce"]);
    bounded(60, async {
        let mut risky = fixture("reviews/collector-daemonset.yaml");
        risky["metadata"]["labels"] = json!({"apiload.dev/webhook": "disabled"});
        risky["metadata"]["annotations"] = json!({"apiload.dev/exempt": "*", "apiload.dev/exempt-reason": "mine"});
        let r = post(&s.client, s.webhook.review, "/validate", review("uid-label", "CREATE", &risky, None, false))
            .await
            .unwrap();
        assert_eq!(r.response()["allowed"], false, "{}", r.text());
    });
}

#[test]
fn a_replication_controller_with_500_replicas_is_judged() {
    let s = start(&["--mode", "enforce"]);
    bounded(60, async {
        let rc = json!({"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "legacy", "namespace": "monitoring"},
            "spec": {"replicas": 500, "selector": {"app": "legacy"}, "template": {"metadata": {"labels": {"app": "legacy"}},
              "spec": {"serviceAccountName": "collector", "containers": [{"name": "c", "image": "registry.example.com/in-house/collector:2.3"}]}}}});
        let r =
            post(&s.client, s.webhook.review, "/validate", review("uid-rc", "CREATE", &rc, None, false)).await.unwrap();
        let response = r.response();
        assert_eq!(response["allowed"], false, "{response}");
        assert!(response["status"]["message"].as_str().unwrap().contains("ReplicationController monitoring/legacy"));
    });
}

#[cfg(unix)]
#[test]
fn a_fifo_in_the_cluster_state_does_not_stop_the_start() {
    let state = TempDir::new("fifo-state");
    for f in ["rbac.yaml", "workloads.yaml", "otel-config.yaml"] {
        std::fs::copy(testdata().join("webhook/state").join(f), state.path().join(f)).unwrap();
    }
    assert!(std::process::Command::new("mkfifo").arg(state.path().join("pipe.yaml")).status().unwrap().success());
    // Webhook::start waits for "listening" (30 s at most): a start blocked on the FIFO fails it.
    let s = start_with_state(&state.path().display().to_string(), &["--mode", "enforce"]);
    s.webhook.wait_for_log("pipe.yaml: a FIFO, not a regular file", Duration::from_secs(5));
    bounded(60, async {
        let body = review("uid-fifo", "CREATE", &fixture("reviews/collector-daemonset.yaml"), None, false);
        let r = post(&s.client, s.webhook.review, "/validate", body).await.unwrap();
        assert_eq!(r.response()["allowed"], false, "the state was loaded: {}", r.text());
    });
    drop(s.dir);
}

#[test]
fn after_sigterm_it_keeps_serving_for_the_shutdown_delay_then_drains() {
    let mut s = start(&["--shutdown-delay", "2s", "--shutdown-grace", "5s"]);
    let addr: SocketAddr = s.webhook.review;
    bounded(60, async {
        s.webhook.sigterm();
        s.webhook.wait_for_log("shutting down", Duration::from_secs(5));
        assert_eq!(get(s.webhook.metrics, "/readyz").await.unwrap().0, 503, "not ready at once");
        // New connections are still served during the delay (the endpoint is
        // being removed from the Service; the API server may still call it).
        let fresh = https_client(&s.pki.ca_pem(), None, false);
        let body = review("uid-late", "CREATE", &fixture("reviews/node-agent-daemonset.yaml"), None, false);
        let r = post(&fresh, addr, "/validate", body).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.response()["uid"], "uid-late");
    });
    let status = s.webhook.wait(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    s.webhook.wait_for_log("stopped", Duration::from_secs(1));
}
