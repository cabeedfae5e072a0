//! Findings: what the engine says, where, about which workload, and how to fix it.

use crate::source::Location;
use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of findings. The first four are the categories of the output
/// contract; the others are documented next to them in `docs/output-contract.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    FanoutClusterWatch,
    FanoutNodeWatch,
    FanoutCapabilityOnly,
    UnboundedClient,
    RbacHygiene,
    UnresolvedReference,
    AgentConfig,
    RolloutHerd,
    ApfCoverage,
    LeaderElection,
    ListSemantics,
    KubeletAuth,
    Exemption,
    Input,
}

impl Category {
    pub const ALL: [Category; 14] = [
        Category::FanoutClusterWatch,
        Category::FanoutNodeWatch,
        Category::FanoutCapabilityOnly,
        Category::UnboundedClient,
        Category::RbacHygiene,
        Category::UnresolvedReference,
        Category::AgentConfig,
        Category::RolloutHerd,
        Category::ApfCoverage,
        Category::LeaderElection,
        Category::ListSemantics,
        Category::KubeletAuth,
        Category::Exemption,
        Category::Input,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::FanoutClusterWatch => "fanout-cluster-watch",
            Category::FanoutNodeWatch => "fanout-node-watch",
            Category::FanoutCapabilityOnly => "fanout-capability-only",
            Category::UnboundedClient => "unbounded-client",
            Category::RbacHygiene => "rbac-hygiene",
            Category::UnresolvedReference => "unresolved-reference",
            Category::AgentConfig => "agent-config",
            Category::RolloutHerd => "rollout-herd",
            Category::ApfCoverage => "apf-coverage",
            Category::LeaderElection => "leader-election",
            Category::ListSemantics => "list-semantics",
            Category::KubeletAuth => "kubelet-auth",
            Category::Exemption => "exemption",
            Category::Input => "input",
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Category::FanoutClusterWatch => {
                "a per-node workload LISTs/WATCHes namespaced collections across all namespaces (or a cluster-wide collection) without scoping to its own node"
            }
            Category::FanoutNodeWatch => {
                "every copy LISTs/WATCHes Nodes or another cluster-scoped collection that grows with node count: traffic grows with N²"
            }
            Category::FanoutCapabilityOnly => {
                "a per-node workload is granted cluster-wide list/watch that its configuration does not use cluster-wide (over-grant: warning)"
            }
            Category::UnboundedClient => "client-side QPS limiting disabled or absurdly high in a per-node workload",
            Category::RbacHygiene => {
                "grants broader than any agent needs: wildcards, Secrets, bindings to every identity"
            }
            Category::UnresolvedReference => {
                "a reference the input does not resolve (a roleRef to a role that is neither in the input nor built in)"
            }
            Category::AgentConfig => {
                "an agent's configuration that cannot be found or read, so its behaviour is inferred from its grants"
            }
            Category::RolloutHerd => {
                "a fan-out agent whose rollout restarts many copies at once, each re-LISTing what it watches"
            }
            Category::ApfCoverage => {
                "API Priority and Fairness treats a fan-out agent's requests badly: no FlowSchema of its own, or kube-system's workload-high level"
            }
            Category::LeaderElection => {
                "leader election run by every copy of a per-node workload: Lease requests grow with the node count"
            }
            Category::ListSemantics => {
                "LISTs that the API server cannot serve from its watch cache on the target version"
            }
            Category::KubeletAuth => "kubelet authentication or authorization caches shortened below their defaults",
            Category::Exemption => "an exemption that expired, is ignored, or exempts nothing",
            Category::Input => {
                "input that is not a valid Kubernetes object: syntax, encoding, limits, wrong field types"
            }
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names an object: the workload a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    /// `None` for cluster-scoped objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Another place in the chain: the binding, the role rule, the config key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    pub location: Location,
    pub message: String,
}

/// A mechanical change that fixes (part of) the finding, offered by the LSP
/// as a code action: replace `location`'s span with `new_text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub location: Location,
    pub new_text: String,
}

/// A fix: what to do in words, and the edits that do it where they are mechanical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<Edit>,
}

/// Where in the pipeline a rule's findings are raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// While reading documents into objects and indexing them.
    Input,
    /// By the rule's check over the analyses (`crate::rules::CHECKS`).
    Analysis,
    /// While applying exemptions to the findings.
    Exemptions,
}

/// A rule's declaration: everything about it but its check, so that findings
/// (made in every layer) can name their rule without depending on the
/// analysis the checks read.
#[derive(Debug)]
pub struct RuleInfo {
    /// Stable id, `AL` and three digits.
    pub id: &'static str,
    /// Stable kebab-case name.
    pub name: &'static str,
    pub category: Category,
    pub severity: Severity,
    pub stage: Stage,
    /// One line.
    pub summary: &'static str,
    /// What it detects.
    pub detects: &'static str,
    /// Why it matters, with numbers.
    pub why: &'static str,
    /// A manifest that fires.
    pub example: &'static str,
    /// The configuration file the example needs, if any.
    pub example_config: Option<&'static str>,
    /// The fix.
    pub fix: &'static str,
}

impl PartialEq for RuleInfo {
    fn eq(&self, other: &RuleInfo) -> bool {
        self.id == other.id
    }
}

/// A call a finding rests on, as machine-readable output shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallRef {
    /// `pods`, `replicasets.apps`.
    pub resource: String,
    /// Of `list`, `watch`, `get`.
    pub verbs: Vec<&'static str>,
    /// `cluster`, `namespace`, `node` or `object`.
    pub scope: &'static str,
    /// `profile`, `declared`, `observed` or `inferred`.
    pub basis: &'static str,
    /// For inferred calls: `unscoped` (nothing lets the copies ask for
    /// less), `node-scopable` (they can, unverified) or `shared-identity`
    /// (the grant may be another workload's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub rule: &'static RuleInfo,
    pub severity: Severity,
    pub message: String,
    pub workload: Option<ObjectRef>,
    pub location: Location,
    pub related: Vec<Related>,
    /// The fix in words.
    pub help: Option<String>,
    /// Mechanical fixes.
    pub fixes: Vec<Fix>,
    /// The API calls the finding is about, each with its basis.
    pub calls: Vec<CallRef>,
    /// What the finding rests on: `profile`, `declared`, `observed` or
    /// `inferred`; `None` for findings about no API call.
    pub basis: Option<&'static str>,
}

impl Diagnostic {
    pub fn new(rule: &'static RuleInfo, location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            rule,
            severity: rule.severity,
            message: message.into(),
            workload: None,
            location,
            related: Vec::new(),
            help: None,
            fixes: Vec::new(),
            calls: Vec::new(),
            basis: None,
        }
    }

    pub fn workload(mut self, w: ObjectRef) -> Diagnostic {
        self.workload = Some(w);
        self
    }

    pub fn severity(mut self, s: Severity) -> Diagnostic {
        self.severity = s;
        self
    }

    pub fn related(mut self, location: Location, message: impl Into<String>) -> Diagnostic {
        self.related.push(Related { location, message: message.into() });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn fix(mut self, fix: Fix) -> Diagnostic {
        self.fixes.push(fix);
        self
    }

    pub fn category(&self) -> Category {
        self.rule.category
    }

    /// The calls the finding is about; its basis becomes `inferred` when any
    /// of them is only inferred from the grants (a suspected fan-out), else
    /// the basis of the known ones (`observed` before `declared` before
    /// `profile`).
    pub fn calls(mut self, calls: Vec<CallRef>) -> Diagnostic {
        self.basis = ["inferred", "observed", "declared", "profile"]
            .into_iter()
            .find(|b| calls.iter().any(|c| c.basis == *b))
            .or(self.basis);
        self.calls = calls;
        self
    }

    /// Says what the finding rests on when no call does (an over-grant the
    /// owner's declaration shows).
    pub fn basis(mut self, basis: &'static str) -> Diagnostic {
        self.basis = Some(basis);
        self
    }
}
