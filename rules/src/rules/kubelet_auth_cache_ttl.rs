use super::support::*;
use super::{Context, Rule, RuleInfo, Stage};
use crate::agent_config::resolve::TextOrigin;
use crate::cost;
use crate::diagnostic::{Category, Diagnostic, Severity};
use crate::source::Location;
use apiload_yaml::{Limits, Node};

pub static RULE: Rule = Rule {
    info: RuleInfo {
        id: "AL404",
        name: "kubelet-auth-cache-ttl",
        category: Category::KubeletAuth,
        severity: Severity::Info,
        stage: Stage::Analysis,
        summary: "Kubelet authentication or authorization caches shortened below their defaults",
        detects: "A KubeletConfiguration (in a ConfigMap, as kubeadm keeps it) or kubelet flags that set \
`authentication.webhook.cacheTTL` below 2m, `authorization.webhook.cacheAuthorizedTTL` below 5m or \
`cacheUnauthorizedTTL` below 30s (`--authentication-token-webhook-cache-ttl`, \
`--authorization-webhook-cache-authorized-ttl`, `--authorization-webhook-cache-unauthorized-ttl`).",
        why: "Every request to a kubelet's API (metrics scrapes, logs, exec) is checked with a \
TokenReview and a SubjectAccessReview against the API server unless the kubelet has the answer \
cached. A central scraper reaching every kubelet causes about N TokenReviews per cache TTL: 42 per \
second at 5,000 nodes with the default 2 minutes, 500 per second with 10 seconds — and all at once \
when kubelets restart with cold caches (kubernetes `pkg/kubelet/apis/config/v1beta1/defaults.go`).",
        example: r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: kubelet-config
  namespace: kube-system
data:
  kubelet: |
    apiVersion: kubelet.config.k8s.io/v1beta1
    kind: KubeletConfiguration
    authentication:
      webhook:
        enabled: true
        cacheTTL: 10s
"#,
        example_config: None,
        fix: "Keep the defaults (2m for authentication, 5m and 30s for authorization) unless a security \
requirement says otherwise, and then budget the review traffic.",
    },
    check,
};

/// Go's `time.ParseDuration` for the units durations use: `1h2m3.5s`, `500ms`.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if s == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, len) =
            [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("h", 3600.0), ("m", 60.0), ("s", 1.0)]
                .iter()
                .find(|(u, _)| rest.starts_with(u))
                .map(|(u, f)| (*f, u.len()))?;
        total += value * unit;
        rest = &rest[len..];
    }
    Some(total)
}

/// (setting, default in seconds, what it caches)
const SETTINGS: &[(&[&str], &str, f64, &str)] = &[
    (&["authentication", "webhook", "cacheTTL"], "--authentication-token-webhook-cache-ttl", 120.0, "TokenReview"),
    (
        &["authorization", "webhook", "cacheAuthorizedTTL"],
        "--authorization-webhook-cache-authorized-ttl",
        300.0,
        "SubjectAccessReview",
    ),
    (
        &["authorization", "webhook", "cacheUnauthorizedTTL"],
        "--authorization-webhook-cache-unauthorized-ttl",
        30.0,
        "SubjectAccessReview",
    ),
];

fn finding(
    ctx: &Context<'_>,
    location: Location,
    setting: &str,
    value: &str,
    ttl: f64,
    default: f64,
    review: &str,
) -> Diagnostic {
    let nodes = ctx.options.cluster.nodes as f64;
    let rate = if ttl > 0.0 { nodes / ttl } else { f64::INFINITY };
    let per = if ttl > 0.0 {
        format!(
            "about {} {review}s per second at {} nodes for one identity reaching every kubelet",
            cost::rate(rate),
            thousands(nodes as u64)
        )
    } else {
        format!("a {review} for every request to every kubelet")
    };
    Diagnostic::new(
        &RULE.info,
        location,
        format!(
            "kubelet `{setting}` is {value} (default {}): {} times the {review} traffic, {per}",
            human(default),
            if ttl > 0.0 { format!("{:.0}", default / ttl) } else { "unbounded".into() },
        ),
    )
    .help(RULE.info.fix)
}

fn human(seconds: f64) -> String {
    if seconds >= 60.0 { format!("{}m", seconds / 60.0) } else { format!("{seconds}s") }
}

fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for cm in ctx.inventory.config_maps() {
        for e in cm.node.get("data").and_then(Node::as_map).unwrap_or(&[]) {
            let Some(text) = e.value.as_str().filter(|t| t.contains("KubeletConfiguration")) else { continue };
            let origin = TextOrigin::Scalar { location: cm.loc(e.value.span) };
            for doc in apiload_yaml::load_str(text, &Limits::default()).into_iter().flatten() {
                if doc.root.get("kind").and_then(Node::as_str) != Some("KubeletConfiguration") {
                    continue;
                }
                for (path, _, default, review) in SETTINGS {
                    let Some(v) = doc.root.path(path) else { continue };
                    let Some(text_value) = v.as_str() else { continue };
                    let Some(ttl) = parse_duration(text_value) else { continue };
                    if ttl < *default {
                        let loc = origin.locate(ctx.sources, text, v.span.start as usize);
                        out.push(finding(ctx, loc, &path.join("."), text_value, ttl, *default, review));
                    }
                }
            }
        }
    }
    for w in &ctx.inventory.workloads {
        let obj = ctx.inventory.object(w.object);
        for arg in w.containers().flat_map(|c| c.command.iter().chain(&c.args)) {
            for (_, flag, default, review) in SETTINGS {
                let Some(v) = arg.value.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) else { continue };
                let Some(ttl) = parse_duration(v) else { continue };
                if ttl < *default {
                    out.push(finding(ctx, obj.loc(arg.span), flag, v, ttl, *default, review).workload(obj.reference()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2m0s"), Some(120.0));
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_duration("500ms"), Some(0.5));
        assert_eq!(parse_duration("0s"), Some(0.0));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration(""), None);
    }
}
