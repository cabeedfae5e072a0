//! The engine on what a snapshot read: the same `Input::analyze` as
//! `apiload lint`, on the live objects' YAML (one source each, so that a
//! finding points at the field of the live object), with the cluster's own
//! Nodes and version as the cluster profile unless the caller set one. Every
//! finding is then told who installed the object it is about.

use crate::owner::{self, Owner};
use crate::snapshot::Snapshot;
use apiload_rules::options::ClusterProfile;
use apiload_rules::setup::Setup;
use apiload_rules::{Input, Location, ObjectRef, Report, Source, SourceId, Sources};
use std::collections::HashMap;

/// One object the audit read.
#[derive(Clone, Debug)]
pub struct Audited {
    pub source: SourceId,
    pub reference: ObjectRef,
    pub api_version: String,
    pub uid: Option<String>,
    pub owner: Option<Owner>,
}

/// An audit's findings and what they are about.
pub struct Audit {
    pub sources: Sources,
    pub report: Report,
    /// The sources of the live objects (the configuration file is a source
    /// too, but not an input).
    pub inputs: Vec<SourceId>,
    pub objects: Vec<Audited>,
}

impl Audit {
    /// The object a finding is about: its workload, else the object it points into.
    pub fn subject(&self, d: &apiload_rules::Diagnostic) -> Option<&Audited> {
        match &d.workload {
            Some(w) => self.objects.iter().find(|o| o.reference == *w),
            None => self.objects.iter().find(|o| o.source == d.location.source),
        }
    }
}

/// Puts the cluster's Nodes, pools and version into the profile: an audit
/// judges the cluster it reads. Callers skip this when the user gave
/// `--nodes` or a cluster profile.
pub fn use_cluster(profile: &mut ClusterProfile, snapshot: &Snapshot) {
    profile.nodes = snapshot.nodes.max(1);
    profile.node_pools = snapshot.pools.clone();
    if let Some((_, minor)) = snapshot.version {
        profile.kubernetes_minor = minor;
    }
}

/// Analyses a snapshot. `sources` may already hold the configuration file
/// (findings about exemptions point into it).
pub fn analyze(snapshot: &Snapshot, setup: Setup, mut sources: Sources) -> Audit {
    let mut input = Input::with_profiles(setup.options, setup.profiles);
    input.set_exemptions(setup.exemptions);
    let limits = apiload_yaml::Limits::default();
    let mut inputs = Vec::with_capacity(snapshot.objects.len());
    let mut objects = Vec::with_capacity(snapshot.objects.len());
    for l in &snapshot.objects {
        let id = sources.push(Source::new(l.source_name(), l.text.clone().into_bytes()));
        let documents = apiload_yaml::load_stream(l.text.as_bytes(), &limits);
        let read = apiload_rules::object::read_documents(id, documents, "default");
        let owner = read.objects.first().and_then(owner::owner);
        objects.push(Audited {
            source: id,
            reference: ObjectRef { kind: l.kind.into(), namespace: l.namespace.clone(), name: l.name.clone() },
            api_version: l.api_version.clone(),
            uid: l.uid.clone(),
            owner,
        });
        input.add_read(read);
        inputs.push(id);
    }
    let mut report = input.analyze(&sources);
    let by_ref: HashMap<&ObjectRef, usize> = objects.iter().enumerate().map(|(i, o)| (&o.reference, i)).collect();
    let by_source: HashMap<SourceId, usize> = objects.iter().enumerate().map(|(i, o)| (o.source, i)).collect();
    for d in &mut report.diagnostics {
        let subject = match &d.workload {
            Some(w) => by_ref.get(w),
            None => by_source.get(&d.location.source),
        };
        if let Some(o) = subject.map(|i| &objects[*i])
            && let Some(owner) = &o.owner
        {
            d.related.push(apiload_rules::Related {
                location: Location::new(o.source, owner.span),
                message: format!("installed by {} ({}): {}", owner.describe(), owner.key, owner.advice()),
            });
        }
    }
    Audit { sources, report, inputs, objects }
}
