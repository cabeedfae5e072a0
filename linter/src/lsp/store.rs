//! The workspace as the server knows it: for every document, the text the
//! analysis reads — the editor's unsaved text while it is open, else the file
//! on disk. Documents get a slot when first seen and keep it: the slot is the
//! `SourceId` of the document in every analysis.

use super::convert::{self, Encoding};
use super::uri;
use apiload_yaml::LineIndex;
use lsp_types::TextDocumentContentChangeEvent;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// A document's bytes, shared with the analyses that read them. Files on disk
/// need not be UTF-8 (the loader reports where they are not).
pub type Text = Arc<[u8]>;

/// When a file was read: its modification time and length.
pub type Stamp = (Option<SystemTime>, u64);

/// What the server does with a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Manifest,
    /// The workspace's `.apiload.yaml`.
    Config,
    /// Not analysed: another language, a Helm chart's templates.
    Ignored,
}

pub struct Open {
    pub version: i32,
    pub text: Text,
}

pub struct File {
    pub path: Option<PathBuf>,
    /// The URI diagnostics are published under: the editor's own when it
    /// opened the document, else one built from the path.
    pub uri: Arc<str>,
    /// The name the engine knows the source by.
    pub name: Arc<str>,
    pub role: Role,
    pub disk: Option<Text>,
    pub stamp: Option<Stamp>,
    pub open: Option<Open>,
}

impl File {
    /// What the analysis reads.
    pub fn text(&self) -> Option<&Text> {
        self.open.as_ref().map(|o| &o.text).or(self.disk.as_ref())
    }

    pub fn version(&self) -> Option<i32> {
        self.open.as_ref().map(|o| o.version)
    }
}

#[derive(Default)]
pub struct Store {
    pub files: Vec<File>,
    index: HashMap<String, usize>,
    /// Workspace folders.
    pub roots: Vec<PathBuf>,
    /// The configuration file in force (it need not exist yet).
    pub config_path: Option<PathBuf>,
    /// Folder scans still running: analyses meanwhile see part of the workspace.
    pub scanning: usize,
}

/// State shared by the protocol loop, the disk thread and the analysis thread.
pub struct Shared {
    pub store: Mutex<Store>,
    pub snapshot: Mutex<Option<Arc<super::snapshot::Snapshot>>>,
    /// Set when the server stops: long scans end early.
    pub stopping: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn new(store: Store) -> Shared {
        Shared { store: Mutex::new(store), snapshot: Mutex::new(None), stopping: Default::default() }
    }

    /// The store; a thread that panicked while holding it left it usable.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> Option<Arc<super::snapshot::Snapshot>> {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Installs a new snapshot; returns the previous one, for the caller to
    /// drop when it suits it (freeing an analysis takes milliseconds).
    pub fn set_snapshot(&self, s: Arc<super::snapshot::Snapshot>) -> Option<Arc<super::snapshot::Snapshot>> {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).replace(s)
    }
}

/// `.yaml`, `.yml` and `.json`, as `apiload lint` reads in folders.
pub fn is_manifest_path(path: &Path) -> bool {
    apiload_yaml::files::is_manifest(path)
}

/// What `apiload lint` leaves out by name: Helm chart sources (templates are
/// Go templates, not YAML until rendered), Kustomize files, other tools' configuration.
pub fn is_skipped(path: &Path) -> bool {
    apiload_yaml::files::not_a_manifest(path).is_some()
}

impl Store {
    pub fn with_roots(roots: Vec<PathBuf>) -> Store {
        Store { roots, ..Store::default() }
    }

    pub fn slot(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    pub fn slot_of_uri(&self, u: &str) -> Option<usize> {
        self.slot(&uri::key(u))
    }

    fn role_for(&self, path: Option<&Path>, language: Option<&str>) -> Role {
        match path {
            Some(p) if self.config_path.as_deref() == Some(p) => Role::Config,
            Some(p) if is_skipped(p) => Role::Ignored,
            Some(p) if is_manifest_path(p) => Role::Manifest,
            Some(_) => Role::Ignored,
            // Documents that are not files (untitled buffers) by their language.
            None if matches!(language, Some("yaml" | "json")) => Role::Manifest,
            None => Role::Ignored,
        }
    }

    /// The slot of a document, created on first sight.
    fn ensure(&mut self, key: String, path: Option<PathBuf>, uri: Option<&str>, language: Option<&str>) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let role = self.role_for(path.as_deref(), language);
        let uri: Arc<str> = match (uri, &path) {
            (Some(u), _) => u.into(),
            (None, Some(p)) => uri::from_path(p).into(),
            (None, None) => key.as_str().into(),
        };
        let name: Arc<str> = match &path {
            Some(p) => self.display_name(p).into(),
            None => uri.clone(),
        };
        self.files.push(File { path, uri, name, role, disk: None, stamp: None, open: None });
        self.index.insert(key, self.files.len() - 1);
        self.files.len() - 1
    }

    /// A path relative to the workspace folder that holds it, as `apiload lint` shows files.
    fn display_name(&self, path: &Path) -> String {
        self.roots
            .iter()
            .find_map(|r| path.strip_prefix(r).ok())
            .filter(|rel| !rel.as_os_str().is_empty())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Re-derives roles after the configuration path changed.
    pub fn set_config_path(&mut self, path: Option<PathBuf>) {
        self.config_path = path;
        for i in 0..self.files.len() {
            let role = self.role_for(self.files[i].path.as_deref(), None);
            if self.files[i].path.is_some() {
                self.files[i].role = role;
            }
        }
    }

    pub fn open(&mut self, u: &str, language: &str, version: i32, text: String) -> usize {
        let path = uri::to_path(u);
        let i = self.ensure(uri::key(u), path, Some(u), Some(language));
        let f = &mut self.files[i];
        f.uri = u.into();
        f.open = Some(Open { version, text: Arc::from(text.into_bytes()) });
        i
    }

    /// Applies the changes of a `didChange`; `false` for a document that is not open.
    pub fn change(
        &mut self,
        u: &str,
        version: i32,
        changes: Vec<TextDocumentContentChangeEvent>,
        enc: Encoding,
    ) -> bool {
        let Some(i) = self.slot_of_uri(u) else { return false };
        let Some(open) = self.files[i].open.as_mut() else { return false };
        let mut text = String::from_utf8_lossy(&open.text).into_owned();
        for c in changes {
            match c.range {
                None => text = c.text,
                // Ranged changes, should a client send them although the server asks for full text.
                Some(r) => {
                    let lines = LineIndex::new(text.as_bytes());
                    let start = convert::offset(&text, &lines, r.start, enc) as usize;
                    let end = (convert::offset(&text, &lines, r.end, enc) as usize).max(start);
                    text.replace_range(start..end, &c.text);
                }
            }
        }
        open.version = version;
        open.text = Arc::from(text.into_bytes());
        true
    }

    /// Closes a document; returns its path, whose file should be read again.
    pub fn close(&mut self, u: &str) -> Option<PathBuf> {
        let i = self.slot_of_uri(u)?;
        self.files[i].open = None;
        self.files[i].path.clone()
    }

    /// Records what a file on disk holds (`None`: it does not exist).
    /// Returns whether anything changed.
    pub fn set_disk(&mut self, path: &Path, content: Option<(Text, Stamp)>) -> bool {
        let key = path.display().to_string();
        let i = match (self.slot(&key), &content) {
            (Some(i), _) => i,
            (None, None) => return false,
            (None, Some(_)) => self.ensure(key, Some(path.to_path_buf()), None, None),
        };
        let f = &mut self.files[i];
        match content {
            Some((text, stamp)) => {
                if f.disk.as_deref() == Some(&*text) {
                    f.stamp = Some(stamp);
                    return false;
                }
                f.disk = Some(text);
                f.stamp = Some(stamp);
            }
            None => {
                if f.disk.is_none() {
                    return false;
                }
                f.disk = None;
                f.stamp = None;
            }
        }
        true
    }

    /// Forgets what is on disk under a folder that left the workspace.
    pub fn forget_under(&mut self, root: &Path) {
        for f in &mut self.files {
            if f.path.as_deref().is_some_and(|p| p.starts_with(root)) {
                f.disk = None;
                f.stamp = None;
            }
        }
    }

    /// Files read from disk under the workspace folders, with their stamps.
    pub fn disk_stamps(&self) -> HashMap<PathBuf, Stamp> {
        self.files.iter().filter_map(|f| Some((f.path.clone()?, f.stamp?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_types::{Position, Range};

    #[test]
    fn open_text_overrides_disk_and_changes_apply() {
        let mut s = Store::with_roots(vec![PathBuf::from("/w")]);
        let path = Path::new("/w/a.yaml");
        assert!(s.set_disk(path, Some((Arc::from(&b"kind: A\n"[..]), (None, 8)))));
        assert!(!s.set_disk(path, Some((Arc::from(&b"kind: A\n"[..]), (None, 8)))));
        let i = s.open("file:///w/a.yaml", "yaml", 1, "kind: B\n# é😀\n".into());
        assert_eq!(s.files[i].name.as_ref(), "a.yaml");
        assert_eq!(s.files[i].text().map(|t| t.to_vec()), Some(b"kind: B\n# \xC3\xA9\xF0\x9F\x98\x80\n".to_vec()));
        let ranged = |line, a, b, text: &str| TextDocumentContentChangeEvent {
            range: Some(Range { start: Position { line, character: a }, end: Position { line, character: b } }),
            range_length: None,
            text: text.into(),
        };
        // UTF-16: the emoji is two units, after `# é` (3).
        assert!(s.change("file:///w/a.yaml", 2, vec![ranged(1, 3, 5, "x")], Encoding::Utf16));
        assert_eq!(&*s.files[i].text().unwrap().to_vec(), "kind: B\n# éx\n".as_bytes());
        assert!(s.change("file:///w/a.yaml", 3, vec![ranged(0, 6, 7, "C")], Encoding::Utf8));
        assert_eq!(&*s.files[i].text().unwrap().to_vec(), "kind: C\n# éx\n".as_bytes());
        assert_eq!(s.files[i].version(), Some(3));
        assert_eq!(s.close("file:///w/a.yaml").as_deref(), Some(path));
        assert_eq!(&*s.files[i].text().unwrap().to_vec(), b"kind: A\n");
        assert!(!s.change("file:///w/a.yaml", 4, vec![], Encoding::Utf8));
    }

    #[test]
    fn roles() {
        let mut s = Store::default();
        s.set_config_path(Some(PathBuf::from("/w/.apiload.yaml")));
        let role = |s: &mut Store, u: &str, lang: &str| {
            let i = s.open(u, lang, 1, String::new());
            s.files[i].role
        };
        assert_eq!(role(&mut s, "file:///w/.apiload.yaml", "yaml"), Role::Config);
        assert_eq!(role(&mut s, "file:///w/x.yml", "yaml"), Role::Manifest);
        assert_eq!(role(&mut s, "file:///w/main.go", "go"), Role::Ignored);
        assert_eq!(role(&mut s, "untitled:Untitled-1", "yaml"), Role::Manifest);
        assert_eq!(role(&mut s, "untitled:Untitled-2", "plaintext"), Role::Ignored);
    }
}
