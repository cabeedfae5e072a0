//! `--format sarif`: SARIF 2.1.0 for GitHub code scanning and other viewers.
//! The rules come from their declarations; every finding carries the rest of
//! its chain (binding, role rule, configuration key) as related locations.

use super::{Locator, help_uri};
use apiload_rules::rules::{self, RuleInfo};
use apiload_rules::{Diagnostic, Severity, Sources};
use serde_json::{Value, json};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A path as a relative URI reference (or a `file://` URI for paths outside
/// the working directory), percent-encoded.
pub fn uri(path: &str) -> String {
    let p = std::path::Path::new(path);
    let rel = std::env::current_dir().ok().and_then(|cwd| p.strip_prefix(&cwd).ok().map(|r| r.to_path_buf()));
    let (prefix, text) = match rel {
        Some(r) => ("", r.display().to_string()),
        None if p.is_absolute() => ("file://", path.to_string()),
        None => ("", path.trim_start_matches("./").to_string()),
    };
    let mut out = String::from(prefix);
    for b in text.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rule(r: &RuleInfo) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.detects},
        "help": {
            "text": format!("{}\n\nWhy it matters: {}\n\nFix: {}", r.detects, r.why, r.fix),
            "markdown": format!("**{}**\n\n{}\n\n**Why it matters.** {}\n\n**Fix.** {}", r.summary, r.detects, r.why, r.fix),
        },
        "helpUri": help_uri(r.id, r.name),
        "defaultConfiguration": {"level": level(r.severity)},
        "properties": {"category": r.category.as_str(), "tags": [r.category.as_str(), "kubernetes", "api-server-load"]},
    })
}

fn physical(loc: &super::Position) -> Value {
    json!({
        "artifactLocation": {"uri": uri(&loc.file)},
        "region": {
            "startLine": loc.line,
            "startColumn": loc.column,
            "endLine": loc.end_line,
            "endColumn": loc.end_column.max(if loc.end_line == loc.line { loc.column } else { 1 }),
        }
    })
}

pub fn render(sources: &Sources, diagnostics: &[Diagnostic], fingerprint: impl Fn(&Diagnostic) -> String) -> String {
    let locator = Locator::new(sources);
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let index = rules::all().iter().position(|r| r.id == d.rule.id).unwrap_or(0);
            let related: Vec<Value> = d
                .related
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    json!({"id": i + 1, "physicalLocation": physical(&locator.position(r.location)), "message": {"text": r.message}})
                })
                .collect();
            let mut properties = json!({"category": d.rule.category.as_str()});
            if let Some(w) = &d.workload {
                properties["workload"] = json!(w);
            }
            if let Some(basis) = d.basis {
                properties["basis"] = json!(basis);
                properties["calls"] = json!(d.calls);
            }
            if let Some(h) = &d.help {
                properties["fix"] = json!(h);
            }
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str(&format!("\nFix: {h}"));
            }
            json!({
                "ruleId": d.rule.id,
                "ruleIndex": index,
                "level": level(d.severity),
                "message": {"text": text},
                "locations": [{"physicalLocation": physical(&locator.position(d.location))}],
                "relatedLocations": related,
                "partialFingerprints": {"apiload/v1": fingerprint(d)},
                "properties": properties,
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "apiload",
                "informationUri": "https://github.com/apiload/apiload",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules::all().iter().map(|r| rule(r)).collect::<Vec<_>>(),
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_default();
    s.push('\n');
    s
}
