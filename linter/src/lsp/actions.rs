//! Code actions: the mechanical fixes rules attach to their findings
//! (`Diagnostic::fixes`), and an exemption annotation with a reason to fill in
//! on the workload a finding is about.

use super::convert;
use super::snapshot::Snapshot;
use apiload_rules::exempt::{EXEMPT_ANNOTATION, REASON_ANNOTATION};
use apiload_rules::{Category, Diagnostic, Object, SourceId, rules};
use apiload_yaml::{Entry, Node, Span, Value, write_json_string};
use lsp_types::{CodeAction, CodeActionKind, CodeActionOrCommand, Range, TextEdit, WorkspaceEdit};
use std::collections::HashMap;

/// What the exemption action writes for the reason: nothing. The engine
/// ignores an exemption without a reason and reports it (AL006, "give the
/// reason"), so the finding stays until a person writes one; a placeholder
/// would silence it unexplained.
pub const REASON_PLACEHOLDER: &str = "";

/// The actions for the findings of document `slot` that overlap `range`.
/// `current(slot)` tells whether the snapshot still has the editor's text of
/// a document: edits are computed on the analysed text, and none are offered
/// for text that has changed since.
pub fn code_actions(
    snap: &Snapshot,
    slot: usize,
    range: Range,
    only: Option<&[CodeActionKind]>,
    current: &dyn Fn(usize) -> bool,
) -> Vec<CodeActionOrCommand> {
    let wanted = only.is_none_or(|kinds| {
        kinds.iter().any(|k| {
            let k = k.as_str();
            k.is_empty() || k == "quickfix" || "quickfix".starts_with(&format!("{k}."))
        })
    });
    let (Some(source), Some(found)) = (snap.source(slot), snap.diagnostics.get(slot)) else { return Vec::new() };
    if !wanted || !current(slot) {
        return Vec::new();
    }
    // The language server keeps every text whole (`Source::new`).
    let text = source.text().unwrap_or("");
    let start = convert::offset(text, &source.lines, range.start, snap.encoding);
    let end = convert::offset(text, &source.lines, range.end, snap.encoding).max(start);
    let uri_of = |id: SourceId| snap.uri(id);
    let mut actions = Vec::new();
    let mut exemptions_offered = Vec::new();
    for d in found.iter().filter(|d| d.location.span.start <= end && start <= d.location.span.end) {
        let shown = convert::diagnostic(d, &snap.sources, &uri_of, snap.encoding);
        for fix in d.fixes.iter().filter(|f| !f.edits.is_empty()) {
            if fix.edits.iter().any(|e| !current(e.location.source.0 as usize)) {
                continue;
            }
            let edits = fix.edits.iter().map(|e| (e.location.source, e.location.span, e.new_text.clone())).collect();
            if let Some(edit) = workspace_edit(snap, edits) {
                let preferred = crate::fix::preferred(d).is_some_and(|p| std::ptr::eq(p, fix));
                actions.push(action(fix.title.clone(), &shown, edit, preferred));
            }
        }
        if let Some((obj, edits)) = exemption(snap, d)
            && !exemptions_offered.contains(&(obj.reference(), d.rule.id))
            && current(obj.source.0 as usize)
            && let Some(edit) = workspace_edit(snap, edits.into_iter().map(|(s, t)| (obj.source, s, t)).collect())
        {
            exemptions_offered.push((obj.reference(), d.rule.id));
            let title = format!(
                "Exempt {} from {} ({}) with an annotation; then give the reason",
                obj.display(),
                d.rule.id,
                d.rule.name
            );
            actions.push(action(title, &shown, edit, false));
        }
    }
    actions
}

fn action(title: String, d: &lsp_types::Diagnostic, edit: WorkspaceEdit, preferred: bool) -> CodeActionOrCommand {
    CodeActionOrCommand::CodeAction(CodeAction {
        title,
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![d.clone()]),
        edit: Some(edit),
        is_preferred: preferred.then_some(true),
        ..CodeAction::default()
    })
}

// `WorkspaceEdit::changes` is keyed by lsp-types' `Uri`, whose parsed form caches
// in a `Cell`; the keys are never changed here.
#[allow(clippy::mutable_key_type)]
fn workspace_edit(snap: &Snapshot, edits: Vec<(SourceId, Span, String)>) -> Option<WorkspaceEdit> {
    let mut changes: HashMap<lsp_types::Uri, Vec<TextEdit>> = HashMap::new();
    for (id, span, new_text) in edits {
        let source = snap.source(id.0 as usize)?;
        let range = convert::source_range(source, span, snap.encoding);
        changes.entry(snap.uri(id)?).or_default().push(TextEdit { range, new_text });
    }
    Some(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() })
}

/// The workload a finding is about and the edits that exempt it from the
/// finding's rule; `None` for findings no annotation can exempt.
fn exemption<'a>(snap: &'a Snapshot, d: &Diagnostic) -> Option<(&'a Object, Vec<(Span, String)>)> {
    if matches!(d.category(), Category::Input | Category::Exemption) {
        return None;
    }
    let w = d.workload.as_ref()?;
    let obj = snap.workload_object(w)?;
    let source = snap.source(obj.source.0 as usize)?;
    Some((obj, exemption_edits(source.text()?, &obj.node, d.rule.id)?))
}

fn quoted(s: &str) -> String {
    let mut out = String::new();
    write_json_string(s, &mut out);
    out
}

/// Start of the line of `key` and its indentation, when only spaces precede it.
fn line_of(text: &str, key: Span) -> Option<(u32, String)> {
    let start = key.start as usize;
    let line_start = text.get(..start)?.rfind('\n').map_or(0, |i| i + 1);
    let indent = &text[line_start..start];
    indent.bytes().all(|b| b == b' ').then(|| (line_start as u32, indent.to_string()))
}

fn is_flow(text: &str, node: &Node) -> bool {
    text.as_bytes().get(node.span.start as usize) == Some(&b'{')
}

/// Where a flow mapping takes one more entry (after its last one), and the
/// separator to put first.
fn flow_append(entries: &[Entry], node: &Node) -> (Span, &'static str) {
    match entries.last() {
        Some(last) => (Span::point(last.value.span.end.max(last.key_span.end)), ", "),
        None => (Span::point(node.span.start + 1), ""),
    }
}

/// Edits of a workload's text that add `apiload.dev/exempt: "<rule>"` and
/// `apiload.dev/exempt-reason: ""` to its `metadata.annotations`:
/// into the existing annotations (block or flow style, the rule appended to an
/// existing exemption list), or as a new `annotations:` with the indentation
/// of the metadata around it. `None` when the rule is already exempted or the
/// metadata is not laid out in a way that can be edited safely.
pub fn exemption_edits(text: &str, object: &Node, rule: &str) -> Option<Vec<(Span, String)>> {
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let meta_entry = object.entry("metadata")?;
    let meta = &meta_entry.value;
    let meta_entries = meta.as_map()?;
    let exempt_line = |indent: &str| format!("{indent}{EXEMPT_ANNOTATION}: {}{nl}", quoted(rule));
    let reason_line = |indent: &str| format!("{indent}{REASON_ANNOTATION}: {}{nl}", quoted(REASON_PLACEHOLDER));
    let exempt_flow = format!("{}: {}", quoted(EXEMPT_ANNOTATION), quoted(rule));
    let reason_flow = format!("{}: {}", quoted(REASON_ANNOTATION), quoted(REASON_PLACEHOLDER));
    let Some(ann) = meta.entry("annotations") else {
        if is_flow(text, meta) {
            let (at, sep) = flow_append(meta_entries, meta);
            return Some(vec![(at, format!("{sep}\"annotations\": {{{exempt_flow}, {reason_flow}}}"))]);
        }
        let first = meta_entries.first()?;
        let (line, indent) = line_of(text, first.key_span)?;
        let (_, outer) = line_of(text, meta_entry.key_span).unwrap_or((0, String::new()));
        let step = if indent.len() > outer.len() { indent.len() - outer.len() } else { 2 };
        let inner = format!("{indent}{}", " ".repeat(step));
        let block = format!("{indent}annotations:{nl}{}{}", exempt_line(&inner), reason_line(&inner));
        return Some(vec![(Span::point(line), block)]);
    };
    match &ann.value.value {
        Value::Map(entries) => {
            let mut edits = Vec::new();
            let mut add_exempt = true;
            if let Some(existing) = ann.value.entry(EXEMPT_ANNOTATION) {
                let list = existing.value.as_str()?;
                let names: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
                if names.iter().any(|n| *n == "*" || rules::find(n).is_some_and(|r| r.id == rule)) {
                    return None;
                }
                let merged = names.into_iter().chain([rule]).collect::<Vec<_>>().join(",");
                edits.push((existing.value.span, quoted(&merged)));
                add_exempt = false;
            }
            let add_reason = ann.value.entry(REASON_ANNOTATION).is_none();
            if !add_exempt && !add_reason {
                return Some(edits);
            }
            if is_flow(text, &ann.value) {
                let (at, sep) = flow_append(entries, &ann.value);
                let items: Vec<&str> = [(add_exempt, exempt_flow.as_str()), (add_reason, reason_flow.as_str())]
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, s)| s)
                    .collect();
                edits.push((at, format!("{sep}{}", items.join(", "))));
            } else {
                let (line, indent) = line_of(text, entries.first()?.key_span)?;
                let mut block = String::new();
                if add_exempt {
                    block.push_str(&exempt_line(&indent));
                }
                if add_reason {
                    block.push_str(&reason_line(&indent));
                }
                edits.push((Span::point(line), block));
            }
            Some(edits)
        }
        // `annotations:` with nothing, `~` or `null`.
        Value::Null => {
            let map = format!("{{{exempt_flow}, {reason_flow}}}");
            if ann.value.span.is_empty() {
                let colon = text.get(ann.key_span.end as usize..)?.find(':')? as u32 + ann.key_span.end;
                Some(vec![(Span::point(colon + 1), format!(" {map}"))])
            } else {
                Some(vec![(ann.value.span, map)])
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::convert::Encoding;
    use crate::lsp::snapshot::{Part, SnapFile};
    use apiload_rules::{Edit, Fix, Input, Location, Options, Sources};
    use lsp_types::Position;
    use std::sync::Arc;

    const MANIFEST: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: ns\nspec:\n  template:\n    spec:\n      serviceAccountName: agent\n      containers: [{name: a, image: b}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: agent}\nrules:\n- apiGroups: [\"\"]\n  resources: [\"pods\"]\n  verbs: [\"list\", \"watch\"]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: agent}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agent}\nsubjects: [{kind: ServiceAccount, name: agent, namespace: ns}]\n";

    /// An analysis of MANIFEST whose AL101 finding carries a mechanical fix.
    fn snapshot() -> Snapshot {
        let mut sources = Sources::new();
        let id = sources.add("m.yaml", MANIFEST.as_bytes());
        let mut input = Input::new(Options::default());
        input.add_documents(id, apiload_yaml::load_stream(MANIFEST.as_bytes(), &Default::default()));
        let mut report = input.analyze(&sources);
        let mut found = std::mem::take(&mut report.diagnostics);
        let watch = MANIFEST.find(", \"watch\"").unwrap() as u32;
        let al101 = found.iter_mut().find(|d| d.rule.id == "AL101").expect("AL101");
        al101.fixes.push(Fix {
            title: "Remove `watch` from ClusterRole agent".into(),
            edits: vec![Edit { location: Location::new(id, Span::new(watch, watch + 9)), new_text: String::new() }],
        });
        al101.fixes.push(Fix { title: "Words only".into(), edits: Vec::new() });
        Snapshot {
            encoding: Encoding::Utf16,
            sources,
            parts: Part::whole(report),
            files: vec![SnapFile { uri: "file:///w/m.yaml".into(), text: Some(Arc::from(MANIFEST.as_bytes())) }],
            diagnostics: vec![found],
        }
    }

    #[test]
    fn rule_fixes_and_the_exemption_become_quick_fixes() {
        let snap = snapshot();
        let line = MANIFEST.lines().position(|l| l.contains("serviceAccountName")).unwrap() as u32;
        let at = Range { start: Position { line, character: 26 }, end: Position { line, character: 26 } };
        let actions = code_actions(&snap, 0, at, None, &|_| true);
        let actions: Vec<&CodeAction> = actions
            .iter()
            .filter_map(|a| match a {
                CodeActionOrCommand::CodeAction(a) => Some(a),
                CodeActionOrCommand::Command(_) => None,
            })
            .collect();
        let titles: Vec<&str> = actions.iter().map(|a| a.title.as_str()).collect();
        let fix = actions
            .iter()
            .find(|a| a.title == "Remove `watch` from ClusterRole agent")
            .unwrap_or_else(|| panic!("{titles:?}"));
        assert_eq!(fix.kind, Some(CodeActionKind::QUICKFIX));
        assert_eq!(fix.diagnostics.as_ref().unwrap()[0].code, Some(lsp_types::NumberOrString::String("AL101".into())));
        let edits: Vec<&TextEdit> = fix.edit.as_ref().unwrap().changes.as_ref().unwrap().values().flatten().collect();
        let verbs = MANIFEST.lines().position(|l| l.contains("verbs")).unwrap() as u32;
        assert_eq!(edits.len(), 1);
        assert_eq!(
            (edits[0].range.start, edits[0].range.end),
            (Position { line: verbs, character: 16 }, Position { line: verbs, character: 25 })
        );
        assert_eq!(edits[0].new_text, "");
        // A fix in words only is no code action; the exemption is.
        assert!(!titles.contains(&"Words only"), "{titles:?}");
        assert!(titles.iter().any(|t| t.starts_with("Exempt DaemonSet ns/agent from AL101")), "{titles:?}");
        // Nothing for a position away from findings, for text that changed, or for other kinds.
        let top = Range { start: Position { line: 0, character: 0 }, end: Position { line: 0, character: 1 } };
        assert!(code_actions(&snap, 0, top, None, &|_| true).is_empty());
        assert!(code_actions(&snap, 0, at, None, &|_| false).is_empty());
        assert!(code_actions(&snap, 0, at, Some(&[CodeActionKind::REFACTOR]), &|_| true).is_empty());
        assert!(!code_actions(&snap, 0, at, Some(&[CodeActionKind::QUICKFIX]), &|_| true).is_empty());
        assert!(code_actions(&snap, 7, at, None, &|_| true).is_empty());
    }

    fn apply(text: &str, rule: &str) -> Option<String> {
        let docs = apiload_yaml::load_stream(text.as_bytes(), &Default::default());
        let root = docs.into_iter().next()?.ok()?.root;
        let mut edits = exemption_edits(text, &root, rule)?;
        edits.sort_by_key(|(s, _)| std::cmp::Reverse(s.start));
        let mut out = text.to_string();
        for (span, new) in edits {
            out.replace_range(span.start as usize..span.end as usize, &new);
        }
        // The result must load, and carry the annotations.
        let again = apiload_yaml::load_stream(out.as_bytes(), &Default::default());
        let root = &again[0].as_ref().unwrap_or_else(|e| panic!("{out}\n{e:?}")).root;
        let ann = root.path(&["metadata", "annotations"]).unwrap();
        assert!(ann.get(EXEMPT_ANNOTATION).and_then(Node::as_str).unwrap().contains(rule), "{out}");
        assert!(ann.get(REASON_ANNOTATION).is_some(), "{out}");
        Some(out)
    }

    #[test]
    fn new_annotations_take_the_metadata_indentation() {
        let text = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n    name: a\n    labels:\n      x: y\nspec: {}\n";
        assert_eq!(
            apply(text, "AL101").unwrap(),
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n    annotations:\n        apiload.dev/exempt: \"AL101\"\n        apiload.dev/exempt-reason: \"\"\n    name: a\n    labels:\n      x: y\nspec: {}\n"
        );
        // A List item, indented under `- `.
        let text = "items:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p\n";
        let docs = apiload_yaml::load_stream(text.as_bytes(), &Default::default());
        let item = &docs[0].as_ref().unwrap().root.get("items").unwrap().as_seq().unwrap()[0];
        let edits = exemption_edits(text, item, "AL101").unwrap();
        assert_eq!(
            edits[0].1,
            "    annotations:\n      apiload.dev/exempt: \"AL101\"\n      apiload.dev/exempt-reason: \"\"\n"
        );
    }

    #[test]
    fn existing_annotations_are_extended() {
        let text = "metadata:\n  name: a\n  annotations:\n    team: x\n";
        assert_eq!(
            apply(text, "AL101").unwrap(),
            "metadata:\n  name: a\n  annotations:\n    apiload.dev/exempt: \"AL101\"\n    apiload.dev/exempt-reason: \"\"\n    team: x\n"
        );
        let text = "metadata:\n  name: a\n  annotations:\n    apiload.dev/exempt: AL102\n    apiload.dev/exempt-reason: known\n";
        assert_eq!(
            apply(text, "AL101").unwrap(),
            "metadata:\n  name: a\n  annotations:\n    apiload.dev/exempt: \"AL102,AL101\"\n    apiload.dev/exempt-reason: known\n"
        );
        // Already exempted, by id, name or `*`.
        assert!(
            apply(
                "metadata:\n  name: a\n  annotations:\n    apiload.dev/exempt: \"per-node-cluster-watch\"\n",
                "AL101"
            )
            .is_none()
        );
        assert!(apply("metadata:\n  name: a\n  annotations: {apiload.dev/exempt: \"*\"}\n", "AL101").is_none());
    }

    #[test]
    fn flow_style_json_crlf_and_empty_annotations() {
        assert_eq!(
            apply("metadata: {name: a, annotations: {team: x}}\n", "AL101").unwrap(),
            "metadata: {name: a, annotations: {team: x, \"apiload.dev/exempt\": \"AL101\", \"apiload.dev/exempt-reason\": \"\"}}\n"
        );
        assert_eq!(
            apply("{\"metadata\": {\"name\": \"a\"}}", "AL101").unwrap(),
            "{\"metadata\": {\"name\": \"a\", \"annotations\": {\"apiload.dev/exempt\": \"AL101\", \"apiload.dev/exempt-reason\": \"\"}}}"
        );
        assert_eq!(
            apply("metadata:\r\n  name: a\r\n", "AL101").unwrap(),
            "metadata:\r\n  annotations:\r\n    apiload.dev/exempt: \"AL101\"\r\n    apiload.dev/exempt-reason: \"\"\r\n  name: a\r\n"
        );
        assert_eq!(
            apply("metadata:\n  name: a\n  annotations:\n", "AL101").unwrap(),
            "metadata:\n  name: a\n  annotations: {\"apiload.dev/exempt\": \"AL101\", \"apiload.dev/exempt-reason\": \"\"}\n"
        );
        assert_eq!(
            apply("metadata:\n  name: a\n  annotations: ~\n", "AL101").unwrap(),
            "metadata:\n  name: a\n  annotations: {\"apiload.dev/exempt\": \"AL101\", \"apiload.dev/exempt-reason\": \"\"}\n"
        );
        assert!(apply("metadata:\n  name: a\n  annotations: [x]\n", "AL101").is_none());
    }
}
