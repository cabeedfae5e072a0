//! Where objects came from: named texts, and locations inside them.

use apiload_yaml::{ColumnUnit, LineCol, LineIndex, Span};

/// Something wrong at a place in a text: a field of the wrong type, an
/// invalid setting, a profile that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanError {
    pub span: Span,
    pub message: String,
}

impl SpanError {
    pub fn new(span: Span, message: impl Into<String>) -> SpanError {
        SpanError { span, message: message.into() }
    }
}

/// Index of a [`Source`] in a [`Sources`] table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u32);

/// A named text: a file, stdin, an editor buffer, an AdmissionReview object.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
    pub lines: LineIndex,
}

impl Source {
    /// Bytes that are not UTF-8 are replaced by `?` one for one, so offsets
    /// stay those of the original bytes (the loader reports them).
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Source {
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => lossless_offsets_utf8(e.as_bytes()),
        };
        let lines = LineIndex::new(text.as_bytes());
        Source { name: name.into(), text, lines }
    }
}

/// All texts of one analysis. Front ends add to it; the engine only reads it
/// to map spans to lines and to follow configuration embedded in scalars.
/// Cloning shares the texts: a front end that analyses again after one text
/// changed (the language server) clones and [`Sources::replace`]s it.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    list: Vec<std::sync::Arc<Source>>,
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }

    /// Adds a source (see [`Source::new`]).
    pub fn add(&mut self, name: impl Into<String>, bytes: &[u8]) -> SourceId {
        self.push(Source::new(name, bytes.to_vec()))
    }

    /// Adds a source built elsewhere (on another thread).
    pub fn push(&mut self, source: Source) -> SourceId {
        self.list.push(std::sync::Arc::new(source));
        SourceId(self.list.len() as u32 - 1)
    }

    /// Replaces the text of a source added before.
    pub fn replace(&mut self, id: SourceId, source: Source) {
        self.list[id.0 as usize] = std::sync::Arc::new(source);
    }

    pub fn get(&self, id: SourceId) -> &Source {
        &self.list[id.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (SourceId, &Source)> {
        self.list.iter().enumerate().map(|(i, s)| (SourceId(i as u32), &**s))
    }

    /// 1-based line and column (bytes) of a location.
    pub fn line_col(&self, loc: Location) -> LineCol {
        self.get(loc.source).lines.line_col(loc.span.start)
    }

    /// 1-based line and column of a location, the column counted in `unit`.
    pub fn line_col_in(&self, loc: Location, unit: ColumnUnit) -> LineCol {
        let s = self.get(loc.source);
        s.lines.line_col_in(&s.text, loc.span.start, unit)
    }
}

fn lossless_offsets_utf8(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = Vec::with_capacity(bytes.len());
            let mut rest = bytes;
            loop {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.extend_from_slice(s.as_bytes());
                        break;
                    }
                    Err(e) => {
                        let good = e.valid_up_to();
                        out.extend_from_slice(&rest[..good]);
                        let bad = e.error_len().unwrap_or(rest.len() - good);
                        out.extend(std::iter::repeat_n(b'?', bad));
                        rest = &rest[good + bad..];
                    }
                }
            }
            String::from_utf8(out).unwrap_or_default()
        }
    }
}

/// A span in a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub source: SourceId,
    pub span: Span,
}

impl Location {
    pub fn new(source: SourceId, span: Span) -> Location {
        Location { source, span }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_bytes_keep_offsets() {
        let mut sources = Sources::new();
        let id = sources.add("x", b"a\xFF\xFEb\nc");
        let s = sources.get(id);
        assert_eq!(s.text, "a??b\nc");
        assert_eq!(sources.line_col(Location::new(id, Span::point(5))), LineCol { line: 2, column: 1 });
    }
}
