//! Finding and reading manifest files: what every front end that takes
//! paths (the linter, the webhook's static cluster state) does the same way.

use std::io::Read;
use std::path::{Path, PathBuf};

/// A path that could not be read.
#[derive(Debug)]
pub struct ReadError {
    pub path: String,
    pub message: String,
}

/// `.yaml`, `.yml` and `.json` files are manifests.
pub fn is_manifest(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// Expands folders into the manifest files under them (recursively, hidden
/// entries skipped), sorted so that output does not depend on directory
/// order. Files named explicitly are kept whatever their extension; `-`
/// (stdin) is kept as is.
pub fn expand(paths: &[String]) -> (Vec<PathBuf>, Vec<ReadError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p == "-" {
            files.push(PathBuf::from("-"));
            continue;
        }
        let path = PathBuf::from(p);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, &mut files, &mut errors),
            Ok(_) => files.push(path),
            Err(e) => errors.push(ReadError { path: p.clone(), message: e.to_string() }),
        }
    }
    (files, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<ReadError>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            errors.push(ReadError { path: dir.display().to_string(), message: e.to_string() });
            return;
        }
    };
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue; // .git and friends
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, files, errors),
            Ok(_) if is_manifest(&p) => files.push(p),
            Ok(_) => {}
            Err(e) => errors.push(ReadError { path: p.display().to_string(), message: e.to_string() }),
        }
    }
}

/// Reads at most `max_bytes + 1` bytes of a file (or of stdin for `-`): the
/// loader then reports an oversized input, and a huge file never lands in memory.
pub fn read_bounded(path: &Path, max_bytes: usize) -> Result<Vec<u8>, std::io::Error> {
    let cap = max_bytes as u64 + 1;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().lock().take(cap).read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)?.take(cap).read_to_end(&mut bytes)?;
    }
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
