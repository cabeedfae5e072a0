//! Effective RBAC: who may do what, exactly as the API server's RBAC
//! authorizer decides it (`k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac`).
//!
//! - A RoleBinding grants in its own namespace, even when its roleRef is a
//!   ClusterRole; a ClusterRoleBinding grants everywhere.
//! - Subjects reach a ServiceAccount as `ServiceAccount` (namespace defaulting
//!   to a RoleBinding's own), as the user `system:serviceaccount:<ns>:<name>`,
//!   and through the groups `system:serviceaccounts`,
//!   `system:serviceaccounts:<ns>` and `system:authenticated`.
//! - ClusterRoles with an `aggregationRule` hold the rules of every ClusterRole
//!   whose labels match, transitively (the aggregation controller's result).
//! - Built-in bootstrap roles and bindings are known without being in the input.
//! - A roleRef that names no known role is unresolved: it grants nothing here,
//!   and the engine says so instead of guessing.

mod bootstrap;
pub mod model;

use crate::diagnostic::Diagnostic;
use crate::fields::{FieldResult, Fields};
use crate::input;
use crate::object::Object;
pub use model::*;
use std::borrow::Cow;
use std::collections::HashMap;

/// Where a grant applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every namespace, and cluster-scoped collections.
    Cluster,
    /// One namespace.
    Namespace(&'a str),
}

/// One path by which a subject holds a role.
#[derive(Clone, Copy, Debug)]
pub struct Grant<'a> {
    pub binding: &'a BindingDef,
    pub subject: &'a Subject,
    /// `None` when the roleRef is unresolved.
    pub role: Option<RoleId>,
    pub scope: Scope<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RoleId(pub usize);

#[derive(Clone, Copy, Debug)]
struct SubjectRef {
    /// Index in the input's bindings, or in the built-in ones.
    binding: usize,
    builtin: bool,
    subject: usize,
}

/// Namespace (empty for ClusterRoles) → name → index in the roles.
type RoleIndex = HashMap<Box<str>, HashMap<Box<str>, usize>>;

/// Bindings by the ServiceAccount (`ns/name`) and by the group they name.
#[derive(Debug, Default)]
struct SubjectIndex {
    by_service_account: HashMap<String, Vec<SubjectRef>>,
    by_group: HashMap<Box<str>, Vec<SubjectRef>>,
}

impl SubjectIndex {
    fn add(&mut self, bindings: &[impl std::ops::Deref<Target = BindingDef>], builtin: bool) {
        for (bi, b) in bindings.iter().enumerate() {
            for (si, s) in b.subjects.iter().enumerate() {
                let r = SubjectRef { binding: bi, builtin, subject: si };
                match Principal::of(&s.kind) {
                    Some(Principal::ServiceAccount { namespace, name }) => {
                        self.by_service_account.entry(sa_key(&namespace, &name)).or_default().push(r);
                    }
                    Some(Principal::Group(g)) => self.by_group.entry(g).or_default().push(r),
                    None => {}
                }
            }
        }
    }

    /// Subjects that reach the ServiceAccount `namespace/name`.
    fn reaching(&self, namespace: &str, name: &str, out: &mut Vec<SubjectRef>) {
        if let Some(v) = self.by_service_account.get(&sa_key(namespace, name)) {
            out.extend(v);
        }
        for group in ALL_SERVICE_ACCOUNT_GROUPS {
            if let Some(v) = self.by_group.get(group) {
                out.extend(v);
            }
        }
        if let Some(v) = self.by_group.get(namespace_group(namespace).as_str()) {
            out.extend(v);
        }
    }
}

/// The bootstrap policy, indexed once for every analysis.
struct BuiltinIndex {
    roles: RoleIndex,
    subjects: SubjectIndex,
}

fn builtin_index() -> &'static BuiltinIndex {
    static INDEX: std::sync::OnceLock<BuiltinIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let (roles, bindings) = bootstrap::builtin_ref();
        let mut index = BuiltinIndex { roles: RoleIndex::new(), subjects: SubjectIndex::default() };
        for (i, r) in roles.iter().enumerate() {
            index.roles.entry(r.namespace.as_deref().unwrap_or("").into()).or_default().insert(r.name.clone(), i);
        }
        let refs: Vec<&BindingDef> = bindings.iter().collect();
        index.subjects.add(&refs, true);
        index
    })
}

/// The RBAC objects of an input plus the built-in ones, indexed for queries.
/// The built-in policy is shared, not copied: an analysis pays only for the
/// input's own RBAC objects, and aggregation is resolved for the roles asked about.
#[derive(Debug, Default)]
pub struct Rbac {
    /// The built-in roles first (borrowed; replaced in place when the input
    /// redefines one), then the input's.
    roles: Vec<Cow<'static, RoleDef>>,
    /// The input's roles (the built-in ones are in [`builtin_index`]).
    role_index: RoleIndex,
    /// The input's bindings (the built-in ones are in `bootstrap`).
    bindings: Vec<BindingDef>,
    subjects: SubjectIndex,
    /// Per role: its rules after aggregation, as (role, rule index), when first asked.
    effective: Vec<std::sync::OnceLock<Vec<(usize, usize)>>>,
}

fn sa_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

const SA_USER_PREFIX: &str = "system:serviceaccount:";

/// Groups every ServiceAccount belongs to (besides `system:serviceaccounts:<ns>`).
pub const ALL_SERVICE_ACCOUNT_GROUPS: [&str; 2] = ["system:serviceaccounts", "system:authenticated"];

/// The group of every ServiceAccount of a namespace.
pub fn namespace_group(namespace: &str) -> String {
    format!("system:serviceaccounts:{namespace}")
}

/// Who a subject names, as far as ServiceAccounts are concerned: one
/// ServiceAccount (as `ServiceAccount` or as its user name) or a group.
/// Other users name no ServiceAccount.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    ServiceAccount { namespace: Box<str>, name: Box<str> },
    Group(Box<str>),
}

impl Principal {
    pub fn of(subject: &SubjectKind) -> Option<Principal> {
        match subject {
            SubjectKind::ServiceAccount { namespace, name } => {
                Some(Principal::ServiceAccount { namespace: namespace.clone(), name: name.clone() })
            }
            SubjectKind::User(user) => user
                .strip_prefix(SA_USER_PREFIX)
                .and_then(|r| r.split_once(':'))
                .map(|(ns, name)| Principal::ServiceAccount { namespace: ns.into(), name: name.into() }),
            SubjectKind::Group(g) => Some(Principal::Group(g.clone())),
        }
    }
}

/// A built-in role by namespace and name.
pub fn builtin_role(namespace: Option<&str>, name: &str) -> Option<&'static RoleDef> {
    bootstrap::builtin_ref().0.iter().find(|r| r.namespace.as_deref() == namespace && &*r.name == name)
}

/// Built-in bindings.
pub fn builtin_bindings() -> &'static [BindingDef] {
    &bootstrap::builtin_ref().1
}

/// Built-in ClusterRoles that aggregate others (`admin`, `edit`, `view`, ...).
pub fn builtin_aggregating_roles() -> impl Iterator<Item = &'static RoleDef> {
    bootstrap::builtin_ref().0.iter().filter(|r| r.aggregation.is_some())
}

impl Rbac {
    /// Indexes the RBAC objects among `objects`. Objects with wrong field
    /// types are reported and left out.
    pub fn build(objects: &[Object], diagnostics: &mut Vec<Diagnostic>) -> Rbac {
        let mut rbac =
            Rbac { roles: bootstrap::builtin_ref().0.iter().map(Cow::Borrowed).collect(), ..Rbac::default() };
        for obj in objects {
            let parsed = match &*obj.kind {
                "Role" | "ClusterRole" => parse_role(obj).map(|r| rbac.add_role(r)),
                "RoleBinding" | "ClusterRoleBinding" => parse_binding(obj).map(|b| rbac.bindings.push(b)),
                _ => Ok(()),
            };
            if let Err(e) = parsed {
                diagnostics.push(input::invalid(obj.loc(e.span), e.message));
            }
        }
        let mut subjects = SubjectIndex::default();
        subjects.add(&rbac.bindings.iter().collect::<Vec<_>>(), false);
        rbac.subjects = subjects;
        rbac.effective = std::iter::repeat_with(std::sync::OnceLock::new).take(rbac.roles.len()).collect();
        rbac
    }

    /// Adds an input role; a later definition (or one of a built-in role's
    /// name) replaces the earlier.
    fn add_role(&mut self, role: RoleDef) {
        let ns: Box<str> = role.namespace.as_deref().unwrap_or("").into();
        let existing = self
            .role_index
            .get(&ns)
            .and_then(|m| m.get(&role.name))
            .or_else(|| builtin_index().roles.get(&ns).and_then(|m| m.get(&role.name)))
            .copied();
        let i = match existing {
            Some(i) => {
                self.roles[i] = Cow::Owned(role);
                i
            }
            None => {
                self.roles.push(Cow::Owned(role));
                self.roles.len() - 1
            }
        };
        let name = self.roles[i].name.clone();
        self.role_index.entry(ns).or_default().insert(name, i);
    }

    /// A role's rules after aggregation (the aggregation controller's
    /// result, transitively), as (role, rule index).
    fn aggregate(&self, i: usize) -> Vec<(usize, usize)> {
        let n = self.roles.len();
        let mut out = Vec::new();
        let mut seen = vec![false; n];
        let mut stack = vec![i];
        seen[i] = true;
        while let Some(j) = stack.pop() {
            let role = &self.roles[j];
            out.extend((0..role.rules.len()).map(|k| (j, k)));
            let Some(selectors) = &role.aggregation else {
                continue;
            };
            for (k, other) in self.roles.iter().enumerate() {
                if !seen[k] && other.kind == RoleKind::ClusterRole && selectors.iter().any(|s| s.matches(&other.labels))
                {
                    seen[k] = true;
                    stack.push(k);
                }
            }
        }
        out
    }

    fn binding(&self, r: SubjectRef) -> &BindingDef {
        if r.builtin { &bootstrap::builtin_ref().1[r.binding] } else { &self.bindings[r.binding] }
    }

    pub fn role(&self, id: RoleId) -> &RoleDef {
        &self.roles[id.0]
    }

    pub fn roles(&self) -> impl Iterator<Item = (RoleId, &RoleDef)> {
        self.roles.iter().enumerate().map(|(i, r)| (RoleId(i), &**r))
    }

    /// The input's bindings, then the built-in ones.
    pub fn bindings(&self) -> impl Iterator<Item = &BindingDef> {
        self.bindings.iter().chain(bootstrap::builtin_ref().1.iter())
    }

    /// The role a binding refers to, if it is known.
    pub fn resolve(&self, binding: &BindingDef) -> Option<RoleId> {
        let key = match binding.role_kind {
            RoleKind::Role => binding.namespace.as_deref().unwrap_or(""),
            RoleKind::ClusterRole => "",
        };
        let lookup = |index: &RoleIndex| index.get(key).and_then(|by_name| by_name.get(&binding.role_name)).copied();
        lookup(&self.role_index).or_else(|| lookup(&builtin_index().roles)).map(RoleId)
    }

    /// Rules of a role after aggregation, with the role each rule comes from.
    pub fn rules(&self, id: RoleId) -> impl Iterator<Item = (&RoleDef, &PolicyRule)> {
        self.effective[id.0]
            .get_or_init(|| self.aggregate(id.0))
            .iter()
            .map(|&(r, k)| (&*self.roles[r], &self.roles[r].rules[k]))
    }

    /// Every binding through which the ServiceAccount `namespace/name` holds a role.
    pub fn grants_of_service_account(&self, namespace: &str, name: &str) -> Vec<Grant<'_>> {
        let mut refs: Vec<SubjectRef> = Vec::new();
        self.subjects.reaching(namespace, name, &mut refs);
        builtin_index().subjects.reaching(namespace, name, &mut refs);
        refs.iter()
            .filter_map(|&r| {
                let binding = self.binding(r);
                let subject = &binding.subjects[r.subject];
                // A ServiceAccount subject without a namespace means the binding's own;
                // in a ClusterRoleBinding it matches nothing.
                if let SubjectKind::ServiceAccount { namespace: sns, .. } = &subject.kind
                    && sns.is_empty()
                {
                    return None;
                }
                let scope = match &binding.namespace {
                    None => Scope::Cluster,
                    Some(ns) => Scope::Namespace(ns),
                };
                Some(Grant { binding, subject, role: self.resolve(binding), scope })
            })
            .collect()
    }
}

fn parse_labels(f: &Fields<'_>) -> FieldResult<Vec<(Box<str>, Box<str>)>> {
    Ok(match f.map("metadata")? {
        Some(m) => m.fields().str_map("labels")?.into_iter().map(|(k, v)| (k.value.into(), v.value.into())).collect(),
        None => Vec::new(),
    })
}

fn boxed(v: Vec<crate::fields::Spanned<&str>>) -> Vec<Box<str>> {
    v.into_iter().map(|s| s.value.into()).collect()
}

pub(crate) fn parse_role(obj: &Object) -> FieldResult<RoleDef> {
    let f = Fields::new(&obj.node, "")?;
    let mut rules = Vec::new();
    for rule in f.maps("rules")? {
        let rf = rule.fields();
        let loc = |key: &str| obj.loc(rule.node.get(key).map_or(rule.node.span, |n| n.span));
        rules.push(PolicyRule {
            api_groups: boxed(rf.strs("apiGroups")?),
            resources: boxed(rf.strs("resources")?),
            verbs: boxed(rf.strs("verbs")?),
            resource_names: boxed(rf.strs("resourceNames")?),
            origin: Some(RuleOrigin {
                rule: obj.loc(rule.node.span),
                verbs: loc("verbs"),
                resources: loc("resources"),
            }),
        });
    }
    let kind = if &*obj.kind == "Role" { RoleKind::Role } else { RoleKind::ClusterRole };
    let aggregation = match (kind, f.map("aggregationRule")?) {
        (RoleKind::ClusterRole, Some(agg)) => {
            let mut selectors = Vec::new();
            for sel in agg.fields().maps("clusterRoleSelectors")? {
                let sf = sel.fields();
                let mut selector = LabelSelector {
                    match_labels: sf
                        .str_map("matchLabels")?
                        .into_iter()
                        .map(|(k, v)| (k.value.into(), v.value.into()))
                        .collect(),
                    match_expressions: Vec::new(),
                };
                for e in sf.maps("matchExpressions")? {
                    let ef = e.fields();
                    selector.match_expressions.push(LabelExpression {
                        key: ef.str("key")?.map(|s| s.value).unwrap_or_default().into(),
                        operator: ef.str("operator")?.map(|s| s.value).unwrap_or_default().into(),
                        values: boxed(ef.strs("values")?),
                    });
                }
                selectors.push(selector);
            }
            Some(selectors)
        }
        _ => None,
    };
    Ok(RoleDef {
        kind,
        namespace: obj.namespace.as_deref().map(Into::into),
        name: obj.name.as_str().into(),
        labels: parse_labels(&f)?,
        rules,
        aggregation,
        location: Some(obj.loc(obj.name_span)),
    })
}

pub(crate) fn parse_binding(obj: &Object) -> FieldResult<BindingDef> {
    let f = Fields::new(&obj.node, "")?;
    let kind = if &*obj.kind == "RoleBinding" { RoleKind::Role } else { RoleKind::ClusterRole };
    let role_ref = f
        .map("roleRef")?
        .ok_or_else(|| crate::source::SpanError::new(obj.name_span, format!("{} has no `roleRef`", obj.display())))?;
    let rf = role_ref.fields();
    let role_kind = match rf.str("kind")?.map(|s| s.value) {
        Some("Role") if kind == RoleKind::Role => RoleKind::Role,
        Some("ClusterRole") => RoleKind::ClusterRole,
        other => {
            return Err(crate::source::SpanError::new(
                role_ref.node.get("kind").map_or(role_ref.node.span, |n| n.span),
                format!(
                    "`roleRef.kind` must be {}, not {:?}",
                    if kind == RoleKind::Role { "Role or ClusterRole" } else { "ClusterRole" },
                    other.unwrap_or("")
                ),
            ));
        }
    };
    let role_name = rf.str("name")?.map(|s| s.value).unwrap_or_default();
    let mut subjects = Vec::new();
    for s in f.maps("subjects")? {
        let sf = s.fields();
        let name = sf.str("name")?.map(|s| s.value).unwrap_or_default();
        let kind = match sf.str("kind")?.map(|s| s.value).unwrap_or_default() {
            "ServiceAccount" => {
                let ns = match sf.str("namespace")? {
                    Some(ns) if !ns.value.is_empty() => ns.value,
                    _ => obj.namespace.as_deref().filter(|_| kind == RoleKind::Role).unwrap_or(""),
                };
                SubjectKind::ServiceAccount { namespace: ns.into(), name: name.into() }
            }
            "User" => SubjectKind::User(name.into()),
            "Group" => SubjectKind::Group(name.into()),
            _ => continue,
        };
        subjects.push(Subject { kind, location: Some(obj.loc(s.node.span)) });
    }
    Ok(BindingDef {
        kind,
        namespace: if kind == RoleKind::Role { obj.namespace.as_deref().map(Into::into) } else { None },
        name: obj.name.as_str().into(),
        role_kind,
        role_name: role_name.into(),
        role_ref: Some(obj.loc(role_ref.node.span)),
        subjects,
        location: Some(obj.loc(obj.name_span)),
    })
}

#[cfg(test)]
mod tests;
