//! Reading the user's paths: files, folders (recursively) and stdin, loaded in
//! parallel, each into a source and its documents.

use apiload_rules::Source;
use apiload_rules::object::worth_analyzing;
use apiload_yaml::{Document, Limits, LoadError, load_stream};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One input that was read.
pub struct Loaded {
    pub source: Source,
    pub documents: Vec<Result<Document, LoadError>>,
}

/// A path that could not be read at all.
#[derive(Debug)]
pub struct ReadError {
    pub path: String,
    pub message: String,
}

/// Name under which stdin appears in findings.
pub const STDIN_NAME: &str = "<stdin>";

fn is_manifest(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// Expands folders into the manifest files under them, sorted, so that
/// output does not depend on directory order.
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

fn read(path: &Path, limits: &Limits) -> Result<(String, Vec<u8>), ReadError> {
    let name = if path == Path::new("-") { STDIN_NAME.to_string() } else { path.display().to_string() };
    let err = |e: std::io::Error| ReadError { path: name.clone(), message: e.to_string() };
    let cap = limits.max_bytes as u64 + 1;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().lock().take(cap).read_to_end(&mut bytes).map_err(err)?;
    } else {
        let file = std::fs::File::open(path).map_err(err)?;
        // Read at most one byte past the limit: the loader reports the size,
        // and a huge file never lands in memory.
        file.take(cap).read_to_end(&mut bytes).map_err(err)?;
    }
    Ok((name, bytes))
}

/// Reads and parses every file, using all cores; results keep the files' order.
pub fn load_all(files: &[PathBuf], limits: &Limits) -> (Vec<Loaded>, Vec<ReadError>) {
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
                        // Keep memory to what the analysis reads: drop Services,
                        // CRDs and the like right away (Lists and broken
                        // documents stay; the engine reports the latter).
                        documents.retain(|d| d.as_ref().map_or(true, |doc| worth_analyzing(&doc.root)));
                        Loaded { source: Source::new(name, bytes), documents }
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
