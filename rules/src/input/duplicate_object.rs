use crate::diagnostic::{Category, Diagnostic, RuleInfo, Severity, Stage};
use crate::source::Location;

pub static RULE: RuleInfo = RuleInfo {
    id: "AL002",
    name: "duplicate-object",
    category: Category::Input,
    severity: Severity::Warning,
    stage: Stage::Input,
    summary: "The same object defined twice in one input",
    detects: "Two documents with the same kind, namespace and name.",
    why: "Applied in order, the later definition replaces the earlier one, so half of what the \
input says never reaches the cluster. apiload analyses the later one, as the cluster would \
keep it.",
    example: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: agent\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: agent\n",
    example_config: None,
    fix: "Remove one of the two definitions, or rename one.",
};

pub fn diagnostic(here: Location, first: Location, what: &str) -> Diagnostic {
    Diagnostic::new(&RULE, here, format!("{what} is defined twice; this later definition replaces the first"))
        .related(first, "first definition")
}
