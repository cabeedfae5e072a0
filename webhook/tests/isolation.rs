//! Failure paths of a review, in process: a panic in the analysis, an
//! analysis that misses its deadline, reviews queued behind busy workers,
//! and the body limits. None takes the server down.

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

fn app(judge: Judge, deadline: Duration, workers: usize) -> Arc<App> {
    app_judging_inline(judge, deadline, workers, apiload_webhook::review::INLINE_PLAN_OBJECTS)
}

/// `inline_plan_objects` 0: every plan judged on the pool, whose deadline
/// the slow-analysis tests exercise.
fn app_judging_inline(judge: Judge, deadline: Duration, workers: usize, inline_plan_objects: usize) -> Arc<App> {
    let cluster = Arc::new(Cluster::new(false));
    cluster.set_ready(true);
    let analysis = Analysis::load(None, &[], None).unwrap();
    let mut app = App::new(Mode::Enforce, analysis, cluster, Arc::new(Metrics::new()), workers);
    app.deadline = deadline;
    app.judge = judge;
    app.inline_plan_objects = inline_plan_objects;
    Arc::new(app)
}

const LIMITS: server::BodyLimits = server::BodyLimits { max_request_bytes: 1 << 20, max_inflight_bytes: 1 << 24 };

fn body(name: &str) -> Vec<u8> {
    body_of(
        name,
        "ConfigMap",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}),
    )
}

fn body_of(name: &str, kind: &str, object: Value) -> Vec<u8> {
    let group = object["apiVersion"].as_str().unwrap().rsplit_once('/').map_or("", |(g, _)| g).to_string();
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{name}"), "operation": "CREATE", "namespace": "default", "name": name,
            "kind": {"group": group, "version": "v1", "kind": kind},
            "object": object
        }
    }))
    .unwrap()
}

async fn send(app: &Arc<App>, name: &str) -> (u16, String) {
    send_body(app, body(name)).await
}

async fn send_body(app: &Arc<App>, body: Vec<u8>) -> (u16, String) {
    let req = axum::http::Request::post("/validate").body(Body::from(body)).unwrap();
    let res = server::review_router(app.clone(), LIMITS).oneshot(req).await.unwrap();
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
    for workers in [1, 2] {
        let app = app(panics_on_boom, Duration::from_secs(2), workers);
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
    let app = app_judging_inline(slow, Duration::from_millis(50), 1, 0);
    let started = std::time::Instant::now();
    let (status, text) = send(&app, "slow").await;
    assert!(started.elapsed() < Duration::from_millis(350), "answered at the deadline, not after the analysis");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["response"]["allowed"], true);
    assert!(v["response"]["warnings"][0].as_str().unwrap().contains("did not finish within 50ms"), "{text}");
    assert!(app.metrics.render(&app.cluster).contains(r#"decision="deadline"} 1"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_queued_behind_busy_workers_meet_the_same_deadline() {
    // One worker, busy with a slow analysis: the next review waits for it no
    // longer than its own deadline, which counts from its arrival.
    let app = app_judging_inline(slow, Duration::from_millis(150), 1, 0);
    let first = {
        let app = app.clone();
        tokio::spawn(async move { send(&app, "first").await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = std::time::Instant::now();
    let (status, text) = send(&app, "second").await;
    assert!(started.elapsed() < Duration::from_millis(380), "waited for the busy worker: {:?}", started.elapsed());
    assert_eq!(status, 200);
    assert!(text.contains("did not finish within 150ms"), "{text}");
    let _ = first.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_or_the_budget_are_refused_before_they_are_read() {
    let app = app(judge, Duration::from_secs(2), 1);
    let send_sized = |declared: usize, limits: server::BodyLimits| {
        let app = app.clone();
        async move {
            let req = axum::http::Request::post("/validate")
                .header("content-length", declared.to_string())
                .body(Body::from(vec![b' '; 16]))
                .unwrap();
            server::review_router(app, limits).oneshot(req).await.unwrap().status().as_u16()
        }
    };
    assert_eq!(send_sized(2 << 20, LIMITS).await, 413);
    let tight = server::BodyLimits { max_request_bytes: 1 << 20, max_inflight_bytes: 1 << 10 };
    // The budget is at least one body: a body within the limit always fits an idle webhook.
    assert_ne!(send_sized(1 << 10, tight).await, 503);
    let metrics = app.metrics.render(&app.cluster);
    assert!(metrics.contains(r#"decision="too_large"} 1"#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_over_the_size_limit_is_allowed_at_once_with_a_warning() {
    let mut a = App::new(
        Mode::Enforce,
        Analysis::load(None, &[], None).unwrap(),
        Arc::new(Cluster::new(false)),
        Arc::new(Metrics::new()),
        1,
    );
    a.limits.max_object_bytes = 50;
    let (status, text) = send(&Arc::new(a), "large").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["response"]["allowed"], true);
    assert!(v["response"]["warnings"][0].as_str().unwrap().contains("over the 50-byte limit"), "{text}");
    let mut a = App::new(
        Mode::Enforce,
        Analysis::load(None, &[], None).unwrap(),
        Arc::new(Cluster::new(false)),
        Arc::new(Metrics::new()),
        1,
    );
    a.limits.max_object_fields = 3;
    let (_, text) = send(&Arc::new(a), "many").await;
    assert!(text.contains("more than 3 values"), "{text}");
}

/// Which thread judged each subject (tests run in parallel: keyed by name).
static JUDGED_ON: std::sync::Mutex<Vec<(String, std::thread::ThreadId)>> = std::sync::Mutex::new(Vec::new());

fn records_its_thread(app: &App, plan: Plan) -> Verdict {
    JUDGED_ON.lock().unwrap().push((plan.subject().name.to_string(), std::thread::current().id()));
    judge(app, plan)
}

fn judged_on(name: &str) -> std::thread::ThreadId {
    JUDGED_ON.lock().unwrap().iter().find(|(n, _)| n == name).map(|(_, t)| *t).expect(name)
}

// One runtime thread: the request's task runs on the test's own thread, so
// a judge on any other thread ran on the pool.
#[tokio::test(flavor = "current_thread")]
async fn small_plans_are_judged_on_the_requests_task_and_roles_bindings_and_large_plans_on_the_pool() {
    let here = std::thread::current().id();
    let inline = app(records_its_thread, Duration::from_secs(2), 1);
    assert_eq!(send(&inline, "inline-cm").await.0, 200);
    assert_eq!(judged_on("inline-cm"), here, "a one-object plan went to the pool");
    // A binding can concern every workload: the pool, whatever its plan.
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "inline-crb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]
    });
    assert_eq!(send_body(&inline, body_of("inline-crb", "ClusterRoleBinding", binding)).await.0, 200);
    assert_ne!(judged_on("inline-crb"), here, "a binding was judged on the request's task");
    // A plan over the threshold: the pool.
    let pooled = app_judging_inline(records_its_thread, Duration::from_secs(2), 1, 0);
    assert_eq!(send(&pooled, "pooled-cm").await.0, 200);
    assert_ne!(judged_on("pooled-cm"), here, "a plan over the threshold was judged on the request's task");
}
