use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::declared::CALLS_ANNOTATION;
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL008",
        name: "invalid-call-declaration",
        category: Category::AgentConfig,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A declaration of a workload's API calls that cannot be read or does not count here",
        detects: "An `apiload.dev/api-calls` annotation (on the workload or its pod template) with an \
entry apiload cannot read — no `@scope`, an unknown verb or scope, a resource its API group does \
not serve, `@node` for a collection the API server cannot filter by node — or a declaration in a \
namespace where the configuration does not trust workload annotations (`annotationExemptions`; \
the webhook trusts none by default).",
        why: "A declaration replaces apiload's inference from the grants with the owner's word, so a \
mistake in it either hides a fan-out or invents one. Entries that cannot be read are skipped, \
and the rest of the declaration still counts; a declaration that does not count leaves the \
calls inferred from the grants.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: monitoring
  annotations:
    apiload.dev/api-calls: "pods@node, services@node"
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: registry.example.com/agent:1.0
"#,
        example_config: None,
        fix: "Write each entry as `RESOURCE[.GROUP][:VERBS]@SCOPE`, with VERBS among list, watch, get \
joined by `+` and SCOPE one of cluster, node (only for Pods, Nodes and other collections the API \
server filters by node), namespace, object; `none` when the workload makes no list or watch \
calls. Where the webhook should honour declarations, list the namespace under \
`annotationExemptions.namespaces` in its configuration.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        let Some((declaration, trusted)) = &a.behaviour.declaration else { continue };
        let obj = ctx.workload(a).1;
        if !trusted {
            out.push(
                Diagnostic::new(
                    &RULE.info,
                    declaration.location,
                    format!(
                        "{}: `{CALLS_ANNOTATION}` is not honoured in namespace {} (see `annotationExemptions` in the configuration); its calls are inferred from its grants",
                        workload_name(ctx, a),
                        obj.ns()
                    ),
                )
                .workload(obj.reference())
                .help(RULE.info.fix),
            );
            continue;
        }
        for (location, message) in &declaration.problems {
            out.push(
                Diagnostic::new(&RULE.info, *location, format!("{}: {message}", workload_name(ctx, a)))
                    .workload(obj.reference())
                    .help(RULE.info.fix),
            );
        }
    }
}
