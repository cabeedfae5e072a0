//! Failure paths of a review, in process: a panic in the analysis and an
//! analysis that misses its deadline. Neither takes the server down.

use apiload_rules::review::{Plan, Verdict};
use apiload_webhook::cluster::Cluster;
use apiload_webhook::config::Analysis;
use apiload_webhook::decide::Mode;
use apiload_webhook::metrics::Metrics;
use apiload_webhook::review::{App, Judge, judge};
use apiload_webhook::server;
use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

fn app(judge: Judge, deadline: Duration, inline_limit: usize) -> Arc<App> {
    let cluster = Arc::new(Cluster::new(false));
    cluster.set_ready(true);
    Arc::new(App {
        mode: Mode::Enforce,
        analysis: Analysis::load(None, &[], None).unwrap(),
        cluster,
        metrics: Arc::new(Metrics::new()),
        config_maps: None,
        deadline,
        judge,
        inline_limit,
    })
}

fn body(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{name}"), "operation": "CREATE", "namespace": "default", "name": name,
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}
        }
    }))
    .unwrap()
}

async fn send(app: &Arc<App>, name: &str) -> (u16, String) {
    let req = axum::http::Request::post("/validate").body(Body::from(body(name))).unwrap();
    let res = server::review_router(app.clone(), 1 << 20).oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).to_string())
}

fn panics_on_boom(app: &App, plan: Plan) -> Verdict {
    if plan.subject().name == "boom" {
        panic!("an engine bug");
    }
    judge(app, plan)
}

fn slow(app: &App, plan: Plan) -> Verdict {
    std::thread::sleep(Duration::from_millis(400));
    judge(app, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_analysis_is_a_500_and_the_next_review_is_answered() {
    // Small plans are judged on the request's task, large ones on the blocking pool.
    for inline_limit in [usize::MAX, 0] {
        let app = app(panics_on_boom, Duration::from_secs(2), inline_limit);
        let (status, text) = send(&app, "boom").await;
        assert_eq!(status, 500);
        assert!(text.contains("failed"), "{text}");
        let (status, text) = send(&app, "fine").await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["response"]["allowed"], true);
        let metrics = app.metrics.render(&app.cluster);
        assert!(metrics.contains(r#"decision="error"} 1"#), "{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_that_misses_its_deadline_is_allowed_with_a_warning() {
    let app = app(slow, Duration::from_millis(50), 0);
    let started = std::time::Instant::now();
    let (status, text) = send(&app, "slow").await;
    assert!(started.elapsed() < Duration::from_millis(350), "answered at the deadline, not after the analysis");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["response"]["allowed"], true);
    assert!(v["response"]["warnings"][0].as_str().unwrap().contains("did not finish within 50ms"), "{text}");
    assert!(app.metrics.render(&app.cluster).contains(r#"decision="deadline"} 1"#));
}
