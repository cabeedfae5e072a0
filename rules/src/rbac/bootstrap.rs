//! The built-in bootstrap policy, read from `bootstrap.txt` (format described there).

use super::model::*;
use std::sync::OnceLock;

static BUILTIN: OnceLock<(Vec<RoleDef>, Vec<BindingDef>)> = OnceLock::new();

/// Built-in roles and bindings (parsed once).
pub fn builtin_ref() -> &'static (Vec<RoleDef>, Vec<BindingDef>) {
    BUILTIN.get_or_init(|| parse(include_str!("bootstrap.txt")))
}

fn list(s: &str) -> Vec<Box<str>> {
    s.split(',').map(|x| if x == "core" { "".into() } else { x.into() }).collect()
}

fn pair(s: &str) -> (Box<str>, Box<str>) {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    (k.into(), v.into())
}

fn parse(text: &str) -> (Vec<RoleDef>, Vec<BindingDef>) {
    let mut roles: Vec<RoleDef> = Vec::new();
    let mut bindings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["role", name] => {
                let (namespace, name) = match name.split_once('/') {
                    Some((ns, n)) => (Some(ns.into()), n.into()),
                    None => (None, (*name).into()),
                };
                roles.push(RoleDef {
                    kind: if namespace.is_some() { RoleKind::Role } else { RoleKind::ClusterRole },
                    namespace,
                    name,
                    labels: Vec::new(),
                    rules: Vec::new(),
                    aggregation: None,
                    location: None,
                });
            }
            ["label", kv] => roles.last_mut().expect("label after role").labels.push(pair(kv)),
            ["aggregate", kv] => roles
                .last_mut()
                .expect("aggregate after role")
                .aggregation
                .get_or_insert_with(Vec::new)
                .push(LabelSelector { match_labels: vec![pair(kv)], match_expressions: Vec::new() }),
            ["allow", groups, resources, verbs, rest @ ..] => {
                roles.last_mut().expect("allow after role").rules.push(PolicyRule {
                    api_groups: list(groups),
                    resources: list(resources),
                    verbs: list(verbs),
                    resource_names: rest.first().map(|n| list(n)).unwrap_or_default(),
                    origin: None,
                });
            }
            // `bind ROLE ...` is a ClusterRoleBinding to the ClusterRole ROLE,
            // `bind NS/ROLE ...` a RoleBinding in NS to the Role NS/ROLE;
            // each named like its role.
            ["bind", role, subjects] => {
                let (kind, namespace, role) = match role.split_once('/') {
                    Some((ns, name)) => (RoleKind::Role, Some(ns.into()), name),
                    None => (RoleKind::ClusterRole, None, *role),
                };
                bindings.push(BindingDef {
                    kind,
                    namespace,
                    name: role.into(),
                    role_kind: kind,
                    role_name: role.into(),
                    role_ref: None,
                    subjects: subjects
                        .split(',')
                        .map(|s| {
                            let kind = if let Some(g) = s.strip_prefix("group:") {
                                SubjectKind::Group(g.into())
                            } else {
                                let sa = s.strip_prefix("sa:").expect("sa: or group: subject");
                                let (ns, name) = sa.split_once('/').expect("sa:NS/NAME");
                                SubjectKind::ServiceAccount { namespace: ns.into(), name: name.into() }
                            };
                            Subject { kind, location: None }
                        })
                        .collect(),
                    location: None,
                });
            }
            _ => panic!("bootstrap.txt line {}: cannot read {line:?}", n + 1),
        }
    }
    (roles, bindings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_data_reads() {
        let (roles, bindings) = builtin_ref();
        assert!(roles.iter().any(|r| &*r.name == "cluster-admin"));
        let view = roles.iter().find(|r| &*r.name == "view").unwrap();
        assert!(view.aggregation.is_some());
        let ksm = roles.iter().find(|r| &*r.name == "system:kube-scheduler").unwrap();
        assert!(ksm.rules.iter().any(|r| r.allows_collection("watch", "", "pods")));
        assert!(bindings.iter().any(|b| &*b.role_name == "system:kube-dns"));
        let reader = roles.iter().find(|r| &*r.name == "extension-apiserver-authentication-reader").unwrap();
        assert_eq!(reader.namespace.as_deref(), Some("kube-system"));
        assert!(!reader.rules[0].applies_to_collections());
    }

    #[test]
    fn a_namespaced_bind_is_a_role_binding_in_its_namespace() {
        let (roles, bindings) = parse(
            "role kube-system/token-reader\n  allow core secrets get,list\nbind kube-system/token-reader sa:kube-system/cleaner\nbind view group:system:authenticated\n",
        );
        assert_eq!(roles[0].namespace.as_deref(), Some("kube-system"));
        let b = &bindings[0];
        assert_eq!((b.kind, b.role_kind), (RoleKind::Role, RoleKind::Role));
        assert_eq!(b.namespace.as_deref(), Some("kube-system"));
        assert_eq!((&*b.name, &*b.role_name), ("token-reader", "token-reader"));
        assert_eq!(
            b.subjects[0].kind,
            SubjectKind::ServiceAccount { namespace: "kube-system".into(), name: "cleaner".into() }
        );
        let c = &bindings[1];
        assert_eq!((c.kind, c.namespace.as_deref(), &*c.role_name), (RoleKind::ClusterRole, None, "view"));
    }
}
