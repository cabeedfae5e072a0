//! HTTP: the review endpoint over TLS, and health, readiness and metrics
//! over plain HTTP on a port of their own (connections: [`crate::serve`]).
//!
//! A body is bounded before it is read: over `--max-request-bytes` by its
//! declared length, 413 at once (HTTP/1 and HTTP/2 alike); while the bodies
//! in flight hold `--max-inflight-bytes`, 503; and it must arrive before the
//! review's deadline, which starts when the request does.

use crate::review::{self, App, Refused};
use crate::serve::RateLimitedLog;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The bounds on request bodies.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// One body (bigger ones get 413, before they are read).
    pub max_request_bytes: usize,
    /// All bodies being read or reviewed at once (past it: 503).
    pub max_inflight_bytes: usize,
}

/// What `/validate` shares: the app and the budget of body bytes in flight.
#[derive(Clone)]
struct Intake {
    app: Arc<App>,
    limits: BodyLimits,
    inflight: Arc<Semaphore>,
    overload_log: Arc<RateLimitedLog>,
}

/// `POST /validate`, with the body limits.
pub fn review_router(app: Arc<App>, limits: BodyLimits) -> Router {
    let budget = limits.max_inflight_bytes.max(limits.max_request_bytes).min(Semaphore::MAX_PERMITS);
    let intake = Intake {
        app,
        limits,
        inflight: Arc::new(Semaphore::new(budget)),
        overload_log: Arc::new(RateLimitedLog::new(Duration::from_secs(10))),
    };
    Router::new().route("/validate", post(validate)).with_state(intake)
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

/// An answer without an AdmissionReview: counted, logged, and the API
/// server applies the webhook's failurePolicy.
fn refuse(app: &App, status: StatusCode, decision: &str, started: Instant, message: String) -> Response {
    app.metrics.review("", "", decision, started.elapsed().as_secs_f64());
    (status, message).into_response()
}

async fn validate(State(intake): State<Intake>, request: Request) -> Response {
    let started = Instant::now();
    let app = &intake.app;
    let deadline = started + app.deadline;
    let max = intake.limits.max_request_bytes;
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        tracing::warn!(bytes = declared, limit = max, "review body refused: over --max-request-bytes");
        let message = format!("the body is over the webhook's limit of {max} bytes");
        return refuse(app, StatusCode::PAYLOAD_TOO_LARGE, "too_large", started, message);
    }
    // Memory for bodies in flight is bounded: reserve this body's share
    // before reading it (the limit, when the length is not declared).
    let reserve = declared.map_or(max, |n| n as usize).max(1);
    let Ok(_reserved) = intake.inflight.clone().try_acquire_many_owned(u32::try_from(reserve).unwrap_or(u32::MAX))
    else {
        if let Some(n) = intake.overload_log.hit() {
            tracing::warn!(
                bytes = reserve,
                budget = intake.limits.max_inflight_bytes,
                refused = n,
                "review refused: the bytes of the bodies in flight are at --max-inflight-bytes"
            );
        }
        let message = "the webhook is at its limit of request bytes in flight; try again".to_string();
        return refuse(app, StatusCode::SERVICE_UNAVAILABLE, "overloaded", started, message);
    };
    let body = Limited::new(request.into_body(), max).collect();
    let body = match tokio::time::timeout_at(deadline.into(), body).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            tracing::warn!(limit = max, "review body refused: over --max-request-bytes");
            let message = format!("the body is over the webhook's limit of {max} bytes");
            return refuse(app, StatusCode::PAYLOAD_TOO_LARGE, "too_large", started, message);
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "review body could not be read");
            return refuse(app, StatusCode::BAD_REQUEST, "bad_request", started, format!("cannot read the body: {e}"));
        }
        Err(_) => {
            tracing::warn!(
                deadline_ms = app.deadline.as_millis() as u64,
                "review body did not arrive before the deadline"
            );
            let message = "the body did not arrive before the review's deadline".to_string();
            return refuse(app, StatusCode::REQUEST_TIMEOUT, "body_timeout", started, message);
        }
    };
    let bytes = body.len();
    match review::review(app.clone(), body, deadline).await {
        Ok(answer) => {
            let seconds = started.elapsed().as_secs_f64();
            app.metrics.review(&answer.kind, &answer.operation, answer.decision, seconds);
            tracing::info!(
                uid = %answer.response.uid,
                object = %answer.subject,
                operation = %answer.operation,
                dry_run = answer.dry_run,
                user = %answer.user,
                mode = app.mode.as_str(),
                decision = answer.decision,
                latency_ms = seconds * 1000.0,
                queued_ms = answer.queued.as_secs_f64() * 1000.0,
                bytes,
                findings = ?answer.findings,
                "review"
            );
            json(StatusCode::OK, answer.response.encode())
        }
        Err(Refused::Malformed(e)) => {
            tracing::warn!(error = %e, bytes, "malformed review");
            refuse(app, StatusCode::BAD_REQUEST, "bad_request", started, e)
        }
        Err(Refused::Overloaded) => {
            if let Some(n) = intake.overload_log.hit() {
                tracing::warn!(
                    bytes,
                    refused = n,
                    "review refused: a large body waited past its deadline for a worker"
                );
            }
            let message = "the webhook could not take up this review before its deadline".to_string();
            refuse(app, StatusCode::SERVICE_UNAVAILABLE, "overloaded", started, message)
        }
        Err(Refused::Internal(message)) => {
            tracing::error!(error = %message, "review failed");
            refuse(app, StatusCode::INTERNAL_SERVER_ERROR, "error", started, message)
        }
    }
}
