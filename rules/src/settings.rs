//! The configuration file, `.apiload.yaml`, read strictly: unknown keys and
//! bad values are errors with their position.
//!
//! ```yaml
//! failOn: warning                 # default of --fail-on
//! namespace: default              # default of --namespace
//! rules:
//!   AL401: off                    # by id or name: off, info, warning, error
//!   per-node-capability-only: error
//! cluster:                        # the cluster profile (docs/cost-model.md)
//!   nodes: 2000
//! profiles: [./apiload-profiles]  # folders of agent profiles, relative to this file
//! exemptions:
//!   - match: {kind: DaemonSet, namespace: kube-system, name: "kube-proxy*"}
//!     rules: [AL101]
//!     reason: kube-proxy watches every Service by design
//!     expires: 2027-06-30
//! annotationExemptions:           # where `apiload.dev/exempt` annotations count
//!   namespaces: ["*"]             # (the webhook's default is none)
//! ```

use crate::diagnostic::Severity;
use crate::exempt::{Exemption, ObjectSelector};
use crate::options::{ClusterProfile, NodePool, ResourceOverride, RuleSetting, Taint};
use crate::rbac::LabelExpression;
use crate::rules;
use crate::source::{Location, SourceId, SpanError};
use apiload_yaml::{Limits, Node, Span, Value};

#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub fail_on: Option<String>,
    pub namespace: Option<String>,
    /// (rule id, setting).
    pub rules: Vec<(&'static str, RuleSetting)>,
    /// The `cluster:` section, applied over the defaults by [`Settings::apply_cluster`].
    pub cluster: Option<Node>,
    /// Profile folders as written (relative to the file).
    pub profiles: Vec<String>,
    pub exemptions: Vec<Exemption>,
    /// Namespaces where annotation exemptions are honoured (`*` for all); `None` when unset.
    pub annotation_namespaces: Option<Vec<String>>,
}

type R<T> = Result<T, SpanError>;

fn err<T>(span: Span, message: impl Into<String>) -> R<T> {
    Err(SpanError { span, message: message.into() })
}

fn map<'a>(node: &'a Node, what: &str) -> R<&'a [apiload_yaml::Entry]> {
    node.as_map().map_or_else(|| err(node.span, format!("{what} must be a mapping")), Ok)
}

fn string(node: &Node, what: &str) -> R<String> {
    match &node.value {
        Value::Str(s) => Ok(s.to_string()),
        _ => err(node.span, format!("{what} must be a string, not a {}", node.type_name())),
    }
}

fn strings(node: &Node, what: &str) -> R<Vec<String>> {
    match &node.value {
        Value::Seq(items) => items.iter().map(|i| string(i, what)).collect(),
        Value::Str(s) => Ok(vec![s.to_string()]),
        _ => err(node.span, format!("{what} must be a list of strings")),
    }
}

fn unknown<T>(key: &str, span: Span, allowed: &[&str]) -> R<T> {
    err(span, format!("unknown key `{key}`; expected one of: {}", allowed.join(", ")))
}

impl Settings {
    /// Parses a configuration file. Errors carry spans into `text`.
    pub fn parse(source: SourceId, text: &str) -> R<Settings> {
        let root = match apiload_yaml::load_one(text, &Limits::default()) {
            Ok(None) => return Ok(Settings::default()),
            Ok(Some(d)) => d.root,
            Err(e) => return err(e.span, e.message),
        };
        let mut s = Settings::default();
        const TOP: &[&str] =
            &["failOn", "namespace", "rules", "cluster", "profiles", "exemptions", "annotationExemptions"];
        for e in map(&root, "the configuration")? {
            let v = &e.value;
            match &*e.key {
                "failOn" => {
                    let f = string(v, "`failOn`")?;
                    if !["error", "warning", "info", "never"].contains(&f.as_str()) {
                        return err(v.span, "`failOn` must be error, warning, info or never");
                    }
                    s.fail_on = Some(f);
                }
                "namespace" => s.namespace = Some(string(v, "`namespace`")?),
                "rules" => {
                    for r in map(v, "`rules`")? {
                        let Some(rule) = rules::find(&r.key) else {
                            return err(r.key_span, format!("no rule `{}`; `apiload rules` lists them", r.key));
                        };
                        // `off` is a YAML 1.1 boolean: false.
                        let setting = match &r.value.value {
                            Value::Bool(false) => RuleSetting::Off,
                            Value::Str(x) if x.as_str() == "off" => RuleSetting::Off,
                            Value::Str(x) => match Severity::parse(x) {
                                Some(sev) => RuleSetting::Severity(sev),
                                None => return err(r.value.span, "a rule setting must be off, info, warning or error"),
                            },
                            _ => return err(r.value.span, "a rule setting must be off, info, warning or error"),
                        };
                        s.rules.push((rule.id, setting));
                    }
                }
                "cluster" => {
                    // Checked now so that errors point here; applied later.
                    apply_cluster(v, &mut ClusterProfile::default())?;
                    s.cluster = Some(v.clone());
                }
                "profiles" => s.profiles = strings(v, "`profiles`")?,
                "exemptions" => {
                    let Some(items) = v.as_seq() else { return err(v.span, "`exemptions` must be a list") };
                    for item in items {
                        s.exemptions.push(exemption(source, item)?);
                    }
                }
                "annotationExemptions" => {
                    for a in map(v, "`annotationExemptions`")? {
                        match &*a.key {
                            "namespaces" => s.annotation_namespaces = Some(strings(&a.value, "`namespaces`")?),
                            k => return unknown(k, a.key_span, &["namespaces"]),
                        }
                    }
                }
                k => return unknown(k, e.key_span, TOP),
            }
        }
        Ok(s)
    }

    /// Applies the `cluster:` section to a profile.
    pub fn apply_cluster(&self, profile: &mut ClusterProfile) {
        if let Some(node) = &self.cluster {
            // Validated while parsing.
            let _ = apply_cluster(node, profile);
        }
    }
}

fn date(node: &Node) -> R<String> {
    let text = node.scalar_text().map(|t| t.into_owned()).unwrap_or_default();
    let ok = text.len() == 10
        && text.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() })
        && text[5..7].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        && text[8..10].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d));
    if ok { Ok(text) } else { err(node.span, "`expires` must be a date, YYYY-MM-DD") }
}

fn exemption(source: SourceId, node: &Node) -> R<Exemption> {
    const KEYS: &[&str] = &["match", "rules", "reason", "expires"];
    let mut rules_list = Vec::new();
    let mut reason = None;
    let mut expires = None;
    let mut selector = ObjectSelector::default();
    for e in map(node, "an exemption")? {
        let v = &e.value;
        match &*e.key {
            "rules" => {
                for r in v.as_seq().unwrap_or(std::slice::from_ref(v)) {
                    let name = string(r, "a rule")?;
                    if name == "*" {
                        rules_list.push("*");
                    } else {
                        match rules::find(&name) {
                            Some(rule) => rules_list.push(rule.id),
                            None => return err(r.span, format!("no rule `{name}`; `apiload rules` lists them")),
                        }
                    }
                }
            }
            "reason" => {
                let r = string(v, "`reason`")?;
                if r.trim().is_empty() {
                    return err(v.span, "`reason` must say why");
                }
                reason = Some(r);
            }
            "expires" => expires = Some(date(v)?),
            "match" => selector = object_selector(v)?,
            k => return unknown(k, e.key_span, KEYS),
        }
    }
    let Some(reason) = reason else { return err(node.span, "an exemption needs a `reason`") };
    if rules_list.is_empty() {
        return err(node.span, "an exemption needs `rules` (ids, names or \"*\")");
    }
    Ok(Exemption {
        rules: rules_list,
        selector,
        reason,
        expires,
        location: Some(Location::new(source, node.span)),
        origin: crate::exempt::Origin::Config,
    })
}

fn object_selector(node: &Node) -> R<ObjectSelector> {
    const KEYS: &[&str] = &["kind", "namespace", "name", "labels", "labelSelector"];
    let mut s = ObjectSelector::default();
    for e in map(node, "`match`")? {
        let v = &e.value;
        match &*e.key {
            "kind" => s.kind = Some(string(v, "`kind`")?),
            "namespace" => s.namespace = Some(string(v, "`namespace`")?),
            "name" => s.name = Some(string(v, "`name`")?),
            "labels" => {
                for l in map(v, "`labels`")? {
                    let value = l.value.scalar_text().map(|t| t.into_owned()).unwrap_or_default();
                    s.labels.match_labels.push((l.key.as_str().into(), value.into()));
                }
            }
            "labelSelector" => {
                for l in map(v, "`labelSelector`")? {
                    match &*l.key {
                        "matchLabels" => {
                            for m in map(&l.value, "`matchLabels`")? {
                                let value = m.value.scalar_text().map(|t| t.into_owned()).unwrap_or_default();
                                s.labels.match_labels.push((m.key.as_str().into(), value.into()));
                            }
                        }
                        "matchExpressions" => {
                            let Some(items) = l.value.as_seq() else {
                                return err(l.value.span, "`matchExpressions` must be a list");
                            };
                            for x in items {
                                let key = string(x.get("key").unwrap_or(x), "`key`")?;
                                let op = string(x.get("operator").unwrap_or(x), "`operator`")?;
                                if !["In", "NotIn", "Exists", "DoesNotExist"].contains(&op.as_str()) {
                                    return err(x.span, "`operator` must be In, NotIn, Exists or DoesNotExist");
                                }
                                let values =
                                    x.get("values").map(|v| strings(v, "`values`")).transpose()?.unwrap_or_default();
                                s.labels.match_expressions.push(LabelExpression {
                                    key: key.into(),
                                    operator: op.into(),
                                    values: values.into_iter().map(Into::into).collect(),
                                });
                            }
                        }
                        k => return unknown(k, l.key_span, &["matchLabels", "matchExpressions"]),
                    }
                }
            }
            k => return unknown(k, e.key_span, KEYS),
        }
    }
    Ok(s)
}

fn non_negative(node: &Node, key: &str) -> R<f64> {
    match node.as_f64() {
        Some(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => err(node.span, format!("`{key}` must be a non-negative number")),
    }
}

/// Applies a cluster profile (the `cluster:` section, or a `--cluster-profile` file).
pub fn apply_cluster(node: &Node, profile: &mut ClusterProfile) -> R<()> {
    const KEYS: &[&str] = &[
        "nodes",
        "podsPerNode",
        "servicesPerNode",
        "namespacesPerNode",
        "services",
        "namespaces",
        "kubernetesVersion",
        "resources",
        "coresPerNode",
        "nodePools",
    ];
    for e in map(node, "a cluster profile")? {
        let v = &e.value;
        match &*e.key {
            "nodes" => match v.as_i64() {
                Some(n) if n > 0 => profile.nodes = n as u64,
                _ => return err(v.span, "`nodes` must be a positive integer"),
            },
            "podsPerNode" => profile.pods_per_node = non_negative(v, "podsPerNode")?,
            "servicesPerNode" => profile.services_per_node = non_negative(v, "servicesPerNode")?,
            "namespacesPerNode" => profile.namespaces_per_node = non_negative(v, "namespacesPerNode")?,
            "services" => profile.services = Some(non_negative(v, "services")?),
            "namespaces" => profile.namespaces = Some(non_negative(v, "namespaces")?),
            "kubernetesVersion" => {
                let text = v.scalar_text().unwrap_or_default();
                let t = text.trim_start_matches('v');
                match t.strip_prefix("1.").and_then(|m| m.split('.').next()).and_then(|m| m.parse::<u32>().ok()) {
                    Some(m) => profile.kubernetes_minor = m,
                    None => return err(v.span, "`kubernetesVersion` must look like \"1.30\" (quote it)"),
                }
            }
            "resources" => {
                for r in map(v, "`resources`")? {
                    let (resource, group) = match r.key.split_once('.') {
                        Some((res, g)) => (res.to_string(), g.to_string()),
                        None => (r.key.to_string(), String::new()),
                    };
                    let mut o = ResourceOverride { group, resource, ..ResourceOverride::default() };
                    for f in map(&r.value, &format!("`resources.{}`", r.key))? {
                        match &*f.key {
                            "count" => o.count = Some(non_negative(&f.value, "count")?),
                            "objectBytes" => o.object_bytes = Some(non_negative(&f.value, "objectBytes")?),
                            "churnPerHour" => o.churn_per_hour = Some(non_negative(&f.value, "churnPerHour")?),
                            k => return unknown(k, f.key_span, &["count", "objectBytes", "churnPerHour"]),
                        }
                    }
                    profile.resources.retain(|x| !(x.group == o.group && x.resource == o.resource));
                    profile.resources.push(o);
                }
            }
            "coresPerNode" => profile.cores_per_node = non_negative(v, "coresPerNode")?,
            "nodePools" => {
                profile.node_pools = v
                    .as_seq()
                    .ok_or_else(|| SpanError::new(v.span, "`nodePools` must be a list of pools"))?
                    .iter()
                    .map(node_pool)
                    .collect::<R<_>>()?;
                let total: u64 = profile.node_pools.iter().map(|p| p.nodes).sum();
                // The pools make the cluster, unless `nodes` says it is bigger
                // (the rest: nodes without labels or taints).
                if !map(node, "a cluster profile")?.iter().any(|e| &*e.key == "nodes") || profile.nodes < total {
                    profile.nodes = total.max(1);
                }
            }
            k => return unknown(k, e.key_span, KEYS),
        }
    }
    Ok(())
}

/// `{name: gpu, nodes: 300, labels: {…}, taints: [{key, value, effect}]}`.
fn node_pool(node: &Node) -> R<NodePool> {
    const KEYS: &[&str] = &["name", "nodes", "labels", "taints"];
    let mut pool = NodePool::default();
    for e in map(node, "a node pool")? {
        let v = &e.value;
        match &*e.key {
            "name" => pool.name = string(v, "`name`")?,
            "nodes" => match v.as_i64() {
                Some(n) if n >= 0 => pool.nodes = n as u64,
                _ => return err(v.span, "`nodes` must be a non-negative integer"),
            },
            "labels" => {
                for l in map(v, "`labels`")? {
                    let value = l.value.scalar_text().map(|t| t.into_owned()).unwrap_or_default();
                    pool.labels.push((l.key.to_string(), value));
                }
            }
            "taints" => {
                for t in v.as_seq().ok_or_else(|| SpanError::new(v.span, "`taints` must be a list"))? {
                    let mut taint = Taint::default();
                    for f in map(t, "a taint")? {
                        match &*f.key {
                            "key" => taint.key = string(&f.value, "`key`")?,
                            "value" => taint.value = f.value.scalar_text().map(|t| t.into_owned()).unwrap_or_default(),
                            "effect" => match string(&f.value, "`effect`")?.as_str() {
                                e @ ("NoSchedule" | "PreferNoSchedule" | "NoExecute") => taint.effect = e.to_string(),
                                _ => return err(f.value.span, "`effect` is NoSchedule, PreferNoSchedule or NoExecute"),
                            },
                            k => return unknown(k, f.key_span, &["key", "value", "effect"]),
                        }
                    }
                    pool.taints.push(taint);
                }
            }
            k => return unknown(k, e.key_span, KEYS),
        }
    }
    if pool.name.is_empty() {
        return err(node.span, "a node pool needs a `name`");
    }
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;

    fn parse(text: &str) -> R<Settings> {
        Settings::parse(SourceId(0), text)
    }

    #[test]
    fn a_full_file() {
        let s = parse(
            "failOn: warning\nrules:\n  AL401: off\n  per-node-capability-only: error\ncluster:\n  nodes: 300\nprofiles: [p]\nexemptions:\n- match: {kind: DaemonSet, namespace: kube-system, name: \"kube-proxy*\", labels: {app: x}}\n  rules: [AL101, per-node-node-watch]\n  reason: by design\n  expires: 2030-01-31\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let options = Options { rule_settings: s.rules.clone(), ..Options::default() };
        assert_eq!(options.rule_setting("AL401"), Some(RuleSetting::Off));
        assert_eq!(options.rule_setting("AL103"), Some(RuleSetting::Severity(Severity::Error)));
        let mut c = ClusterProfile::default();
        s.apply_cluster(&mut c);
        assert_eq!(c.nodes, 300);
        assert_eq!(s.exemptions[0].rules, vec!["AL101", "AL102"]);
        assert_eq!(s.exemptions[0].expires.as_deref(), Some("2030-01-31"));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let text = "rules:\n  AL999: off\n";
        let e = parse(text).unwrap_err();
        assert_eq!(&text[e.span.start as usize..e.span.end as usize], "AL999");
        let text = "exemptions:\n- rules: [AL101]\n  match: {kind: Pod}\n";
        assert!(parse(text).unwrap_err().message.contains("reason"));
        let text = "exemptions:\n- rules: [AL101]\n  reason: x\n  expires: next week\n";
        assert!(parse(text).unwrap_err().message.contains("YYYY-MM-DD"));
        let text = "colour: blue\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.span.start, 0);
        assert!(parse("failOn: sometimes\n").is_err());
        assert!(parse("rules:\n  AL101: loud\n").is_err());
        assert!(parse("cluster:\n  nodes: -3\n").is_err());
    }
}
