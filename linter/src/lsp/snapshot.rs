//! The result of the last analysis, as requests (hover, code actions) read
//! it. The scheduler installs a new snapshot before it publishes, so a request
//! that follows a publication sees what the publication shows.

use super::convert::Encoding;
use apiload_rules::{Diagnostic, Report, Source, SourceId, Sources};
use std::sync::Arc;

pub struct Snapshot {
    pub encoding: Encoding,
    pub sources: Sources,
    pub report: Report,
    /// By slot (= `SourceId`).
    pub files: Vec<SnapFile>,
    /// Findings by the slot of their primary location, as published.
    pub diagnostics: Vec<Vec<Diagnostic>>,
}

pub struct SnapFile {
    pub uri: Arc<str>,
    pub text: Option<Arc<[u8]>>,
}

impl Snapshot {
    pub fn uri(&self, id: SourceId) -> Option<lsp_types::Uri> {
        super::uri::parse(&self.files.get(id.0 as usize)?.uri)
    }

    pub fn source(&self, slot: usize) -> Option<&Source> {
        (slot < self.sources.len()).then(|| self.sources.get(SourceId(slot as u32)))
    }
}
