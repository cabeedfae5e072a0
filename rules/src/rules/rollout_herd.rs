use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::cost;
use crate::diagnostic::{Category, Diagnostic, Edit, Fix, Severity};
use crate::workload::{IntOrString, WorkloadKind};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL301",
        name: "rollout-herd",
        category: Category::RolloutHerd,
        severity: Severity::Warning,
        stage: Stage::Analysis,
        summary: "A fan-out agent's rollout restarts many copies at once, each re-LISTing what it watches",
        detects: "A workload with cluster-wide fan-out calls whose update strategy restarts at least \
`rollout_max_fraction` (default 10%) of its copies at once: a DaemonSet's `maxUnavailable` or \
`maxSurge` (\"100%\" is common), a Deployment's `Recreate` strategy or a large rolling update. A \
`checksum/config`-style annotation on the pod template is named too: it makes every configuration \
change such a rollout.",
        why: "Every restarted copy makes its initial LISTs before it can watch. With `maxUnavailable: \
100%` a DaemonSet of a cluster-wide pod watcher re-LISTs 150,000 pods from 5,000 nodes within \
seconds: 6 TB out of the API servers. Creating a DaemonSet is never throttled at all: the \
controller starts all pods within about log2(N) doubling rounds. The OpenAI postmortem lists \
phased rollouts among its remediations; EKS advises against scaling spikes above a double-digit \
percentage at once.",
        example: r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: telemetry-agent
  namespace: monitoring
spec:
  selector:
    matchLabels: {app: telemetry-agent}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: "100%"
  template:
    metadata:
      labels: {app: telemetry-agent}
    spec:
      serviceAccountName: telemetry-agent
      containers:
      - name: agent
        image: registry.example.com/telemetry-agent:2.1.0
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: telemetry-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: ServiceAccount
  name: telemetry-agent
  namespace: monitoring
"#,
        example_config: None,
        fix: "Roll out in small steps (`maxUnavailable: 1` or a few percent) and in phases across \
clusters; better, remove the cluster-wide calls (AL101) so that a restart costs little.",
    },
    check,
};

/// How many copies the value lets restart at once.
fn at_once(v: &IntOrString, copies: u64) -> u64 {
    match v {
        IntOrString::Int(i) => (*i).max(0) as u64,
        IntOrString::Str(s) => {
            let pct = s.trim_end_matches('%').trim().parse::<f64>().unwrap_or(0.0);
            ((pct / 100.0) * copies as f64).ceil() as u64
        }
    }
}

fn shown(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::Str(s) => format!("\"{s}\""),
    }
}

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for a in ctx.analyses {
        if !fans_out_with_credentials(a) {
            continue;
        }
        let calls: Vec<_> = a.behaviour.calls.iter().filter(|c| c.reportable_fanout()).collect();
        if calls.is_empty() {
            continue;
        }
        let (w, obj) = ctx.workload(a);
        let copies = a.fanout.copies;
        let Some(update) = &w.update else {
            // Defaults: DaemonSet maxUnavailable 1, Deployment 25%/25%, StatefulSet one at a time.
            if w.kind == WorkloadKind::Deployment
                && copies as f64 * 0.25 >= copies as f64 * ctx.options.rollout_max_fraction
            {
                report(
                    ctx,
                    a,
                    out,
                    obj.loc(obj.name_span),
                    "the default rolling update (maxUnavailable 25%)".into(),
                    (copies as f64 * 0.25).ceil() as u64,
                );
            }
            continue;
        };
        let (what, n, loc) = match &*update.kind.value {
            "OnDelete" => continue,
            "Recreate" => ("strategy Recreate".to_string(), copies, obj.loc(update.kind.span)),
            _ => {
                let mut worst: Option<(String, u64, apiload_yaml::Span)> = None;
                for (name, v) in [("maxUnavailable", &update.max_unavailable), ("maxSurge", &update.max_surge)] {
                    if let Some(v) = v {
                        let n = at_once(&v.value, copies);
                        if worst.as_ref().is_none_or(|(_, m, _)| n > *m) {
                            worst = Some((format!("{name} {}", shown(&v.value)), n, v.span));
                        }
                    }
                }
                match worst {
                    Some((what, n, span)) => (what, n, obj.loc(span)),
                    None => continue,
                }
            }
        };
        if (n as f64) < copies as f64 * ctx.options.rollout_max_fraction || n <= 1 {
            continue;
        }
        report(ctx, a, out, loc, what, n);
        if let Some(fix) = bounded_rollout(ctx, update, obj, copies)
            && let Some(d) = out.last_mut()
        {
            d.fixes.push(fix);
        }
    }
}

/// The mechanical fix when the rolling update names its step: every
/// `maxUnavailable`/`maxSurge` over the threshold becomes half of it, as a
/// percentage (so that it follows the fleet as it grows).
fn bounded_rollout(
    ctx: &Context<'_>,
    update: &crate::workload::UpdateStrategy,
    obj: &crate::object::Object,
    copies: u64,
) -> Option<Fix> {
    if &*update.kind.value == "Recreate" {
        return None;
    }
    let limit = copies as f64 * ctx.options.rollout_max_fraction;
    let percent = ((ctx.options.rollout_max_fraction * 100.0) / 2.0).floor().max(1.0) as u64;
    let edits: Vec<Edit> = [&update.max_unavailable, &update.max_surge]
        .into_iter()
        .flatten()
        .filter(|v| at_once(&v.value, copies) as f64 >= limit)
        .map(|v| Edit { location: obj.loc(v.span), new_text: format!("\"{percent}%\"") })
        .collect();
    (!edits.is_empty()).then(|| Fix { title: format!("Roll out {percent}% of the copies at a time"), edits })
}

fn report(
    ctx: &Context<'_>,
    a: &crate::analysis::WorkloadAnalysis,
    out: &mut Vec<Diagnostic>,
    loc: crate::source::Location,
    what: String,
    n: u64,
) {
    let (w, obj) = ctx.workload(a);
    let copies = a.fanout.copies.max(1);
    let calls: Vec<_> = a.behaviour.calls.iter().filter(|c| c.reportable_fanout()).collect();
    let parts: Vec<_> = calls.iter().map(|c| cost::call_estimate(c, n.min(copies), &ctx.options.cluster)).collect();
    let est = cost::sum(n.min(copies), &parts);
    let checksum = w
        .template_annotations
        .iter()
        .find(|(k, _)| {
            k.value.starts_with("checksum/") || k.value.ends_with("/config-hash") || k.value.contains("checksum")
        })
        .map(|(k, _)| k);
    let mut message = format!(
        "{} rolls out with {what}: {} of its {} copies restart at once and re-LIST what they watch, about {} within seconds",
        obj.display(),
        thousands(n.min(copies)),
        thousands(copies),
        cost::bytes(est.initial_list_bytes)
    );
    if let Some(k) = checksum {
        message.push_str(&format!(
            "; the pod template's `{}` annotation makes every configuration change such a rollout",
            k.value
        ));
    }
    if w.is_daemonset() {
        message.push_str(" (and creating it is never throttled)");
    }
    let mut d = Diagnostic::new(&RULE.info, loc, message).workload(obj.reference()).help(RULE.info.fix);
    if let Some(k) = checksum {
        d = d.related(obj.loc(k.span), "restarts every copy when the configuration changes");
    }
    d = d.related(ctx.identity_location(a), format!("{} makes cluster-wide calls (AL101/AL102)", obj.display()));
    out.push(d);
}
