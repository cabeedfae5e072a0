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
    text: Text,
    pub lines: LineIndex,
}

/// What is kept of a source's text.
#[derive(Debug)]
enum Text {
    Whole(String),
    /// Only these runs of whole lines (sorted, disjoint), each with its byte
    /// offset, of an ASCII text of `len` bytes: where the engine reads the
    /// text itself (the scalars of ConfigMaps and Secrets, whose embedded
    /// configuration maps back to the file). An ASCII text needs no other
    /// text for lines and columns ([`LineIndex::line_col_of_ascii`]).
    Parts {
        len: u32,
        parts: Vec<(u32, Box<str>)>,
    },
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
        Source { name: name.into(), text: Text::Whole(text), lines }
    }

    /// A source that keeps only the lines `keep` covers, when its text is
    /// ASCII (otherwise all of it: columns in characters need the text).
    /// The text most of a large input holds is read once, to parse it, and
    /// never again; a front end that shows it later reads it back
    /// ([`Source::restore`]).
    pub fn with_parts(name: impl Into<String>, bytes: Vec<u8>, keep: &[Span]) -> Source {
        let whole = Source::new(name, bytes);
        let Text::Whole(text) = &whole.text else { return whole };
        if !whole.lines.is_ascii() {
            return whole;
        }
        let mut runs: Vec<(u32, u32)> = keep
            .iter()
            .map(|s| {
                let first = whole.lines.line_col(s.start).line;
                let last = whole.lines.line_col(s.end).line;
                (whole.lines.line_start(first), whole.lines.line_start(last + 1))
            })
            .collect();
        runs.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(runs.len());
        for (start, end) in runs {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let parts = merged.into_iter().map(|(s, e)| (s, text[s as usize..e as usize].into())).collect();
        Source { name: whole.name, text: Text::Parts { len: text.len() as u32, parts }, lines: whole.lines }
    }

    /// The whole text; `None` when only parts of it are kept.
    pub fn text(&self) -> Option<&str> {
        match &self.text {
            Text::Whole(t) => Some(t),
            Text::Parts { .. } => None,
        }
    }

    /// Length of the text in bytes (kept or not).
    pub fn len(&self) -> u32 {
        match &self.text {
            Text::Whole(t) => t.len() as u32,
            Text::Parts { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Text around `span` and the offset where it begins in the source: all
    /// of a whole text, or the kept run of lines that holds the span. Offsets
    /// into the excerpt plus the returned base are offsets into the source.
    pub fn excerpt(&self, span: Span) -> Option<(u32, &str)> {
        match &self.text {
            Text::Whole(t) => Some((0, t)),
            Text::Parts { parts, .. } => {
                let i = parts.partition_point(|(start, _)| *start <= span.start).checked_sub(1)?;
                let (start, text) = &parts[i];
                (span.end <= start + text.len() as u32).then_some((*start, &**text))
            }
        }
    }

    /// 1-based line and column of an offset, the column counted in `unit`.
    pub fn line_col_in(&self, offset: u32, unit: ColumnUnit) -> LineCol {
        match (&self.text, self.lines.line_col_of_ascii(offset, unit)) {
            (_, Some(lc)) => lc,
            (Text::Whole(t), None) => self.lines.line_col_in(t, offset, unit),
            // Only ASCII texts are kept in parts.
            (Text::Parts { .. }, None) => self.lines.line_col(offset),
        }
    }

    /// Takes the whole text back, read again from where it came from. It must
    /// be the text that was analysed: same length, same lines, same kept
    /// parts; otherwise the source keeps its parts and the error says why.
    pub fn restore(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        let Text::Parts { len, parts } = &self.text else { return Ok(()) };
        let again = Source::new(String::new(), bytes);
        let Text::Whole(text) = again.text else { return Ok(()) };
        let same = text.len() as u32 == *len
            && again.lines.line_count() == self.lines.line_count()
            && (1..=self.lines.line_count() as u32).all(|l| again.lines.line_start(l) == self.lines.line_start(l))
            && parts.iter().all(|(at, part)| text.get(*at as usize..*at as usize + part.len()) == Some(&**part));
        if !same {
            return Err(format!("it changed since it was read ({len} bytes then, {} now)", text.len()));
        }
        self.text = Text::Whole(text);
        Ok(())
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
        self.get(loc.source).line_col_in(loc.span.start, unit)
    }

    /// A source to change; `None` while a clone of this table shares it.
    pub fn get_mut(&mut self, id: SourceId) -> Option<&mut Source> {
        std::sync::Arc::get_mut(&mut self.list[id.0 as usize])
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
        assert_eq!(s.text(), Some("a??b\nc"));
        assert_eq!(sources.line_col(Location::new(id, Span::point(5))), LineCol { line: 2, column: 1 });
    }

    const TEXT: &str = "kind: A\nx: 1\n---\nkind: ConfigMap\ndata:\n  a: |\n    b\n---\nkind: B\n";

    #[test]
    fn parts_keep_whole_lines_and_answer_like_the_whole_text() {
        let whole = Source::new("f", TEXT.as_bytes().to_vec());
        let cm = TEXT.find("kind: ConfigMap").unwrap() as u32;
        let b = TEXT.find("    b").unwrap() as u32 + 4;
        let parts = Source::with_parts("f", TEXT.as_bytes().to_vec(), &[Span::new(cm + 2, b + 1)]);
        assert_eq!(parts.text(), None);
        assert_eq!(parts.len(), TEXT.len() as u32);
        let (base, run) = parts.excerpt(Span::new(b, b + 1)).unwrap();
        assert_eq!((base, run), (cm, "kind: ConfigMap\ndata:\n  a: |\n    b\n"));
        assert_eq!(parts.excerpt(Span::new(0, 2)), None);
        for offset in 0..TEXT.len() as u32 {
            for unit in [ColumnUnit::Utf8, ColumnUnit::Utf16, ColumnUnit::Chars] {
                assert_eq!(parts.line_col_in(offset, unit), whole.line_col_in(offset, unit));
            }
        }
    }

    #[test]
    fn a_text_that_is_not_ascii_is_kept_whole() {
        let s = Source::with_parts("f", "a: é\n".as_bytes().to_vec(), &[]);
        assert_eq!(s.text(), Some("a: é\n"));
    }

    #[test]
    fn restore_takes_back_the_same_text_only() {
        let mut s = Source::with_parts("f", TEXT.as_bytes().to_vec(), &[]);
        let changed = TEXT.replace("x: 1", "x: 22");
        let e = s.restore(changed.into_bytes()).unwrap_err();
        assert!(e.contains("changed since it was read"), "{e}");
        assert_eq!(s.text(), None);
        let same_length = TEXT.replace("kind: A\nx: 1", "kind: A\n\nx:1");
        assert!(s.restore(same_length.into_bytes()).is_err(), "the lines moved");
        s.restore(TEXT.as_bytes().to_vec()).unwrap();
        assert_eq!(s.text(), Some(TEXT));
    }
}
