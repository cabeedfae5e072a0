//! The engine's side of a run: documents parsed once and kept until their
//! text changes (the parse cache), and the engine run over all of them, its
//! findings sorted by the document they point into.

use super::settings::WorkspaceSettings;
use super::store::Text;
use apiload_rules::object::{ReadSource, read_documents, worth_analyzing};
use apiload_rules::{Category, Diagnostic, Input, Report, SourceId, Sources};
use apiload_yaml::{Limits, Node, load_stream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A document's objects and the findings of reading it, kept until its text
/// (or the default namespace) changes.
pub struct Parsed {
    pub text: Text,
    pub namespace: Arc<str>,
    pub read: ReadSource,
}

/// Runs the engine over the documents read so far. A partial run
/// (`complete` false, before the whole workspace is read) holds back
/// unresolved-reference findings: the role they miss may be in a file not
/// read yet. Returns the report and its findings by the slot they point into.
pub fn run(
    settings: &WorkspaceSettings,
    sources: &Sources,
    reads: Vec<ReadSource>,
    complete: bool,
) -> (Report, Vec<Vec<Diagnostic>>) {
    let setup = &settings.setup;
    let mut input = Input::with_profiles(setup.options.clone(), setup.profiles.clone());
    let mut policy = setup.exemptions.clone();
    // A language server runs for days: expiry is judged on each run's date.
    policy.today = apiload_rules::setup::today();
    input.set_exemptions(policy);
    for read in reads {
        input.add_read(read);
    }
    let mut report = input.analyze(sources);
    let mut by_slot: Vec<Vec<Diagnostic>> = vec![Vec::new(); sources.len()];
    for d in std::mem::take(&mut report.diagnostics) {
        if !complete && d.category() == Category::UnresolvedReference {
            continue;
        }
        if let Some(v) = by_slot.get_mut(d.location.source.0 as usize) {
            v.push(d);
        }
    }
    // The order incremental runs publish in too.
    for v in &mut by_slot {
        super::incremental::canonical(v);
    }
    (report, by_slot)
}

/// A document that is a Kubernetes object, as opposed to other YAML in the
/// repository (Helm values, CI workflows, Chart.yaml, kustomization.yaml).
fn looks_like_kubernetes(root: &Node) -> bool {
    let kind = root.get("kind").and_then(Node::as_str);
    root.get("apiVersion").is_some() && kind.is_some_and(|k| !matches!(k, "Kustomization" | "Component"))
}

/// Parses a document. Findings of loading (syntax errors, documents that are
/// not objects) are kept with it; files none of whose documents look like
/// Kubernetes objects contribute only their syntax errors.
pub fn parse(slot: usize, text: &Text, namespace: &Arc<str>) -> Parsed {
    let documents = load_stream(text, &Limits::default());
    let relevant = documents.iter().any(|d| d.as_ref().is_ok_and(|d| looks_like_kubernetes(&d.root)));
    let kept = documents.into_iter().filter(|d| match d {
        Ok(doc) => relevant && worth_analyzing(&doc.root),
        Err(_) => true,
    });
    let read = read_documents(SourceId(slot as u32), kept, namespace);
    Parsed { text: text.clone(), namespace: namespace.clone(), read }
}

/// Parses documents on every core when there are many.
pub fn parse_all(jobs: Vec<(usize, Text)>, namespace: &Arc<str>) -> Vec<(usize, Parsed)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len() / 16).max(1);
    if threads == 1 {
        return jobs.iter().map(|(i, t)| (*i, parse(*i, t, namespace))).collect();
    }
    let next = AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((i, t)) = jobs.get(k) else { break };
                    mine.push((*i, parse(*i, t, namespace)));
                }
                results.lock().unwrap_or_else(|e| e.into_inner()).extend(mine);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kubernetes_files_are_linted_but_syntax_errors_always_count() {
        let ns: Arc<str> = "default".into();
        let p = |s: &str| parse(0, &Arc::from(s.as_bytes()), &ns).read;
        // Helm values, a CI workflow: not objects, and not reported as such.
        assert!(p("replicaCount: 3\nimage: {repository: nginx}\n").diagnostics.is_empty());
        assert!(p("apiVersion: v2\nname: chart\n").diagnostics.is_empty());
        assert!(p("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n").diagnostics.is_empty());
        // A manifest with a document that is not an object: reported.
        let m = p("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n- 1\n");
        assert_eq!(m.objects.len(), 1);
        assert_eq!(m.diagnostics.len(), 1);
        // Broken YAML is reported whatever the file is.
        let broken = p("a: [1, 2\n");
        assert_eq!(broken.diagnostics.len(), 1);
        assert_eq!(broken.diagnostics[0].rule.id, "AL001");
    }
}
