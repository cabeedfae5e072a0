//! The review's two directions, asked about any number of objects at once:
//! for a front end that keeps a whole [`ClusterState`] up to date and
//! re-analyses only what a batch of changes reaches (the language server).
//! These are the same walks [`ClusterState::plan`] makes, without a subject
//! in two forms: the caller asks once against the state before its changes
//! and once against the state after them.

use super::state::{Links, Stored};
use super::{ClusterState, Gatherer, ObjectKey};
use crate::object::Object;
use crate::profile::ProfileSet;
use std::collections::HashSet;

impl ClusterState {
    /// Whether the state keeps `key` as a workload.
    pub fn is_workload(&self, key: &ObjectKey) -> bool {
        self.workloads().contains(key)
    }

    /// Backward: the workloads of this state whose analysis reads `object`
    /// in the form given (and `object` itself when it is a workload), added
    /// to `out`. Ask with an object's old form against the state that holds
    /// it and with its new form against the state after the change.
    pub fn workloads_reached_by(&self, object: &Object, profiles: &ProfileSet, out: &mut HashSet<ObjectKey>) {
        let named: Vec<&str> = profiles.config_maps_read_by_name().collect();
        let stored = Stored { object: object.clone(), links: Links::read(object) };
        self.affected_by(&stored, &named, out);
        if crate::workload::WorkloadKind::from_kind(&object.kind).is_some() {
            out.insert(ObjectKey::of(object));
        }
    }

    /// The bindings whose role is the Role or ClusterRole `role` (in the
    /// form given) or a ClusterRole that aggregates it: those whose
    /// resolution a change of `role` can alter.
    pub fn bindings_reaching(&self, role: &Object, out: &mut HashSet<ObjectKey>) {
        let key = ObjectKey::of(role);
        let roles = match Links::read(role) {
            Links::ClusterRole { labels, .. } => self.aggregated_into(&role.name, &labels),
            _ => vec![key],
        };
        for r in &roles {
            out.extend(self.bindings_to(r).into_iter().flatten().cloned());
        }
    }

    /// Forward: every object of this state the analyses of `workloads` read,
    /// and the objects `others` with what their own findings read (a
    /// binding's role, a role's aggregated roles), each once.
    pub fn objects_read(&self, workloads: &[ObjectKey], others: &[ObjectKey], profiles: &ProfileSet) -> Vec<Object> {
        // `gather` takes a subject in a given form; here there is none, so
        // the subject is a key no object has (kinds are never empty).
        let nothing = ObjectKey::new("", "", "");
        let named: Vec<&str> = profiles.config_maps_read_by_name().collect();
        let mut objects = self.gather(workloads, &nothing, None, &named);
        let mut g = Gatherer {
            state: self,
            subject: &nothing,
            form: None,
            named: &named,
            seen: HashSet::new(),
            objects: Vec::new(),
        };
        g.seen.extend(objects.iter().map(ObjectKey::of));
        for k in others {
            match self.stored(k).map(|s| &s.links) {
                Some(Links::Binding { role, .. }) => {
                    g.add(k);
                    g.role(role);
                }
                Some(Links::ClusterRole { .. }) => g.role(k),
                Some(_) => {
                    g.add(k);
                }
                None => {}
            }
        }
        objects.append(&mut g.objects);
        objects
    }
}
