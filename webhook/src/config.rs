//! The analysis the webhook runs: options, profiles and exemptions from the
//! configuration file, built by the engine's setup exactly as `apiload lint`
//! builds them — with one difference: annotation exemptions count only in
//! the namespaces the configuration lists (none when it lists none), so that
//! whoever may edit a DaemonSet cannot exempt it by themselves.

use apiload_rules::exempt::ExemptionPolicy;
use apiload_rules::options::AnnotationPolicy;
use apiload_rules::profile::ProfileSet;
use apiload_rules::settings::Settings;
use apiload_rules::setup::{self, Flags, Setup};
use apiload_rules::{Options, SourceId, Sources};
use apiload_yaml::files::{TextFile, read_texts};
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
        let mut settings = Settings::default();
        let mut file = TextFile { name: String::new(), text: String::new() };
        let mut dir = PathBuf::from(".");
        if let Some(path) = config {
            match TextFile::read(path) {
                Ok(f) => {
                    match setup::parse_settings(SOURCE_CONFIG, &f) {
                        Ok(s) => settings = s,
                        Err(e) => errors.push(e),
                    }
                    file = f;
                    dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                }
                Err(e) => errors.push(e),
            }
        }
        let mut folders: Vec<String> = settings.profiles.iter().map(|p| dir.join(p).display().to_string()).collect();
        folders.extend(profiles.iter().map(|p| p.display().to_string()));
        let (profile_files, more) = read_texts(&folders);
        errors.extend(more);
        let flags = Flags { nodes, annotations_by_default: AnnotationPolicy::Nowhere, ..Flags::default() };
        let (Setup { options, profiles, exemptions, .. }, more) = Setup::build(&settings, &profile_files, None, &flags);
        errors.extend(more);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut sources = Sources::new();
        sources.add(file.name, file.text.as_bytes());
        sources.add("cluster state", b"");
        sources.add("request.oldObject", b"");
        sources.add("request.object", b"");
        Ok(Analysis { options, profiles, exemptions, nodes_flag: nodes, sources })
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
