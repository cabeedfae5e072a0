//! The namespace of objects that name none, inferred from the bindings that
//! name their ServiceAccount. `helm template` prints namespaced objects
//! without `metadata.namespace` (Helm sets it at install), while the chart's
//! bindings name the release namespace in their ServiceAccount subjects: read
//! with the default namespace, the workload, its ServiceAccount and the
//! bindings would never meet, and the join would be lost without a word.

use crate::diagnostic::{Category, Diagnostic, RuleInfo, Severity, Stage};
use crate::object::Object;
use crate::source::SourceId;
use apiload_yaml::{CompactString, Node};
use std::collections::{BTreeMap, BTreeSet};

pub static RULE: RuleInfo = RuleInfo {
    id: "AL009",
    name: "inferred-namespace",
    category: Category::Input,
    severity: Severity::Info,
    stage: Stage::Input,
    summary: "The namespace of objects that name none, inferred from the bindings of their ServiceAccount",
    detects: "A source (a file, `helm template` output on stdin) whose namespaced objects name no \
`metadata.namespace`, while RoleBindings or ClusterRoleBindings of the input name their \
ServiceAccount (by its name, or the one a workload runs as) in a namespace: the objects are taken \
to be in it, and this finding says so. When the bindings name several namespaces, the objects \
stay in the default one and the finding is a warning. `--namespace` (or `namespace:` in \
`.apiload.yaml`) decides instead, and nothing is inferred.",
    why: "Helm sets the namespace at install time, so rendered charts often carry none; read \
with the default namespace, a workload's ServiceAccount and the bindings that grant it would not \
meet, and a cluster-wide grant would go unseen.",
    example: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: agent\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: agent\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects:\n- {kind: ServiceAccount, name: agent, namespace: monitoring}\n",
    example_config: None,
    fix: "Pass the release namespace (`helm template -n NS … | apiload lint -n NS -`), or render the \
chart with namespaces (`helm template --namespace NS`, for charts that print them).",
};

/// Gives the objects of each source that named no namespace the one the
/// bindings name for their ServiceAccounts, when there is exactly one.
pub fn infer(objects: &mut [Object], default_namespace: &str, diagnostics: &mut Vec<Diagnostic>) {
    // ServiceAccount name → namespaces that bindings (anywhere in the input)
    // name it in, with the binding for messages.
    let mut named_in: BTreeMap<Box<str>, BTreeSet<Box<str>>> = BTreeMap::new();
    for o in objects.iter().filter(|o| matches!(&*o.kind, "RoleBinding" | "ClusterRoleBinding")) {
        for s in o.node.get("subjects").and_then(Node::as_seq).unwrap_or(&[]) {
            let field = |k: &str| s.get(k).and_then(Node::as_str).filter(|v| !v.is_empty());
            if let (Some("ServiceAccount"), Some(name), Some(ns)) = (field("kind"), field("name"), field("namespace")) {
                named_in.entry(name.into()).or_default().insert(ns.into());
            }
        }
    }
    // Per source, the ServiceAccounts its namespace-less objects use.
    let mut used: BTreeMap<SourceId, BTreeSet<Box<str>>> = BTreeMap::new();
    for o in objects.iter().filter(|o| o.namespace_defaulted) {
        let accounts = used.entry(o.source).or_default();
        if &*o.kind == "ServiceAccount" {
            accounts.insert(o.name.as_str().into());
        } else if let Some(sa) = service_account_of(o) {
            accounts.insert(sa);
        }
    }
    for (source, accounts) in used {
        let namespaces: BTreeSet<&Box<str>> = accounts.iter().filter_map(|a| named_in.get(a)).flatten().collect();
        let Some(anchor) = objects.iter().find(|o| o.source == source && o.namespace_defaulted) else { continue };
        let location = anchor.loc(anchor.name_span);
        match namespaces.into_iter().collect::<Vec<_>>().as_slice() {
            [] => {}
            [one] if ***one == *default_namespace => {}
            [one] => {
                let one: Box<str> = (*one).clone();
                let moved = objects.iter().filter(|o| o.source == source && o.namespace_defaulted).count();
                for o in objects.iter_mut().filter(|o| o.source == source && o.namespace_defaulted) {
                    o.namespace = Some(CompactString::from(&*one));
                    o.namespace_defaulted = false; // settled
                }
                diagnostics.push(Diagnostic::new(
                    &RULE,
                    location,
                    format!(
                        "{moved} object{} of this input name no namespace; the bindings name {} in namespace {one}, so they are taken to be there (pass `--namespace` to decide)",
                        if moved == 1 { "" } else { "s" },
                        accounts_phrase(&accounts, &named_in),
                    ),
                ));
            }
            several => diagnostics.push(
                Diagnostic::new(
                    &RULE,
                    location,
                    format!(
                        "objects of this input name no namespace, and the bindings name {} in namespaces {}: they stay in {default_namespace}, where no binding names them (pass `--namespace` to decide)",
                        accounts_phrase(&accounts, &named_in),
                        several.iter().map(|n| n.as_ref()).collect::<Vec<&str>>().join(", ")
                    ),
                )
                .severity(Severity::Warning),
            ),
        }
    }
}

/// "ServiceAccount agent" / "ServiceAccounts agent and cache".
fn accounts_phrase(accounts: &BTreeSet<Box<str>>, named_in: &BTreeMap<Box<str>, BTreeSet<Box<str>>>) -> String {
    let named: Vec<&str> = accounts.iter().filter(|a| named_in.contains_key(*a)).map(|a| a.as_ref()).collect();
    match named.as_slice() {
        [one] => format!("ServiceAccount {one}"),
        many => format!("ServiceAccounts {}", many.join(", ")),
    }
}

/// The ServiceAccount a pod-running object's pods run as (`default` when unset).
fn service_account_of(o: &Object) -> Option<Box<str>> {
    let spec = match &*o.kind {
        "Pod" => o.node.get("spec"),
        "CronJob" => o.node.path(&["spec", "jobTemplate", "spec", "template", "spec"]),
        "DaemonSet" | "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            o.node.path(&["spec", "template", "spec"])
        }
        _ => None,
    }?;
    let name = spec.get("serviceAccountName").or_else(|| spec.get("serviceAccount")).and_then(Node::as_str);
    Some(name.filter(|n| !n.is_empty()).unwrap_or("default").into())
}
