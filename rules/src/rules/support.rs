//! Wording and chains shared by the fan-out rules.

use super::{Context, RuleInfo};
use crate::access::GrantPath;
use crate::analysis::WorkloadAnalysis;
use crate::calls::{ApiCall, Basis, CallOrigin};
use crate::copies::{DaemonSetNodes, FanOutBasis};
use crate::cost::{self, Estimate, ResourceEstimate};
use crate::diagnostic::{Diagnostic, Severity};
use crate::kube::resources;
use crate::options::Thresholds;
use crate::source::Location;
pub use crate::text::thousands;

/// "from every node" / "from each of its 200 replicas".
pub fn from_every_copy(a: &WorkloadAnalysis) -> String {
    let n = thousands(a.fanout.copies);
    match &a.fanout.basis {
        FanOutBasis::DaemonSet(DaemonSetNodes::Declared(_)) => format!("from each of its {n} declared nodes"),
        FanOutBasis::DaemonSet(DaemonSetNodes::Pools(pools)) => {
            format!("from each of its {n} nodes (node pools {})", name_list(pools, 4))
        }
        FanOutBasis::DaemonSet(DaemonSetNodes::Assumed { .. }) => "from every node".into(),
        FanOutBasis::Hpa(_) => format!("from each of up to {n} replicas (HPA maxReplicas)"),
        FanOutBasis::Proportional(p) => {
            format!(
                "from each of its {n} replicas (set by cluster-proportional-autoscaler {}, {})",
                p.autoscaler, p.rule
            )
        }
        FanOutBasis::Parallelism(_) => format!("from each of {n} parallel pods"),
        _ => format!("from each of its {n} replicas"),
    }
}

/// "at 5,000 nodes" / "with 200 replicas", saying what is assumed.
pub fn at_scale(a: &WorkloadAnalysis, ctx: &Context<'_>) -> String {
    let nodes = thousands(ctx.options.cluster.nodes);
    match &a.fanout.basis {
        FanOutBasis::DaemonSet(DaemonSetNodes::Declared(_)) => {
            format!("on its {} declared nodes", thousands(a.fanout.copies))
        }
        FanOutBasis::DaemonSet(DaemonSetNodes::Pools(_)) => {
            format!("on {} of {nodes} nodes", thousands(a.fanout.copies))
        }
        FanOutBasis::DaemonSet(DaemonSetNodes::Assumed { restricted: true }) => format!(
            "at {nodes} nodes (all of them assumed: its node selector narrows it to nodes the cluster profile does not describe; give the profile `nodePools`)"
        ),
        FanOutBasis::DaemonSet(DaemonSetNodes::Assumed { restricted: false }) => format!("at {nodes} nodes"),
        FanOutBasis::Proportional(_) => format!("at {nodes} nodes ({} replicas)", thousands(a.fanout.copies)),
        _ => format!("at {} replicas", thousands(a.fanout.copies)),
    }
}

/// Lists names: "pods, nodes and 3 more".
pub fn name_list(names: &[String], max: usize) -> String {
    match names.len() {
        0 => String::new(),
        1 => names[0].clone(),
        n if n <= max => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
        n => format!("{} and {} more", names[..max].join(", "), n - max),
    }
}

/// Adds the binding and role-rule locations of grant paths as related spans,
/// each once.
pub fn add_grant_chain<'p>(
    mut d: Diagnostic,
    paths: impl IntoIterator<Item = &'p GrantPath>,
    what: &str,
) -> Diagnostic {
    let mut seen: Vec<Location> = d.related.iter().map(|r| r.location).collect();
    for p in paths {
        if let Some(loc) = p.subject
            && !seen.contains(&loc)
        {
            seen.push(loc);
            d = d.related(loc, format!("{} binds it to {}", p.binding, p.role));
        }
        if let Some(loc) = p.rule
            && !seen.contains(&loc)
        {
            seen.push(loc);
            d = d.related(loc, format!("{} grants {} on {}{}", p.rule_role, p.verbs, p.resources, what));
        }
    }
    d
}

/// "via built-in ClusterRole view" notes for grants that have no location.
pub fn builtin_roles<'p>(paths: impl IntoIterator<Item = &'p GrantPath>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        if p.rule.is_none() && !out.contains(&p.rule_role) {
            out.push(p.rule_role.clone());
        }
    }
    out
}

/// The workload's name for messages: `DaemonSet monitoring/agent`.
pub fn workload_name(ctx: &Context<'_>, a: &WorkloadAnalysis) -> String {
    ctx.workload(a).1.display()
}

/// "LIST and WATCH" / "WATCH" / "LIST" for a set of calls.
pub fn verbs_phrase(calls: &[&ApiCall]) -> &'static str {
    let (list, watch) = calls.iter().fold((false, false), |(l, w), c| (l || c.list, w || c.watch));
    match (list, watch) {
        (true, true) => "LIST and WATCH",
        (false, true) => "WATCH",
        _ => "LIST",
    }
}

/// "lists and watches" / "watches" / "lists" (third person).
pub fn verbs_3rd(calls: &[&ApiCall]) -> &'static str {
    match verbs_phrase(calls) {
        "LIST and WATCH" => "lists and watches",
        "WATCH" => "watches",
        _ => "lists",
    }
}

/// Each collection with exactly the verbs it is called with, grouped:
/// "LIST and WATCH pods and services, and LIST events".
pub fn verbs_by_collection(calls: &[&ApiCall]) -> String {
    let mut groups: Vec<(&'static str, Vec<String>)> = Vec::new();
    for c in calls {
        match groups.iter_mut().find(|(v, _)| *v == c.verbs()) {
            Some((_, names)) => names.push(c.display()),
            None => groups.push((c.verbs(), vec![c.display()])),
        }
    }
    let parts: Vec<String> = groups.iter().map(|(v, names)| format!("{v} {}", name_list(names, 5))).collect();
    match parts.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{}, and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The estimate of `calls` made by every copy of `a`.
pub fn estimate_of(ctx: &Context<'_>, a: &WorkloadAnalysis, calls: &[&ApiCall]) -> Estimate {
    let parts: Vec<ResourceEstimate> =
        calls.iter().map(|c| cost::call_estimate(c, a.fanout.copies, &ctx.options.cluster)).collect();
    cost::sum(a.fanout.copies, &parts)
}

/// What the estimate assumes of collections the catalog does not know.
fn unknown_sizes(ctx: &Context<'_>, calls: &[&ApiCall]) -> Option<String> {
    let unknown: Vec<String> = calls.iter().filter(|c| c.info.is_none()).map(|c| c.display()).collect();
    if unknown.is_empty() {
        return None;
    }
    let n = cost::count(&cost::UNKNOWN, &ctx.options.cluster);
    Some(format!(
        " ({} {} not in apiload's catalog: assumed {} objects of {} each; set their size in the cluster profile)",
        name_list(&unknown, 3),
        if unknown.len() == 1 { "is" } else { "are" },
        thousands(n as u64),
        cost::bytes(cost::UNKNOWN.object_bytes)
    ))
}

/// Why nothing lets copies that make inferred `calls` ask for less.
fn unscoped_because(a: &WorkloadAnalysis, calls: &[&ApiCall]) -> String {
    let (filterable, unfilterable): (Vec<&&ApiCall>, Vec<&&ApiCall>) =
        calls.iter().partition(|c| resources::node_filter(&c.group, &c.resource).is_some());
    let names = |cs: &[&&ApiCall]| name_list(&cs.iter().map(|c| c.display()).collect::<Vec<_>>(), 4);
    let mut reasons = Vec::new();
    if !unfilterable.is_empty() {
        reasons.push(format!("the API server cannot filter {} by node", names(&unfilterable)));
    }
    if !filterable.is_empty() {
        reasons.push(match a.behaviour.node_identity {
            None => "it is not told its node name".to_string(),
            Some(_) => format!("its calls on {} are unverified", names(&filterable)),
        });
    }
    reasons.join(", and ")
}

/// How to fix inferred fan-outs: what each collection allows.
fn inferred_fix(a: &WorkloadAnalysis, calls: &[&ApiCall]) -> String {
    let (filterable, unfilterable): (Vec<&&ApiCall>, Vec<&&ApiCall>) =
        calls.iter().partition(|c| resources::node_filter(&c.group, &c.resource).is_some());
    let mut fix = Vec::new();
    if !filterable.is_empty() {
        let selectors: Vec<String> = filterable
            .iter()
            .filter_map(|c| {
                resources::node_filter(&c.group, &c.resource)
                    .map(|f| format!("{} with `{}`", c.display(), f.selector()))
            })
            .collect();
        let given = match &a.behaviour.node_identity {
            Some(identity) => format!("It is told {}: have it", identity.describe()),
            None => "Give it its node name from the downward API (`env: [{name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]`) and have it".to_string(),
        };
        fix.push(format!("{given} list and watch {}.", name_list(&selectors, 4)));
    }
    if !unfilterable.is_empty() {
        let names: Vec<String> = unfilterable.iter().map(|c| c.display()).collect();
        fix.push(format!(
            "The API server cannot filter {} by node: such collections belong in one central Deployment that the node agents ask (the Datadog Cluster Agent pattern); if the agent does not need them, remove `list` and `watch` from its role.",
            name_list(&names, 4)
        ));
    }
    fix.push(format!(
        "If the agent already does less than its grants allow, say so with a profile or a declaration (`{}`).",
        crate::declared::CALLS_ANNOTATION
    ));
    fix.join(" ")
}

/// A fan-out finding about `calls`: the sentence naming what calls what and
/// on what it rests (a profile's configuration key, the owner's declaration,
/// or only the grants), the configuration keys and grants as related spans,
/// the fix. `tail` ends the message with the numbers.
pub fn fanout_diagnostic(
    rule: &'static RuleInfo,
    ctx: &Context<'_>,
    a: &WorkloadAnalysis,
    calls: &[&ApiCall],
    scope: &str,
    tail: impl Fn(&Estimate) -> String,
) -> Diagnostic {
    let estimate = estimate_of(ctx, a, calls);
    let tail = format!("{}{}", tail(&estimate), unknown_sizes(ctx, calls).unwrap_or_default());
    let inferred: Vec<&ApiCall> = calls.iter().copied().filter(|c| !c.basis.is_known()).collect();
    let declared: Vec<&ApiCall> = calls.iter().copied().filter(|c| c.basis == Basis::Declared).collect();
    let observed: Vec<&ApiCall> = calls.iter().copied().filter(|c| c.basis == Basis::Observed).collect();
    // Profiled calls, grouped by (agent, feature) in order.
    let mut features: Vec<(&CallOrigin, Vec<&ApiCall>)> = Vec::new();
    for c in calls.iter().filter(|c| c.basis == Basis::Profile) {
        let Some(o) = &c.origin else { continue };
        match features.iter_mut().find(|(f, _)| f.agent == o.agent && f.feature == o.feature) {
            Some((_, v)) => v.push(c),
            None => features.push((o, vec![c])),
        }
    }
    let paths: Vec<&GrantPath> =
        calls.iter().filter_map(|c| a.access.find(&c.group, &c.resource)).flat_map(|c| c.via.iter()).collect();
    let mut agents: Vec<&str> = Vec::new();
    let mut known = Vec::new();
    for (origin, cs) in &features {
        if !agents.contains(&origin.agent.as_str()) {
            agents.push(&origin.agent);
        }
        let names: Vec<String> = cs.iter().map(|c| c.display()).collect();
        known.push(format!("its {} {} {}", origin.feature, verbs_3rd(cs), name_list(&names, 5)));
    }
    let who = workload_name(ctx, a);
    let from = from_every_copy(a);
    let mut said = Vec::new();
    if !features.is_empty() {
        said.push(format!("runs {}: {}", agents.join(" and "), known.join("; ")));
    }
    if !declared.is_empty() {
        said.push(format!(
            "is declared (`{}`) to {}",
            crate::declared::CALLS_ANNOTATION,
            verbs_by_collection(&declared)
        ));
    }
    if !observed.is_empty() {
        said.push(format!("was seen in the API server's audit log to {}", verbs_by_collection(&observed)));
    }
    let mut message = match (said.is_empty(), inferred.is_empty()) {
        (false, true) => format!("{who} {} {scope} {from}: {tail}", said.join("; it ")),
        (known_empty, false) => {
            let builtin = builtin_roles(paths.iter().copied());
            let via =
                if builtin.is_empty() { String::new() } else { format!(" (through built-in {})", builtin.join(", ")) };
            let may = format!("may {}{via} {scope} {from}", verbs_by_collection(&inferred));
            let because = unscoped_because(a, &inferred);
            if known_empty {
                format!("{who} {may}, and nothing lets it ask for less ({because}): {tail}")
            } else {
                format!("{who} {}; another container {may} ({because}): {tail}", said.join("; it "))
            }
        }
        (true, true) => format!("{who} {scope} {from}: {tail}"),
    };
    let inherent: Vec<&str> = features.iter().filter_map(|(o, _)| o.inherent.as_deref()).collect();
    let all_inherent = inferred.is_empty() && !features.is_empty() && inherent.len() == features.len();
    if all_inherent {
        message.push_str(&format!(" (inherent to its role: {})", inherent[0]));
    }
    let help = match features.iter().find_map(|(o, _)| o.fix.clone()) {
        Some(f) => f,
        None if !inferred.is_empty() => inferred_fix(a, &inferred),
        None => rule.fix.to_string(),
    };
    let mut severity = severity_of(&estimate, &ctx.options.thresholds);
    if all_inherent && severity > Severity::Warning {
        severity = Severity::Warning;
    }
    let mut d = Diagnostic::new(rule, ctx.identity_location(a), message)
        .workload(ctx.workload(a).1.reference())
        .help(help)
        .severity(severity)
        .calls(calls.iter().map(|c| c.reference()).collect());
    for (origin, cs) in &features {
        let names: Vec<String> = cs.iter().map(|c| c.display()).collect();
        let text = match &origin.because {
            Some(b) => format!("{}: {b}", origin.feature),
            None => format!("{} {} {}", origin.feature, verbs_3rd(cs), name_list(&names, 5)),
        };
        if !d.related.iter().any(|r| r.location == origin.evidence) && origin.evidence != d.location {
            d = d.related(origin.evidence, text);
        }
    }
    for c in declared.iter().chain(&observed) {
        if let Some(o) = &c.origin
            && !d.related.iter().any(|r| r.location == o.evidence)
        {
            d = d.related(o.evidence, o.feature.clone());
        }
    }
    if let FanOutBasis::Proportional(p) = &a.fanout.basis {
        d = d.related(p.location, format!("the parameters {} scales it by ({})", p.autoscaler, p.rule));
    }
    add_grant_chain(d, paths, "")
}

/// The severity an estimate deserves.
pub fn severity_of(e: &Estimate, t: &Thresholds) -> Severity {
    if e.initial_list_bytes >= t.error_list_bytes || e.watch_events_per_second >= t.error_events_per_second {
        Severity::Error
    } else if e.initial_list_bytes >= t.warning_list_bytes || e.watch_events_per_second >= t.warning_events_per_second {
        Severity::Warning
    } else {
        Severity::Info
    }
}

/// "its 5,000 copies hold 15,000 watches; a rollout LISTs about 6.1 TB at
/// once and the watches deliver 835,000 events/s".
pub fn estimate_phrase(e: &Estimate, watch_kind: &str) -> String {
    let mut out = Vec::new();
    if e.watches > 0 {
        out.push(format!("its {} copies hold {} {watch_kind} watches", thousands(e.copies), thousands(e.watches)));
    }
    out.push(format!("a rollout LISTs about {} at once", cost::bytes(e.initial_list_bytes)));
    if e.watch_events_per_second > 0.0 {
        out.push(format!("the watches deliver {} events/s", cost::rate(e.watch_events_per_second)));
    }
    if e.poll_bytes_per_second > 0.0 {
        out.push(format!("repeating the LISTs sends {}/s for good", cost::bytes(e.poll_bytes_per_second)));
    }
    match out.len() {
        1 => out.remove(0),
        _ => {
            let last = out.pop().unwrap_or_default();
            format!("{} and {last}", out.join("; "))
        }
    }
}

/// Skips workloads that cannot call the API or do not fan out.
pub fn fans_out_with_credentials(a: &WorkloadAnalysis) -> bool {
    a.fans_out_with_credentials()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_lists() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(name_list(&n(&["a"]), 3), "a");
        assert_eq!(name_list(&n(&["a", "b"]), 3), "a and b");
        assert_eq!(name_list(&n(&["a", "b", "c", "d", "e"]), 3), "a, b, c and 2 more");
    }
}
