//! The analysis the webhook runs: options, profiles and exemptions from the
//! configuration file, read exactly as `apiload lint` reads it — with one
//! difference: annotation exemptions count only in the namespaces the
//! configuration lists (none when it lists none), so that whoever may edit a
//! DaemonSet cannot exempt it by themselves.

use apiload::setup::{self, Flags};
use apiload_rules::exempt::{AnnotationPolicy, ExemptionPolicy};
use apiload_rules::profile::ProfileSet;
use apiload_rules::settings::Settings;
use apiload_rules::{Options, SourceId, Sources};
use std::path::{Path, PathBuf};

/// Sources of every review, in this order: findings about exemptions point
/// into the configuration; cached objects and review objects carry no text.
pub const SOURCE_CONFIG: SourceId = SourceId(0);
pub const SOURCE_STATE: SourceId = SourceId(1);
pub const SOURCE_OLD: SourceId = SourceId(2);
pub const SOURCE_NEW: SourceId = SourceId(3);

pub struct Analysis {
    pub options: Options,
    pub profiles: ProfileSet,
    pub exemptions: ExemptionPolicy,
    /// `--nodes`, when given: the node count, whatever the cluster has.
    pub nodes_flag: Option<u64>,
    /// The sources every review's findings point into (see `SOURCE_*`), made once.
    pub sources: Sources,
}

impl Analysis {
    /// Reads `--config` and `--profiles`. Errors are `file:line:column: message`.
    pub fn load(config: Option<&Path>, profiles: &[PathBuf], nodes: Option<u64>) -> Result<Analysis, Vec<String>> {
        let mut errors = Vec::new();
        let (mut settings, mut name, mut text, mut dir) =
            (Settings::default(), String::new(), String::new(), PathBuf::from("."));
        if let Some(path) = config {
            name = path.display().to_string();
            match std::fs::read_to_string(path) {
                Ok(t) => {
                    match Settings::parse(SOURCE_CONFIG, &t) {
                        Ok(s) => settings = s,
                        Err(e) => errors.push(format!(
                            "{}: invalid configuration: {}",
                            setup::at(&name, &t, e.span),
                            e.message
                        )),
                    }
                    text = t;
                    dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                }
                Err(e) => errors.push(format!("cannot read {name}: {e}")),
            }
        }
        let profile_dirs: Vec<String> = profiles.iter().map(|p| p.display().to_string()).collect();
        let flags = Flags {
            config: None,
            no_config: true,
            namespace: None,
            nodes,
            cluster_profile: None,
            profiles: &profile_dirs,
            report_unused_exemptions: false,
        };
        let (s, more) = setup::from_settings(&settings, &dir, &flags);
        errors.extend(more);
        if !errors.is_empty() {
            return Err(errors);
        }
        let exemptions = ExemptionPolicy {
            annotations: settings
                .annotation_namespaces
                .as_deref()
                .map_or(AnnotationPolicy::Nowhere, AnnotationPolicy::from_list),
            ..s.exemptions
        };
        let mut sources = Sources::new();
        sources.add(name, text.as_bytes());
        sources.add("cluster state", b"");
        sources.add("request.oldObject", b"");
        sources.add("request.object", b"");
        Ok(Analysis { options: s.options, profiles: s.profiles, exemptions, nodes_flag: nodes, sources })
    }

    /// Options at the node count the cluster is judged at: `--nodes`, or the
    /// larger of the configured size and the nodes the cluster has now (a
    /// DaemonSet admitted today runs on tomorrow's nodes too).
    pub fn options_for(&self, observed_nodes: u64) -> Options {
        let mut options = self.options.clone();
        if self.nodes_flag.is_none() {
            options.cluster.nodes = options.cluster.nodes.max(observed_nodes);
        }
        options
    }

    /// Exemptions, with expiry judged on `today` (`YYYY-MM-DD`).
    pub fn exemptions_on(&self, today: String) -> ExemptionPolicy {
        ExemptionPolicy { today, ..self.exemptions.clone() }
    }
}
