//! Turning diagnostics into output for people and for machines.

pub mod estimate;
pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod policyreport;
pub mod sarif;

use crate::origin::SourceMap;
use apiload_rules::{Location, SourceId, Sources};
use apiload_yaml::files::{Skip, Skipped};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A location as the output contract writes it: file, 1-based line and column.
#[derive(Serialize)]
pub struct Position {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    /// For generated input (stdin, `--helm`) attributed to another file: the
    /// line in the input stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_line: Option<u32>,
    /// How generated input was attributed: `template` (the template's own
    /// line), `rendered` (the line in the rendered document, counted from its
    /// `# Source:` comment) or `origin` (Kustomize's origin annotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<&'static str>,
}

/// Turns locations into positions, the same for every format: paths
/// relative to the repository root, and generated input (Helm's `# Source:`
/// comments, Kustomize's origin annotations) attributed to the files people
/// edit (`crate::origin`).
pub struct Locator<'a> {
    sources: &'a Sources,
    root: PathBuf,
    maps: HashMap<SourceId, SourceMap>,
}

impl<'a> Locator<'a> {
    /// `generated`: the sources read from stdin or rendered here, with the
    /// folder or file that tells where they come from (`--stdin-filename`, the chart).
    pub fn new(sources: &'a Sources, root: &Path, generated: &[(SourceId, Option<PathBuf>)]) -> Locator<'a> {
        let maps = generated
            .iter()
            .filter_map(|(id, hint)| {
                // Generated input is kept whole: it cannot be read again.
                let text = sources.get(*id).text()?;
                SourceMap::build(text, root, hint.as_deref()).map(|m| (*id, m))
            })
            .collect();
        Locator { sources, root: root.to_path_buf(), maps }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file name as findings show it.
    pub fn display(&self, name: &str) -> String {
        crate::paths::display(&self.root, name)
    }

    pub fn position(&self, loc: Location) -> Position {
        let source = self.sources.get(loc.source);
        let start = source.line_col_in(loc.span.start, apiload_yaml::ColumnUnit::Chars);
        let end = source.line_col_in(loc.span.end, apiload_yaml::ColumnUnit::Chars);
        if let Some(map) = self.maps.get(&loc.source)
            && let Some(text) = source.text()
            && let Some(m) = map.map(text, loc.span.start, (start.line, start.column), (end.line, end.column))
        {
            return Position {
                file: self.display(&m.file),
                line: m.line,
                column: m.column,
                end_line: m.end_line.max(m.line),
                end_column: if m.end_line > m.line { m.end_column } else { m.end_column.max(m.column) },
                input_line: Some(start.line),
                attribution: Some(m.attribution.as_str()),
            };
        }
        Position {
            file: self.display(&source.name),
            line: start.line,
            column: start.column,
            end_line: end.line,
            end_column: end.column,
            input_line: None,
            attribution: None,
        }
    }
}

/// What every format renders: the findings, how to place them, and the
/// numbers of the run.
pub struct Report<'a> {
    pub sources: &'a Sources,
    pub locator: &'a Locator<'a>,
    pub diagnostics: &'a [apiload_rules::Diagnostic],
    pub counts: json::Counts,
    /// The severity from which a finding fails the run (`--fail-on`), if any.
    pub fail_on: Option<apiload_rules::Severity>,
    /// The input files linted (for per-file reports).
    pub inputs: &'a [SourceId],
    /// Warnings about the run as a whole (an input without any object).
    pub warnings: &'a [String],
    /// Paths the walk left out, and why.
    pub skipped: &'a [Skipped],
    pub fingerprint: &'a dyn Fn(&apiload_rules::Diagnostic) -> String,
    /// What was read, when it was not files (`cluster kind-prod`): the
    /// summary says `in cluster kind-prod` instead of `in 3 files`.
    pub scope: Option<&'a str>,
}

impl Report<'_> {
    pub fn count(&self, s: apiload_rules::Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == s).count()
    }

    /// `2 errors, 1 warning, 0 infos in 3 files (10 objects, 2 workloads)`, and what was left out.
    pub fn summary(&self) -> String {
        use apiload_rules::Severity;
        let c = &self.counts;
        let mut s = format!(
            "{}, {}, {} in {} ({}, {})",
            plural(self.count(Severity::Error), "error", "errors"),
            plural(self.count(Severity::Warning), "warning", "warnings"),
            plural(self.count(Severity::Info), "info", "infos"),
            self.scope.map_or_else(|| plural(c.files, "file", "files"), str::to_string),
            plural(c.objects, "object", "objects"),
            plural(c.workloads, "workload", "workloads"),
        );
        if c.suppressed > 0 {
            s.push_str(&format!("; {} exempted", c.suppressed));
        }
        if c.baselined > 0 {
            s.push_str(&format!("; {} in the baseline", c.baselined));
        }
        if c.deselected > 0 {
            s.push_str(&format!("; {} not selected", c.deselected));
        }
        if let Some(skips) = skipped_summary(self.skipped) {
            s.push_str(&format!("; {skips}"));
        }
        s
    }

    /// Whether a finding fails the run.
    pub fn fails(&self, d: &apiload_rules::Diagnostic) -> bool {
        self.fail_on.is_some_and(|t| d.severity >= t)
    }
}

/// `3 paths skipped (2 Helm chart sources, 1 Kustomize configuration)`, for
/// the human summary; `None` when nothing was skipped.
pub fn skipped_summary(skipped: &[Skipped]) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    // (singular, plural, count), in order of first appearance.
    let mut groups: Vec<(&'static str, &'static str, usize)> = Vec::new();
    for s in skipped {
        let (one, many) = match s.why {
            Skip::HelmChart => ("Helm chart source", "Helm chart sources"),
            Skip::Kustomize => ("Kustomize configuration", "Kustomize configurations"),
            Skip::OtherTool(_) => ("other tool's configuration", "other tools' configurations"),
            Skip::NotAFile(_) => ("FIFO, socket or device", "FIFOs, sockets or devices"),
            Skip::LinkCycle(_) => ("symbolic link cycle", "symbolic link cycles"),
            Skip::AlreadyRead(_) => ("link to what was read already", "links to what was read already"),
        };
        match groups.iter_mut().find(|(w, _, _)| *w == one) {
            Some((_, _, n)) => *n += 1,
            None => groups.push((one, many, 1)),
        }
    }
    let parts: Vec<String> = groups.iter().map(|(one, many, k)| plural(*k, one, many)).collect();
    Some(format!("{} skipped ({})", plural(skipped.len(), "path", "paths"), parts.join(", ")))
}

/// `1 file`, `2 files`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Where a rule's documentation lives.
pub fn help_uri(rule_id: &str, rule_name: &str) -> String {
    format!("https://github.com/apiload/apiload/blob/main/docs/rules.md#{}-{}", rule_id.to_lowercase(), rule_name)
}
