//! `--format json`: the output contract (`docs/output-contract.md`).

use super::{Position, Report, help_uri};
use apiload_rules::diagnostic::CallRef;
use apiload_rules::{ObjectRef, Severity};
use serde::Serialize;

#[derive(Serialize)]
struct Output<'a> {
    diagnostics: Vec<JsonDiagnostic<'a>>,
    /// Paths the walk left out, and why (`reason`: a stable code).
    skipped: Vec<JsonSkipped>,
    summary: Summary,
    /// About the run as a whole (an input that holds no object).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

#[derive(Serialize)]
struct JsonSkipped {
    path: String,
    reason: &'static str,
    message: String,
}

#[derive(Serialize)]
struct Summary {
    files: usize,
    objects: usize,
    workloads: usize,
    suppressed: usize,
    baselined: usize,
    deselected: usize,
    skipped: usize,
    errors: usize,
    warnings: usize,
    infos: usize,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    rule: &'static str,
    name: &'static str,
    category: &'static str,
    severity: Severity,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    workload: Option<&'a ObjectRef>,
    location: Position,
    related: Vec<JsonRelated<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fixes: Vec<JsonFix<'a>>,
    help_uri: String,
    /// `profile`, `declared`, `observed` or `inferred` (docs/output.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    basis: Option<&'static str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    calls: &'a [CallRef],
}

#[derive(Serialize)]
struct JsonRelated<'a> {
    #[serde(flatten)]
    position: Position,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonFix<'a> {
    title: &'a str,
    edits: Vec<JsonEdit<'a>>,
}

#[derive(Serialize)]
struct JsonEdit<'a> {
    #[serde(flatten)]
    position: Position,
    new_text: &'a str,
}

pub struct Counts {
    pub files: usize,
    pub objects: usize,
    pub workloads: usize,
    /// Findings exemptions removed.
    pub suppressed: usize,
    /// Findings the baseline removed.
    pub baselined: usize,
    /// Findings `--select`/`--ignore` left out.
    pub deselected: usize,
}

pub fn render(report: &Report) -> String {
    let count = |s: Severity| report.count(s);
    let position = |loc| report.locator.position(loc);
    let counts = &report.counts;
    let out = Output {
        diagnostics: report
            .diagnostics
            .iter()
            .map(|d| JsonDiagnostic {
                rule: d.rule.id,
                name: d.rule.name,
                category: d.rule.category.as_str(),
                severity: d.severity,
                message: &d.message,
                workload: d.workload.as_ref(),
                location: position(d.location),
                related: d
                    .related
                    .iter()
                    .map(|r| JsonRelated { position: position(r.location), message: &r.message })
                    .collect(),
                help: d.help.as_deref(),
                fixes: d
                    .fixes
                    .iter()
                    .map(|f| JsonFix {
                        title: &f.title,
                        edits: f
                            .edits
                            .iter()
                            .map(|e| JsonEdit { position: position(e.location), new_text: &e.new_text })
                            .collect(),
                    })
                    .collect(),
                help_uri: help_uri(d.rule.id, d.rule.name),
                basis: d.basis,
                calls: &d.calls,
            })
            .collect(),
        skipped: report
            .skipped
            .iter()
            .map(|s| JsonSkipped {
                path: s.path.display().to_string(),
                reason: s.why.code(),
                message: s.why.to_string(),
            })
            .collect(),
        summary: Summary {
            files: counts.files,
            objects: counts.objects,
            workloads: counts.workloads,
            suppressed: counts.suppressed,
            baselined: counts.baselined,
            deselected: counts.deselected,
            skipped: report.skipped.len(),
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            infos: count(Severity::Info),
        },
        warnings: report.warnings,
    };
    let mut s = serde_json::to_string_pretty(&out).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
