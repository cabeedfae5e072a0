//! What can go wrong while loading, with the span it went wrong at.

use crate::span::Span;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// Not YAML (or JSON) at all, or broken YAML.
    Syntax,
    /// Bytes that are not UTF-8.
    Encoding,
    /// A mapping key given twice. The API server rejects such objects under
    /// strict field validation (kubectl's default since 1.27).
    DuplicateKey,
    /// A mapping key that is not a scalar, a bad merge or a tag that does not fit.
    Structure,
    /// Input larger than [`crate::Limits::max_bytes`], or a document whose
    /// aliases expand to more scalar text than that.
    TooLarge,
    /// Nesting deeper than [`crate::Limits::max_depth`], aliases expanded.
    TooDeep,
    /// More nodes (aliases expanded) than [`crate::Limits::max_nodes`], or
    /// anchors keeping copies of more than that.
    TooManyNodes,
}

/// A load error: the document it happened in is lost, the others are not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub kind: LoadErrorKind,
    pub message: String,
    pub span: Span,
    /// Other places worth showing (the first occurrence of a duplicate key).
    pub related: Vec<(Span, String)>,
}

impl LoadError {
    pub fn new(kind: LoadErrorKind, span: Span, message: impl Into<String>) -> LoadError {
        LoadError { kind, message: message.into(), span, related: Vec::new() }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}
