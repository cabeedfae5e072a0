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
use super::incremental::{Baseline, Change, Key};
use super::publish::{Out, Publisher, Target};
use super::settings::{self, WorkspaceSettings};
use super::snapshot::{Part, SnapFile, Snapshot};
use super::store::{Role, Shared, Text};
use apiload_rules::object::ReadSource;
use apiload_rules::{Diagnostic, Source, Sources};
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
    /// Bumped whenever the settings are read again: findings computed
    /// under other settings cannot be updated, only recomputed.
    settings_generation: u64,
    /// The last analysis, for the next edit to update (`incremental`).
    baseline: Option<Baseline>,
    /// The findings of the last full run, for its baseline.
    last_full: Option<Vec<Vec<Diagnostic>>>,
    /// The engine runs behind the current findings, newest first.
    parts: Vec<Part>,
    source_cache: SourceCache,
    /// Reached workloads above which an edit is analysed in full
    /// (`None`: half of the workloads).
    fall_back_above: Option<usize>,
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
            settings_generation: 0,
            baseline: None,
            last_full: None,
            parts: Vec::new(),
            fall_back_above: None,
            source_cache: SourceCache::default(),
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
                    self.baseline = None;
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
        let key = Key {
            settings: self.settings_generation,
            namespace: namespace.clone(),
            today: apiload_rules::setup::today(),
        };
        self.parsed.resize_with(files.len(), || None);
        let mut todo = Vec::new();
        // Documents that stopped being manifests (or lost their text), with what they held.
        let mut dropped: Vec<(usize, Parsed)> = Vec::new();
        for (i, f) in files.iter().enumerate() {
            match (&f.text, f.role) {
                (Some(text), Role::Manifest) => {
                    let fresh =
                        self.parsed[i].as_ref().is_some_and(|p| Arc::ptr_eq(&p.text, text) && p.namespace == namespace);
                    if !fresh {
                        todo.push((i, text.clone()));
                    }
                }
                _ => {
                    if let Some(p) = self.parsed[i].take() {
                        dropped.push((i, p));
                    }
                }
            }
        }
        let open_todo: Vec<(usize, Text)> = todo.iter().filter(|(i, _)| files[*i].version.is_some()).cloned().collect();
        let has_open = files.iter().any(|f| f.version.is_some());
        if has_open && (!scanned || (todo.len() > OPEN_FIRST && !open_todo.is_empty())) {
            // Open documents first, with what is known so far. Their old
            // readings are gone: the next complete run is a full one.
            self.baseline = None;
            for (i, p) in parse_all(open_todo, &namespace) {
                self.parsed[i] = Some(p);
            }
            todo.retain(|(i, _)| files[*i].version.is_none());
            let reads = self.parsed.iter().flatten().map(|p| p.read.clone()).collect();
            let built = sources(&files, &self.source_cache);
            let srcs = built.sources.clone();
            self.source_cache = built;
            if !self.full_pass(&files, srcs, reads, false, t0) {
                return false;
            }
        }
        let incremental = scanned && self.baseline.as_ref().is_some_and(|b| b.key == key);
        let t1 = Instant::now();
        let n = todo.len();
        // While the changed documents are parsed, another thread builds the
        // engine's sources and, for a full run, copies the objects of the others.
        let changed: std::collections::HashSet<usize> = todo.iter().map(|(i, _)| *i).collect();
        let cache = &self.parsed;
        let source_cache = &self.source_cache;
        let (parsed, prepared) = std::thread::scope(|s| {
            let built = scanned.then(|| {
                s.spawn(|| {
                    let reads: Option<Vec<Option<ReadSource>>> = (!incremental).then(|| {
                        cache
                            .iter()
                            .enumerate()
                            .map(|(i, p)| p.as_ref().filter(|_| !changed.contains(&i)).map(|p| p.read.clone()))
                            .collect()
                    });
                    (sources(&files, source_cache), reads)
                })
            });
            let parsed = parse_all(todo, &namespace);
            (parsed, built.map(|b| b.join()))
        });
        // Freed after publishing: dropping trees takes time.
        let mut replaced: Vec<(usize, Option<Parsed>)> = Vec::with_capacity(parsed.len());
        for (i, p) in parsed {
            replaced.push((i, self.parsed[i].replace(p)));
        }
        let parse_ms = t1.elapsed();
        let (built, reads) = match prepared {
            None => {
                self.was_complete = false;
                self.baseline = None;
                return true; // the workspace is still being read
            }
            Some(Ok(prepared)) => prepared,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        };
        let sources = built.sources.clone();
        self.source_cache = built;
        if self.timings {
            eprintln!("apiload lsp: parsed {n} documents (and built the sources) in {parse_ms:?}");
        }
        let mut sources = Some(sources);
        let mut fallback = None;
        if incremental && let Some(mut baseline) = self.baseline.take() {
            let changes: Vec<Change<'_>> = replaced
                .iter()
                .map(|(i, old)| Change {
                    slot: *i,
                    old: old.as_ref().map(|p| &p.read),
                    new: self.parsed[*i].as_ref().map(|p| &p.read),
                })
                .chain(dropped.iter().map(|(i, p)| Change { slot: *i, old: Some(&p.read), new: None }))
                .collect();
            let changed_slots: std::collections::HashSet<usize> = changes.iter().map(|c| c.slot).collect();
            let view: Vec<Option<&ReadSource>> = self.parsed.iter().map(|p| p.as_ref().map(|p| &p.read)).collect();
            let Some(state) = &self.settings else { return true };
            let setup = &state.settings.setup;
            let t2 = Instant::now();
            let srcs = sources.as_ref().expect("the sources");
            let step = baseline.update(setup, policy(setup, &key), srcs, &view, &changes, self.fall_back_above);
            drop(changes);
            match step {
                Ok(step) => {
                    let engine = t2.elapsed();
                    let label = format!(
                        "incremental pass ({} workloads reached, {} re-analysed, {} objects)",
                        step.reached,
                        step.fresh.len(),
                        step.objects
                    );
                    let mut slots = step.touched;
                    slots.extend(pointing_into(&baseline.by_slot, &changed_slots));
                    let part = Part { report: Arc::new(step.report), fresh: Some(Arc::new(step.fresh)) };
                    self.parts = newer(part, std::mem::take(&mut self.parts));
                    let by_slot = baseline.by_slot.clone();
                    self.baseline = Some(baseline);
                    let parts = self.parts.clone();
                    let srcs = sources.take().expect("the sources");
                    let ok = self.publish(&files, srcs, parts, by_slot, Some(slots), true, &label, t0, engine);
                    drop(replaced);
                    drop(dropped);
                    return ok;
                }
                Err(reason) => fallback = Some(reason),
            }
        }
        if let Some(reason) = &fallback
            && self.timings
        {
            eprintln!("apiload lsp: full analysis: {reason}");
        }
        let reads: Vec<ReadSource> = match reads {
            Some(mut reads) => {
                for i in changed {
                    reads[i] = self.parsed[i].as_ref().map(|p| p.read.clone());
                }
                reads.into_iter().flatten().collect()
            }
            None => self.parsed.iter().flatten().map(|p| p.read.clone()).collect(),
        };
        let ok = self.full_pass(&files, sources.take().expect("the sources"), reads, true, t0);
        drop(replaced);
        drop(dropped);
        if ok {
            let view: Vec<Option<&ReadSource>> = self.parsed.iter().map(|p| p.as_ref().map(|p| &p.read)).collect();
            let by_slot = self.last_full.take().unwrap_or_default();
            self.baseline = Some(Baseline::new(key, &view, by_slot));
        }
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
        self.settings_generation += 1;
    }

    /// Runs the engine over every parsed document and publishes. A partial
    /// pass (`complete` false) publishes open documents only.
    /// `reads` are those of every parsed document, in the order of their slots.
    fn full_pass(
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
        let engine = t1.elapsed();
        self.parts = Part::whole(report);
        if complete {
            self.last_full = Some(by_slot.clone());
        }
        let parts = self.parts.clone();
        let label = if complete { "full pass" } else { "open-first pass" };
        self.publish(files, sources, parts, by_slot, None, complete, label, t0, engine)
    }

    /// Installs the snapshot and publishes the findings of `slots` (every
    /// slot when `None`) and of the open documents.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &mut self,
        files: &[FileView],
        sources: Sources,
        parts: Vec<Part>,
        by_slot: Vec<Vec<Diagnostic>>,
        slots: Option<std::collections::HashSet<usize>>,
        complete: bool,
        label: &str,
        t0: Instant,
        engine: std::time::Duration,
    ) -> bool {
        let Some(state) = &self.settings else { return true };
        let t3 = Instant::now();
        // Open documents first: they are what the user looks at.
        let mut order: Vec<usize> = (0..files.len()).filter(|&i| files[i].version.is_some()).collect();
        if complete {
            match &slots {
                None => order.extend((0..files.len()).filter(|&i| files[i].version.is_none())),
                Some(s) => {
                    let mut rest: Vec<usize> =
                        s.iter().copied().filter(|&i| i < files.len() && files[i].version.is_none()).collect();
                    rest.sort_unstable();
                    order.extend(rest);
                }
            }
        }
        // URIs parsed for the findings converted only.
        let uri_of = |id: apiload_rules::SourceId| files.get(id.0 as usize).and_then(|f| super::uri::parse(&f.uri));
        let only: Option<std::collections::HashSet<usize>> = slots.as_ref().map(|_| order.iter().copied().collect());
        let mut converted =
            self.publisher.convert(&by_slot, &sources, &uri_of, (&state.settings, state.slot), only.as_ref());
        // Requests that follow a publication must see what it shows: the
        // snapshot goes first.
        let snapshot = Snapshot {
            encoding: self.enc,
            sources,
            parts,
            files: files.iter().map(|f| SnapFile { uri: f.uri.clone(), text: f.text.clone() }).collect(),
            diagnostics: by_slot,
        };
        let previous = self.shared.set_snapshot(Arc::new(snapshot));
        let t4 = Instant::now();
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
                "apiload lsp: {label} over {} documents: engine {:?}, convert {:?}, publish {:?}; {:?} since wake",
                files.len(),
                engine,
                t4 - t3,
                t5 - t4,
                t5 - t0
            );
        }
        true
    }
}

/// The exemptions of a run, expiry judged on the day of its key.
fn policy(setup: &apiload_rules::setup::Setup, key: &Key) -> apiload_rules::exempt::ExemptionPolicy {
    let mut policy = setup.exemptions.clone();
    policy.today = key.today.clone();
    policy
}

/// Slots holding a finding whose related locations or fixes point into one
/// of `changed`: their positions are converted again.
fn pointing_into(by_slot: &[Vec<Diagnostic>], changed: &std::collections::HashSet<usize>) -> Vec<usize> {
    let into = |l: &apiload_rules::Location| changed.contains(&(l.source.0 as usize));
    (0..by_slot.len())
        .filter(|&i| {
            by_slot[i].iter().any(|d| {
                d.related.iter().any(|r| into(&r.location))
                    || d.fixes.iter().flat_map(|f| &f.edits).any(|e| into(&e.location))
            })
        })
        .collect()
}

/// Runs kept for requests: `part` first, then the older ones it leaves
/// some workload to, the last full run always.
fn newer(part: Part, older: Vec<Part>) -> Vec<Part> {
    let mut claimed: std::collections::HashSet<apiload_rules::review::ObjectKey> =
        part.fresh.as_deref().cloned().unwrap_or_default();
    let mut out = vec![part];
    for p in older {
        match &p.fresh {
            None => {
                out.push(p);
                break;
            }
            Some(f) if f.iter().all(|k| claimed.contains(k)) => {}
            Some(f) => {
                claimed.extend(f.iter().cloned());
                out.push(p);
            }
        }
    }
    out
}

/// The engine's sources as last built, with what each slot was built from.
#[derive(Default)]
struct SourceCache {
    sources: Sources,
    built: Vec<(Arc<str>, Option<Text>)>,
}

/// The engine's sources: slot `i` is `SourceId(i)`. Only manifests and the
/// configuration carry their text (findings and embedded configuration point
/// into them). Slots whose name and text are those of `prev` share its
/// source: an edit re-indexes the lines of the edited file only.
fn sources(files: &[FileView], prev: &SourceCache) -> SourceCache {
    let mut out = SourceCache { sources: Sources::new(), built: Vec::with_capacity(files.len()) };
    let mut reused = prev.sources.clone();
    for (i, f) in files.iter().enumerate() {
        let text = match (&f.text, f.role) {
            (Some(t), Role::Manifest | Role::Config) => Some(t.clone()),
            _ => None,
        };
        let same = prev.built.get(i).is_some_and(|(name, t)| {
            *name == f.name
                && match (t, &text) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                }
        });
        if !(same && i < reused.len()) {
            let source = Source::new(f.name.to_string(), text.as_deref().map_or_else(Vec::new, <[u8]>::to_vec));
            match i < reused.len() {
                true => reused.replace(apiload_rules::SourceId(i as u32), source),
                false => {
                    reused.push(source);
                }
            }
        }
        out.built.push((f.name.clone(), text));
    }
    out.sources = reused;
    out
}
