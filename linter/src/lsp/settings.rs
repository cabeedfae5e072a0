//! The workspace's `.apiload.yaml` (found at the first workspace folder or
//! its nearest parent, as `apiload lint` finds it from the working
//! directory), read into the engine's setup as `apiload lint` reads it. A
//! broken file does not stop the server: its error is a diagnostic in the
//! file and the defaults apply until it is fixed.

use apiload_rules::SourceId;
use apiload_rules::settings::Settings;
use apiload_rules::setup::{Flags, Setup};
use apiload_yaml::Span;
use std::path::Path;

pub struct WorkspaceSettings {
    pub setup: Setup,
    /// Errors in the file itself.
    pub errors: Vec<(Span, String)>,
    /// Errors elsewhere (profile folders it names), for the user's attention.
    pub messages: Vec<String>,
}

/// Reads the configuration held in `slot` (`text` is `None` when there is no file).
pub fn load(slot: usize, path: Option<&Path>, text: Option<&[u8]>) -> WorkspaceSettings {
    let mut errors = Vec::new();
    let mut settings = Settings::default();
    if let Some(bytes) = text {
        let text = String::from_utf8_lossy(bytes);
        match Settings::parse(SourceId(slot as u32), &text) {
            Ok(s) => settings = s,
            Err(e) => errors
                .push((e.span, format!("invalid configuration: {}; the defaults apply until it is fixed", e.message))),
        }
    }
    let dir = path.and_then(Path::parent).unwrap_or(Path::new("."));
    let (setup, messages) = crate::setup::build(&settings, dir, &[], None, &Flags::default());
    WorkspaceSettings { setup, errors, messages }
}
