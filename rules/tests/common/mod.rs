//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use apiload_rules::settings::Settings;
use apiload_rules::setup::{self, Flags, Setup};
use apiload_rules::{Diagnostic, Input, Options, Report, Sources};
use apiload_yaml::Limits;
use apiload_yaml::files::TextFile;
use std::path::{Path, PathBuf};

/// `testdata/` at the workspace root.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// Every fixture manifest of `testdata/rules/*/` and `testdata/profiles/*/`,
/// sorted; with `configured: false`, only those without a configuration of
/// their own (`x.apiload.yaml`).
pub fn fixture_files(configured: bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for group in ["rules", "profiles"] {
        for dir in std::fs::read_dir(testdata().join(group)).unwrap() {
            for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let p = f.unwrap().path();
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                if name.ends_with(".yaml")
                    && !name.ends_with(".apiload.yaml")
                    && (configured || !p.with_extension("apiload.yaml").exists())
                {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    files
}

/// The date tests take as today, so that expiry does not depend on the clock.
pub const TODAY: &str = "2026-01-01";

/// Analyses named texts as one input, with `options`.
pub fn analyze(files: &[(&str, &str)], options: Options) -> (Sources, Report) {
    run(Sources::new(), files, Setup::build(&Settings::default(), &[], None, &flags()).0, options)
}

/// Analyses named texts with a configuration file (`.apiload.yaml` text),
/// set up as every front end sets up its analyses (`apiload_rules::setup`).
pub fn analyze_with_settings(files: &[(&str, &str)], settings: Option<&str>) -> (Sources, Report) {
    let mut sources = Sources::new();
    let parsed = match settings {
        Some(text) => {
            let id = sources.add(".apiload.yaml", text.as_bytes());
            let file = TextFile { name: ".apiload.yaml".into(), text: text.into() };
            setup::parse_settings(id, &file).unwrap_or_else(|e| panic!("settings: {e}"))
        }
        None => Settings::default(),
    };
    let (setup, errors) = Setup::build(&parsed, &[], None, &flags());
    assert!(errors.is_empty(), "{errors:?}");
    let options = setup.options.clone();
    run(sources, files, setup, options)
}

/// Tests judge expiry on a fixed date and report unused exemptions.
fn flags() -> Flags {
    Flags { report_unused_exemptions: true, today: TODAY.into(), ..Flags::default() }
}

fn run(mut sources: Sources, files: &[(&str, &str)], setup: Setup, options: Options) -> (Sources, Report) {
    let mut input = Input::with_profiles(options, setup.profiles);
    input.set_exemptions(setup.exemptions);
    for (name, text) in files {
        let id = sources.add(*name, text.as_bytes());
        input.add_documents(id, apiload_yaml::load_stream(text.as_bytes(), &Limits::default()));
    }
    let report = input.analyze(&sources);
    (sources, report)
}

pub fn analyze_one(text: &str) -> (Sources, Report) {
    analyze(&[("manifest.yaml", text)], Options::default())
}

/// A stable plain-text rendering of diagnostics, for snapshots.
pub fn render(sources: &Sources, diagnostics: &[&Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let lc = sources.line_col(d.location);
        let name = &sources.get(d.location.source).name;
        out.push_str(&format!(
            "{} {} [{}] {}:{}:{}\n  {}\n",
            d.rule.id, d.severity, d.rule.category, name, lc.line, lc.column, d.message
        ));
        if let Some(w) = &d.workload {
            out.push_str(&format!("  workload: {w}\n"));
        }
        for r in &d.related {
            let lc = sources.line_col(r.location);
            out.push_str(&format!(
                "  related {}:{}:{}: {}\n",
                sources.get(r.location.source).name,
                lc.line,
                lc.column,
                r.message
            ));
        }
        for f in &d.fixes {
            out.push_str(&format!("  fix: {}\n", f.title));
            for e in &f.edits {
                let lc = sources.line_col(e.location);
                out.push_str(&format!(
                    "    {}:{}:{} -> {}\n",
                    sources.get(e.location.source).name,
                    lc.line,
                    lc.column,
                    e.new_text
                ));
            }
        }
    }
    out
}

pub fn rule_ids(report: &Report) -> Vec<&'static str> {
    report.diagnostics.iter().map(|d| d.rule.id).collect()
}

/// `../shared/<rel>` beside the checkout (the project's shared folder: the
/// labelled corpus and its tools), or `None` after one line on stderr saying
/// why the test skips it. `.ci/run` sets `APILOAD_REQUIRE_SHARED=1`, which
/// makes its absence a failure, so that CI never skips these tests.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(rel);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("APILOAD_REQUIRE_SHARED").is_none_or(|v| v != "1"),
        "{} is absent and APILOAD_REQUIRE_SHARED=1 requires it",
        path.display()
    );
    // Straight to the file descriptor: libtest captures only the print macros,
    // and a skip should be seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {} is absent (the project's shared folder beside the checkout; CI has it)",
        path.display()
    );
    None
}
