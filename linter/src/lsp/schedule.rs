//! Analysis, off the protocol thread.
//!
//! One thread runs the engine. A change wakes it; changes that arrive while it
//! works are coalesced into its next run. Each run re-parses only documents
//! whose text changed (parsed objects are kept per document and shared with
//! the engine, which re-joins the whole workspace: a ClusterRole edited in one
//! file changes the findings of a DaemonSet in another), then publishes the
//! diagnostics of every document whose set changed — open documents first,
//! and documents that now have none included.
//!
//! While the workspace folders are still being read, or when thousands of
//! documents wait to be parsed, open documents are analysed first with what
//! is known, so the editor shows findings at once. Such partial runs hold
//! back unresolved-reference findings: the role they miss may be in a file not
//! read yet.

use super::config::{self, Config};
use super::convert::{self, Encoding};
use super::store::{Role, Shared, Text};
use apiload_rules::object::{objects_from_document, worth_analyzing};
use apiload_rules::settings::RuleSetting;
use apiload_rules::{Category, Diagnostic, Input, Location, Object, Report, Source, SourceId, Sources, rules};
use apiload_yaml::{Limits, Node, load_stream};
use lsp_server::{Message, Notification};
use lsp_types::{LogMessageParams, MessageType, PublishDiagnosticsParams, ShowMessageParams};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

pub enum Wake {
    Changed,
    Stop,
}

/// Sends a message to the client; `false` once the connection is gone.
pub type Out = Arc<dyn Fn(Message) -> bool + Send + Sync>;

/// Documents waiting to be parsed above which open documents are analysed first.
const OPEN_FIRST: usize = 64;

/// The result of the last analysis, for requests (hover, code actions).
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
    pub text: Option<Text>,
}

impl Snapshot {
    pub fn uri(&self, id: SourceId) -> Option<lsp_types::Uri> {
        super::uri::parse(&self.files.get(id.0 as usize)?.uri)
    }

    pub fn source(&self, slot: usize) -> Option<&Source> {
        (slot < self.sources.len()).then(|| self.sources.get(SourceId(slot as u32)))
    }
}

/// A document's objects and the findings of loading it, kept until its text changes.
struct Parsed {
    text: Text,
    namespace: Arc<str>,
    objects: Vec<Object>,
    diagnostics: Vec<Diagnostic>,
}

struct FileView {
    uri: Arc<str>,
    name: Arc<str>,
    role: Role,
    text: Option<Text>,
    version: Option<i32>,
}

struct Published {
    uri: Arc<str>,
    version: Option<i32>,
    diagnostics: Vec<lsp_types::Diagnostic>,
}

struct ConfigState {
    slot: Option<usize>,
    text: Option<Text>,
    config: Config,
}

pub struct Worker {
    shared: Arc<Shared>,
    out: Out,
    enc: Encoding,
    parsed: Vec<Option<Parsed>>,
    config: Option<ConfigState>,
    published: HashMap<usize, Published>,
    /// Whether the last run saw the whole workspace.
    was_complete: bool,
    started: Instant,
    timings: bool,
}

impl Worker {
    pub fn new(shared: Arc<Shared>, out: Out, enc: Encoding) -> Worker {
        Worker {
            shared,
            out,
            enc,
            parsed: Vec::new(),
            config: None,
            published: HashMap::new(),
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
        (self.out)(Message::Notification(Notification::new(
            "window/logMessage".into(),
            LogMessageParams { typ, message },
        )))
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
        self.refresh_config(&files, config_path);
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
            let objects = self.parsed.iter().flatten().flat_map(|p| p.objects.iter().cloned()).collect();
            if !self.pass(&files, sources(&files), objects, false, t0) {
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
                    let objects: Vec<Option<Vec<Object>>> = cache
                        .iter()
                        .enumerate()
                        .map(|(i, p)| p.as_ref().filter(|_| !changed.contains(&i)).map(|p| p.objects.clone()))
                        .collect();
                    (sources(&files), objects)
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
        let (sources, mut objects) = match prepared {
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
            objects[i] = self.parsed[i].as_ref().map(|p| p.objects.clone());
        }
        let ok = self.pass(&files, sources, objects.into_iter().flatten().flatten().collect(), true, t0);
        drop(replaced);
        if ok && !self.was_complete {
            let objects: usize = self.parsed.iter().flatten().map(|p| p.objects.len()).sum();
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
        self.config
            .as_ref()
            .map_or_else(|| "default".into(), |c| c.config.setup.options.default_namespace.as_str().into())
    }

    fn refresh_config(&mut self, files: &[FileView], path: Option<PathBuf>) {
        let slot = files.iter().position(|f| f.role == Role::Config);
        let text = slot.and_then(|s| files[s].text.clone());
        let same = self.config.as_ref().is_some_and(|c| {
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
        let config = config::load(slot.unwrap_or(0), path.as_deref(), text.as_deref());
        for m in &config.messages {
            (self.out)(Message::Notification(Notification::new(
                "window/showMessage".into(),
                ShowMessageParams { typ: MessageType::WARNING, message: format!("apiload: {m}") },
            )));
        }
        self.config = Some(ConfigState { slot, text, config });
    }

    /// Runs the engine over every parsed document and publishes. A partial
    /// pass (`complete` false) publishes open documents only.
    /// `objects` are those of every parsed document, in the order of their slots.
    fn pass(
        &mut self,
        files: &[FileView],
        sources: Sources,
        objects: Vec<Object>,
        complete: bool,
        t0: Instant,
    ) -> bool {
        let Some(state) = &self.config else { return true };
        let setup = &state.config.setup;
        let t1 = Instant::now();
        let mut input = Input::with_profiles(setup.options.clone(), setup.profiles.clone());
        let mut policy = setup.exemptions.clone();
        policy.today = crate::setup::today();
        input.set_exemptions(policy);
        for o in objects {
            input.add_object(o);
        }
        let t2 = Instant::now();
        let mut report = input.analyze(&sources);
        let t3 = Instant::now();
        let setting = |id: &str| setup.options.rule_settings.iter().rev().find(|(r, _)| *r == id).map(|(_, s)| *s);
        let mut by_slot: Vec<Vec<Diagnostic>> = vec![Vec::new(); files.len()];
        for d in std::mem::take(&mut report.diagnostics) {
            if !complete && d.category() == Category::UnresolvedReference {
                continue;
            }
            if let Some(v) = by_slot.get_mut(d.location.source.0 as usize) {
                v.push(d);
            }
        }
        for (slot, p) in self.parsed.iter().enumerate() {
            for d in p.iter().flat_map(|p| &p.diagnostics) {
                match setting(d.rule.id) {
                    Some(RuleSetting::Off) => {}
                    Some(RuleSetting::Severity(s)) => by_slot[slot].push(d.clone().severity(s)),
                    None => by_slot[slot].push(d.clone()),
                }
            }
        }
        for v in &mut by_slot {
            v.sort_by(|a, b| (a.location.span.start, a.rule.id).cmp(&(b.location.span.start, b.rule.id)));
        }
        let uris: Vec<Option<lsp_types::Uri>> = files.iter().map(|f| super::uri::parse(&f.uri)).collect();
        let uri_of = |id: SourceId| uris.get(id.0 as usize).cloned().flatten();
        let mut converted: Vec<Vec<lsp_types::Diagnostic>> = by_slot
            .iter()
            .map(|ds| ds.iter().map(|d| convert::diagnostic(d, &sources, &uri_of, self.enc)).collect())
            .collect();
        if let Some(slot) = state.slot {
            let source = sources.get(SourceId(slot as u32));
            for (span, message) in &state.config.errors {
                converted[slot].push(lsp_types::Diagnostic {
                    range: convert::source_range(source, *span, self.enc),
                    severity: Some(lsp_types::DiagnosticSeverity::ERROR),
                    source: Some("apiload".into()),
                    message: message.clone(),
                    ..lsp_types::Diagnostic::default()
                });
            }
        }
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
            if !self.publish(i, &files[i], std::mem::take(&mut converted[i])) {
                return false;
            }
        }
        let t5 = Instant::now();
        // Freed once the editor has its diagnostics.
        drop(previous);
        if self.timings {
            eprintln!(
                "apiload lsp: {} pass over {} documents: prepare {:?}, engine {:?}, convert {:?}, publish {:?}; {:?} since wake",
                if complete { "full" } else { "open-first" },
                files.len(),
                t2 - t1,
                t3 - t2,
                t4 - t3,
                t5 - t4,
                t5 - t0
            );
        }
        true
    }

    /// Publishes a document's diagnostics when they (or its version, or its
    /// URI) changed since last time.
    fn publish(&mut self, slot: usize, f: &FileView, diagnostics: Vec<lsp_types::Diagnostic>) -> bool {
        let prev = self.published.get(&slot);
        if let Some(p) = prev
            && p.uri != f.uri
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
            Some(p) => p.diagnostics != diagnostics || p.uri != f.uri || p.version != f.version,
        };
        if !changed {
            return true;
        }
        if !self.send(&f.uri, diagnostics.clone(), f.version) {
            return false;
        }
        if diagnostics.is_empty() && f.version.is_none() {
            self.published.remove(&slot);
        } else {
            self.published.insert(slot, Published { uri: f.uri.clone(), version: f.version, diagnostics });
        }
        true
    }

    fn send(&self, uri: &str, diagnostics: Vec<lsp_types::Diagnostic>, version: Option<i32>) -> bool {
        let Some(uri) = super::uri::parse(uri) else { return true };
        (self.out)(Message::Notification(Notification::new(
            "textDocument/publishDiagnostics".into(),
            PublishDiagnosticsParams { uri, diagnostics, version },
        )))
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

/// A document that is a Kubernetes object, as opposed to other YAML in the
/// repository (Helm values, CI workflows, Chart.yaml, kustomization.yaml).
fn looks_like_kubernetes(root: &Node) -> bool {
    let kind = root.get("kind").and_then(Node::as_str);
    root.get("apiVersion").is_some() && kind.is_some_and(|k| !matches!(k, "Kustomization" | "Component"))
}

/// Parses a document. Findings of loading (syntax errors, documents that are
/// not objects) are kept with it; files none of whose documents look like
/// Kubernetes objects contribute only their syntax errors.
fn parse(slot: usize, text: &Text, namespace: &Arc<str>) -> Parsed {
    let source = SourceId(slot as u32);
    let documents = load_stream(text, &Limits::default());
    let relevant = documents.iter().any(|d| d.as_ref().is_ok_and(|d| looks_like_kubernetes(&d.root)));
    let mut objects = Vec::new();
    let mut diagnostics = Vec::new();
    for d in documents {
        match d {
            Ok(doc) if relevant && worth_analyzing(&doc.root) => {
                objects_from_document(source, doc.root, namespace, &mut objects, &mut diagnostics)
            }
            Ok(_) => {}
            Err(e) => {
                let mut d = rules::input::invalid(Location::new(source, e.span), e.message);
                for (span, message) in e.related {
                    d = d.related(Location::new(source, span), message);
                }
                diagnostics.push(d);
            }
        }
    }
    Parsed { text: text.clone(), namespace: namespace.clone(), objects, diagnostics }
}

/// Parses documents on every core when there are many.
fn parse_all(jobs: Vec<(usize, Text)>, namespace: &Arc<str>) -> Vec<(usize, Parsed)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len() / 16).max(1);
    if threads == 1 {
        return jobs.iter().map(|(i, t)| (*i, parse(*i, t, namespace))).collect();
    }
    let next = AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((i, t)) = jobs.get(k) else { break };
                    mine.push((*i, parse(*i, t, namespace)));
                }
                results.lock().unwrap_or_else(|e| e.into_inner()).extend(mine);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kubernetes_files_are_linted_but_syntax_errors_always_count() {
        let ns: Arc<str> = "default".into();
        let p = |s: &str| parse(0, &Arc::from(s.as_bytes()), &ns);
        // Helm values, a CI workflow: not objects, and not reported as such.
        assert!(p("replicaCount: 3\nimage: {repository: nginx}\n").diagnostics.is_empty());
        assert!(p("apiVersion: v2\nname: chart\n").diagnostics.is_empty());
        assert!(p("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n").diagnostics.is_empty());
        // A manifest with a document that is not an object: reported.
        let m = p("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n- 1\n");
        assert_eq!(m.objects.len(), 1);
        assert_eq!(m.diagnostics.len(), 1);
        // Broken YAML is reported whatever the file is.
        let broken = p("a: [1, 2\n");
        assert_eq!(broken.diagnostics.len(), 1);
        assert_eq!(broken.diagnostics[0].rule.id, "AL001");
    }
}
