//! Scheduling the analysis, off the protocol thread.
//!
//! One thread runs the engine. A change wakes it; changes that arrive while it
//! works are coalesced into its next run. Each run re-parses only documents
//! whose text changed (`analysis`: parsed objects are kept per document and
//! shared with the engine, which re-joins the whole workspace: a ClusterRole
//! edited in one file changes the findings of a DaemonSet in another), then
//! publishes the diagnostics of every document whose set changed
//! (`publish`) — open documents first, and documents that now have none
//! included.
//!
//! While the workspace folders are still being read, or when thousands of
//! documents wait to be parsed, open documents are analysed first with what
//! is known, so the editor shows findings at once.

use super::analysis::{self, Parsed, parse_all};
use super::publish::{Out, Publisher, Target};
use super::settings::{self, WorkspaceSettings};
use super::snapshot::{SnapFile, Snapshot};
use super::store::{Role, Shared, Text};
use apiload_rules::object::ReadSource;
use apiload_rules::{Source, Sources};
use lsp_types::{LogMessageParams, MessageType, ShowMessageParams};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

pub enum Wake {
    Changed,
    Stop,
}

/// Documents waiting to be parsed above which open documents are analysed first.
const OPEN_FIRST: usize = 64;

struct FileView {
    uri: Arc<str>,
    name: Arc<str>,
    role: Role,
    text: Option<Text>,
    version: Option<i32>,
}

/// The workspace's `.apiload.yaml` as last read.
struct SettingsState {
    slot: Option<usize>,
    text: Option<Text>,
    settings: WorkspaceSettings,
}

pub struct Worker {
    shared: Arc<Shared>,
    publisher: Publisher,
    enc: super::convert::Encoding,
    parsed: Vec<Option<Parsed>>,
    settings: Option<SettingsState>,
    /// Whether the last run saw the whole workspace.
    was_complete: bool,
    started: Instant,
    timings: bool,
}

impl Worker {
    pub fn new(shared: Arc<Shared>, out: Out, enc: super::convert::Encoding) -> Worker {
        Worker {
            shared,
            publisher: Publisher::new(out, enc),
            enc,
            parsed: Vec::new(),
            settings: None,
            was_complete: false,
            started: Instant::now(),
            timings: std::env::var_os("APILOAD_LSP_TIMINGS").is_some(),
        }
    }

    pub fn run(mut self, wake: Receiver<Wake>) {
        while let Ok(w) = wake.recv() {
            if matches!(w, Wake::Stop) {
                return;
            }
            loop {
                match wake.try_recv() {
                    Ok(Wake::Changed) => {}
                    Ok(Wake::Stop) | Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => break,
                }
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.analyze()));
            match result {
                Ok(true) => {}
                Ok(false) => return, // the client is gone
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("unknown");
                    // A bug, not the input's fault: keep serving with the last results.
                    self.log(MessageType::ERROR, format!("apiload: the analysis failed ({what}); please report it"));
                    self.parsed.clear();
                }
            }
        }
    }

    fn log(&self, typ: MessageType, message: String) -> bool {
        self.publisher.notify("window/logMessage", LogMessageParams { typ, message })
    }

    fn view(&self) -> (Vec<FileView>, bool, Option<PathBuf>) {
        let store = self.shared.store();
        let files = store
            .files
            .iter()
            .map(|f| FileView {
                uri: f.uri.clone(),
                name: f.name.clone(),
                role: f.role,
                text: f.text().cloned(),
                version: f.version(),
            })
            .collect();
        (files, store.scanning == 0, store.config_path.clone())
    }

    /// One run; `false` when the client is gone.
    fn analyze(&mut self) -> bool {
        let t0 = Instant::now();
        let (files, scanned, config_path) = self.view();
        self.refresh_settings(&files, config_path);
        let namespace: Arc<str> = self.setup_namespace();
        self.parsed.resize_with(files.len(), || None);
        let mut todo = Vec::new();
        for (i, f) in files.iter().enumerate() {
            match (&f.text, f.role) {
                (Some(text), Role::Manifest) => {
                    let fresh =
                        self.parsed[i].as_ref().is_some_and(|p| Arc::ptr_eq(&p.text, text) && p.namespace == namespace);
                    if !fresh {
                        todo.push((i, text.clone()));
                    }
                }
                _ => self.parsed[i] = None,
            }
        }
        let open_todo: Vec<(usize, Text)> = todo.iter().filter(|(i, _)| files[*i].version.is_some()).cloned().collect();
        let has_open = files.iter().any(|f| f.version.is_some());
        if has_open && (!scanned || (todo.len() > OPEN_FIRST && !open_todo.is_empty())) {
            // Open documents first, with what is known so far.
            for (i, p) in parse_all(open_todo, &namespace) {
                self.parsed[i] = Some(p);
            }
            todo.retain(|(i, _)| files[*i].version.is_none());
            let reads = self.parsed.iter().flatten().map(|p| p.read.clone()).collect();
            if !self.pass(&files, sources(&files), reads, false, t0) {
                return false;
            }
        }
        let t1 = Instant::now();
        let n = todo.len();
        // While the changed documents are parsed, another thread builds the
        // engine's sources and copies the objects of the others.
        let changed: std::collections::HashSet<usize> = todo.iter().map(|(i, _)| *i).collect();
        let cache = &self.parsed;
        let (parsed, prepared) = std::thread::scope(|s| {
            let built = scanned.then(|| {
                s.spawn(|| {
                    let reads: Vec<Option<ReadSource>> = cache
                        .iter()
                        .enumerate()
                        .map(|(i, p)| p.as_ref().filter(|_| !changed.contains(&i)).map(|p| p.read.clone()))
                        .collect();
                    (sources(&files), reads)
                })
            });
            let parsed = parse_all(todo, &namespace);
            (parsed, built.map(|b| b.join()))
        });
        // Freed after publishing: dropping trees takes time.
        let mut replaced = Vec::with_capacity(parsed.len());
        for (i, p) in parsed {
            replaced.push(self.parsed[i].replace(p));
        }
        let parse_ms = t1.elapsed();
        let (sources, mut reads) = match prepared {
            None => {
                self.was_complete = false;
                return true; // the workspace is still being read
            }
            Some(Ok(prepared)) => prepared,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        };
        if self.timings {
            eprintln!("apiload lsp: parsed {n} documents (and built the sources) in {parse_ms:?}");
        }
        for i in changed {
            reads[i] = self.parsed[i].as_ref().map(|p| p.read.clone());
        }
        let ok = self.pass(&files, sources, reads.into_iter().flatten().collect(), true, t0);
        drop(replaced);
        if ok && !self.was_complete {
            let objects: usize = self.parsed.iter().flatten().map(|p| p.read.objects.len()).sum();
            let documents = files.iter().filter(|f| f.role == Role::Manifest && f.text.is_some()).count();
            self.log(
                MessageType::INFO,
                format!(
                    "apiload: workspace analysed: {documents} manifests, {objects} objects, in {} ms since start",
                    self.started.elapsed().as_millis()
                ),
            );
        }
        self.was_complete = ok;
        ok
    }

    fn setup_namespace(&self) -> Arc<str> {
        self.settings
            .as_ref()
            .map_or_else(|| "default".into(), |c| c.settings.setup.options.default_namespace.as_str().into())
    }

    fn refresh_settings(&mut self, files: &[FileView], path: Option<PathBuf>) {
        let slot = files.iter().position(|f| f.role == Role::Config);
        let text = slot.and_then(|s| files[s].text.clone());
        let same = self.settings.as_ref().is_some_and(|c| {
            c.slot == slot
                && match (&c.text, &text) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                }
        });
        if same {
            return;
        }
        let loaded = settings::load(slot.unwrap_or(0), path.as_deref(), text.as_deref());
        for m in &loaded.messages {
            self.publisher.notify(
                "window/showMessage",
                ShowMessageParams { typ: MessageType::WARNING, message: format!("apiload: {m}") },
            );
        }
        self.settings = Some(SettingsState { slot, text, settings: loaded });
    }

    /// Runs the engine over every parsed document and publishes. A partial
    /// pass (`complete` false) publishes open documents only.
    /// `reads` are those of every parsed document, in the order of their slots.
    fn pass(
        &mut self,
        files: &[FileView],
        sources: Sources,
        reads: Vec<ReadSource>,
        complete: bool,
        t0: Instant,
    ) -> bool {
        let Some(state) = &self.settings else { return true };
        let t1 = Instant::now();
        let (report, by_slot) = analysis::run(&state.settings, &sources, reads, complete);
        let t3 = Instant::now();
        let uris: Vec<Option<lsp_types::Uri>> = files.iter().map(|f| super::uri::parse(&f.uri)).collect();
        let mut converted = self.publisher.convert(&by_slot, &sources, &uris, (&state.settings, state.slot));
        // Requests that follow a publication must see what it shows: the
        // snapshot goes first.
        let snapshot = Snapshot {
            encoding: self.enc,
            sources,
            report,
            files: files.iter().map(|f| SnapFile { uri: f.uri.clone(), text: f.text.clone() }).collect(),
            diagnostics: by_slot,
        };
        let previous = self.shared.set_snapshot(Arc::new(snapshot));
        let t4 = Instant::now();
        // Open documents first: they are what the user looks at.
        let mut order: Vec<usize> = (0..files.len()).filter(|&i| files[i].version.is_some()).collect();
        if complete {
            order.extend((0..files.len()).filter(|&i| files[i].version.is_none()));
        }
        for i in order {
            let target = Target { uri: &files[i].uri, version: files[i].version };
            if !self.publisher.publish(i, target, std::mem::take(&mut converted[i])) {
                return false;
            }
        }
        let t5 = Instant::now();
        // Freed once the editor has its diagnostics.
        drop(previous);
        if self.timings {
            eprintln!(
                "apiload lsp: {} pass over {} documents: engine {:?}, convert {:?}, publish {:?}; {:?} since wake",
                if complete { "full" } else { "open-first" },
                files.len(),
                t3 - t1,
                t4 - t3,
                t5 - t4,
                t5 - t0
            );
        }
        true
    }
}

/// The engine's sources: slot `i` is `SourceId(i)`. Only manifests and the
/// configuration carry their text (findings and embedded configuration point
/// into them).
fn sources(files: &[FileView]) -> Sources {
    let mut sources = Sources::new();
    for f in files {
        let bytes = match (&f.text, f.role) {
            (Some(t), Role::Manifest | Role::Config) => t.to_vec(),
            _ => Vec::new(),
        };
        sources.push(Source::new(f.name.to_string(), bytes));
    }
    sources
}
