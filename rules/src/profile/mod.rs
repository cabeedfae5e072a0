//! Agent profiles: what real agents do with their permissions, as data.
//!
//! A profile recognises an agent (by image or command), says where its
//! configuration lives and in which language, and lists what the agent calls
//! under which conditions — JSONPath over a document built from the
//! configuration, environment, arguments and image version (see `context`).
//! The built-in profiles live in `rules/profiles/*.yaml` and are embedded at
//! build time; users add their own with the same format (`docs/profiles.md`).

pub mod context;
mod eval;
mod load;
pub mod model;

pub use eval::{AgentRun, ClientLimits, ConfigProblem, command_line, flag_value, run};

pub use model::Profile;

use crate::source::SpanError;
use apiload_yaml::Limits;
use std::sync::{Arc, OnceLock};

include!(concat!(env!("OUT_DIR"), "/builtin_profiles.rs"));

/// The profiles an analysis uses.
#[derive(Clone, Debug)]
pub struct ProfileSet {
    profiles: Vec<Arc<Profile>>,
}

static BUILTIN: OnceLock<ProfileSet> = OnceLock::new();

impl ProfileSet {
    /// The profiles shipped with apiload.
    pub fn builtin() -> ProfileSet {
        BUILTIN
            .get_or_init(|| {
                let mut set = ProfileSet { profiles: Vec::new() };
                for (name, text) in BUILTIN_PROFILES {
                    // Built-in profiles are checked by tests; a broken one is a bug.
                    set.add_text(&format!("built-in {name}"), text)
                        .unwrap_or_else(|e| panic!("built-in profile {name}: {e:?}"));
                }
                set
            })
            .clone()
    }

    /// Reads a profile file (one profile per YAML document). A profile whose
    /// id is already known replaces the earlier one, so users can override
    /// built-in profiles. Returns the errors; valid documents are still added.
    pub fn add_text(&mut self, origin: &str, text: &str) -> Result<(), Vec<SpanError>> {
        let mut errors = Vec::new();
        for doc in apiload_yaml::load_str(text, &Limits::default()) {
            match doc {
                Ok(doc) => match load::read_profile(&doc.root, origin, text) {
                    Ok(p) => self.insert(p),
                    Err(e) => errors.push(SpanError::new(e.span, e.message)),
                },
                Err(e) => errors.push(SpanError::new(e.span, e.message)),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn insert(&mut self, p: Profile) {
        match self.profiles.iter_mut().find(|q| q.id == p.id) {
            Some(q) => *q = Arc::new(p),
            None => self.profiles.push(Arc::new(p)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.profiles.iter()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Profile>> {
        self.profiles.iter().find(|p| p.id == id)
    }

    /// Names of the ConfigMaps that agents read through the API rather than
    /// through a mount (in their own namespace), by any profile.
    pub fn config_maps_read_by_name(&self) -> impl Iterator<Item = &str> {
        self.profiles.iter().flat_map(|p| &p.config).filter_map(|c| match &c.kind {
            model::ConfigSourceKind::ConfigMap { name, .. } => Some(name.as_str()),
            _ => None,
        })
    }

    /// The profile of a container: the first whose image or command pattern
    /// matches and whose exclusions do not. An excluded container (another
    /// program of the same project: its operator, a controller built from the
    /// same image) may still be recognised by a later profile.
    pub fn for_container(&self, image: Option<&str>, command: Option<&str>) -> Option<&Arc<Profile>> {
        let repo = image.map(|i| context::split_image(i).0);
        let cmd = command.map(|c| c.rsplit('/').next().unwrap_or(c));
        let any = |globs: &[String], s: Option<&str>| s.is_some_and(|s| globs.iter().any(|g| crate::text::glob(g, s)));
        self.profiles.iter().find(|p| {
            (any(&p.images, repo) || any(&p.commands, cmd))
                && !any(&p.exclude_images, repo)
                && !any(&p.exclude_commands, cmd)
        })
    }
}

#[cfg(test)]
mod tests;
