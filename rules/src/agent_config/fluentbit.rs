//! Fluent Bit configuration, classic or YAML, into one shape:
//!
//! ```text
//! {service: {...}, inputs: [{name, ...}], filters: [...], outputs: [...],
//!  parsers: [...], includes: ["file", ...]}
//! ```
//!
//! Keys are lowercased (Fluent Bit matches them case-insensitively) and
//! `On`/`Off`/`true`/`false`/`yes`/`no` values become booleans.

use super::{ConfigError, boolish, entry, map, push_to_list, span, string};
use apiload_yaml::{Entry, Node, Span, Value};

pub fn parse(text: &str) -> Result<Node, ConfigError> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
    if first.starts_with('[') || first.starts_with('@') || first.is_empty() {
        return classic(text);
    }
    match super::yaml(text) {
        Ok(root) if root.as_map().is_some() => Ok(yaml(&root)),
        _ => classic(text),
    }
}

fn section_list(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "input" => "inputs",
        "filter" => "filters",
        "output" => "outputs",
        "parser" => "parsers",
        "multiline_parser" => "multiline_parsers",
        "custom" => "customs",
        "plugins" => "plugins",
        "upstream" | "node" => "upstreams",
        _ => return None,
    })
}

fn classic(text: &str) -> Result<Node, ConfigError> {
    let mut top: Vec<Entry> = Vec::new();
    // The section being filled: (list name or "service", header span, entries).
    let mut current: Option<(String, Span, Vec<Entry>)> = None;
    let flush = |top: &mut Vec<Entry>, current: Option<(String, Span, Vec<Entry>)>| {
        if let Some((name, header, entries)) = current {
            let end = entries.last().map_or(header.end, |e| e.value.span.end);
            let node = map(entries, Span::new(header.start, end));
            if name == "service" {
                top.push(entry("service", header, node));
            } else {
                push_to_list(top, &name, header, node);
            }
        }
    };
    let mut offset = 0usize;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        let lead = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        let start = offset + lead;
        offset += raw.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(ConfigError::new(start, format!("Fluent Bit: section header without `]`: {trimmed}")));
            };
            flush(&mut top, current.take());
            let header = span(start, start + trimmed.len());
            let list = match section_list(name.trim()) {
                Some(l) => l.to_string(),
                None if name.trim().eq_ignore_ascii_case("service") => "service".to_string(),
                None => format!("section_{}", name.trim().to_ascii_lowercase()),
            };
            current = Some((list, header, Vec::new()));
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('@') {
            let (directive, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if directive.eq_ignore_ascii_case("include") {
                let arg = arg.trim();
                let at = start + trimmed.find(arg).unwrap_or(0);
                push_to_list(
                    &mut top,
                    "includes",
                    span(start, start + trimmed.len()),
                    string(arg, span(at, at + arg.len())),
                );
            }
            continue;
        }
        let Some((_, _, entries)) = current.as_mut() else {
            return Err(ConfigError::new(start, format!("Fluent Bit: `{trimmed}` outside any [SECTION]")));
        };
        let (key, value) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
        let value = value.trim();
        let vs = start + trimmed.len() - value.len();
        entries.push(entry(
            &key.to_ascii_lowercase(),
            span(start, start + key.len()),
            boolish(value, span(vs, vs + value.len())),
        ));
    }
    flush(&mut top, current);
    Ok(map(top, span(0, text.len())))
}

/// YAML format: `service`, `pipeline.{inputs,filters,outputs}`, `parsers`, `includes`.
fn yaml(root: &Node) -> Node {
    let mut top = Vec::new();
    if let Some(e) = root.entry("service") {
        top.push(entry("service", e.key_span, lower(&e.value)));
    }
    if let Some(p) = root.get("pipeline") {
        for key in ["inputs", "filters", "outputs"] {
            if let Some(e) = p.entry(key) {
                top.push(entry(key, e.key_span, lower(&e.value)));
            }
        }
    }
    for key in ["parsers", "multiline_parsers", "includes", "customs"] {
        if let Some(e) = root.entry(key) {
            top.push(entry(key, e.key_span, lower(&e.value)));
        }
    }
    map(top, root.span)
}

/// Lowercases keys and reads boolean-like strings as booleans, recursively.
fn lower(node: &Node) -> Node {
    match &node.value {
        Value::Map(entries) => map(
            entries.iter().map(|e| entry(&e.key.to_ascii_lowercase(), e.key_span, lower(&e.value))).collect(),
            node.span,
        ),
        Value::Seq(items) => Node::new(Value::Seq(items.iter().map(lower).collect()), node.span),
        Value::Str(s) => boolish(s, node.span),
        _ => node.clone(),
    }
}
