//! All file-system reads of the server, on one background thread: the scan of
//! the workspace folders at start, files the editor says changed
//! (`didChangeWatchedFiles`, `didSave`, `didClose`), and — for editors that do
//! not watch files — a poll of the folders every few seconds. The protocol
//! loop never waits for the disk.

use super::schedule::Wake;
use super::store::{Shared, Stamp, Text, is_skipped};
use apiload_yaml::Limits;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

pub enum Job {
    /// Reads every manifest under these workspace folders (each counted in `Store::scanning`).
    Scan(Vec<PathBuf>),
    /// Reads these files again (or notes that they are gone).
    Refresh(Vec<PathBuf>),
    Stop,
}

/// Files read between two hand-overs to the store during a scan.
const BATCH: usize = 256;

pub fn spawn(
    shared: Arc<Shared>,
    wake: Sender<Wake>,
    jobs: Receiver<Job>,
    poll: Option<Duration>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("apiload-disk".into()).spawn(move || {
        let mut last_poll = Instant::now();
        loop {
            let timeout = poll.map_or(Duration::from_secs(3600), |p| p.saturating_sub(last_poll.elapsed()));
            match jobs.recv_timeout(timeout) {
                Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Job::Scan(roots)) => {
                    for root in roots {
                        scan(&shared, &root);
                        let mut store = shared.store();
                        store.scanning = store.scanning.saturating_sub(1);
                    }
                    let _ = wake.send(Wake::Changed);
                }
                Ok(Job::Refresh(paths)) => {
                    let mut store_changed = false;
                    for p in paths {
                        let content = read(&p);
                        store_changed |= shared.store().set_disk(&p, content);
                    }
                    if store_changed {
                        let _ = wake.send(Wake::Changed);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    last_poll = Instant::now();
                    if poll_once(&shared) {
                        let _ = wake.send(Wake::Changed);
                    }
                }
            }
            if shared.stopping.load(Ordering::Relaxed) {
                return;
            }
        }
    })
}

/// The manifests under a folder, sorted, by the walker `apiload lint` uses
/// (hidden folders, `node_modules`, Helm chart sources, Kustomize files and
/// other tools' configuration left out; FIFOs skipped; each real folder read
/// once, so a symbolic link cycle ends).
pub fn manifests(root: &Path, stop: &std::sync::atomic::AtomicBool) -> Vec<PathBuf> {
    apiload_yaml::files::walk_until(&[root.display().to_string()], stop).files
}

/// A file's bytes (at most one byte past the loader's size limit, which the
/// loader then reports) and stamp; `None` when it cannot be read.
pub fn read(path: &Path) -> Option<(Text, Stamp)> {
    // Checked before opening: opening a FIFO waits for a writer.
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(Limits::DEFAULT_MAX_BYTES as u64 + 1).read_to_end(&mut bytes).ok()?;
    Some((Arc::from(bytes), (meta.modified().ok(), meta.len())))
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok(), m.len()))
}

fn scan(shared: &Shared, root: &Path) {
    let stop = &shared.stopping;
    let files = manifests(root, stop);
    for chunk in files.chunks(BATCH) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let read: Vec<_> = chunk.iter().map(|p| (p, read(p))).collect();
        let mut store = shared.store();
        for (p, content) in read {
            store.set_disk(p, content);
        }
    }
    // The configuration file is a dotfile: read it on its own.
    let config = shared.store().config_path.clone();
    if let Some(c) = config {
        let content = read(&c);
        shared.store().set_disk(&c, content);
    }
}

/// Compares the folders with what was read; reads what changed. Returns
/// whether the store changed.
fn poll_once(shared: &Shared) -> bool {
    let (roots, known, config) = {
        let store = shared.store();
        if store.scanning > 0 {
            return false;
        }
        (store.roots.clone(), store.disk_stamps(), store.config_path.clone())
    };
    let mut seen = HashSet::new();
    let mut changed = Vec::new();
    for root in &roots {
        for p in manifests(root, &shared.stopping).into_iter().chain(config.clone()) {
            let now = stamp(&p);
            if now.is_some() && known.get(&p) != now.as_ref() {
                changed.push(p.clone());
            }
            seen.insert(p);
        }
    }
    // Files read before that are gone now.
    for p in known.keys() {
        if !seen.contains(p) && !is_skipped(p) && stamp(p).is_none() {
            changed.push(p.clone());
        }
    }
    let mut any = false;
    for p in changed {
        let content = read(&p);
        any |= shared.store().set_disk(&p, content);
    }
    any
}
