//! Reading collections: paged lists and single GETs, each with a deadline,
//! a few retries after 429 and 5xx (through the rate limit), and errors that
//! name the request.
//!
//! Which LIST the API server serves from its watch cache, in Kubernetes
//! v1.34 (`k8s.io/apiserver` `pkg/storage/cacher/delegator/interface.go`,
//! `ShouldDelegateList`, and `cacher.go`):
//!
//! - `resourceVersion=0` is served from the cache, but the cache ignores
//!   `limit` for it (`computeListLimit`): one response, however large.
//! - no `resourceVersion` (a consistent read) with a `limit` is served from
//!   the cache when `ConsistentListFromCache` is on (beta, on by default
//!   since 1.31) and etcd supports watch progress requests, and the pages
//!   that follow — `continue` tokens carry the snapshot's resourceVersion —
//!   from the cache's snapshots (`ListFromCacheSnapshot`, beta and on by
//!   default in 1.34; `ShouldDelegateContinue`).
//!
//! So a paged list is `limit=N` without a resourceVersion. kube-rs sends
//! exactly that: `ListParams::populate_qp` leaves `resourceVersion=0` out
//! of a request with a `limit` (kube-core 5.0 `params.rs`), and a
//! `continue` token replaces it on later pages. Older servers answer the
//! same request from etcd, a page at a time, which is what paging is for.

use crate::client::Connected;
use crate::error::{ClusterError, ErrorKind};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::core::{ObjectList, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// The API resource of an analysed kind: its plural comes from the
/// engine's table, not from guessing.
pub fn api_resource(k: &apiload_rules::kube::kinds::AnalyzedKind) -> ApiResource {
    ApiResource {
        group: k.group.into(),
        version: k.version.into(),
        api_version: k.api_version(),
        kind: k.kind.into(),
        plural: k.resource.into(),
    }
}

/// `daemonsets.apps`, `pods`.
pub fn resource_name(ar: &ApiResource) -> String {
    if ar.group.is_empty() { ar.plural.clone() } else { format!("{}.{}", ar.plural, ar.group) }
}

/// What a request about one object does, for its errors: `reading pods ns/name`.
fn one_object(verb: &str, ar: &ApiResource, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{verb} {} {ns}/{name}", resource_name(ar)),
        None => format!("{verb} {} {name}", resource_name(ar)),
    }
}

/// Whole objects, or metadata only (`PartialObjectMetadataList`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Full,
    Metadata,
}

/// What a paged list hands its caller.
pub enum Page {
    Items(Vec<Value>),
    /// The server forgot the list's snapshot (410 on a `continue`): it
    /// starts over, and the pages before this are void.
    Restart,
}

/// Retries after 429 (API Priority and Fairness rejected it, or the
/// server is overloaded) and 5xx, through the rate limit.
const RETRIES: u32 = 3;

pub struct Lister<'a> {
    pub conn: &'a Connected,
    pub page_size: u32,
}

impl Lister<'_> {
    /// Sends one request with the deadline and the retries.
    async fn send<T: DeserializeOwned>(
        &self,
        build: impl Fn() -> http::Request<Vec<u8>>,
        what: &str,
    ) -> Result<T, ClusterError> {
        let server = &self.conn.server;
        let mut attempt = 0;
        loop {
            let result = tokio::time::timeout(self.conn.timeout, self.conn.client.request::<T>(build())).await;
            let err = match result {
                Err(_) => return Err(ClusterError::timeout(what, server, self.conn.timeout)),
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => e,
            };
            let retry_after = match &err {
                kube::Error::Api(s) if s.code == 429 || s.code >= 500 => {
                    let hinted = s.details.as_ref().map_or(0, |d| d.retry_after_seconds);
                    Some(Duration::from_secs(u64::from(hinted.clamp(1, 10))))
                }
                _ => None,
            };
            match retry_after {
                Some(wait) if attempt < RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(wait * attempt).await;
                }
                _ => {
                    let e = ClusterError::from_kube(&err, what, server);
                    // kube's connect timeout (set to the same deadline) ends
                    // a request that never connects: say it as ours does.
                    if e.kind == ErrorKind::Timeout {
                        return Err(ClusterError::timeout(what, server, self.conn.timeout));
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Lists a collection page by page (`namespace`: one namespace's).
    /// Returns how many requests it took.
    pub async fn list(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        shape: Shape,
        on_page: impl FnMut(Page),
    ) -> Result<u32, ClusterError> {
        self.list_selected(ar, namespace, None, shape, on_page).await
    }

    /// [`Lister::list`] of the objects with these labels (`labelSelector`).
    pub async fn list_selected(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        labels: Option<&str>,
        shape: Shape,
        mut on_page: impl FnMut(Page),
    ) -> Result<u32, ClusterError> {
        let url = DynamicObject::url_path(ar, namespace);
        let what = match namespace {
            Some(ns) => format!("listing {} in {ns}", resource_name(ar)),
            None => format!("listing {}", resource_name(ar)),
        };
        let mut token: Option<String> = None;
        let mut requests = 0;
        let mut restarted = false;
        loop {
            let mut lp = ListParams::default().limit(self.page_size);
            if let Some(l) = labels {
                lp = lp.labels(l);
            }
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let request = kube::core::Request::new(url.clone());
            let build = || {
                let r = match shape {
                    Shape::Full => request.list(&lp),
                    Shape::Metadata => request.list_metadata(&lp),
                };
                r.expect("list parameters without a version match are valid")
            };
            requests += 1;
            let page: ObjectList<Value> = match self.send(build, &what).await {
                Ok(p) => p,
                Err(e) if token.is_some() && !restarted && e.kind == ErrorKind::Gone => {
                    // The continue token expired; start over, once.
                    restarted = true;
                    token = None;
                    on_page(Page::Restart);
                    continue;
                }
                Err(e) => return Err(e),
            };
            on_page(Page::Items(page.items));
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(requests),
            }
        }
    }

    /// One object, or `None` when it does not exist.
    pub async fn get(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let url = DynamicObject::url_path(ar, namespace);
        let what = one_object("reading", ar, namespace, name);
        let request = kube::core::Request::new(url);
        let build = || request.get(name, &Default::default()).expect("a GET with default parameters is valid");
        match self.send::<Value>(build, &what).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind == ErrorKind::NotServed => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Server-side apply of `object` by `field_manager`, taking over fields
    /// another manager set (`force`): the caller owns the whole object.
    pub async fn apply(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        object: &Value,
        field_manager: &str,
    ) -> Result<Value, ClusterError> {
        let url = DynamicObject::url_path(ar, namespace);
        let what = one_object("applying", ar, namespace, name);
        let request = kube::core::Request::new(url);
        let params = kube::api::PatchParams::apply(field_manager).force();
        let patch = kube::api::Patch::Apply(object);
        let build = || request.patch(name, &params, &patch).expect("an apply patch of a JSON object is valid");
        self.send::<Value>(build, &what).await
    }

    /// Deletes one object; `false` when it was already gone.
    pub async fn delete(&self, ar: &ApiResource, namespace: Option<&str>, name: &str) -> Result<bool, ClusterError> {
        let url = DynamicObject::url_path(ar, namespace);
        let what = one_object("deleting", ar, namespace, name);
        let request = kube::core::Request::new(url);
        let params = kube::api::DeleteParams::default();
        let build = || request.delete(name, &params).expect("a DELETE with default parameters is valid");
        match self.send::<Value>(build, &what).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind == ErrorKind::NotServed => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The server's `/version`: (major, minor).
    pub async fn version(&self) -> Result<(u32, u32), ClusterError> {
        let build = || http::Request::get("/version").body(Vec::new()).expect("a static request");
        let v: Value = self.send(build, "reading /version").await?;
        let number = |k: &str| -> Option<u32> {
            v.get(k)?.as_str()?.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()
        };
        match (number("major"), number("minor")) {
            (Some(major), Some(minor)) => Ok((major, minor)),
            _ => Err(ClusterError::new(ErrorKind::Other, format!("/version of {}: cannot read {v}", self.conn.server))),
        }
    }
}
