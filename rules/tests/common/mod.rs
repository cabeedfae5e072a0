//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use apiload_rules::{Diagnostic, Input, Options, Report, Sources};
use apiload_yaml::Limits;
use std::path::{Path, PathBuf};

/// `testdata/` at the workspace root.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// Analyses named texts as one input.
pub fn analyze(files: &[(&str, &str)], options: Options) -> (Sources, Report) {
    let mut sources = Sources::new();
    let mut input = Input::new(options);
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
    }
    out
}

pub fn rule_ids(report: &Report) -> Vec<&'static str> {
    report.diagnostics.iter().map(|d| d.rule.id).collect()
}
