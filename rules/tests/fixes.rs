//! Mechanical fixes (offered by the language server as code actions) do
//! what they say: applied to the fixture, the finding they fix is gone.

mod common;

use apiload_rules::Diagnostic;
use common::*;

fn apply(text: &str, d: &Diagnostic) -> String {
    let mut edits: Vec<_> = d.fixes.iter().flat_map(|f| &f.edits).collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.location.span.start));
    let mut out = text.to_string();
    for e in edits {
        assert_eq!(e.location.source, d.location.source, "{}: an edit in another file", d.rule.id);
        out.replace_range(e.location.span.start as usize..e.location.span.end as usize, &e.new_text);
    }
    out
}

#[test]
fn every_fix_removes_the_finding_it_fixes() {
    let mut applied = 0;
    for path in fixture_files(true) {
        let text = std::fs::read_to_string(&path).unwrap();
        let settings = std::fs::read_to_string(path.with_extension("apiload.yaml")).ok();
        let (_, report) = analyze_with_settings(&[("f.yaml", &text)], settings.as_deref());
        for d in report.diagnostics.iter().filter(|d| !d.fixes.is_empty()) {
            for f in &d.fixes {
                assert!(!f.title.is_empty() && !f.edits.is_empty(), "{}: empty fix", d.rule.id);
            }
            let fixed = apply(&text, d);
            let (_, after) = analyze_with_settings(&[("f.yaml", &fixed)], settings.as_deref());
            let left: Vec<_> =
                after.diagnostics.iter().filter(|a| a.rule.id == d.rule.id && a.workload == d.workload).collect();
            assert!(left.is_empty(), "{}: {} still fires after its fix:\n{fixed}", path.display(), d.rule.id);
            assert!(
                after.diagnostics.iter().all(|a| a.rule.category != apiload_rules::Category::Input),
                "{}: the fix breaks the manifest",
                path.display()
            );
            applied += 1;
        }
    }
    assert!(applied >= 2, "only {applied} fixes applied");
}
