//! Turning diagnostics into output for people and for machines.

pub mod estimate;
pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod sarif;

use apiload_rules::{Location, Sources};
use apiload_yaml::files::{Skip, Skipped};
use serde::Serialize;

/// `3 paths skipped (2 Helm chart sources, 1 Kustomize configuration)`, for
/// the human summary;
/// `None` when nothing was skipped.
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
    let n = skipped.len();
    let parts: Vec<String> =
        groups.iter().map(|(one, many, k)| format!("{k} {}", if *k == 1 { one } else { many })).collect();
    Some(format!("{n} {} skipped ({})", if n == 1 { "path" } else { "paths" }, parts.join(", ")))
}

/// A location as the output contract writes it: file, 1-based line and column.
#[derive(Serialize)]
pub struct Position {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    /// For stdin attributed to a Helm template: the line in the input stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_line: Option<u32>,
}

/// Turns locations into positions. Input read from stdin that carries Helm's
/// `# Source: chart/templates/x.yaml` comments is attributed to those
/// templates, with lines counted from the comment, so that findings of
/// `helm template … | apiload lint -` name the template to fix.
pub struct Locator<'a> {
    sources: &'a Sources,
    /// Per stdin source: (line of a `# Source:` comment, template path), in order.
    templates: std::collections::HashMap<apiload_rules::SourceId, Vec<(u32, String)>>,
}

impl<'a> Locator<'a> {
    pub fn new(sources: &'a Sources) -> Locator<'a> {
        let mut templates = std::collections::HashMap::new();
        for (id, s) in sources.iter() {
            if s.name != crate::load::STDIN_NAME {
                continue;
            }
            let marks: Vec<(u32, String)> = s
                .text
                .lines()
                .enumerate()
                .filter_map(|(i, l)| l.strip_prefix("# Source: ").map(|p| (i as u32 + 1, p.trim().to_string())))
                .collect();
            if !marks.is_empty() {
                templates.insert(id, marks);
            }
        }
        Locator { sources, templates }
    }

    pub fn position(&self, loc: Location) -> Position {
        let source = self.sources.get(loc.source);
        let start = source.lines.line_col_in(&source.text, loc.span.start, apiload_yaml::ColumnUnit::Chars);
        let end = source.lines.line_col_in(&source.text, loc.span.end, apiload_yaml::ColumnUnit::Chars);
        let mut p = Position {
            file: source.name.clone(),
            line: start.line,
            column: start.column,
            end_line: end.line,
            end_column: end.column,
            input_line: None,
        };
        if let Some(marks) = self.templates.get(&loc.source)
            && let Some((mark, template)) = marks.iter().rev().find(|(l, _)| *l < start.line)
        {
            p.input_line = Some(start.line);
            p.file = template.clone();
            p.line = start.line - mark;
            p.end_line = end.line.saturating_sub(*mark).max(p.line);
        }
        p
    }
}

/// Where a rule's documentation lives.
pub fn help_uri(rule_id: &str, rule_name: &str) -> String {
    format!("https://github.com/apiload/apiload/blob/main/docs/rules.md#{}-{}", rule_id.to_lowercase(), rule_name)
}
