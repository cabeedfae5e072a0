//! The tree the loader builds: JSON-shaped values that remember where they came from.

use crate::span::Span;
pub use compact_str::CompactString;

/// A value and the span of its text in the source.
///
/// Trees are most of what an analysis keeps in memory (a manifest's tree was
/// about five times its text), so a node is kept small: 32 bytes, strings of up
/// to 24 bytes (nearly every key, most names and label values) stored inline
/// rather than in an allocation of their own, and the children of a
/// collection in a boxed slice, exactly as long as they are. The size is held
/// by a test.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

/// A JSON-shaped value, scalars already resolved as the Kubernetes API server
/// reads YAML (YAML 1.1 core rules of go-yaml v2 via sigs.k8s.io/yaml).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(CompactString),
    Seq(Box<[Node]>),
    Map(Box<[Entry]>),
}

/// One `key: value` pair. Keys are strings, as they are once YAML becomes JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: CompactString,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    pub fn new(value: Value, span: Span) -> Node {
        Node { value, span }
    }

    /// The value under `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry under `key` when this is a mapping (key span included).
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| &*e.key == key),
            _ => None,
        }
    }

    /// Follows a path of mapping keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The scalar as text, the way a string field shows it after YAML → JSON:
    /// strings as they are, numbers and booleans in their JSON spelling.
    /// `None` for null, sequences and mappings.
    pub fn scalar_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match &self.value {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Float(f) => Some(Cow::Owned(format_float(*f))),
            _ => None,
        }
    }

    /// The name of this value's JSON type, for error messages.
    pub fn type_name(&self) -> &'static str {
        self.value.type_name()
    }

    /// Number of nodes in this subtree, itself included.
    pub fn count(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::count).sum(),
            Value::Map(entries) => entries.iter().map(|e| e.value.count()).sum(),
            _ => 0,
        }
    }

    /// Every node of the subtree in document order, with its JSON-pointer-like path.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&[PathSegment<'a>], &'a Node)) {
        let mut path = Vec::new();
        walk_inner(self, &mut path, f);
    }

    /// Converts to `serde_json`-free plain JSON text (used for JSONPath evaluation
    /// and for snapshot output). Floats that are integral print without a fraction.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        write_json(self, &mut out);
        out
    }
}

/// One step of a path into a tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathSegment<'a> {
    Key(&'a str),
    Index(usize),
}

fn walk_inner<'a>(node: &'a Node, path: &mut Vec<PathSegment<'a>>, f: &mut dyn FnMut(&[PathSegment<'a>], &'a Node)) {
    f(path, node);
    match &node.value {
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(PathSegment::Index(i));
                walk_inner(item, path, f);
                path.pop();
            }
        }
        Value::Map(entries) => {
            for e in entries {
                path.push(PathSegment::Key(&e.key));
                walk_inner(&e.value, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "sequence",
            Value::Map(_) => "mapping",
        }
    }
}

pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+.inf".into() } else { "-.inf".into() }
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn write_json(node: &Node, out: &mut String) {
    match &node.value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) if f.is_finite() => out.push_str(&format_float(*f)),
        Value::Float(_) => out.push_str("null"),
        Value::Str(s) => write_json_string(s, out),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(&e.key, out);
                out.push(':');
                write_json(&e.value, out);
            }
            out.push('}');
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
