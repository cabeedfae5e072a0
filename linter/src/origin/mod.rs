//! Where a finding in generated input comes from: the Helm template line
//! (`helm template` output with `# Source:` comments) or the Kustomize base
//! or overlay file (`config.kubernetes.io/origin` annotations), so that every
//! format points at the file people edit.

pub mod helm;
pub mod kustomize;
pub mod template;

use std::path::{Path, PathBuf};

/// How a mapped position was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// The template's own line.
    Template,
    /// The line counted in the rendered document, from its `# Source:`
    /// comment: the template could not be read or matched.
    Rendered,
    /// The same field in the file Kustomize's origin annotation names.
    Origin,
}

impl Attribution {
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::Template => "template",
            Attribution::Rendered => "rendered",
            Attribution::Origin => "origin",
        }
    }
}

/// A position in another file (a path as it can be opened, or as Helm wrote
/// it when the chart is not on disk), 1-based, columns in characters.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    pub attribution: Attribution,
}

/// How the positions of one generated source map back.
pub enum SourceMap {
    Helm(helm::HelmMap),
    Kustomize(kustomize::KustomizeMap),
}

impl SourceMap {
    /// For a source read from stdin (or rendered by `--helm`): `hint` is
    /// `--stdin-filename` (a chart or kustomization folder or a file in one).
    pub fn build(text: &str, root: &Path, hint: Option<&Path>) -> Option<SourceMap> {
        if let Some(m) = helm::HelmMap::build(text, root, hint) {
            return Some(SourceMap::Helm(m));
        }
        kustomize::KustomizeMap::build(text, root, hint).map(SourceMap::Kustomize)
    }

    /// `start` and `end` are (line, column) of the span in the source, `offset` its byte start.
    pub fn map(&self, text: &str, offset: u32, start: (u32, u32), end: (u32, u32)) -> Option<Mapped> {
        match self {
            SourceMap::Helm(m) => m.map(text, start, end),
            SourceMap::Kustomize(m) => m.map(offset),
        }
    }
}

/// Files under `dir` whose name passes `wanted`, skipping hidden folders,
/// `node_modules` and `target`; bounded, so that a huge tree costs little.
pub fn find_files(dir: &Path, wanted: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    const MAX_ENTRIES: usize = 50_000;
    const MAX_DEPTH: usize = 10;
    let mut out = Vec::new();
    let mut seen = 0;
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return out;
            }
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                if depth < MAX_DEPTH && !name.starts_with('.') && name != "node_modules" && name != "target" {
                    stack.push((e.path(), depth + 1));
                }
            } else if wanted(&name) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}
