use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::diagnostic::{Category, Diagnostic, Severity};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL201",
        name: "unbounded-client",
        category: Category::UnboundedClient,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A per-node workload's API client has no effective rate limit",
        detects: "A DaemonSet (or a workload with at least `fanout_min_replicas` copies) whose API \
client QPS is negative (client-go then builds no rate limiter at all), at least `max_client_qps` \
(default 1,000 per copy), or whose QPS times its copies reaches `client_qps_budget` (default \
5,000,000 requests per second). The QPS is read from the flags and configuration keys agents use \
(`--kube-api-qps`, `--k8s-client-qps`, `clientConnection.qps`, `kube_client_options.qps`, Cilium's \
`k8s-client-qps`, and whatever a profile declares). A QPS of 0 means the client's default. \
Reported as an error when the workload also fans out cluster-wide calls.",
        why: "client-go's limiter (5 QPS, burst 10 by default) is what keeps a bug, a relist storm or \
a restart of every copy from becoming a flood: `rest.Config` \"QPS ... Setting this to a negative \
value will disable client-side ratelimiting\". API Priority and Fairness limits concurrency on the \
server, not the rate at which thousands of clients send; the traffic still reaches the server. \
At 5,000 nodes a per-copy QPS of 10,000 allows 50 million requests per second.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: net-agent
  namespace: kube-system
spec:
  selector:
    matchLabels: {app: net-agent}
  template:
    metadata:
      labels: {app: net-agent}
    spec:
      serviceAccountName: net-agent
      containers:
      - name: agent
        image: registry.example.com/net-agent:3.0
        args: ["--kube-api-qps=-1"]
"#,
        example_config: None,
        fix: "Keep a finite per-copy rate: remove the negative QPS, or set it to what one copy needs \
(client-go's 5/10 suits most node agents). If the agent relies on API Priority and Fairness \
instead, give its ServiceAccount a FlowSchema with its own priority level.",
    },
    check,
};

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        if !fans_out_with_credentials(a) {
            continue;
        }
        let Some((qps, location)) = a.behaviour.client.qps else { continue };
        let copies = a.fanout.copies as f64;
        let opts = ctx.options;
        let reason = if qps < 0.0 {
            format!("client-side rate limiting is disabled (QPS {qps}: client-go builds no limiter for a negative QPS)")
        } else if qps >= opts.max_client_qps {
            format!("its client may send {} requests per second per copy", thousands(qps as u64))
        } else if qps > 0.0 && qps * copies >= opts.client_qps_budget {
            format!(
                "its client QPS of {} per copy adds up past the budget of {} per second",
                thousands(qps as u64),
                thousands(opts.client_qps_budget as u64)
            )
        } else {
            continue;
        };
        let mut agents: Vec<&str> = Vec::new();
        for r in &a.behaviour.agents {
            if !agents.contains(&r.profile.name.as_str()) {
                agents.push(&r.profile.name);
            }
        }
        let runs = if agents.is_empty() { String::new() } else { format!(" ({})", agents.join(", ")) };
        let total = if qps < 0.0 {
            format!("{} copies can each send requests as fast as the API server answers", thousands(a.fanout.copies))
        } else {
            format!(
                "{} copies may send {} requests per second together",
                thousands(a.fanout.copies),
                thousands((qps * copies) as u64)
            )
        };
        let mut d = Diagnostic::new(
            &RULE.info,
            location,
            format!("{}{runs}: {reason}; {} {total}", workload_name(ctx, a), at_scale(a, ctx)),
        )
        .workload(ctx.workload(a).1.reference())
        .help(RULE.info.fix);
        if qps < 0.0 || a.behaviour.calls.iter().any(|c| c.reportable_fanout()) {
            d = d.severity(Severity::Error);
        }
        if location != ctx.identity_location(a) {
            d = d.related(ctx.identity_location(a), format!("{} runs here", workload_name(ctx, a)));
        }
        out.push(d);
    }
}
