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

pub mod analysis;
pub mod apf;
pub mod behaviour;
pub mod config;
pub mod cost;
pub mod diagnostic;
pub mod exempt;
pub mod fields;
pub mod inventory;
pub mod kube;
pub mod object;
pub mod options;
mod parallel;
pub mod profile;
pub mod rbac;
pub mod review;
pub mod rules;
pub mod settings;
pub mod source;
pub mod workload;

pub use analysis::WorkloadAnalysis;
pub use diagnostic::{Category, Diagnostic, Edit, Fix, ObjectRef, Related, Severity};
pub use inventory::Inventory;
pub use object::Object;
pub use options::{ClusterProfile, Options, ResourceOverride, Thresholds};
pub use rules::RuleMeta;
pub use source::{Location, Source, SourceId, Sources};

use apiload_yaml::{Document, LoadError};

/// Objects gathered from any number of sources, waiting to be analysed.
pub struct Input {
    options: Options,
    profiles: profile::ProfileSet,
    exemptions: exempt::ExemptionPolicy,
    objects: Vec<Object>,
    diagnostics: Vec<Diagnostic>,
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
        }
    }

    /// Exemptions to apply (configuration entries, annotation policy, today's date).
    pub fn set_exemptions(&mut self, policy: exempt::ExemptionPolicy) {
        self.exemptions = policy;
    }

    /// Adds the documents loaded from one source; load errors become findings.
    pub fn add_documents(&mut self, source: SourceId, documents: Vec<Result<Document, LoadError>>) {
        for doc in documents {
            self.add_document(source, doc);
        }
    }

    pub fn add_document(&mut self, source: SourceId, document: Result<Document, LoadError>) {
        match document {
            Ok(doc) => object::objects_from_document(
                source,
                doc.root,
                &self.options.default_namespace,
                &mut self.objects,
                &mut self.diagnostics,
            ),
            Err(e) => {
                let mut d = rules::input::invalid(Location::new(source, e.span), e.message);
                for (span, message) in e.related {
                    d = d.related(Location::new(source, span), message);
                }
                self.diagnostics.push(d);
            }
        }
    }

    /// Adds an object built elsewhere (an AdmissionReview's object).
    pub fn add_object(&mut self, object: Object) {
        self.objects.push(object);
    }

    /// Indexes everything, analyses every workload and runs every rule.
    pub fn analyze(self, sources: &Sources) -> Report {
        let Input { options, profiles, exemptions, objects, mut diagnostics } = self;
        let inventory = Inventory::build(objects, &mut diagnostics);
        let analyses = analysis::analyze_workloads(sources, &inventory, &profiles, &options);
        let ctx = rules::Context { sources, inventory: &inventory, analyses: &analyses, options: &options };
        let setting = |id: &str| options.rule_settings.iter().rev().find(|(r, _)| *r == id).map(|(_, s)| *s);
        for rule in rules::ALL {
            if let (Some(check), false) = (rule.check, setting(rule.id) == Some(settings::RuleSetting::Off)) {
                check(&ctx, &mut diagnostics);
            }
        }
        let suppressed = exempt::apply(&inventory, &exemptions, &mut diagnostics);
        diagnostics.retain(|d| setting(d.rule.id) != Some(settings::RuleSetting::Off));
        for d in &mut diagnostics {
            if let Some(settings::RuleSetting::Severity(s)) = setting(d.rule.id) {
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
