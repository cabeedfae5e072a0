use super::{Context, Rule, RuleInfo, Stage};
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL004",
        name: "agent-config-unreadable",
        category: Category::AgentConfig,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A known agent's configuration cannot be found or read",
        detects: "A container that an agent profile recognises whose configuration the profile needs \
but that is not in the input (the flag names a file no ConfigMap or Secret mount provides, or the \
ConfigMap is missing) or cannot be parsed in the agent's configuration language.",
        why: "What the agent calls depends on its configuration, so apiload falls back to the \
workload's grants and assumes every granted collection is used. Findings about the workload are \
then about capability, not behaviour. Lint the ConfigMap together with the workload to get the \
precise answer.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: otel-agent
  namespace: monitoring
spec:
  selector:
    matchLabels: {app: otel-agent}
  template:
    metadata:
      labels: {app: otel-agent}
    spec:
      containers:
      - name: collector
        image: otel/opentelemetry-collector-contrib:0.150.0
        args: ["--config=/conf/relay.yaml"]
        volumeMounts:
        - {name: conf, mountPath: /conf}
      volumes:
      - name: conf
        configMap: {name: otel-agent}
"#,
        example_config: None,
        fix: "Include the agent's ConfigMap or Secret in the input, or fix the configuration at the \
position shown.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        let (_, obj) = ctx.workload(a);
        for run in &a.behaviour.agents {
            for p in &run.problems {
                out.push(
                    Diagnostic::new(&RULE.info, p.location, format!("{}: {}", obj.display(), p.message))
                        .workload(obj.reference())
                        .help(RULE.info.fix),
                );
            }
        }
    }
}
