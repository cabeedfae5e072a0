//! Turning diagnostics into output for people and for machines.

pub mod estimate;
pub mod human;
pub mod json;

use apiload_rules::{Location, Sources};
use serde::Serialize;

/// A location as the output contract writes it: file, 1-based line and column.
#[derive(Serialize)]
pub struct Position {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
}

pub fn position(sources: &Sources, loc: Location) -> Position {
    let source = sources.get(loc.source);
    let start = source.lines.line_col_in(&source.text, loc.span.start, apiload_yaml::ColumnUnit::Chars);
    let end = source.lines.line_col_in(&source.text, loc.span.end, apiload_yaml::ColumnUnit::Chars);
    Position {
        file: source.name.clone(),
        line: start.line,
        column: start.column,
        end_line: end.line,
        end_column: end.column,
    }
}

/// Where a rule's documentation lives.
pub fn help_uri(rule_id: &str, rule_name: &str) -> String {
    format!("https://github.com/apiload/apiload/blob/main/docs/rules.md#{}-{}", rule_id.to_lowercase(), rule_name)
}
