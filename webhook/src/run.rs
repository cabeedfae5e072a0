//! Start-up and shutdown: configuration, certificate, cluster state, the two
//! servers, and a drain on SIGTERM.

use crate::cli::Args;
use crate::cluster::Cluster;
use crate::config::Analysis;
use crate::metrics::Metrics;
use crate::review::App;
use crate::{live, server, static_state, tls};
use std::sync::Arc;
use std::time::Duration;

/// How long an admitted object may wait for its watch event before the
/// state forgets it (live mode).
const ADMISSION_CONFIRM_WINDOW: Duration = Duration::from_secs(60);

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

    let config_maps = if live_mode {
        let client = live::client(args.kubeconfig.as_deref(), args.kube_api_qps, args.kube_api_burst).await?;
        live::start(client.clone(), cluster.clone(), metrics.clone());
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
        Some(live::ConfigMaps::new(client, args.configmap_cache_ttl))
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

    let app = Arc::new(App {
        mode: args.mode,
        analysis,
        cluster: cluster.clone(),
        metrics: metrics.clone(),
        config_maps,
        deadline: args.request_timeout,
        judge: crate::review::judge,
        inline_limit: 300,
    });

    tokio::spawn(tls::reload_loop(files, tls_config.clone(), fingerprint, args.cert_reload_interval, metrics.clone()));

    let ops = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.metrics_listen))?;
    let ops_addr = ops.local_addr().map_err(|e| e.to_string())?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let ops_server = axum::serve(ops, server::ops_router(app.clone())).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let ops_task = tokio::spawn(async move { ops_server.await });

    let handle = axum_server::Handle::new();
    let listening = handle.clone();
    tokio::spawn(async move {
        if let Some(addr) = listening.listening().await {
            tracing::info!(review = %addr, metrics = %ops_addr, mode = args.mode.as_str(), "listening");
        }
    });
    let draining = handle.clone();
    let grace = args.shutdown_grace;
    let drained_cluster = cluster.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(grace_seconds = grace.as_secs_f64(), "shutting down: not ready, finishing in-flight reviews");
        drained_cluster.start_draining();
        draining.graceful_shutdown(Some(grace));
    });

    let served = axum_server::bind_rustls(args.listen, tls_config)
        .handle(handle)
        .serve(server::review_router(app, args.max_request_bytes).into_make_service())
        .await;
    let _ = stop_tx.send(true);
    let _ = ops_task.await;
    served.map_err(|e| format!("cannot serve on {}: {e}", args.listen))?;
    tracing::info!("stopped");
    Ok(())
}

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
