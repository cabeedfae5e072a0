use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::calls::CallScope;
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL103",
        name: "per-node-capability-only",
        category: Category::FanoutCapabilityOnly,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A per-node workload is granted cluster-wide list/watch that it does not use cluster-wide",
        detects: "A DaemonSet (or a workload with at least `fanout_min_replicas` copies) whose \
ServiceAccount may LIST or WATCH collections across the cluster, while its configuration scopes \
every call to its own node (its node name from the downward API is handed to it) or, for a known \
agent, shows that it does not make those calls at all.",
        why: "Today the copies behave; the grant is what lets one configuration change, a new agent \
version or a different chart value turn every node into a cluster-wide watcher without any RBAC \
review. At 5,000 nodes that change is the difference between 150,000 and 750 million pod \
deliveries per round of updates. The grant also gives a compromised node read access to the \
whole cluster.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: pod-metrics
  namespace: monitoring
spec:
  selector:
    matchLabels: {app: pod-metrics}
  template:
    metadata:
      labels: {app: pod-metrics}
    spec:
      serviceAccountName: pod-metrics
      containers:
      - name: agent
        image: registry.example.com/pod-metrics:1.4
        args: ["--node=$(NODE_NAME)"]
        env:
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pod-metrics
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pod-metrics
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: pod-metrics
subjects:
- kind: ServiceAccount
  name: pod-metrics
  namespace: monitoring
"#,
        example_config: None,
        fix: "Grant only what the agent uses. Kubernetes RBAC cannot restrict a grant to a field \
selector, so keep the node-scoped configuration under review (apiload lints it), drop collections \
the agent does not read, and prefer `get` over `list`/`watch` where the agent reads single objects.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        if !fans_out_with_credentials(a) {
            continue;
        }
        if a.behaviour.calls.iter().any(|c| c.reportable_fanout()) {
            continue; // AL101/AL102 report the real fan-out
        }
        // Collections a leader-elected feature lists or watches are used (by
        // the leader), and RBAC cannot grant them to the leader only.
        let leader_uses = |c: &crate::access::CollectionAccess| {
            a.behaviour.calls.iter().any(|call| {
                call.origin.as_ref().is_some_and(|o| o.central)
                    && (call.list || call.watch)
                    && a.access.find(&call.group, &call.resource).is_some_and(|x| std::ptr::eq(x, c))
            })
        };
        let granted: Vec<_> = a.cluster_collections().filter(|c| c.is_sizeable() && !leader_uses(c)).collect();
        if granted.is_empty() {
            continue;
        }
        let names: Vec<String> = granted.iter().map(|c| c.display()).collect();
        let reason = match &a.behaviour.node_scope {
            Some(ns) => format!(
                "its node name (`{}` from `spec.nodeName`) is handed to it, which scopes its calls to its node",
                ns.variable
            ),
            None => {
                let mut agents: Vec<&str> = Vec::new();
                for r in &a.behaviour.agents {
                    if !agents.contains(&r.profile.name.as_str()) {
                        agents.push(&r.profile.name);
                    }
                }
                let scoped: Vec<String> = a
                    .behaviour
                    .calls
                    .iter()
                    .filter(|c| (c.list || c.watch) && matches!(c.scope, CallScope::Node))
                    .map(|c| c.display())
                    .collect();
                let what = if scoped.is_empty() {
                    "makes no cluster-wide list or watch".to_string()
                } else {
                    format!("lists and watches only its own node's {}", name_list(&scoped, 4))
                };
                format!(
                    "as configured, {} {}",
                    if agents.is_empty() { "it".to_string() } else { agents.join(" and ") },
                    what
                )
            }
        };
        let mut d = Diagnostic::new(
            &RULE.info,
            ctx.identity_location(a),
            format!(
                "{} is granted cluster-wide list/watch on {} {}, but {}: an over-grant that one configuration change turns into {} cluster-wide watchers",
                workload_name(ctx, a),
                name_list(&names, 5),
                from_every_copy(a),
                reason,
                thousands(a.fanout.copies),
            ),
        )
        .workload(ctx.workload(a).1.reference())
        .help(RULE.info.fix);
        if let Some(ns) = &a.behaviour.node_scope {
            d = d.related(ns.location, format!("node name handed to the agent as `$({})`", ns.variable));
        }
        for c in &a.behaviour.calls {
            if let (Some(o), CallScope::Node) = (&c.origin, &c.scope)
                && !d.related.iter().any(|r| r.location == o.evidence)
            {
                d = d.related(o.evidence, format!("{} is scoped to its node", o.feature));
            }
        }
        out.push(add_grant_chain(d, granted.iter().flat_map(|c| c.via.iter()), ""));
    }
}
