use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::analysis::WorkloadAnalysis;
use crate::calls::ApiCall;
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL101",
        name: "per-node-cluster-watch",
        category: Category::FanoutClusterWatch,
        severity: Severity::Error,
        stage: Stage::Analysis,
        summary: "A per-node workload lists or watches a collection across the whole cluster",
        detects: "A DaemonSet (or a workload with at least `fanout_min_replicas` copies) whose \
ServiceAccount may LIST or WATCH a namespaced collection in every namespace, or a cluster-wide \
collection, and whose configuration does not scope those calls to the copy's own node. Without \
knowledge of the agent, every granted collection is assumed to be used; agent profiles replace \
that assumption with what the agent's configuration makes it do.",
        why: "Each copy holds its own watch and makes its own initial LIST. At 5,000 nodes a \
DaemonSet watching pods cluster-wide holds 5,000 watches that each receive every pod change in \
the cluster, and a rollout makes 5,000 LISTs of 150,000 pods at once (about 6 TB at 8 KB a \
pod). A pod watch scoped with `fieldSelector=spec.nodeName=<node>` is served from the API \
server's watch-cache index and costs each copy only its own ~30 pods. This is the shape of the \
2024-12-11 OpenAI outage: a telemetry DaemonSet whose cost grew with cluster size passed \
staging and took the API servers of the largest clusters down.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
  namespace: monitoring
spec:
  selector:
    matchLabels: {app: node-agent}
  template:
    metadata:
      labels: {app: node-agent}
    spec:
      serviceAccountName: node-agent
      containers:
      - name: agent
        image: registry.example.com/node-agent:1.0
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: node-agent
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: node-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: node-agent
subjects:
- kind: ServiceAccount
  name: node-agent
  namespace: monitoring
"#,
        example_config: None,
        fix: "Scope each copy to its node: give it its node name from the downward API \
(`env: [{name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]`) and have it \
list and watch with `fieldSelector=spec.nodeName=$(NODE_NAME)`. Collections that cannot be \
scoped to a node (Services, EndpointSlices, ReplicaSets) belong in one central Deployment that \
the node agents ask (the Datadog Cluster Agent pattern). If the agent needs none of it, remove \
`list` and `watch` from its role.",
    },
    check,
};

/// Reportable cluster-wide calls that are not node collections (those are AL102's).
pub fn cluster_calls(a: &WorkloadAnalysis) -> Vec<&ApiCall> {
    a.behaviour.calls.iter().filter(|c| c.reportable_fanout() && !c.is_node_collection()).collect()
}

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        if !fans_out_with_credentials(a) {
            continue;
        }
        let calls = cluster_calls(a);
        if calls.is_empty() {
            continue;
        }
        let scale = at_scale(a, ctx);
        let tail = |e: &crate::cost::Estimate| format!("{scale} {}", estimate_phrase(e, "cluster-wide"));
        let mut d = fanout_diagnostic(&RULE.info, ctx, a, &calls, "across the whole cluster", tail);
        let unverified: Vec<&ApiCall> = a.behaviour.calls.iter().filter(|c| c.unverified_fanout()).collect();
        if !unverified.is_empty() {
            d.message.push_str(&format!(
                ". It may also {} cluster-wide, which it can filter by node (unverified)",
                verbs_by_collection(&unverified)
            ));
        }
        out.push(d);
    }
}
