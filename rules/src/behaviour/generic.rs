//! Behaviour of agents no profile knows: grants are assumed used, and a node
//! name handed to the agent scopes it.

use super::{Behaviour, NodeScope};
use crate::access::Access;
use crate::agent_config::resolve::{self, TextOrigin};
use crate::calls::{ApiCall, CallScope};
use crate::inventory::Inventory;
use crate::object::Object;
use crate::profile::ClientLimits;
use crate::source::{Location, Sources};
use crate::workload::{EnvSource, RefKind, VolumeSource, Workload};

pub fn infer(sources: &Sources, inv: &Inventory, w: &Workload, obj: &Object, access: &Access) -> Behaviour {
    let node_scope = node_name_handed(sources, inv, w, obj);
    let calls = access
        .collections
        .values()
        .map(|c| ApiCall {
            group: c.group.clone(),
            resource: c.resource.clone(),
            info: c.info,
            list: c.list,
            watch: c.watch,
            get: false,
            scope: if !c.cluster_wide {
                CallScope::Namespaces(c.namespaces.clone())
            } else if node_scope.is_some() {
                CallScope::Node
            } else {
                CallScope::Cluster
            },
            inferred: true,
            origin: None,
        })
        .collect();
    Behaviour { calls, node_scope, ..Behaviour::default() }
}

/// Finds where a container hands itself the node name: a `$(VAR)` in its
/// command or args, a field selector built in an env value, or a reference
/// to the variable in a ConfigMap or Secret it mounts — where `VAR` comes
/// from `fieldRef: spec.nodeName`.
pub fn node_name_handed(sources: &Sources, inv: &Inventory, w: &Workload, obj: &Object) -> Option<NodeScope> {
    for c in w.containers() {
        let vars: Vec<&str> = c
            .env
            .iter()
            .filter(|e| matches!(&e.source, EnvSource::FieldRef(p) if &**p == "spec.nodeName"))
            .map(|e| &*e.name.value)
            .collect();
        for var in vars {
            let reference = format!("$({var})");
            if let Some(arg) = c.command.iter().chain(&c.args).find(|a| a.value.contains(&reference)) {
                return Some(NodeScope { variable: var.into(), location: obj.loc(arg.span) });
            }
            let selector = format!("spec.nodeName={reference}");
            for e in &c.env {
                if let EnvSource::Value(v) = &e.source
                    && v.value.contains(&selector)
                {
                    return Some(NodeScope { variable: var.into(), location: obj.loc(v.span) });
                }
            }
            if let Some(location) = referenced_in_mounts(sources, inv, w, obj, c, var) {
                return Some(NodeScope { variable: var.into(), location });
            }
        }
    }
    None
}

/// The forms agents' configuration languages use to read an environment variable.
fn reference_at(text: &str, var: &str) -> Option<usize> {
    let forms = [
        format!("${{{var}}}"),
        format!("${{env:{var}}}"),
        format!("${{{var}:"),
        format!("$({var})"),
        format!("#{{ENV['{var}']}}"),
        format!("#{{ENV[\"{var}\"]}}"),
        format!("env(\"{var}\")"),
    ];
    forms.iter().filter_map(|f| text.find(f.as_str())).min()
}

fn referenced_in_mounts(
    sources: &Sources,
    inv: &Inventory,
    w: &Workload,
    obj: &Object,
    c: &crate::workload::Container,
    var: &str,
) -> Option<Location> {
    for m in &c.volume_mounts {
        let Some(volume) = w.pod.volumes.iter().find(|v| v.name == m.name) else { continue };
        let refs: Vec<(RefKind, &str)> = match &volume.source {
            VolumeSource::Ref { kind, name, .. } => vec![(*kind, &**name)],
            VolumeSource::Projected { sources, .. } => sources.iter().map(|s| (s.kind, &*s.name)).collect(),
            _ => continue,
        };
        for (kind, name) in refs {
            let holder = match kind {
                RefKind::ConfigMap => inv.config_map(obj.ns(), name),
                RefKind::Secret => inv.secret(obj.ns(), name),
            };
            let Some(holder) = holder else { continue };
            for key in ["data", "stringData"] {
                for e in holder.node.get(key).and_then(|d| d.as_map()).unwrap_or(&[]) {
                    let text = match (kind, key) {
                        (RefKind::Secret, "data") => {
                            e.value.as_str().and_then(resolve::base64_decode).and_then(|b| String::from_utf8(b).ok())
                        }
                        _ => e.value.as_str().map(str::to_string),
                    };
                    let Some(text) = text else { continue };
                    if let Some(at) = reference_at(&text, var) {
                        return Some(match (kind, key) {
                            // Decoded bytes: the key is as precise as it gets.
                            (RefKind::Secret, "data") => holder.loc(e.key_span),
                            _ => TextOrigin::Scalar { location: holder.loc(e.value.span) }.locate(sources, &text, at),
                        });
                    }
                }
            }
        }
    }
    None
}

/// Rate limits of a container no profile knows: the flags and variable that
/// client-go based agents commonly expose.
pub fn generic_client_limits(inv: &Inventory, w: &Workload, obj: &Object) -> ClientLimits {
    const QPS_FLAGS: &[&str] = &["--kube-api-qps", "--k8s-client-qps", "--kubernetes-client-qps", "--client-qps"];
    const BURST_FLAGS: &[&str] =
        &["--kube-api-burst", "--k8s-client-burst", "--kubernetes-client-burst", "--client-burst"];
    let mut limits = ClientLimits { default_qps: Some(5.0), ..ClientLimits::default() };
    for c in w.containers() {
        let env = resolve::environment(inv, obj, c);
        let args = crate::profile::command_line(obj, c, &env);
        let names = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if let Some((v, a)) = crate::profile::flag_value(&args, &names(QPS_FLAGS))
            && let Ok(q) = v.parse::<f64>()
        {
            limits.qps = Some((q, a.location));
        }
        if let Some((v, a)) = crate::profile::flag_value(&args, &names(BURST_FLAGS))
            && let Ok(b) = v.parse::<f64>()
        {
            limits.burst = Some((b, a.location));
        }
        if limits.qps.is_none()
            && let Some(e) = env.iter().find(|e| e.name == "KUBE_API_QPS")
            && let Some(q) = e.value.as_deref().and_then(|v| v.parse::<f64>().ok())
        {
            limits.qps = Some((q, e.location));
        }
        if limits.qps.is_some() {
            break;
        }
    }
    limits
}
