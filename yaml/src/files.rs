//! Finding and reading manifest files: the one walker every front end that
//! takes paths uses (`apiload lint`, the webhook's `--cluster-state`, the
//! language server's workspace scan), so that they agree on what a manifest is.
//!
//! What it leaves out, and says so ([`Skipped`]):
//! - what is not a Kubernetes manifest although it is YAML or JSON: Helm chart
//!   sources (`Chart.yaml`, `values*.yaml`, the chart's `templates/`: render
//!   them with `helm template`), Kustomize's `kustomization.yaml`, and the
//!   configuration files of well-known tools (CI systems, pre-commit, Docker
//!   Compose, npm, …);
//! - FIFOs, sockets and devices found in a folder (reading one would block, or
//!   never end);
//! - a symbolic link to a folder already read: each real folder is read once,
//!   so a link back to a parent (`ln -s . loop`) is reported once instead of
//!   being followed for ever.
//!
//! Hidden entries (`.git`) and `node_modules` are left out silently.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// A path that could not be read.
#[derive(Debug)]
pub struct ReadError {
    pub path: String,
    pub message: String,
}

/// Why a path was not read as a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// `Chart.yaml`, `values*.yaml`, `values.schema.json`, a chart's `templates/`.
    HelmChart,
    /// `kustomization.yaml`: Kustomize's input, not an object.
    Kustomize,
    /// The configuration file of another tool (the tool's name).
    OtherTool(&'static str),
    /// A FIFO, a socket or a device.
    NotAFile(&'static str),
    /// A symbolic link to a folder that contains it.
    LinkCycle(PathBuf),
    /// A symbolic link to a folder or file read through another path.
    AlreadyRead(PathBuf),
}

impl Skip {
    /// A short stable name (`--format json`).
    pub fn code(&self) -> &'static str {
        match self {
            Skip::HelmChart => "helm-chart",
            Skip::Kustomize => "kustomize",
            Skip::OtherTool(_) => "other-tool",
            Skip::NotAFile(_) => "not-a-file",
            Skip::LinkCycle(_) => "link-cycle",
            Skip::AlreadyRead(_) => "already-read",
        }
    }

    /// Skips worth a note of their own (the others are only counted): the
    /// user may expect the path to be read.
    pub fn is_notable(&self) -> bool {
        matches!(self, Skip::NotAFile(_) | Skip::LinkCycle(_))
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::HelmChart => f.write_str("a Helm chart source (lint `helm template` output instead)"),
            Skip::Kustomize => f.write_str("a Kustomize configuration (lint `kustomize build` output instead)"),
            Skip::OtherTool(tool) => write!(f, "{tool} configuration, not a Kubernetes manifest"),
            Skip::NotAFile(what) => write!(f, "{what}, not a regular file"),
            Skip::LinkCycle(target) => write!(f, "a symbolic link back to {}, not followed", target.display()),
            Skip::AlreadyRead(target) => write!(f, "a symbolic link to {}, read once already", target.display()),
        }
    }
}

/// A path left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: Skip,
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Manifest files, in the order of the arguments, each folder's sorted.
    pub files: Vec<PathBuf>,
    pub skipped: Vec<Skipped>,
    pub errors: Vec<ReadError>,
}

/// `.yaml`, `.yml` and `.json` files are manifests.
pub fn is_manifest(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// Configuration files of other tools, by file name.
const OTHER_TOOLS: &[(&str, &str)] = &[
    (".apiload.yaml", "apiload"),
    (".gitlab-ci.yml", "GitLab CI"),
    (".travis.yml", "Travis CI"),
    (".drone.yml", "Drone"),
    ("azure-pipelines.yml", "Azure Pipelines"),
    ("azure-pipelines.yaml", "Azure Pipelines"),
    ("bitbucket-pipelines.yml", "Bitbucket Pipelines"),
    ("cloudbuild.yaml", "Cloud Build"),
    ("cloudbuild.yml", "Cloud Build"),
    ("appveyor.yml", "AppVeyor"),
    ("action.yml", "GitHub Actions"),
    ("action.yaml", "GitHub Actions"),
    (".pre-commit-config.yaml", "pre-commit"),
    (".pre-commit-hooks.yaml", "pre-commit"),
    (".golangci.yml", "golangci-lint"),
    (".golangci.yaml", "golangci-lint"),
    (".goreleaser.yml", "GoReleaser"),
    (".goreleaser.yaml", "GoReleaser"),
    (".yamllint", "yamllint"),
    (".yamllint.yml", "yamllint"),
    (".yamllint.yaml", "yamllint"),
    (".readthedocs.yml", "Read the Docs"),
    (".readthedocs.yaml", "Read the Docs"),
    ("codecov.yml", "Codecov"),
    (".codecov.yml", "Codecov"),
    ("mkdocs.yml", "MkDocs"),
    ("mkdocs.yaml", "MkDocs"),
    ("docker-compose.yml", "Docker Compose"),
    ("docker-compose.yaml", "Docker Compose"),
    ("compose.yml", "Docker Compose"),
    ("compose.yaml", "Docker Compose"),
    ("helmfile.yaml", "Helmfile"),
    ("skaffold.yaml", "Skaffold"),
    ("Taskfile.yml", "Task"),
    ("Taskfile.yaml", "Task"),
    ("renovate.json", "Renovate"),
    (".renovaterc.json", "Renovate"),
    ("package.json", "npm"),
    ("package-lock.json", "npm"),
    ("pnpm-lock.yaml", "pnpm"),
    ("tsconfig.json", "TypeScript"),
    ("composer.json", "Composer"),
];

/// Folders that hold other tools' configuration only.
const OTHER_TOOL_FOLDERS: &[(&str, &str)] =
    &[(".github", "GitHub"), (".circleci", "CircleCI"), (".gitlab", "GitLab"), (".vscode", "VS Code")];

const KUSTOMIZATION: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// A Helm chart's own files, by name, in the chart's folder.
fn is_chart_file(name: &str) -> bool {
    name == "Chart.yaml"
        || name == "Chart.lock"
        || (name.starts_with("values") && matches!(name.rsplit('.').next(), Some("yaml" | "yml" | "json")))
}

fn is_chart(dir: &Path) -> bool {
    dir.join("Chart.yaml").is_file()
}

/// Why `path` is not a manifest, judged from its name and the folders that
/// hold it; `None` when it may be one. Used for paths named explicitly (a
/// pre-commit hook names every changed file) and for the language server's
/// open documents; folders are walked with the same rules.
pub fn not_a_manifest(path: &Path) -> Option<Skip> {
    let name = path.file_name()?.to_str()?;
    if KUSTOMIZATION.contains(&name) {
        return Some(Skip::Kustomize);
    }
    if let Some((_, tool)) = OTHER_TOOLS.iter().find(|(n, _)| *n == name) {
        return Some(Skip::OtherTool(tool));
    }
    let folders = || path.ancestors().skip(1).take(32);
    if let Some(tool) = folders().find_map(|dir| {
        let folder = dir.file_name()?.to_str()?;
        OTHER_TOOL_FOLDERS.iter().find(|(n, _)| *n == folder).map(|(_, tool)| *tool)
    }) {
        return Some(Skip::OtherTool(tool));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if is_chart_file(name) && is_chart(parent) {
        return Some(Skip::HelmChart);
    }
    let in_templates = folders().any(|dir| {
        dir.file_name().is_some_and(|n| n == "templates")
            && dir.parent().is_some_and(|c| is_chart(if c.as_os_str().is_empty() { Path::new(".") } else { c }))
    });
    in_templates.then_some(Skip::HelmChart)
}

/// Expands `paths` into manifest files: folders recursively, files named
/// explicitly whatever their extension (unless [`not_a_manifest`]), `-`
/// (stdin) as is.
pub fn walk(paths: &[String]) -> Walk {
    walk_until(paths, &AtomicBool::new(false))
}

/// [`walk`]'s files and errors (for folders of other files than manifests,
/// such as agent profiles).
pub fn expand(paths: &[String]) -> (Vec<PathBuf>, Vec<ReadError>) {
    let w = walk(paths);
    (w.files, w.errors)
}

/// [`walk`], stopping early (with what was found so far) once `stop` is set.
pub fn walk_until(paths: &[String], stop: &AtomicBool) -> Walk {
    let mut walk = Walk::default();
    for p in paths {
        if p == "-" {
            walk.files.push(PathBuf::from("-"));
            continue;
        }
        let path = PathBuf::from(p);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                let mut walker = Walker { visited_dirs: HashSet::new(), visited_files: HashSet::new(), stop };
                let before = walk.files.len();
                walker.folder(&path, &mut walk);
                walk.files[before..].sort();
            }
            Ok(_) => match not_a_manifest(&path) {
                Some(why) => walk.skipped.push(Skipped { path, why }),
                None => walk.files.push(path),
            },
            Err(e) => walk.errors.push(ReadError { path: p.clone(), message: e.to_string() }),
        }
    }
    walk
}

struct Walker<'a> {
    /// Real paths of the folders read.
    visited_dirs: HashSet<PathBuf>,
    /// Real paths of the files read.
    visited_files: HashSet<PathBuf>,
    stop: &'a AtomicBool,
}

/// What a folder's entry is, links followed.
enum Entry {
    Folder,
    File,
    NotAFile(&'static str),
}

fn entry_kind(m: &std::fs::Metadata) -> Entry {
    let t = m.file_type();
    if t.is_dir() {
        return Entry::Folder;
    }
    if t.is_file() {
        return Entry::File;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Entry::NotAFile("a FIFO");
        }
        if t.is_socket() {
            return Entry::NotAFile("a socket");
        }
        if t.is_block_device() || t.is_char_device() {
            return Entry::NotAFile("a device");
        }
    }
    Entry::NotAFile("not a file")
}

/// A symbolic link met during the walk, followed only once every real path
/// has been read, so that a folder or file is found under its own name
/// rather than through a link to it.
struct Link {
    path: PathBuf,
    /// Its target's real path.
    real: PathBuf,
    /// The real path of the folder that holds the link.
    held_in: PathBuf,
    folder: bool,
}

impl Walker<'_> {
    /// Reads the folder `root` and everything under it, depth first, each
    /// real folder and file once. An explicit stack: depth costs no recursion.
    fn folder(&mut self, root: &Path, walk: &mut Walk) {
        let Ok(real_root) = std::fs::canonicalize(root) else {
            walk.errors.push(ReadError { path: root.display().to_string(), message: "cannot resolve the path".into() });
            return;
        };
        self.visited_dirs.insert(real_root.clone());
        let mut stack = vec![(root.to_path_buf(), real_root)];
        let mut links: Vec<Link> = Vec::new();
        loop {
            while let Some((dir, real_dir)) = stack.pop() {
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
                self.read_folder(&dir, &real_dir, &mut stack, &mut links, walk);
            }
            if links.is_empty() {
                return;
            }
            // The links met, in the order met; those to folders not read yet
            // are walked (and may hold more links).
            for link in std::mem::take(&mut links) {
                let Link { path, real, held_in, folder } = link;
                if folder {
                    if self.visited_dirs.insert(real.clone()) {
                        stack.push((path, real));
                    } else if held_in.starts_with(&real) {
                        walk.skipped.push(Skipped { path, why: Skip::LinkCycle(real) });
                    } else {
                        walk.skipped.push(Skipped { path, why: Skip::AlreadyRead(real) });
                    }
                } else if self.visited_files.insert(real.clone()) {
                    walk.files.push(path);
                } else {
                    walk.skipped.push(Skipped { path, why: Skip::AlreadyRead(real) });
                }
            }
            stack.reverse();
        }
    }

    /// One folder's entries: files into `walk`, folders onto `stack` (in
    /// name order, depth first), links into `links`.
    fn read_folder(
        &mut self,
        dir: &Path,
        real_dir: &Path,
        stack: &mut Vec<(PathBuf, PathBuf)>,
        links: &mut Vec<Link>,
        walk: &mut Walk,
    ) {
        let mut entries: Vec<(String, PathBuf, std::fs::FileType)> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path(), e.file_type().ok()?)))
                .collect(),
            Err(e) => {
                walk.errors.push(ReadError { path: dir.display().to_string(), message: e.to_string() });
                return;
            }
        };
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let chart = entries.iter().any(|(n, _, t)| n == "Chart.yaml" && !t.is_dir());
        let mut folders = Vec::new();
        for (name, path, file_type) in entries {
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            let link = file_type.is_symlink();
            let kind = if link {
                match std::fs::metadata(&path) {
                    Ok(m) => entry_kind(&m),
                    // A dangling link: an error only where a manifest was expected.
                    Err(e) if is_manifest(&path) => {
                        walk.errors.push(ReadError { path: path.display().to_string(), message: e.to_string() });
                        continue;
                    }
                    Err(_) => continue,
                }
            } else if file_type.is_dir() {
                Entry::Folder
            } else if file_type.is_file() {
                Entry::File
            } else {
                match std::fs::symlink_metadata(&path) {
                    Ok(m) => entry_kind(&m),
                    Err(_) => continue,
                }
            };
            let skip = match kind {
                Entry::Folder if chart && name == "templates" => Some(Skip::HelmChart),
                Entry::Folder => None,
                Entry::NotAFile(what) if is_manifest(&path) => Some(Skip::NotAFile(what)),
                Entry::NotAFile(_) => continue,
                Entry::File if !is_manifest(&path) => continue,
                Entry::File if chart && is_chart_file(&name) => Some(Skip::HelmChart),
                Entry::File => not_a_manifest_by_name(&name),
            };
            if let Some(why) = skip {
                walk.skipped.push(Skipped { path, why });
                continue;
            }
            let folder = matches!(kind, Entry::Folder);
            if link {
                match std::fs::canonicalize(&path) {
                    Ok(real) => links.push(Link { path, real, held_in: real_dir.to_path_buf(), folder }),
                    Err(e) => walk.errors.push(ReadError { path: path.display().to_string(), message: e.to_string() }),
                }
                continue;
            }
            // Seen already only when a link led there first (links are
            // followed last, but a link's folder may hold this one's target).
            let real = real_dir.join(&name);
            let new =
                if folder { self.visited_dirs.insert(real.clone()) } else { self.visited_files.insert(real.clone()) };
            match (new, folder) {
                (false, _) => walk.skipped.push(Skipped { path, why: Skip::AlreadyRead(real) }),
                (true, true) => folders.push((path, real)),
                (true, false) => walk.files.push(path),
            }
        }
        stack.extend(folders.into_iter().rev());
    }
}

/// [`not_a_manifest`]'s rules that need only the file's name (the walker
/// knows the folders it is in).
fn not_a_manifest_by_name(name: &str) -> Option<Skip> {
    if KUSTOMIZATION.contains(&name) {
        return Some(Skip::Kustomize);
    }
    OTHER_TOOLS.iter().find(|(n, _)| *n == name).map(|(_, tool)| Skip::OtherTool(tool))
}

/// Reads at most `max_bytes + 1` bytes of a file (or of stdin for `-`): the
/// loader then reports an oversized input, and a huge file never lands in memory.
pub fn read_bounded(path: &Path, max_bytes: usize) -> Result<Vec<u8>, std::io::Error> {
    let cap = max_bytes as u64 + 1;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().lock().take(cap).read_to_end(&mut bytes)?;
    } else {
        let file = std::fs::File::open(path)?;
        // `Take` hides the file's size from `read_to_end`, which would then
        // double its buffer past the text; front ends keep the text for the
        // whole analysis, so it is read into a buffer of its size (plus the
        // byte that tells a file at the limit from one over it).
        if let Ok(meta) = file.metadata() {
            bytes.reserve_exact(meta.len().min(cap) as usize + 1);
        }
        file.take(cap).read_to_end(&mut bytes)?;
    }
    bytes.shrink_to_fit();
    Ok(bytes)
}

/// A file read as text: its name (the path as given, as messages show it) and contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextFile {
    pub name: String,
    pub text: String,
}

impl TextFile {
    /// Reads a whole file as UTF-8 text; the error is a line naming the file.
    pub fn read(path: &Path) -> Result<TextFile, String> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(TextFile { name, text }),
            Err(e) => Err(format!("cannot read {name}: {e}")),
        }
    }
}

/// The files under `paths` (as [`expand`] finds them), read as text: small
/// files the user names, such as folders of agent profiles. Errors are lines
/// naming the path.
pub fn read_texts(paths: &[String]) -> (Vec<TextFile>, Vec<String>) {
    let (found, read_errors) = expand(paths);
    let mut errors: Vec<String> =
        read_errors.into_iter().map(|e| format!("cannot read {}: {}", e.path, e.message)).collect();
    let mut files = Vec::new();
    for path in found {
        match TextFile::read(&path) {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        }
    }
    (files, errors)
}

/// [`read_bounded`] for a regular file only: a FIFO or a device is refused
/// before it is opened, so a reader that must never block (a server's
/// start-up) never waits on one.
pub fn read_regular_bounded(path: &Path, max_bytes: usize) -> Result<Vec<u8>, std::io::Error> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = match entry_kind(&meta) {
            Entry::NotAFile(what) => what,
            Entry::Folder => "a folder",
            Entry::File => "a file",
        };
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}, not a regular file")));
    }
    read_bounded(path, max_bytes)
}
