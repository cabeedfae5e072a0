//! Every rule's fixtures: `testdata/rules/<rule-name>/fires*.yaml` must fire
//! the rule (and the exact diagnostics are snapshotted), `passes*.yaml` must
//! not; one test per rule, named after it. And the rules' declarations:
//! documented examples that fire, ids and names well formed, each analysis
//! rule registered once.

mod common;

use apiload_rules::rules;
use common::*;

// One test per folder of testdata/rules/, named after it (rules/build.rs).
include!(concat!(env!("OUT_DIR"), "/rules_fixture_tests.rs"));

/// A rule's fixtures: `fires*.yaml` must fire it (the exact diagnostics are
/// snapshotted), `passes*.yaml` must not. A fixture `x.yaml` is linted with
/// the configuration `x.apiload.yaml` when there is one.
fn rule_fixtures(folder: &str) {
    let rule = rules::find(folder).unwrap_or_else(|| panic!("testdata/rules/{folder}: no rule has this name"));
    let dir = testdata().join("rules").join(folder);
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    let is_fixture = |p: &&std::path::PathBuf| !name(p).ends_with(".apiload.yaml");
    let settings_for = |p: &std::path::Path| std::fs::read_to_string(p.with_extension("apiload.yaml")).ok();
    let fires: Vec<_> = entries.iter().filter(|p| name(p).starts_with("fires")).filter(is_fixture).collect();
    let passes: Vec<_> = entries.iter().filter(|p| name(p).starts_with("passes")).filter(is_fixture).collect();
    assert!(!fires.is_empty(), "{}: no fires*.yaml", rule.name);
    assert!(!passes.is_empty(), "{}: no passes*.yaml", rule.name);
    for path in fires {
        let text = std::fs::read_to_string(path).unwrap();
        let settings = settings_for(path);
        let (sources, report) = analyze_with_settings(&[(name(path), &text)], settings.as_deref());
        let mine: Vec<_> = report.diagnostics.iter().filter(|d| d.rule.id == rule.id).collect();
        assert!(!mine.is_empty(), "{} does not fire on {}", rule.name, path.display());
        let snapshot = format!("{}-{}", rule.name, name(path).trim_end_matches(".yaml"));
        insta::assert_snapshot!(snapshot, render(&sources, &mine));
    }
    for path in passes {
        let text = std::fs::read_to_string(path).unwrap();
        let settings = settings_for(path);
        let (sources, report) = analyze_with_settings(&[(name(path), &text)], settings.as_deref());
        let mine: Vec<_> = report.diagnostics.iter().filter(|d| d.rule.id == rule.id).collect();
        assert!(mine.is_empty(), "{} fires on {}:\n{}", rule.name, path.display(), render(&sources, &mine));
    }
}

#[test]
fn every_rule_has_a_fixture_folder() {
    for rule in rules::all() {
        let dir = testdata().join("rules").join(rule.name);
        assert!(dir.is_dir(), "{}: no fixture folder {}", rule.id, dir.display());
    }
}

#[test]
fn every_rule_documents_an_example_that_fires() {
    for rule in rules::all() {
        let (_, report) = analyze_with_settings(&[("example.yaml", rule.example)], rule.example_config);
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
    let all = rules::all();
    for (i, a) in all.iter().enumerate() {
        assert!(a.id.len() == 5 && a.id.starts_with("AL"), "{}", a.id);
        assert!(a.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{}", a.name);
        for b in &all[i + 1..] {
            assert_ne!(a.id, b.id);
            assert_ne!(a.name, b.name);
        }
    }
}

fn name(p: &std::path::Path) -> &str {
    p.file_name().unwrap().to_str().unwrap()
}

#[test]
fn the_registry_runs_exactly_the_analysis_rules() {
    let checked: Vec<&str> = rules::CHECKS.iter().map(|r| r.info.id).collect();
    for rule in rules::all() {
        let registered = checked.contains(&rule.id);
        assert_eq!(
            registered,
            rule.stage == rules::Stage::Analysis,
            "{}: raised at {:?} but {} rules::CHECKS",
            rule.id,
            rule.stage,
            if registered { "in" } else { "not in" }
        );
    }
    let mut sorted = checked.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, checked, "rules::CHECKS lists each rule once, in id order");
}
