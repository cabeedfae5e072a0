use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::diagnostic::{Category, Diagnostic, Severity};
use crate::kube::resources;
use crate::rbac::{RoleKind, SubjectKind};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL106",
        name: "broad-group-list-watch",
        category: Category::RbacHygiene,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "List/watch granted to every ServiceAccount (or every authenticated user)",
        detects: "A RoleBinding or ClusterRoleBinding whose subjects include the group \
`system:serviceaccounts`, `system:serviceaccounts:<namespace>`, `system:authenticated` or \
`system:unauthenticated`, bound to a role that allows `list` or `watch` on a collection.",
        why: "The grant reaches every DaemonSet there is and every one that will be installed, \
whatever its own RBAC says: any of them can start cluster-wide watches without any review of \
its chart. At 5,000 nodes one such agent is 5,000 watchers.",
        example: r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: everyone-reads-pods
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: Group
  name: system:serviceaccounts
  apiGroup: rbac.authorization.k8s.io
"#,
        example_config: None,
        fix: "Bind the role to the ServiceAccounts that need it, by name.",
    },
    check,
};

fn is_broad(group: &str) -> bool {
    group == "system:serviceaccounts"
        || group.starts_with("system:serviceaccounts:")
        || group == "system:authenticated"
        || group == "system:unauthenticated"
}

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let rbac = &ctx.inventory.rbac;
    for b in rbac.bindings() {
        // Only bindings of the input to a broad group (built-in ones have no location).
        let to_broad_group = |s: &crate::rbac::Subject| matches!(&s.kind, SubjectKind::Group(g) if is_broad(g));
        if !b.subjects.iter().any(|s| s.location.is_some() && to_broad_group(s)) {
            continue;
        }
        let Some(role_id) = rbac.resolve(b) else {
            continue;
        };
        let mut names: Vec<String> = Vec::new();
        let mut rule_loc = None;
        for (_, rule) in rbac.rules(role_id) {
            if !rule.applies_to_collections() || !(rule.allows_verb("list") || rule.allows_verb("watch")) {
                continue;
            }
            for r in rule.resources.iter().filter(|r| !r.contains('/')) {
                for g in &rule.api_groups {
                    let n = resources::display(if &**g == "*" { "" } else { g }, r);
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
            rule_loc = rule_loc.or(rule.origin.map(|o| o.verbs));
        }
        if names.is_empty() {
            continue;
        }
        for s in &b.subjects {
            let (SubjectKind::Group(group), Some(loc)) = (&s.kind, s.location) else {
                continue;
            };
            if !is_broad(group) {
                continue;
            }
            let role = rbac.role(role_id);
            let whom = match (&**group, &b.namespace) {
                ("system:serviceaccounts", _) => "every ServiceAccount".to_string(),
                ("system:authenticated", _) => {
                    "every authenticated identity, every ServiceAccount included".to_string()
                }
                ("system:unauthenticated", _) => "anonymous requests".to_string(),
                (g, _) => {
                    format!("every ServiceAccount of namespace {}", g.trim_start_matches("system:serviceaccounts:"))
                }
            };
            let scope = match b.kind {
                RoleKind::ClusterRole => "across the cluster".to_string(),
                RoleKind::Role => format!("in namespace {}", b.namespace.as_deref().unwrap_or("")),
            };
            let mut d = Diagnostic::new(
                &RULE.info,
                loc,
                format!(
                    "{} grants list/watch on {} {} to {} (group {}): every DaemonSet there is or will be holds it",
                    b.display(),
                    name_list(&names, 5),
                    scope,
                    whom,
                    group
                ),
            )
            .help(RULE.info.fix);
            if b.kind == RoleKind::Role {
                d = d.severity(Severity::Info);
            }
            match rule_loc {
                Some(l) => d = d.related(l, format!("{} allows list/watch", role.display())),
                None => {
                    if let Some(l) = role.location {
                        d = d.related(l, role.display());
                    }
                }
            }
            out.push(d);
        }
    }
}
