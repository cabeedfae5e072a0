//! A stand-in for kube-apiserver on loopback, for the audit's reads: lists
//! paged as the API server pages them (`limit`, `continue`, items without
//! `kind`), metadata-only lists (`as=PartialObjectMetadataList`), GETs,
//! `/version`, and on demand a 403 for one collection, a 401 for every
//! request, or no answer at all. Every request is recorded.

#![allow(dead_code)]

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub accept: String,
    pub at: std::time::Instant,
}

#[derive(Default)]
pub struct World {
    /// Collection path (`/apis/apps/v1/daemonsets`) → (namespace, name) → object.
    pub collections: BTreeMap<String, BTreeMap<(String, String), Value>>,
    pub forbidden: Vec<String>,
    pub unauthorized: bool,
    pub requests: Vec<Recorded>,
}

#[derive(Clone)]
pub struct Fake {
    pub world: Arc<Mutex<World>>,
    pub addr: SocketAddr,
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn respond(code: StatusCode, v: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// `/apis/apps/v1/namespaces/x/daemonsets/name` → (collection path, namespace, name).
fn parse(path: &str) -> Option<(String, Option<String>, Option<String>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (prefix, rest) = match *parts.first()? {
        "api" => (parts[..2].join("/"), &parts[2..]),
        "apis" => (parts.get(..3)?.join("/"), &parts[3..]),
        _ => return None,
    };
    match rest {
        [res] => Some((format!("/{prefix}/{res}"), None, None)),
        [res, name] => Some((format!("/{prefix}/{res}"), None, Some(name.to_string()))),
        ["namespaces", ns, res] => Some((format!("/{prefix}/{res}"), Some(ns.to_string()), None)),
        ["namespaces", ns, res, name] => {
            Some((format!("/{prefix}/{res}"), Some(ns.to_string()), Some(name.to_string())))
        }
        _ => None,
    }
}

async fn handle(State(world): State<Arc<Mutex<World>>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.replace("%2F", "/").replace("%3D", "="))
        })
        .collect();
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut w = world.lock().unwrap();
    w.requests.push(Recorded {
        method: req.method().to_string(),
        path: path.clone(),
        query: query.clone(),
        accept: accept.clone(),
        at: std::time::Instant::now(),
    });
    if w.unauthorized {
        return respond(StatusCode::UNAUTHORIZED, &status(401, "Unauthorized", "Unauthorized"));
    }
    if path == "/version" {
        return respond(StatusCode::OK, &json!({"major": "1", "minor": "34", "gitVersion": "v1.34.4"}));
    }
    let Some((collection, ns, name)) = parse(&path) else {
        return respond(
            StatusCode::NOT_FOUND,
            &status(404, "NotFound", "the server could not find the requested resource"),
        );
    };
    if w.forbidden.iter().any(|f| collection.ends_with(&format!("/{f}"))) {
        let msg = format!("{collection} is forbidden: User \"system:serviceaccount:x:audit\" cannot list resource");
        return respond(StatusCode::FORBIDDEN, &status(403, "Forbidden", &msg));
    }
    let Some(objects) = w.collections.get(&collection) else {
        return respond(
            StatusCode::NOT_FOUND,
            &status(404, "NotFound", "the server could not find the requested resource"),
        );
    };
    if let Some(name) = name {
        return match objects.get(&(ns.unwrap_or_default(), name.clone())) {
            Some(o) => respond(StatusCode::OK, o),
            None => respond(StatusCode::NOT_FOUND, &status(404, "NotFound", &format!("\"{name}\" not found"))),
        };
    }
    let items: Vec<&Value> =
        objects.iter().filter(|((o_ns, _), _)| ns.as_ref().is_none_or(|n| n == o_ns)).map(|(_, v)| v).collect();
    let start: usize = query.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(usize::MAX);
    let page: Vec<Value> = items
        .iter()
        .skip(start)
        .take(limit)
        .map(|o| {
            let mut o = (*o).clone();
            // List items come without kind and apiVersion.
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            if accept.contains("as=PartialObjectMetadataList") {
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": o["metadata"]})
            } else {
                o
            }
        })
        .collect();
    let next = start + page.len();
    let mut metadata = json!({"resourceVersion": "100"});
    if next < items.len() {
        metadata["continue"] = json!(next.to_string());
    }
    let kind = if accept.contains("as=PartialObjectMetadataList") { "PartialObjectMetadataList" } else { "List" };
    respond(StatusCode::OK, &json!({"apiVersion": "v1", "kind": kind, "metadata": metadata, "items": page}))
}

impl Fake {
    pub async fn start() -> Fake {
        let world = Arc::new(Mutex::new(World::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(handle).with_state(world.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { world, addr }
    }

    /// Adds an object to its collection (`path` of the collection).
    pub fn add(&self, collection: &str, object: Value) {
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        self.world.lock().unwrap().collections.entry(collection.to_string()).or_default().insert((ns, name), object);
    }

    /// Every collection the audit reads exists, empty.
    pub fn serve_every_collection(&self) {
        let mut w = self.world.lock().unwrap();
        for k in apiload_rules::kube::kinds::ANALYZED_KINDS {
            let path = match k.group {
                "" => format!("/api/{}/{}", k.version, k.resource),
                g => format!("/apis/{g}/{}/{}", k.version, k.resource),
            };
            w.collections.entry(path).or_default();
        }
        w.collections.entry("/api/v1/nodes".into()).or_default();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.world.lock().unwrap().requests.clone()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A scratch folder for one test, removed first if it exists and again when
/// the test is done with it.
pub fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("apiload-cluster-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A kubeconfig for `server` with a token user, or a client certificate.
pub fn kubeconfig(dir: &Path, server: &str, user: &str) -> PathBuf {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{server}\"}}\n\
         users:\n- name: test\n  user:\n{user}\ncontexts:\n- name: test\n  context: {{cluster: test, user: test}}\n\
         - name: other\n  context: {{cluster: test, user: test}}\ncurrent-context: test\n"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

pub const TOKEN_USER: &str = "    token: test-token";
