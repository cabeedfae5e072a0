//! `apiload lint --fix`: the mechanical fixes rules carry (`Diagnostic::fixes`),
//! applied to the files. The same fix the language server marks as the
//! preferred code action of a finding — its only fix with edits — and the
//! same edits; a finding with several alternative fixes is left to a person.

use apiload_rules::{Diagnostic, Fix, SourceId};
use apiload_yaml::Span;
use std::collections::BTreeMap;

/// The fix applied without asking: the only one of the finding's fixes that has edits.
pub fn preferred(d: &Diagnostic) -> Option<&Fix> {
    let mut with_edits = d.fixes.iter().filter(|f| !f.edits.is_empty());
    let first = with_edits.next()?;
    with_edits.next().is_none().then_some(first)
}

/// The edits of every finding's preferred fix, by source, sorted, without
/// any that overlaps an edit already taken (a later run takes it up);
/// a fix is taken whole or not at all.
pub fn plan(diagnostics: &[Diagnostic]) -> BTreeMap<SourceId, Vec<(Span, String)>> {
    let mut plan: BTreeMap<SourceId, Vec<(Span, String)>> = BTreeMap::new();
    for fix in diagnostics.iter().filter_map(preferred) {
        let overlaps = fix.edits.iter().any(|e| {
            plan.get(&e.location.source).is_some_and(|taken| {
                taken.iter().any(|(s, _)| {
                    let (a, b) = (s, e.location.span);
                    a.start < b.end && b.start < a.end || a.start == b.start
                })
            })
        });
        if overlaps {
            continue;
        }
        for e in &fix.edits {
            plan.entry(e.location.source).or_default().push((e.location.span, e.new_text.clone()));
        }
    }
    for edits in plan.values_mut() {
        edits.sort_by_key(|(s, _)| (s.start, s.end));
        edits.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    }
    plan
}

/// `text` with `edits` (sorted, not overlapping) applied; `None` when an
/// edit does not fall on character boundaries of the text.
pub fn apply(text: &str, edits: &[(Span, String)]) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut at = 0usize;
    for (span, new) in edits {
        let (s, e) = (span.start as usize, span.end as usize);
        out.push_str(text.get(at..s)?);
        text.get(s..e)?;
        out.push_str(new);
        at = e;
    }
    out.push_str(text.get(at..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_in_order() {
        let edits = vec![(Span::new(0, 1), "A".into()), (Span::new(3, 3), "+".into())];
        assert_eq!(apply("abcdef", &edits).unwrap(), "Abc+def");
        assert!(apply("é", &[(Span::new(1, 1), "x".into())]).is_none());
    }
}
