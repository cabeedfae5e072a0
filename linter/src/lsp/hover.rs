//! Hover on a workload: what it costs the API server at production size
//! (the numbers of `apiload estimate`), and the findings about it.

use super::convert;
use super::snapshot::Snapshot;
use apiload_rules::copies::{DaemonSetNodes, FanOutBasis};
use apiload_rules::cost::{self, ClientRate};
use apiload_rules::text::thousands;
use apiload_rules::{Object, WorkloadAnalysis};
use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind, Position};

pub fn hover(snap: &Snapshot, slot: usize, pos: Position) -> Option<Hover> {
    let source = snap.source(slot)?;
    let offset = convert::offset(source.text()?, &source.lines, pos, snap.encoding);
    let (a, obj) = snap
        .analyses()
        .into_iter()
        .filter(|(_, o)| o.source.0 as usize == slot && o.node.span.start <= offset && offset <= o.node.span.end)
        .min_by_key(|(_, o)| o.node.span.len())?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: describe(snap, a, obj) }),
        range: Some(convert::source_range(source, obj.name_span, snap.encoding)),
    })
}

fn basis(a: &WorkloadAnalysis) -> String {
    match &a.fanout.basis {
        FanOutBasis::DaemonSet(DaemonSetNodes::Declared(_)) => {
            format!("{} copies, declared by `apiload.dev/expected-nodes`", thousands(a.fanout.copies))
        }
        FanOutBasis::DaemonSet(DaemonSetNodes::Pools(pools)) => {
            format!("one per node of the node pools it schedules on ({})", pools.join(", "))
        }
        FanOutBasis::DaemonSet(DaemonSetNodes::Assumed { restricted: true }) => {
            "one per node (a node selector narrows it to nodes the cluster profile does not describe: counted as every node)".into()
        }
        FanOutBasis::DaemonSet(DaemonSetNodes::Assumed { restricted: false }) => "one per node".into(),
        FanOutBasis::Replicas(_) => "its replicas".into(),
        FanOutBasis::Hpa(_) => "its HorizontalPodAutoscaler's `maxReplicas`".into(),
        FanOutBasis::Proportional(p) => format!("cluster-proportional-autoscaler {} ({})", p.autoscaler, p.rule),
        FanOutBasis::Parallelism(_) => "its parallelism".into(),
        FanOutBasis::Pod => "a single Pod".into(),
    }
}

fn describe(snap: &Snapshot, a: &WorkloadAnalysis, obj: &Object) -> String {
    let cluster = &snap.options().cluster;
    let e = cost::estimate(a, cluster);
    let mut md = format!(
        "**{}**: {} copies ({}) at {} nodes\n\n",
        obj.display(),
        thousands(e.copies),
        basis(a),
        thousands(cluster.nodes)
    );
    if !a.has_api_credentials() {
        md.push_str(
            "No API credentials (`automountServiceAccountToken: false`): its copies do not call the API server.\n",
        );
    } else if e.resources.is_empty() {
        md.push_str("No list or watch calls are known: its load does not grow with the cluster.\n");
    } else {
        md.push_str(
            "| call | scope | basis | copies | watches | initial LIST | watch events/s |\n|---|---|---|--:|--:|--:|--:|\n",
        );
        // `cost::estimate` estimates the calls in order.
        for (r, call) in e.resources.iter().zip(&a.behaviour.calls) {
            let reference = call.reference();
            let basis = match reference.inference {
                Some(how) => format!("{} ({how})", reference.basis),
                None => reference.basis.to_string(),
            };
            let verbs: Vec<&str> =
                [(r.list, "list"), (r.watch, "watch")].into_iter().filter(|(on, _)| *on).map(|(_, v)| v).collect();
            let verbs = if verbs.is_empty() { "get".to_string() } else { verbs.join(", ") };
            md.push_str(&format!(
                "| {} ({verbs}) | {} | {basis} | {} | {} | {} | {} |\n",
                r.resource,
                r.scope,
                thousands(r.copies),
                thousands(r.watches),
                cost::bytes(r.initial_list_bytes),
                cost::rate(r.watch_events_per_second)
            ));
        }
        let ceiling = match (e.client, e.requests_per_second) {
            (ClientRate::Limited, Some(q)) => format!("{} requests/s at most (client rate limit)", cost::rate(q)),
            (ClientRate::Unbounded, _) => "no client rate limit".into(),
            _ => "client rate limit unknown".into(),
        };
        md.push_str(&format!(
            "\nTotal: {} watches; {} of initial LISTs when every copy starts at once; {} watch events/s; {ceiling}.\n",
            thousands(e.watches),
            cost::bytes(e.initial_list_bytes),
            cost::rate(e.watch_events_per_second)
        ));
        if e.lease_requests_per_second > 0.0 {
            md.push_str(&format!(
                "Leader election in every copy: {} Lease requests/s.\n",
                cost::rate(e.lease_requests_per_second)
            ));
        }
        if e.poll_bytes_per_second > 0.0 {
            md.push_str(&format!("Repeated LISTs: {}/s.\n", cost::bytes(e.poll_bytes_per_second)));
        }
    }
    for run in &a.behaviour.agents {
        md.push_str(&format!(
            "\nContainer `{}` is {} (agent profile `{}`)",
            run.container, run.profile.name, run.profile.id
        ));
        if let Some((what, _)) = &run.config {
            md.push_str(&format!(", configured by {what}"));
        }
        md.push_str(".\n");
    }
    let me = obj.reference();
    let findings: Vec<String> = snap
        .diagnostics
        .iter()
        .flatten()
        .filter(|d| d.workload.as_ref() == Some(&me))
        .map(|d| format!("{} {} ({})", d.rule.id, d.rule.name, d.severity))
        .collect();
    if !findings.is_empty() {
        md.push_str(&format!("\nFindings: {}.\n", findings.join(", ")));
    }
    md.push_str(&format!("\n{} The model: docs/cost-model.md.\n", cluster_origin(snap)));
    md
}

/// Where the cluster size came from: the workspace's `.apiload.yaml` when it
/// has one (it is then one of the snapshot's files), else the default.
fn cluster_origin(snap: &Snapshot) -> String {
    let config =
        snap.files.iter().any(|f| f.text.is_some() && f.uri.rsplit('/').next() == Some(crate::setup::CONFIG_FILE));
    if config {
        "The cluster size comes from `cluster:` in `.apiload.yaml` (the default, 5,000 nodes, where it says nothing)."
            .into()
    } else {
        "The cluster size is the default, 5,000 nodes: set `cluster.nodes` in a `.apiload.yaml` at the workspace root to change it.".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::convert::Encoding;
    use crate::lsp::snapshot::{Part, SnapFile};
    use apiload_rules::{Input, Options, Sources};
    use std::sync::Arc;

    const DS: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: a, namespace: ns}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: b}]\n";

    fn snapshot(config: Option<&str>) -> Snapshot {
        let mut sources = Sources::new();
        let id = sources.add("ds.yaml", DS.as_bytes());
        let mut files = vec![SnapFile { uri: "file:///w/ds.yaml".into(), text: Some(Arc::from(DS.as_bytes())) }];
        if let Some(c) = config {
            sources.add(".apiload.yaml", c.as_bytes());
            files.push(SnapFile { uri: "file:///w/.apiload.yaml".into(), text: Some(Arc::from(c.as_bytes())) });
        }
        let mut input = Input::new(Options::default());
        input.add_documents(id, apiload_yaml::load_stream(DS.as_bytes(), &Default::default()));
        let report = input.analyze(&sources);
        Snapshot {
            encoding: Encoding::Utf16,
            sources,
            parts: Part::whole(report),
            files,
            diagnostics: vec![Vec::new()],
        }
    }

    fn text(snap: &Snapshot) -> String {
        let h = hover(snap, 0, Position { line: 1, character: 2 }).expect("a hover on the DaemonSet");
        match h.contents {
            HoverContents::Markup(m) => m.value,
            _ => panic!("markdown"),
        }
    }

    #[test]
    fn the_cluster_size_is_credited_to_the_configuration_only_when_there_is_one() {
        let without = text(&snapshot(None));
        assert!(without.contains("the default, 5,000 nodes: set `cluster.nodes` in a `.apiload.yaml`"), "{without}");
        assert!(!without.contains("comes from `cluster:`"), "{without}");
        let with = text(&snapshot(Some("cluster:\n  nodes: 5000\n")));
        assert!(with.contains("comes from `cluster:` in `.apiload.yaml`"), "{with}");
    }
}
