//! Publishing diagnostics: the engine's findings converted to the editor's
//! positions, and `textDocument/publishDiagnostics` sent only for documents
//! whose set (or version, or URI) changed since the last publication.

use super::convert::{self, Encoding};
use super::settings::WorkspaceSettings;
use apiload_rules::{Diagnostic, SourceId, Sources};
use lsp_server::{Message, Notification};
use lsp_types::PublishDiagnosticsParams;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Sends a message to the client; `false` once the connection is gone.
pub type Out = Arc<dyn Fn(Message) -> bool + Send + Sync>;

/// A document as the publisher sees it.
pub struct Target<'a> {
    pub uri: &'a Arc<str>,
    pub version: Option<i32>,
}

struct Published {
    uri: Arc<str>,
    version: Option<i32>,
    diagnostics: Vec<lsp_types::Diagnostic>,
}

pub struct Publisher {
    out: Out,
    enc: Encoding,
    /// What the editor shows now, by slot.
    published: HashMap<usize, Published>,
}

impl Publisher {
    pub fn new(out: Out, enc: Encoding) -> Publisher {
        Publisher { out, enc, published: HashMap::new() }
    }

    /// The findings of every slot (of `only`, when given; the others are
    /// left empty) in the editor's terms, plus the errors of the
    /// configuration file in its own slot.
    pub fn convert(
        &self,
        by_slot: &[Vec<Diagnostic>],
        sources: &Sources,
        uri_of: &dyn Fn(SourceId) -> Option<lsp_types::Uri>,
        settings: (&WorkspaceSettings, Option<usize>),
        only: Option<&HashSet<usize>>,
    ) -> Vec<Vec<lsp_types::Diagnostic>> {
        let wanted = |i: usize| only.is_none_or(|s| s.contains(&i));
        let mut converted: Vec<Vec<lsp_types::Diagnostic>> = by_slot
            .iter()
            .enumerate()
            .map(|(i, ds)| match wanted(i) {
                true => ds.iter().map(|d| convert::diagnostic(d, sources, uri_of, self.enc)).collect(),
                false => Vec::new(),
            })
            .collect();
        let (settings, slot) = settings;
        if let Some(slot) = slot.filter(|&s| wanted(s)) {
            let source = sources.get(SourceId(slot as u32));
            for (span, message) in &settings.errors {
                converted[slot].push(lsp_types::Diagnostic {
                    range: convert::source_range(source, *span, self.enc),
                    severity: Some(lsp_types::DiagnosticSeverity::ERROR),
                    source: Some("apiload".into()),
                    message: message.clone(),
                    ..lsp_types::Diagnostic::default()
                });
            }
        }
        converted
    }

    /// Publishes a document's diagnostics when they (or its version, or its
    /// URI) changed since last time; `false` when the client is gone.
    pub fn publish(&mut self, slot: usize, f: Target<'_>, diagnostics: Vec<lsp_types::Diagnostic>) -> bool {
        let prev = self.published.get(&slot);
        if let Some(p) = prev
            && p.uri != *f.uri
            && !p.diagnostics.is_empty()
        {
            // The editor opened the file under another spelling of its URI.
            let old = p.uri.clone();
            if !self.send(&old, Vec::new(), None) {
                return false;
            }
        }
        let prev = self.published.get(&slot);
        let changed = match prev {
            None => !diagnostics.is_empty() || f.version.is_some(),
            Some(p) => p.diagnostics != diagnostics || p.uri != *f.uri || p.version != f.version,
        };
        if !changed {
            return true;
        }
        if !self.send(f.uri, diagnostics.clone(), f.version) {
            return false;
        }
        if diagnostics.is_empty() && f.version.is_none() {
            self.published.remove(&slot);
        } else {
            self.published.insert(slot, Published { uri: f.uri.clone(), version: f.version, diagnostics });
        }
        true
    }

    /// Sends any message to the client; `false` when it is gone.
    pub fn notify(&self, method: &str, params: impl serde::Serialize) -> bool {
        (self.out)(Message::Notification(Notification::new(method.into(), params)))
    }

    fn send(&self, uri: &str, diagnostics: Vec<lsp_types::Diagnostic>, version: Option<i32>) -> bool {
        let Some(uri) = super::uri::parse(uri) else { return true };
        self.notify("textDocument/publishDiagnostics", PublishDiagnosticsParams { uri, diagnostics, version })
    }
}
