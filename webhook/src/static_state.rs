//! Static mode: the cluster state read from manifest files, with the same
//! walker, loader and limits as `apiload lint`. A broken file or document is reported
//! (file and line) and the rest is still loaded.

use crate::cluster::Cluster;
use crate::config::SOURCE_STATE;
use apiload_rules::object::objects_from_document;
use apiload_rules::setup::position;
use apiload_yaml::Limits;

/// What loading found.
pub struct Loaded {
    pub objects: usize,
    pub kept: usize,
    pub nodes: u64,
    /// `file:line:column: message` for everything that could not be read.
    pub problems: Vec<String>,
}

pub fn load(paths: &[String], cluster: &Cluster) -> Loaded {
    let limits = Limits::default();
    let walk = apiload_yaml::files::walk(paths);
    let mut loaded = Loaded { objects: 0, kept: 0, nodes: 0, problems: Vec::new() };
    loaded.problems.extend(walk.errors.into_iter().map(|e| format!("cannot read {}: {}", e.path, e.message)));
    loaded.problems.extend(
        walk.skipped.iter().filter(|s| s.why.is_notable()).map(|s| format!("skipped {}: {}", s.path.display(), s.why)),
    );
    let files = walk.files;
    let mut state = cluster.write();
    for file in files {
        let name = file.display().to_string();
        // Never a FIFO or a device, even named explicitly: start-up must not wait on one.
        let bytes = match apiload_yaml::files::read_regular_bounded(&file, limits.max_bytes) {
            Ok(b) => b,
            Err(e) => {
                loaded.problems.push(format!("cannot read {name}: {e}"));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut objects = Vec::new();
        let mut diagnostics = Vec::new();
        for doc in apiload_yaml::load_stream(&bytes, &limits) {
            match doc {
                Ok(doc) => objects_from_document(SOURCE_STATE, doc.root, "default", &mut objects, &mut diagnostics),
                Err(e) => loaded.problems.push(format!("{}: {}", position(&name, &text, e.span), e.message)),
            }
        }
        for d in diagnostics {
            loaded.problems.push(format!("{}: {}", position(&name, &text, d.location.span), d.message));
        }
        for o in objects {
            loaded.objects += 1;
            if &*o.kind == "Node" {
                loaded.nodes += 1;
            }
            // Spans still point into the file; the state's source has no
            // text, so they are never shown.
            if state.upsert(o) {
                loaded.kept += 1;
            }
        }
    }
    drop(state);
    cluster.set_nodes(loaded.nodes);
    cluster.touch("static");
    loaded
}
