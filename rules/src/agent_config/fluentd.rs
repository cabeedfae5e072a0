//! fluentd's directive format into a tree:
//!
//! ```text
//! {sources: [{"@type": "tail", ...}], filters: [{pattern: "kubernetes.**",
//!  "@type": "kubernetes_metadata", watch: false, ...}], matches: [...],
//!  includes: [...], system: [...]}
//! ```
//!
//! Sections nested in a directive become lists under their name; directives
//! inside `<label>` are listed with the top-level ones as well, since they run
//! all the same. `true`/`false` values become booleans.

use super::{ConfigError, boolish, entry, map, push_to_list, span, string};
use apiload_yaml::{Entry, Node, Span};

struct Open {
    name: String,
    arg: Option<(String, Span)>,
    header: Span,
    entries: Vec<Entry>,
}

pub fn parse(text: &str) -> Result<Node, ConfigError> {
    let mut top: Vec<Entry> = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut offset = 0usize;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        let lead = line.len() - line.trim_start().len();
        let trimmed = strip_comment(line.trim());
        let start = offset + lead;
        offset += raw.len();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("</") {
            let name = rest.trim_end_matches('>').trim();
            let Some(open) = stack.pop() else {
                return Err(ConfigError::new(start, format!("fluentd: `</{name}>` closes nothing")));
            };
            if open.name != name {
                return Err(ConfigError::new(start, format!("fluentd: `</{name}>` closes `<{}>`", open.name)));
            }
            let header = open.header;
            let mut entries = open.entries;
            if let Some((arg, arg_span)) = open.arg {
                let key = if open.name == "label" { "label" } else { "pattern" };
                entries.insert(0, entry(key, arg_span, string(&arg, arg_span)));
            }
            let node = map(entries, Span::new(header.start, (start + trimmed.len()) as u32));
            let list = list_name(&open.name);
            match stack.last_mut() {
                // Directives inside <label> run like top-level ones.
                Some(parent) if parent.name == "label" && is_directive(&open.name) => {
                    push_to_list(&mut top, &list, header, node.clone());
                    push_to_list(&mut parent.entries, &list, header, node);
                }
                Some(parent) => push_to_list(&mut parent.entries, &open.name, header, node),
                None => push_to_list(&mut top, &list, header, node),
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('<') {
            let Some(inner) = rest.strip_suffix('>') else {
                return Err(ConfigError::new(start, format!("fluentd: unterminated `{trimmed}`")));
            };
            let (name, arg) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
            let arg = arg.trim();
            let header = span(start, start + trimmed.len());
            let arg = (!arg.is_empty()).then(|| {
                let at = start + trimmed.find(arg).unwrap_or(0);
                (arg.to_string(), span(at, at + arg.len()))
            });
            stack.push(Open { name: name.to_string(), arg, header, entries: Vec::new() });
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("@include") {
            let arg = rest.trim();
            let at = start + trimmed.len() - arg.len();
            let node = string(arg, span(at, at + arg.len()));
            match stack.last_mut() {
                Some(open) => push_to_list(&mut open.entries, "includes", span(start, at), node),
                None => push_to_list(&mut top, "includes", span(start, at), node),
            }
            continue;
        }
        let (key, value) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
        let value = unquote(value.trim());
        let vs = start + trimmed.len() - value.len();
        let e = entry(key, span(start, start + key.len()), boolish(value, span(vs, vs + value.len())));
        match stack.last_mut() {
            Some(open) => open.entries.push(e),
            None => top.push(e),
        }
    }
    if let Some(open) = stack.last() {
        return Err(ConfigError::new(
            open.header.start as usize,
            format!("fluentd: `<{}>` is never closed", open.name),
        ));
    }
    Ok(map(top, span(0, text.len())))
}

fn is_directive(name: &str) -> bool {
    matches!(name, "source" | "filter" | "match")
}

fn list_name(name: &str) -> String {
    match name {
        "source" => "sources".into(),
        "filter" => "filters".into(),
        "match" => "matches".into(),
        "label" => "labels".into(),
        other => other.to_string(),
    }
}

fn strip_comment(line: &str) -> &str {
    // `#` starts a comment unless inside quotes or part of `#{...}` interpolation.
    let bytes = line.as_bytes();
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), c) if c == q => quote = None,
            (None, b'#') if bytes.get(i + 1) != Some(&b'{') => return line[..i].trim_end(),
            _ => {}
        }
    }
    line
}

fn unquote(v: &str) -> &str {
    if v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\''))) {
        &v[1..v.len() - 1]
    } else {
        v
    }
}
