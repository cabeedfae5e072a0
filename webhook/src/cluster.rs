//! The webhook's picture of the cluster: the engine's indexed state, kept by
//! the watches (live mode) or read from files (static mode), plus what the
//! webhook itself admitted and has not yet seen come back through a watch.
//!
//! Why the last part: a binding admitted now and a DaemonSet reviewed a
//! moment later must meet, even before the binding's watch event arrives —
//! otherwise that order would let a risk through. An admitted object is
//! therefore put in the state at once. If no watch event confirms it in time
//! (another webhook denied it, the client gave up), the state goes back to
//! what the watches said.

use apiload_rules::Object;
use apiload_rules::review::{ClusterState, ObjectKey};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An admitted object, and what the state held before it.
struct Admitted {
    at: Instant,
    object: Object,
    previous: Option<Object>,
}

pub struct Cluster {
    state: RwLock<ClusterState>,
    admitted: Mutex<HashMap<ObjectKey, Admitted>>,
    /// Live mode: admitted objects wait for their watch event.
    confirm_admissions: bool,
    ready: AtomicBool,
    draining: AtomicBool,
    nodes: AtomicU64,
    /// Per collection: unix milliseconds of the last list or event.
    last_update: Mutex<HashMap<&'static str, u64>>,
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Cluster {
    pub fn new(confirm_admissions: bool) -> Cluster {
        Cluster {
            state: RwLock::new(ClusterState::new()),
            admitted: Mutex::new(HashMap::new()),
            confirm_admissions,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            nodes: AtomicU64::new(0),
            last_update: Mutex::new(HashMap::new()),
        }
    }

    /// The state, for planning a review. A panic elsewhere never locks
    /// everyone out: a poisoned lock is still used (the state is always
    /// consistent between calls).
    pub fn read(&self) -> RwLockReadGuard<'_, ClusterState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, ClusterState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn admitted(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Admitted>> {
        self.admitted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an object the webhook allowed (not a dry run). `watched`:
    /// a watch will confirm it (in live mode); ConfigMaps, which are read
    /// on demand and refreshed by age, are not.
    pub fn record_admitted(&self, object: Object, watched: bool) {
        let key = ObjectKey::of(&object);
        let mut state = self.write();
        if self.confirm_admissions && watched {
            let previous = state.get(&key).cloned();
            let mut admitted = self.admitted();
            match admitted.get_mut(&key) {
                Some(a) => a.object = object.clone(),
                None => {
                    admitted.insert(key, Admitted { at: Instant::now(), object: object.clone(), previous });
                }
            }
        }
        state.upsert(object);
    }

    /// A fresh list of one collection replaces what the state had of it.
    /// Admitted objects the list does not show yet stay, waiting for their
    /// watch event; what the list shows becomes what they fall back to.
    pub fn relisted(&self, kind: &str, objects: Vec<Object>) {
        let mut state = self.write();
        state.replace_kind(kind, objects);
        for (key, a) in self.admitted().iter_mut().filter(|(k, _)| &*k.kind == kind) {
            a.previous = state.get(key).cloned();
            state.upsert(a.object.clone());
        }
    }

    /// A watch delivered `key`: what it says is the truth from now on.
    pub fn confirmed(&self, key: &ObjectKey) {
        if self.confirm_admissions {
            self.admitted().remove(key);
        }
    }

    /// Takes back admissions no watch confirmed within `max_age`.
    pub fn expire_admissions(&self, max_age: Duration) -> usize {
        let mut state = self.write();
        let mut admitted = self.admitted();
        let stale: Vec<ObjectKey> =
            admitted.iter().filter(|(_, a)| a.at.elapsed() > max_age).map(|(k, _)| k.clone()).collect();
        for key in &stale {
            if let Some(a) = admitted.remove(key) {
                match a.previous {
                    Some(previous) => {
                        state.upsert(previous);
                    }
                    None => {
                        state.remove(key);
                    }
                }
            }
        }
        stale.len()
    }

    pub fn pending_admissions(&self) -> usize {
        self.admitted().len()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Ready: caches synced and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn set_nodes(&self, n: u64) {
        self.nodes.store(n, Ordering::Relaxed);
    }

    /// Nodes the cluster has now (0 in static mode without Node objects).
    pub fn nodes(&self) -> u64 {
        self.nodes.load(Ordering::Relaxed)
    }

    pub fn touch(&self, collection: &'static str) {
        self.last_update.lock().unwrap_or_else(|e| e.into_inner()).insert(collection, now_millis());
    }

    /// Seconds since each collection was last listed or had an event.
    pub fn ages(&self) -> Vec<(&'static str, f64)> {
        let now = now_millis();
        let mut ages: Vec<(&'static str, f64)> = self
            .last_update
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, &t)| (*k, now.saturating_sub(t) as f64 / 1000.0))
            .collect();
        ages.sort_by(|a, b| a.0.cmp(b.0));
        ages
    }

    /// Objects cached, by kind.
    pub fn sizes(&self) -> Vec<(String, usize)> {
        let state = self.read();
        let mut by_kind: HashMap<&str, usize> = HashMap::new();
        for o in state.objects() {
            *by_kind.entry(&o.kind).or_default() += 1;
        }
        let mut sizes: Vec<(String, usize)> = by_kind.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        sizes.sort();
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiload_rules::SourceId;

    fn cm(name: &str, value: &str) -> Object {
        crate::convert::object(
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "n"}, "data": {"k": value}}),
            SourceId(0),
            "",
            "",
            "",
        )
        .unwrap()
    }

    #[test]
    fn unconfirmed_admissions_are_taken_back_and_confirmed_ones_stay() {
        let c = Cluster::new(true);
        c.write().upsert(cm("a", "old"));
        c.record_admitted(cm("a", "new"), true);
        c.record_admitted(cm("b", "created"), true);
        c.record_admitted(cm("c", "confirmed"), true);
        c.confirmed(&ObjectKey::new("ConfigMap", "n", "c"));
        assert_eq!(c.pending_admissions(), 2);
        assert_eq!(c.expire_admissions(Duration::from_secs(3600)), 0);
        assert_eq!(c.expire_admissions(Duration::ZERO), 2);
        let state = c.read();
        let a = state.get(&ObjectKey::new("ConfigMap", "n", "a")).unwrap();
        assert_eq!(a.node.path(&["data", "k"]).and_then(|v| v.as_str()), Some("old"));
        assert!(state.get(&ObjectKey::new("ConfigMap", "n", "b")).is_none());
        assert!(state.get(&ObjectKey::new("ConfigMap", "n", "c")).is_some());
    }

    #[test]
    fn a_relist_keeps_admitted_objects_it_does_not_show_yet() {
        let c = Cluster::new(true);
        c.record_admitted(cm("a", "admitted"), true);
        c.relisted("ConfigMap", vec![cm("b", "listed")]);
        assert_eq!(c.read().len(), 2);
        // Never confirmed: the relist's view (no `a`) wins.
        c.expire_admissions(Duration::ZERO);
        assert!(c.read().get(&ObjectKey::new("ConfigMap", "n", "a")).is_none());
        assert!(c.read().get(&ObjectKey::new("ConfigMap", "n", "b")).is_some());
    }

    #[test]
    fn static_mode_keeps_what_it_admitted() {
        let c = Cluster::new(false);
        c.record_admitted(cm("a", "x"), true);
        assert_eq!(c.expire_admissions(Duration::ZERO), 0);
        assert_eq!(c.read().len(), 1);
    }
}
