use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL105",
        name: "per-node-secret-watch",
        category: Category::RbacHygiene,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A per-node workload may list or watch every Secret in the cluster",
        detects: "A DaemonSet (or a workload with at least `fanout_min_replicas` copies) whose \
ServiceAccount may LIST or WATCH Secrets through a ClusterRoleBinding.",
        why: "Every node then holds a credential that reads every Secret: one compromised node \
exposes the cluster. It is also expensive: Secrets are among the largest objects (certificates, \
Helm release records of up to 1 MB), and each copy's initial LIST carries all of them.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: cert-sync
  namespace: security
spec:
  selector:
    matchLabels: {app: cert-sync}
  template:
    metadata:
      labels: {app: cert-sync}
    spec:
      serviceAccountName: cert-sync
      containers:
      - name: sync
        image: registry.example.com/cert-sync:3.1
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: cert-sync
rules:
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: cert-sync
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cert-sync
subjects:
- kind: ServiceAccount
  name: cert-sync
  namespace: security
"#,
        example_config: None,
        fix: "Grant `get` on named Secrets (`resourceNames`) in the namespaces that hold them, \
through RoleBindings, or mount the Secrets the agent needs as volumes.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        if !fans_out_with_credentials(a) {
            continue;
        }
        let Some(secrets) = a.cluster_collections().find(|c| c.group.is_empty() && &*c.resource == "secrets") else {
            continue;
        };
        let d = Diagnostic::new(
            &RULE.info,
            ctx.identity_location(a),
            format!(
                "{} may {} every Secret in the cluster {}: any one of {} nodes can read them all",
                workload_name(ctx, a),
                match (secrets.list, secrets.watch) {
                    (true, true) => "LIST and WATCH",
                    (false, true) => "WATCH",
                    _ => "LIST",
                },
                from_every_copy(a),
                thousands(a.fanout.copies),
            ),
        )
        .workload(ctx.workload(a).1.reference())
        .help(RULE.info.fix);
        out.push(add_grant_chain(d, &secrets.via, ""));
    }
}
