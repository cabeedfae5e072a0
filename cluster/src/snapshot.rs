//! One read of a cluster for an audit: every analysed kind, the ConfigMaps
//! the workloads read, the Nodes (counted and grouped into pools), and the
//! server's version — as apiload advises agents to read:
//!
//! - paged lists served from the watch cache (`list.rs` says which);
//! - no watch: an audit needs one consistent look, not a stream;
//! - never a Secret: agents configured from Secrets are judged by their
//!   grants, as the webhook judges them;
//! - Pods, ReplicaSets and Jobs are listed as metadata first: those a
//!   controller owns are judged through it (`controlling_owner`, as the
//!   review does), and only the others are read whole;
//! - ConfigMaps are read only where a workload mounts or names one: one
//!   GET each when few, else a paged list of their namespaces, else of the
//!   whole collection, keeping only those;
//! - FlowSchemas and PriorityLevelConfigurations the API server keeps
//!   itself (`apf.kubernetes.io/autoupdate-spec: "true"`, k8s.io/api
//!   `flowcontrol/v1` `AutoUpdateAnnotationKey`) are left out: the engine
//!   already knows the bootstrap configuration, and `apiload lint` never
//!   sees it either; the same for the bootstrap roles and bindings the
//!   server reconciles and the engine knows built in;
//! - everything through the client's rate limit.
//!
//! A collection that cannot be read (403, not served) is reported and the
//! rest is audited; an unreachable server, a timeout or refused
//! credentials end the read.

use crate::client::Connected;
use crate::error::ClusterError;
use crate::list::{Lister, Page, Shape, api_resource, resource_name};
use crate::pools::{self, NodeFacts};
use crate::{json, yaml_text};
use apiload_rules::kube::kinds::{ANALYZED_KINDS, AnalyzedKind};
use apiload_rules::options::NodePool;
use apiload_rules::profile::ProfileSet;
use apiload_rules::profile::model::ConfigSourceKind;
use apiload_rules::workload::{RefKind, Workload, controlling_owner};
use apiload_rules::{Object, SourceId};
use futures::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// How to read.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Objects per page (client-go's pager uses 500).
    pub page_size: u32,
    /// The Node label that names pools, instead of the providers' (pools.rs).
    pub pool_label: Option<String>,
    /// Collections read at once; the rate limit holds either way.
    pub concurrency: usize,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions { page_size: 500, pool_label: None, concurrency: 4 }
    }
}

/// Reports progress, for a progress bar on a terminal.
pub trait Progress: Sync {
    /// `collections` of `total` read, `objects` kept so far; `now` is what
    /// is being read.
    fn update(&self, collections: usize, total: usize, objects: usize, now: &str);
}

/// No progress shown.
pub struct Quiet;

impl Progress for Quiet {
    fn update(&self, _: usize, _: usize, _: usize, _: &str) {}
}

/// One object read, as the text findings will point into.
#[derive(Clone, Debug)]
pub struct Listed {
    pub kind: &'static str,
    pub api_version: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    /// The object (trimmed) as YAML.
    pub text: String,
}

impl Listed {
    /// The source name findings show: `<cluster>/monitoring/DaemonSet/agent`.
    pub fn source_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("<cluster>/{ns}/{}/{}", self.kind, self.name),
            None => format!("<cluster>/{}/{}", self.kind, self.name),
        }
    }
}

/// What an audit read.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub server: String,
    pub context: Option<String>,
    /// (major, minor) of `/version`.
    pub version: Option<(u32, u32)>,
    /// The objects, sorted by namespace, kind (in the engine's order) and
    /// name, the ConfigMaps last.
    pub objects: Vec<Listed>,
    pub nodes: u64,
    pub pools: Vec<NodePool>,
    /// Objects kept per kind.
    pub counts: BTreeMap<&'static str, usize>,
    /// Collections that could not be read (403, not served): the audit is
    /// incomplete there.
    pub problems: Vec<ClusterError>,
    /// Bootstrap objects left out: FlowSchemas, PriorityLevelConfigurations,
    /// roles and bindings the API server maintains and the engine knows.
    pub bootstrap: usize,
    /// Objects left out because a controller owns them.
    pub owned: usize,
    /// Requests sent.
    pub requests: u64,
}

impl Snapshot {
    /// The cluster profile of what was read (`--write-cluster-profile`).
    pub fn cluster_profile(&self) -> Value {
        pools::cluster_profile(self.nodes, self.version.map(|v| v.1), &self.pools)
    }
}

/// How a collection is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    Whole,
    /// Metadata first; the objects no controller owns are then read whole.
    OwnedFirst,
    /// Bootstrap objects the server maintains are left out.
    Apf,
    /// The API server's bootstrap roles and bindings the engine knows built
    /// in are left out.
    Rbac,
}

fn plan(k: &AnalyzedKind) -> Option<Plan> {
    match k.kind {
        "Secret" | "ConfigMap" => None,
        "Pod" | "ReplicaSet" | "Job" => Some(Plan::OwnedFirst),
        "FlowSchema" | "PriorityLevelConfiguration" => Some(Plan::Apf),
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => Some(Plan::Rbac),
        _ => Some(Plan::Whole),
    }
}

/// The collections an audit reads, with the verbs it needs: the RBAC of
/// docs/audit.md and the chart's, checked against this list by tests.
pub fn collections() -> Vec<(&'static AnalyzedKind, &'static [&'static str])> {
    let mut out: Vec<(&'static AnalyzedKind, &'static [&'static str])> = Vec::new();
    for k in ANALYZED_KINDS {
        match (k.kind, plan(k)) {
            ("ConfigMap", _) => out.push((k, &["get", "list"])),
            (_, Some(Plan::OwnedFirst)) => out.push((k, &["get", "list"])),
            (_, Some(_)) => out.push((k, &["list"])),
            (_, None) => {}
        }
    }
    out
}

/// Ownership decisions read the object's metadata the way the engine does.
fn owned_by_controller(kind: &str, api_version: &str, item: &Value) -> bool {
    let mut v = serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": item.get("metadata").cloned().unwrap_or(Value::Null)});
    if v["metadata"].is_null() {
        return false;
    }
    let mut objects = Vec::new();
    v["metadata"].as_object_mut().map(|m| m.entry("name").or_insert_with(|| Value::String("?".into())));
    apiload_rules::object::objects_from_document(SourceId(0), json::node(&v), "default", &mut objects, &mut Vec::new());
    objects.first().is_some_and(|o| controlling_owner(o).is_some())
}

fn listed(k: &AnalyzedKind, mut item: Value) -> Option<Listed> {
    json::trim(&mut item);
    // List items carry no kind or apiVersion.
    if let Some(m) = item.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(k.api_version()));
        m.insert("kind".into(), Value::String(k.kind.into()));
    }
    let name = json::str_at(&item, "/metadata/name")?.to_string();
    let namespace = if k.namespaced {
        Some(json::str_at(&item, "/metadata/namespace").unwrap_or("default").to_string())
    } else {
        None
    };
    let uid = json::str_at(&item, "/metadata/uid").map(str::to_string);
    Some(Listed { kind: k.kind, api_version: k.api_version(), namespace, name, uid, text: yaml_text::to_yaml(&item) })
}

fn bootstrap_apf(item: &Value) -> bool {
    json::str_at(item, "/metadata/annotations/apf.kubernetes.io~1autoupdate-spec") == Some("true")
}

/// A role or binding of the API server's bootstrap policy, which it
/// reconciles at every start (label `kubernetes.io/bootstrapping:
/// rbac-defaults`, plugin/pkg/auth/authorizer/rbac/bootstrappolicy; annotation
/// `rbac.authorization.kubernetes.io/autoupdate: "true"`, k8s.io/api
/// `rbac/v1` `AutoUpdateAnnotationKey`), and that the engine knows built in
/// (`rules/src/rbac/bootstrap.txt`): `apiload lint` judges manifests with the
/// same built-in policy, and never reports on it.
fn bootstrap_rbac(kind: &str, item: &Value) -> bool {
    let labelled = json::str_at(item, "/metadata/labels/kubernetes.io~1bootstrapping") == Some("rbac-defaults")
        && json::str_at(item, "/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate") == Some("true");
    let name = json::str_at(item, "/metadata/name").unwrap_or("");
    let namespace = json::str_at(item, "/metadata/namespace");
    labelled
        && match kind {
            "Role" | "ClusterRole" => apiload_rules::rbac::builtin_role(namespace, name).is_some(),
            _ => apiload_rules::rbac::builtin_bindings()
                .iter()
                .any(|b| b.namespace.as_deref() == namespace && &*b.name == name),
        }
}

/// What one collection gave.
#[derive(Default)]
struct Read {
    objects: Vec<Listed>,
    owned: usize,
    bootstrap: usize,
}

/// GETs of at most this many bare objects; more are read with a full list.
const MAX_GETS: usize = 50;

async fn read_collection(lister: &Lister<'_>, k: &'static AnalyzedKind, plan: Plan) -> Result<Read, ClusterError> {
    let ar = api_resource(k);
    let mut read = Read::default();
    match plan {
        Plan::Whole | Plan::Apf | Plan::Rbac => {
            let mut items: Vec<Listed> = Vec::new();
            let mut bootstrap = 0;
            lister
                .list(&ar, None, Shape::Full, |page| match page {
                    Page::Restart => {
                        items.clear();
                        bootstrap = 0;
                    }
                    Page::Items(page) => {
                        for item in page {
                            let is_bootstrap = match plan {
                                Plan::Apf => bootstrap_apf(&item),
                                Plan::Rbac => bootstrap_rbac(k.kind, &item),
                                _ => false,
                            };
                            if is_bootstrap {
                                bootstrap += 1;
                            } else {
                                items.extend(listed(k, item));
                            }
                        }
                    }
                })
                .await?;
            read.objects = items;
            read.bootstrap = bootstrap;
        }
        Plan::OwnedFirst => {
            let mut bare: Vec<(Option<String>, String)> = Vec::new();
            let mut owned = 0;
            let api_version = k.api_version();
            lister
                .list(&ar, None, Shape::Metadata, |page| match page {
                    Page::Restart => {
                        bare.clear();
                        owned = 0;
                    }
                    Page::Items(page) => {
                        for item in page {
                            if owned_by_controller(k.kind, &api_version, &item) {
                                owned += 1;
                            } else if let Some(name) = json::str_at(&item, "/metadata/name") {
                                let ns = json::str_at(&item, "/metadata/namespace").map(str::to_string);
                                bare.push((ns, name.to_string()));
                            }
                        }
                    }
                })
                .await?;
            read.owned = owned;
            if bare.len() <= MAX_GETS {
                for (ns, name) in &bare {
                    if let Some(item) = lister.get(&ar, ns.as_deref(), name).await? {
                        read.objects.extend(listed(k, item));
                    }
                }
            } else {
                let mut items = Vec::new();
                lister
                    .list(&ar, None, Shape::Full, |page| match page {
                        Page::Restart => items.clear(),
                        Page::Items(page) => items.extend(
                            page.into_iter()
                                .filter(|i| !owned_by_controller(k.kind, &api_version, i))
                                .filter_map(|i| listed(k, i)),
                        ),
                    })
                    .await?;
                read.objects = items;
            }
        }
    }
    Ok(read)
}

/// What [`held`] kept of objects another reader already holds.
#[derive(Debug, Default)]
pub struct Held {
    /// Sorted as [`Snapshot::objects`]; no ConfigMap or Secret.
    pub objects: Vec<Listed>,
    /// Left out because a controller owns them.
    pub owned: usize,
    /// Left out as the API server's bootstrap policy.
    pub bootstrap: usize,
}

/// Objects a front end already holds (the webhook's watches: JSON with
/// `apiVersion` and `kind`), kept as [`read`] keeps what it lists: the same
/// kinds, the same owned objects and bootstrap policy left out, the same
/// text. ConfigMaps and Secrets are left out: an audit reads the ConfigMaps
/// the workloads read itself ([`config_maps_read`]), and never a Secret.
pub fn held(items: impl IntoIterator<Item = Value>) -> Held {
    let mut out = Held::default();
    for item in items {
        let Some(k) = json::str_at(&item, "/kind").and_then(apiload_rules::kube::kinds::analyzed) else { continue };
        let Some(plan) = plan(k) else { continue };
        let left_out = match plan {
            Plan::OwnedFirst => owned_by_controller(k.kind, &k.api_version(), &item),
            Plan::Apf => bootstrap_apf(&item),
            Plan::Rbac => bootstrap_rbac(k.kind, &item),
            Plan::Whole => false,
        };
        match (left_out, plan) {
            (true, Plan::OwnedFirst) => out.owned += 1,
            (true, _) => out.bootstrap += 1,
            (false, _) => out.objects.extend(listed(k, item)),
        }
    }
    out.objects.sort_by_key(sort_key);
    out
}

/// Reads the ConfigMaps among `wanted` one GET each (for an identity that
/// may `get` ConfigMaps but not list them: the webhook's). A 403 on one
/// costs only that one, and is returned beside the rest.
pub async fn read_config_maps_by_get(
    lister: &Lister<'_>,
    wanted: &BTreeSet<(String, String)>,
) -> Result<(Vec<Listed>, Vec<ClusterError>), ClusterError> {
    let k = apiload_rules::kube::kinds::analyzed("ConfigMap").expect("the engine reads ConfigMaps");
    let ar = api_resource(k);
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (ns, name) in wanted {
        match lister.get(&ar, Some(ns), name).await {
            Ok(Some(item)) => out.extend(listed(k, item)),
            Ok(None) => {}
            Err(e) if !e.is_fatal() => problems.push(e),
            Err(e) => return Err(e),
        }
    }
    out.sort_by_key(sort_key);
    Ok((out, problems))
}

/// The ConfigMaps the workloads among `objects` read: mounted, in their
/// environment, the parameters of a cluster-proportional-autoscaler, or
/// read by name by the agent a profile recognises. `(namespace, name)`.
pub fn config_maps_read(objects: &[Listed], profiles: &ProfileSet) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for l in objects {
        if apiload_rules::workload::WorkloadKind::from_kind(l.kind).is_none() {
            continue;
        }
        let Some(obj) = object_of(l) else { continue };
        let Some(Ok(w)) = Workload::read(0, &obj) else { continue };
        let ns = obj.ns().to_string();
        for (kind, name) in w.references() {
            if kind == RefKind::ConfigMap {
                out.insert((ns.clone(), name.to_string()));
            }
        }
        if let Some(a) = apiload_rules::copies::autoscaler_spec(&w, &obj)
            && let Some(cm) = &a.config_map
        {
            out.insert((a.namespace.to_string(), cm.to_string()));
        }
        for c in w.containers() {
            // The engine's way of naming a container's program (behaviour/mod.rs).
            let command = c.command.first().or(c.args.first()).map(|a| &*a.value).filter(|a| !a.starts_with('-'));
            if let Some(p) = profiles.for_container(c.image.as_ref().map(|i| &*i.value), command) {
                for source in &p.config {
                    if let ConfigSourceKind::ConfigMap { name, .. } = &source.kind {
                        out.insert((ns.clone(), name.clone()));
                    }
                }
            }
        }
    }
    out
}

/// The engine's object of a listed text (for decisions, not findings).
fn object_of(l: &Listed) -> Option<Object> {
    let doc = apiload_yaml::load_str(&l.text, &apiload_yaml::Limits::default()).into_iter().next()?.ok()?;
    let mut objects = Vec::new();
    apiload_rules::object::objects_from_document(SourceId(0), doc.root, "default", &mut objects, &mut Vec::new());
    objects.into_iter().next()
}

/// GETs for at most this many ConfigMaps; namespaces' lists for at most
/// this many namespaces; else one list of them all.
const MAX_CONFIG_MAP_GETS: usize = 20;
const MAX_CONFIG_MAP_NAMESPACES: usize = 20;

async fn read_config_maps(
    lister: &Lister<'_>,
    wanted: &BTreeSet<(String, String)>,
) -> Result<Vec<Listed>, ClusterError> {
    let k = apiload_rules::kube::kinds::analyzed("ConfigMap").expect("the engine reads ConfigMaps");
    let ar = api_resource(k);
    let mut out = Vec::new();
    if wanted.len() <= MAX_CONFIG_MAP_GETS {
        for (ns, name) in wanted {
            if let Some(item) = lister.get(&ar, Some(ns), name).await? {
                out.extend(listed(k, item));
            }
        }
        return Ok(out);
    }
    let namespaces: BTreeSet<&str> = wanted.iter().map(|(ns, _)| ns.as_str()).collect();
    let keep = |item: &Value| {
        let ns = json::str_at(item, "/metadata/namespace").unwrap_or("");
        let name = json::str_at(item, "/metadata/name").unwrap_or("");
        wanted.contains(&(ns.to_string(), name.to_string()))
    };
    let scopes: Vec<Option<&str>> = if namespaces.len() <= MAX_CONFIG_MAP_NAMESPACES {
        namespaces.iter().map(|n| Some(*n)).collect()
    } else {
        vec![None]
    };
    for scope in scopes {
        let mut items = Vec::new();
        lister
            .list(&ar, scope, Shape::Full, |page| match page {
                Page::Restart => items.clear(),
                Page::Items(page) => items.extend(page.into_iter().filter(|i| keep(i)).filter_map(|i| listed(k, i))),
            })
            .await?;
        out.extend(items);
    }
    Ok(out)
}

async fn read_nodes(lister: &Lister<'_>) -> Result<Vec<NodeFacts>, ClusterError> {
    let ar = kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Node>(&());
    let mut nodes = Vec::new();
    lister
        .list(&ar, None, Shape::Full, |page| match page {
            Page::Restart => nodes.clear(),
            // Only the name, labels and taints stay: a Node's status
            // (images, conditions) is most of its size.
            Page::Items(page) => nodes.extend(page.iter().filter_map(pools::facts)),
        })
        .await?;
    Ok(nodes)
}

fn sort_key(l: &Listed) -> (String, usize, String) {
    let kind_index = ANALYZED_KINDS.iter().position(|k| k.kind == l.kind).unwrap_or(usize::MAX);
    (l.namespace.clone().unwrap_or_default(), kind_index, l.name.clone())
}

/// Reads the cluster. `profiles` say which ConfigMaps agents read by name.
pub async fn read(
    conn: &Connected,
    options: &ReadOptions,
    profiles: &ProfileSet,
    progress: &dyn Progress,
) -> Result<Snapshot, ClusterError> {
    let lister = Lister { conn, page_size: options.page_size.max(1) };
    let sent_before = conn.limit.sent();
    let mut snap = Snapshot { server: conn.server.clone(), context: conn.context.clone(), ..Snapshot::default() };
    // The version first: it also shows whether the server answers at all.
    snap.version = Some(lister.version().await?);

    let plans: Vec<(&'static AnalyzedKind, Plan)> =
        ANALYZED_KINDS.iter().filter_map(|k| plan(k).map(|p| (k, p))).collect();
    // The collections, Nodes and ConfigMaps.
    let total = plans.len() + 2;
    let done = Mutex::new((0usize, 0usize));
    let tick = |objects: usize, now: &str| {
        let mut d = done.lock().unwrap_or_else(|e| e.into_inner());
        d.0 += 1;
        d.1 += objects;
        progress.update(d.0, total, d.1, now);
    };
    progress.update(0, total, 0, "nodes");
    let nodes = read_nodes(&lister).await?;
    snap.nodes = nodes.len() as u64;
    snap.pools = pools::pools(&nodes, options.pool_label.as_deref());
    drop(nodes);
    tick(0, "nodes");

    let results: Vec<(&'static AnalyzedKind, Result<Read, ClusterError>)> =
        futures::stream::iter(plans.iter().map(|(k, p)| {
            let lister = &lister;
            let tick = &tick;
            async move {
                let r = read_collection(lister, k, *p).await;
                tick(r.as_ref().map_or(0, |r| r.objects.len()), &resource_name(&api_resource(k)));
                (*k, r)
            }
        }))
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let mut objects = Vec::new();
    for (k, r) in results {
        match r {
            Ok(read) => {
                *snap.counts.entry(k.kind).or_default() += read.objects.len();
                snap.owned += read.owned;
                snap.bootstrap += read.bootstrap;
                objects.extend(read.objects);
            }
            Err(e) if !e.is_fatal() => snap.problems.push(e),
            Err(e) => return Err(e),
        }
    }
    objects.sort_by_key(sort_key);

    let wanted = config_maps_read(&objects, profiles);
    match read_config_maps(&lister, &wanted).await {
        Ok(mut cms) => {
            cms.sort_by_key(sort_key);
            snap.counts.insert("ConfigMap", cms.len());
            tick(cms.len(), "configmaps");
            objects.extend(cms);
        }
        Err(e) if !e.is_fatal() => {
            tick(0, "configmaps");
            snap.problems.push(e);
        }
        Err(e) => return Err(e),
    }
    snap.problems.sort_by(|a, b| a.message.cmp(&b.message));
    snap.objects = objects;
    snap.requests = conn.limit.sent() - sent_before;
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn held_objects_are_kept_as_a_read_keeps_what_it_lists() {
        let owner =
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u1", "controller": true}]);
        let items = vec![
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "a", "ownerReferences": owner}}),
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "bare", "namespace": "a"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a", "managedFields": [{}]},
                   "status": {"replicas": 2}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "view", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "mine"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "a"}}),
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
        ];
        let held = held(items);
        assert_eq!((held.owned, held.bootstrap), (1, 1));
        let kept: Vec<String> = held.objects.iter().map(Listed::source_name).collect();
        // Sorted as a read sorts them: namespace, then the engine's kind order.
        assert_eq!(kept, ["<cluster>/ClusterRole/mine", "<cluster>/a/Deployment/web", "<cluster>/a/ReplicaSet/bare"]);
        let web = &held.objects[1];
        assert!(!web.text.contains("managedFields") && !web.text.contains("status"), "trimmed as listed: {}", web.text);
        assert_eq!(web.api_version, "apps/v1");
    }
}
