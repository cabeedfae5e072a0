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
