//! Cutting a YAML stream into documents before parsing, so that one broken
//! document costs only itself.
//!
//! A line that starts with `---` followed by a blank or the end of the line is
//! a document marker. YAML forbids such a line inside any scalar (the spec's
//! `c-forbidden`), so cutting there never splits a valid document.

/// A slice of the stream holding one or more documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Byte offset of the chunk in the stream.
    pub start: usize,
    pub end: usize,
}

pub fn split_documents(bytes: &[u8]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut chunk_start = 0usize;
    let mut line_start = 0usize;
    while line_start < bytes.len() {
        let line_end = memchr_newline(&bytes[line_start..]).map_or(bytes.len(), |i| line_start + i);
        let line = &bytes[line_start..line_end];
        if line_start > chunk_start && is_document_marker(line) {
            chunks.push(Chunk { start: chunk_start, end: line_start });
            chunk_start = line_start;
        }
        line_start = line_end + 1;
    }
    if chunk_start < bytes.len() || chunks.is_empty() {
        chunks.push(Chunk { start: chunk_start, end: bytes.len() });
    }
    chunks
}

fn is_document_marker(line: &[u8]) -> bool {
    line.starts_with(b"---") && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\r'))
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<&str> {
        split_documents(s.as_bytes()).iter().map(|c| &s[c.start..c.end]).collect()
    }

    #[test]
    fn splits_at_markers_only() {
        assert_eq!(texts("a: 1\n---\nb: 2\n"), vec!["a: 1\n", "---\nb: 2\n"]);
        assert_eq!(
            texts("---\na: 1\n--- # c\nb: |\n  ---\n---x: 1\n"),
            vec!["---\na: 1\n", "--- # c\nb: |\n  ---\n---x: 1\n"]
        );
        assert_eq!(texts(""), vec![""]);
        assert_eq!(texts("---"), vec!["---"]);
        assert_eq!(texts("a\r\n---\r\nb"), vec!["a\r\n", "---\r\nb"]);
    }
}
