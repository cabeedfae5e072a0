//! Raised while exemptions are applied (`crate::exempt`), not by an analysis check.

use crate::diagnostic::{Category, Diagnostic, RuleInfo, Severity, Stage};
use crate::source::Location;

pub static RULE: RuleInfo = RuleInfo {
    id: "AL006",
    name: "ineffective-exemption",
    category: Category::Exemption,
    severity: Severity::Warning,
    stage: Stage::Exemptions,
    summary: "An exemption annotation that is ignored",
    detects: "`apiload.dev/exempt` without `apiload.dev/exempt-reason`, naming a rule that does not \
exist, in a namespace where the policy does not honour annotation exemptions, or on an object \
other than a workload or its pod template (a ServiceAccount, a role, a ConfigMap).",
    why: "An exemption that silently does nothing is worse than none: its author believes the \
finding is handled. Exemptions without a reason cannot be reviewed.",
    example: "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  annotations:\n    apiload.dev/exempt: AL101\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: a}]\n",
    example_config: None,
    fix: "Add `apiload.dev/exempt-reason`, name existing rules, and put the annotations on the \
workload (or its pod template); for objects you cannot edit, use a configuration exemption.",
};

pub fn diagnostic(location: Location, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&RULE, location, message).help(RULE.fix)
}
