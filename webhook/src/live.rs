//! Live mode: the cluster state from the webhook's own watches.
//!
//! It practises what apiload preaches. One watch per collection per replica;
//! initial lists and relists served from the API server's watch cache
//! (`resourceVersion=0`); bookmarks on, so that a reconnect resumes instead
//! of relisting; exponential backoff with jitter after errors (kube-runtime's
//! default: 0.8 s doubling to 30 s); and every request through one explicit
//! client-side rate limit (`--kube-api-qps`, `--kube-api-burst`). Nodes are
//! watched as metadata only, into a kube-runtime reflector store, for their
//! count. ConfigMaps are not watched (a cluster has many, and most are not
//! agent configuration): the ones a reviewed workload reads are fetched on
//! demand with a deadline and reused for `--configmap-cache-ttl`. Secrets are
//! never read.

use crate::cluster::Cluster;
use crate::config::SOURCE_STATE;
use crate::convert;
use crate::metrics::{KindLabel, Metrics};
use apiload_cluster::client::Connected;
use apiload_cluster::rate::{RateLimit, RateLimitLayer};
use apiload_rules::Object;
use apiload_rules::kube::kinds::{self, AnalyzedKind};
use apiload_rules::review::ObjectKey;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The API resource of a watched kind: its plural comes from the engine's
/// table, not from guessing.
fn resource(k: &AnalyzedKind) -> ApiResource {
    ApiResource {
        group: k.group.into(),
        version: k.version.into(),
        api_version: k.api_version(),
        kind: k.kind.into(),
        plural: k.resource.into(),
    }
}

/// The webhook's two API clients, which share its rate limit between them:
/// `cache` lists and watches, `reads` GETs the ConfigMaps a review needs. A
/// quarter of the budget (at least one request per second, bursts of two)
/// is the request path's, so that a relist of every collection — at start,
/// after an API server restart — cannot hold a review's ConfigMap read past
/// its deadline; together they never exceed `qps`, nor `burst` when it is
/// at least 2 (each client needs a burst of one). The scheduled audit
/// (`audit.rs`) sends its requests with the cache's client and budget:
/// never the request path's.
pub struct Clients {
    pub cache: kube::Client,
    pub reads: kube::Client,
    /// The cache's client with its rate limit, as `apiload_cluster` reads
    /// and writes through it.
    pub cache_connection: Connected,
}

pub async fn clients(kubeconfig: Option<&Path>, qps: f64, burst: u32) -> Result<Clients, String> {
    let (cache, reads) = split_budget(qps, burst)?;
    let cache_connection = connection(kubeconfig, cache.0, cache.1).await?;
    Ok(Clients {
        cache: cache_connection.client.clone(),
        reads: connection(kubeconfig, reads.0, reads.1).await?.client,
        cache_connection,
    })
}

/// A client's rate limit: sustained requests per second, and burst.
type Budget = (f64, u32);

/// `(cache, reads)`: the reads get a quarter, at least 1/s and a burst of 2,
/// never more than half of either.
fn split_budget(qps: f64, burst: u32) -> Result<(Budget, Budget), String> {
    if !(qps > 0.0 && qps.is_finite()) || burst == 0 {
        return Err("--kube-api-qps and --kube-api-burst must be positive".into());
    }
    let reads_qps = (qps / 4.0).max(1.0).min(qps / 2.0);
    let reads_burst = (burst / 4).max(2).min(burst / 2).max(1);
    Ok(((qps - reads_qps, burst.saturating_sub(reads_burst).max(1)), (reads_qps, reads_burst)))
}

/// The deadline of each request of the scheduled audit (watches have none:
/// they are streams; reviews' ConfigMap reads have the review's).
pub const AUDIT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client with a rate limit in front of everything it sends.
pub async fn connection(kubeconfig: Option<&Path>, qps: f64, burst: u32) -> Result<Connected, String> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| format!("{}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|e| format!("no cluster configuration: {e}"))?,
    };
    if !(qps > 0.0 && qps.is_finite()) || burst == 0 {
        return Err("--kube-api-qps and --kube-api-burst must be positive".into());
    }
    let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
    // A token bucket, as client-go's QPS and Burst: over any T seconds at most
    // `burst + qps·T` requests (tower's RateLimit is a fixed window, which
    // lets `2·burst` out at once; the end-to-end check of the webhook's
    // requests in the audit log caught it).
    let limit = RateLimit::new(qps, burst);
    let builder = kube::client::ClientBuilder::try_from(config).map_err(|e| format!("kube client: {e}"))?;
    let client = builder.with_layer(&RateLimitLayer(limit.clone())).build();
    Ok(Connected { client, server, context: None, limit, timeout: AUDIT_REQUEST_TIMEOUT })
}

fn watch_config() -> watcher::Config {
    // `any_semantic`: lists with resourceVersion=0, from the watch cache.
    // kube-rs leaves resourceVersion=0 out of paginated lists (a limit
    // makes the API server read from etcd instead), so no page size: the
    // cache answers in one response, as it does for client-go informers.
    let mut config = watcher::Config::default().any_semantic();
    config.page_size = None;
    config
}

/// An object from a watch, or `None` (logged) when it is not one the engine can read.
fn to_object(c: &AnalyzedKind, obj: &DynamicObject) -> Option<Object> {
    let converted = serde_json::to_value(obj)
        .map_err(|e| e.to_string())
        .and_then(|json| convert::object(json, SOURCE_STATE, &c.api_version(), c.kind, ""));
    match converted {
        Ok(o) => Some(o),
        Err(e) => {
            let name = obj.metadata.name.as_deref().unwrap_or("");
            tracing::warn!(kind = c.kind, name, error = %e, "watched object left out of the cache");
            None
        }
    }
}

/// Starts the watches. The cluster turns ready once every collection has
/// been listed and the nodes counted.
pub fn start(client: kube::Client, cluster: Arc<Cluster>, metrics: Arc<Metrics>) {
    let synced = Arc::new(AtomicUsize::new(0));
    let total = crate::kinds::watched().count() + 1;
    for collection in crate::kinds::watched() {
        tokio::spawn(watch_collection(
            client.clone(),
            collection,
            cluster.clone(),
            metrics.clone(),
            synced.clone(),
            total,
        ));
    }
    tokio::spawn(watch_nodes(client, cluster.clone(), metrics, synced, total));
}

fn mark_synced(cluster: &Cluster, synced: &AtomicUsize, total: usize) {
    if synced.fetch_add(1, Ordering::SeqCst) + 1 == total {
        cluster.set_ready(true);
        tracing::info!(objects = cluster.read().len(), "cluster cache synced; ready");
    }
}

async fn watch_collection(
    client: kube::Client,
    c: &'static AnalyzedKind,
    cluster: Arc<Cluster>,
    metrics: Arc<Metrics>,
    synced: Arc<AtomicUsize>,
    total: usize,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &resource(c));
    let mut stream = watcher::watcher(api, watch_config()).default_backoff().boxed();
    let mut buffer: Vec<Object> = Vec::new();
    let mut listed = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => buffer.clear(),
            Ok(Event::InitApply(o)) => buffer.extend(to_object(c, &o)),
            Ok(Event::InitDone) => {
                let n = buffer.len();
                cluster.relisted(c.kind, std::mem::take(&mut buffer));
                cluster.touch(c.kind);
                tracing::info!(kind = c.kind, objects = n, "listed");
                if !listed {
                    listed = true;
                    mark_synced(&cluster, &synced, total);
                }
            }
            Ok(Event::Apply(o)) => {
                if let Some(obj) = to_object(c, &o) {
                    let key = ObjectKey::of(&obj);
                    cluster.write().upsert(obj);
                    cluster.confirmed(&key);
                }
                cluster.touch(c.kind);
            }
            Ok(Event::Delete(o)) => {
                if let Some(obj) = to_object(c, &o) {
                    let key = ObjectKey::of(&obj);
                    cluster.write().remove(&key);
                    cluster.confirmed(&key);
                }
                cluster.touch(c.kind);
            }
            Err(e) => {
                metrics.watch_errors.get_or_create(&KindLabel { kind: c.kind.into() }).inc();
                tracing::warn!(kind = c.kind, error = %e, "watch failed; retrying with backoff");
            }
        }
    }
}

async fn watch_nodes(
    client: kube::Client,
    cluster: Arc<Cluster>,
    metrics: Arc<Metrics>,
    synced: Arc<AtomicUsize>,
    total: usize,
) {
    let (reader, writer) = reflector::store::<PartialObjectMeta<Node>>();
    // `PartialObjectMeta`: metadata-only lists and watches.
    let api: Api<PartialObjectMeta<Node>> = Api::all(client);
    let mut stream = reflector(writer, watcher::watcher(api, watch_config()).default_backoff()).boxed();
    let mut counted = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::InitDone) => {
                cluster.set_nodes(reader.len() as u64);
                cluster.touch("Node");
                if !counted {
                    counted = true;
                    mark_synced(&cluster, &synced, total);
                }
            }
            Ok(Event::Apply(_) | Event::Delete(_)) => {
                cluster.set_nodes(reader.len() as u64);
                cluster.touch("Node");
            }
            Ok(_) => {}
            Err(e) => {
                metrics.watch_errors.get_or_create(&KindLabel { kind: "Node".into() }).inc();
                tracing::warn!(kind = "Node", error = %e, "watch failed; retrying with backoff");
            }
        }
    }
}

/// ConfigMaps read for reviews, with when they were read.
pub struct ConfigMaps {
    api: ApiResource,
    client: kube::Client,
    ttl: Duration,
    read_at: std::sync::Mutex<HashMap<ObjectKey, Instant>>,
}

impl ConfigMaps {
    pub fn new(client: kube::Client, ttl: Duration) -> ConfigMaps {
        ConfigMaps {
            api: resource(kinds::analyzed("ConfigMap").expect("the engine reads ConfigMaps")),
            client,
            ttl,
            read_at: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, key: &ObjectKey) -> bool {
        self.read_at.lock().unwrap_or_else(|e| e.into_inner()).get(key).is_some_and(|t| t.elapsed() < self.ttl)
    }

    /// The webhook admitted this version: as good as a fresh read.
    pub fn admitted(&self, key: ObjectKey) {
        self.read_at.lock().unwrap_or_else(|e| e.into_inner()).insert(key, Instant::now());
    }

    /// Reads the ConfigMaps among `keys` that are missing or old into the
    /// state, all at once, within `deadline`. Those that cannot be read in
    /// time stay as they were; the review goes on without them.
    pub async fn refresh(&self, keys: &[ObjectKey], cluster: &Cluster, metrics: &Metrics, deadline: Instant) {
        let stale: Vec<&ObjectKey> = keys.iter().filter(|k| !self.fresh(k)).collect();
        if stale.is_empty() {
            return;
        }
        let reads = stale.iter().map(|key| async move {
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &key.namespace, &self.api);
            let left = deadline.saturating_duration_since(Instant::now());
            (*key, tokio::time::timeout(left, api.get_opt(&key.name)).await)
        });
        for (key, result) in futures::future::join_all(reads).await {
            match result {
                Ok(Ok(found)) => {
                    let mut state = cluster.write();
                    match found.and_then(|o| {
                        let json = serde_json::to_value(&o).ok()?;
                        convert::object(json, SOURCE_STATE, "v1", "ConfigMap", &key.namespace).ok()
                    }) {
                        Some(obj) => {
                            state.upsert(obj);
                            Metrics::result(&metrics.configmap_reads, "found");
                        }
                        None => {
                            state.remove(key);
                            Metrics::result(&metrics.configmap_reads, "absent");
                        }
                    }
                    drop(state);
                    self.admitted(key.clone());
                }
                Ok(Err(e)) => {
                    Metrics::result(&metrics.configmap_reads, "error");
                    tracing::warn!(configmap = %format!("{}/{}", key.namespace, key.name), error = %e, "cannot read ConfigMap");
                }
                Err(_) => {
                    Metrics::result(&metrics.configmap_reads, "deadline");
                    tracing::warn!(configmap = %format!("{}/{}", key.namespace, key.name), "ConfigMap read missed the review's deadline");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_budget;

    #[test]
    fn the_request_path_keeps_a_share_and_the_sum_stays_within_the_budget() {
        // The defaults: 5/s, bursts of 10.
        assert_eq!(split_budget(5.0, 10), Ok(((3.75, 8), (1.25, 2))));
        assert_eq!(split_budget(20.0, 40), Ok(((15.0, 30), (5.0, 10))));
        // A small budget still leaves reads one per second, the cache the rest.
        assert_eq!(split_budget(2.0, 2), Ok(((1.0, 1), (1.0, 1))));
        for (qps, burst) in [(0.5, 1), (1.0, 1), (3.0, 5), (100.0, 200)] {
            let ((cq, cb), (rq, rb)) = split_budget(qps, burst).unwrap();
            assert!(cq + rq <= qps + 1e-9 && rq <= qps / 2.0 + 1e-9, "{qps}: {cq} + {rq}");
            assert!(cb >= 1 && rb >= 1 && cb >= rb, "{burst}: {cb} {rb}");
        }
        assert!(split_budget(0.0, 10).is_err());
        assert!(split_budget(f64::NAN, 10).is_err());
        assert!(split_budget(5.0, 0).is_err());
    }
}
