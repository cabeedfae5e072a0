//! Raised while exemptions are applied (`crate::exempt`), not by an analysis check.

use crate::diagnostic::{Category, Diagnostic, RuleInfo, Severity, Stage};
use crate::source::Location;

pub static RULE: RuleInfo = RuleInfo {
    id: "AL005",
    name: "expired-exemption",
    category: Category::Exemption,
    severity: Severity::Warning,
    stage: Stage::Exemptions,
    summary: "A configuration exemption whose expiry date has passed",
    detects: "An entry of `exemptions:` in the configuration file whose `expires` date is before today.",
    why: "An expired exemption no longer applies: the findings it hid are reported again. Saying so \
at the exemption, with its reason, lets the owner renew it deliberately or fix the workload.",
    example: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: agent\n",
    example_config: Some(
        "exemptions:\n- match: {kind: DaemonSet, name: \"kube-proxy\"}\n  rules: [AL101]\n  reason: kube-proxy watches every Service by design\n  expires: 2024-01-31\n",
    ),
    fix: "Fix what the exemption covered, or renew the exemption with a new date and a current reason.",
};

pub fn diagnostic(location: Location, reason: &str, date: &str) -> Diagnostic {
    Diagnostic::new(
        &RULE,
        location,
        format!("this exemption expired on {date} and no longer applies (its reason: {reason})"),
    )
    .help(RULE.fix)
}
