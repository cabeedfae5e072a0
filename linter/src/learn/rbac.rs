//! `apiload learn --suggest-rbac`: the smallest RBAC that allows every
//! request each ServiceAccount was seen to make, as YAML for `kubectl apply`
//! (the rules are the engine's `least_privilege::suggest`).

use super::{Entry, copies_phrase};
use apiload_rules::least_privilege::{self, SuggestedRule};
use apiload_rules::observed::event::format_timestamp;

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn list(items: &[String]) -> String {
    items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
}

fn rules_yaml(rules: &[SuggestedRule], out: &mut String) {
    for r in rules {
        for n in &r.notes {
            out.push_str(&format!("  # {n}\n"));
        }
        out.push_str(&format!("  - apiGroups: [{}]\n", quote(&r.group)));
        out.push_str(&format!("    resources: [{}]\n", list(&r.resources)));
        if !r.resource_names.is_empty() {
            out.push_str(&format!("    resourceNames: [{}]\n", list(&r.resource_names)));
        }
        out.push_str(&format!("    verbs: [{}]\n", list(&r.verbs)));
    }
}

fn binding(kind: &str, role_kind: &str, name: &str, namespace: Option<&str>, sa_ns: &str, sa: &str) -> String {
    let ns = namespace.map_or(String::new(), |n| format!("  namespace: {}\n", quote(n)));
    format!(
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {}\n{ns}roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: {role_kind}\n  name: {}\nsubjects:\n  - kind: ServiceAccount\n    name: {}\n    namespace: {}\n",
        quote(name),
        quote(name),
        quote(sa),
        quote(sa_ns)
    )
}

/// The YAML for every ServiceAccount among the entries, once each.
pub fn render(entries: &[Entry<'_>], source: &str) -> String {
    let mut out = String::new();
    let mut done: Vec<(&str, &str)> = Vec::new();
    for e in entries {
        let a = e.account;
        if done.contains(&(&*a.namespace, &*a.name)) {
            continue;
        }
        done.push((&a.namespace, &a.name));
        let copies = a.all_copies();
        let calls = a.calls(&copies);
        let s = least_privilege::suggest(&a.namespace, &a.name, &calls);
        out.push_str(&format!(
            "# Suggested by `apiload learn --suggest-rbac` from the audit log {source}: the smallest RBAC that\n# allows every request ServiceAccount {} was seen to make ({} to {}, {}).\n# Review it, then apply it in place of the account's roles.\n",
            a.display(),
            format_timestamp(a.first),
            format_timestamp(a.last),
            copies_phrase(a, copies.len())
        ));
        if !s.builtin.is_empty() {
            out.push_str("# Allowed to every ServiceAccount by the bootstrap policy, so not repeated here:\n");
            for (what, role) in &s.builtin {
                out.push_str(&format!("#   {what} ({role})\n"));
            }
        }
        if !s.refused.is_empty() {
            out.push_str("# Refused (403) in the log and not granted here; grant it only if the agent needs it:\n");
            for what in &s.refused {
                out.push_str(&format!("#   {what}\n"));
            }
        }
        let name = format!("apiload-learned:{}:{}", a.namespace, a.name);
        if !s.cluster.is_empty() || !s.non_resource.is_empty() {
            out.push_str(&format!(
                "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {}\nrules:\n",
                quote(&name)
            ));
            rules_yaml(&s.cluster, &mut out);
            for (path, verbs) in &s.non_resource {
                out.push_str(&format!("  - nonResourceURLs: [{}]\n    verbs: [{}]\n", quote(path), list(verbs)));
            }
            out.push_str(&binding("ClusterRoleBinding", "ClusterRole", &name, None, &a.namespace, &a.name));
        }
        for (ns, rules) in &s.namespaced {
            let role = format!("apiload-learned:{}", a.name);
            out.push_str(&format!(
                "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {}\n  namespace: {}\nrules:\n",
                quote(&role),
                quote(ns)
            ));
            rules_yaml(rules, &mut out);
            out.push_str(&binding("RoleBinding", "Role", &role, Some(ns), &a.namespace, &a.name));
        }
        if s.cluster.is_empty() && s.non_resource.is_empty() && s.namespaced.is_empty() {
            out.push_str("# It needs nothing beyond the bootstrap policy.\n");
        }
    }
    if out.is_empty() {
        out.push_str("# No request of a ServiceAccount was seen: nothing to suggest.\n");
    }
    out
}
