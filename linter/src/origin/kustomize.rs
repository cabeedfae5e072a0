//! `kustomize build … | apiload lint -` with `buildMetadata: [originAnnotations]`:
//! each object carries `config.kubernetes.io/origin` with the `path` of the
//! file it came from, relative to the kustomization that was built
//! (https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/buildmetadata).
//! A finding inside such an object is moved to the same field of the same
//! object in that file (a base or an overlay's own resource). Fields a patch
//! added are not in that file: the nearest field above them that is stands in.

use super::{Attribution, Mapped, find_files};
use apiload_yaml::{Limits, Node, Span, Value};
use std::path::{Path, PathBuf};

pub const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";

struct Object {
    /// The object's span in the stream.
    span: Span,
    /// The origin file, absolute, with its text.
    file: Option<(PathBuf, String)>,
    kind: String,
    name: String,
}

pub struct KustomizeMap {
    stream: Vec<Node>,
    objects: Vec<Object>,
}

/// One step from a node to a child: a key of a mapping or an index of a sequence.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String, bool),
    Index(usize),
}

fn origin_path(root: &Node) -> Option<String> {
    let value = root.path(&["metadata", "annotations", ORIGIN_ANNOTATION])?.as_str()?;
    let doc = apiload_yaml::load_str(value, &Limits::default()).into_iter().next()?.ok()?;
    // Remote resources name a repository; there is no file here to point at.
    if doc.root.get("repo").is_some() {
        return None;
    }
    doc.root.get("path")?.as_str().map(str::to_string)
}

/// The folder the kustomization was built in: the hint's (a kustomization
/// file or its folder), else the folder under the root from which the most
/// origin paths exist.
fn build_dir(root: &Path, hint: Option<&Path>, paths: &[String]) -> Option<PathBuf> {
    if let Some(h) = hint {
        let dir = if h.is_dir() { h.to_path_buf() } else { h.parent()?.to_path_buf() };
        return Some(dir);
    }
    let names = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
    let mut best: Option<(usize, usize, PathBuf)> = None;
    for file in find_files(root, &|n| names.contains(&n)) {
        let Some(dir) = file.parent() else { continue };
        let hits = paths.iter().filter(|p| dir.join(p).is_file()).count();
        let depth = dir.components().count();
        if hits > 0 && best.as_ref().is_none_or(|(h, d, _)| hits > *h || (hits == *h && depth < *d)) {
            best = Some((hits, depth, dir.to_path_buf()));
        }
    }
    best.map(|(_, _, d)| d)
}

impl KustomizeMap {
    /// `None` when no object of the stream carries an origin annotation.
    pub fn build(text: &str, root: &Path, hint: Option<&Path>) -> Option<KustomizeMap> {
        if !text.contains(ORIGIN_ANNOTATION) {
            return None;
        }
        let stream: Vec<Node> = apiload_yaml::load_stream(text.as_bytes(), &Limits::default())
            .into_iter()
            .filter_map(|d| d.ok().map(|d| d.root))
            .collect();
        let paths: Vec<String> = stream.iter().filter_map(origin_path).collect();
        if paths.is_empty() {
            return None;
        }
        let dir = build_dir(root, hint, &paths)?;
        let objects = stream
            .iter()
            .map(|node| {
                let file = origin_path(node).and_then(|p| {
                    let path = crate::paths::normalize(&dir.join(p));
                    std::fs::read_to_string(&path).ok().map(|t| (path, t))
                });
                let get = |k: &[&str]| node.path(k).and_then(Node::as_str).unwrap_or("").to_string();
                Object { span: node.span, file, kind: get(&["kind"]), name: get(&["metadata", "name"]) }
            })
            .collect();
        Some(KustomizeMap { stream, objects })
    }

    pub fn map(&self, offset: u32) -> Option<Mapped> {
        let k = self.objects.iter().position(|o| o.span.start <= offset && offset <= o.span.end)?;
        let obj = &self.objects[k];
        let (path, text) = obj.file.as_ref()?;
        let steps = steps_to(&self.stream[k], offset);
        // The same object in the origin file: same kind, and the name it had
        // before a prefix or suffix was added.
        let docs: Vec<Node> = apiload_yaml::load_stream(text.as_bytes(), &Limits::default())
            .into_iter()
            .filter_map(|d| d.ok().map(|d| d.root))
            .collect();
        let same = |n: &&Node| n.get("kind").and_then(Node::as_str) == Some(obj.kind.as_str());
        let named =
            |n: &&Node| n.path(&["metadata", "name"]).and_then(Node::as_str).is_some_and(|m| obj.name.contains(m));
        let doc = docs.iter().filter(same).find(named).or_else(|| docs.iter().find(same))?;
        let span = follow(doc, &steps);
        let lines = apiload_yaml::LineIndex::new(text.as_bytes());
        let s = lines.line_col_in(text, span.start, apiload_yaml::ColumnUnit::Chars);
        let e = lines.line_col_in(text, span.end, apiload_yaml::ColumnUnit::Chars);
        Some(Mapped {
            file: path.display().to_string(),
            line: s.line,
            column: s.column,
            end_line: e.line,
            end_column: e.column,
            attribution: Attribution::Origin,
        })
    }
}

/// The steps from `node` down to the deepest node, or key, at `offset`.
fn steps_to(node: &Node, offset: u32) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut at = node;
    loop {
        match &at.value {
            Value::Map(entries) => {
                let Some(e) = entries.iter().find(|e| {
                    (e.key_span.start <= offset && offset < e.key_span.end.max(e.key_span.start + 1))
                        || (e.value.span.start <= offset && offset <= e.value.span.end)
                }) else {
                    return steps;
                };
                let on_key = e.key_span.start <= offset && offset < e.key_span.end.max(e.key_span.start + 1);
                steps.push(Step::Key(e.key.to_string(), on_key));
                if on_key {
                    return steps;
                }
                at = &e.value;
            }
            Value::Seq(items) => {
                let Some(i) = items.iter().position(|n| n.span.start <= offset && offset <= n.span.end) else {
                    return steps;
                };
                steps.push(Step::Index(i));
                at = &items[i];
            }
            _ => return steps,
        }
    }
}

/// The span at the end of `steps` from `node`, or of the deepest step that exists.
fn follow(node: &Node, steps: &[Step]) -> Span {
    let mut at = node;
    let mut span = Span::new(node.span.start, node.span.start);
    for step in steps {
        match (step, &at.value) {
            (Step::Key(k, on_key), Value::Map(_)) => {
                let Some(e) = at.entry(k) else { return span };
                if *on_key {
                    return e.key_span;
                }
                span = e.key_span;
                at = &e.value;
            }
            (Step::Index(i), Value::Seq(items)) => {
                let Some(n) = items.get(*i) else { return span };
                span = Span::new(n.span.start, n.span.start);
                at = n;
            }
            _ => return span,
        }
    }
    if matches!(at.value, Value::Map(_) | Value::Seq(_)) { span } else { at.span }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_move_to_the_base_file() {
        let root = std::env::temp_dir().join(format!("apiload-kustomize-map-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("base")).unwrap();
        std::fs::create_dir_all(root.join("overlays/prod")).unwrap();
        std::fs::write(root.join("overlays/prod/kustomization.yaml"), "resources: [../../base]\nnamePrefix: prod-\n")
            .unwrap();
        std::fs::write(
            root.join("base/ds.yaml"),
            "# the agent\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  template:\n    spec:\n      serviceAccountName: agent\n",
        )
        .unwrap();
        let stream = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  annotations:\n    config.kubernetes.io/origin: |\n      path: ../../base/ds.yaml\n  name: prod-agent\nspec:\n  template:\n    spec:\n      hostNetwork: true\n      serviceAccountName: prod-agent\n";
        let map = KustomizeMap::build(stream, &root, None).unwrap();
        let value = stream.find("prod-agent\n").unwrap() as u32;
        let value = stream[value as usize + 1..].find("prod-agent").unwrap() as u32 + value + 1;
        let m = map.map(value).unwrap();
        assert!(m.file.ends_with("base/ds.yaml"), "{}", m.file);
        assert_eq!((m.line, m.column, m.attribution), (9, 27, Attribution::Origin));
        // A field the base does not have (a patch added it): its parent.
        let added = stream.find("hostNetwork").unwrap() as u32;
        assert_eq!(map.map(added).unwrap().line, 8);
        let _ = std::fs::remove_dir_all(&root);
    }
}
