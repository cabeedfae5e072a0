use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::calls::{ApiCall, Basis, Inference};
use crate::declared::CALLS_ANNOTATION;
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL107",
        name: "per-node-unverified-calls",
        category: Category::FanoutCapabilityOnly,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A per-node workload nobody has profiled may list or watch across the cluster, and the manifest cannot tell whether it does",
        detects: "A DaemonSet (or a workload with at least `fanout_min_replicas` copies) that no \
profile, declaration or audit log describes, whose ServiceAccount may LIST or WATCH collections \
across the cluster, where the manifest leaves the use open: it is told its node name and the API \
server filters those collections by node (Pods by `spec.nodeName`, Nodes by `metadata.name`), so \
each copy can ask for its own node's objects only; or its ServiceAccount is shared with other \
workloads and it is not told its node name, so the grant may be theirs. Grants it could not \
scope at all are AL101/AL102's.",
        why: "A grant says what an agent may call, not what it does. A node agent told its node name \
usually scopes its pod watch with it (cheap: the watch cache indexes pods by node), but nothing \
in the manifest proves it; if it does not, at 5,000 nodes the same grant means 5,000 cluster-wide \
watches and a rollout LISTing 150,000 pods from every copy (about 6 TB). An error must be \
something apiload can show, so this is a warning that says what could not be verified and how to \
settle it. To require a basis for every per-node agent (deny until it is profiled or declared), \
set this rule to `error` in `.apiload.yaml`.",
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
        fix: "Settle what the agent calls, in one of three ways: a profile of the agent \
(`--profiles DIR`, docs/profiles.md), a declaration on the workload (`apiload.dev/api-calls: \
\"pods@node\"`, docs/rules.md), or what it was seen to call in the API server's audit log. Then \
grant only what it uses.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        if !fans_out_with_credentials(a) || a.behaviour.calls.iter().any(|c| c.reportable_fanout()) {
            continue; // AL101/AL102 report what can be shown
        }
        let calls: Vec<&ApiCall> = a.behaviour.calls.iter().filter(|c| c.unverified_fanout()).collect();
        let Some(first) = calls.first() else { continue };
        let who = workload_name(ctx, a);
        let verbs = verbs_by_collection(&calls);
        let scale = at_scale(a, ctx);
        let estimate = estimate_of(ctx, a, &calls);
        let open = match &first.basis {
            Basis::Inferred(Inference::NodeScopable { identity, .. }) => {
                let filters: Vec<String> = calls
                    .iter()
                    .filter_map(|c| match &c.basis {
                        Basis::Inferred(Inference::NodeScopable { filter, .. }) => {
                            Some(format!("{} by `{}`", c.display(), filter.selector()))
                        }
                        _ => None,
                    })
                    .collect();
                format!(
                    "it is told {} and the API server filters {}, so each copy can ask for its own node's only; whether it does cannot be verified from the manifest",
                    identity.describe(),
                    name_list(&filters, 4)
                )
            }
            Basis::Inferred(Inference::SharedIdentity { with }) => format!(
                "its ServiceAccount {}/{} is also used by {} and it is not told its node name, so the grants may be theirs; nothing shows that it makes these calls",
                a.identity.namespace,
                a.identity.service_account,
                name_list(with, 3)
            ),
            _ => continue,
        };
        let declaration: Vec<String> = calls
            .iter()
            .map(|c| {
                let scope = match &c.basis {
                    Basis::Inferred(Inference::NodeScopable { .. }) => "node",
                    _ => "cluster",
                };
                format!("{}@{scope}", c.display())
            })
            .collect();
        let message = format!(
            "{who} may {verbs} across the whole cluster {}, but {open}. If it lists and watches them whole, {scale} {}. Settle it with a profile of the agent, a declaration (`{CALLS_ANNOTATION}: \"{}\"` if that is what it does) or an audit log",
            from_every_copy(a),
            estimate_phrase(&estimate, "cluster-wide"),
            declaration.join(", "),
        );
        let mut d = Diagnostic::new(&RULE.info, ctx.identity_location(a), message)
            .workload(ctx.workload(a).1.reference())
            .help(RULE.info.fix)
            .calls(calls.iter().map(|c| c.reference()).collect());
        if let Some(identity) = &a.behaviour.node_identity {
            d = d.related(identity.location(), "where it is told its node name");
        }
        let paths = calls.iter().filter_map(|c| a.access.find(&c.group, &c.resource)).flat_map(|c| c.via.iter());
        out.push(add_grant_chain(d, paths, ""));
    }
}
