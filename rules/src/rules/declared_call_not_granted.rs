use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::behaviour::granted;
use crate::declared::CALLS_ANNOTATION;
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL109",
        name: "declared-call-not-granted",
        category: Category::AgentConfig,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A workload declares an API call its ServiceAccount may not make",
        detects: "An entry of a workload's `apiload.dev/api-calls` declaration that its grants do not \
allow in the declared scope: a cluster-wide list or watch without a ClusterRoleBinding that \
grants it, a namespaced one without a binding in the workload's namespace.",
        why: "The API server refuses the call (403), so either the declaration is wrong — and then \
it is not a reliable account of the agent's load — or the agent is broken for want of a grant. \
apiload counts no load for a refused call.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: monitoring
  annotations:
    apiload.dev/api-calls: "pods@node"
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      serviceAccountName: agent
      containers:
      - name: agent
        image: registry.example.com/agent:1.0
"#,
        example_config: None,
        fix: "Correct the declaration to what the agent calls, or grant it (a ClusterRole with `list` \
and `watch` on the collection, bound by a ClusterRoleBinding for calls beyond one namespace).",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        let Some((declaration, true)) = &a.behaviour.declaration else { continue };
        if !a.has_api_credentials() {
            continue;
        }
        let obj = ctx.workload(a).1;
        for call in declaration.calls.iter().filter(|c| !granted(&a.access, c)) {
            let Some(origin) = &call.origin else { continue };
            out.push(
                Diagnostic::new(
                    &RULE.info,
                    origin.evidence,
                    format!(
                        "{} is {} in `{CALLS_ANNOTATION}`, but ServiceAccount {}/{} may not {} {} there: the API server refuses it",
                        workload_name(ctx, a),
                        origin.feature,
                        a.identity.namespace,
                        a.identity.service_account,
                        call.verbs(),
                        call.display(),
                    ),
                )
                .workload(obj.reference())
                .help(RULE.info.fix),
            );
        }
    }
}
