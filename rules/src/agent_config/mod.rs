//! Agents' configuration languages, read well enough for the keys that decide
//! API-server load. Every parser produces an `apiload_yaml::Node` tree whose
//! spans are byte offsets into the configuration text, so a finding can point
//! at the exact key inside a ConfigMap.
//!
//! Some formats are normalised into a shape that conditions can query
//! uniformly (see each module): Fluent Bit's classic and YAML formats become
//! the same tree; OpenTelemetry components become a list with their type and
//! whether a pipeline uses them; a Corefile becomes server blocks of plugins.

mod alloy;
mod corefile;
mod fluentbit;
mod fluentd;
mod otelcol;
pub mod resolve;
mod toml;

use apiload_yaml::{Entry, Limits, Node, Span, Value};

/// A configuration language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Plain YAML (also JSON): Prometheus, Promtail, Vector, Beats, kube-proxy...
    Yaml,
    /// OpenTelemetry Collector YAML, with components normalised.
    Otelcol,
    /// Fluent Bit, classic (`[INPUT]`) or YAML (`pipeline:`), auto-detected.
    FluentBit,
    /// fluentd's directive format (`<source>`, `<filter>`, `<match>`).
    Fluentd,
    /// Grafana Alloy's configuration syntax.
    Alloy,
    /// CoreDNS's Corefile.
    Corefile,
    Toml,
    /// YAML or TOML by the file's extension (Vector).
    Auto,
    /// YAML whose dotted keys (`filebeat.autodiscover:`) mean nesting (Beats).
    Beats,
    /// Every file of a directory (a mounted ConfigMap) as a key → value map:
    /// Cilium's `--config-dir`, Calico's `calico-config`.
    KeyValue,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "yaml" | "json" => Format::Yaml,
            "otelcol" => Format::Otelcol,
            "fluentbit" => Format::FluentBit,
            "fluentd" => Format::Fluentd,
            "alloy" => Format::Alloy,
            "corefile" => Format::Corefile,
            "toml" => Format::Toml,
            "keyvalue" => Format::KeyValue,
            "auto" => Format::Auto,
            "beats" => Format::Beats,
            _ => return None,
        })
    }

    pub const NAMES: &'static [&'static str] =
        &["yaml", "json", "otelcol", "fluentbit", "fluentd", "alloy", "corefile", "toml", "keyvalue", "auto", "beats"];

    /// The format a file name suggests, for `auto`.
    pub fn for_file(self, name: &str) -> Format {
        match self {
            Format::Auto if name.ends_with(".toml") => Format::Toml,
            Format::Auto => Format::Yaml,
            f => f,
        }
    }
}

/// A configuration that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Byte offset in the configuration text.
    pub offset: usize,
    pub message: String,
}

impl ConfigError {
    pub fn new(offset: usize, message: impl Into<String>) -> ConfigError {
        ConfigError { offset, message: message.into() }
    }
}

/// Parses one configuration text. `KeyValue` texts are read as
/// `key=value`/`key: value` lines (directories are assembled by the resolver).
pub fn parse(format: Format, text: &str) -> Result<Node, ConfigError> {
    match format {
        Format::Yaml => yaml(text),
        Format::Otelcol => yaml(text).map(otelcol::normalize),
        Format::FluentBit => fluentbit::parse(text),
        Format::Fluentd => fluentd::parse(text),
        Format::Alloy => alloy::parse(text),
        Format::Corefile => corefile::parse(text),
        Format::Toml => toml::parse(text),
        Format::KeyValue => Ok(key_value_lines(text)),
        Format::Auto => yaml(text),
        Format::Beats => yaml(text).map(|n| dotted(&n)),
    }
}

fn yaml(text: &str) -> Result<Node, ConfigError> {
    let mut docs = apiload_yaml::load_str(text, &Limits::default());
    if docs.is_empty() {
        return Ok(Node::new(Value::Map(Box::default()), Span::point(0)));
    }
    match docs.remove(0) {
        Ok(doc) => Ok(doc.root),
        Err(e) => Err(ConfigError::new(e.span.start as usize, e.message)),
    }
}

/// Expands `a.b.c: v` keys into nested mappings, merging with what is there.
fn dotted(node: &Node) -> Node {
    match &node.value {
        Value::Map(entries) => {
            let mut out: Vec<Entry> = Vec::new();
            for e in entries {
                let value = dotted(&e.value);
                let parts: Vec<&str> = e.key.split('.').collect();
                insert_path(&mut out, &parts, e.key_span, value);
            }
            map(out, node.span)
        }
        Value::Seq(items) => seq(items.iter().map(dotted).collect(), node.span),
        _ => node.clone(),
    }
}

fn insert_path(entries: &mut Vec<Entry>, parts: &[&str], key_span: Span, value: Node) {
    let (first, rest) = (parts[0], &parts[1..]);
    if rest.is_empty() {
        match entries.iter_mut().find(|e| &*e.key == first) {
            Some(e) => merge_into(&mut e.value, value),
            None => entries.push(entry(first, key_span, value)),
        }
        return;
    }
    let idx = match entries.iter().position(|e| &*e.key == first) {
        Some(i) => i,
        None => {
            entries.push(entry(first, key_span, map(Vec::new(), value.span)));
            entries.len() - 1
        }
    };
    if let Value::Map(inner) = &mut entries[idx].value.value {
        let mut grown = std::mem::take(inner).into_vec();
        insert_path(&mut grown, rest, key_span, value);
        *inner = grown.into_boxed_slice();
    }
}

fn merge_into(target: &mut Node, value: Node) {
    match (&mut target.value, value.value) {
        (Value::Map(a), Value::Map(b)) => {
            let mut merged = std::mem::take(a).into_vec();
            for e in b {
                match merged.iter_mut().find(|x| x.key == e.key) {
                    Some(x) => merge_into(&mut x.value, e.value),
                    None => merged.push(e),
                }
            }
            *a = merged.into_boxed_slice();
        }
        (_, v) => target.value = v,
    }
}

/// Merges several parsed files of one directory (Vector's `--config-dir`).
pub fn merge(docs: Vec<Node>) -> Node {
    let mut out = map(Vec::new(), Span::point(0));
    for d in docs {
        if out.as_map().is_some_and(|m| m.is_empty()) {
            out.span = d.span;
        }
        merge_into(&mut out, d);
    }
    out
}

fn key_value_lines(text: &str) -> Node {
    let mut entries = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty()
            && !trimmed.starts_with('#')
            && let Some((k, v)) = trimmed.split_once('=').or_else(|| trimmed.split_once(':'))
        {
            let lead = line.len() - line.trim_start().len();
            let ks = offset + lead;
            let vs = ks + trimmed.find(v.trim()).unwrap_or(k.len() + 1);
            entries.push(entry(
                k.trim(),
                span(ks, ks + k.trim().len()),
                string(v.trim(), span(vs, vs + v.trim().len())),
            ));
        }
        offset += line.len();
    }
    map(entries, span(0, text.len()))
}

// Small constructors shared by the parsers (and by the profile engine).

pub fn entry_node(key: &str, key_span: Span, value: Node) -> Entry {
    entry(key, key_span, value)
}

pub fn string_node(s: &str, span: Span) -> Node {
    string(s, span)
}

pub fn map_node(entries: Vec<Entry>, span: Span) -> Node {
    map(entries, span)
}

pub(crate) fn span(start: usize, end: usize) -> Span {
    Span::new(start as u32, end.max(start) as u32)
}

pub(crate) fn string(s: &str, span: Span) -> Node {
    Node::new(Value::Str(s.into()), span)
}

pub(crate) fn map(entries: Vec<Entry>, span: Span) -> Node {
    Node::new(Value::Map(entries.into_boxed_slice()), span)
}

pub(crate) fn seq(items: Vec<Node>, span: Span) -> Node {
    Node::new(Value::Seq(items.into_boxed_slice()), span)
}

pub(crate) fn entry(key: &str, key_span: Span, value: Node) -> Entry {
    Entry { key: key.into(), key_span, value }
}

/// A string scalar that reads as a boolean in most agents' configs.
pub(crate) fn boolish(s: &str, span: Span) -> Node {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Node::new(Value::Bool(true), span),
        "off" | "false" | "no" => Node::new(Value::Bool(false), span),
        _ => string(s, span),
    }
}

/// Appends `node` to the list under `key` in `entries`, creating it.
pub(crate) fn push_to_list(entries: &mut Vec<Entry>, key: &str, key_span: Span, node: Node) {
    if let Some(e) = entries.iter_mut().find(|e| &*e.key == key)
        && let Value::Seq(items) = &mut e.value.value
    {
        e.value.span = e.value.span.cover(node.span);
        let mut grown = std::mem::take(items).into_vec();
        grown.push(node);
        *items = grown.into_boxed_slice();
        return;
    }
    let s = node.span;
    entries.push(entry(key, key_span, seq(vec![node], s)));
}

#[cfg(test)]
mod tests;
