//! `apiload estimate`: every workload that talks to the API server, most
//! expensive first, as a table or JSON.

use apiload_rules::cost::{self, Estimate};
use apiload_rules::{ClusterProfile, Report};
use serde::Serialize;

pub struct Row {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub estimate: Estimate,
}

/// The workloads with API credentials that make any call, sorted by the
/// bytes of their initial LISTs, then by watch events.
pub fn rows(report: &Report) -> Vec<Row> {
    let mut rows: Vec<Row> = report
        .analyses
        .iter()
        .filter(|a| a.has_api_credentials() && !a.behaviour.calls.is_empty())
        .map(|a| {
            let obj = report.inventory.object(report.inventory.workloads[a.workload].object);
            Row {
                kind: obj.kind.to_string(),
                namespace: obj.namespace.as_ref().map(|n| n.to_string()),
                name: obj.name.to_string(),
                estimate: cost::estimate(a, &report.options.cluster),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        let key = |r: &Row| (r.estimate.initial_list_bytes, r.estimate.watch_events_per_second);
        key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.name.cmp(&b.name))
    });
    rows
}

#[derive(Serialize)]
struct JsonOut<'a> {
    cluster: JsonCluster,
    workloads: Vec<JsonRow<'a>>,
}

#[derive(Serialize)]
struct JsonCluster {
    nodes: u64,
    pods: f64,
    services: f64,
    namespaces: f64,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    name: &'a str,
    copies: u64,
    watches: u64,
    initial_list_bytes: f64,
    watch_events_per_second: f64,
    /// `null` when the client has no rate limit or it is not known.
    requests_per_second: Option<f64>,
    /// `limited`, `unbounded` or `unknown`.
    client_rate_limit: &'static str,
    lease_requests_per_second: f64,
    poll_bytes_per_second: f64,
    /// With `--audit-log`: the request rate one copy was seen to send, times the copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    observed_requests_per_second: Option<f64>,
    resources: Vec<JsonResource<'a>>,
}

#[derive(Serialize)]
struct JsonResource<'a> {
    resource: &'a str,
    scope: &'a str,
    verbs: Vec<&'static str>,
    copies: u64,
    objects_per_copy: f64,
    watches: u64,
    initial_list_bytes: f64,
    watch_events_per_second: f64,
}

pub fn json(rows: &[Row], cluster: &ClusterProfile) -> String {
    let out = JsonOut {
        cluster: JsonCluster {
            nodes: cluster.nodes,
            pods: cluster.pods(),
            services: cluster.services(),
            namespaces: cluster.namespaces(),
        },
        workloads: rows
            .iter()
            .map(|r| JsonRow {
                kind: &r.kind,
                namespace: r.namespace.as_deref(),
                name: &r.name,
                copies: r.estimate.copies,
                watches: r.estimate.watches,
                initial_list_bytes: r.estimate.initial_list_bytes,
                watch_events_per_second: r.estimate.watch_events_per_second,
                requests_per_second: r.estimate.requests_per_second,
                client_rate_limit: r.estimate.client.as_str(),
                lease_requests_per_second: r.estimate.lease_requests_per_second,
                poll_bytes_per_second: r.estimate.poll_bytes_per_second,
                observed_requests_per_second: r.estimate.observed_requests_per_second,
                resources: r
                    .estimate
                    .resources
                    .iter()
                    .map(|x| JsonResource {
                        resource: &x.resource,
                        scope: x.scope,
                        verbs: [(x.list, "list"), (x.watch, "watch")]
                            .into_iter()
                            .filter(|(on, _)| *on)
                            .map(|(_, v)| v)
                            .chain((!x.list && !x.watch).then_some("get"))
                            .collect(),
                        copies: x.copies,
                        objects_per_copy: x.objects_per_copy,
                        watches: x.watches,
                        initial_list_bytes: x.initial_list_bytes,
                        watch_events_per_second: x.watch_events_per_second,
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&out).unwrap_or_default();
    s.push('\n');
    s
}

pub fn table(rows: &[Row], cluster: &ClusterProfile) -> String {
    let mut lines: Vec<[String; 7]> = vec![[
        "WORKLOAD".into(),
        "COPIES".into(),
        "WATCHES".into(),
        "INITIAL LIST".into(),
        "EVENTS/S".into(),
        "REQ/S CEILING".into(),
        "CALLS".into(),
    ]];
    for r in rows {
        let e = &r.estimate;
        let who = match &r.namespace {
            Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
            None => format!("{} {}", r.kind, r.name),
        };
        let mut calls: Vec<String> = e.resources.iter().map(|x| format!("{} ({})", x.resource, x.scope)).collect();
        calls.dedup();
        let shown =
            if calls.len() > 3 { format!("{}, +{}", calls[..3].join(", "), calls.len() - 3) } else { calls.join(", ") };
        lines.push([
            who,
            apiload_rules::text::thousands(e.copies),
            apiload_rules::text::thousands(e.watches),
            cost::bytes(e.initial_list_bytes),
            cost::rate(e.watch_events_per_second),
            e.requests_per_second.map_or_else(|| e.client.as_str().to_string(), cost::rate),
            shown,
        ]);
    }
    let widths: Vec<usize> = (0..7).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            if i == 6 {
                line.push_str(cell);
            } else if (1..6).contains(&i) {
                line.push_str(&format!("{cell:>w$}  ", w = widths[i]));
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let observed: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let rate = r.estimate.observed_requests_per_second?;
            let who = match &r.namespace {
                Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
                None => format!("{} {}", r.kind, r.name),
            };
            Some(format!(
                "  {who}: {} requests/s from {} copies",
                cost::rate(rate),
                apiload_rules::text::thousands(r.estimate.copies)
            ))
        })
        .collect();
    if !observed.is_empty() {
        out.push_str("\nRequests at the rate the audit log showed per copy:\n");
        out.push_str(&observed.join("\n"));
        out.push('\n');
    }
    out.push_str(&format!(
        "\nAt {} nodes, {} pods, {} Services, {} namespaces. The model: docs/cost-model.md\n",
        apiload_rules::text::thousands(cluster.nodes),
        apiload_rules::text::thousands(cluster.pods() as u64),
        apiload_rules::text::thousands(cluster.services() as u64),
        apiload_rules::text::thousands(cluster.namespaces() as u64)
    ));
    out
}
