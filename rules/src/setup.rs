//! Everything an analysis needs besides its manifests — options, agent
//! profiles, exemptions — from the configuration file (`.apiload.yaml`), the
//! profile files, a cluster profile and the front end's own flags. Every
//! front end (the CLI, the language server, the webhook) and the tests build
//! their analyses here, so the configuration means the same everywhere.
//!
//! Pure apart from [`today`]: the front end finds and reads the files and
//! hands their texts in. Reading a configuration takes two steps, because the
//! profile folders it names are read by the front end in between:
//! [`Settings::parse`], then [`Setup::build`].

use crate::exempt::ExemptionPolicy;
use crate::options::AnnotationPolicy;
use crate::options::Options;
use crate::profile::ProfileSet;
use crate::settings::Settings;
use apiload_yaml::files::TextFile;
use apiload_yaml::{ColumnUnit, Limits, LineIndex, Span};

/// What the front end decides itself (command-line flags, or its nature).
#[derive(Clone, Debug)]
pub struct Flags {
    /// Namespace of objects that have none; overrides the configuration's.
    pub namespace: Option<String>,
    /// Node count of the production cluster; overrides the configuration and the cluster profile.
    pub nodes: Option<u64>,
    /// Report configuration exemptions that matched nothing.
    pub report_unused_exemptions: bool,
    /// Where annotation exemptions count when the configuration does not say
    /// (`annotationExemptions`): everywhere for the linter and the language
    /// server, nowhere for the webhook.
    pub annotations_by_default: AnnotationPolicy,
    /// `YYYY-MM-DD`, for exemption expiry.
    pub today: String,
}

impl Default for Flags {
    fn default() -> Flags {
        Flags {
            namespace: None,
            nodes: None,
            report_unused_exemptions: false,
            annotations_by_default: AnnotationPolicy::Everywhere,
            today: today(),
        }
    }
}

/// What an analysis needs besides its manifests.
#[derive(Clone, Debug)]
pub struct Setup {
    pub options: Options,
    pub profiles: ProfileSet,
    pub exemptions: ExemptionPolicy,
    /// `failOn` of the configuration file.
    pub fail_on: Option<String>,
}

impl Setup {
    /// The analysis `settings` describe, with `profiles` (the files of the
    /// folders the configuration and the flags name, read by the front end)
    /// and an optional cluster profile file. Errors are `file:line:column:
    /// message` lines and come with a usable setup (built-in profiles where
    /// the user's cannot be read), so that a long-running front end can
    /// report them and go on.
    pub fn build(
        settings: &Settings,
        profiles: &[TextFile],
        cluster_profile: Option<&TextFile>,
        flags: &Flags,
    ) -> (Setup, Vec<String>) {
        let mut errors = Vec::new();
        let mut options = Options::default();
        settings.apply_cluster(&mut options.cluster);
        if let Some(file) = cluster_profile
            && let Err(e) = read_cluster_profile(file, &mut options.cluster)
        {
            errors.push(e);
        }
        if let Some(n) = flags.nodes {
            if n == 0 {
                errors.push("--nodes must be at least 1".into());
            }
            options.cluster.nodes = n.max(1);
        }
        options.namespace_given = flags.namespace.is_some() || settings.namespace.is_some();
        options.default_namespace =
            flags.namespace.clone().or(settings.namespace.clone()).unwrap_or_else(|| "default".into());
        options.rule_settings = settings.rules.clone();

        let mut set = ProfileSet::builtin();
        for file in profiles {
            if let Err(errs) = set.add_text(&file.name, &file.text) {
                for e in errs {
                    errors.push(format!(
                        "{}: invalid profile: {}",
                        position(&file.name, &file.text, e.span),
                        e.message
                    ));
                }
            }
        }
        let exemptions = ExemptionPolicy {
            config: settings.exemptions.clone(),
            annotations: settings
                .annotation_namespaces
                .as_deref()
                .map_or_else(|| flags.annotations_by_default.clone(), AnnotationPolicy::from_list),
            today: flags.today.clone(),
            report_unused: flags.report_unused_exemptions,
        };
        (Setup { options, profiles: set, exemptions, fail_on: settings.fail_on.clone() }, errors)
    }
}

/// Reads a configuration file's text: the settings, or the error as a
/// `file:line:column: message` line.
pub fn parse_settings(source: crate::source::SourceId, file: &TextFile) -> Result<Settings, String> {
    Settings::parse(source, &file.text)
        .map_err(|e| format!("{}: invalid configuration: {}", position(&file.name, &file.text, e.span), e.message))
}

fn read_cluster_profile(file: &TextFile, profile: &mut crate::options::ClusterProfile) -> Result<(), String> {
    let loaded = apiload_yaml::load_one(&file.text, &Limits::default())
        .map_err(|e| format!("{}: invalid cluster profile: {}", position(&file.name, &file.text, e.span), e.message))?;
    let Some(doc) = loaded else { return Ok(()) };
    let root = doc.root;
    crate::settings::apply_cluster(&root, profile)
        .map_err(|e| format!("{}: invalid cluster profile: {}", position(&file.name, &file.text, e.span), e.message))
}

/// `file:line:column` of a span in a text, as error lines start.
pub fn position(name: &str, text: &str, span: Span) -> String {
    let lc = LineIndex::new(text.as_bytes()).line_col_in(text, span.start, ColumnUnit::Chars);
    format!("{name}:{}:{}", lc.line, lc.column)
}

/// Today's date in UTC, `YYYY-MM-DD` (for exemption expiry); `APILOAD_TODAY`
/// overrides it, for reproducible runs. The engine's only look at the clock,
/// made here so that every front end judges expiry the same way.
pub fn today() -> String {
    if let Ok(d) = std::env::var("APILOAD_TODAY") {
        return d;
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    crate::exempt::civil_date((secs / 86_400) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceId;

    fn file(name: &str, text: &str) -> TextFile {
        TextFile { name: name.into(), text: text.into() }
    }

    #[test]
    fn flags_override_the_configuration() {
        let settings =
            parse_settings(SourceId(0), &file(".apiload.yaml", "namespace: team\ncluster: {nodes: 300}\n")).unwrap();
        let (setup, errors) = Setup::build(&settings, &[], None, &Flags::default());
        assert!(errors.is_empty());
        assert_eq!((setup.options.cluster.nodes, setup.options.default_namespace.as_str()), (300, "team"));
        let flags = Flags { nodes: Some(20), namespace: Some("ops".into()), ..Flags::default() };
        let (setup, _) = Setup::build(&settings, &[], None, &flags);
        assert_eq!((setup.options.cluster.nodes, setup.options.default_namespace.as_str()), (20, "ops"));
    }

    #[test]
    fn errors_name_file_line_and_column_and_leave_a_usable_setup() {
        let e = parse_settings(SourceId(0), &file("conf.yaml", "rules:\n  AL999: off\n")).unwrap_err();
        assert!(e.starts_with("conf.yaml:2:3: invalid configuration"), "{e}");
        let broken = file("mine.yaml", "id: x\nunknown: [\n");
        let profile = file("cluster.yaml", "nodes: -1\n");
        let flags = Flags { nodes: Some(0), ..Flags::default() };
        let (setup, errors) = Setup::build(&Settings::default(), &[broken], Some(&profile), &flags);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("mine.yaml:")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("cluster.yaml:1:")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("--nodes")), "{errors:?}");
        assert_eq!(setup.options.cluster.nodes, 1);
        assert!(setup.profiles.for_container(Some("otel/opentelemetry-collector:0.150.0"), None).is_some());
    }

    #[test]
    fn a_configuration_or_cluster_profile_of_two_documents_is_refused_not_half_read() {
        // `{}` is a whole document: what follows it used to be dropped unread.
        let e = parse_settings(SourceId(0), &file("c.yaml", "{}\nrules:\n  AL101: off\n")).unwrap_err();
        assert!(e.starts_with("c.yaml:2:1: invalid configuration: YAML syntax error"), "{e}");
        let e = parse_settings(SourceId(0), &file("c.yaml", "failOn: error\n---\nfailOn: never\n")).unwrap_err();
        assert!(e.starts_with("c.yaml:3:1: invalid configuration: a second YAML document"), "{e}");
        let profile = file("cluster.yaml", "nodes: 300\n---\nnodes: 20\n");
        let (_, errors) = Setup::build(&Settings::default(), &[], Some(&profile), &Flags::default());
        assert!(errors.iter().any(|e| e.starts_with("cluster.yaml:3:1: invalid cluster profile")), "{errors:?}");
        // Comments and an explicit start are one document still.
        assert!(parse_settings(SourceId(0), &file("c.yaml", "# mine\n---\nfailOn: never\n")).is_ok());
    }

    #[test]
    fn annotation_exemptions_default_to_the_front_end_and_yield_to_the_configuration() {
        let webhook = Flags { annotations_by_default: AnnotationPolicy::Nowhere, ..Flags::default() };
        let (setup, _) = Setup::build(&Settings::default(), &[], None, &webhook);
        assert_eq!(setup.exemptions.annotations, AnnotationPolicy::Nowhere);
        let settings =
            parse_settings(SourceId(0), &file("c", "annotationExemptions:\n  namespaces: [team]\n")).unwrap();
        let (setup, _) = Setup::build(&settings, &[], None, &webhook);
        assert_eq!(setup.exemptions.annotations, AnnotationPolicy::from_list(&["team".to_string()]));
    }
}
