//! A stand-in for kube-apiserver on loopback, for live mode. It answers
//! list and watch requests with responses shaped as the API server sends
//! them — list items without `kind`, watch events as newline-delimited JSON,
//! BOOKMARK events, an ERROR event with a 410 `Expired` Status that forces a
//! relist, watches that end — metadata-only lists of Nodes, and GETs of
//! ConfigMaps. Every request is recorded for assertions.

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
            (k.to_string(), v.replace("%3D", "=").replace("%2C", ","))
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

async fn handle(State(world): State<Arc<Mutex<World>>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let q = query(req.uri());
    let accept = req.headers().get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("").to_string();
    world.lock().unwrap().requests.push(Recorded {
        path: path.clone(),
        query: q.clone(),
        accept: accept.clone(),
        at: std::time::Instant::now(),
    });
    let metadata_only = accept.contains("as=PartialObjectMetadata");

    // GET of one ConfigMap.
    if let Some(rest) = path.strip_prefix("/api/v1/namespaces/") {
        let parts: Vec<&str> = rest.split('/').collect();
        if let [ns, "configmaps", name] = parts.as_slice() {
            let w = world.lock().unwrap();
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
