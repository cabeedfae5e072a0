//! HTTP: the review endpoint over TLS, and health, readiness and metrics
//! over plain HTTP on a port of their own.

use crate::admission;
use crate::review::{self, App};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Instant;

/// `POST /validate`, with the body limit.
pub fn review_router(app: Arc<App>, max_body: usize) -> Router {
    Router::new().route("/validate", post(validate)).layer(DefaultBodyLimit::max(max_body)).with_state(app)
}

/// `/healthz`, `/readyz`, `/metrics`.
pub fn ops_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.cluster.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "cluster cache not synced, or shutting down").into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let text = app.metrics.render(&app.cluster);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn validate(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            app.metrics.review(
                "",
                "",
                if status == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "bad_request" },
                0.0,
            );
            tracing::warn!(status = status.as_u16(), error = %rejection.body_text(), "review body refused");
            return (status, rejection.body_text()).into_response();
        }
    };
    let request = match admission::decode(&body) {
        Ok(r) => r,
        Err(e) => {
            app.metrics.review("", "", "bad_request", started.elapsed().as_secs_f64());
            tracing::warn!(error = %e, bytes = body.len(), "malformed review");
            return (StatusCode::BAD_REQUEST, e.0).into_response();
        }
    };
    let (uid, operation, dry_run) = (request.uid.clone(), request.operation.clone(), request.is_dry_run());
    let user = request.user_info.as_ref().map(|u| u.username.clone()).unwrap_or_default();
    match review::review(app.clone(), request).await {
        Ok(answer) => {
            let seconds = started.elapsed().as_secs_f64();
            app.metrics.review(&answer.kind, &operation, answer.decision, seconds);
            tracing::info!(
                uid = %uid,
                object = %answer.subject,
                operation = %operation,
                dry_run,
                user = %user,
                mode = app.mode.as_str(),
                decision = answer.decision,
                latency_ms = seconds * 1000.0,
                findings = ?answer.findings,
                "review"
            );
            json(StatusCode::OK, answer.response.encode())
        }
        Err(review::Internal(message)) => {
            app.metrics.review("", &operation, "error", started.elapsed().as_secs_f64());
            tracing::error!(uid = %uid, error = %message, "review failed");
            (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
        }
    }
}
