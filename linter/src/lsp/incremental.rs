//! Incremental re-analysis: after an edit, the engine re-runs only for the
//! workloads the edit can reach, and every other finding is kept from the
//! last analysis. The result is the one a full analysis gives (the test
//! below checks it after every edit of a scripted sequence); edits it cannot
//! account for exactly fall back to a full analysis, with the reason.
//!
//! For the documents that changed:
//!
//! 1. **Changed objects**: the old and new objects of each changed slot,
//!    matched by equality (the tree with its spans): an object that only
//!    moved in its file is changed, since its findings point into it.
//! 2. **Reached workloads**: the review's backward links
//!    (`ClusterState::workloads_reached_by`), asked with the old forms
//!    against the state before the edit and the new forms against the state
//!    after it — the webhook's review planning, not a second reachability.
//! 3. **Findings not tied to a workload** are tied to the object their
//!    location is in. Those of a changed object, and of the bindings whose
//!    role resolution a changed role can alter (`ClusterState::bindings_reaching`:
//!    unresolved role references, grants to broad groups), are recomputed;
//!    the rules about a role's own rules or a ConfigMap's own data depend on
//!    that object only. Reading errors of a changed file come from its new
//!    reading.
//! 4. One engine run over the objects the reached workloads' analyses read
//!    (`ClusterState::objects_read`, the review's forward walk) and those
//!    objects. Its findings replace the findings of step 2 and 3; every other
//!    finding stays.
//!
//! What is not per workload or per object falls back to a full analysis:
//! namespaces inferred from bindings (AL009: any object without a namespace
//! while the configuration names none), a duplicate object (AL002) among the
//! changed keys, configuration exemptions (AL007 `unused-exemption` counts
//! over the whole workspace), FlowSchemas, PriorityLevelConfigurations and
//! Namespaces (every analysis reads them), workloads owned by a controller
//! (the state does not keep them), and edits reaching more than half of the
//! workloads (a binding to `system:authenticated`), where one full run is as
//! cheap.

use super::snapshot::key_of;
use apiload_rules::exempt::ExemptionPolicy;
use apiload_rules::kube::kinds;
use apiload_rules::object::ReadSource;
use apiload_rules::review::{ClusterState, ObjectKey};
use apiload_rules::setup::Setup;
use apiload_rules::workload::controlling_owner;
use apiload_rules::{Diagnostic, Input, Object, Report, SourceId, Sources};
use apiload_yaml::Span;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What a baseline's findings were computed under; another key means a full run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// Bumped whenever the workspace's settings are read again.
    pub settings: u64,
    pub namespace: Arc<str>,
    /// Expiry of exemptions is judged by the day.
    pub today: String,
}

/// The last analysis, kept to be updated by the next edit.
pub struct Baseline {
    pub key: Key,
    state: ClusterState,
    /// Analysed objects by key, counted: a key held twice is a duplicate (AL002).
    counts: HashMap<ObjectKey, u32>,
    /// Slots holding an object whose namespace was defaulted.
    defaulted: HashSet<usize>,
    /// Slots holding a workload a controller owns.
    owned: HashSet<usize>,
    /// The findings of the workspace as it is now, by slot, in canonical order.
    pub by_slot: Vec<Vec<Diagnostic>>,
}

/// A slot whose reading changed (`None`: not a manifest, or no text).
pub struct Change<'a> {
    pub slot: usize,
    pub old: Option<&'a ReadSource>,
    pub new: Option<&'a ReadSource>,
}

/// What an incremental run did.
pub struct Step {
    /// The engine's run over the reached workloads (its findings moved out).
    pub report: Report,
    /// Workloads re-analysed: their analyses in `report` are current.
    pub fresh: HashSet<ObjectKey>,
    /// Workloads the edit reached (including removed ones).
    pub reached: usize,
    /// Objects the run analysed.
    pub objects: usize,
    /// Slots whose findings changed, and the changed slots.
    pub touched: HashSet<usize>,
}

/// The order findings are published in, whichever way they were computed:
/// the engine's order (location, rule) with ties broken by the message.
pub fn canonical(v: &mut [Diagnostic]) {
    v.sort_by(|a, b| {
        (a.location.span.start, a.location.span.end, a.rule.id, &a.message).cmp(&(
            b.location.span.start,
            b.location.span.end,
            b.rule.id,
            &b.message,
        ))
    });
}

fn is_analyzed(o: &Object) -> bool {
    kinds::is_analyzed_kind(&o.kind)
}

fn owned_workload(o: &Object) -> bool {
    apiload_rules::workload::WorkloadKind::from_kind(&o.kind).is_some() && controlling_owner(o).is_some()
}

fn same_object(a: &Object, b: &Object) -> bool {
    a.source == b.source
        && a.kind == b.kind
        && a.api_version == b.api_version
        && a.name == b.name
        && a.namespace == b.namespace
        && a.namespace_defaulted == b.namespace_defaulted
        && a.name_span == b.name_span
        && (Arc::ptr_eq(&a.node, &b.node) || *a.node == *b.node)
}

/// Where a finding belongs, for deciding whether the edit can change it.
#[derive(Debug)]
enum Anchor {
    /// About a workload of the state.
    Workload(ObjectKey),
    /// Located in an object: `(source, its span)`.
    Object(SourceId, Span),
    /// Located in no object of its source.
    Slot(SourceId),
}

fn contains(outer: Span, inner: Span) -> bool {
    outer.start <= inner.start && inner.end <= outer.end.max(outer.start)
}

/// `workload`: whether a key is a workload of the state this finding was computed with.
fn anchor<'a>(
    d: &Diagnostic,
    workload: &dyn Fn(&ObjectKey) -> bool,
    objects: &dyn Fn(SourceId) -> Vec<&'a Object>,
) -> Anchor {
    if let Some(w) = &d.workload {
        let k = key_of(w);
        if workload(&k) {
            return Anchor::Workload(k);
        }
    }
    let src = d.location.source;
    // The first object that holds the location, as exemptions find a finding's subject.
    match objects(src).into_iter().find(|o| contains(o.node.span, d.location.span)) {
        Some(o) => Anchor::Object(src, o.node.span),
        None => Anchor::Slot(src),
    }
}

fn flags(read: Option<&ReadSource>) -> (bool, bool) {
    let objects = read.map_or(&[][..], |r| &r.objects[..]);
    (objects.iter().any(|o| o.namespace_defaulted), objects.iter().any(owned_workload))
}

impl Baseline {
    /// The baseline of a full analysis of `reads` (by slot) that found `by_slot`.
    pub fn new(key: Key, reads: &[Option<&ReadSource>], mut by_slot: Vec<Vec<Diagnostic>>) -> Baseline {
        let mut b = Baseline {
            key,
            state: ClusterState::new(),
            counts: HashMap::new(),
            defaulted: HashSet::new(),
            owned: HashSet::new(),
            by_slot: Vec::new(),
        };
        for (slot, read) in reads.iter().enumerate() {
            let (defaulted, owned) = flags(*read);
            if defaulted {
                b.defaulted.insert(slot);
            }
            if owned {
                b.owned.insert(slot);
            }
            // In slot order, a later definition replaces an earlier one, as in the inventory.
            for o in read.iter().flat_map(|r| &r.objects).filter(|o| is_analyzed(o)) {
                *b.counts.entry(ObjectKey::of(o)).or_default() += 1;
                b.state.upsert(o.clone());
            }
        }
        for v in &mut by_slot {
            canonical(v);
        }
        b.by_slot = by_slot;
        b
    }

    /// Updates the findings for `changes`. `reads` are every slot's readings
    /// after the changes. On `Err` (the reason a full analysis is needed) the
    /// baseline is spent: the caller runs in full and makes a new one.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        setup: &Setup,
        policy: ExemptionPolicy,
        sources: &Sources,
        reads: &[Option<&ReadSource>],
        changes: &[Change<'_>],
        fall_back_above: Option<usize>,
    ) -> Result<Step, String> {
        if !setup.exemptions.config.is_empty() {
            return Err("configuration exemptions (unused-exemption is judged over the whole workspace)".into());
        }
        let changed_slots: HashSet<usize> = changes.iter().map(|c| c.slot).collect();
        // 1. Changed objects.
        let mut old_changed: Vec<&Object> = Vec::new();
        let mut new_changed: Vec<&Object> = Vec::new();
        for c in changes {
            let old = c.old.map_or(&[][..], |r| &r.objects[..]);
            let new = c.new.map_or(&[][..], |r| &r.objects[..]);
            let mut by_span: HashMap<(u32, u32), Vec<&Object>> = HashMap::new();
            for o in new {
                by_span.entry((o.node.span.start, o.node.span.end)).or_default().push(o);
            }
            for o in old {
                let same = by_span.get_mut(&(o.node.span.start, o.node.span.end)).and_then(|v| {
                    let i = v.iter().position(|n| same_object(o, n))?;
                    Some(v.swap_remove(i))
                });
                if same.is_none() {
                    old_changed.push(o);
                }
            }
            let mut left: Vec<&Object> = by_span.into_values().flatten().collect();
            left.sort_by_key(|o| o.node.span.start);
            new_changed.extend(left);
            let (d_old, o_old) = (self.defaulted.contains(&c.slot), self.owned.contains(&c.slot));
            let (d_new, o_new) = flags(c.new);
            if d_old || d_new || o_old || o_new {
                self.defaulted.remove(&c.slot);
                self.owned.remove(&c.slot);
                if d_new {
                    self.defaulted.insert(c.slot);
                }
                if o_new {
                    self.owned.insert(c.slot);
                }
                if (d_old || d_new) && !setup.options.namespace_given {
                    return Err("an object names no namespace (AL009 infers it from the whole workspace)".into());
                }
                if o_old || o_new {
                    return Err("a workload owned by a controller changed".into());
                }
            }
        }
        if !self.defaulted.is_empty() && !setup.options.namespace_given {
            return Err("objects name no namespace (AL009 infers it from the whole workspace)".into());
        }
        if !self.owned.is_empty() {
            return Err("the workspace holds workloads owned by a controller".into());
        }
        let old_analyzed: Vec<&Object> = old_changed.iter().copied().filter(|o| is_analyzed(o)).collect();
        let new_analyzed: Vec<&Object> = new_changed.iter().copied().filter(|o| is_analyzed(o)).collect();
        for o in old_analyzed.iter().chain(&new_analyzed) {
            if kinds::analyzed(&o.kind).is_some_and(|k| k.role == kinds::Role::Context) {
                return Err(format!("a {} changed (every analysis reads it)", o.kind));
            }
        }
        // Duplicates: every changed key must be held once, before and after.
        let keys: Vec<ObjectKey> = old_analyzed.iter().chain(&new_analyzed).map(|o| ObjectKey::of(o)).collect();
        let dup =
            |counts: &HashMap<ObjectKey, u32>| keys.iter().find(|k| counts.get(*k).is_some_and(|n| *n > 1)).cloned();
        if let Some(k) = dup(&self.counts) {
            return Err(format!("{} {} is defined more than once", k.kind, k.name));
        }
        for o in &old_analyzed {
            let k = ObjectKey::of(o);
            if let Some(n) = self.counts.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&k);
                }
            }
        }
        for o in &new_analyzed {
            *self.counts.entry(ObjectKey::of(o)).or_default() += 1;
        }
        if let Some(k) = dup(&self.counts) {
            return Err(format!("{} {} is defined more than once", k.kind, k.name));
        }

        // 2. and 3., before the edit.
        let profiles = &setup.profiles;
        let mut reached: HashSet<ObjectKey> = HashSet::new();
        let mut bindings: HashSet<ObjectKey> = HashSet::new();
        for o in &old_analyzed {
            self.state.workloads_reached_by(o, profiles, &mut reached);
            if matches!(&*o.kind, "Role" | "ClusterRole") {
                self.state.bindings_reaching(o, &mut bindings);
            }
        }
        let objects_of = |slot: SourceId, old: bool| -> Vec<&Object> {
            let i = slot.0 as usize;
            let read = match changes.iter().find(|c| c.slot == i) {
                Some(c) if old => c.old,
                Some(c) => c.new,
                None => reads.get(i).copied().flatten(),
            };
            read.map_or(Vec::new(), |r| r.objects.iter().collect())
        };
        let old_anchors: Vec<Vec<Anchor>> = {
            let state = &self.state;
            let workload = |k: &ObjectKey| state.is_workload(k);
            let objects = |s: SourceId| objects_of(s, true);
            self.by_slot.iter().map(|v| v.iter().map(|d| anchor(d, &workload, &objects)).collect()).collect()
        };
        let mut dirty_spans: HashSet<(SourceId, Span)> = HashSet::new();
        let mut add_binding_spans = |state: &ClusterState, bindings: &HashSet<ObjectKey>| {
            for b in bindings {
                if let Some(o) = state.get(b) {
                    dirty_spans.insert((o.source, o.node.span));
                }
            }
        };
        add_binding_spans(&self.state, &bindings);
        // The edit.
        for o in &old_analyzed {
            self.state.remove(&ObjectKey::of(o));
        }
        for o in &new_analyzed {
            self.state.upsert((*o).clone());
        }
        // 2. and 3., after it.
        let mut bindings_after: HashSet<ObjectKey> = HashSet::new();
        for o in &new_analyzed {
            self.state.workloads_reached_by(o, profiles, &mut reached);
            if matches!(&*o.kind, "Role" | "ClusterRole") {
                self.state.bindings_reaching(o, &mut bindings_after);
            }
        }
        add_binding_spans(&self.state, &bindings_after);
        bindings.extend(bindings_after);
        let total = self.state.workload_count();
        let limit = fall_back_above.unwrap_or(total / 2).max(1);
        if reached.len() > limit {
            return Err(format!("the edit reaches {} of {total} workloads", reached.len()));
        }
        let dirty_old: HashSet<(SourceId, Span)> =
            old_changed.iter().map(|o| (o.source, o.node.span)).chain(dirty_spans.iter().copied()).collect();
        let dirty_new: HashSet<(SourceId, Span)> =
            new_changed.iter().map(|o| (o.source, o.node.span)).chain(dirty_spans.iter().copied()).collect();

        // 4. The engine over what the reached workloads read, and the dirty objects.
        let mut fresh: Vec<ObjectKey> = reached.iter().filter(|k| self.state.is_workload(k)).cloned().collect();
        fresh.sort();
        let mut others: Vec<ObjectKey> =
            bindings.into_iter().chain(new_analyzed.iter().map(|o| ObjectKey::of(o))).collect();
        others.sort();
        others.dedup();
        let objects = self.state.objects_read(&fresh, &others, profiles);
        let n_objects = objects.len();
        let mut input = Input::with_profiles(setup.options.clone(), profiles.clone());
        input.set_exemptions(policy);
        for o in objects {
            input.add_object(o);
        }
        for c in changes {
            if let Some(r) = c.new {
                input.add_read(ReadSource { objects: Vec::new(), diagnostics: r.diagnostics.clone() });
            }
        }
        let mut report = input.analyze(sources);

        // Merge: the findings the edit can change come from this run.
        let dirty = |a: &Anchor, spans: &HashSet<(SourceId, Span)>| match a {
            Anchor::Workload(k) => reached.contains(k),
            Anchor::Object(s, span) => spans.contains(&(*s, *span)),
            Anchor::Slot(s) => changed_slots.contains(&(s.0 as usize)),
        };
        self.by_slot.resize_with(sources.len(), Vec::new);
        let mut touched: HashSet<usize> = changed_slots.clone();
        for (slot, (v, anchors)) in self.by_slot.iter_mut().zip(old_anchors).enumerate() {
            if anchors.iter().any(|a| dirty(a, &dirty_old)) {
                let mut keep = anchors.iter().map(|a| !dirty(a, &dirty_old));
                v.retain(|_| keep.next().unwrap_or(true));
                touched.insert(slot);
            }
        }
        let state = &self.state;
        let workload = |k: &ObjectKey| state.is_workload(k);
        let objects = |s: SourceId| objects_of(s, false);
        for d in std::mem::take(&mut report.diagnostics) {
            let slot = d.location.source.0 as usize;
            if slot < self.by_slot.len() && dirty(&anchor(&d, &workload, &objects), &dirty_new) {
                self.by_slot[slot].push(d);
                touched.insert(slot);
            }
        }
        for &slot in &touched {
            if let Some(v) = self.by_slot.get_mut(slot) {
                canonical(v);
            }
        }
        Ok(Step { report, fresh: fresh.into_iter().collect(), reached: reached.len(), objects: n_objects, touched })
    }
}

#[cfg(test)]
mod tests {
    //! The invariant that makes the incremental path safe: after every edit
    //! of a scripted and a pseudo-random sequence, its findings are those of
    //! an analysis of the whole workspace from scratch.

    use super::*;
    use crate::lsp::analysis::{self, parse};
    use crate::lsp::settings::{self, WorkspaceSettings};
    use apiload_rules::Source;

    fn app(i: usize) -> String {
        let ns = format!("team-{}", i % 4);
        let name = format!("app-{i}");
        let kind = if i.is_multiple_of(3) { "DaemonSet" } else { "Deployment" };
        let mut out = format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: {ns}}}\n---\n\
apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  template:\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: main\n        image: example.com/{name}:1\n        args: [\"--config=/etc/c/config.yaml\"]\n        volumeMounts: [{{name: c, mountPath: /etc/c}}]\n      volumes: [{{name: c, configMap: {{name: {name}}}}}]\n---\n\
apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}}}\ndata:\n  config.yaml: |\n    level: info\n---\n\
apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{ports: [{{port: 80}}]}}\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\n  labels: {{team: t{}}}\nrules:\n- apiGroups: [\"\"]\n  resources: [\"pods\", \"configmaps\"]\n  verbs: [\"get\", \"list\", \"watch\"]\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {name}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}\nsubjects: [{{kind: ServiceAccount, name: {name}, namespace: {ns}}}]\n",
            i % 2
        );
        if i.is_multiple_of(5) {
            // A second workload sharing the identity.
            out.push_str(&format!(
                "---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: {name}-db, namespace: {ns}}}\nspec:\n  replicas: 3\n  template:\n    spec:\n      serviceAccountName: {name}\n      containers: [{{name: db, image: example.com/db:1}}]\n"
            ));
        }
        out
    }

    const EXTRA: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: aggregate}\naggregationRule:\n  clusterRoleSelectors: [{matchLabels: {team: t1}}]\nrules: []\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: agg, namespace: team-2}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: aggregate}\nsubjects: [{kind: ServiceAccount, name: app-2, namespace: team-2}]\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: dangling, namespace: team-1}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: later}\nsubjects: [{kind: ServiceAccount, name: app-1, namespace: team-1}]\n---\n\
apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubelet, namespace: kube-system}\ndata:\n  kubelet: |\n    kind: KubeletConfiguration\n    authentication: {webhook: {cacheTTL: 10s}}\n";

    struct Workspace {
        settings: WorkspaceSettings,
        texts: Vec<Option<String>>,
    }

    impl Workspace {
        fn sources(&self) -> Sources {
            let mut s = Sources::new();
            for (i, t) in self.texts.iter().enumerate() {
                s.push(Source::new(format!("f{i}.yaml"), t.clone().unwrap_or_default().into_bytes()));
            }
            s
        }

        fn read(&self, slot: usize) -> Option<ReadSource> {
            let ns: Arc<str> = "default".into();
            self.texts[slot].as_ref().map(|t| parse(slot, &Arc::from(t.as_bytes()), &ns).read)
        }

        fn full(&self, reads: &[Option<ReadSource>]) -> Vec<Vec<Diagnostic>> {
            let all = reads.iter().flatten().cloned().collect();
            analysis::run(&self.settings, &self.sources(), all, true).1
        }
    }

    fn shown(by_slot: &[Vec<Diagnostic>]) -> Vec<String> {
        by_slot.iter().enumerate().flat_map(|(i, v)| v.iter().map(move |d| format!("{i}: {d:?}"))).collect()
    }

    /// A small deterministic generator (xorshift), for edits anyone can replay.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Replaces the `nth` occurrence of `from` (wrapping around), if any.
    fn replace_nth(text: &str, from: &str, to: &str, nth: usize) -> String {
        let hits: Vec<usize> = text.match_indices(from).map(|(i, _)| i).collect();
        match hits.len() {
            0 => text.to_string(),
            n => {
                let at = hits[nth % n];
                format!("{}{to}{}", &text[..at], &text[at + from.len()..])
            }
        }
    }

    /// One edit of the workspace: the slot it changes and its new text.
    fn edit(step: usize, rng: &mut Rng, w: &Workspace) -> (usize, Option<String>) {
        let n = w.texts.len();
        let extra = n - 1;
        let text = |s: usize| w.texts[s].clone().unwrap_or_default();
        let scripted: Option<(usize, Option<String>)> = match step {
            0 => Some((3, Some(text(3).replacen(", \"watch\"]", "]", 1)))),
            1 => Some((3, Some(format!("# a comment that moves every span\n{}", text(3))))),
            2 => Some((4, Some(text(4).replacen("serviceAccountName: app-4", "serviceAccountName: app-5", 1)))),
            3 => Some((2, Some(text(2).replacen("kind: ClusterRoleBinding", "kind: ClusterRoleBindin", 1)))),
            4 => Some((2, Some(text(2).replacen("kind: ClusterRoleBindin\n", "kind: ClusterRoleBinding\n", 1)))),
            // A Role the dangling binding names appears.
            5 => Some((
                extra,
                Some(format!(
                    "{}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: later, namespace: team-1}}\nrules: [{{apiGroups: [\"\"], resources: [\"nodes\"], verbs: [list]}}]\n",
                    text(extra)
                )),
            )),
            // Aggregation: a ClusterRole leaves and joins the aggregated label.
            6 => Some((1, Some(text(1).replacen("labels: {team: t1}", "labels: {team: t0}", 1)))),
            7 => Some((0, Some(text(0).replacen("labels: {team: t0}", "labels: {team: t1}", 1)))),
            // A grant to a whole namespace's ServiceAccounts (AL106).
            8 => Some((
                extra,
                Some(format!(
                    "{}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: ns-wide}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: app-0}}\nsubjects: [{{kind: Group, name: \"system:serviceaccounts:team-3\"}}]\n",
                    text(extra)
                )),
            )),
            // The role of that grant changes: the binding's finding changes with it.
            9 => Some((
                0,
                Some(text(0).replacen(
                    "resources: [\"pods\", \"configmaps\"]",
                    "resources: [\"pods\", \"secrets\"]",
                    1,
                )),
            )),
            // Broken YAML, then mended.
            10 => Some((5, Some(text(5).replacen("data:\n", "data: [\n", 1)))),
            11 => Some((5, Some(text(5).replacen("data: [\n", "data:\n", 1)))),
            12 => Some((6, None)),
            13 => Some((6, Some(app(6)))),
            14 => Some((7, Some(text(7).replacen("kind: DaemonSet", "kind: Deployment", 1)))),
            15 => Some((extra, Some(text(extra).replacen("cacheTTL: 10s", "cacheTTL: 5s", 1)))),
            // An unserved resource in a role (AL108).
            16 => Some((8, Some(text(8).replacen("\"configmaps\"]", "\"configmap\"]", 1)))),
            // A duplicate (falls back), then gone again.
            17 => Some((9, Some(format!("{}---\n{}", text(9), app(10).split("---\n").next().unwrap_or(""))))),
            18 => Some((9, Some(app(9)))),
            // An object with no namespace (falls back).
            19 => Some((
                10,
                Some(format!("{}---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: loose}}\n", text(10))),
            )),
            20 => Some((10, Some(app(10)))),
            // Everyone (falls back by default; here the limit is lifted).
            21 => Some((
                extra,
                Some(format!(
                    "{}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: everyone}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: app-3}}\nsubjects: [{{kind: Group, name: \"system:authenticated\"}}]\n",
                    text(extra)
                )),
            )),
            _ => None,
        };
        if let Some(e) = scripted {
            return e;
        }
        let slot = rng.below(n);
        let t = text(slot);
        let k = rng.below(1000);
        let new = match rng.below(8) {
            0 => replace_nth(&t, ", \"watch\"]", "]", k),
            1 => replace_nth(&t, "verbs: [\"get\", \"list\"]", "verbs: [\"get\", \"list\", \"watch\"]", k),
            2 => format!("# edit {step}\n{t}"),
            3 => replace_nth(&t, "level: info", "level: debug", k),
            4 => {
                let docs: Vec<&str> = t.split("---\n").collect();
                let drop = k % docs.len().max(1);
                docs.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, d)| *d).collect::<Vec<_>>().join("---\n")
            }
            5 => replace_nth(&t, "serviceAccountName: app-", "serviceAccountName: app-1", k),
            6 => replace_nth(&t, "replicas: 3", "replicas: 300", k),
            _ => app(rng.below(n - 1)).replace("app-", &format!("new{step}-")),
        };
        (slot, Some(new))
    }

    fn view(reads: &[Option<ReadSource>]) -> Vec<Option<&ReadSource>> {
        reads.iter().map(Option::as_ref).collect()
    }

    fn run_script(fall_back_above: Option<usize>) -> (usize, Vec<String>) {
        let mut texts: Vec<Option<String>> = (0..14).map(|i| Some(app(i))).collect();
        texts.push(Some(EXTRA.to_string()));
        let w0 = Workspace { settings: settings::load(texts.len(), None, None), texts };
        let mut w = w0;
        let key = Key { settings: 1, namespace: "default".into(), today: "2026-01-01".into() };
        let mut reads: Vec<Option<ReadSource>> = (0..w.texts.len()).map(|i| w.read(i)).collect();
        let mut baseline = Baseline::new(key.clone(), &view(&reads), w.full(&reads));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut incremental, mut fell_back) = (0, Vec::new());
        for step in 0..80 {
            let (slot, text) = edit(step, &mut rng, &w);
            w.texts[slot] = text;
            let old = std::mem::replace(&mut reads[slot], w.read(slot));
            let expected = w.full(&reads);
            let changes = [Change { slot, old: old.as_ref(), new: reads[slot].as_ref() }];
            let mut policy = w.settings.setup.exemptions.clone();
            policy.today = key.today.clone();
            let sources = w.sources();
            match baseline.update(&w.settings.setup, policy, &sources, &view(&reads), &changes, fall_back_above) {
                Ok(_) => {
                    incremental += 1;
                    assert_eq!(shown(&baseline.by_slot), shown(&expected), "after edit {step} of slot {slot}");
                }
                Err(reason) => {
                    fell_back.push(format!("{step}: {reason}"));
                    baseline = Baseline::new(key.clone(), &view(&reads), expected);
                }
            }
        }
        (incremental, fell_back)
    }

    #[test]
    fn incremental_findings_equal_a_full_analysis_after_every_edit() {
        let (incremental, fell_back) = run_script(Some(usize::MAX));
        // Fall-backs are the documented ones only, and most edits are incremental.
        assert!(incremental >= 60, "{incremental} incremental, fell back: {fell_back:?}");
        for f in &fell_back {
            assert!(f.contains("defined more than once") || f.contains("names no namespace"), "{f}");
        }
        assert!(fell_back.iter().any(|f| f.starts_with("17: ")), "{fell_back:?}");
        assert!(fell_back.iter().any(|f| f.starts_with("19: ")), "{fell_back:?}");
    }

    #[test]
    fn an_edit_reaching_most_workloads_falls_back() {
        let (_, fell_back) = run_script(None);
        assert!(fell_back.iter().any(|f| f.starts_with("21: ") && f.contains("workloads")), "{fell_back:?}");
    }

    #[test]
    fn configuration_exemptions_fall_back() {
        let config = "exemptions:\n- rules: [AL101]\n  reason: known\n";
        let mut w = Workspace { settings: settings::load(1, None, Some(config.as_bytes())), texts: vec![Some(app(0))] };
        assert!(w.settings.errors.is_empty(), "{:?}", w.settings.errors);
        let key = Key { settings: 1, namespace: "default".into(), today: "2026-01-01".into() };
        let mut reads = vec![w.read(0)];
        let mut b = Baseline::new(key, &[reads[0].as_ref()], w.full(&reads));
        w.texts[0] = Some(format!("# x\n{}", app(0)));
        let old = std::mem::replace(&mut reads[0], w.read(0));
        let changes = [Change { slot: 0, old: old.as_ref(), new: reads[0].as_ref() }];
        let policy = w.settings.setup.exemptions.clone();
        let r = b.update(&w.settings.setup, policy, &w.sources(), &[reads[0].as_ref()], &changes, None);
        assert!(r.is_err_and(|e| e.contains("configuration exemptions")));
    }
}
