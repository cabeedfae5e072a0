//! apiload's engine: joins what no single object shows — workload →
//! ServiceAccount → bindings → roles → the agent's own configuration — and
//! multiplies by the production cluster's size.
//!
//! The engine is pure: no filesystem, network or async runtime. Front ends
//! turn their input into [`Sources`] and documents (with `apiload_yaml`), hand
//! them to an [`Input`], and render the [`Report`]'s diagnostics their own way.
//!
//! ```
//! use apiload_rules::{Input, Options, Sources};
//! let mut sources = Sources::new();
//! let text = b"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: agent\n";
//! let id = sources.add("sa.yaml", text);
//! let mut input = Input::new(Options::default());
//! input.add_documents(id, apiload_yaml::load_stream(text, &Default::default()));
//! let report = input.analyze(&sources);
//! assert!(report.diagnostics.is_empty());
//! ```

// The engine's layers, bottom to top. A module imports only from its own
// layer or the layers above it in this list (rules/tests/layers.rs holds it;
// ARCHITECTURE.md explains it).
//
// Layer 1 — vocabulary: texts and locations, typed field reading, findings
// and rule declarations, options, facts about the Kubernetes API, helpers.
pub mod diagnostic;
pub mod fields;
pub mod kube;
pub mod options;
mod parallel;
pub mod source;
pub mod text;
// Layer 2 — objects: documents read into objects, workloads and RBAC, and
// the findings made while reading them.
pub mod input;
pub mod object;
pub mod rbac;
pub mod workload;
// Layer 3 — the inventory: every object indexed for the joins, once the
// namespaces of objects that name none are settled.
pub mod inferred_namespace;
pub mod inventory;
// Layer 4 — agent knowledge: agents' configuration languages, the API calls
// they make, and what says which: profiles and owners' declarations.
pub mod agent_config;
pub mod calls;
pub mod declared;
pub mod observed;
pub mod profile;
// Layer 5 — analysis: per workload, what it may call (access), what it
// will call (behaviour), how many copies run (copies), all of it together
// (analysis), and what that costs.
pub mod access;
pub mod analysis;
pub mod apf;
pub mod behaviour;
pub mod copies;
pub mod cost;
pub mod least_privilege;
// Layer 6 — the rules and their registry.
pub mod rules;
// Layer 7 — policy: exemptions, the configuration file, and the setup every
// front end builds its analyses with.
pub mod exempt;
pub mod settings;
pub mod setup;
// Layer 8 — entry points: `Input` (below), reviews of single changes, and
// the FlowSchemas and priority levels that contain a report's fan-out.
pub mod mitigate;
pub mod review;

pub use analysis::WorkloadAnalysis;
pub use diagnostic::{Category, Diagnostic, Edit, Fix, ObjectRef, Related, Severity};
pub use inventory::Inventory;
pub use object::Object;
pub use options::{ClusterProfile, Options, ResourceOverride, RuleSetting, Thresholds};
pub use rules::{Rule, RuleInfo};
pub use source::{Location, Source, SourceId, Sources};

use apiload_yaml::{Document, LoadError};

/// Objects gathered from any number of sources, waiting to be analysed.
pub struct Input {
    options: Options,
    profiles: profile::ProfileSet,
    exemptions: exempt::ExemptionPolicy,
    objects: Vec<Object>,
    diagnostics: Vec<Diagnostic>,
    observations: Option<std::sync::Arc<observed::Observations>>,
}

impl Input {
    /// An input analysed with the built-in agent profiles.
    pub fn new(options: Options) -> Input {
        Input::with_profiles(options, profile::ProfileSet::builtin())
    }

    pub fn with_profiles(options: Options, profiles: profile::ProfileSet) -> Input {
        Input {
            options,
            profiles,
            exemptions: exempt::ExemptionPolicy::default(),
            objects: Vec::new(),
            diagnostics: Vec::new(),
            observations: None,
        }
    }

    /// What the API server's audit log showed (`apiload lint --audit-log`):
    /// the calls of the workloads it saw get basis `observed`.
    pub fn set_observations(&mut self, observations: std::sync::Arc<observed::Observations>) {
        self.observations = Some(observations);
    }

    /// Exemptions to apply (configuration entries, annotation policy, today's date).
    pub fn set_exemptions(&mut self, policy: exempt::ExemptionPolicy) {
        self.exemptions = policy;
    }

    /// Adds the documents loaded from one source; load errors become findings.
    pub fn add_documents(&mut self, source: SourceId, documents: Vec<Result<Document, LoadError>>) {
        let read = object::read_documents(source, documents, &self.options.default_namespace);
        self.add_read(read);
    }

    /// Adds a source read earlier with [`object::read_documents`] (the
    /// language server keeps them between analyses).
    pub fn add_read(&mut self, read: object::ReadSource) {
        self.objects.extend(read.objects);
        self.diagnostics.extend(read.diagnostics);
    }

    /// Adds an object built elsewhere (an AdmissionReview's object).
    pub fn add_object(&mut self, object: Object) {
        self.objects.push(object);
    }

    /// Indexes everything, analyses every workload and runs every rule.
    pub fn analyze(self, sources: &Sources) -> Report {
        let Input { options, profiles, exemptions, mut objects, mut diagnostics, observations } = self;
        if !options.namespace_given {
            inferred_namespace::infer(&mut objects, &options.default_namespace, &mut diagnostics);
        }
        let inventory = Inventory::build(objects, &mut diagnostics);
        let analyses = analysis::analyze_workloads(
            sources,
            &inventory,
            &profiles,
            &options,
            &exemptions.annotations,
            observations.as_deref(),
        );
        let ctx = rules::Context { sources, inventory: &inventory, analyses: &analyses, options: &options };
        for rule in rules::CHECKS {
            if options.rule_enabled(rule.info.id) {
                (rule.check)(&ctx, &mut diagnostics);
            }
        }
        let suppressed = exempt::apply(&inventory, &exemptions, &mut diagnostics);
        diagnostics.retain(|d| options.rule_enabled(d.rule.id));
        for d in &mut diagnostics {
            if let Some(RuleSetting::Severity(s)) = options.rule_setting(d.rule.id) {
                d.severity = s;
            }
        }
        diagnostics.sort_by(|a, b| {
            (a.location.source, a.location.span.start, a.rule.id).cmp(&(
                b.location.source,
                b.location.span.start,
                b.rule.id,
            ))
        });
        Report { inventory, analyses, diagnostics, suppressed, options }
    }
}

/// Everything an analysis found.
pub struct Report {
    pub inventory: Inventory,
    pub analyses: Vec<WorkloadAnalysis>,
    pub diagnostics: Vec<Diagnostic>,
    /// Findings exemptions removed, with their reasons.
    pub suppressed: Vec<exempt::Suppressed>,
    pub options: Options,
}
