//! The files a run reads besides its manifests: the configuration file (found
//! from the working directory upward, or `--config`), the profile folders it
//! and `--profiles` name, and `--cluster-profile`. What they mean is the
//! engine's `apiload_rules::setup`; this module only finds and reads them.

use apiload_rules::settings::Settings;
use apiload_rules::setup::{self, Flags, Setup};
use apiload_rules::{SourceId, Sources};
use apiload_yaml::files::TextFile;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = ".apiload.yaml";

/// The command line's say in the setup.
pub struct Request<'a> {
    pub config: Option<&'a str>,
    pub no_config: bool,
    pub cluster_profile: Option<&'a str>,
    pub profiles: &'a [String],
    pub flags: Flags,
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
pub fn setup(request: &Request<'_>, sources: &mut Sources) -> Result<Setup, Vec<String>> {
    let mut errors = Vec::new();
    let path = match (request.config, request.no_config) {
        (Some(p), _) => Some(PathBuf::from(p)),
        (None, true) => None,
        (None, false) => std::env::current_dir().ok().and_then(|d| discover_from(&d)),
    };
    let mut settings = Settings::default();
    let mut config_dir = PathBuf::from(".");
    if let Some(path) = &path {
        match TextFile::read(path) {
            Err(e) => errors.push(e),
            Ok(file) => {
                // Added to the sources so that findings about exemptions can point into it.
                let id: SourceId = sources.add(file.name.clone(), file.text.as_bytes());
                match setup::parse_settings(id, &file) {
                    Ok(s) => settings = s,
                    Err(e) => errors.push(e),
                }
                config_dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            }
        }
    }
    let cluster_profile = request.cluster_profile.map(|p| TextFile::read(Path::new(p)));
    let cluster_profile = match cluster_profile {
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        Some(Ok(f)) => Some(f),
        None => None,
    };
    let (setup, more) = build(&settings, &config_dir, request.profiles, cluster_profile.as_ref(), &request.flags);
    errors.extend(more);
    if errors.is_empty() { Ok(setup) } else { Err(errors) }
}

/// The setup `settings` (read from a file in `config_dir`) describe, with the
/// profile folders they and `extra_profiles` name read from disk. Errors come
/// with a usable setup, for front ends that go on (the language server).
pub fn build(
    settings: &Settings,
    config_dir: &Path,
    extra_profiles: &[String],
    cluster_profile: Option<&TextFile>,
    flags: &Flags,
) -> (Setup, Vec<String>) {
    let mut dirs: Vec<String> = settings.profiles.iter().map(|p| config_dir.join(p).display().to_string()).collect();
    dirs.extend(extra_profiles.iter().cloned());
    let (profiles, mut errors) = apiload_yaml::files::read_texts(&dirs);
    let (setup, more) = Setup::build(settings, &profiles, cluster_profile, flags);
    errors.extend(more);
    (setup, errors)
}
