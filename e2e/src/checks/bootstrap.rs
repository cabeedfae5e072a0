//! The versions of what runs, and the engine's built-in RBAC
//! (rules/src/rbac/bootstrap.txt) against the bootstrap policy the API
//! server creates. `e2e/run --regenerate-bootstrap` rewrites the file from
//! the server; the check fails when the two differ.

use crate::{Result, Suite, ensure};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};
use kube::api::{Api, ListParams};
use std::fmt::Write;
use std::path::PathBuf;

const BOOTSTRAP_LABEL: &str = "kubernetes.io/bootstrapping=rbac-defaults";

/// The Kubernetes version e2e/controlplane/go.mod pins.
pub fn pinned_version(s: &Suite) -> Result<String> {
    let gomod = s.args.repo.join("e2e/controlplane/go.mod");
    let text = std::fs::read_to_string(&gomod).map_err(|e| format!("{}: {e}", gomod.display()))?;
    text.lines()
        .find_map(|l| {
            l.trim().strip_prefix("k8s.io/kubernetes v").and_then(|v| v.split_whitespace().next()).map(str::to_string)
        })
        .ok_or_else(|| format!("{}: no k8s.io/kubernetes requirement", gomod.display()))
}

pub async fn versions_match(s: &mut Suite) -> Result<()> {
    let want = format!("v{}", pinned_version(s)?);
    let out = s.kubectl.ok(&["version", "-o", "json"], None).await?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| format!("kubectl version: {e}"))?;
    let client = v["clientVersion"]["gitVersion"].as_str().unwrap_or("");
    let server = v["serverVersion"]["gitVersion"].as_str().unwrap_or("");
    ensure!(client == want && server == want, "kubectl {client}, kube-apiserver {server}, go.mod pins {want}");
    s.measured.insert("kubernetes_version".into(), want.into());
    Ok(())
}

fn list(items: &[String]) -> Result<String> {
    if items.is_empty() {
        return Err("an empty list cannot be written".into());
    }
    let words: Vec<&str> = items.iter().map(|s| if s.is_empty() { "core" } else { s.as_str() }).collect();
    if words.iter().any(|w| w.contains(',') || w.contains(char::is_whitespace)) {
        return Err(format!("a value with a comma or a space: {words:?}"));
    }
    Ok(words.join(","))
}

fn write_rules(out: &mut String, role: &str, rules: &[PolicyRule]) -> Result<()> {
    for r in rules {
        let resources = r.resources.clone().unwrap_or_default();
        if resources.is_empty() {
            continue; // non-resource URLs grant no collection
        }
        let groups = r.api_groups.clone().unwrap_or_default();
        let names = r.resource_names.clone().unwrap_or_default();
        let line = format!(
            "  allow {} {} {}",
            list(&groups).map_err(|e| format!("{role}: {e}"))?,
            list(&resources).map_err(|e| format!("{role}: {e}"))?,
            list(&r.verbs).map_err(|e| format!("{role}: {e}"))?
        );
        out.push_str(&line);
        if !names.is_empty() {
            out.push(' ');
            out.push_str(&list(&names).map_err(|e| format!("{role}: {e}"))?);
        }
        out.push('\n');
    }
    Ok(())
}

fn write_labels(out: &mut String, labels: &Option<std::collections::BTreeMap<String, String>>) {
    for (k, v) in labels.iter().flatten() {
        let _ = writeln!(out, "  label {k}={v}");
    }
}

/// The subjects of a binding that reach ServiceAccounts, in the file's form.
fn service_account_subjects(binding_ns: Option<&str>, subjects: &[Subject]) -> Vec<String> {
    let mut out = Vec::new();
    for s in subjects {
        match s.kind.as_str() {
            "ServiceAccount" => {
                let ns = s.namespace.as_deref().filter(|n| !n.is_empty()).or(binding_ns).unwrap_or("");
                out.push(format!("sa:{ns}/{}", s.name));
            }
            "User" => {
                if let Some((ns, name)) = s.name.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':'))
                {
                    out.push(format!("sa:{ns}/{name}"));
                }
            }
            "Group"
                if s.name == "system:serviceaccounts"
                    || s.name == "system:authenticated"
                    || s.name.starts_with("system:serviceaccounts:") =>
            {
                out.push(format!("group:{}", s.name));
            }
            _ => {}
        }
    }
    out
}

/// bootstrap.txt as the running server's bootstrap policy says it.
pub async fn render(s: &Suite) -> Result<String> {
    let version = pinned_version(s)?;
    let lp = ListParams::default().labels(BOOTSTRAP_LABEL);
    let e = |what: &'static str| move |e: kube::Error| format!("listing bootstrap {what}: {e}");
    let mut cluster_roles = Api::<ClusterRole>::all(s.admin.clone()).list(&lp).await.map_err(e("ClusterRoles"))?.items;
    let mut roles = Api::<Role>::all(s.admin.clone()).list(&lp).await.map_err(e("Roles"))?.items;
    let mut crbs =
        Api::<ClusterRoleBinding>::all(s.admin.clone()).list(&lp).await.map_err(e("ClusterRoleBindings"))?.items;
    let mut rbs = Api::<RoleBinding>::all(s.admin.clone()).list(&lp).await.map_err(e("RoleBindings"))?.items;
    let name = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        (m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default())
    };
    // Aggregating roles (admin, edit, view) first, as policy.go lists them:
    // the engine's messages name aggregation chains in this order.
    cluster_roles.sort_by_key(|r| (r.aggregation_rule.is_none(), name(&r.metadata)));
    roles.sort_by_key(|r| name(&r.metadata));
    crbs.sort_by_key(|r| name(&r.metadata));
    rbs.sort_by_key(|r| name(&r.metadata));

    let mut out = format!(
        "# Built-in RBAC of Kubernetes {version}: the bootstrap ClusterRoles, the namespaced
# bootstrap Roles, and the bootstrap bindings whose subjects are ServiceAccounts
# or groups that ServiceAccounts belong to.
#
# Generated by `e2e/run --regenerate-bootstrap` from what kube-apiserver v{version}
# creates at start (the objects labelled {BOOTSTRAP_LABEL}; kubernetes/kubernetes
# plugin/pkg/auth/authorizer/rbac/bootstrappolicy). Do not edit by hand; the
# end-to-end suite fails when this file and the server differ.
# Only resource rules are kept: non-resource URL rules grant no collection. An
# aggregated role is written with its selectors, not the rules the aggregation
# controller filled in: the engine aggregates.
#
# Format, one statement a line:
#   role NAME                      a ClusterRole
#   role NAMESPACE/NAME            a Role
#     label KEY=VALUE              a label of the role (aggregation input)
#     aggregate KEY=VALUE          aggregationRule selector (matchLabels)
#     allow GROUPS RESOURCES VERBS [NAMES]
#                                  a rule; lists are comma-separated, `core` is the \"\" group
#   bind ROLE SUBJECT[,SUBJECT]    a ClusterRoleBinding named like its ClusterRole
#   bind NAMESPACE/ROLE SUBJECT[,SUBJECT]
#                                  a RoleBinding named like the Role of its namespace
#                                  SUBJECT is group:NAME or sa:NS/NAME
"
    );
    let (controllers, others): (Vec<_>, Vec<_>) =
        cluster_roles.iter().partition(|r| r.metadata.name.as_deref().unwrap_or("").starts_with("system:controller:"));
    for (title, group) in [
        ("\n# ClusterRoles.\n", others),
        ("\n# Controller ClusterRoles, each bound to the kube-system ServiceAccount of its name.\n", controllers),
    ] {
        out.push_str(title);
        for r in group {
            let n = r.metadata.name.clone().unwrap_or_default();
            let _ = writeln!(out, "role {n}");
            write_labels(&mut out, &r.metadata.labels);
            if let Some(agg) = &r.aggregation_rule {
                for sel in agg.cluster_role_selectors.iter().flatten() {
                    if sel.match_expressions.as_ref().is_some_and(|e| !e.is_empty()) {
                        return Err(format!("{n}: an aggregation selector with matchExpressions cannot be written"));
                    }
                    let labels = sel.match_labels.clone().unwrap_or_default();
                    if labels.len() != 1 {
                        return Err(format!(
                            "{n}: an aggregation selector of {} labels cannot be written",
                            labels.len()
                        ));
                    }
                    for (k, v) in labels {
                        let _ = writeln!(out, "  aggregate {k}={v}");
                    }
                }
            } else {
                write_rules(&mut out, &n, r.rules.as_deref().unwrap_or_default())?;
            }
        }
    }
    out.push_str("\n# Namespaced Roles.\n");
    for r in &roles {
        let (ns, n) = name(&r.metadata);
        let _ = writeln!(out, "role {ns}/{n}");
        write_labels(&mut out, &r.metadata.labels);
        write_rules(&mut out, &format!("{ns}/{n}"), r.rules.as_deref().unwrap_or_default())?;
    }
    out.push_str("\n# Bindings that reach ServiceAccounts.\n");
    for b in &crbs {
        let subjects = service_account_subjects(None, b.subjects.as_deref().unwrap_or_default());
        if subjects.is_empty() {
            continue;
        }
        let n = b.metadata.name.clone().unwrap_or_default();
        ensure!(
            b.role_ref.kind == "ClusterRole" && b.role_ref.name == n,
            "ClusterRoleBinding {n} binds {} {}: the file's `bind` cannot say it",
            b.role_ref.kind,
            b.role_ref.name
        );
        let _ = writeln!(out, "bind {n} {}", subjects.join(","));
    }
    for b in &rbs {
        let (ns, n) = name(&b.metadata);
        let subjects = service_account_subjects(Some(&ns), b.subjects.as_deref().unwrap_or_default());
        if subjects.is_empty() {
            continue;
        }
        ensure!(
            b.role_ref.kind == "Role" && b.role_ref.name == n,
            "RoleBinding {ns}/{n} binds {} {}: the file's `bind` cannot say it",
            b.role_ref.kind,
            b.role_ref.name
        );
        let _ = writeln!(out, "bind {ns}/{n} {}", subjects.join(","));
    }
    Ok(out)
}

fn bootstrap_path(s: &Suite) -> PathBuf {
    s.args.repo.join("rules/src/rbac/bootstrap.txt")
}

pub async fn regenerate(s: &mut Suite) -> Result<PathBuf> {
    let text = render(s).await?;
    let path = bootstrap_path(s);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

pub async fn bootstrap_policy_matches(s: &mut Suite) -> Result<()> {
    let want = render(s).await?;
    let path = bootstrap_path(s);
    let have = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if want == have {
        return Ok(());
    }
    let theirs: std::collections::BTreeSet<&str> = want.lines().filter(|l| !l.starts_with('#')).collect();
    let ours: std::collections::BTreeSet<&str> = have.lines().filter(|l| !l.starts_with('#')).collect();
    let missing: Vec<&&str> = theirs.difference(&ours).take(20).collect();
    let extra: Vec<&&str> = ours.difference(&theirs).take(20).collect();
    let generated = s.work("bootstrap.txt");
    let _ = std::fs::write(&generated, &want);
    Err(format!(
        "{} differs from the server's bootstrap policy (regenerate: e2e/run --regenerate-bootstrap; the server's is in {}).\n\
         lines only the server has (first 20): {missing:#?}\nlines only the file has (first 20): {extra:#?}",
        path.display(),
        generated.display()
    ))
}
