//! `helm template … | apiload lint -`: findings at the template line people
//! edit. Helm writes `# Source: CHART/templates/x.yaml` before each rendered
//! document (the path under the chart's parent). The chart is found on disk
//! (from `--stdin-filename`, else the `Chart.yaml` under the repository root
//! whose `name` is CHART), and each rendered line is matched to the template
//! line that printed it: literal lines by their text, lines printed by an
//! action (`toYaml … | nindent`) to that action's line, and lines of
//! `include "name"` / `template "name"` to the line of the `define` body
//! that printed them. A line that cannot be matched keeps its place in the
//! rendered document, and says so.

use super::template::{self, Line, Piece};
use super::{Attribution, Mapped, find_files};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Largest alignment table (rendered lines × template lines) tried; beyond
/// it, lines are counted in the rendered document.
const MAX_CELLS: usize = 4_000_000;
/// How deep `include` is followed.
const MAX_DEPTH: usize = 12;

/// A template line an output line came from.
#[derive(Clone, Copy, Debug)]
struct From {
    file: usize,
    line: u32,
    /// Matched by its text (else: printed by an action on that line).
    literal: bool,
}

struct Doc {
    /// Line of the `# Source:` comment in the stream.
    mark: u32,
    /// The path Helm wrote.
    source: String,
    /// Per rendered line after the mark.
    lines: Vec<Option<From>>,
}

pub struct HelmMap {
    docs: Vec<Doc>,
    /// Template files read: absolute path and lines.
    files: Vec<(PathBuf, Vec<String>)>,
}

/// The `# Source:` comments of a stream: (line, path).
pub fn marks(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| l.strip_prefix("# Source: ").map(|p| (i as u32 + 1, p.trim().to_string())))
        .collect()
}

/// Chart folders by chart name, found from the hint (a chart folder or a
/// path inside one) or else under the root.
struct Charts {
    by_name: HashMap<String, PathBuf>,
}

fn chart_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("Chart.yaml")).ok()?;
    let doc = apiload_yaml::load_str(&text, &apiload_yaml::Limits::default()).into_iter().next()?.ok()?;
    doc.root.get("name")?.as_str().map(str::to_string)
}

impl Charts {
    fn find(root: &Path, hint: Option<&Path>, wanted: &[String]) -> Charts {
        let mut by_name = HashMap::new();
        if let Some(hint) = hint {
            let mut dir = if hint.is_dir() { Some(hint.to_path_buf()) } else { hint.parent().map(Path::to_path_buf) };
            while let Some(d) = dir {
                if d.join("Chart.yaml").is_file() {
                    if let Some(name) = chart_name(&d) {
                        by_name.insert(name, d.clone());
                    }
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
        }
        if wanted.iter().any(|w| !by_name.contains_key(w)) {
            for file in find_files(root, &|name| name == "Chart.yaml") {
                let Some(dir) = file.parent() else { continue };
                if let Some(name) = chart_name(dir)
                    && wanted.contains(&name)
                {
                    by_name.entry(name).or_insert_with(|| dir.to_path_buf());
                }
            }
        }
        Charts { by_name }
    }
}

/// The parsed templates of one chart (and its subcharts): defines by name,
/// each file parsed once.
struct Library {
    parsed: Vec<template::Parsed>,
    /// Index in `HelmMap::files` of each parsed file.
    file_of: Vec<usize>,
    by_path: HashMap<PathBuf, usize>,
    defines: HashMap<String, (usize, usize)>,
}

impl Library {
    fn load(chart: &Path, files: &mut Vec<(PathBuf, Vec<String>)>) -> Library {
        let mut lib =
            Library { parsed: Vec::new(), file_of: Vec::new(), by_path: HashMap::new(), defines: HashMap::new() };
        let mut paths: Vec<PathBuf> = find_files(chart, &|_| true)
            .into_iter()
            .filter(|p| p.components().any(|c| c.as_os_str() == "templates"))
            .collect();
        paths.sort();
        for path in paths {
            lib.add(&path, files);
        }
        lib
    }

    fn add(&mut self, path: &Path, files: &mut Vec<(PathBuf, Vec<String>)>) -> Option<usize> {
        if let Some(i) = self.by_path.get(path) {
            return Some(*i);
        }
        let text = std::fs::read_to_string(path).ok()?;
        let parsed = template::parse(&text);
        let i = self.parsed.len();
        for name in parsed.defines.keys() {
            self.defines.entry(name.clone()).or_insert((i, 0));
        }
        files.push((path.to_path_buf(), text.lines().map(str::to_string).collect()));
        self.file_of.push(files.len() - 1);
        self.parsed.push(parsed);
        self.by_path.insert(path.to_path_buf(), i);
        Some(i)
    }

    /// A file's output lines with calls expanded: (pattern or `None` for
    /// "any number of lines", where).
    fn expand(&self, lines: &[(u32, Line)], file: usize, depth: usize, out: &mut Vec<(Option<Vec<Piece>>, From)>) {
        for (line, l) in lines {
            let at = From { file: self.file_of[file], line: *line, literal: false };
            match l {
                Line::Literal(p) => out.push((Some(p.clone()), From { literal: true, ..at })),
                Line::Output => out.push((None, at)),
                Line::Call(name) => {
                    // What the call prints is matched line by line in the
                    // define; what is not, belongs to the call's line.
                    out.push((None, at));
                    if depth < MAX_DEPTH
                        && let Some((f, _)) = self.defines.get(name)
                    {
                        self.expand(&self.parsed[*f].defines[name], *f, depth + 1, out);
                        out.push((None, at));
                    }
                }
            }
        }
    }
}

/// Matches rendered lines to template lines: the most lines matched by
/// their text, in order, the rest absorbed by the action before them.
fn align(rendered: &[&str], elems: &[(Option<Vec<Piece>>, From)]) -> Option<Vec<Option<From>>> {
    let (n, m) = (rendered.len(), elems.len());
    if (n + 1) * (m + 1) > MAX_CELLS {
        return None;
    }
    let w = m + 1;
    let mut score = vec![0u32; (n + 1) * w];
    let lit = |i: usize, j: usize| elems[j].0.as_ref().is_some_and(|p| template::matches(p, rendered[i]));
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let mut best = score[i * w + j + 1].max(score[(i + 1) * w + j]);
            if elems[j].0.is_none() {
                best = best.max(1 + score[(i + 1) * w + j]);
            } else if lit(i, j) {
                best = best.max(2 + score[(i + 1) * w + j + 1]);
            }
            score[i * w + j] = best;
        }
    }
    let mut out = vec![None; n];
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        let best = score[i * w + j];
        if elems[j].0.is_some() && lit(i, j) && best == 2 + score[(i + 1) * w + j + 1] {
            out[i] = Some(elems[j].1);
            i += 1;
            j += 1;
        } else if elems[j].0.is_none() && best == 1 + score[(i + 1) * w + j] {
            out[i] = Some(elems[j].1);
            i += 1;
        } else if best == score[i * w + j + 1] {
            j += 1;
        } else {
            i += 1;
        }
    }
    Some(out)
}

impl HelmMap {
    /// `None` when the stream has no `# Source:` comment.
    pub fn build(text: &str, root: &Path, hint: Option<&Path>) -> Option<HelmMap> {
        let marks = marks(text);
        if marks.is_empty() {
            return None;
        }
        let wanted: Vec<String> = marks.iter().filter_map(|(_, p)| p.split('/').next().map(str::to_string)).collect();
        let charts = Charts::find(root, hint, &wanted);
        let mut files = Vec::new();
        let mut libraries: HashMap<String, Library> = HashMap::new();
        let all: Vec<&str> = text.lines().collect();
        let mut docs = Vec::new();
        for (k, (mark, source)) in marks.iter().enumerate() {
            let end = marks.get(k + 1).map_or(all.len() as u32, |(l, _)| l - 1);
            let body: Vec<&str> = all[*mark as usize..end as usize].to_vec();
            let mut lines = vec![None; body.len()];
            let (chart, rest) = source.split_once('/').unwrap_or((source, ""));
            if let Some(dir) = charts.by_name.get(chart) {
                let lib = libraries.entry(chart.to_string()).or_insert_with(|| Library::load(dir, &mut files));
                if let Some(f) = lib.add(&dir.join(rest), &mut files) {
                    let mut elems = Vec::new();
                    lib.expand(&lib.parsed[f].body, f, 0, &mut elems);
                    // Blank lines and the `---` that ends a document carry nothing.
                    let kept: Vec<usize> = (0..body.len())
                        .filter(|&i| !body[i].trim().is_empty() && body[i].trim_end() != "---")
                        .collect();
                    let rendered: Vec<&str> = kept.iter().map(|&i| body[i]).collect();
                    if let Some(found) = align(&rendered, &elems) {
                        for (slot, from) in kept.into_iter().zip(found) {
                            lines[slot] = from;
                        }
                    }
                }
            }
            docs.push(Doc { mark: *mark, source: source.clone(), lines });
        }
        Some(HelmMap { docs, files })
    }

    /// Where the span from `(line, column)` to `(end_line, end_column)` of
    /// the stream (1-based, columns in characters) comes from.
    pub fn map(&self, text: &str, start: (u32, u32), end: (u32, u32)) -> Option<Mapped> {
        let doc = self.docs.iter().rev().find(|d| d.mark < start.0)?;
        let rel = (start.0 - doc.mark - 1) as usize;
        let rendered_line = |l: u32| text.lines().nth(l as usize - 1).unwrap_or("");
        match doc.lines.get(rel).copied().flatten() {
            Some(from) => {
                let (path, lines) = &self.files[from.file];
                let tline = lines.get(from.line as usize - 1).map_or("", String::as_str);
                let column = if from.literal {
                    column_in(tline, rendered_line(start.0), start.1)
                } else {
                    first_non_space(tline)
                };
                let width = tline.chars().count() as u32 + 1;
                let end_column = if end.0 == start.0 && from.literal {
                    column_in(tline, rendered_line(start.0), end.1).max(column)
                } else {
                    width.max(column)
                };
                Some(Mapped {
                    file: path.display().to_string(),
                    line: from.line,
                    column,
                    end_line: from.line,
                    end_column,
                    attribution: Attribution::Template,
                })
            }
            None => Some(Mapped {
                file: doc.source.clone(),
                line: start.0 - doc.mark,
                column: start.1,
                end_line: end.0.saturating_sub(doc.mark).max(start.0 - doc.mark),
                end_column: end.1,
                attribution: Attribution::Rendered,
            }),
        }
    }
}

fn first_non_space(line: &str) -> u32 {
    line.chars().take_while(|c| c.is_whitespace()).count() as u32 + 1
}

/// The column in the template line of what is at `column` of the rendered
/// line: the same text when the template has it, else the same distance
/// from the indentation.
fn column_in(template: &str, rendered: &str, column: u32) -> u32 {
    let chars: Vec<char> = rendered.chars().collect();
    let at = (column as usize).saturating_sub(1).min(chars.len());
    let word: String = chars[at..].iter().take_while(|c| !c.is_whitespace()).take(24).collect();
    let width = template.chars().count() as u32 + 1;
    if !word.is_empty()
        && let Some(byte) = template.find(&word)
    {
        return template[..byte].chars().count() as u32 + 1;
    }
    let indent_r = first_non_space(rendered);
    (first_non_space(template) + column.saturating_sub(indent_r)).min(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(dir: &Path) {
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(dir.join("Chart.yaml"), "apiVersion: v2\nname: agent\nversion: 1.0.0\n").unwrap();
        std::fs::write(
            dir.join("templates/daemonset.yaml"),
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {{ .Release.Name }}\n  labels:\n    {{- toYaml .Values.labels | nindent 4 }}\nspec:\n  template:\n    spec:\n      {{- include \"agent.pod\" . | nindent 6 }}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("templates/_pod.tpl"),
            "{{- define \"agent.pod\" -}}\n{{- if .Values.hostNetwork }}\nhostNetwork: true\n{{- end }}\nserviceAccountName: {{ .Release.Name }}\ncontainers:\n  - name: agent\n    image: {{ .Values.image }}\n{{- end }}\n",
        )
        .unwrap();
    }

    #[test]
    fn rendered_lines_go_back_to_template_and_define_lines() {
        let root = std::env::temp_dir().join(format!("apiload-helm-map-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        chart(&root.join("charts/agent"));
        let stream = "---\n# Source: agent/templates/daemonset.yaml\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: rel\n  labels:\n    a: b\n    c: d\nspec:\n  template:\n    spec:\n      serviceAccountName: rel\n      containers:\n        - name: agent\n          image: x:1\n";
        let map = HelmMap::build(stream, &root, None).unwrap();
        let at = |line: u32, col: u32| map.map(stream, (line, col), (line, col + 3)).unwrap();
        let m = at(6, 9);
        assert!(m.file.ends_with("charts/agent/templates/daemonset.yaml"), "{}", m.file);
        assert_eq!((m.line, m.attribution), (4, Attribution::Template));
        // Printed by toYaml: the action's line.
        assert_eq!(at(9, 5).line, 6);
        // From the define in _pod.tpl, at the template's own column.
        let m = at(13, 27);
        assert!(m.file.ends_with("templates/_pod.tpl"), "{}", m.file);
        assert_eq!((m.line, m.column), (5, 21));
        assert_eq!(at(16, 11).line, 8);
        // A chart that is not on disk: the rendered line, labelled.
        let other = stream.replace("agent/templates", "missing/templates");
        let map = HelmMap::build(&other, &root, None).unwrap();
        let m = map.map(&other, (13, 7), (13, 10)).unwrap();
        assert_eq!(
            (m.file.as_str(), m.line, m.attribution),
            ("missing/templates/daemonset.yaml", 11, Attribution::Rendered)
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
