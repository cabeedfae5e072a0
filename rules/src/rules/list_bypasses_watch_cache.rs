use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL403",
        name: "list-bypasses-watch-cache",
        category: Category::ListSemantics,
        severity: Severity::Info,
        stage: Stage::Analysis,
        summary: "A per-node agent LISTs with the most-recent semantic, which older API servers serve from etcd",
        detects: "A per-node workload whose agent LISTs with `resourceVersion` unset (a consistent, \
quorum read), as kube-rs clients do by default (`ListSemantic::MostRecent`), for example Vector \
without `use_apiserver_cache: true`. A warning when the cluster profile's Kubernetes version is \
before 1.31, an info note otherwise.",
        why: "Consistent LISTs are served from the watch cache only since ConsistentListFromCache \
(beta and on in 1.31) and with etcd 3.4.31/3.5.13 or later; before that every such LIST is a \
quorum read from etcd, which reads the whole collection even when a field selector keeps only the \
node's pods. 5,000 copies relisting after an API server restart then read every pod of the cluster \
5,000 times from etcd. client-go's reflector lists with resourceVersion \"0\", which the cache \
serves.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: vector
  namespace: logging
spec:
  selector:
    matchLabels: {app: vector}
  template:
    metadata:
      labels: {app: vector}
    spec:
      serviceAccountName: vector
      containers:
      - name: vector
        image: timberio/vector:0.43.0-distroless-libc
        args: ["--config-dir", "/etc/vector/"]
        env:
        - name: VECTOR_SELF_NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        volumeMounts:
        - {name: config, mountPath: /etc/vector}
      volumes:
      - name: config
        configMap: {name: vector}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: vector
  namespace: logging
data:
  vector.yaml: |
    sources:
      k8s:
        type: kubernetes_logs
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: vector
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: ServiceAccount
  name: vector
  namespace: logging
"#,
        example_config: None,
        fix: "Let the agent list from the watch cache (Vector: `use_apiserver_cache: true`), or run \
API servers of 1.31 or later with etcd 3.4.31/3.5.13 or later.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let old = ctx.options.cluster.kubernetes_minor < 31;
    for a in ctx.analyses {
        if !fans_out_with_credentials(a) {
            continue;
        }
        let calls: Vec<_> =
            a.behaviour.calls.iter().filter(|c| c.origin.as_ref().is_some_and(|o| o.consistent_list)).collect();
        let Some(first) = calls.first().and_then(|c| c.origin.as_ref()) else { continue };
        let (_, obj) = ctx.workload(a);
        let names: Vec<String> = calls.iter().map(|c| c.display()).collect();
        let version = format!("1.{}", ctx.options.cluster.kubernetes_minor);
        let consequence = if old {
            format!(
                "on Kubernetes {version} every such LIST is a quorum read from etcd, which reads the whole collection even for a node-scoped list"
            )
        } else {
            "Kubernetes 1.31+ serves them from the watch cache when etcd supports progress notifications (3.4.31/3.5.13+); older servers read etcd".to_string()
        };
        let mut d = Diagnostic::new(
            &RULE.info,
            first.evidence,
            format!(
                "{} runs {}, which LISTs {} with the most-recent semantic from each of {} copies: {consequence}",
                obj.display(),
                first.agent,
                name_list(&names, 4),
                thousands(a.fanout.copies)
            ),
        )
        .workload(obj.reference())
        .help(RULE.info.fix);
        if old {
            d = d.severity(Severity::Warning);
        }
        out.push(d);
    }
}
