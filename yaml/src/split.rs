//! Cutting a YAML stream into documents before parsing, so that one broken
//! document costs only itself.
//!
//! A line that starts with `---` followed by a blank or the end of the line is
//! a document marker. YAML forbids such a line inside any scalar (the spec's
//! `c-forbidden`), so cutting there never splits a valid document. Directive
//! lines (`%YAML 1.2`) and the comments and blank lines around them, at the
//! start of the stream or after a `...` line, go with the document they
//! introduce.

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
    // Start of the run of directive, comment and blank lines that follows the
    // stream start or a `...` line: such a run belongs to the next document
    // (`%YAML 1.2` before `---`), so a cut goes before it.
    let mut prologue: Option<usize> = Some(0);
    let mut line_start = 0usize;
    while line_start < bytes.len() {
        let line_end = memchr_newline(&bytes[line_start..]).map_or(bytes.len(), |i| line_start + i);
        let line = &bytes[line_start..line_end];
        if is_marker(line, b"---") {
            let cut = prologue.unwrap_or(line_start);
            if cut > chunk_start {
                chunks.push(Chunk { start: chunk_start, end: cut });
                chunk_start = cut;
            }
            prologue = None;
        } else if is_marker(line, b"...") {
            prologue = Some(line_end + 1);
        } else if prologue.is_some() && !is_directive_comment_or_blank(line) {
            prologue = None;
        }
        line_start = line_end + 1;
    }
    if chunk_start < bytes.len() || chunks.is_empty() {
        chunks.push(Chunk { start: chunk_start, end: bytes.len() });
    }
    chunks
}

/// A `---` or `...` line: the marker followed by a blank or the end of the line.
fn is_marker(line: &[u8], marker: &[u8; 3]) -> bool {
    line.starts_with(marker) && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\r'))
}

fn is_directive_comment_or_blank(line: &[u8]) -> bool {
    if line.first() == Some(&b'%') {
        return true;
    }
    let rest = line.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\r')).map_or(&[][..], |i| &line[i..]);
    rest.is_empty() || rest[0] == b'#'
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

    #[test]
    fn directives_stay_with_their_document() {
        assert_eq!(texts("%YAML 1.2\n---\na: 1\n"), vec!["%YAML 1.2\n---\na: 1\n"]);
        assert_eq!(texts("# c\n\n%TAG ! x\n--- a\n--- b\n"), vec!["# c\n\n%TAG ! x\n--- a\n", "--- b\n"]);
        assert_eq!(texts("a: 1\n...\n# c\n%YAML 1.2\n---\nb: 2\n"), vec!["a: 1\n...\n", "# c\n%YAML 1.2\n---\nb: 2\n"]);
        // Without a `...` line a `%` line is content, not a directive.
        assert_eq!(texts("a: 1\n%x\n---\nb\n"), vec!["a: 1\n%x\n", "---\nb\n"]);
    }
}
