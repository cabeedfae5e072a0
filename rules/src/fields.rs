//! Typed reading of the fields the engine relies on.
//!
//! The API server rejects an object whose known fields have the wrong JSON
//! type (`replicas: "three"`), so such an object never exists in a cluster.
//! Readers here return a [`SpanError`] pointing at the field, and the object
//! is reported and left out of the analysis. `null` reads as unset, as it does
//! in Go's JSON decoding.

use crate::source::SpanError;
use apiload_yaml::{Node, Span, Value};

pub type FieldResult<T> = Result<T, SpanError>;

/// A mapping node with the dotted path that leads to it, for messages. The
/// path is only spelled out when a message needs it: reading a workload
/// reads hundreds of fields, and nearly all of them are fine.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    pub node: &'a Node,
    pub path: &'a str,
    /// The item's index when this mapping is an item of the sequence at `path`.
    index: Option<usize>,
}

/// A string value and its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Spanned<T> {
        Spanned { value, span }
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Str(s) if s.len() <= 40 => format!("the string \"{s}\""),
        Value::Str(_) => "a string".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Int(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        v => format!("a {}", v.type_name()),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn wrong(node: &Node, path: &str, want: &str) -> SpanError {
    SpanError::new(node.span, format!("`{path}` must be {want}, not {}", describe(node)))
}

impl<'a> Fields<'a> {
    pub fn new(node: &'a Node, path: &'a str) -> FieldResult<Fields<'a>> {
        match node.value {
            Value::Map(_) => Ok(Fields { node, path, index: None }),
            _ => Err(wrong(node, if path.is_empty() { "the document" } else { path }, "a mapping")),
        }
    }

    /// The path of one of its keys.
    fn at(&self, key: &str) -> String {
        match self.index {
            Some(i) => format!("{}[{i}].{key}", self.path),
            None => join(self.path, key),
        }
    }

    fn present(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key).filter(|n| !n.is_null())
    }

    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.node.entry(key).map(|e| e.key_span)
    }

    pub fn str(&self, key: &str) -> FieldResult<Option<Spanned<&'a str>>> {
        match self.present(key) {
            None => Ok(None),
            Some(n) => match &n.value {
                Value::Str(s) => Ok(Some(Spanned::new(&**s, n.span))),
                _ => Err(wrong(n, &self.at(key), "a string")),
            },
        }
    }

    pub fn int(&self, key: &str) -> FieldResult<Option<Spanned<i64>>> {
        match self.present(key) {
            None => Ok(None),
            Some(n) => match n.value {
                Value::Int(i) => Ok(Some(Spanned::new(i, n.span))),
                _ => Err(wrong(n, &self.at(key), "an integer")),
            },
        }
    }

    /// An `int32` field the API server bounds below (`replicas`: 0,
    /// `maxReplicas`: 1): anything else is refused there, so it is an error
    /// here, never a count.
    pub fn int32(&self, key: &str, min: i64) -> FieldResult<Option<Spanned<i64>>> {
        let value = self.int(key)?;
        match value {
            Some(v) if !(min..=i64::from(i32::MAX)).contains(&v.value) => Err(SpanError::new(
                v.span,
                format!("`{}` must be an integer from {min} to {}, not {}", self.at(key), i32::MAX, v.value),
            )),
            v => Ok(v),
        }
    }

    pub fn bool(&self, key: &str) -> FieldResult<Option<Spanned<bool>>> {
        match self.present(key) {
            None => Ok(None),
            Some(n) => match n.value {
                Value::Bool(b) => Ok(Some(Spanned::new(b, n.span))),
                _ => Err(wrong(n, &self.at(key), "a boolean")),
            },
        }
    }

    /// An int-or-string field (`maxUnavailable: 1` or `"10%"`).
    pub fn int_or_str(&self, key: &str) -> FieldResult<Option<Spanned<IntOrStr<'a>>>> {
        match self.present(key) {
            None => Ok(None),
            Some(n) => match &n.value {
                Value::Int(i) => Ok(Some(Spanned::new(IntOrStr::Int(*i), n.span))),
                Value::Str(s) => Ok(Some(Spanned::new(IntOrStr::Str(s), n.span))),
                _ => Err(wrong(n, &self.at(key), "an integer or a string")),
            },
        }
    }

    /// A nested mapping; the returned reader owns its path.
    pub fn map(&self, key: &str) -> FieldResult<Option<Owned<'a>>> {
        match self.present(key) {
            None => Ok(None),
            Some(n) => match n.value {
                Value::Map(_) => Ok(Some(Owned { node: n, path: self.at(key).into(), index: None })),
                _ => Err(wrong(n, &self.at(key), "a mapping")),
            },
        }
    }

    /// A sequence of mappings.
    pub fn maps(&self, key: &str) -> FieldResult<Vec<Owned<'a>>> {
        let Some(n) = self.present(key) else {
            return Ok(Vec::new());
        };
        let Value::Seq(items) = &n.value else {
            return Err(wrong(n, &self.at(key), "a sequence"));
        };
        // One path for all items; each item adds its index when a message needs it.
        let path: std::sync::Arc<str> = self.at(key).into();
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.value {
                Value::Map(_) => Ok(Owned { node: item, path: path.clone(), index: Some(i) }),
                _ => Err(wrong(item, &format!("{path}[{i}]"), "a mapping")),
            })
            .collect()
    }

    /// A sequence of strings.
    pub fn strs(&self, key: &str) -> FieldResult<Vec<Spanned<&'a str>>> {
        let Some(n) = self.present(key) else {
            return Ok(Vec::new());
        };
        let Value::Seq(items) = &n.value else {
            return Err(wrong(n, &self.at(key), "a sequence of strings"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match &item.value {
                Value::Str(s) => Ok(Spanned::new(&**s, item.span)),
                _ => Err(wrong(item, &format!("{}[{i}]", self.at(key)), "a string")),
            })
            .collect()
    }

    /// A mapping of string to string (labels, annotations, nodeSelector, ConfigMap data).
    pub fn str_map(&self, key: &str) -> FieldResult<Vec<(Spanned<&'a str>, Spanned<&'a str>)>> {
        let Some(n) = self.present(key) else {
            return Ok(Vec::new());
        };
        let Value::Map(entries) = &n.value else {
            return Err(wrong(n, &self.at(key), "a mapping of strings"));
        };
        entries
            .iter()
            .filter(|e| !e.value.is_null())
            .map(|e| match &e.value.value {
                Value::Str(s) => Ok((Spanned::new(&*e.key, e.key_span), Spanned::new(&**s, e.value.span))),
                _ => Err(wrong(&e.value, &join(&self.at(key), &e.key), "a string")),
            })
            .collect()
    }
}

/// A [`Fields`] reader whose path is owned (for nested readers); items of
/// one sequence share theirs.
pub struct Owned<'a> {
    pub node: &'a Node,
    path: std::sync::Arc<str>,
    index: Option<usize>,
}

impl<'a> Owned<'a> {
    pub fn fields(&self) -> Fields<'_> {
        Fields { node: self.node, path: &self.path, index: self.index }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOrStr<'a> {
    Int(i64),
    Str(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiload_yaml::{Limits, load_str};

    fn doc(text: &str) -> Node {
        load_str(text, &Limits::default()).remove(0).unwrap().root
    }

    #[test]
    fn wrong_types_name_the_field_and_point_at_it() {
        let text = "spec:\n  replicas: \"three\"\n";
        let root = doc(text);
        let f = Fields::new(&root, "").unwrap();
        let spec = f.map("spec").unwrap().unwrap();
        let err = spec.fields().int("replicas").unwrap_err();
        assert_eq!(err.message, "`spec.replicas` must be an integer, not the string \"three\"");
        assert_eq!(&text[err.span.start as usize..err.span.end as usize], "\"three\"");
    }

    #[test]
    fn null_reads_as_unset() {
        let root = doc("a: null\nb: ~\n");
        let f = Fields::new(&root, "").unwrap();
        assert_eq!(f.str("a").unwrap(), None);
        assert_eq!(f.maps("b").unwrap().len(), 0);
    }

    #[test]
    fn sequences_check_each_item() {
        let root = doc("args: [\"--a\", 5]\n");
        let f = Fields::new(&root, "c").unwrap();
        assert_eq!(f.strs("args").unwrap_err().message, "`c.args[1]` must be a string, not the integer 5");
    }
}
