//! The summary of `apiload learn`: per workload (or ServiceAccount) what it
//! was seen to call, how often per copy, what it was refused and which of
//! its grants it never used; as text or JSON (docs/learn.md).

use super::{Entry, copies_phrase};
use apiload::audit_log::ReadReport;
use apiload_rules::least_privilege::Usage;
use apiload_rules::observed::{Observations, ObservedCall, event::format_timestamp};
use serde::Serialize;

/// "1 per pod", "12 per pod, about every 5.0 s", "held 4.0 s on average".
pub fn rates(account: &apiload_rules::observed::Account, c: &ObservedCall) -> String {
    let per = if account.knows_pods() { "pod" } else { "client" };
    let each = c.requests as f64 / c.copies.max(1) as f64;
    let mut out = format!("{}, {} per {per}", copies_phrase(account, c.copies), number(each));
    if let Some(i) = c.interval {
        out.push_str(&format!(", about every {}", seconds(i)));
    } else if c.long_running == 0 && account.seconds() > 60.0 {
        out.push_str(&format!(", {}/h per {per}", number(c.per_copy_per_hour)));
    }
    if let Some(h) = c.held {
        out.push_str(&format!(", held {} on average", seconds(h)));
    }
    out
}

fn number(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 { format!("{}", x.round() as u64) } else { format!("{x:.1}") }
}

fn seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.1} s")
    }
}

pub fn human(entries: &[Entry<'_>], o: &Observations, report: &ReadReport, today: &str) -> String {
    let mut out = String::new();
    let lines: u64 = report.files.iter().map(|f| f.lines).sum();
    out.push_str(&format!(
        "apiload learn: {} ({} lines, {} requests of ServiceAccounts), learned {today}\n",
        o.source, lines, o.counts.requests
    ));
    if entries.is_empty() {
        out.push_str(
            "\nNothing in the log is a request of the workloads' ServiceAccounts (or of any ServiceAccount).\n",
        );
    }
    for e in entries {
        let a = e.account;
        let who = match &e.workload {
            Some(w) => format!("{} (ServiceAccount {})", w.display, a.display()),
            None => format!("ServiceAccount {}", a.display()),
        };
        let nodes: std::collections::BTreeSet<&str> =
            e.copies.iter().filter_map(|&c| a.copies[c as usize].node.as_deref()).collect();
        let on_nodes = if nodes.is_empty() { String::new() } else { format!(" on {} nodes", nodes.len()) };
        let total: u64 = e.calls.iter().map(|c| c.requests).sum();
        out.push_str(&format!(
            "\n{who}: {}{on_nodes}, {} requests over {} ({} to {})\n",
            copies_phrase(a, e.copies.len()),
            total,
            seconds(a.seconds()),
            format_timestamp(a.first),
            format_timestamp(a.last)
        ));
        for c in e.calls.iter().filter(|c| c.allowed()) {
            out.push_str(&format!("  {}: {}", c.describe(), rates(a, c)));
            if let Some(n) = &c.node {
                out.push_str(&format!("; node scope: {}", n.describe()));
            }
            out.push('\n');
        }
        for c in e.calls.iter().filter(|c| c.refused > 0) {
            out.push_str(&format!("  refused (403): {} ×{}\n", c.describe(), c.refused));
        }
        // One line per role, binding and kind of use: "get on pods; list, watch on nodes".
        type VerbsByResource = Vec<(String, Vec<String>)>;
        let mut grouped: Vec<(String, VerbsByResource)> = Vec::new();
        for u in &e.unused {
            let what = match &u.usage {
                Usage::Unused => "never used".to_string(),
                Usage::OnlyIn(ns) => format!("granted in every namespace, used only in {}", ns.join(", ")),
            };
            let head = format!("{} grants {{}} through {}: {what}", u.role, u.binding);
            let at = match grouped.iter().position(|(h, _)| *h == head) {
                Some(i) => i,
                None => {
                    grouped.push((head, Vec::new()));
                    grouped.len() - 1
                }
            };
            let resources = &mut grouped[at].1;
            match resources.iter_mut().find(|(r, _)| *r == u.resource) {
                Some((_, verbs)) => verbs.push(u.verb.clone()),
                None => resources.push((u.resource.clone(), vec![u.verb.clone()])),
            }
        }
        for (head, resources) in grouped {
            let what: Vec<String> = resources.iter().map(|(r, v)| format!("{} on {r}", v.join(", "))).collect();
            out.push_str(&format!("  over-grant: {}\n", head.replacen("{}", &what.join("; "), 1)));
        }
        match &e.profile {
            Some(Ok(p)) => out.push_str(&format!("  profile: {}\n", p.display())),
            Some(Err(why)) => out.push_str(&format!("  no profile: {why}\n")),
            None => {}
        }
    }
    out
}

#[derive(Serialize)]
struct Json<'a> {
    source: &'a str,
    files: Vec<JsonFile<'a>>,
    requests: u64,
    dropped: u64,
    malformed_lines: u64,
    /// The first lines that are not events, `FILE:LINE: why` (as on stderr).
    problems: &'a [String],
    workloads: Vec<JsonEntry<'a>>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    name: &'a str,
    lines: u64,
    malformed: u64,
    gzip: bool,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    service_account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    workload: Option<JsonWorkload<'a>>,
    copies: Vec<JsonCopy<'a>>,
    from: String,
    to: String,
    seconds: f64,
    requests_per_copy_per_second: f64,
    calls: Vec<JsonCall>,
    over_grants: Vec<JsonGrant<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_profile: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonWorkload<'a> {
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    container: &'a str,
    image: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonCopy<'a> {
    pod: Option<&'a str>,
    node: Option<&'a str>,
    address: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonCall {
    verb: String,
    group: String,
    resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    subresource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// `cluster`, `namespace`, `node` or `object`.
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field_selector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_selector: Option<String>,
    /// LISTs: `unset`, `0`, `not-older-than` or `exact`.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_version: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    paginated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    copies: usize,
    requests: u64,
    refused: u64,
    failed: u64,
    per_copy_per_hour: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    held_seconds: Option<f64>,
}

#[derive(Serialize)]
struct JsonGrant<'a> {
    binding: &'a str,
    role: &'a str,
    verb: &'a str,
    resource: &'a str,
    /// `unused`, or the namespaces a cluster-wide grant was used in.
    #[serde(skip_serializing_if = "Option::is_none")]
    used_only_in: Option<Vec<&'a str>>,
}

fn scope_name(c: &ObservedCall) -> &'static str {
    match c.scope() {
        apiload_rules::calls::CallScope::Cluster => "cluster",
        apiload_rules::calls::CallScope::Namespaces(_) => "namespace",
        apiload_rules::calls::CallScope::Node => "node",
        apiload_rules::calls::CallScope::Object => "object",
    }
}

fn node_name(n: &apiload_rules::observed::NodeEvidence) -> String {
    use apiload_rules::observed::NodeEvidence::*;
    match n {
        OwnNode => "own-node".into(),
        DiffersPerCopy => "differs-per-copy".into(),
        OneCopy => "one-copy".into(),
        SameForAll(n) => format!("same-for-all:{n}"),
        Several => "several".into(),
    }
}

pub fn json(entries: &[Entry<'_>], o: &Observations, report: &ReadReport) -> String {
    let out = Json {
        source: &o.source,
        files: report
            .files
            .iter()
            .map(|f| JsonFile { name: &f.name, lines: f.lines, malformed: f.malformed, gzip: f.gzip })
            .collect(),
        requests: o.counts.requests,
        dropped: o.counts.dropped,
        malformed_lines: report.problem_count,
        problems: &report.problems,
        workloads: entries
            .iter()
            .map(|e| {
                let a = e.account;
                let total: u64 = e.calls.iter().map(|c| c.requests).sum();
                JsonEntry {
                    service_account: a.display(),
                    workload: e.workload.as_ref().map(|w| JsonWorkload {
                        kind: &w.kind,
                        namespace: &w.namespace,
                        name: &w.name,
                        container: &w.container,
                        image: w.image.as_deref(),
                    }),
                    copies: e
                        .copies
                        .iter()
                        .map(|&i| {
                            let c = &a.copies[i as usize];
                            JsonCopy { pod: c.pod.as_deref(), node: c.node.as_deref(), address: c.address.as_deref() }
                        })
                        .collect(),
                    from: format_timestamp(a.first),
                    to: format_timestamp(a.last),
                    seconds: a.seconds(),
                    requests_per_copy_per_second: total as f64 / e.copies.len().max(1) as f64 / a.seconds(),
                    calls: e
                        .calls
                        .iter()
                        .map(|c| JsonCall {
                            verb: c.shape.verb.to_string(),
                            group: c.shape.group.to_string(),
                            resource: c.shape.resource.to_string(),
                            subresource: c.shape.subresource.to_string(),
                            path: c.shape.path.as_ref().map(|p| p.to_string()),
                            scope: scope_name(c),
                            namespace: c.shape.namespace.as_ref().map(|n| n.to_string()),
                            name: c.shape.name.as_ref().map(|n| n.to_string()),
                            field_selector: c.shape.field_selector.as_ref().map(|n| n.to_string()),
                            label_selector: c.shape.label_selector.as_ref().map(|n| n.to_string()),
                            resource_version: c.shape.list.map(|l| l.as_str()),
                            paginated: c.shape.paginated,
                            node: c.node.as_ref().map(node_name),
                            copies: c.copies,
                            requests: c.requests,
                            refused: c.refused,
                            failed: c.failed,
                            per_copy_per_hour: c.per_copy_per_hour,
                            interval_seconds: c.interval,
                            held_seconds: c.held,
                        })
                        .collect(),
                    over_grants: e
                        .unused
                        .iter()
                        .map(|u| JsonGrant {
                            binding: &u.binding,
                            role: &u.role,
                            verb: &u.verb,
                            resource: &u.resource,
                            used_only_in: match &u.usage {
                                Usage::Unused => None,
                                Usage::OnlyIn(ns) => Some(ns.iter().map(|n| &**n).collect()),
                            },
                        })
                        .collect(),
                    profile: match &e.profile {
                        Some(Ok(p)) => Some(p.display().to_string()),
                        _ => None,
                    },
                    no_profile: match &e.profile {
                        Some(Err(why)) => Some(why.as_str()),
                        _ => None,
                    },
                }
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&out).unwrap_or_default();
    s.push('\n');
    s
}
