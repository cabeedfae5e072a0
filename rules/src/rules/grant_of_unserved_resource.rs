use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::diagnostic::{Category, Diagnostic, Severity};
use crate::kube::resources;

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL108",
        name: "grant-of-unserved-resource",
        category: Category::RbacHygiene,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A role rule names a resource that its built-in API group does not serve",
        detects: "A rule of a Role or ClusterRole in the input whose `apiGroups` name a group the \
API server serves itself (the core group, `apps`, `batch`, `rbac.authorization.k8s.io`, …) and \
whose `resources` name something that group has no collection of: `apiGroups: [apps]` with \
`resources: [pods]`, `apiGroups: [\"\"]` with `resources: [deployments]`.",
        why: "The authorizer matches a request's group and resource together, so such a rule grants \
nothing: `pods.apps` does not exist. It is usually a rule meant for another group, and the \
agent then either lacks the access it was meant to have or gets it from another rule; either \
way the role does not say what it seems to. apiload counts no access from it, so no fan-out is \
reported for it.",
        example: r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: agent
rules:
- apiGroups: ["apps"]
  resources: ["pods", "deployments"]
  verbs: ["get", "list", "watch"]
"#,
        example_config: None,
        fix: "Name each resource with the group that serves it (`pods` in the core group `\"\"`, \
`deployments` in `apps`), or remove it.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for (_, role) in ctx.inventory.rbac.roles() {
        if role.builtin() {
            continue;
        }
        for rule in &role.rules {
            let Some(origin) = rule.origin else { continue };
            let mut unserved: Vec<String> = Vec::new();
            for group in rule.api_groups.iter().filter(|g| &***g != "*") {
                for resource in &rule.resources {
                    if resources::not_served(group, resource) {
                        let group = if group.is_empty() { "the core group" } else { group };
                        unserved.push(format!("`{resource}` in {group}"));
                    }
                }
            }
            if unserved.is_empty() {
                continue;
            }
            out.push(
                Diagnostic::new(
                    &RULE.info,
                    origin.resources,
                    format!(
                        "{} grants {} on {}, which {} not exist: the rule grants nothing there",
                        role.display(),
                        rule.verbs.join(", "),
                        name_list(&unserved, 4),
                        if unserved.len() == 1 { "does" } else { "do" }
                    ),
                )
                .help(RULE.info.fix),
            );
        }
    }
}
