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
        summary: "A per-node workload is granted cluster-wide list/watch that it is known not to use cluster-wide",
        detects: "A DaemonSet (or a workload with at least `fanout_min_replicas` copies) whose \
ServiceAccount may LIST or WATCH collections across the cluster, while what is known of its calls \
— a profile that read its configuration, its owner's declaration (`apiload.dev/api-calls`) or an \
audit log — shows that it scopes them to its own node or does not make them at all. (Calls that \
are only inferred from the grants are AL107's.)",
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
      annotations:
        apiload.dev/api-calls: "pods@node"
    spec:
      serviceAccountName: pod-metrics
      containers:
      - name: agent
        image: registry.example.com/pod-metrics:1.4
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
        if a.behaviour.calls.iter().any(|c| !c.basis.is_known()) {
            continue; // calls inferred from the grants: AL107's
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
        let mut agents: Vec<&str> = Vec::new();
        for r in &a.behaviour.agents {
            if !agents.contains(&r.profile.name.as_str()) {
                agents.push(&r.profile.name);
            }
        }
        let observed = a.behaviour.observed.is_some();
        let (reason, basis) = match &a.behaviour.declaration {
            _ if observed && agents.is_empty() => {
                (format!("as the API server's audit log shows, it {what}"), "observed")
            }
            Some((_, true)) if agents.is_empty() => {
                (format!("its owner declares (`{}`) that it {what}", crate::declared::CALLS_ANNOTATION), "declared")
            }
            _ => (
                format!(
                    "as configured, {} {what}",
                    if agents.is_empty() { "it".to_string() } else { agents.join(" and ") }
                ),
                "profile",
            ),
        };
        let mut d = Diagnostic::new(
            &RULE.info,
            ctx.identity_location(a),
            format!(
                "{} is granted cluster-wide list/watch on {} {}, but {reason}: an over-grant that one configuration change turns into {} cluster-wide watchers",
                workload_name(ctx, a),
                name_list(&names, 5),
                from_every_copy(a),
                thousands(a.fanout.copies),
            ),
        )
        .workload(ctx.workload(a).1.reference())
        .help(RULE.info.fix)
        .basis(basis)
        .calls(a.behaviour.calls.iter().filter(|c| c.list || c.watch).map(|c| c.reference()).collect());
        if let Some((decl, true)) = &a.behaviour.declaration {
            d = d.related(decl.location, "the owner's declaration of its calls");
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
