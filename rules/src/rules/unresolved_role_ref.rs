use super::{Context, Rule, RuleInfo, Stage};
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL003",
        name: "unresolved-role-ref",
        category: Category::UnresolvedReference,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A binding refers to a role that is neither in the input nor built in",
        detects: "A RoleBinding or ClusterRoleBinding whose `roleRef` names a Role or ClusterRole \
that the input does not define and that is not one of Kubernetes' built-in bootstrap roles.",
        why: "Whatever the role grants is unknown here, so findings about the bound ServiceAccounts \
may be missing. apiload reports the gap instead of guessing; the role usually lives in another \
chart or is created by an operator.",
        example: r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: agent-reader
subjects:
- kind: ServiceAccount
  name: agent
  namespace: monitoring
"#,
        example_config: None,
        fix: "Include the role's manifest in the input (lint the charts together), or fix the \
name in `roleRef`.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let rbac = &ctx.inventory.rbac;
    for b in rbac.bindings() {
        let Some(loc) = b.role_ref else { continue };
        if rbac.resolve(b).is_some() {
            continue;
        }
        let role = match b.role_kind {
            crate::rbac::RoleKind::Role => {
                format!("Role {}/{}", b.namespace.as_deref().unwrap_or(""), b.role_name)
            }
            crate::rbac::RoleKind::ClusterRole => format!("ClusterRole {}", b.role_name),
        };
        out.push(
            Diagnostic::new(
                &RULE.info,
                loc,
                format!(
                    "{} refers to {}, which is neither in the input nor built in: what it grants is unknown to this analysis",
                    b.display(),
                    role
                ),
            )
            .help(RULE.info.fix),
        );
    }
}
