//! Positions and diagnostics between the engine and the protocol.
//!
//! The engine counts byte offsets; LSP positions are 0-based lines and
//! characters counted in the negotiated encoding: UTF-8 when the client
//! offers it, else UTF-16 (the protocol's default).

use apiload_rules::{Diagnostic, Severity, Source, SourceId, Sources};
use apiload_yaml::{ColumnUnit, LineCol, LineIndex, Span};
use lsp_types::{DiagnosticRelatedInformation, NumberOrString, Position, PositionEncodingKind, Range};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

impl Encoding {
    fn unit(self) -> ColumnUnit {
        match self {
            Encoding::Utf8 => ColumnUnit::Utf8,
            Encoding::Utf16 => ColumnUnit::Utf16,
        }
    }

    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16 => "utf-16",
        }
    }
}

/// The encoding for a client's capabilities (the raw `capabilities` object):
/// UTF-8 when `general.positionEncodings` (LSP 3.17) or clangd's
/// `offsetEncoding` extension lists it, else UTF-16. The second value says
/// whether the client asked through `offsetEncoding`, which is then answered
/// the same way.
pub fn negotiate(capabilities: &serde_json::Value) -> (Encoding, bool) {
    let listed = |v: Option<&serde_json::Value>| -> Vec<String> {
        v.and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_ascii_lowercase)).collect())
            .unwrap_or_default()
    };
    let standard = listed(capabilities.pointer("/general/positionEncodings"));
    let clangd = listed(capabilities.get("offsetEncoding"));
    if standard.iter().any(|e| e == "utf-8") {
        (Encoding::Utf8, false)
    } else if clangd.iter().any(|e| e == "utf-8") {
        (Encoding::Utf8, true)
    } else {
        (Encoding::Utf16, !clangd.is_empty())
    }
}

/// The LSP position of a byte offset.
pub fn position(text: &str, lines: &LineIndex, offset: u32, enc: Encoding) -> Position {
    let lc = lines.line_col_in(text, offset, enc.unit());
    Position { line: lc.line - 1, character: lc.column - 1 }
}

pub fn range(text: &str, lines: &LineIndex, span: Span, enc: Encoding) -> Range {
    Range { start: position(text, lines, span.start, enc), end: position(text, lines, span.end.max(span.start), enc) }
}

/// The byte offset of an LSP position, clamped to its line (and to the text).
pub fn offset(text: &str, lines: &LineIndex, pos: Position, enc: Encoding) -> u32 {
    let line = pos.line.saturating_add(1);
    if line as usize > lines.line_count() {
        return text.len() as u32;
    }
    lines.offset_of(text, LineCol { line, column: pos.character.saturating_add(1) }, enc.unit())
}

pub fn source_range(source: &Source, span: Span, enc: Encoding) -> Range {
    // The language server keeps every text whole (`Source::new`).
    range(source.text().unwrap_or(""), &source.lines, span, enc)
}

pub fn severity(s: Severity) -> lsp_types::DiagnosticSeverity {
    match s {
        Severity::Error => lsp_types::DiagnosticSeverity::ERROR,
        Severity::Warning => lsp_types::DiagnosticSeverity::WARNING,
        Severity::Info => lsp_types::DiagnosticSeverity::INFORMATION,
    }
}

/// An engine diagnostic as the protocol shows it: the rule as `code` with a
/// link to its documentation, the fix in words after the message, and the
/// rest of the chain (binding, role rule, ConfigMap key) as related
/// information. `uri_of` names the document of a source (`None` drops a
/// related location that has none).
pub fn diagnostic(
    d: &Diagnostic,
    sources: &Sources,
    uri_of: &dyn Fn(SourceId) -> Option<lsp_types::Uri>,
    enc: Encoding,
) -> lsp_types::Diagnostic {
    let source = sources.get(d.location.source);
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\n\n");
        message.push_str(help);
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .related
        .iter()
        .filter_map(|r| {
            let uri = uri_of(r.location.source)?;
            let range = source_range(sources.get(r.location.source), r.location.span, enc);
            Some(DiagnosticRelatedInformation {
                location: lsp_types::Location { uri, range },
                message: r.message.clone(),
            })
        })
        .collect();
    lsp_types::Diagnostic {
        range: source_range(source, d.location.span, enc),
        severity: Some(severity(d.severity)),
        code: Some(NumberOrString::String(d.rule.id.to_string())),
        code_description: crate::lsp::uri::parse(&crate::render::help_uri(d.rule.id, d.rule.name))
            .map(|href| lsp_types::CodeDescription { href }),
        source: Some("apiload".into()),
        message,
        related_information: if related.is_empty() { None } else { Some(related) },
        tags: None,
        data: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&json!({})), (Encoding::Utf16, false));
        assert_eq!(negotiate(&json!({"general": {"positionEncodings": ["utf-16", "utf-8"]}})), (Encoding::Utf8, false));
        assert_eq!(
            negotiate(&json!({"general": {"positionEncodings": ["utf-32", "utf-16"]}})),
            (Encoding::Utf16, false)
        );
        assert_eq!(negotiate(&json!({"offsetEncoding": ["utf-8", "utf-16"]})), (Encoding::Utf8, true));
        assert_eq!(negotiate(&json!({"offsetEncoding": ["utf-16"]})), (Encoding::Utf16, true));
        assert_eq!(negotiate(&json!({"general": {"positionEncodings": "utf-8"}})), (Encoding::Utf16, false));
    }

    #[test]
    fn positions_round_trip_in_both_encodings() {
        let text = "# é 😀\nkey: {a: \"é😀\", b: x}\n";
        let lines = LineIndex::new(text.as_bytes());
        let x = text.rfind('x').unwrap() as u32;
        let p8 = position(text, &lines, x, Encoding::Utf8);
        let p16 = position(text, &lines, x, Encoding::Utf16);
        assert_eq!((p8.line, p8.character), (1, 22));
        assert_eq!((p16.line, p16.character), (1, 19));
        assert_eq!(offset(text, &lines, p8, Encoding::Utf8), x);
        assert_eq!(offset(text, &lines, p16, Encoding::Utf16), x);
        // Past the end of a line, or of the text: clamped, never a panic.
        assert_eq!(offset(text, &lines, Position { line: 0, character: 99 }, Encoding::Utf16), 9);
        assert_eq!(offset(text, &lines, Position { line: 99, character: 0 }, Encoding::Utf8), text.len() as u32);
        assert_eq!(position(text, &lines, 9999, Encoding::Utf16), Position { line: 2, character: 0 });
    }
}
