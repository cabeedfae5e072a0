//! Every rule's fixtures: `testdata/rules/<rule-name>/fires*.yaml` must fire
//! the rule (and the exact diagnostics are snapshotted), `passes*.yaml` must not.

mod common;

use apiload_rules::rules::ALL;
use common::*;

#[test]
fn every_rule_has_fixtures_that_fire_and_that_pass() {
    for rule in ALL {
        let dir = testdata().join("rules").join(rule.name);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: no fixture folder {}: {e}", rule.id, dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        // A fixture `x.yaml` is linted with the configuration `x.apiload.yaml` when there is one.
        let is_fixture = |p: &&std::path::PathBuf| !name(p).ends_with(".apiload.yaml");
        let settings_for = |p: &std::path::Path| std::fs::read_to_string(p.with_extension("apiload.yaml")).ok();
        let fires: Vec<_> = entries.iter().filter(|p| name(p).starts_with("fires")).filter(is_fixture).collect();
        let passes: Vec<_> = entries.iter().filter(|p| name(p).starts_with("passes")).filter(is_fixture).collect();
        assert!(!fires.is_empty(), "{}: no fires*.yaml", rule.name);
        assert!(!passes.is_empty(), "{}: no passes*.yaml", rule.name);
        for path in fires {
            let text = std::fs::read_to_string(path).unwrap();
            let settings = settings_for(path);
            let (sources, report) =
                analyze_with_settings(&[(name(path), &text)], Default::default(), settings.as_deref());
            let mine: Vec<_> = report.diagnostics.iter().filter(|d| d.rule.id == rule.id).collect();
            assert!(!mine.is_empty(), "{} does not fire on {}", rule.name, path.display());
            let snapshot = format!("{}-{}", rule.name, name(path).trim_end_matches(".yaml"));
            insta::assert_snapshot!(snapshot, render(&sources, &mine));
        }
        for path in passes {
            let text = std::fs::read_to_string(path).unwrap();
            let settings = settings_for(path);
            let (sources, report) =
                analyze_with_settings(&[(name(path), &text)], Default::default(), settings.as_deref());
            let mine: Vec<_> = report.diagnostics.iter().filter(|d| d.rule.id == rule.id).collect();
            assert!(mine.is_empty(), "{} fires on {}:\n{}", rule.name, path.display(), render(&sources, &mine));
        }
    }
}

#[test]
fn every_rule_documents_an_example_that_fires() {
    for rule in ALL {
        let (_, report) =
            analyze_with_settings(&[("example.yaml", rule.example)], Default::default(), rule.example_config);
        assert!(
            report.diagnostics.iter().any(|d| d.rule.id == rule.id),
            "the documented example of {} does not fire it; it reports {:?}",
            rule.name,
            rule_ids(&report)
        );
        assert!(!rule.detects.is_empty() && !rule.why.is_empty() && !rule.fix.is_empty());
    }
}

#[test]
fn rule_ids_and_names_are_unique_and_well_formed() {
    for (i, a) in ALL.iter().enumerate() {
        assert!(a.id.len() == 5 && a.id.starts_with("AL"), "{}", a.id);
        assert!(a.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{}", a.name);
        for b in &ALL[i + 1..] {
            assert_ne!(a.id, b.id);
            assert_ne!(a.name, b.name);
        }
    }
}

fn name(p: &std::path::Path) -> &str {
    p.file_name().unwrap().to_str().unwrap()
}
