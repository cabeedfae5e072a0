use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL102",
        name: "per-node-node-watch",
        category: Category::FanoutNodeWatch,
        severity: Severity::Error,
        stage: Stage::Analysis,
        summary: "A per-node workload watches Nodes (or another per-node collection) cluster-wide: N² traffic",
        detects: "A DaemonSet (or a workload with at least `fanout_min_replicas` copies) that lists or \
watches all Nodes, or another cluster-scoped collection holding about one object per node \
(CSINodes, CiliumNodes, ResourceSlices, Calico IPAM blocks), without scoping to its own object.",
        why: "Every node's status is updated about every 10 seconds to a minute, and each update is \
delivered to every watcher. With N copies watching N nodes, traffic grows with N²: at 5,000 nodes, \
25 million object deliveries for one round of node updates, and a rollout LISTs 5,000 Nodes of \
~12 KB from 5,000 copies at once (about 300 GB). flannel reports ~100 KB/s per node at 250 nodes \
(flannel-io/flannel#2215) and failed at 170 nodes in an early report (#719).",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: route-agent
  namespace: kube-system
spec:
  selector:
    matchLabels: {app: route-agent}
  template:
    metadata:
      labels: {app: route-agent}
    spec:
      serviceAccountName: route-agent
      containers:
      - name: agent
        image: registry.example.com/route-agent:2.3
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: route-agent
rules:
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: route-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: route-agent
subjects:
- kind: ServiceAccount
  name: route-agent
  namespace: kube-system
"#,
        example_config: None,
        fix: "Watch only the copy's own Node (`fieldSelector=metadata.name=$(NODE_NAME)`, served \
cheaply since Kubernetes 1.27), or move the all-nodes view to one central controller. Where the \
design needs every node's data on every node (CNI route agents), use the project's scaling mode \
(Calico Typha, Cilium with a kvstore or CiliumEndpointSlices) and budget the cost explicitly.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        if !fans_out_with_credentials(a) {
            continue;
        }
        let calls: Vec<_> =
            a.behaviour.calls.iter().filter(|c| c.reportable_fanout() && c.is_node_collection()).collect();
        if calls.is_empty() {
            continue;
        }
        let scale = at_scale(a, ctx);
        let tail = |e: &crate::cost::Estimate| {
            format!(
                "every node's update reaches every copy, so traffic grows with N²: {scale} {}",
                estimate_phrase(e, "all-nodes")
            )
        };
        out.push(fanout_diagnostic(&RULE.info, ctx, a, &calls, "(every one, cluster-wide)", tail));
    }
}
