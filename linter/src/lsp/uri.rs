//! `file:` URIs and paths. Documents are keyed by path, so that the same file
//! reached through differently escaped URIs (`%3A` or `:`) is one document;
//! documents that are not files (`untitled:`) are keyed by their URI.

use std::path::{Path, PathBuf};

/// The key of a document: its path for `file:` URIs, else the URI itself.
pub fn key(uri: &str) -> String {
    match to_path(uri) {
        Some(p) => p.display().to_string(),
        None => uri.to_string(),
    }
}

/// The path of a `file:` URI (`file:///a/b`, `file://localhost/a/b`).
pub fn to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://").or_else(|| uri.strip_prefix("FILE://"))?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return None; // a remote host
    }
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let bytes = decode(rest)?;
    let text = String::from_utf8(bytes).ok()?;
    Some(PathBuf::from(text))
}

fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The `file:` URI of an absolute path; everything but unreserved characters
/// and `/` is percent-encoded.
pub fn from_path(path: &Path) -> String {
    let mut out = String::from("file://");
    let text = path.to_string_lossy();
    if !text.starts_with('/') {
        out.push('/');
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses a URI for lsp-types; `None` for text that is not a URI.
pub fn parse(uri: &str) -> Option<lsp_types::Uri> {
    uri.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = Path::new("/tmp/a b/ünï😀/x:y.yaml");
        let uri = from_path(p);
        assert_eq!(uri, "file:///tmp/a%20b/%C3%BCn%C3%AF%F0%9F%98%80/x%3Ay.yaml");
        assert_eq!(to_path(&uri).as_deref(), Some(p));
        assert!(parse(&uri).is_some());
        assert_eq!(key("file:///tmp/x%3Ay.yaml"), key("file:///tmp/x:y.yaml"));
        assert_eq!(to_path("file://localhost/etc/x.yaml").as_deref(), Some(Path::new("/etc/x.yaml")));
        assert_eq!(to_path("untitled:Untitled-1"), None);
        assert_eq!(to_path("file://server/share/x"), None);
        assert_eq!(to_path("file:///bad%zz"), None);
        assert_eq!(key("untitled:Untitled-1"), "untitled:Untitled-1");
    }
}
