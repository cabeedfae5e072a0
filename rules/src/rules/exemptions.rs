//! The findings about exemptions themselves: three rules, reported while
//! exemptions are applied.

use super::RuleMeta;
use crate::diagnostic::{Category, Diagnostic, Severity};
use crate::source::Location;

pub static EXPIRED: RuleMeta = RuleMeta {
    id: "AL005",
    name: "expired-exemption",
    category: Category::Exemption,
    severity: Severity::Warning,
    summary: "A configuration exemption whose expiry date has passed",
    detects: "An entry of `exemptions:` in the configuration file whose `expires` date is before today.",
    why: "An expired exemption no longer applies: the findings it hid are reported again. Saying so \
at the exemption, with its reason, lets the owner renew it deliberately or fix the workload.",
    example: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: agent\n",
    example_config: Some(
        "exemptions:\n- match: {kind: DaemonSet, name: \"kube-proxy\"}\n  rules: [AL101]\n  reason: kube-proxy watches every Service by design\n  expires: 2024-01-31\n",
    ),
    fix: "Fix what the exemption covered, or renew the exemption with a new date and a current reason.",
    check: None,
};

pub static INVALID: RuleMeta = RuleMeta {
    id: "AL006",
    name: "ineffective-exemption",
    category: Category::Exemption,
    severity: Severity::Warning,
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
    check: None,
};

pub static UNUSED: RuleMeta = RuleMeta {
    id: "AL007",
    name: "unused-exemption",
    category: Category::Exemption,
    severity: Severity::Info,
    summary: "A configuration exemption that exempted nothing (reported on request)",
    detects: "With `--report-unused-exemptions`, an entry of `exemptions:` that matched no finding.",
    why: "Exemptions outlive the problems they were written for; unused ones hide the next problem \
of the same workload without review.",
    example: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: agent\n",
    example_config: Some(
        "exemptions:\n- match: {kind: DaemonSet, namespace: logging}\n  rules: [\"*\"]\n  reason: the logging team owns these agents\n",
    ),
    fix: "Remove the exemption.",
    check: None,
};

pub fn expired(location: Location, reason: &str, date: &str) -> Diagnostic {
    Diagnostic::new(
        &EXPIRED,
        location,
        format!("this exemption expired on {date} and no longer applies (its reason: {reason})"),
    )
    .help(EXPIRED.fix)
}

pub fn invalid(location: Location, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&INVALID, location, message).help(INVALID.fix)
}

pub fn unused(location: Location, reason: &str) -> Diagnostic {
    Diagnostic::new(&UNUSED, location, format!("this exemption matched no finding (its reason: {reason})"))
        .help(UNUSED.fix)
}
