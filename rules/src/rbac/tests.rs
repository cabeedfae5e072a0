use super::*;
use crate::source::{SourceId, Sources};
use apiload_yaml::{Limits, load_str};

fn rbac_of(text: &str) -> Rbac {
    let mut objects = Vec::new();
    let mut diags = Vec::new();
    let mut sources = Sources::new();
    let id: SourceId = sources.add("t.yaml", text.as_bytes());
    for doc in load_str(text, &Limits::default()) {
        crate::object::objects_from_document(id, doc.unwrap().root, "default", &mut objects, &mut diags);
    }
    let rbac = Rbac::build(&objects, &mut diags);
    assert!(diags.is_empty(), "{:?}", diags.iter().map(|d| &d.message).collect::<Vec<_>>());
    rbac
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
    let b = |v: &[&str]| v.iter().map(|s| Box::<str>::from(*s)).collect();
    PolicyRule {
        api_groups: b(groups),
        resources: b(resources),
        verbs: b(verbs),
        resource_names: b(names),
        origin: None,
    }
}

/// Can the ServiceAccount `verb` the collection, cluster-wide?
fn can(rbac: &Rbac, ns: &str, sa: &str, verb: &str, group: &str, resource: &str) -> bool {
    rbac.grants_of_service_account(ns, sa).iter().any(|g| {
        g.scope == Scope::Cluster
            && g.role.is_some_and(|r| rbac.rules(r).any(|(_, rule)| rule.allows_collection(verb, group, resource)))
    })
}

#[test]
fn resource_matching_follows_the_authorizer() {
    let r = rule(&[""], &["pods", "pods/log", "*/scale"], &["get"], &[]);
    assert!(r.allows_resource("pods", ""));
    assert!(r.allows_resource("pods", "log"));
    assert!(!r.allows_resource("pods", "exec"));
    assert!(r.allows_resource("deployments", "scale"));
    assert!(!r.allows_resource("deployments", ""));
    let all = rule(&["*"], &["*"], &["*"], &[]);
    assert!(all.allows_collection("watch", "apps", "deployments"));
    assert!(!rule(&["apps"], &["pods"], &["list"], &[]).allows_collection("list", "", "pods"));
    assert!(!rule(&[""], &["pods"], &["get"], &[]).allows_collection("list", "", "pods"));
    assert!(!rule(&[""], &["pods"], &["list"], &["one"]).allows_collection("list", "", "pods"));
}

#[test]
fn subject_forms_reach_the_service_account() {
    let rbac = rbac_of(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pods}
rules: [{apiGroups: [""], resources: [pods], verbs: [watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: by-user}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pods}
subjects: [{kind: User, name: "system:serviceaccount:a:u"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: by-ns-group}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pods}
subjects: [{kind: Group, name: "system:serviceaccounts:b"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: sa-without-namespace}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pods}
subjects: [{kind: ServiceAccount, name: c}]
"#,
    );
    assert!(can(&rbac, "a", "u", "watch", "", "pods"));
    assert!(can(&rbac, "b", "anyone", "watch", "", "pods"));
    assert!(!can(&rbac, "c", "anyone", "watch", "", "pods"));
    // A ServiceAccount subject without a namespace matches nothing in a ClusterRoleBinding.
    assert!(!can(&rbac, "default", "c", "watch", "", "pods"));
}

#[test]
fn role_bindings_grant_in_their_namespace_and_default_the_subject_namespace() {
    let rbac = rbac_of(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: agent}]
"#,
    );
    let grants = rbac.grants_of_service_account("team", "agent");
    let g = grants.iter().find(|g| &*g.binding.name == "rb").expect("reaches team/agent");
    assert_eq!(g.scope, Scope::Namespace("team"));
    assert!(!can(&rbac, "team", "agent", "watch", "", "pods"));
}

#[test]
fn aggregation_is_transitive_and_survives_cycles() {
    let rbac = rbac_of(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: top}
aggregationRule: {clusterRoleSelectors: [{matchLabels: {agg: top}}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: middle, labels: {agg: top}}
aggregationRule: {clusterRoleSelectors: [{matchLabels: {agg: middle}}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: leaf, labels: {agg: middle}}
aggregationRule: {clusterRoleSelectors: [{matchLabels: {agg: top}}]}
rules: [{apiGroups: [""], resources: [secrets], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: into-view, labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}}
rules: [{apiGroups: [example.com], resources: [widgets], verbs: [watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: top}
subjects: [{kind: ServiceAccount, name: s, namespace: ns1}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: v}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: ServiceAccount, name: t, namespace: ns1}]
"#,
    );
    assert!(can(&rbac, "ns1", "s", "list", "", "secrets"));
    // admin aggregates edit, which aggregates view, which picks up the input's role.
    assert!(can(&rbac, "ns1", "t", "watch", "example.com", "widgets"));
    assert!(can(&rbac, "ns1", "t", "watch", "", "pods"));
}

#[test]
fn unresolved_role_refs_grant_nothing() {
    let rbac = rbac_of(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: missing}
subjects: [{kind: ServiceAccount, name: s, namespace: ns1}]
"#,
    );
    let grants = rbac.grants_of_service_account("ns1", "s");
    let g = grants.iter().find(|g| &*g.binding.name == "b").unwrap();
    assert!(g.role.is_none());
}

#[test]
fn input_roles_replace_builtin_ones_of_the_same_name() {
    let rbac = rbac_of(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: system:node-problem-detector}
rules: [{apiGroups: [""], resources: [nodes], verbs: [watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: npd}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node-problem-detector}
subjects: [{kind: ServiceAccount, name: npd, namespace: kube-system}]
"#,
    );
    assert!(can(&rbac, "kube-system", "npd", "watch", "", "nodes"));
}

#[test]
fn builtin_bindings_reach_kube_system_service_accounts() {
    let rbac = rbac_of("");
    assert!(can(&rbac, "kube-system", "kube-dns", "watch", "", "endpoints"));
    assert!(can(&rbac, "kube-system", "daemon-set-controller", "watch", "", "nodes"));
    assert!(!can(&rbac, "default", "default", "list", "", "pods"));
}

/// The bootstrap RoleBindings of kube-system and kube-public grant in their
/// namespace only (found by the end-to-end RBAC oracle: they were missing).
#[test]
fn builtin_role_bindings_grant_in_their_namespace() {
    let rbac = rbac_of("");
    let in_namespace = |ns: &str, sa: &str, verb: &str, group: &str, resource: &str, target: &str| {
        rbac.grants_of_service_account(ns, sa).iter().any(|g| {
            g.scope == Scope::Namespace(target)
                && g.role.is_some_and(|r| rbac.rules(r).any(|(_, rule)| rule.allows_collection(verb, group, resource)))
        })
    };
    assert!(in_namespace("kube-system", "bootstrap-signer", "watch", "", "secrets", "kube-system"));
    assert!(in_namespace("kube-system", "token-cleaner", "list", "", "secrets", "kube-system"));
    assert!(!can(&rbac, "kube-system", "bootstrap-signer", "list", "", "secrets"));
    assert!(!in_namespace("kube-system", "bootstrap-signer", "list", "", "secrets", "default"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            Just("pods".to_string()),
            Just("pods/log".to_string()),
            Just("*/log".to_string()),
            "[a-z]{1,6}(/[a-z]{1,4})?"
        ]
    }

    proptest! {
        /// A `*` resource matches everything; an exact resource matches only
        /// itself; `*/sub` matches exactly the subresource `sub` of anything.
        #[test]
        fn resource_matching_agrees_with_a_direct_reading(rule_res in word(), res in "[a-z]{1,6}", sub in prop_oneof![Just(String::new()), "[a-z]{1,4}"]) {
            let r = rule(&[""], &[&rule_res], &["get"], &[]);
            let combined = if sub.is_empty() { res.clone() } else { format!("{res}/{sub}") };
            let expected = rule_res == "*"
                || rule_res == combined
                || (!sub.is_empty() && rule_res == format!("*/{sub}"));
            prop_assert_eq!(r.allows_resource(&res, &sub), expected);
        }
    }
}
