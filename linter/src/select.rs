//! `--select` and `--ignore`: which findings a run reports, by rule id
//! (`AL101`), id prefix (`AL1` for AL100–AL199), rule name
//! (`per-node-cluster-watch`) or category (`fanout-cluster-watch`), as
//! ruff's `--select`/`--ignore` take codes and prefixes.

use apiload_rules::rules::{self, RuleInfo};
use apiload_rules::{Category, Diagnostic};

#[derive(Clone, Debug, PartialEq)]
enum Selector {
    Rule(&'static str),
    Prefix(String),
    Category(Category),
}

impl Selector {
    fn parse(s: &str) -> Result<Selector, String> {
        let s = s.trim();
        if let Some(r) = apiload_rules::rules::find(s) {
            return Ok(Selector::Rule(r.id));
        }
        if let Some(c) = Category::ALL.into_iter().find(|c| c.as_str() == s) {
            return Ok(Selector::Category(c));
        }
        let upper = s.to_ascii_uppercase();
        if upper.starts_with("AL")
            && upper[2..].bytes().all(|b| b.is_ascii_digit())
            && rules::all().iter().any(|r| r.id.starts_with(&upper))
        {
            return Ok(Selector::Prefix(upper));
        }
        Err(format!("`{s}` is no rule id, id prefix, rule name or category (`apiload rules` lists them)"))
    }

    fn matches(&self, r: &RuleInfo) -> bool {
        match self {
            Selector::Rule(id) => r.id == *id,
            Selector::Prefix(p) => r.id.starts_with(p.as_str()),
            Selector::Category(c) => r.category == *c,
        }
    }
}

/// The rules a run reports.
#[derive(Debug, Default)]
pub struct Selection {
    select: Vec<Selector>,
    ignore: Vec<Selector>,
}

impl Selection {
    /// From the flags' values, each a comma-separated list; an unknown name is an error.
    pub fn new(select: &[String], ignore: &[String]) -> Result<Selection, Vec<String>> {
        let mut errors = Vec::new();
        let mut parse = |values: &[String]| -> Vec<Selector> {
            values
                .iter()
                .flat_map(|v| v.split(','))
                .filter(|s| !s.trim().is_empty())
                .filter_map(|s| Selector::parse(s).map_err(|e| errors.push(e)).ok())
                .collect()
        };
        let selection = Selection { select: parse(select), ignore: parse(ignore) };
        if errors.is_empty() { Ok(selection) } else { Err(errors) }
    }

    /// Selected when some `--select` matches (or there is none) and no `--ignore` does.
    pub fn reports(&self, r: &RuleInfo) -> bool {
        (self.select.is_empty() || self.select.iter().any(|s| s.matches(r)))
            && !self.ignore.iter().any(|s| s.matches(r))
    }

    /// Drops the findings of rules not selected; returns how many.
    pub fn apply(&self, diagnostics: &mut Vec<Diagnostic>) -> usize {
        let before = diagnostics.len();
        diagnostics.retain(|d| self.reports(d.rule));
        before - diagnostics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str) -> &'static RuleInfo {
        apiload_rules::rules::find(id).unwrap()
    }

    #[test]
    fn ids_prefixes_names_and_categories() {
        let s = Selection::new(&["AL1".into()], &["per-node-node-watch".into()]).unwrap();
        assert!(s.reports(rule("AL101")));
        assert!(!s.reports(rule("per-node-node-watch")));
        assert!(!s.reports(rule("AL001")));
        let s = Selection::new(&["input,rbac-hygiene".into()], &[]).unwrap();
        assert!(s.reports(rule("AL001")) && !s.reports(rule("AL101")));
        assert!(Selection::new(&[], &[]).unwrap().reports(rule("AL101")));
        let e = Selection::new(&["AL9".into(), "nope".into()], &[]).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
