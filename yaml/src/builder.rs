//! Turns saphyr-parser's event stream into [`Node`] trees, enforcing limits.
//!
//! The builder keeps an explicit stack instead of recursing, so nesting costs
//! heap, never call stack, and it stops at [`Limits::max_depth`]. Aliases are
//! expanded by copying the anchored subtree, charged before the copy is made
//! against [`Limits::max_nodes`] (its nodes, the collection itself included),
//! [`Limits::max_bytes`] (its scalar text) and [`Limits::max_depth`] (its
//! height where it lands), which is what stops "billion laughs" documents,
//! whether they multiply nodes, empty collections or long strings. The copies
//! kept for aliases are charged too (nested anchors each keep one), against a
//! budget of the same size.

use crate::Limits;
use crate::error::{LoadError, LoadErrorKind};
use crate::node::{CompactString, Entry, Node, Value};
use crate::scalar::{resolve_plain, resolve_tagged};
use crate::span::Span;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle};
use std::collections::HashMap;

/// Translates the parser's character positions into byte offsets of the stream.
///
/// The parser counts characters from the start of the chunk ([`Marker::index`]).
/// For non-ASCII text a table holds the byte offset of every
/// [`Positions::STRIDE`]th character, so a lookup walks at most that many
/// characters whatever the order of the lookups and the length of the lines.
struct Positions<'a> {
    base: u32,
    text: &'a str,
    ascii: bool,
    /// Byte offset of character `k * STRIDE`, for non-ASCII text.
    checkpoints: Vec<u32>,
}

impl<'a> Positions<'a> {
    const STRIDE: usize = 64;

    fn new(base: u32, text: &'a str) -> Positions<'a> {
        let ascii = text.is_ascii();
        let checkpoints =
            if ascii { Vec::new() } else { text.char_indices().step_by(Self::STRIDE).map(|(i, _)| i as u32).collect() };
        Positions { base, text, ascii, checkpoints }
    }

    fn offset(&self, m: &Marker) -> u32 {
        let len = self.text.len();
        let index = m.index();
        let byte = if self.ascii {
            index.min(len)
        } else {
            match self.checkpoints.get(index / Self::STRIDE) {
                Some(&at) => {
                    let at = at as usize;
                    self.text[at..].char_indices().nth(index % Self::STRIDE).map_or(len, |(i, _)| at + i)
                }
                None => len,
            }
        };
        self.base + byte as u32
    }

    fn span(&self, s: &saphyr_parser::Span) -> Span {
        let start = self.offset(&s.start);
        let end = self.offset(&s.end).max(start);
        Span::new(start, end)
    }
}

/// A collection being built. Its children so far are the builder's `items`
/// or `entries` from `first` on; `nodes_before` and `bytes_before` are the
/// document's counters before it opened, so that an anchor on it knows what
/// a copy costs; `height` is the largest height of its children so far.
enum Frame {
    Seq {
        first: usize,
        start: u32,
        anchor: usize,
        nodes_before: usize,
        bytes_before: usize,
        height: usize,
    },
    Map {
        first: usize,
        /// The key waiting for its value; `None` between entries.
        key: Option<PendingKey>,
        /// Values of `<<` merge keys, applied when the mapping closes.
        merges: Vec<Node>,
        /// Keys and their spans, built once the mapping grows past a few entries.
        index: Option<HashMap<CompactString, Span>>,
        start: u32,
        anchor: usize,
        nodes_before: usize,
        bytes_before: usize,
        height: usize,
    },
}

enum PendingKey {
    Key(CompactString, Span),
    Merge,
}

/// What an alias copies, and what the copy costs.
struct Anchor {
    node: Node,
    /// Nodes in the subtree, itself included.
    nodes: usize,
    /// Bytes of scalar text in the subtree.
    bytes: usize,
    /// Levels of collections: 0 for a scalar, 1 for a flat sequence.
    height: usize,
}

const INDEX_AFTER: usize = 16;

/// Builds every document of one chunk of text. Documents finished before an
/// error are kept; the error ends the chunk.
pub(crate) fn build_chunk(text: &str, base: u32, limits: &Limits, out: &mut Vec<Result<Node, LoadError>>) {
    let positions = Positions::new(base, text);
    let mut b = Builder {
        limits,
        nodes: 0,
        bytes: 0,
        kept_nodes: 0,
        kept_bytes: 0,
        anchors: HashMap::new(),
        stack: Vec::new(),
        items: Vec::new(),
        entries: Vec::new(),
        root: None,
    };
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
    /// Nodes of the document so far, alias expansions included.
    nodes: usize,
    /// Bytes of scalar text in the document so far, alias expansions included.
    bytes: usize,
    /// Nodes and bytes held by the copies in `anchors`.
    kept_nodes: usize,
    kept_bytes: usize,
    anchors: HashMap<usize, Anchor>,
    stack: Vec<Frame>,
    /// The children of every open sequence, innermost last. A closing
    /// collection moves its own into a vector of exactly their number: the
    /// trees are kept for the whole analysis, and vectors grown one push at
    /// a time would keep up to as much spare capacity as they hold.
    items: Vec<Node>,
    /// The entries of every open mapping, likewise.
    entries: Vec<Entry>,
    root: Option<Node>,
}

impl Builder<'_> {
    /// Handles one event; returns a finished document root when one completes.
    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<Option<Node>, LoadError> {
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => Ok(None),
            Event::DocumentStart(_) => {
                self.stack.clear();
                self.items.clear();
                self.entries.clear();
                self.root = None;
                self.anchors.clear();
                self.nodes = 0;
                self.bytes = 0;
                self.kept_nodes = 0;
                self.kept_bytes = 0;
                Ok(None)
            }
            Event::DocumentEnd => Ok(self.root.take()),
            Event::Scalar(text, style, anchor, tag) => {
                self.charge(1, text.len(), span)?;
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
                    _ => Value::Str(crate::known::tree_string(&text)),
                };
                let node = Node::new(value, span);
                if anchor != 0 {
                    self.keep(anchor, &node, 1, text.len(), 0)?;
                }
                self.push(node, 0)
            }
            Event::Alias(id) => {
                let Some(a) = self.anchors.get(&id) else {
                    return Err(LoadError::new(LoadErrorKind::Structure, span, "alias to an unknown anchor"));
                };
                if self.nodes.saturating_add(a.nodes) > self.limits.max_nodes {
                    return Err(LoadError::new(
                        LoadErrorKind::TooManyNodes,
                        span,
                        format!(
                            "expanding this alias would exceed the limit of {} nodes per document (alias bomb?)",
                            self.limits.max_nodes
                        ),
                    ));
                }
                if self.bytes.saturating_add(a.bytes) > self.limits.max_bytes {
                    return Err(LoadError::new(
                        LoadErrorKind::TooLarge,
                        span,
                        format!(
                            "expanding this alias would make the document hold more than {} bytes of text (alias bomb?)",
                            self.limits.max_bytes
                        ),
                    ));
                }
                // A merge value's entries land one level below it.
                let merging = matches!(self.stack.last(), Some(Frame::Map { key: Some(PendingKey::Merge), .. }));
                let lands = if merging { a.height.saturating_sub(1) } else { a.height };
                if self.stack.len().saturating_add(lands) > self.limits.max_depth {
                    return Err(LoadError::new(
                        LoadErrorKind::TooDeep,
                        span,
                        format!("expanding this alias here would nest deeper than {} levels", self.limits.max_depth),
                    ));
                }
                self.nodes += a.nodes;
                self.bytes += a.bytes;
                let height = a.height;
                let mut node = a.node.clone();
                // The copy points at the alias, where the reader sees it.
                node.span = span;
                self.push(node, height)
            }
            Event::SequenceStart(anchor, _tag) => {
                let (nodes_before, bytes_before) = (self.nodes, self.bytes);
                self.open(span)?;
                self.stack.push(Frame::Seq {
                    first: self.items.len(),
                    start: span.start,
                    anchor,
                    nodes_before,
                    bytes_before,
                    height: 0,
                });
                Ok(None)
            }
            Event::MappingStart(anchor, _tag) => {
                let (nodes_before, bytes_before) = (self.nodes, self.bytes);
                self.open(span)?;
                self.stack.push(Frame::Map {
                    first: self.entries.len(),
                    key: None,
                    merges: Vec::new(),
                    index: None,
                    start: span.start,
                    anchor,
                    nodes_before,
                    bytes_before,
                    height: 0,
                });
                Ok(None)
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { first, start, anchor, nodes_before, bytes_before, height }) => {
                    let items: Vec<Node> = self.items.drain(first..).collect();
                    let node = Node::new(Value::Seq(items.into_boxed_slice()), Span::new(start, span.end.max(start)));
                    self.finish_collection(node, anchor, nodes_before, bytes_before, height + 1)
                }
                _ => Err(LoadError::new(LoadErrorKind::Syntax, span, "unbalanced sequence end")),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    first,
                    key,
                    merges,
                    mut index,
                    start,
                    anchor,
                    nodes_before,
                    bytes_before,
                    height,
                }) => {
                    if key.is_some() {
                        return Err(LoadError::new(LoadErrorKind::Syntax, span, "mapping key without a value"));
                    }
                    apply_merges(&mut self.entries, first, &mut index, merges)?;
                    let entries: Vec<Entry> = self.entries.drain(first..).collect();
                    let node = Node::new(Value::Map(entries.into_boxed_slice()), Span::new(start, span.end.max(start)));
                    self.finish_collection(node, anchor, nodes_before, bytes_before, height + 1)
                }
                _ => Err(LoadError::new(LoadErrorKind::Syntax, span, "unbalanced mapping end")),
            },
        }
    }

    /// Counts a new node holding `bytes` of scalar text.
    fn charge(&mut self, nodes: usize, bytes: usize, span: Span) -> Result<(), LoadError> {
        self.nodes += nodes;
        self.bytes += bytes;
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
        self.charge(1, 0, span)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(LoadError::new(
                LoadErrorKind::TooDeep,
                span,
                format!("nesting deeper than {} levels", self.limits.max_depth),
            ));
        }
        Ok(())
    }

    /// Keeps a copy of an anchored node for its aliases, within the same
    /// budgets as the document itself: nested anchors each keep a copy, so
    /// without this a few hundred of them around one large subtree would
    /// hold hundreds of copies of it.
    fn keep(&mut self, anchor: usize, node: &Node, nodes: usize, bytes: usize, height: usize) -> Result<(), LoadError> {
        self.kept_nodes = self.kept_nodes.saturating_add(nodes);
        self.kept_bytes = self.kept_bytes.saturating_add(bytes);
        if self.kept_nodes > self.limits.max_nodes || self.kept_bytes > self.limits.max_bytes {
            return Err(LoadError::new(
                LoadErrorKind::TooManyNodes,
                node.span,
                format!(
                    "anchored nodes in this document add up to more than {} nodes or {} bytes",
                    self.limits.max_nodes, self.limits.max_bytes
                ),
            ));
        }
        self.anchors.insert(anchor, Anchor { node: node.clone(), nodes, bytes, height });
        Ok(())
    }

    fn finish_collection(
        &mut self,
        node: Node,
        anchor: usize,
        nodes_before: usize,
        bytes_before: usize,
        height: usize,
    ) -> Result<Option<Node>, LoadError> {
        if anchor != 0 {
            self.keep(anchor, &node, self.nodes - nodes_before, self.bytes - bytes_before, height)?;
        }
        self.push(node, height)
    }

    /// Places a finished node of the given height into its parent, or makes it
    /// the document root.
    fn push(&mut self, node: Node, node_height: usize) -> Result<Option<Node>, LoadError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(None)
            }
            Some(Frame::Seq { height, .. }) => {
                *height = (*height).max(node_height);
                self.items.push(node);
                Ok(None)
            }
            Some(Frame::Map { first, key, merges, index, height, .. }) => {
                let first = *first;
                match key.take() {
                    None => {
                        let span = node.span;
                        *key = Some(PendingKey::Key(key_text(node)?, span));
                    }
                    Some(PendingKey::Merge) => {
                        // The merged entries' values sit one level below the merge value.
                        *height = (*height).max(node_height.saturating_sub(1));
                        merges.push(node);
                    }
                    Some(PendingKey::Key(k, key_span)) => {
                        if let Some(earlier) = find_key(&self.entries[first..], index, &k) {
                            let mut err = LoadError::new(
                                LoadErrorKind::DuplicateKey,
                                key_span,
                                format!("duplicate key `{}`", truncate(&k)),
                            );
                            err.related.push((earlier, "first defined here".into()));
                            return Err(err);
                        }
                        *height = (*height).max(node_height);
                        self.entries.push(Entry { key: k, key_span, value: node });
                        index_last(&self.entries[first..], index);
                    }
                }
                Ok(None)
            }
        }
    }
}

/// Adds the key of the entry just pushed to the index, building the index
/// once the mapping has more than [`INDEX_AFTER`] entries, so that finding a
/// key stays cheap however large the mapping grows (merges included).
fn index_last(entries: &[Entry], index: &mut Option<HashMap<CompactString, Span>>) {
    match index {
        Some(map) => {
            if let Some(e) = entries.last() {
                map.insert(e.key.clone(), e.key_span);
            }
        }
        None if entries.len() > INDEX_AFTER => {
            *index = Some(entries.iter().map(|e| (e.key.clone(), e.key_span)).collect());
        }
        None => {}
    }
}

fn find_key(entries: &[Entry], index: &Option<HashMap<CompactString, Span>>, key: &str) -> Option<Span> {
    match index {
        Some(map) => map.get(key).copied(),
        None => entries.iter().find(|e| &*e.key == key).map(|e| e.key_span),
    }
}

/// The string a scalar key becomes when YAML turns into JSON (a string
/// key's own text, moved rather than copied).
fn key_text(node: Node) -> Result<CompactString, LoadError> {
    match node.value {
        Value::Str(s) => Ok(s),
        Value::Null => Ok("null".into()),
        Value::Seq(_) | Value::Map(_) => Err(LoadError::new(
            LoadErrorKind::Structure,
            node.span,
            "mapping keys must be strings, not a sequence or mapping",
        )),
        _ => Ok(node.scalar_text().unwrap_or_default().into()),
    }
}

/// Adds the entries of `<<` merge sources that the mapping (whose entries
/// are `entries[first..]`) does not set itself. Earlier sources win over
/// later ones, explicit keys over all (go-yaml v2).
fn apply_merges(
    entries: &mut Vec<Entry>,
    first: usize,
    index: &mut Option<HashMap<CompactString, Span>>,
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
                if find_key(&entries[first..], index, &e.key).is_none() {
                    entries.push(e);
                    index_last(&entries[first..], index);
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
