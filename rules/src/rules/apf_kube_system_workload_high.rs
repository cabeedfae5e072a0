use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::apf;
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL402",
        name: "apf-kube-system-workload-high",
        category: Category::ApfCoverage,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A per-node agent in kube-system lands in the workload-high priority level",
        detects: "A per-node workload in `kube-system` that lists or watches, whose ServiceAccount no \
FlowSchema of the input with a precedence below 900 matches. The bootstrap \
`kube-system-service-accounts` FlowSchema (precedence 900) then puts its requests in \
`workload-high`, distinguished by namespace.",
        why: "`workload-high` is where the controllers of kube-system work. Distinguished by namespace, \
the requests of every kube-system ServiceAccount form one flow: a misbehaving DaemonSet of 5,000 \
copies there competes in the same queues as the control plane's own controllers.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: net-agent
  namespace: kube-system
spec:
  selector:
    matchLabels: {app: net-agent}
  template:
    metadata:
      labels: {app: net-agent}
    spec:
      serviceAccountName: net-agent
      containers:
      - name: agent
        image: registry.example.com/net-agent:3.0
        args: ["--node=$(NODE_NAME)"]
        env:
        - name: NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: net-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: ServiceAccount
  name: net-agent
  namespace: kube-system
"#,
        example_config: None,
        fix: "Run the agent in a namespace of its own, or give its ServiceAccount a FlowSchema with a \
precedence below 900 and a priority level of its own.",
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
        if id.namespace.as_ref() != "kube-system" {
            continue;
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
                    "{}: its {} copies run as a kube-system ServiceAccount, so the bootstrap `kube-system-service-accounts` FlowSchema puts their requests in workload-high, in one flow with kube-system's controllers",
                    obj.display(),
                    thousands(a.fanout.copies)
                ),
            )
            .workload(obj.reference())
            .help(RULE.info.fix),
        );
    }
}
