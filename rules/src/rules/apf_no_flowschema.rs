use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::apf;
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL401",
        name: "apf-no-flowschema",
        category: Category::ApfCoverage,
        severity: Severity::Info,
        stage: Stage::Analysis,
        summary: "A per-node agent's requests fall into the default FlowSchema of all ServiceAccounts",
        detects: "A per-node workload that lists or watches, whose ServiceAccount no FlowSchema in the \
input matches. Its requests then go to the bootstrap `service-accounts` FlowSchema: priority level \
`workload-low`, distinguished by user.",
        why: "Distinguished by user, all copies of one DaemonSet share its ServiceAccount and therefore \
form one flow: when the agent misbehaves, its thousands of copies compete in one queue with each \
other, but also share `workload-low` with every other ServiceAccount in the cluster. A FlowSchema \
of its own, on a priority level of its own, confines the damage to the agent. (The cluster may \
manage FlowSchemas elsewhere; the linter sees only its input.)",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: log-agent
  namespace: logging
spec:
  selector:
    matchLabels: {app: log-agent}
  template:
    metadata:
      labels: {app: log-agent}
    spec:
      serviceAccountName: log-agent
      containers:
      - name: agent
        image: registry.example.com/log-agent:1.8
        args: ["--node=$(NODE_NAME)"]
        env:
        - name: NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: log-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: ServiceAccount
  name: log-agent
  namespace: logging
"#,
        example_config: None,
        fix: "Add a FlowSchema matching the agent's ServiceAccount (kind ServiceAccount) with a \
PriorityLevelConfiguration of its own, so that its requests queue apart from everyone else's.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let schemas = apf::flow_schemas(ctx.inventory);
    for a in ctx.analyses {
        if !a.fans_out_listing() {
            continue;
        }
        let id = &a.identity;
        if id.namespace.as_ref() == "kube-system" {
            continue; // AL402 covers kube-system
        }
        if apf::covering(&schemas, &id.namespace, &id.service_account, &a.behaviour.calls).is_some() {
            continue;
        }
        let (_, obj) = ctx.workload(a);
        out.push(
            Diagnostic::new(
                &RULE.info,
                ctx.identity_location(a),
                format!(
                    "{}: no FlowSchema in the input matches ServiceAccount {}/{}, so the requests of its {} copies go to the bootstrap `service-accounts` FlowSchema (workload-low, one flow for all of them, shared with every other ServiceAccount)",
                    obj.display(),
                    id.namespace,
                    id.service_account,
                    thousands(a.fanout.copies)
                ),
            )
            .workload(obj.reference())
            .help(RULE.info.fix),
        );
    }
}
