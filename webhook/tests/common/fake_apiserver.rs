//! A stand-in for kube-apiserver on loopback, for live mode. It answers
//! list and watch requests with responses shaped as the API server sends
//! them — list items without `kind`, watch events as newline-delimited JSON,
//! BOOKMARK events, an ERROR event with a 410 `Expired` Status that forces a
//! relist, watches that end — metadata-only lists of Nodes, GETs of
//! ConfigMaps, and the `wgpolicyk8s.io/v1alpha2` PolicyReports and
//! ClusterPolicyReports the scheduled audit keeps (lists with a label
//! selector, server-side apply, deletes). Every request is recorded for
//! assertions.
//!
//! Faults ([`ReportFault`]) for the scheduled audit's error paths: 403 on
//! every report request or on one namespace's writes, the CRDs not
//! installed (404), and report requests that hang; and 403 on ConfigMap GETs. The real API server
//! shows the first three too (the end-to-end suite runs against it); a
//! server that accepts the connection and never answers, on demand and
//! for reports only, it cannot.

#![allow(dead_code)]

use apiload_rules::kube::kinds::AnalyzedKind;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};

#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub query: HashMap<String, String>,
    pub accept: String,
    pub at: std::time::Instant,
    pub method: String,
    pub content_type: String,
}

/// What the PolicyReport endpoints do instead of answering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportFault {
    /// 403 on every report request.
    Forbidden,
    /// 403 on writes in this namespace only.
    ForbiddenIn(String),
    /// 404: the CRDs are not installed.
    NotInstalled,
    /// Requests wait this long before they are answered.
    Slow(std::time::Duration),
}

impl Recorded {
    pub fn is_watch(&self) -> bool {
        self.query.get("watch").is_some_and(|w| w == "true" || w == "1")
    }
}

#[derive(Clone, Debug)]
enum Message {
    Event(Value),
    Bookmark(u64),
    Expire,
    End,
}

struct Collection {
    api_version: String,
    kind: &'static str,
    objects: BTreeMap<(String, String), Value>,
    tx: broadcast::Sender<Message>,
    /// Watches from a resourceVersion older than this get 410.
    oldest: u64,
}

#[derive(Default)]
struct World {
    rv: u64,
    collections: HashMap<String, Collection>,
    requests: Vec<Recorded>,
    open_watches: HashMap<String, usize>,
    /// (plural, namespace or "", name) → the stored report.
    reports: BTreeMap<(String, String, String), Value>,
    report_fault: Option<ReportFault>,
    /// GETs of ConfigMaps answer 403.
    config_maps_forbidden: bool,
}

#[derive(Clone)]
pub struct FakeApiServer {
    world: Arc<Mutex<World>>,
    pub addr: SocketAddr,
}

/// (path of the collection, apiVersion, kind): what live mode watches
/// (derived from the engine's analysed kinds), Nodes (counted from
/// metadata) and ConfigMaps (read one by one), as the API server serves them.
fn collections() -> Vec<(String, String, &'static str)> {
    let config_maps = apiload_rules::kube::kinds::analyzed("ConfigMap").expect("ConfigMaps are analysed");
    let path = |k: &AnalyzedKind| match k.group {
        "" => format!("/api/{}/{}", k.version, k.resource),
        group => format!("/apis/{group}/{}/{}", k.version, k.resource),
    };
    let mut out: Vec<(String, String, &'static str)> =
        apiload_webhook::kinds::watched().chain([config_maps]).map(|k| (path(k), k.api_version(), k.kind)).collect();
    out.push(("/api/v1/nodes".into(), "v1".into(), "Node"));
    out
}

fn path_of(kind: &str) -> String {
    collections().into_iter().find(|c| c.2 == kind).unwrap_or_else(|| panic!("no collection for {kind}")).0
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

impl FakeApiServer {
    pub async fn start() -> FakeApiServer {
        let mut world = World::default();
        for (path, api_version, kind) in collections() {
            let (tx, _) = broadcast::channel(1024);
            world.collections.insert(path, Collection { api_version, kind, objects: BTreeMap::new(), tx, oldest: 0 });
        }
        let world = Arc::new(Mutex::new(world));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(handle).with_state(world.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeApiServer { world, addr }
    }

    /// A kubeconfig pointing at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://{}\"}}\n\
             users:\n- name: fake\n  user: {{token: test-token}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\n\
             current-context: fake\n",
            self.addr
        )
    }

    fn mutate(&self, kind: &str, mut object: Value, delete: bool, announce: bool) {
        let mut w = self.world.lock().unwrap();
        w.rv += 1;
        let rv = w.rv;
        let c = w.collections.get_mut(&path_of(kind)).unwrap();
        object["apiVersion"] = c.api_version.clone().into();
        object["kind"] = c.kind.into();
        object["metadata"]["resourceVersion"] = rv.to_string().into();
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let existed = if delete {
            c.objects.remove(&(ns, name)).is_some()
        } else {
            c.objects.insert((ns, name), object.clone()).is_some()
        };
        if announce {
            let kind = match (delete, existed) {
                (true, _) => "DELETED",
                (false, true) => "MODIFIED",
                (false, false) => "ADDED",
            };
            let _ = c.tx.send(Message::Event(json!({"type": kind, "object": object})));
        }
    }

    /// Creates or updates an object, sending the watch event.
    pub fn apply(&self, kind: &str, object: Value) {
        self.mutate(kind, object, false, true);
    }

    /// Changes the stored object without telling the watches (an event the
    /// watch missed: only a relist shows it).
    pub fn apply_silently(&self, kind: &str, object: Value) {
        self.mutate(kind, object, false, false);
    }

    /// Deletes an object, sending the DELETED event.
    pub fn delete(&self, kind: &str, object: Value) {
        self.mutate(kind, object, true, true);
    }

    pub fn delete_silently(&self, kind: &str, object: Value) {
        self.mutate(kind, object, true, false);
    }

    /// Sends a BOOKMARK at the current resourceVersion; returns it.
    pub fn bookmark(&self, kind: &str) -> u64 {
        let w = self.world.lock().unwrap();
        let _ = w.collections[&path_of(kind)].tx.send(Message::Bookmark(w.rv));
        w.rv
    }

    /// Ends every open watch of the collection, as the API server does at
    /// its timeout.
    pub fn end_watches(&self, kind: &str) {
        let _ = self.world.lock().unwrap().collections[&path_of(kind)].tx.send(Message::End);
    }

    /// Compacts history: open watches get an ERROR 410 Expired, and watches
    /// from an older resourceVersion are refused the same way.
    pub fn expire(&self, kind: &str) {
        let mut w = self.world.lock().unwrap();
        let rv = w.rv;
        let c = w.collections.get_mut(&path_of(kind)).unwrap();
        c.oldest = rv;
        let _ = c.tx.send(Message::Expire);
    }

    /// Stored PolicyReports and ClusterPolicyReports, by
    /// (plural, namespace or "", name).
    pub fn reports(&self) -> BTreeMap<(String, String, String), Value> {
        self.world.lock().unwrap().reports.clone()
    }

    /// Stores a report as another writer would (no request recorded).
    pub fn put_report(&self, plural: &str, namespace: &str, name: &str, report: Value) {
        self.world.lock().unwrap().reports.insert((plural.into(), namespace.into(), name.into()), report);
    }

    pub fn set_config_maps_forbidden(&self, forbidden: bool) {
        self.world.lock().unwrap().config_maps_forbidden = forbidden;
    }

    pub fn set_report_fault(&self, fault: Option<ReportFault>) {
        self.world.lock().unwrap().report_fault = fault;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.world.lock().unwrap().requests.clone()
    }

    pub fn open_watches(&self, kind: &str) -> usize {
        self.world.lock().unwrap().open_watches.get(&path_of(kind)).copied().unwrap_or(0)
    }
}

fn query(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.replace("%3D", "=").replace("%2C", ",").replace("%2F", "/"))
        })
        .collect()
}

/// Decrements the open-watch count when the stream ends.
struct WatchGuard {
    world: Arc<Mutex<World>>,
    path: String,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Some(n) = self.world.lock().unwrap().open_watches.get_mut(&self.path) {
            *n -= 1;
        }
    }
}

const REPORTS: &str = "/apis/wgpolicyk8s.io/v1alpha2/";

/// The PolicyReport endpoints: `policyreports` (all namespaces) and
/// `clusterpolicyreports` lists, and one report's PATCH (apply) or DELETE.
async fn reports(
    world: Arc<Mutex<World>>,
    method: &str,
    path: &str,
    q: &HashMap<String, String>,
    body: Vec<u8>,
    content_type: &str,
) -> Response {
    let fault = world.lock().unwrap().report_fault.clone();
    let rest = &path[REPORTS.len()..];
    let parts: Vec<&str> = rest.split('/').collect();
    // (plural, namespace, name)
    let (plural, ns, name) = match parts.as_slice() {
        [plural] => (*plural, "", None),
        ["namespaces", ns, plural, name] => (*plural, *ns, Some(*name)),
        [plural, name] => (*plural, "", Some(*name)),
        _ => return json_response(StatusCode::NOT_FOUND, &status(404, "NotFound", "not served here")),
    };
    match &fault {
        Some(ReportFault::Forbidden) => {
            return json_response(
                StatusCode::FORBIDDEN,
                &status(
                    403,
                    "Forbidden",
                    &format!(
                        "{plural}.wgpolicyk8s.io is forbidden: User \"system:serviceaccount:apiload:apiload\" cannot {method} resource \"{plural}\""
                    ),
                ),
            );
        }
        Some(ReportFault::ForbiddenIn(n)) if n == ns && name.is_some() => {
            return json_response(
                StatusCode::FORBIDDEN,
                &status(
                    403,
                    "Forbidden",
                    &format!(
                        "{plural}.wgpolicyk8s.io \"{}\" is forbidden in the namespace \"{ns}\"",
                        name.unwrap_or("")
                    ),
                ),
            );
        }
        Some(ReportFault::NotInstalled) => {
            return json_response(
                StatusCode::NOT_FOUND,
                &status(404, "NotFound", "the server could not find the requested resource"),
            );
        }
        Some(ReportFault::Slow(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    if !matches!(plural, "policyreports" | "clusterpolicyreports") {
        return json_response(StatusCode::NOT_FOUND, &status(404, "NotFound", "not served here"));
    }
    let mut w = world.lock().unwrap();
    w.rv += 1;
    let rv = w.rv;
    match (method, name) {
        ("GET", None) => {
            let selector = q.get("labelSelector").cloned().unwrap_or_default();
            let items: Vec<Value> = w
                .reports
                .iter()
                .filter(|((p, _, _), _)| p == plural)
                .filter(|(_, r)| {
                    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
                        let (k, v) = term.split_once('=').unwrap_or((term, ""));
                        r["metadata"]["labels"][k] == v
                    })
                })
                .map(|(_, r)| r.clone())
                .collect();
            let kind = if plural == "policyreports" { "PolicyReportList" } else { "ClusterPolicyReportList" };
            json_response(
                StatusCode::OK,
                &json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": kind, "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            )
        }
        ("PATCH", Some(name)) => {
            // Server-side apply: the field manager is required, and a forced
            // apply by the only manager replaces what it applied before.
            if content_type != "application/apply-patch+yaml" || q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &status(400, "BadRequest", "not a server-side apply with a field manager"),
                );
            }
            let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
                return json_response(StatusCode::BAD_REQUEST, &status(400, "BadRequest", "the body is not JSON"));
            };
            if object["metadata"]["name"] != name || object["metadata"]["namespace"].as_str().unwrap_or("") != ns {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &status(400, "BadRequest", "the name or namespace does not match the URL"),
                );
            }
            object["metadata"]["resourceVersion"] = rv.to_string().into();
            w.reports.insert((plural.into(), ns.into(), name.into()), object.clone());
            json_response(StatusCode::OK, &object)
        }
        ("DELETE", Some(name)) => match w.reports.remove(&(plural.into(), ns.into(), name.into())) {
            Some(_) => {
                json_response(StatusCode::OK, &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
            }
            None => json_response(
                StatusCode::NOT_FOUND,
                &status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
            ),
        },
        _ => json_response(StatusCode::METHOD_NOT_ALLOWED, &status(405, "MethodNotAllowed", "not served here")),
    }
}

async fn handle(State(world): State<Arc<Mutex<World>>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let q = query(req.uri());
    let accept = req.headers().get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("").to_string();
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|a| a.to_str().ok()).unwrap_or("").to_string();
    let method = req.method().as_str().to_string();
    world.lock().unwrap().requests.push(Recorded {
        path: path.clone(),
        query: q.clone(),
        accept: accept.clone(),
        at: std::time::Instant::now(),
        method: method.clone(),
        content_type: content_type.clone(),
    });
    if path.starts_with(REPORTS) {
        let body = axum::body::to_bytes(req.into_body(), 16 << 20).await.map(|b| b.to_vec()).unwrap_or_default();
        return reports(world, &method, &path, &q, body, &content_type).await;
    }
    let metadata_only = accept.contains("as=PartialObjectMetadata");

    // GET of one ConfigMap.
    if let Some(rest) = path.strip_prefix("/api/v1/namespaces/") {
        let parts: Vec<&str> = rest.split('/').collect();
        if let [ns, "configmaps", name] = parts.as_slice() {
            let w = world.lock().unwrap();
            if w.config_maps_forbidden {
                return json_response(
                    StatusCode::FORBIDDEN,
                    &status(403, "Forbidden", &format!("configmaps \"{name}\" is forbidden")),
                );
            }
            let c = &w.collections["/api/v1/configmaps"];
            return match c.objects.get(&(ns.to_string(), name.to_string())) {
                Some(o) => json_response(StatusCode::OK, o),
                None => json_response(
                    StatusCode::NOT_FOUND,
                    &status(404, "NotFound", &format!("configmaps \"{name}\" not found")),
                ),
            };
        }
        return json_response(StatusCode::NOT_FOUND, &status(404, "NotFound", "not served here"));
    }

    let is_watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let mut w = world.lock().unwrap();
    let rv_now = w.rv;
    let Some(c) = w.collections.get(&path) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &status(404, "NotFound", "the server could not find the requested resource"),
        );
    };
    let shape = |o: &Value| -> Value {
        if metadata_only {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
        } else {
            o.clone()
        }
    };
    if !is_watch {
        // Items of a list carry no kind or apiVersion; the list does.
        let items: Vec<Value> = c
            .objects
            .values()
            .map(|o| {
                let mut item = shape(o);
                if let Some(m) = item.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                item
            })
            .collect();
        let (api_version, kind) = if metadata_only {
            ("meta.k8s.io/v1".to_string(), "PartialObjectMetadataList".to_string())
        } else {
            (c.api_version.clone(), format!("{}List", c.kind))
        };
        let list = json!({"kind": kind, "apiVersion": api_version,
                          "metadata": {"resourceVersion": rv_now.to_string()}, "items": items});
        return json_response(StatusCode::OK, &list);
    }

    let from: u64 = q.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let (api_version, kind) = (c.api_version.clone(), c.kind);
    let expired = from < c.oldest;
    let mut rx = c.tx.subscribe();
    *w.open_watches.entry(path.clone()).or_default() += 1;
    drop(w);
    let (tx, out) = mpsc::channel::<Result<String, std::io::Error>>(64);
    let guard = WatchGuard { world: world.clone(), path: path.clone() };
    tokio::spawn(async move {
        let _guard = guard;
        let line = |v: Value| Ok(format!("{v}\n"));
        if expired {
            let gone = status(410, "Expired", &format!("too old resource version: {from} ({rv_now})"));
            let _ = tx.send(line(json!({"type": "ERROR", "object": gone}))).await;
            return;
        }
        loop {
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = tx.closed() => return,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(broadcast::error::RecvError::Lagged(_)) => Message::Expire,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let event = match msg {
                Message::Event(mut e) => {
                    if metadata_only {
                        e["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                             "metadata": e["object"]["metadata"]});
                    }
                    e
                }
                Message::Bookmark(rv) if bookmarks => json!({"type": "BOOKMARK", "object": {
                    "kind": if metadata_only { "PartialObjectMetadata" } else { kind },
                    "apiVersion": if metadata_only { "meta.k8s.io/v1" } else { api_version.as_str() },
                    "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null}}}),
                Message::Bookmark(_) => continue,
                Message::Expire => {
                    let gone = status(410, "Expired", "too old resource version");
                    let _ = tx.send(line(json!({"type": "ERROR", "object": gone}))).await;
                    return;
                }
                Message::End => return,
            };
            if tx.send(line(event)).await.is_err() {
                return;
            }
        }
    });
    let stream = tokio_stream_from(out);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
