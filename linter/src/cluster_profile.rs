//! Reading a cluster profile file (`--cluster-profile FILE`, and the
//! `cluster:` section of `.apiload.yaml`):
//!
//! ```yaml
//! nodes: 2000
//! podsPerNode: 40           # average pods per node
//! servicesPerNode: 2        # or services: 8000
//! namespacesPerNode: 2      # or namespaces: 3000
//! kubernetesVersion: "1.30"
//! resources:
//!   pods: {objectBytes: 12000, churnPerHour: 2}
//!   ciliumendpoints.cilium.io: {count: 80000}
//! ```
//!
//! Unknown keys and bad values are errors with line and column.

use apiload_rules::{ClusterProfile, ResourceOverride};
use apiload_yaml::{Node, Span, Value};

pub struct ProfileError {
    pub span: Span,
    pub message: String,
}

fn err<T>(span: Span, message: impl Into<String>) -> Result<T, ProfileError> {
    Err(ProfileError { span, message: message.into() })
}

fn positive(node: &Node, key: &str) -> Result<f64, ProfileError> {
    match node.as_f64() {
        Some(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => err(node.span, format!("`{key}` must be a non-negative number")),
    }
}

/// Applies the mapping `node` to `profile`.
pub fn apply(node: &Node, profile: &mut ClusterProfile) -> Result<(), ProfileError> {
    let Some(entries) = node.as_map() else { return err(node.span, "a cluster profile must be a mapping") };
    for e in entries {
        let v = &e.value;
        match &*e.key {
            "nodes" => match v.as_i64() {
                Some(n) if n > 0 => profile.nodes = n as u64,
                _ => return err(v.span, "`nodes` must be a positive integer"),
            },
            "podsPerNode" => profile.pods_per_node = positive(v, "podsPerNode")?,
            "servicesPerNode" => profile.services_per_node = positive(v, "servicesPerNode")?,
            "namespacesPerNode" => profile.namespaces_per_node = positive(v, "namespacesPerNode")?,
            "services" => profile.services = Some(positive(v, "services")?),
            "namespaces" => profile.namespaces = Some(positive(v, "namespaces")?),
            "kubernetesVersion" => {
                let text = v.scalar_text().unwrap_or_default();
                let minor = text
                    .trim_start_matches('v')
                    .split('.')
                    .nth(1)
                    .and_then(|m| m.parse::<u32>().ok())
                    .filter(|_| text.trim_start_matches('v').starts_with("1."));
                match minor {
                    Some(m) => profile.kubernetes_minor = m,
                    None => return err(v.span, "`kubernetesVersion` must look like \"1.30\" (quote it)"),
                }
            }
            "resources" => {
                let Value::Map(resources) = &v.value else { return err(v.span, "`resources` must be a mapping") };
                for r in resources {
                    let (resource, group) = match r.key.split_once('.') {
                        Some((res, g)) => (res.to_string(), g.to_string()),
                        None => (r.key.to_string(), String::new()),
                    };
                    let mut o = ResourceOverride { group, resource, ..ResourceOverride::default() };
                    let Value::Map(fields) = &r.value.value else {
                        return err(r.value.span, format!("`resources.{}` must be a mapping", r.key));
                    };
                    for f in fields {
                        match &*f.key {
                            "count" => o.count = Some(positive(&f.value, "count")?),
                            "objectBytes" => o.object_bytes = Some(positive(&f.value, "objectBytes")?),
                            "churnPerHour" => o.churn_per_hour = Some(positive(&f.value, "churnPerHour")?),
                            other => {
                                return err(
                                    f.key_span,
                                    format!("unknown key `{other}`; expected count, objectBytes or churnPerHour"),
                                );
                            }
                        }
                    }
                    profile.resources.retain(|x| !(x.group == o.group && x.resource == o.resource));
                    profile.resources.push(o);
                }
            }
            other => {
                return err(
                    e.key_span,
                    format!(
                        "unknown key `{other}`; expected nodes, podsPerNode, servicesPerNode, namespacesPerNode, services, namespaces, kubernetesVersion or resources"
                    ),
                );
            }
        }
    }
    Ok(())
}
