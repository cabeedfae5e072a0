//! Turns saphyr-parser's event stream into [`Node`] trees, enforcing limits.
//!
//! The builder keeps an explicit stack instead of recursing, so nesting costs
//! heap, never call stack, and it stops at [`Limits::max_depth`]. Aliases are
//! expanded by copying the anchored subtree, charged against
//! [`Limits::max_nodes`] before the copy is made, which is what stops
//! "billion laughs" documents.

use crate::Limits;
use crate::error::{LoadError, LoadErrorKind};
use crate::node::{Entry, Node, Value};
use crate::scalar::{resolve_plain, resolve_tagged};
use crate::span::Span;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle};
use std::collections::{HashMap, HashSet};

/// Translates the parser's character positions into byte offsets of the stream.
struct Positions<'a> {
    base: u32,
    text: &'a str,
    ascii: bool,
    line_starts: Vec<u32>,
}

impl<'a> Positions<'a> {
    fn new(base: u32, text: &'a str) -> Positions<'a> {
        let ascii = text.is_ascii();
        let line_starts = if ascii {
            Vec::new()
        } else {
            std::iter::once(0)
                .chain(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i as u32 + 1))
                .collect()
        };
        Positions { base, text, ascii, line_starts }
    }

    fn offset(&self, m: &Marker) -> u32 {
        if self.ascii {
            return self.base + (m.index() as u32).min(self.text.len() as u32);
        }
        let line_start =
            self.line_starts.get(m.line().saturating_sub(1)).copied().unwrap_or(self.text.len() as u32) as usize;
        let rest = &self.text[line_start..];
        let byte = rest
            .char_indices()
            .take_while(|(_, c)| *c != '\n')
            .nth(m.col())
            .map_or_else(|| rest.find('\n').unwrap_or(rest.len()), |(i, _)| i);
        self.base + (line_start + byte) as u32
    }

    fn span(&self, s: &saphyr_parser::Span) -> Span {
        let start = self.offset(&s.start);
        let end = self.offset(&s.end).max(start);
        Span::new(start, end)
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        start: u32,
        anchor: usize,
        nodes_before: usize,
    },
    Map {
        entries: Vec<Entry>,
        /// The key waiting for its value; `None` between entries.
        key: Option<PendingKey>,
        /// Values of `<<` merge keys, applied when the mapping closes.
        merges: Vec<Node>,
        /// Key set, built once the mapping grows past a few entries.
        index: Option<HashSet<Box<str>>>,
        start: u32,
        anchor: usize,
        nodes_before: usize,
    },
}

enum PendingKey {
    Key(Box<str>, Span),
    Merge,
}

const INDEX_AFTER: usize = 16;

/// Builds every document of one chunk of text. Documents finished before an
/// error are kept; the error ends the chunk.
pub(crate) fn build_chunk(text: &str, base: u32, limits: &Limits, out: &mut Vec<Result<Node, LoadError>>) {
    let positions = Positions::new(base, text);
    let mut b = Builder { limits, nodes: 0, anchors: HashMap::new(), stack: Vec::new(), root: None };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                let at = positions.offset(e.marker());
                out.push(Err(LoadError::new(LoadErrorKind::Syntax, Span::point(at), syntax_message(e.info()))));
                return;
            }
        };
        let span = positions.span(&span);
        match b.on_event(event, span) {
            Ok(Some(doc)) => out.push(Ok(doc)),
            Ok(None) => {}
            Err(e) => {
                out.push(Err(e));
                return;
            }
        }
    }
}

fn syntax_message(info: &str) -> String {
    format!("YAML syntax error: {info}")
}

struct Builder<'l> {
    limits: &'l Limits,
    nodes: usize,
    anchors: HashMap<usize, (Node, usize)>,
    stack: Vec<Frame>,
    root: Option<Node>,
}

impl Builder<'_> {
    /// Handles one event; returns a finished document root when one completes.
    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<Option<Node>, LoadError> {
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => Ok(None),
            Event::DocumentStart(_) => {
                self.stack.clear();
                self.root = None;
                self.anchors.clear();
                self.nodes = 0;
                Ok(None)
            }
            Event::DocumentEnd => Ok(self.root.take()),
            Event::Scalar(text, style, anchor, tag) => {
                self.charge(1, span)?;
                // A plain `<<` in key position is a merge key (YAML 1.1, go-yaml v2).
                if style == ScalarStyle::Plain
                    && &*text == "<<"
                    && tag.is_none()
                    && let Some(Frame::Map { key: key @ None, .. }) = self.stack.last_mut()
                {
                    *key = Some(PendingKey::Merge);
                    return Ok(None);
                }
                let value = match (&tag, style) {
                    (Some(tag), _) if tag.is_yaml_core_schema() => {
                        resolve_tagged(&tag.suffix, &text).ok_or_else(|| {
                            LoadError::new(
                                LoadErrorKind::Structure,
                                span,
                                format!("`{}` is not a valid !!{}", truncate(&text), tag.suffix),
                            )
                        })?
                    }
                    (Some(_), ScalarStyle::Plain) | (None, ScalarStyle::Plain) => resolve_plain(&text),
                    _ => Value::Str(text.as_ref().into()),
                };
                let node = Node::new(value, span);
                if anchor != 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                self.push(node)
            }
            Event::Alias(id) => {
                let Some((node, count)) = self.anchors.get(&id) else {
                    return Err(LoadError::new(LoadErrorKind::Structure, span, "alias to an unknown anchor"));
                };
                let count = *count;
                if self.nodes.saturating_add(count) > self.limits.max_nodes {
                    return Err(LoadError::new(
                        LoadErrorKind::TooManyNodes,
                        span,
                        format!(
                            "expanding this alias would exceed the limit of {} nodes per document (alias bomb?)",
                            self.limits.max_nodes
                        ),
                    ));
                }
                self.nodes += count;
                let mut node = node.clone();
                // The copy points at the alias, where the reader sees it.
                node.span = span;
                self.push(node)
            }
            Event::SequenceStart(anchor, _tag) => {
                self.open(span)?;
                self.stack.push(Frame::Seq { items: Vec::new(), start: span.start, anchor, nodes_before: self.nodes });
                Ok(None)
            }
            Event::MappingStart(anchor, _tag) => {
                self.open(span)?;
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    merges: Vec::new(),
                    index: None,
                    start: span.start,
                    anchor,
                    nodes_before: self.nodes,
                });
                Ok(None)
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { items, start, anchor, nodes_before }) => {
                    let node = Node::new(Value::Seq(items), Span::new(start, span.end.max(start)));
                    self.finish_collection(node, anchor, nodes_before)
                }
                _ => Err(LoadError::new(LoadErrorKind::Syntax, span, "unbalanced sequence end")),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map { mut entries, key, merges, mut index, start, anchor, nodes_before }) => {
                    if key.is_some() {
                        return Err(LoadError::new(LoadErrorKind::Syntax, span, "mapping key without a value"));
                    }
                    apply_merges(&mut entries, &mut index, merges)?;
                    let node = Node::new(Value::Map(entries), Span::new(start, span.end.max(start)));
                    self.finish_collection(node, anchor, nodes_before)
                }
                _ => Err(LoadError::new(LoadErrorKind::Syntax, span, "unbalanced mapping end")),
            },
        }
    }

    fn charge(&mut self, n: usize, span: Span) -> Result<(), LoadError> {
        self.nodes += n;
        if self.nodes > self.limits.max_nodes {
            return Err(LoadError::new(
                LoadErrorKind::TooManyNodes,
                span,
                format!("document has more than {} nodes", self.limits.max_nodes),
            ));
        }
        Ok(())
    }

    fn open(&mut self, span: Span) -> Result<(), LoadError> {
        self.charge(1, span)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(LoadError::new(
                LoadErrorKind::TooDeep,
                span,
                format!("nesting deeper than {} levels", self.limits.max_depth),
            ));
        }
        Ok(())
    }

    fn finish_collection(&mut self, node: Node, anchor: usize, nodes_before: usize) -> Result<Option<Node>, LoadError> {
        if anchor != 0 {
            let count = self.nodes - nodes_before;
            self.anchors.insert(anchor, (node.clone(), count));
        }
        self.push(node)
    }

    /// Places a finished node into its parent, or makes it the document root.
    fn push(&mut self, node: Node) -> Result<Option<Node>, LoadError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(None)
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(None)
            }
            Some(Frame::Map { entries, key, merges, index, .. }) => {
                match key.take() {
                    None => {
                        let text = key_text(&node)?;
                        *key = Some(PendingKey::Key(text, node.span));
                    }
                    Some(PendingKey::Merge) => merges.push(node),
                    Some(PendingKey::Key(k, key_span)) => {
                        if let Some(first) = find_key(entries, index, &k) {
                            let mut err = LoadError::new(
                                LoadErrorKind::DuplicateKey,
                                key_span,
                                format!("duplicate key `{}`", truncate(&k)),
                            );
                            err.related.push((first, "first defined here".into()));
                            return Err(err);
                        }
                        if let Some(set) = index {
                            set.insert(k.clone());
                        } else if entries.len() >= INDEX_AFTER {
                            let mut set: HashSet<Box<str>> = entries.iter().map(|e| e.key.clone()).collect();
                            set.insert(k.clone());
                            *index = Some(set);
                        }
                        entries.push(Entry { key: k, key_span, value: node });
                    }
                }
                Ok(None)
            }
        }
    }
}

fn find_key(entries: &[Entry], index: &Option<HashSet<Box<str>>>, key: &str) -> Option<Span> {
    if let Some(set) = index
        && !set.contains(key)
    {
        return None;
    }
    entries.iter().find(|e| &*e.key == key).map(|e| e.key_span)
}

/// The string a scalar key becomes when YAML turns into JSON.
fn key_text(node: &Node) -> Result<Box<str>, LoadError> {
    match &node.value {
        Value::Str(s) => Ok(s.clone()),
        Value::Null => Ok("null".into()),
        Value::Seq(_) | Value::Map(_) => Err(LoadError::new(
            LoadErrorKind::Structure,
            node.span,
            "mapping keys must be strings, not a sequence or mapping",
        )),
        _ => Ok(node.scalar_text().unwrap_or_default().into()),
    }
}

/// Adds the entries of `<<` merge sources that the mapping does not set itself.
/// Earlier sources win over later ones, explicit keys over all (go-yaml v2).
fn apply_merges(
    entries: &mut Vec<Entry>,
    index: &mut Option<HashSet<Box<str>>>,
    merges: Vec<Node>,
) -> Result<(), LoadError> {
    let mut sources = Vec::new();
    for m in merges {
        match m.value {
            Value::Map(_) => sources.push(m),
            Value::Seq(items) => {
                for item in items {
                    if !matches!(item.value, Value::Map(_)) {
                        return Err(LoadError::new(
                            LoadErrorKind::Structure,
                            item.span,
                            "a `<<` merge list must hold only mappings",
                        ));
                    }
                    sources.push(item);
                }
            }
            _ => {
                return Err(LoadError::new(LoadErrorKind::Structure, m.span, "a `<<` merge value must be a mapping"));
            }
        }
    }
    for source in sources {
        if let Value::Map(merged) = source.value {
            for e in merged {
                if find_key(entries, index, &e.key).is_none() {
                    if let Some(set) = index {
                        set.insert(e.key.clone());
                    }
                    entries.push(e);
                }
            }
        }
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}…")
    }
}
