//! Wording and chains shared by the fan-out rules.

use super::Context;
use crate::analysis::{Basis, GrantPath, WorkloadAnalysis};
use crate::diagnostic::Diagnostic;
use crate::source::Location;

/// `5000` → `5,000`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "from every node" / "from each of its 200 replicas".
pub fn from_every_copy(a: &WorkloadAnalysis) -> String {
    match &a.fanout.basis {
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
        _ => format!("with {} copies", thousands(a.fanout.copies)),
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

/// Skips workloads that cannot call the API or do not fan out.
pub fn fans_out_with_credentials(a: &WorkloadAnalysis) -> bool {
    a.fanout.per_node && a.has_api_credentials()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(5000), "5,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn name_lists() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(name_list(&n(&["a"]), 3), "a");
        assert_eq!(name_list(&n(&["a", "b"]), 3), "a and b");
        assert_eq!(name_list(&n(&["a", "b", "c", "d", "e"]), 3), "a, b, c and 2 more");
    }
}
