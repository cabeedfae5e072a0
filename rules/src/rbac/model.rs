//! RBAC objects as the authorizer reads them.

use crate::source::Location;

/// One rule of a Role or ClusterRole.
#[derive(Clone, Debug)]
pub struct PolicyRule {
    pub api_groups: Vec<Box<str>>,
    pub resources: Vec<Box<str>>,
    pub verbs: Vec<Box<str>>,
    pub resource_names: Vec<Box<str>>,
    /// Where the rule is written; `None` for built-in roles.
    pub origin: Option<RuleOrigin>,
}

#[derive(Clone, Copy, Debug)]
pub struct RuleOrigin {
    /// The rule's mapping in `rules:`.
    pub rule: Location,
    /// Its `verbs` value (where a finding about what it allows points).
    pub verbs: Location,
    /// Its `resources` value.
    pub resources: Location,
}

impl PolicyRule {
    /// `VerbMatches` of the RBAC authorizer.
    pub fn allows_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| &**v == "*" || &**v == verb)
    }

    /// `APIGroupMatches`.
    pub fn allows_group(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| &**g == "*" || &**g == group)
    }

    /// `ResourceMatches`: `*`, an exact `resource` or `resource/subresource`,
    /// or `*/subresource`.
    pub fn allows_resource(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            let r = &**r;
            if r == "*" {
                return true;
            }
            if subresource.is_empty() {
                return r == resource;
            }
            if r.len() == resource.len() + 1 + subresource.len()
                && r.starts_with(resource)
                && r.as_bytes()[resource.len()] == b'/'
                && r.ends_with(subresource)
            {
                return true;
            }
            r.len() == subresource.len() + 2 && r.starts_with("*/") && r.ends_with(subresource)
        })
    }

    /// True when the rule applies to requests that name no object: a rule with
    /// `resourceNames` never authorizes a collection LIST or WATCH.
    pub fn applies_to_collections(&self) -> bool {
        self.resource_names.is_empty()
    }

    /// Whether the rule authorizes `verb` on the whole collection `group/resource`.
    pub fn allows_collection(&self, verb: &str, group: &str, resource: &str) -> bool {
        self.applies_to_collections()
            && self.allows_verb(verb)
            && self.allows_group(group)
            && self.allows_resource(resource, "")
    }

    pub fn has_wildcard(&self) -> bool {
        self.verbs.iter().any(|v| &**v == "*") || self.resources.iter().any(|r| &**r == "*")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleKind {
    Role,
    ClusterRole,
}

impl RoleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::Role => "Role",
            RoleKind::ClusterRole => "ClusterRole",
        }
    }
}

/// A label selector of an aggregation rule.
#[derive(Clone, Debug, Default)]
pub struct LabelSelector {
    pub match_labels: Vec<(Box<str>, Box<str>)>,
    pub match_expressions: Vec<LabelExpression>,
}

#[derive(Clone, Debug)]
pub struct LabelExpression {
    pub key: Box<str>,
    pub operator: Box<str>,
    pub values: Vec<Box<str>>,
}

impl LabelSelector {
    /// `metav1.LabelSelectorAsSelector` semantics; an empty selector matches everything.
    pub fn matches(&self, labels: &[(Box<str>, Box<str>)]) -> bool {
        let get = |k: &str| labels.iter().find(|(lk, _)| &**lk == k).map(|(_, v)| &**v);
        self.match_labels.iter().all(|(k, v)| get(k) == Some(&**v))
            && self.match_expressions.iter().all(|e| {
                let have = get(&e.key);
                match &*e.operator {
                    "In" => have.is_some_and(|h| e.values.iter().any(|v| &**v == h)),
                    "NotIn" => have.is_none_or(|h| e.values.iter().all(|v| &**v != h)),
                    "Exists" => have.is_some(),
                    "DoesNotExist" => have.is_none(),
                    _ => false,
                }
            })
    }
}

/// A Role or ClusterRole, from the input or built in.
#[derive(Clone, Debug)]
pub struct RoleDef {
    pub kind: RoleKind,
    pub namespace: Option<Box<str>>,
    pub name: Box<str>,
    pub labels: Vec<(Box<str>, Box<str>)>,
    pub rules: Vec<PolicyRule>,
    /// Selectors of `aggregationRule.clusterRoleSelectors`.
    pub aggregation: Option<Vec<LabelSelector>>,
    /// `metadata.name` in the input; `None` for built-in roles.
    pub location: Option<Location>,
}

impl RoleDef {
    pub fn builtin(&self) -> bool {
        self.location.is_none()
    }

    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind.as_str(), ns, self.name),
            None => format!("{} {}", self.kind.as_str(), self.name),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectKind {
    ServiceAccount { namespace: Box<str>, name: Box<str> },
    User(Box<str>),
    Group(Box<str>),
}

#[derive(Clone, Debug)]
pub struct Subject {
    pub kind: SubjectKind,
    /// The subject's entry in `subjects:`; `None` for built-in bindings.
    pub location: Option<Location>,
}

/// A RoleBinding or ClusterRoleBinding.
#[derive(Clone, Debug)]
pub struct BindingDef {
    pub kind: RoleKind,
    /// Namespace of a RoleBinding; `None` for a ClusterRoleBinding.
    pub namespace: Option<Box<str>>,
    pub name: Box<str>,
    pub role_kind: RoleKind,
    pub role_name: Box<str>,
    /// `roleRef` in the input.
    pub role_ref: Option<Location>,
    pub subjects: Vec<Subject>,
    /// `metadata.name` in the input; `None` for built-in bindings.
    pub location: Option<Location>,
}

impl BindingDef {
    pub fn kind_str(&self) -> &'static str {
        match self.kind {
            RoleKind::Role => "RoleBinding",
            RoleKind::ClusterRole => "ClusterRoleBinding",
        }
    }

    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind_str(), ns, self.name),
            None => format!("{} {}", self.kind_str(), self.name),
        }
    }
}
