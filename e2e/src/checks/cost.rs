//! The cost model measured: N Nodes and M Pods assigned to them (no kubelet
//! runs them), then, as a DaemonSet of K = N copies would, K simultaneous
//! LISTs of every pod and K cluster-wide watches, against K LISTs and K
//! watches scoped to each copy's node (`spec.nodeName`). What the API
//! server sent is read from its own metrics and set beside what
//! `apiload estimate` says for the same N, M and K
//! (e2e/fixtures/cost/agents.yaml). docs/cost-model.md has the table.

use crate::checks::chart::ensure_namespace;
use crate::metrics::{self, Sample};
use crate::{Result, Suite, ensure};
use futures::io::AsyncBufReadExt;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// (nodes, pods): 30 pods a node, as the model's default cluster.
pub const SIZES: &[(usize, usize)] = &[(20, 600), (50, 1500), (100, 3000)];
const NAMESPACE: &str = "e2e-cost";

fn node(i: usize) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": format!("node-{i:04}"), "labels": {
            "kubernetes.io/hostname": format!("node-{i:04}"), "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "m6i.2xlarge", "topology.kubernetes.io/zone": format!("zone-{}", i % 3),
        }},
        "spec": {"podCIDR": format!("10.{}.{}.0/24", 100 + i / 250, i % 250)},
    }))
    .expect("a Node")
}

/// A pod shaped like a typical application pod: two containers with ports,
/// env, probes, resources and mounts; the ServiceAccount admission plugin
/// adds its token volume.
/// The node pod `i` is bound to: spread over the nodes of the size at which
/// it was created.
fn node_of(i: usize) -> usize {
    let nodes = SIZES.iter().find(|(_, pods)| i < *pods).map_or(1, |(n, _)| *n);
    i % nodes
}

fn pod(i: usize) -> Pod {
    let app = format!("app-{}", i % 40);
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("pod-{i:05}"), "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": format!("{app}-prod"), "pod-template-hash": "7d9f8c6b5", "team": "payments"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "kubectl.kubernetes.io/default-container": "app"},
        },
        "spec": {
            "nodeName": format!("node-{:04}", node_of(i)),
            "containers": [
                {
                    "name": "app", "image": format!("registry.example.com/payments/{app}:1.42.{}", i % 7),
                    "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                    "env": [
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
                    ],
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
                },
                {
                    "name": "proxy", "image": "registry.example.com/mesh/proxy:1.20.3",
                    "args": ["proxy", "sidecar", "--log-level=warn"],
                    "ports": [{"name": "proxy", "containerPort": 15001}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                },
            ],
            "volumes": [{"name": "config", "configMap": {"name": format!("{app}-config")}}],
        },
    }))
    .expect("a Pod")
}

/// A request retried twice when its connection breaks (a pooled
/// connection the server closed): the measurement is of the server, not of
/// one connection.
async fn retry<T, F, Fut>(what: &str, f: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = kube::Result<T>>,
{
    let mut tries = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(kube::Error::Api(e)) => return Err(format!("{what}: {e}")),
            Err(e) if tries < 2 => {
                tries += 1;
                eprintln!("e2e:      {what}: {e}; again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}

/// The API server's metrics now.
async fn scrape(client: &kube::Client) -> Result<Vec<Sample>> {
    let text = retry("/metrics", || {
        let req = http::Request::get("/metrics").body(Vec::new()).expect("a GET");
        client.request_text(req)
    })
    .await?;
    Ok(metrics::parse(&text))
}

/// Reads a response to its end without keeping it: (bytes, lines).
async fn drain(client: &kube::Client, uri: String, deadline: Duration) -> Result<(u64, u64)> {
    let req = http::Request::get(&uri).body(Vec::new()).map_err(|e| e.to_string())?;
    let run = async {
        let mut body = client.request_stream(req).await.map_err(|e| format!("{uri}: {e}"))?;
        let (mut bytes, mut lines) = (0u64, 0u64);
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            buf.clear();
            let n = body.read_until(b'\n', &mut buf).await.map_err(|e| format!("{uri}: {e}"))?;
            if n == 0 {
                return Ok((bytes, lines));
            }
            bytes += n as u64;
            lines += 1;
        }
    };
    tokio::time::timeout(deadline, run).await.map_err(|_| format!("{uri}: not done in {deadline:?}"))?
}

async fn grow(s: &Suite, nodes: usize, pods: usize, have: &mut (usize, usize)) -> Result<()> {
    let node_api: Api<Node> = Api::all(s.admin.clone());
    let pod_api: Api<Pod> = Api::namespaced(s.admin.clone(), NAMESPACE);
    let pp = PostParams::default();
    futures::stream::iter(have.0..nodes)
        .map(|i| {
            let api = node_api.clone();
            let pp = pp.clone();
            async move { api.create(&pp, &node(i)).await.map(|_| ()).map_err(|e| format!("node {i}: {e}")) }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    futures::stream::iter(have.1..pods)
        .map(|i| {
            let api = pod_api.clone();
            let pp = pp.clone();
            async move { api.create(&pp, &pod(i)).await.map(|_| ()).map_err(|e| format!("pod {i}: {e}")) }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    *have = (nodes, pods);
    Ok(())
}

/// What one phase cost the API server, from its metrics.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct Measured {
    bytes: f64,
    requests: f64,
    mean_seconds: f64,
    watch_events: f64,
    watch_event_bytes: f64,
    client_bytes: u64,
    client_lines: u64,
    wall_seconds: f64,
    peak_rss_growth_bytes: f64,
    /// Watchers the server closed before they had every change.
    watchers_closed: usize,
}

/// K simultaneous LISTs of pods (from the watch cache, as informers ask),
/// cluster-wide or one per node.
async fn lists(s: &Suite, k: usize, node_scoped: bool) -> Result<Measured> {
    let before = scrape(&s.admin).await?;
    let rss0 = metrics::sum(&before, "process_resident_memory_bytes", &[]);
    let peak = Arc::new(AtomicU64::new(rss0 as u64));
    let sampling = {
        let (client, peak) = (s.cp.admin().await?, peak.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(m) = scrape(&client).await {
                    peak.fetch_max(metrics::sum(&m, "process_resident_memory_bytes", &[]) as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let t = Instant::now();
    let results: Vec<Result<(u64, u64)>> = futures::future::join_all((0..k).map(|i| {
        let uri = if node_scoped {
            format!("/api/v1/pods?resourceVersion=0&fieldSelector=spec.nodeName%3Dnode-{i:04}")
        } else {
            "/api/v1/pods?resourceVersion=0".to_string()
        };
        drain(&s.admin, uri, Duration::from_secs(300))
    }))
    .await;
    let wall = t.elapsed().as_secs_f64();
    sampling.abort();
    let after = scrape(&s.admin).await?;
    let mut m = Measured { wall_seconds: wall, ..Default::default() };
    for r in results {
        let (b, l) = r?;
        m.client_bytes += b;
        m.client_lines += l;
    }
    let f = [("verb", "LIST"), ("resource", "pods")];
    m.bytes = metrics::delta(&before, &after, "apiserver_response_sizes_sum", &f);
    m.requests = metrics::delta(&before, &after, "apiserver_response_sizes_count", &f);
    let secs = metrics::delta(&before, &after, "apiserver_request_duration_seconds_sum", &f);
    let n = metrics::delta(&before, &after, "apiserver_request_duration_seconds_count", &f);
    m.mean_seconds = if n > 0.0 { secs / n } else { 0.0 };
    m.peak_rss_growth_bytes = (peak.load(Ordering::Relaxed) as f64 - rss0).max(0.0);
    Ok(m)
}

/// K watches of pods (cluster-wide or one per node) from now on, then one
/// change to every pod; counts what the watchers were sent.
async fn watches(s: &Suite, k: usize, pods: usize, nodes: usize, node_scoped: bool, round: usize) -> Result<Measured> {
    let pod_api: Api<Pod> = Api::namespaced(s.admin.clone(), NAMESPACE);
    let one = ListParams::default().limit(1);
    let rv = retry("the pods' resourceVersion", || pod_api.list_metadata(&one))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    // Pods are spread over the nodes there were when they were created.
    let mut on_node = vec![0u64; nodes.max(1)];
    for i in 0..pods {
        on_node[node_of(i) % nodes.max(1)] += 1;
    }
    let received = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..k {
        let selector =
            if node_scoped { format!("&fieldSelector=spec.nodeName%3Dnode-{:04}", i % nodes) } else { String::new() };
        let uri = format!("/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=240{selector}");
        let per_watcher = if node_scoped { on_node[i % nodes] } else { pods as u64 };
        let (client, received, bytes) = (s.admin.clone(), received.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let req = http::Request::get(&uri).body(Vec::new()).map_err(|e| e.to_string())?;
            let mut body = client.request_stream(req).await.map_err(|e| format!("{uri}: {e}"))?;
            let mut buf = Vec::with_capacity(16 * 1024);
            let mut mine = 0;
            while mine < per_watcher {
                buf.clear();
                // The watch cache closes a watcher that falls behind
                // ("Forcing ... watcher close due to unresponsiveness"):
                // an outcome to report, not a broken check.
                let n = body.read_until(b'\n', &mut buf).await.unwrap_or(0);
                if n == 0 {
                    return Ok(false);
                }
                mine += 1;
                received.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok::<bool, String>(true)
        }));
    }
    // Let every watch register before the changes start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = scrape(&s.admin).await?;
    let t = Instant::now();
    futures::stream::iter(0..pods)
        .map(|i| {
            let api = pod_api.clone();
            async move {
                let patch = json!({"metadata": {"annotations": {"e2e.apiload.dev/round": round.to_string()}}});
                api.patch(&format!("pod-{i:05}"), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("pod {i}: {e}"))
            }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await?;
    let mut closed = 0;
    for t in tasks {
        let complete = tokio::time::timeout(Duration::from_secs(240), t)
            .await
            .map_err(|_| "the watchers did not receive every change in 240 s".to_string())?
            .map_err(|e| e.to_string())??;
        closed += usize::from(!complete);
    }
    let wall = t.elapsed().as_secs_f64();
    let after = scrape(&s.admin).await?;
    // v1.34 labels watch metrics by resource (earlier releases by kind).
    let f = [("group", ""), ("resource", "pods")];
    Ok(Measured {
        watch_events: metrics::delta(&before, &after, "apiserver_watch_events_total", &f),
        watch_event_bytes: metrics::delta(&before, &after, "apiserver_watch_events_sizes_sum", &f),
        client_bytes: bytes.load(Ordering::Relaxed),
        client_lines: received.load(Ordering::Relaxed),
        wall_seconds: wall,
        watchers_closed: closed,
        ..Default::default()
    })
}

/// `apiload estimate --format json` for the two agents at this size, with
/// every pod changing once a second so that events per second are the
/// events of one round of changes.
async fn estimate(s: &Suite, nodes: usize, pods: usize) -> Result<Value> {
    let dir = s.work("cost");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let profile = dir.join(format!("cluster-{nodes}.yaml"));
    let text = format!("nodes: {nodes}\npodsPerNode: {}\nresources:\n  pods: {{churnPerHour: 3600}}\n", pods / nodes);
    std::fs::write(&profile, text).map_err(|e| e.to_string())?;
    let agents = s.args.repo.join("e2e/fixtures/cost/agents.yaml");
    let out = tokio::process::Command::new(s.args.apiload_bin.join("apiload"))
        .args(["estimate", "--format", "json", "--no-config", "--cluster-profile"])
        .arg(&profile)
        .arg(&agents)
        .output()
        .await
        .map_err(|e| format!("apiload estimate: {e}"))?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "apiload estimate: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn modelled(estimate: &Value, workload: &str) -> Result<(f64, f64, f64, f64)> {
    let w = estimate["workloads"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["name"] == workload))
        .ok_or_else(|| format!("apiload estimate has no {workload}: {estimate}"))?;
    let pods = w["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["resource"] == "pods"))
        .ok_or_else(|| format!("apiload estimate: {workload} has no pods call"))?;
    let copies = pods["copies"].as_f64().unwrap_or(0.0);
    let per_copy = pods["objects_per_copy"].as_f64().unwrap_or(0.0);
    let list = pods["initial_list_bytes"].as_f64().unwrap_or(0.0);
    let events = pods["watch_events_per_second"].as_f64().unwrap_or(0.0);
    Ok((copies, per_copy, list, events))
}

fn ratio(measured: f64, modelled: f64) -> f64 {
    if modelled > 0.0 { measured / modelled } else { f64::INFINITY }
}

pub async fn measured_against_the_model(s: &mut Suite) -> Result<()> {
    ensure_namespace(s, NAMESPACE).await?;
    // The ServiceAccount admission plugin needs the namespace's default account.
    s.cp.wait_until("e2e-cost has its default ServiceAccount", Duration::from_secs(30), |c| async move {
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(c, NAMESPACE);
        Ok(sas.get_opt("default").await.map_err(|e| e.to_string())?.is_some())
    })
    .await?;
    let mut have = (0, 0);
    let mut rows = Vec::new();
    for (round, &(nodes, pods)) in SIZES.iter().enumerate() {
        grow(s, nodes, pods, &mut have).await?;
        let k = nodes;
        let est = estimate(s, nodes, pods).await?;
        let (copies, cluster_per_copy, cluster_list_model, cluster_events_model) = modelled(&est, "cluster-agent")?;
        let (_, node_per_copy, node_list_model, node_events_model) = modelled(&est, "node-agent")?;
        ensure!(copies as usize == k, "apiload estimate counts {copies} copies at {nodes} nodes");
        let object_bytes = cluster_list_model / (copies * cluster_per_copy);
        let cluster_list = lists(s, k, false).await?;
        let node_list = lists(s, k, true).await?;
        // The control plane's own watchers of pods (the garbage collector's
        // metadata watch, ...) get every change too: a round of changes with
        // no watcher of ours measures them, and is taken off the others.
        let baseline = watches(s, 0, pods, nodes, false, 3 * round).await?;
        let mut cluster_watch = watches(s, k, pods, nodes, false, 3 * round + 1).await?;
        let mut node_watch = watches(s, k, pods, nodes, true, 3 * round + 2).await?;
        for w in [&mut cluster_watch, &mut node_watch] {
            w.watch_events -= baseline.watch_events;
            w.watch_event_bytes -= baseline.watch_event_bytes;
        }
        ensure!(
            cluster_watch.watchers_closed == 0 && node_watch.watchers_closed == 0,
            "the API server closed {} cluster-wide and {} node-scoped watchers that fell behind, at {nodes} nodes",
            cluster_watch.watchers_closed,
            node_watch.watchers_closed
        );
        ensure!(
            cluster_list.client_bytes > 0 && cluster_watch.client_lines == (k * pods) as u64,
            "the cluster-wide watchers got {} events, not {}",
            cluster_watch.client_lines,
            k * pods
        );
        let row = json!({
            "nodes": nodes, "pods": pods, "copies": k,
            "model_object_bytes": object_bytes,
            "baseline_watch": {"events": baseline.watch_events, "bytes": baseline.watch_event_bytes},
            "list_cluster": {"measured_bytes": cluster_list.bytes, "modelled_bytes": cluster_list_model, "ratio": ratio(cluster_list.bytes, cluster_list_model),
                              "requests": cluster_list.requests, "mean_seconds": cluster_list.mean_seconds, "wall_seconds": cluster_list.wall_seconds,
                              "peak_rss_growth_bytes": cluster_list.peak_rss_growth_bytes, "bytes_per_pod": cluster_list.bytes / (k * pods) as f64},
            "list_node": {"measured_bytes": node_list.bytes, "modelled_bytes": node_list_model, "ratio": ratio(node_list.bytes, node_list_model),
                           "requests": node_list.requests, "mean_seconds": node_list.mean_seconds, "wall_seconds": node_list.wall_seconds,
                           "peak_rss_growth_bytes": node_list.peak_rss_growth_bytes, "objects_per_copy_modelled": node_per_copy},
            "watch_cluster": {"measured_events": cluster_watch.watch_events, "modelled_events": cluster_events_model, "ratio": ratio(cluster_watch.watch_events, cluster_events_model),
                               "measured_bytes": cluster_watch.watch_event_bytes, "modelled_bytes": cluster_events_model * object_bytes,
                               "bytes_ratio": ratio(cluster_watch.watch_event_bytes, cluster_events_model * object_bytes),
                               "bytes_per_event": cluster_watch.watch_event_bytes / cluster_watch.watch_events.max(1.0),
                               "client_bytes": cluster_watch.client_bytes, "wall_seconds": cluster_watch.wall_seconds},
            "watch_node": {"measured_events": node_watch.watch_events, "modelled_events": node_events_model, "ratio": ratio(node_watch.watch_events, node_events_model),
                            "measured_bytes": node_watch.watch_event_bytes, "modelled_bytes": node_events_model * object_bytes,
                            "bytes_ratio": ratio(node_watch.watch_event_bytes, node_events_model * object_bytes),
                            "client_bytes": node_watch.client_bytes, "wall_seconds": node_watch.wall_seconds},
        });
        eprintln!("e2e:      {nodes} nodes, {pods} pods, {k} copies: {row}");
        rows.push(row);
    }
    let report = s.work("cost.json");
    std::fs::write(&report, serde_json::to_string_pretty(&rows).unwrap_or_default()).map_err(|e| e.to_string())?;
    s.measured.insert("cost".into(), Value::Array(rows.clone()));
    // What the check holds to: the server sent what the watchers and lists
    // received (the metrics are the ones read), and the model has the
    // shape the server shows: cluster-wide costs K x M, node-scoped M.
    for r in &rows {
        for key in ["list_cluster", "list_node", "watch_cluster", "watch_node"] {
            let measured = r[key]["measured_bytes"].as_f64().unwrap_or(0.0);
            ensure!(measured > 0.0, "no bytes measured for {key} at {} nodes", r["nodes"]);
        }
        let events_ratio = r["watch_cluster"]["ratio"].as_f64().unwrap_or(0.0);
        ensure!(
            (0.95..=1.05).contains(&events_ratio),
            "cluster-wide watch events measured/modelled = {events_ratio} at {} nodes",
            r["nodes"]
        );
        let node_ratio = r["watch_node"]["ratio"].as_f64().unwrap_or(0.0);
        ensure!(
            (0.95..=1.05).contains(&node_ratio),
            "node-scoped watch events measured/modelled = {node_ratio} at {} nodes",
            r["nodes"]
        );
    }
    Ok(())
}
