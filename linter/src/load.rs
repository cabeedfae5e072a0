//! Reading the user's paths: files, folders (recursively) and stdin, loaded in
//! parallel, each into a source and its documents.

use apiload_rules::Source;
use apiload_rules::object::worth_analyzing;
use apiload_yaml::{Document, Limits, LoadError, load_stream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One input that was read.
pub struct Loaded {
    pub source: Source,
    pub documents: Vec<Result<Document, LoadError>>,
    /// Whether any document was a Kubernetes object (`apiVersion` and
    /// `kind`), of a kind the analysis reads or not: only those it reads stay
    /// in `documents`.
    pub holds_objects: bool,
}

/// How much of the files' text to keep once they are parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepText {
    /// All of it: for commands that edit the files or show every line.
    Whole,
    /// What the analysis reads (the documents that may hold configuration:
    /// ConfigMaps, Secrets and Lists); the rest is read back only for the
    /// files a report shows (`Source::restore`). Most of a large input's
    /// text is never needed again once it is parsed.
    WhatTheAnalysisReads,
}

/// Whether a document is a Kubernetes object, of a kind the analysis reads or not.
pub fn is_object(d: &Document) -> bool {
    d.root.get("apiVersion").is_some() && d.root.get("kind").is_some()
}

/// Kinds whose scalars the analysis reads as text of their own (an agent's
/// configuration in a ConfigMap), mapping offsets back into the file.
fn holds_embedded_text(root: &apiload_yaml::Node) -> bool {
    match root.get("kind").and_then(apiload_yaml::Node::as_str) {
        Some(kind) => matches!(kind, "ConfigMap" | "Secret") || kind.ends_with("List"),
        None => false,
    }
}

pub use apiload_yaml::files::{ReadError, Skipped, Walk, expand, walk};

/// Name under which stdin appears in findings.
pub const STDIN_NAME: &str = "<stdin>";

fn read(path: &Path, limits: &Limits) -> Result<(String, Vec<u8>), ReadError> {
    let name = if path == Path::new("-") { STDIN_NAME.to_string() } else { path.display().to_string() };
    match apiload_yaml::files::read_bounded(path, limits.max_bytes) {
        Ok(bytes) => Ok((name, bytes)),
        Err(e) => Err(ReadError { path: name, message: e.to_string() }),
    }
}

/// Reads and parses every file, using all cores; results keep the files' order.
pub fn load_all(files: &[PathBuf], limits: &Limits, keep: KeepText) -> (Vec<Loaded>, Vec<ReadError>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Loaded, ReadError>>>> = files.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let result = read(path, limits).map(|(name, bytes)| {
                        let mut documents = load_stream(&bytes, limits);
                        let holds_objects = documents.iter().any(|d| d.as_ref().is_ok_and(is_object));
                        // Keep memory to what the analysis reads: drop Services,
                        // CRDs and the like right away (Lists and broken
                        // documents stay; the engine reports the latter).
                        documents.retain(|d| d.as_ref().map_or(true, |doc| worth_analyzing(&doc.root)));
                        let source = match keep {
                            // Stdin cannot be read again.
                            _ if name == STDIN_NAME => Source::new(name, bytes),
                            KeepText::Whole => Source::new(name, bytes),
                            KeepText::WhatTheAnalysisReads => {
                                let read: Vec<_> = documents
                                    .iter()
                                    .filter_map(|d| d.as_ref().ok())
                                    .filter(|d| holds_embedded_text(&d.root))
                                    .map(|d| d.root.span)
                                    .collect();
                                Source::with_parts(name, bytes, &read)
                            }
                        };
                        Loaded { source, documents, holds_objects }
                    });
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut loaded = Vec::with_capacity(files.len());
    let mut errors = Vec::new();
    for slot in slots {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(l)) => loaded.push(l),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
    }
    (loaded, errors)
}
