use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL104",
        name: "per-node-wildcard-grant",
        category: Category::RbacHygiene,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A per-node workload holds a wildcard grant across the cluster",
        detects: "A DaemonSet (or a workload with at least `fanout_min_replicas` copies) bound \
cluster-wide to a role rule with `*` in `verbs` or `resources` (including the built-in \
`cluster-admin`).",
        why: "A wildcard follows every API the cluster will ever serve: each new CRD becomes \
something every node may list and watch, and every node holds a credential that can read (or \
write) the whole cluster. Per-node agents need a handful of named resources.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: debug-agent
  namespace: ops
spec:
  selector:
    matchLabels: {app: debug-agent}
  template:
    metadata:
      labels: {app: debug-agent}
    spec:
      serviceAccountName: debug-agent
      containers:
      - name: agent
        image: registry.example.com/debug-agent:0.9
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: debug-agent
rules:
- apiGroups: ["*"]
  resources: ["*"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: debug-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: debug-agent
subjects:
- kind: ServiceAccount
  name: debug-agent
  namespace: ops
"#,
        example_config: None,
        fix: "Name the resources and verbs the agent uses instead of `*`.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        if !fans_out_with_credentials(a) {
            continue;
        }
        let mut paths = Vec::new();
        for c in a.cluster_collections() {
            for p in c.via.iter().filter(|p| p.wildcard) {
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        let Some(first) = paths.first() else { continue };
        let location = first.rule.unwrap_or_else(|| ctx.identity_location(a));
        let roles: Vec<String> =
            paths.iter().map(|p| format!("{} ({} on {})", p.rule_role, p.verbs, p.resources)).collect();
        let mut d = Diagnostic::new(
            &RULE.info,
            location,
            format!(
                "{} runs {} with a wildcard grant across the cluster: {}",
                workload_name(ctx, a),
                from_every_copy(a),
                name_list(&roles, 3)
            ),
        )
        .workload(ctx.workload(a).1.reference())
        .help(RULE.info.fix);
        if location != ctx.identity_location(a) {
            d = d.related(ctx.identity_location(a), "the workload's ServiceAccount");
        }
        out.push(add_grant_chain(d, paths.iter().skip(1).copied(), ""));
    }
}
