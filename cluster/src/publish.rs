//! Keeping an audit's PolicyReports up to date on the API server (the
//! webhook's scheduled audit): the reports [`policyreport::reports`] builds
//! are applied, and the reports apiload wrote earlier that the audit no
//! longer has (a namespace without findings or workloads now, a report past
//! the first 1,000 results that is no longer needed) are deleted.
//!
//! - apiload's reports are the ones labelled
//!   `app.kubernetes.io/managed-by: apiload`: one paged list of each kind,
//!   across namespaces, finds them (from the watch cache, as every list of
//!   `list.rs`);
//! - a report whose content has not changed (its results, summary and scope,
//!   timestamps aside) is not written again, so that an audit of a quiet
//!   cluster writes nothing to etcd; its timestamps stay those of the run
//!   that last changed it;
//! - a changed or new report is written with server-side apply by the field
//!   manager `apiload`, forced: apiload owns every field of its reports;
//! - every request goes through the connection's rate limit and deadline.
//!
//! A 403 or 404 when listing means the audit cannot publish at all (the
//! identity lacks the RBAC, or the CRDs are not installed): it is the
//! returned error, said so. A 403 on one report costs only that report.

use crate::error::{ClusterError, ErrorKind};
use crate::list::{Lister, Page, Shape};
use crate::policyreport::{API_VERSION, MANAGED_BY};
use kube::api::ApiResource;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The field manager of apiload's writes.
pub const FIELD_MANAGER: &str = "apiload";

/// `(kind, namespace, name)`: the namespace is empty for the cluster report.
type Key = (String, String, String);

/// What a publication did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Reports written (new or changed).
    pub applied: usize,
    /// Reports already as the audit found them.
    pub unchanged: usize,
    /// apiload's reports the audit no longer has, deleted.
    pub deleted: usize,
    /// Reports that could not be written or deleted (403 on one namespace);
    /// the others were.
    pub problems: Vec<ClusterError>,
    /// Requests through the connection's rate limit meanwhile (a client
    /// shared with watches counts theirs too).
    pub requests: u64,
}

fn resource(kind: &str) -> ApiResource {
    let plural = format!("{}s", kind.to_lowercase());
    let (group, version) = API_VERSION.split_once('/').expect("a group/version");
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: API_VERSION.into(),
        kind: kind.into(),
        plural,
    }
}

const KINDS: [&str; 2] = ["PolicyReport", "ClusterPolicyReport"];

fn key_of(kind: &str, report: &Value) -> Key {
    let meta = &report["metadata"];
    (
        kind.to_string(),
        meta["namespace"].as_str().unwrap_or("").to_string(),
        meta["name"].as_str().unwrap_or("").to_string(),
    )
}

/// What decides whether a stored report must be written again: the fields
/// apiload sets, result timestamps left out. Fields the server adds
/// (metadata, defaults of other schemas) do not count.
fn content(report: &Value) -> Value {
    let mut results = report["results"].as_array().cloned().unwrap_or_default();
    for r in &mut results {
        if let Some(m) = r.as_object_mut() {
            m.remove("timestamp");
        }
    }
    serde_json::json!({
        "label": report["metadata"]["labels"][MANAGED_BY.0],
        "scope": report["scope"],
        "summary": report["summary"],
        "results": results,
    })
}

/// Why publishing cannot start, said so that the reader knows what to do.
fn cannot_list(e: ClusterError) -> ClusterError {
    match e.kind {
        ErrorKind::NotServed => ClusterError::new(
            ErrorKind::NotServed,
            format!(
                "{e}: the PolicyReport CRDs ({API_VERSION} policyreports and clusterpolicyreports) are not installed; \
                 install them (Kyverno ships them, or kubernetes-sigs/wg-policy-prototypes) or turn the scheduled audit off"
            ),
        ),
        ErrorKind::Forbidden => ClusterError::new(
            ErrorKind::Forbidden,
            format!(
                "{e}: the webhook's ServiceAccount may not manage PolicyReports; the chart grants it with \
                 audit.enabled=true (get, list, create, update, patch, delete on {API_VERSION} policyreports and \
                 clusterpolicyreports)"
            ),
        ),
        _ => e,
    }
}

/// apiload's stored reports, by key.
async fn stored(lister: &Lister<'_>) -> Result<BTreeMap<Key, Value>, ClusterError> {
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let mut out = BTreeMap::new();
    for kind in KINDS {
        let mut items: Vec<Value> = Vec::new();
        lister
            .list_selected(&resource(kind), None, Some(&selector), Shape::Full, |page| match page {
                Page::Restart => items.clear(),
                Page::Items(page) => items.extend(page),
            })
            .await
            .map_err(cannot_list)?;
        for item in items {
            out.insert(key_of(kind, &item), item);
        }
    }
    Ok(out)
}

/// Makes apiload's reports on the server those of `reports` (built by
/// [`crate::policyreport::reports`]). An error that ends it (the server
/// down, the CRDs absent, no RBAC to list) is returned; what was written
/// before it stays.
pub async fn publish(lister: &Lister<'_>, reports: &[Value]) -> Result<Published, ClusterError> {
    let sent_before = lister.conn.limit.sent();
    let mut published = Published::default();
    let mut existing = stored(lister).await?;
    let mut wanted: BTreeSet<Key> = BTreeSet::new();
    for report in reports {
        let kind = report["kind"].as_str().unwrap_or("");
        if !KINDS.contains(&kind) {
            continue;
        }
        let key = key_of(kind, report);
        wanted.insert(key.clone());
        if existing.get(&key).is_some_and(|old| content(old) == content(report)) {
            published.unchanged += 1;
            continue;
        }
        let namespace = (!key.1.is_empty()).then_some(key.1.as_str());
        match lister.apply(&resource(kind), namespace, &key.2, report, FIELD_MANAGER).await {
            Ok(_) => published.applied += 1,
            Err(e) if !e.is_fatal() => published.problems.push(e),
            Err(e) => return Err(e),
        }
    }
    existing.retain(|k, _| !wanted.contains(k));
    for (kind, namespace, name) in existing.keys() {
        let ns = (!namespace.is_empty()).then_some(namespace.as_str());
        match lister.delete(&resource(kind), ns, name).await {
            Ok(true) => published.deleted += 1,
            // Another replica deleted it first.
            Ok(false) => {}
            Err(e) if !e.is_fatal() => published.problems.push(e),
            Err(e) => return Err(e),
        }
    }
    published.requests = lister.conn.limit.sent() - sent_before;
    Ok(published)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_are_the_crds_plurals() {
        let r = resource("ClusterPolicyReport");
        assert_eq!(
            (r.group.as_str(), r.version.as_str(), r.plural.as_str()),
            ("wgpolicyk8s.io", "v1alpha2", "clusterpolicyreports")
        );
        assert_eq!(resource("PolicyReport").plural, "policyreports");
    }

    #[test]
    fn timestamps_and_server_fields_do_not_make_a_report_change() {
        let ours = json!({"metadata": {"name": "apiload", "namespace": "a", "labels": {MANAGED_BY.0: MANAGED_BY.1}},
                          "summary": {"pass": 1}, "results": [{"result": "pass", "timestamp": {"seconds": 1, "nanos": 0}}]});
        let mut stored = ours.clone();
        stored["metadata"]["resourceVersion"] = json!("7");
        stored["metadata"]["managedFields"] = json!([{}]);
        stored["results"][0]["timestamp"]["seconds"] = json!(99);
        assert_eq!(content(&stored), content(&ours));
        stored["results"][0]["result"] = json!("fail");
        assert_ne!(content(&stored), content(&ours));
        let mut unlabelled = ours.clone();
        unlabelled["metadata"]["labels"] = json!({});
        assert_ne!(content(&unlabelled), content(&ours));
    }
}
