//! Raised while exemptions are applied (`crate::exempt`), not by an analysis check.

use crate::diagnostic::{Category, Diagnostic, RuleInfo, Severity, Stage};
use crate::source::Location;

pub static RULE: RuleInfo = RuleInfo {
    id: "AL007",
    name: "unused-exemption",
    category: Category::Exemption,
    severity: Severity::Info,
    stage: Stage::Exemptions,
    summary: "A configuration exemption that exempted nothing (reported on request)",
    detects: "With `--report-unused-exemptions`, an entry of `exemptions:` that matched no finding.",
    why: "Exemptions outlive the problems they were written for; unused ones hide the next problem \
of the same workload without review.",
    example: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: agent\n",
    example_config: Some(
        "exemptions:\n- match: {kind: DaemonSet, namespace: logging}\n  rules: [\"*\"]\n  reason: the logging team owns these agents\n",
    ),
    fix: "Remove the exemption.",
};

pub fn diagnostic(location: Location, reason: &str) -> Diagnostic {
    Diagnostic::new(&RULE, location, format!("this exemption matched no finding (its reason: {reason})")).help(RULE.fix)
}
