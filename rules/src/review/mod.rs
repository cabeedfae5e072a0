//! Judging one change against the state of a cluster: the question an
//! admission webhook asks before the API server stores an object.
//!
//! Risk comes from joins, so it can arrive through any object of a chain: a
//! DaemonSet whose ServiceAccount already holds a cluster-wide pod watch, a
//! ClusterRoleBinding that hands that watch to an existing DaemonSet, a
//! ClusterRole whose labels aggregate it into a bound role, a ConfigMap that
//! drops an agent's node filter, a ServiceAccount that re-enables its token.
//! A review therefore works both ways:
//!
//! 1. **Backward**: the workloads whose analysis reads the changed object
//!    (in its old or its new form) are the ones it can affect.
//! 2. **Forward**: for those workloads, the objects their analysis reads
//!    (identity, bindings, roles and what aggregates into them, mounted
//!    ConfigMaps and Secrets, HPAs, FlowSchemas) are taken from the state, with
//!    the changed object in its new form — and, for the comparison, its old one.
//! 3. The ordinary engine analyses that small input. A workload under review is
//!    judged in full; any other change answers for the findings it
//!    introduces (absent, or less severe, before it), so that a harmless edit
//!    is not blamed for a risk that was already there.
//!
//! The work is proportional to what the change touches, not to the cluster:
//! [`ClusterState::plan`] copies the few objects involved (cheap: trees are
//! shared) so that a caller can hold a lock only that long, and
//! [`Plan::judge`] runs the analysis outside it.

mod reach;
mod state;

use crate::workload::controlling_owner;
pub use state::{ClusterState, ObjectKey, is_state_kind};

use crate::diagnostic::{Diagnostic, ObjectRef, Severity};
use crate::exempt::{ExemptionPolicy, Suppressed};
use crate::object::Object;
use crate::options::Options;
use crate::profile::ProfileSet;
use crate::rbac::{self, Principal};
use crate::source::{SourceId, Sources};
use state::{Links, Stored};
use std::collections::{HashMap, HashSet};

/// Kinds a review judges: those whose change can alter a workload's
/// analysis. FlowSchemas and the like only ever remove findings.
pub fn is_reviewed_kind(kind: &str) -> bool {
    crate::kube::kinds::analyzed(kind).is_some_and(|k| k.role != crate::kube::kinds::Role::Context)
}

/// One object being created or updated.
#[derive(Clone, Debug)]
pub struct Change {
    /// The stored form an update replaces (`oldObject`); `None` for a creation.
    pub old: Option<Object>,
    pub new: Object,
}

/// What a review found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Findings the change brings: about the reviewed object itself, and
    /// findings of the workloads it affects that were not there before.
    pub findings: Vec<Diagnostic>,
    /// Findings exemptions removed, with their reasons.
    pub suppressed: Vec<Suppressed>,
    /// Workloads whose analysis the change can alter.
    pub affected: Vec<ObjectRef>,
    /// Why the change was not judged, when it was not.
    pub not_judged: Option<NotJudged>,
}

/// Why a change is not judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotJudged {
    /// A kind no analysis reads (a Service, a custom resource).
    Kind(String),
    /// An object a controller owns (a Deployment's ReplicaSet): its owner
    /// was judged. Nothing to tell whoever created it.
    Owned { object: String, owner: String },
}

impl std::fmt::Display for NotJudged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotJudged::Kind(kind) => write!(f, "apiload does not analyse {kind} objects"),
            NotJudged::Owned { object, owner } => write!(f, "{object} is judged through its owner {owner}"),
        }
    }
}

/// The objects a review analyses, copied out of the state.
#[derive(Debug)]
pub struct Plan {
    subject: ObjectRef,
    subject_is_workload: bool,
    /// The state's objects plus the change in its old form; empty when no
    /// comparison is needed.
    before: Vec<Object>,
    after: Vec<Object>,
    affected: HashSet<ObjectRef>,
    /// Source of the new object: findings located there are about it.
    new_source: SourceId,
    not_judged: Option<NotJudged>,
}

impl ClusterState {
    /// Gathers what judging `change` needs. Cheap: proportional to the
    /// objects the change touches.
    pub fn plan(&self, change: &Change, profiles: &ProfileSet) -> Plan {
        let new = &change.new;
        let key = ObjectKey::of(new);
        let mut plan = Plan {
            subject: new.reference(),
            subject_is_workload: crate::workload::WorkloadKind::from_kind(&new.kind).is_some(),
            before: Vec::new(),
            after: Vec::new(),
            affected: HashSet::new(),
            new_source: new.source,
            not_judged: None,
        };
        if !is_reviewed_kind(&new.kind) {
            plan.not_judged = Some(NotJudged::Kind(new.kind.to_string()));
            return plan;
        }
        if let Some(owner) = controlling_owner(new) {
            plan.not_judged = Some(NotJudged::Owned { object: new.display(), owner });
            return plan;
        }
        let new_stored = Stored { object: new.clone(), links: Links::read(new) };
        // A workload's old form reaches no other workload, and nothing reads it.
        let old_stored = match plan.subject_is_workload {
            true => None,
            false => change.old.as_ref().map(|o| Stored { object: o.clone(), links: Links::read(o) }),
        };
        let named: Vec<&str> = profiles.config_maps_read_by_name().collect();
        let affected = self.affected_workloads(&new_stored, old_stored.as_ref(), &named);
        plan.affected = affected.iter().map(|k| self.reference(k, &key, new)).collect();

        plan.after = self.gather(&affected, &key, Some(&new_stored), &named);
        if !plan.subject_is_workload {
            plan.before = self.gather(&affected, &key, old_stored.as_ref(), &named);
        }
        plan
    }

    /// The ConfigMaps the analyses of the workloads `change` affects read
    /// (mounted, taken into the environment, or read by name through the
    /// API): what a front end that does not hold every ConfigMap fetches
    /// before it plans. Some may not exist.
    pub fn config_maps_read(&self, change: &Change, profiles: &ProfileSet) -> Vec<ObjectKey> {
        if !is_reviewed_kind(&change.new.kind) || controlling_owner(&change.new).is_some() {
            return Vec::new();
        }
        let key = ObjectKey::of(&change.new);
        let new_stored = Stored { object: change.new.clone(), links: Links::read(&change.new) };
        let old_stored = change.old.as_ref().map(|o| Stored { object: o.clone(), links: Links::read(o) });
        let named: Vec<&str> = profiles.config_maps_read_by_name().collect();
        let mut out = Vec::new();
        for w in self.affected_workloads(&new_stored, old_stored.as_ref(), &named) {
            let stored = if w == key { Some(&new_stored) } else { self.stored(&w) };
            if let Some(Stored { links: Links::Workload { configs, .. }, .. }) = stored {
                for (kind, name) in configs.iter().filter(|(k, _)| *k == "ConfigMap") {
                    out.push(ObjectKey::new(kind, &w.namespace, name));
                }
            }
            out.extend(named.iter().map(|n| ObjectKey::new("ConfigMap", &w.namespace, n)));
            // The parameters of cluster-proportional-autoscalers scaling it.
            for a in self.autoscalers_of(&w).into_iter().flatten() {
                if let Some(Stored { links: Links::Workload { autoscales: Some((target, Some(cm))), .. }, .. }) =
                    self.stored(a)
                {
                    out.push(ObjectKey::new("ConfigMap", &target.0, cm));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Workloads whose analysis the change (old and new form) can alter, sorted.
    fn affected_workloads(&self, new: &Stored, old: Option<&Stored>, named: &[&str]) -> Vec<ObjectKey> {
        let mut affected: HashSet<ObjectKey> = HashSet::new();
        self.affected_by(new, named, &mut affected);
        if let Some(old) = old {
            self.affected_by(old, named, &mut affected);
        }
        if crate::workload::WorkloadKind::from_kind(&new.object.kind).is_some() {
            affected.insert(ObjectKey::of(&new.object));
        }
        let mut affected: Vec<ObjectKey> = affected.into_iter().collect();
        affected.sort();
        affected
    }

    fn reference(&self, key: &ObjectKey, subject: &ObjectKey, new: &Object) -> ObjectRef {
        match self.get(key) {
            Some(o) if key != subject => o.reference(),
            _ => new.reference(),
        }
    }

    /// Workloads whose analysis reads `changed` (in the form given).
    /// `named`: ConfigMaps agents read by name, whichever workload mounts them.
    fn affected_by(&self, changed: &Stored, named: &[&str], out: &mut HashSet<ObjectKey>) {
        let obj = &changed.object;
        match (&*obj.kind, &changed.links) {
            ("ServiceAccount", _) => {
                out.extend(self.workloads_of_identity(obj.ns(), &obj.name).into_iter().flatten().cloned())
            }
            (_, Links::Binding { principals, .. }) => {
                for p in principals {
                    self.workloads_of_principal(p, out);
                }
            }
            ("Role", _) => self.workloads_bound_to(&ObjectKey::of(obj), out),
            (_, Links::ClusterRole { labels, .. }) => {
                for role in self.aggregated_into(&obj.name, labels) {
                    self.workloads_bound_to(&role, out);
                }
            }
            ("ConfigMap" | "Secret", _) => {
                let kind = if &*obj.kind == "ConfigMap" { "ConfigMap" } else { "Secret" };
                out.extend(self.workloads_reading(obj.ns(), kind, &obj.name).into_iter().flatten().cloned());
                for a in self.autoscalers_reading(obj.ns(), &obj.name).into_iter().flatten() {
                    if let Some(Stored { links: Links::Workload { autoscales: Some((target, _)), .. }, .. }) =
                        self.stored(a)
                    {
                        out.extend(self.workload_named(target));
                    }
                }
                if kind == "ConfigMap" && named.contains(&&*obj.name) {
                    out.extend(self.workloads_in(obj.ns()).into_iter().flatten().cloned());
                }
            }
            (_, Links::Hpa { target }) if self.workloads().contains(target) => {
                out.insert(target.clone());
            }
            // A workload joining or leaving a ServiceAccount changes whether
            // the identity is shared, and so what its grants show of the
            // others; an autoscaler changes what it scales.
            (_, Links::Workload { service_account, autoscales, .. }) => {
                out.extend(self.workloads_of_identity(obj.ns(), service_account).into_iter().flatten().cloned());
                if let Some((target, _)) = autoscales {
                    out.extend(self.workload_named(target));
                }
            }
            _ => {}
        }
    }

    fn workloads_of_principal(&self, p: &Principal, out: &mut HashSet<ObjectKey>) {
        match p {
            Principal::ServiceAccount { namespace, name } => {
                out.extend(self.workloads_of_identity(namespace, name).into_iter().flatten().cloned())
            }
            Principal::Group(g) if rbac::ALL_SERVICE_ACCOUNT_GROUPS.contains(&&**g) => {
                out.extend(self.workloads().iter().cloned())
            }
            Principal::Group(g) => {
                if let Some(ns) = g.strip_prefix("system:serviceaccounts:") {
                    out.extend(self.workloads_in(ns).into_iter().flatten().cloned())
                }
            }
        }
    }

    /// Workloads of every subject bound to `role`, by the state's bindings
    /// and the built-in ones.
    fn workloads_bound_to(&self, role: &ObjectKey, out: &mut HashSet<ObjectKey>) {
        for b in self.bindings_to(role).into_iter().flatten() {
            if let Some(Stored { links: Links::Binding { principals, .. }, .. }) = self.stored(b) {
                for p in principals {
                    self.workloads_of_principal(p, out);
                }
            }
        }
        if &*role.kind == "ClusterRole" {
            for b in rbac::builtin_bindings().iter().filter(|b| *b.role_name == *role.name) {
                for p in b.subjects.iter().filter_map(|s| Principal::of(&s.kind)) {
                    self.workloads_of_principal(&p, out);
                }
            }
        }
    }

    /// A ClusterRole and every ClusterRole that aggregates it, transitively.
    fn aggregated_into(&self, name: &str, labels: &[(Box<str>, Box<str>)]) -> Vec<ObjectKey> {
        let mut found = vec![ObjectKey::new("ClusterRole", "", name)];
        let mut queue: Vec<Vec<(Box<str>, Box<str>)>> = vec![labels.to_vec()];
        while let Some(labels) = queue.pop() {
            for (role, role_labels, selectors) in self.aggregating_roles() {
                if !found.contains(&role) && selectors.iter().any(|s| s.matches(&labels)) {
                    found.push(role);
                    queue.push(role_labels);
                }
            }
        }
        found
    }

    /// ClusterRoles with an aggregation rule: the state's, and the built-in
    /// ones the state does not replace. `(key, labels, selectors)`.
    fn aggregating_roles(&self) -> Vec<AggregatingRole> {
        let mut roles = Vec::new();
        for k in self.cluster_roles() {
            if let Some(Stored { links: Links::ClusterRole { labels, aggregation: Some(sel) }, .. }) = self.stored(k) {
                roles.push((k.clone(), labels.clone(), sel.clone()));
            }
        }
        for r in rbac::builtin_aggregating_roles() {
            let key = ObjectKey::new("ClusterRole", "", &r.name);
            if !self.cluster_roles().contains(&key) {
                roles.push((key, r.labels.clone(), r.aggregation.clone().unwrap_or_default()));
            }
        }
        roles
    }

    /// Every object the analyses of `workloads` read, with the subject in
    /// the form given (`None`: absent).
    fn gather(
        &self,
        workloads: &[ObjectKey],
        subject: &ObjectKey,
        form: Option<&Stored>,
        named: &[&str],
    ) -> Vec<Object> {
        let mut g = Gatherer { state: self, subject, form, named, seen: HashSet::new(), objects: Vec::new() };
        // The subject itself, and what it points at: a binding's role, a
        // ClusterRole's aggregated roles.
        match form.map(|s| &s.links) {
            None => {
                g.seen.insert(subject.clone());
            }
            Some(Links::ClusterRole { .. }) => g.role(subject),
            Some(Links::Binding { role, .. }) => {
                g.add(subject);
                g.role(role);
            }
            Some(_) => {
                g.add(subject);
            }
        }
        for w in workloads {
            g.workload(w);
        }
        for k in self.everywhere() {
            g.add(k);
        }
        g.objects
    }
}

/// A ClusterRole with an aggregation rule: key, labels, selectors.
type AggregatingRole = (ObjectKey, Vec<(Box<str>, Box<str>)>, Vec<rbac::LabelSelector>);

/// Collects objects once each, the subject in its reviewed form.
struct Gatherer<'a> {
    state: &'a ClusterState,
    subject: &'a ObjectKey,
    form: Option<&'a Stored>,
    named: &'a [&'a str],
    seen: HashSet<ObjectKey>,
    objects: Vec<Object>,
}

impl<'a> Gatherer<'a> {
    fn lookup(&self, key: &ObjectKey) -> Option<&'a Stored> {
        if key == self.subject { self.form } else { self.state.stored(key) }
    }

    /// Adds an object when it exists; returns its links the first time.
    fn add(&mut self, key: &ObjectKey) -> Option<&'a Links> {
        if !self.seen.insert(key.clone()) {
            return None;
        }
        let stored = self.lookup(key)?;
        self.objects.push(stored.object.clone());
        Some(&stored.links)
    }

    fn workload(&mut self, key: &ObjectKey) {
        let Some(stored) = self.lookup(key) else { return };
        self.add(key);
        let Links::Workload { service_account, configs, .. } = &stored.links else { return };
        let ns = &*key.namespace;
        self.add(&ObjectKey::new("ServiceAccount", ns, service_account));
        // The other workloads running as the same ServiceAccount: whether the
        // identity is shared decides what its grants show of this one.
        for other in self.state.workloads_of_identity(ns, service_account).into_iter().flatten() {
            self.add(other);
        }
        self.add(&ObjectKey::new("Namespace", "", ns));
        let principals = [
            Principal::ServiceAccount { namespace: ns.into(), name: service_account.clone() },
            Principal::Group(rbac::namespace_group(ns).into()),
            Principal::Group(rbac::ALL_SERVICE_ACCOUNT_GROUPS[0].into()),
            Principal::Group(rbac::ALL_SERVICE_ACCOUNT_GROUPS[1].into()),
        ];
        for p in &principals {
            for b in self.state.bindings_of(p).into_iter().flatten() {
                if let Some(Links::Binding { role, .. }) = self.add(b) {
                    self.role(role);
                }
            }
        }
        for (kind, name) in configs {
            self.add(&ObjectKey::new(kind, ns, name));
        }
        for name in self.named {
            self.add(&ObjectKey::new("ConfigMap", ns, name));
        }
        for h in self.state.hpas_of(key).into_iter().flatten() {
            self.add(h);
        }
        // Cluster-proportional-autoscalers scaling it, and their parameters.
        for a in self.state.autoscalers_of(key).into_iter().flatten() {
            if let Some(Links::Workload { autoscales: Some((target, Some(config_map))), .. }) = self.add(a) {
                self.add(&ObjectKey::new("ConfigMap", &target.0, config_map));
            }
        }
    }

    /// A role and, for an aggregating ClusterRole, every ClusterRole it aggregates.
    fn role(&mut self, key: &ObjectKey) {
        if self.seen.contains(key) {
            return;
        }
        let selectors = match self.add(key) {
            Some(Links::ClusterRole { aggregation, .. }) => aggregation.clone(),
            Some(_) => None,
            // Not in the state: maybe a built-in role, whose selectors are known.
            None if &*key.kind == "ClusterRole" => {
                rbac::builtin_role(None, &key.name).and_then(|r| r.aggregation.clone())
            }
            None => None,
        };
        let Some(selectors) = selectors else { return };
        let mut candidates: Vec<&ObjectKey> = self.state.cluster_roles().iter().collect();
        if &*self.subject.kind == "ClusterRole" {
            candidates.push(self.subject);
        }
        for c in candidates {
            if self.seen.contains(c) {
                continue;
            }
            if let Some(Stored { links: Links::ClusterRole { labels, .. }, .. }) = self.lookup(c)
                && selectors.iter().any(|s| s.matches(labels))
            {
                self.role(&c.clone());
            }
        }
    }
}

impl Plan {
    /// The workloads the change can affect.
    pub fn affected(&self) -> impl Iterator<Item = &ObjectRef> {
        self.affected.iter()
    }

    /// The object under review.
    pub fn subject(&self) -> &ObjectRef {
        &self.subject
    }

    /// Number of objects the review analyses.
    pub fn size(&self) -> usize {
        self.before.len() + self.after.len()
    }

    /// Runs the analysis. `sources` must hold the sources of every object
    /// of the state and of the change.
    pub fn judge(
        self,
        sources: &Sources,
        profiles: &ProfileSet,
        options: &Options,
        exemptions: &ExemptionPolicy,
    ) -> Verdict {
        let mut affected: Vec<ObjectRef> = self.affected.iter().cloned().collect();
        affected.sort();
        if let Some(reason) = self.not_judged {
            return Verdict { not_judged: Some(reason), ..Verdict::default() };
        }
        // A cluster's objects have their namespaces: nothing to infer.
        let options = Options { namespace_given: true, ..options.clone() };
        let run = |objects: Vec<Object>| {
            let mut input = crate::Input::with_profiles(options.clone(), profiles.clone());
            input.set_exemptions(exemptions.clone());
            for o in objects {
                input.add_object(o);
            }
            input.analyze(sources)
        };
        let new_source = self.new_source;
        let subject = self.subject;
        let relevant = |d: &Diagnostic| match &d.workload {
            Some(w) => self.affected.contains(w),
            None => d.location.source == new_source,
        };
        let after = run(self.after);
        let (mut findings, suppressed): (Vec<Diagnostic>, Vec<Suppressed>) = (
            after.diagnostics.into_iter().filter(relevant).collect(),
            after.suppressed.into_iter().filter(|s| relevant(&s.diagnostic)).collect(),
        );
        if !self.subject_is_workload {
            // Keep what the change introduces: findings of the workloads it
            // affects that were absent, or less severe, before.
            let before = run(self.before);
            let mut was: HashMap<(&'static str, ObjectRef), Severity> = HashMap::new();
            for d in before.diagnostics.iter().filter(|d| relevant(d)) {
                if let Some(w) = &d.workload {
                    let e = was.entry((d.rule.id, w.clone())).or_insert(d.severity);
                    *e = (*e).max(d.severity);
                }
            }
            findings.retain(|d| match &d.workload {
                Some(w) if *w != subject => was.get(&(d.rule.id, w.clone())).is_none_or(|s| d.severity > *s),
                _ => true,
            });
        }
        Verdict { findings, suppressed, affected, not_judged: None }
    }
}
