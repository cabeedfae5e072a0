use crate::diagnostic::{Category, Diagnostic, RuleInfo, Severity, Stage};
use crate::source::Location;

pub static RULE: RuleInfo = RuleInfo {
    id: "AL001",
    name: "invalid-manifest",
    category: Category::Input,
    severity: Severity::Error,
    stage: Stage::Input,
    summary: "A document that is not a valid Kubernetes object",
    detects: "Documents that cannot be analysed: YAML syntax errors, bytes that are not UTF-8, \
duplicate keys, documents that are not objects (no `kind`, `apiVersion` or `metadata.name`), \
fields the engine reads that have the wrong type (`replicas: \"three\"`), and input beyond the \
loader's limits (file size, nesting depth, node count including alias expansion).",
    why: "The API server rejects such a document, so whatever it was meant to change is not \
what the cluster will run, and apiload cannot vouch for it either. Only the broken document is \
lost: the others in the same file and input are still analysed.",
    example: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: \"three\"\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n",
    example_config: None,
    fix: "Correct the document at the position shown. For limits, split the input or raise \
`--max-file-size`.",
};

/// A finding about input that could not be read as a Kubernetes object.
pub fn diagnostic(location: Location, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&RULE, location, message)
}
