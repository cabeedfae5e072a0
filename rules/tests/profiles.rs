//! Every built-in agent profile's fixtures: `testdata/profiles/<id>/fires*.yaml`
//! must give the agent's workload a fan-out or unbounded-client finding that
//! the profile decided (and the findings are snapshotted), `passes*.yaml` must
//! give none.

mod common;

use apiload_rules::profile::ProfileSet;
use apiload_rules::{Category, Diagnostic, ObjectRef, Report, Sources};
use common::*;
use std::path::{Path, PathBuf};

/// The categories a fixture fires or passes on.
const LOAD: [Category; 4] = [
    Category::FanoutClusterWatch,
    Category::FanoutNodeWatch,
    Category::FanoutCapabilityOnly,
    Category::UnboundedClient,
];

/// The AL004 agent-config-unreadable finding: a fixture whose configuration
/// is not read tests the grants, not the profile.
const UNREADABLE: &str = "AL004";

fn is_load(d: &Diagnostic) -> bool {
    LOAD.contains(&d.rule.category)
}

/// The workloads of the report whose containers `profile` recognised and
/// whose configuration it read (its calls are not inferred from the grants).
fn profiled_workloads(report: &Report, profile: &str) -> Vec<ObjectRef> {
    report
        .analyses
        .iter()
        .filter(|a| a.behaviour.agents.iter().any(|r| r.profile.id == profile && !r.fallback))
        .map(|a| {
            let w = &report.inventory.workloads[a.workload];
            report.inventory.object(w.object).reference()
        })
        .collect()
}

fn workloads(report: &Report) -> Vec<ObjectRef> {
    report.inventory.workloads.iter().map(|w| report.inventory.object(w.object).reference()).collect()
}

fn fixtures(id: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let dir = testdata().join("profiles").join(id);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("profile {id}: no fixture folder {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    entries.sort();
    let fires = entries.iter().filter(|p| name(p).starts_with("fires")).cloned().collect();
    let passes = entries.iter().filter(|p| name(p).starts_with("passes")).cloned().collect();
    (fires, passes)
}

fn run(path: &Path) -> (Sources, Report) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.starts_with('#'), "{}: start with a comment saying what the fixture shows", path.display());
    analyze(&[(name(path), &text)], Default::default())
}

// One test per folder of testdata/profiles/, named after it (rules/build.rs).
include!(concat!(env!("OUT_DIR"), "/profiles_fixture_tests.rs"));

/// A profile's fixtures: `fires*.yaml` must give a workload the profile
/// decided a load finding (snapshotted), `passes*.yaml` none.
fn profile_fixtures(id: &str) {
    assert!(ProfileSet::builtin().get(id).is_some(), "testdata/profiles/{id}: no built-in profile has this id");
    let (fires, passes) = fixtures(id);
    assert!(!fires.is_empty(), "profile {id}: no fires*.yaml");
    assert!(!passes.is_empty(), "profile {id}: no passes*.yaml");
    for path in &fires {
        let (sources, report) = run(path);
        let all: Vec<&Diagnostic> = report.diagnostics.iter().collect();
        let own = workloads(&report);
        let profiled = profiled_workloads(&report, id);
        assert!(
            !profiled.is_empty(),
            "profile {id} does not read the agent of {}:\n{}",
            path.display(),
            render(&sources, &all)
        );
        let load: Vec<&Diagnostic> = all
            .iter()
            .copied()
            .filter(|d| is_load(d) && d.workload.as_ref().is_some_and(|w| own.contains(w)))
            .collect();
        assert!(!load.is_empty(), "profile {id}: nothing fires on {}:\n{}", path.display(), render(&sources, &all));
        assert!(
            load.iter().any(|d| d.workload.as_ref().is_some_and(|w| profiled.contains(w))),
            "profile {id}: the findings of {} are not about a workload the profile decided:\n{}",
            path.display(),
            render(&sources, &load)
        );
        let shown: Vec<&Diagnostic> = all.iter().copied().filter(|d| is_load(d) || d.rule.id == UNREADABLE).collect();
        let stem = name(path).trim_end_matches(".yaml");
        insta::assert_snapshot!(format!("profile-{id}-{stem}"), render(&sources, &shown));
    }
    for path in &passes {
        let (sources, report) = run(path);
        let all: Vec<&Diagnostic> = report.diagnostics.iter().collect();
        assert!(
            !profiled_workloads(&report, id).is_empty(),
            "profile {id} does not read the agent of {}:\n{}",
            path.display(),
            render(&sources, &all)
        );
        let bad: Vec<&Diagnostic> = all.iter().copied().filter(|d| is_load(d) || d.rule.id == UNREADABLE).collect();
        assert!(
            bad.is_empty(),
            "profile {id}: {} should pass but reports:\n{}",
            path.display(),
            render(&sources, &bad)
        );
    }
}

#[test]
fn every_profile_has_a_fixture_folder() {
    for profile in ProfileSet::builtin().iter() {
        let dir = testdata().join("profiles").join(profile.id.as_str());
        assert!(dir.is_dir(), "profile {}: no fixture folder {}", profile.id, dir.display());
    }
}

fn name(p: &Path) -> &str {
    p.file_name().unwrap().to_str().unwrap()
}
