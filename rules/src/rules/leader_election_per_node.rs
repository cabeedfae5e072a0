use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::cost;
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL302",
        name: "leader-election-per-node",
        category: Category::LeaderElection,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "Every copy of a DaemonSet runs leader election",
        detects: "A DaemonSet whose agent elects a leader among its copies (a profile's leader-elected \
feature, such as OpenTelemetry's `k8s_leader_elector`, Beats' `unique: true`, Datadog's \
`DD_LEADER_ELECTION`; or `--leader-elect`-style flags).",
        why: "Leader election is not free: client-go's elector GETs the lock every retry period (2 s \
by default, `tryAcquireOrRenew`) on every candidate. At 5,000 nodes that is about 2,500 Lease \
requests per second to elect one leader, forever, and a thundering herd of candidates whenever the \
leader goes away.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: events-agent
  namespace: monitoring
spec:
  selector:
    matchLabels: {app: events-agent}
  template:
    metadata:
      labels: {app: events-agent}
    spec:
      containers:
      - name: agent
        image: registry.example.com/events-agent:1.0
        args: ["--leader-elect=true"]
"#,
        example_config: None,
        fix: "Run the cluster-level work in a small Deployment (2 replicas with leader election) and \
keep the DaemonSet for per-node work.",
    },
    check,
};

const FLAGS: &[&str] = &["--leader-elect", "--leader-election", "--enable-leader-election"];

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        let (w, obj) = ctx.workload(a);
        if !w.is_daemonset() || !a.has_api_credentials() {
            continue;
        }
        // Whether or not its calls are granted, every copy campaigns.
        let by_profile = a
            .behaviour
            .agents
            .iter()
            .flat_map(|r| r.calls.iter())
            .find_map(|c| c.origin.as_ref().filter(|o| o.central));
        let by_flag = w.containers().flat_map(|c| c.command.iter().chain(&c.args)).find(|arg| {
            FLAGS.iter().any(|f| *arg.value == **f || arg.value.strip_prefix(f).is_some_and(|r| r == "=true"))
        });
        let (location, what) = match (by_profile, by_flag) {
            (Some(o), _) => (o.evidence, format!("its {} runs on the elected leader only", o.feature)),
            (None, Some(arg)) => (obj.loc(arg.span), format!("`{}` makes every copy a candidate", arg.value)),
            (None, None) => continue,
        };
        let copies = a.fanout.copies;
        let rate = copies as f64 / 2.0;
        out.push(
            Diagnostic::new(
                &RULE.info,
                location,
                format!(
                    "{}: {what}, so all {} copies poll the lock: about {} Lease requests per second {}",
                    obj.display(),
                    thousands(copies),
                    cost::rate(rate),
                    at_scale(a, ctx)
                ),
            )
            .workload(obj.reference())
            .help(RULE.info.fix),
        );
    }
}
