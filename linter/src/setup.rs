//! Everything a run needs besides its manifests: the configuration file
//! (found from the working directory upward, or `--config`), the cluster
//! profile, agent profiles, exemptions and today's date.

use apiload_rules::exempt::{AnnotationPolicy, ExemptionPolicy};
use apiload_rules::profile::ProfileSet;
use apiload_rules::settings::Settings;
use apiload_rules::{Options, SourceId, Sources};
use apiload_yaml::{ColumnUnit, Limits, LineIndex, Span};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = ".apiload.yaml";

/// Flags that shape the analysis, from the command line.
pub struct Flags<'a> {
    pub config: Option<&'a str>,
    pub no_config: bool,
    pub namespace: Option<&'a str>,
    pub nodes: Option<u64>,
    pub cluster_profile: Option<&'a str>,
    pub profiles: &'a [String],
    pub report_unused_exemptions: bool,
}

pub struct Setup {
    pub options: Options,
    pub profiles: ProfileSet,
    pub exemptions: ExemptionPolicy,
    /// `failOn` of the configuration file.
    pub fail_on: Option<String>,
}

/// `file:line:column` of a span in a text.
pub fn at(path: &str, text: &str, span: Span) -> String {
    let lc = LineIndex::new(text.as_bytes()).line_col_in(text, span.start, ColumnUnit::Chars);
    format!("{path}:{}:{}", lc.line, lc.column)
}

/// `.apiload.yaml` in the working directory or the nearest parent that has one.
fn discover() -> Option<PathBuf> {
    discover_from(&std::env::current_dir().ok()?)
}

/// `.apiload.yaml` in `dir` or the nearest parent that has one.
pub fn discover_from(dir: &Path) -> Option<PathBuf> {
    let mut dir = dir.to_path_buf();
    loop {
        let candidate = dir.join(CONFIG_FILE);
        if candidate.is_file() {
            return Some(candidate);
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// Reads the configuration, profiles and cluster profile. Errors are
/// `file:line:column: message` lines.
pub fn setup(flags: &Flags<'_>, sources: &mut Sources) -> Result<Setup, Vec<String>> {
    let mut errors = Vec::new();
    let path = match (flags.config, flags.no_config) {
        (Some(p), _) => Some(PathBuf::from(p)),
        (None, true) => None,
        (None, false) => discover(),
    };
    let mut settings = Settings::default();
    let mut config_dir = PathBuf::from(".");
    if let Some(path) = &path {
        match std::fs::read_to_string(path) {
            Err(e) => errors.push(format!("cannot read {}: {e}", path.display())),
            Ok(text) => {
                // Added to the sources so that findings about exemptions can point into it.
                let id: SourceId = sources.add(path.display().to_string(), text.as_bytes());
                match Settings::parse(id, &text) {
                    Ok(s) => settings = s,
                    Err(e) => errors.push(format!(
                        "{}: invalid configuration: {}",
                        at(&path.display().to_string(), &text, e.span),
                        e.message
                    )),
                }
                config_dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            }
        }
    }
    let (setup, more) = from_settings(&settings, &config_dir, flags);
    errors.extend(more);
    if errors.is_empty() { Ok(setup) } else { Err(errors) }
}

/// Everything but the configuration file itself: the analysis that `settings`
/// (read from a file in `config_dir`) and the flags describe. Errors come with
/// a usable setup (built-in profiles when the user's cannot be read), so that
/// a long-running front end (the language server) can report them and go on.
pub fn from_settings(settings: &Settings, config_dir: &Path, flags: &Flags<'_>) -> (Setup, Vec<String>) {
    let mut errors = Vec::new();
    let mut options = Options::default();
    settings.apply_cluster(&mut options.cluster);
    if let Some(file) = flags.cluster_profile
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
    options.default_namespace =
        flags.namespace.map(str::to_string).or(settings.namespace.clone()).unwrap_or_else(|| "default".into());
    options.rule_settings = settings.rules.clone();

    let mut dirs: Vec<String> = settings.profiles.iter().map(|p| config_dir.join(p).display().to_string()).collect();
    dirs.extend(flags.profiles.iter().cloned());
    let profiles = match load_profiles(&dirs) {
        Ok(p) => p,
        Err(e) => {
            errors.extend(e);
            ProfileSet::builtin()
        }
    };
    let exemptions = ExemptionPolicy {
        config: settings.exemptions.clone(),
        annotations: settings
            .annotation_namespaces
            .as_deref()
            .map_or(AnnotationPolicy::Everywhere, AnnotationPolicy::from_list),
        today: today(),
        report_unused: flags.report_unused_exemptions,
    };
    (Setup { options, profiles, exemptions, fail_on: settings.fail_on.clone() }, errors)
}

fn read_cluster_profile(path: &str, profile: &mut apiload_rules::ClusterProfile) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut docs = apiload_yaml::load_str(&text, &Limits::default());
    if docs.is_empty() {
        return Ok(());
    }
    let root = docs.remove(0).map_err(|e| format!("{}: {}", at(path, &text, e.span), e.message))?.root;
    apiload_rules::settings::apply_cluster(&root, profile)
        .map_err(|e| format!("{}: invalid cluster profile: {}", at(path, &text, e.span), e.message))
}

/// The built-in profiles plus those in `dirs`; errors as `file:line:column: message`.
pub fn load_profiles(dirs: &[String]) -> Result<ProfileSet, Vec<String>> {
    let mut set = ProfileSet::builtin();
    let mut errors = Vec::new();
    for dir in dirs {
        let (files, read_errors) = crate::load::expand(std::slice::from_ref(dir));
        errors.extend(read_errors.into_iter().map(|e| format!("cannot read {}: {}", e.path, e.message)));
        for file in files {
            let name = file.display().to_string();
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(format!("cannot read {name}: {e}"));
                    continue;
                }
            };
            if let Err(errs) = set.add_text(&name, &text) {
                for e in errs {
                    errors.push(format!("{}: invalid profile: {}", at(&name, &text, e.span), e.message));
                }
            }
        }
    }
    if errors.is_empty() { Ok(set) } else { Err(errors) }
}

/// Today's date in UTC, `YYYY-MM-DD` (for exemption expiry). `APILOAD_TODAY`
/// overrides it, for reproducible runs.
pub fn today() -> String {
    if let Ok(d) = std::env::var("APILOAD_TODAY") {
        return d;
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    apiload_rules::exempt::civil_date((secs / 86_400) as i64)
}
