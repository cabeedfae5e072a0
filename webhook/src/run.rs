//! Start-up and shutdown: configuration, certificate, cluster state, the two
//! servers, and a drain on SIGTERM.

use crate::cli::Args;
use crate::cluster::Cluster;
use crate::config::Analysis;
use crate::metrics::Metrics;
use crate::review::{App, ReviewLimits};
use crate::serve::{self, ConnLimits};
use crate::server::{self, BodyLimits};
use crate::{audit, live, static_state, tls};
use std::sync::Arc;
use std::time::Duration;

/// How long an admitted object may wait for its watch event before the
/// state forgets it (live mode).
const ADMISSION_CONFIRM_WINDOW: Duration = Duration::from_secs(60);

/// The shortest `--audit-interval`: one run a second would be a load of
/// its own (tests use a few seconds).
const MIN_AUDIT_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(args: Args) -> Result<(), String> {
    // One crypto provider for the process: ring, as kube uses.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let analysis = Analysis::load(args.config.as_deref(), &args.profiles, args.nodes).map_err(|e| e.join("\n"))?;
    let files = tls::TlsFiles {
        cert: args.tls_cert_file.clone(),
        key: args.tls_private_key_file.clone(),
        client_ca: args.client_ca_file.clone(),
    };
    let (tls_config, fingerprint) = tls::load(&files)?;
    let metrics = Arc::new(Metrics::new());
    let live_mode = args.cluster_state.is_empty();
    let cluster = Arc::new(Cluster::new(live_mode));

    if args.audit_interval.is_some() && !live_mode {
        return Err("--audit-interval needs live mode: the scheduled audit writes PolicyReports to the API server, \
                    and --cluster-state has none"
            .into());
    }
    if args.audit_interval.is_some_and(|i| i < MIN_AUDIT_INTERVAL) {
        return Err(format!(
            "--audit-interval must be at least {} s: each run reads ConfigMaps and writes reports",
            MIN_AUDIT_INTERVAL.as_secs()
        ));
    }
    let mut audit_connection = None;
    let config_maps = if live_mode {
        let clients = live::clients(args.kubeconfig.as_deref(), args.kube_api_qps, args.kube_api_burst).await?;
        live::start(clients.cache, cluster.clone(), metrics.clone());
        audit_connection = Some(clients.cache_connection);
        let sweeper = cluster.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            loop {
                every.tick().await;
                let n = sweeper.expire_admissions(ADMISSION_CONFIRM_WINDOW);
                if n > 0 {
                    tracing::info!(objects = n, "admitted objects never seen by a watch were forgotten");
                }
            }
        });
        Some(live::ConfigMaps::new(clients.reads, args.configmap_cache_ttl))
    } else {
        let loaded = static_state::load(&args.cluster_state, &cluster);
        for p in &loaded.problems {
            tracing::warn!(problem = %p, "cluster state input");
        }
        tracing::info!(
            objects = loaded.objects,
            kept = loaded.kept,
            nodes = loaded.nodes,
            "static cluster state loaded"
        );
        cluster.set_ready(true);
        None
    };

    // At least two by default, so that a large review never holds the only
    // worker (a pod limited to one CPU still runs two threads).
    let workers = args
        .analysis_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()).max(2))
        .clamp(1, 64);
    let mut app = App::new(args.mode, analysis, cluster.clone(), metrics.clone(), workers);
    app.config_maps = config_maps;
    app.deadline = args.request_timeout;
    app.limits = ReviewLimits { max_object_bytes: args.max_object_bytes, max_object_fields: args.max_object_fields };
    let app = Arc::new(app);
    if let (Some(interval), Some(conn)) = (args.audit_interval, audit_connection) {
        tracing::info!(interval_seconds = interval.as_secs_f64(), "scheduled audit on: PolicyReports kept up to date");
        audit::start(Arc::new(audit::Auditor::new(app.clone(), conn)), interval);
    }

    tokio::spawn(tls::reload_loop(files, tls_config.clone(), fingerprint, args.cert_reload_interval, metrics.clone()));

    // Connections: each costs a file descriptor, so the limits fit the
    // process's open-files limit (raised to its hard limit first).
    let (mut max_review, mut max_ops) = (args.max_connections.max(1), args.max_ops_connections.max(1));
    if let Some(budget) = serve::file_descriptor_budget()
        && max_review + max_ops > budget
    {
        max_ops = max_ops.min(budget / 8).max(1);
        max_review = budget.saturating_sub(max_ops).max(1);
        tracing::warn!(
            open_files = budget,
            max_connections = max_review,
            max_ops_connections = max_ops,
            "connection limits cut to fit the open-files limit"
        );
    }
    let limits = |max_connections| ConnLimits {
        max_connections,
        handshake_timeout: args.tls_handshake_timeout,
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_header_bytes: MAX_HEADER_BYTES,
        max_streams: MAX_STREAMS,
    };
    let review_tcp = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let ops_tcp = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.metrics_listen))?;
    let review_addr = review_tcp.local_addr().map_err(|e| e.to_string())?;
    let ops_addr = ops_tcp.local_addr().map_err(|e| e.to_string())?;
    let body_limits =
        BodyLimits { max_request_bytes: args.max_request_bytes, max_inflight_bytes: args.max_inflight_bytes };
    let review = serve::Listener {
        name: "review",
        tcp: review_tcp,
        tls: Some(tls_config),
        router: server::review_router(app.clone(), body_limits),
        limits: limits(max_review),
        metrics: metrics.clone(),
    };
    let ops = serve::Listener {
        name: "ops",
        tcp: ops_tcp,
        tls: None,
        router: server::ops_router(app.clone()),
        limits: limits(max_ops),
        metrics: metrics.clone(),
    };
    // The ops port outlives the review port's drain, so that probes keep
    // their answers (not ready, alive) until the end.
    let (drain_review, review_drained) = tokio::sync::watch::channel(false);
    let (drain_ops, ops_drained) = tokio::sync::watch::channel(false);
    let grace = args.shutdown_grace;
    let ops_task = tokio::spawn(serve::serve(ops, ops_drained, Duration::from_secs(1)));
    let review_task = tokio::spawn(serve::serve(review, review_drained, grace));
    tracing::info!(review = %review_addr, metrics = %ops_addr, mode = args.mode.as_str(), workers,
        max_connections = max_review, "listening");

    shutdown_signal().await;
    // Drain order: not ready at once (the endpoint is taken out of the
    // Service), still serving for --shutdown-delay (reviews already routed
    // here keep arriving), then no new connections, in-flight reviews finish
    // within --shutdown-grace, and the health port last.
    tracing::info!(
        delay_seconds = args.shutdown_delay.as_secs_f64(),
        grace_seconds = grace.as_secs_f64(),
        "shutting down: not ready; serving until the delay is over, then finishing in-flight reviews"
    );
    cluster.start_draining();
    tokio::time::sleep(args.shutdown_delay).await;
    let _ = drain_review.send(true);
    let _ = review_task.await;
    let _ = drain_ops.send(true);
    let _ = ops_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Largest request head, HTTP/1 and HTTP/2 alike (an AdmissionReview's
/// headers are a few hundred bytes).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Concurrent HTTP/2 streams per connection: the API server opens another
/// connection past it.
const MAX_STREAMS: u32 = 100;

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
