//! Span-tracking YAML and JSON loading for Kubernetes manifests.
//!
//! [`load_stream`] turns the bytes of a file (or of stdin) into documents: trees
//! of [`Node`]s whose every value and key keeps the byte span it came from, so
//! a finding can point at the exact field. Plain scalars are resolved the way
//! the Kubernetes API server reads them (YAML 1.1: `yes`, `off` are booleans).
//!
//! Hostile input is bounded by [`Limits`]: size, nesting depth and node count,
//! aliases expanded. A broken document yields a [`LoadError`] with its span
//! and the documents around it still load. Nothing here panics on input.

mod builder;
mod error;
pub mod files;
mod known;
mod node;
mod scalar;
mod span;
mod split;

pub use error::{LoadError, LoadErrorKind};
pub use node::{CompactString, Entry, Node, PathSegment, Value, write_json_string};
pub use scalar::resolve_plain;
pub use span::{ColumnUnit, LineCol, LineIndex, Span};

/// Bounds on what one input may cost.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest input, in bytes. Also the most scalar text one document may
    /// hold once its aliases are expanded, and the most its anchors may keep.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings, aliases expanded.
    pub max_depth: usize,
    /// Most nodes in one document, alias expansions included. Also the most
    /// nodes its anchors may keep copies of for their aliases.
    pub max_nodes: usize,
}

impl Limits {
    pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;
}

impl Default for Limits {
    /// Far above real manifests (the largest rendered charts are a few MB and
    /// nest 40 levels in CRD schemas), far below what hurts.
    fn default() -> Limits {
        Limits { max_bytes: Limits::DEFAULT_MAX_BYTES, max_depth: 256, max_nodes: 500_000 }
    }
}

/// One document of a stream.
#[derive(Clone, Debug)]
pub struct Document {
    pub root: Node,
}

/// Loads every document of a YAML (or JSON) stream, in order.
///
/// Empty documents (only comments, or nothing between two `---`) are left
/// out. Each broken document gives one `Err`; parsing resumes at the next
/// `---` line.
pub fn load_stream(bytes: &[u8], limits: &Limits) -> Vec<Result<Document, LoadError>> {
    let mut out = Vec::new();
    if bytes.len() > limits.max_bytes {
        out.push(Err(LoadError::new(
            LoadErrorKind::TooLarge,
            Span::point(0),
            format!("input is {} bytes, over the limit of {} bytes", bytes.len(), limits.max_bytes),
        )));
        return out;
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        out.push(Err(LoadError::new(
            LoadErrorKind::Encoding,
            Span::point(0),
            "input is UTF-16; manifests must be UTF-8",
        )));
        return out;
    }
    let skip = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) { 3 } else { 0 };
    let mut nodes = Vec::new();
    for chunk in split::split_documents(&bytes[skip..]) {
        let (start, end) = (chunk.start + skip, chunk.end + skip);
        let raw = &bytes[start..end];
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                let at = start + e.valid_up_to();
                out.push(Err(LoadError::new(
                    LoadErrorKind::Encoding,
                    Span::new(at as u32, at as u32 + 1),
                    format!("invalid UTF-8 (byte 0x{:02X}); manifests must be UTF-8", bytes[at]),
                )));
                continue;
            }
        };
        nodes.clear();
        builder::build_chunk(text, start as u32, limits, &mut nodes);
        for r in nodes.drain(..) {
            match r {
                Ok(root) if root.is_null() => {}
                Ok(root) => out.push(Ok(Document { root })),
                Err(e) => out.push(Err(e)),
            }
        }
    }
    out
}

/// Loads YAML held in a string (a configuration file kept in a ConfigMap).
/// Spans are byte offsets into `text`.
pub fn load_str(text: &str, limits: &Limits) -> Vec<Result<Document, LoadError>> {
    load_stream(text.as_bytes(), limits)
}

/// Loads a file that must hold at most one document (a configuration file):
/// `None` when it is empty; the first error of any document, or an error at
/// a second document, rather than reading the first and dropping the rest.
pub fn load_one(text: &str, limits: &Limits) -> Result<Option<Document>, LoadError> {
    let mut docs = load_str(text, limits).into_iter();
    let first = docs.next().transpose()?;
    match docs.next() {
        None => Ok(first),
        Some(Err(e)) => Err(e),
        Some(Ok(second)) => Err(LoadError::new(
            LoadErrorKind::Structure,
            Span::point(second.root.span.start),
            "a second YAML document; this file holds one",
        )),
    }
}

/// Maps a byte offset inside a scalar's value back to the source text.
///
/// Configuration files live in ConfigMaps as scalars, most often literal block
/// scalars (`key: |`). `source` is the whole source, `scalar` the span the
/// loader gave the scalar's node (for block scalars it starts at the first
/// content character), `value` the scalar's value and `inner` a byte offset
/// into it. Plain, single-line quoted and literal block scalars map exactly;
/// when the source does not show the value verbatim (escapes, folding) the
/// result is the start of the scalar. It never panics: a `scalar` span that is
/// not in `source` gives `scalar.start`, an `inner` past the value its end.
pub fn embedded_offset(source: &str, scalar: Span, value: &str, inner: usize) -> u32 {
    let (start, end) = (scalar.start as usize, scalar.end as usize);
    let Some(raw) = source.get(start..end.max(start)) else {
        return scalar.start;
    };
    // An offset inside a character counts as that character's start.
    let mut inner = inner.min(value.len());
    while !value.is_char_boundary(inner) {
        inner -= 1;
    }
    if raw == value {
        return (start + inner) as u32;
    }
    if (raw.starts_with('"') || raw.starts_with('\'')) && raw.get(1..raw.len().saturating_sub(1)) == Some(value) {
        return (start + 1 + inner) as u32;
    }
    // A literal block scalar: value line k is source line k below the first,
    // shifted right by the indentation of the first.
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let indent = start - line_start;
    let before = &value[..inner];
    let line_no = before.matches('\n').count();
    let value_line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = inner - value_line_start;
    let value_line = value[value_line_start..].split('\n').next().unwrap_or("");
    let mut offset = line_start;
    for _ in 0..line_no {
        match source[offset..].find('\n') {
            Some(i) => offset += i + 1,
            None => return scalar.start,
        }
    }
    let line = source[offset..].split('\n').next().unwrap_or("");
    match line.get(indent..) {
        Some(shown) if shown.starts_with(value_line) => (offset + indent + col) as u32,
        _ => scalar.start,
    }
}

#[cfg(test)]
mod tests;
