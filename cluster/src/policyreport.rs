//! An audit as `wgpolicyk8s.io/v1alpha2` PolicyReports (one per namespace)
//! and a ClusterPolicyReport (cluster-scoped objects), the report format
//! Kyverno and Kubescape write. The schema is kubernetes-sigs/wg-policy-prototypes
//! `policy-report/apis/wgpolicyk8s.io/v1alpha2/policyreport_types.go` and its
//! CRDs under `policy-report/crd/v1alpha2/`:
//!
//! - a report has `scope`, `summary` {pass, fail, warn, error, skip} and
//!   `results`; a result needs `policy`, and has `source`, `rule`,
//!   `category`, `severity`, `timestamp` {seconds, nanos}, `result` (pass,
//!   fail, warn, error, skip), `scored`, `resources` (ObjectReferences),
//!   `message` and `properties` (string to string);
//! - `severity` is `high`, `medium` or `low` in every published v1alpha2
//!   CRD (later ones add `critical` and `info`).
//!
//! Here the policy is `apiload`, its rules apiload's rules: an error is a
//! `fail` of severity `high`, a warning a `warn` of `medium`, an info a
//! `warn` of `low`; every analysed workload without a finding is a `pass`.
//! Reports are named `apiload` (then `apiload-2`, … past 1,000 results, to
//! stay far from etcd's object size limit) and labelled
//! `app.kubernetes.io/managed-by: apiload`, so that whoever keeps them up to
//! date can find and replace them.

use crate::audit::{Audit, Audited};
use apiload_rules::Severity;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

pub const API_VERSION: &str = "wgpolicyk8s.io/v1alpha2";
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "apiload");
pub const NAME: &str = "apiload";
/// Results per report.
pub const MAX_RESULTS: usize = 1_000;

fn object_reference(o: &Audited) -> Value {
    let mut r = json!({"apiVersion": o.api_version, "kind": o.reference.kind, "name": o.reference.name});
    if let Some(ns) = &o.reference.namespace {
        r["namespace"] = json!(ns);
    }
    if let Some(uid) = &o.uid {
        r["uid"] = json!(uid);
    }
    r
}

fn severity(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::Error => ("fail", "high"),
        Severity::Warning => ("warn", "medium"),
        Severity::Info => ("warn", "low"),
    }
}

/// The reports of an audit, ready to apply: namespaces in order, the
/// cluster report last. `now`: seconds since the epoch, for timestamps.
pub fn reports(audit: &Audit, now: i64) -> Vec<Value> {
    let timestamp = json!({"seconds": now, "nanos": 0});
    // Namespace ("" for cluster-scoped) → results.
    let mut results: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut with_findings: HashSet<SourceKey> = HashSet::new();
    for d in &audit.report.diagnostics {
        let Some(subject) = audit.subject(d) else { continue };
        with_findings.insert(key(subject));
        let (result, sev) = severity(d.severity);
        let mut properties = serde_json::Map::new();
        properties.insert("ruleId".into(), json!(d.rule.id));
        if let Some(b) = d.basis {
            properties.insert("basis".into(), json!(b));
        }
        if !d.calls.is_empty() {
            let calls: Vec<String> = d
                .calls
                .iter()
                .map(|c| format!("{} {} ({}, {})", c.verbs.join("/"), c.resource, c.scope, c.basis))
                .collect();
            properties.insert("calls".into(), json!(calls.join("; ")));
        }
        if let Some(owner) = &subject.owner {
            properties.insert("owner".into(), json!(owner.describe()));
        }
        if let Some(help) = &d.help {
            properties.insert("fix".into(), json!(help));
        }
        results.entry(subject.reference.namespace.clone().unwrap_or_default()).or_default().push(json!({
            "source": NAME,
            "policy": NAME,
            "rule": d.rule.name,
            "category": d.rule.category.as_str(),
            "severity": sev,
            "result": result,
            "scored": true,
            "timestamp": timestamp,
            "resources": [object_reference(subject)],
            "message": d.message,
            "properties": properties,
        }));
    }
    let by_source: std::collections::HashMap<SourceKey, &Audited> =
        audit.objects.iter().map(|o| (o.source, o)).collect();
    for w in &audit.report.inventory.workloads {
        let obj = audit.report.inventory.object(w.object);
        let Some(subject) = by_source.get(&obj.source) else { continue };
        if with_findings.contains(&key(subject)) {
            continue;
        }
        results.entry(subject.reference.namespace.clone().unwrap_or_default()).or_default().push(json!({
            "source": NAME,
            "policy": NAME,
            "result": "pass",
            "scored": true,
            "timestamp": timestamp,
            "resources": [object_reference(subject)],
            "message": format!("{}: no finding", subject.reference),
        }));
    }
    let mut out = Vec::new();
    let mut cluster = None;
    for (ns, results) in results {
        for (i, chunk) in results.chunks(MAX_RESULTS).enumerate() {
            let name = if i == 0 { NAME.to_string() } else { format!("{NAME}-{}", i + 1) };
            let report = report(&ns, &name, chunk);
            if ns.is_empty() { cluster.get_or_insert_with(Vec::new).push(report) } else { out.push(report) }
        }
    }
    out.extend(cluster.into_iter().flatten());
    out
}

type SourceKey = apiload_rules::SourceId;

fn key(o: &Audited) -> SourceKey {
    o.source
}

fn report(namespace: &str, name: &str, results: &[Value]) -> Value {
    let mut summary = json!({"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0});
    for r in results {
        if let Some(k) = r["result"].as_str() {
            summary[k] = json!(summary[k].as_u64().unwrap_or(0) + 1);
        }
    }
    let mut metadata = json!({"name": name, "labels": {MANAGED_BY.0: MANAGED_BY.1}});
    let mut report = if namespace.is_empty() {
        json!({"apiVersion": API_VERSION, "kind": "ClusterPolicyReport"})
    } else {
        metadata["namespace"] = json!(namespace);
        json!({"apiVersion": API_VERSION, "kind": "PolicyReport",
               "scope": {"apiVersion": "v1", "kind": "Namespace", "name": namespace}})
    };
    report["metadata"] = metadata;
    report["summary"] = summary;
    report["results"] = Value::Array(results.to_vec());
    report
}

/// The reports as one YAML stream, for `kubectl apply -f`.
pub fn yaml_stream(reports: &[Value]) -> String {
    reports.iter().map(|r| format!("---\n{}", crate::yaml_text::to_yaml(r))).collect()
}
