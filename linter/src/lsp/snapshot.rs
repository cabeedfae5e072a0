//! The result of the last analysis, as requests (hover, code actions) read
//! it. The scheduler installs a new snapshot before it publishes, so a request
//! that follows a publication sees what the publication shows.
//!
//! After incremental runs the workloads' analyses come from several engine
//! runs: the last full one and the re-analyses since, each of which is
//! current for the workloads it was run for (`Part::fresh`) unless a newer
//! run re-analysed them again.

use super::convert::Encoding;
use apiload_rules::review::ObjectKey;
use apiload_rules::{Diagnostic, Object, ObjectRef, Options, Report, Source, SourceId, Sources, WorkloadAnalysis};
use std::collections::HashSet;
use std::sync::Arc;

pub struct Snapshot {
    pub encoding: Encoding,
    pub sources: Sources,
    /// Engine runs, newest first; never empty.
    pub parts: Vec<Part>,
    /// By slot (= `SourceId`).
    pub files: Vec<SnapFile>,
    /// Findings by the slot of their primary location, as published.
    pub diagnostics: Vec<Vec<Diagnostic>>,
}

/// One engine run and the workloads whose analysis in it is current.
#[derive(Clone)]
pub struct Part {
    pub report: Arc<Report>,
    /// `None`: every workload of the run (a full analysis).
    pub fresh: Option<Arc<HashSet<ObjectKey>>>,
}

impl Part {
    pub fn whole(report: Report) -> Vec<Part> {
        vec![Part { report: Arc::new(report), fresh: None }]
    }
}

pub struct SnapFile {
    pub uri: Arc<str>,
    pub text: Option<Arc<[u8]>>,
}

pub fn key_of(r: &ObjectRef) -> ObjectKey {
    ObjectKey::new(&r.kind, r.namespace.as_deref().unwrap_or(""), &r.name)
}

impl Snapshot {
    pub fn uri(&self, id: SourceId) -> Option<lsp_types::Uri> {
        super::uri::parse(&self.files.get(id.0 as usize)?.uri)
    }

    pub fn source(&self, slot: usize) -> Option<&Source> {
        (slot < self.sources.len()).then(|| self.sources.get(SourceId(slot as u32)))
    }

    pub fn options(&self) -> &Options {
        &self.parts[0].report.options
    }

    /// Every workload's current analysis, with its object.
    pub fn analyses(&self) -> Vec<(&WorkloadAnalysis, &Object)> {
        let mut claimed: HashSet<ObjectKey> = HashSet::new();
        let mut out = Vec::new();
        for part in &self.parts {
            let inv = &part.report.inventory;
            for a in &part.report.analyses {
                let obj = inv.object(inv.workloads[a.workload].object);
                let key = ObjectKey::of(obj);
                let current = part.fresh.as_ref().is_none_or(|f| f.contains(&key));
                if current && !claimed.contains(&key) {
                    out.push((a, obj));
                }
            }
            if let Some(f) = &part.fresh {
                claimed.extend(f.iter().cloned());
            } else {
                break; // a full run: older ones are superseded
            }
        }
        out
    }

    /// The object of a workload, as the last analysis of it read it.
    pub fn workload_object(&self, w: &ObjectRef) -> Option<&Object> {
        self.analyses().into_iter().map(|(_, o)| o).find(|o| o.reference() == *w)
    }
}
