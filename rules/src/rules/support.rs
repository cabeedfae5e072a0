//! Wording and chains shared by the fan-out rules.

use super::{Context, RuleInfo};
use crate::access::GrantPath;
use crate::analysis::{Basis, WorkloadAnalysis};
use crate::calls::{ApiCall, CallOrigin};
use crate::cost::{self, Estimate, ResourceEstimate};
use crate::diagnostic::{Diagnostic, Severity};
use crate::options::Thresholds;
use crate::source::Location;
pub use crate::text::thousands;

/// "from every node" / "from each of its 200 replicas".
pub fn from_every_copy(a: &WorkloadAnalysis) -> String {
    match &a.fanout.basis {
        Basis::DaemonSet { declared: Some((n, _)), .. } => format!("from each of its {} declared nodes", thousands(*n)),
        Basis::DaemonSet { .. } => "from every node".into(),
        Basis::Hpa(_) => format!("from each of up to {} replicas (HPA maxReplicas)", thousands(a.fanout.copies)),
        Basis::Parallelism(_) => {
            format!("from each of {} parallel pods", thousands(a.fanout.copies))
        }
        _ => format!("from each of its {} replicas", thousands(a.fanout.copies)),
    }
}

/// "at 5,000 nodes" / "with 200 replicas".
pub fn at_scale(a: &WorkloadAnalysis, ctx: &Context<'_>) -> String {
    match &a.fanout.basis {
        Basis::DaemonSet { declared: Some((n, _)), .. } => format!("on its {} declared nodes", thousands(*n)),
        Basis::DaemonSet { .. } => format!("at {} nodes", thousands(ctx.options.cluster.nodes)),
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

/// A fan-out finding about `calls`: the sentence naming what calls what, the
/// configuration keys and grants as related spans, the agent's fix.
/// `tail` ends the message with the numbers.
pub fn fanout_diagnostic(
    rule: &'static RuleInfo,
    ctx: &Context<'_>,
    a: &WorkloadAnalysis,
    calls: &[&ApiCall],
    scope: &str,
    tail: impl Fn(&Estimate) -> String,
) -> Diagnostic {
    let parts_estimate: Vec<ResourceEstimate> =
        calls.iter().map(|c| cost::call_estimate(c, a.fanout.copies, &ctx.options.cluster)).collect();
    let estimate = cost::sum(a.fanout.copies, &parts_estimate);
    let tail = tail(&estimate);
    let inferred: Vec<&ApiCall> = calls.iter().copied().filter(|c| c.origin.is_none()).collect();
    // Profiled calls, grouped by (agent, feature) in order.
    let mut features: Vec<(&CallOrigin, Vec<&ApiCall>)> = Vec::new();
    for c in calls {
        let Some(o) = &c.origin else { continue };
        match features.iter_mut().find(|(f, _)| f.agent == o.agent && f.feature == o.feature) {
            Some((_, v)) => v.push(c),
            None => features.push((o, vec![c])),
        }
    }
    let paths: Vec<&GrantPath> =
        calls.iter().filter_map(|c| a.access.find(&c.group, &c.resource)).flat_map(|c| c.via.iter()).collect();
    let mut parts = Vec::new();
    let mut agents: Vec<&str> = Vec::new();
    for (origin, cs) in &features {
        if !agents.contains(&origin.agent.as_str()) {
            agents.push(&origin.agent);
        }
        let names: Vec<String> = cs.iter().map(|c| c.display()).collect();
        parts.push(format!("its {} {} {}", origin.feature, verbs_3rd(cs), name_list(&names, 5)));
    }
    let who = workload_name(ctx, a);
    let from = from_every_copy(a);
    let profiled = (!features.is_empty()).then(|| format!("{who} runs {}: {}", agents.join(" and "), parts.join("; ")));
    let mut message = match (profiled, inferred.is_empty()) {
        (Some(p), true) => format!("{p} {scope} {from}: {tail}"),
        (profiled, false) => {
            let names: Vec<String> = inferred.iter().map(|c| c.display()).collect();
            let builtin = builtin_roles(paths.iter().copied());
            let via =
                if builtin.is_empty() { String::new() } else { format!(" (through built-in {})", builtin.join(", ")) };
            let may = format!("may {} {}{via} {scope} {from}", verbs_phrase(&inferred), name_list(&names, 5));
            match profiled {
                Some(p) => format!("{p}; another container {may}: {tail}"),
                None => format!("{who} {may}, and nothing scopes the calls to its node: {tail}"),
            }
        }
        (None, true) => format!("{who} {scope} {from}: {tail}"),
    };
    let inherent: Vec<&str> = features.iter().filter_map(|(o, _)| o.inherent.as_deref()).collect();
    let all_inherent = inferred.is_empty() && !features.is_empty() && inherent.len() == features.len();
    if all_inherent {
        message.push_str(&format!(" (inherent to its role: {})", inherent[0]));
    }
    let help = features.iter().find_map(|(o, _)| o.fix.clone()).unwrap_or_else(|| rule.fix.to_string());
    let mut severity = severity_of(&estimate, &ctx.options.thresholds);
    if all_inherent && severity > Severity::Warning {
        severity = Severity::Warning;
    }
    let mut d = Diagnostic::new(rule, ctx.identity_location(a), message)
        .workload(ctx.workload(a).1.reference())
        .help(help)
        .severity(severity);
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
    a.fanout.per_node && a.has_api_credentials()
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
