//! Byte spans and their translation to lines and columns.

/// A half-open byte range `[start, end)` in one source text.
///
/// Offsets are `u32`: the loader refuses inputs larger than 4 GiB long before
/// that matters (see [`crate::Limits::max_bytes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub const fn new(start: u32, end: u32) -> Span {
        Span { start, end }
    }

    /// An empty span at `offset`.
    pub const fn point(offset: u32) -> Span {
        Span { start: offset, end: offset }
    }

    pub fn len(&self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Smallest span covering both.
    pub fn cover(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// A 1-based line and 1-based column, the column counted in bytes of UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: u32,
    pub column: u32,
}

/// How columns are counted when a position is shown to someone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnUnit {
    /// Bytes of UTF-8 (LSP `utf-8`).
    Utf8,
    /// UTF-16 code units (LSP's default).
    Utf16,
    /// Unicode scalar values (what people and most terminals count).
    Chars,
}

/// Start offsets of every line of a text, for offset → line/column lookups.
#[derive(Clone, Debug, Default)]
pub struct LineIndex {
    line_starts: Vec<u32>,
    len: u32,
    /// Every byte is ASCII: a column is the same in every unit, and needs no text.
    ascii: bool,
}

impl LineIndex {
    pub fn new(text: &[u8]) -> LineIndex {
        let mut line_starts = Vec::with_capacity(text.len() / 32 + 1);
        line_starts.push(0);
        for (i, b) in text.iter().enumerate() {
            if *b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        // Kept for the whole analysis: no spare capacity.
        line_starts.shrink_to_fit();
        LineIndex { line_starts, len: text.len() as u32, ascii: text.is_ascii() }
    }

    /// Whether the text was all ASCII (columns then need no text: see
    /// [`LineIndex::line_col_of_ascii`]).
    pub fn is_ascii(&self) -> bool {
        self.ascii
    }

    /// [`LineIndex::line_col_in`] without the text, when the answer does not
    /// depend on it: byte columns, or any column of an ASCII text (one byte,
    /// one character, one UTF-16 unit). `None` otherwise.
    pub fn line_col_of_ascii(&self, offset: u32, unit: ColumnUnit) -> Option<LineCol> {
        (self.ascii || unit == ColumnUnit::Utf8).then(|| self.line_col(offset))
    }

    /// Number of lines (a text without a trailing newline still has its last line).
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Byte offset where 1-based `line` starts; clamps past the end.
    pub fn line_start(&self, line: u32) -> u32 {
        let i = (line.max(1) - 1) as usize;
        self.line_starts.get(i).copied().unwrap_or(self.len)
    }

    /// 1-based line and 1-based byte column of `offset`.
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(self.len);
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        LineCol { line: line as u32 + 1, column: offset - self.line_starts[line] + 1 }
    }

    /// 1-based line and 1-based column of `offset`, the column counted in `unit`.
    /// `text` must be the text this index was built from.
    pub fn line_col_in(&self, text: &str, offset: u32, unit: ColumnUnit) -> LineCol {
        if let Some(lc) = self.line_col_of_ascii(offset, unit) {
            return lc;
        }
        let lc = self.line_col(offset);
        let start = self.line_start(lc.line) as usize;
        let end = (start + lc.column as usize - 1).min(text.len());
        let prefix = text.get(start..end).unwrap_or("");
        let column = match unit {
            ColumnUnit::Utf16 => prefix.chars().map(char::len_utf16).sum::<usize>(),
            _ => prefix.chars().count(),
        };
        LineCol { line: lc.line, column: column as u32 + 1 }
    }

    /// Byte offset of a 1-based line and 1-based column counted in `unit`,
    /// clamped to the line. Inverse of [`LineIndex::line_col_in`].
    pub fn offset_of(&self, text: &str, pos: LineCol, unit: ColumnUnit) -> u32 {
        let start = self.line_start(pos.line) as usize;
        let line_end = text[start.min(text.len())..].find('\n').map_or(text.len(), |i| start + i);
        let line = &text[start.min(text.len())..line_end];
        let want = pos.column.saturating_sub(1) as usize;
        let mut counted = 0usize;
        for (i, c) in line.char_indices() {
            if counted >= want {
                return (start + i) as u32;
            }
            counted += match unit {
                ColumnUnit::Utf8 => c.len_utf8(),
                ColumnUnit::Utf16 => c.len_utf16(),
                ColumnUnit::Chars => 1,
            };
        }
        line_end as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_of_offsets() {
        let idx = LineIndex::new(b"ab\ncd\n\nef");
        assert_eq!(idx.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(idx.line_col(2), LineCol { line: 1, column: 3 });
        assert_eq!(idx.line_col(3), LineCol { line: 2, column: 1 });
        assert_eq!(idx.line_col(6), LineCol { line: 3, column: 1 });
        assert_eq!(idx.line_col(8), LineCol { line: 4, column: 2 });
        assert_eq!(idx.line_col(99), LineCol { line: 4, column: 3 });
    }

    #[test]
    fn columns_in_other_units() {
        let text = "a: \"é😀x\"";
        let idx = LineIndex::new(text.as_bytes());
        let x = text.find('x').unwrap() as u32;
        assert_eq!(idx.line_col_in(text, x, ColumnUnit::Utf8).column, 11);
        assert_eq!(idx.line_col_in(text, x, ColumnUnit::Utf16).column, 8);
        assert_eq!(idx.line_col_in(text, x, ColumnUnit::Chars).column, 7);
        for unit in [ColumnUnit::Utf8, ColumnUnit::Utf16, ColumnUnit::Chars] {
            let lc = idx.line_col_in(text, x, unit);
            assert_eq!(idx.offset_of(text, lc, unit), x);
        }
        assert!(!idx.is_ascii());
        assert_eq!(idx.line_col_of_ascii(x, ColumnUnit::Chars), None);
        assert_eq!(idx.line_col_of_ascii(x, ColumnUnit::Utf8).map(|lc| lc.column), Some(11));
    }

    #[test]
    fn ascii_columns_need_no_text() {
        let text = "a: b\n  key: \"x\"\n";
        let idx = LineIndex::new(text.as_bytes());
        assert!(idx.is_ascii());
        for offset in 0..=text.len() as u32 + 2 {
            for unit in [ColumnUnit::Utf8, ColumnUnit::Utf16, ColumnUnit::Chars] {
                let slow = {
                    let lc = idx.line_col(offset);
                    let start = idx.line_start(lc.line) as usize;
                    let end = (start + lc.column as usize - 1).min(text.len());
                    LineCol { line: lc.line, column: text[start..end].chars().count() as u32 + 1 }
                };
                assert_eq!(idx.line_col_of_ascii(offset, unit), Some(slow), "offset {offset} {unit:?}");
            }
        }
    }
}
