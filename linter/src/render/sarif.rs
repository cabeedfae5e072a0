//! `--format sarif`: SARIF 2.1.0 for GitHub code scanning and other viewers.
//! The rules come from their declarations; every finding carries the rest of
//! its chain (binding, role rule, configuration key) as related locations,
//! linked from its message so that GitHub shows them.
//!
//! For code scanning (https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning):
//! URIs are relative to `%SRCROOT%` (the repository root, `originalUriBaseIds`),
//! rules carry `security-severity` (with the `security` tag, which GitHub
//! needs to read it) and `precision`, and the run has `automationDetails`.

use super::{Locator, Report, help_uri};
use apiload_rules::rules::{self, RuleInfo};
use apiload_rules::{Category, Diagnostic, Severity};
use serde_json::{Value, json};

/// The base id of every relative URI: the repository root.
const SRCROOT: &str = "%SRCROOT%";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// GitHub's security severity, a CVSS-like score: 7.0–8.9 is "high",
/// 4.0–6.9 "medium", 0.1–3.9 "low". An API-server outage takes the whole
/// control plane down, so errors are high.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "8.0",
        Severity::Warning => "5.0",
        Severity::Info => "2.0",
    }
}

/// How often a rule's findings are right (GitHub sorts by it): the RBAC and
/// input checks follow the API server's own semantics; fan-out findings rest
/// on profiles or on the inference that granted collections are used.
fn precision(c: Category) -> &'static str {
    match c {
        Category::Input | Category::Exemption | Category::UnresolvedReference => "very-high",
        Category::RbacHygiene | Category::KubeletAuth | Category::ApfCoverage | Category::ListSemantics => "high",
        Category::FanoutClusterWatch
        | Category::FanoutNodeWatch
        | Category::UnboundedClient
        | Category::LeaderElection
        | Category::RolloutHerd
        | Category::AgentConfig => "high",
        Category::FanoutCapabilityOnly => "medium",
    }
}

fn percent_encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An artifact location: a path relative to the root as a relative URI
/// reference on `%SRCROOT%` (`:` encoded too, so that no segment reads as a
/// scheme), anything else as an absolute `file://` URI.
pub fn artifact(file: &str) -> Value {
    let path = std::path::Path::new(file);
    if path.is_absolute() {
        json!({"uri": format!("file://{}", percent_encode(&file.replace('\\', "/"), b"-._~/!$&'()*+,;=@"))})
    } else {
        json!({"uri": percent_encode(file, b"-._~/!$&'()*+,;=@"), "uriBaseId": SRCROOT})
    }
}

/// `[` and `]` are link syntax in SARIF messages; `\` escapes them.
fn escape_message(s: &str) -> String {
    s.replace('\\', "\\\\").replace('[', "\\[").replace(']', "\\]")
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
        "properties": {
            "category": r.category.as_str(),
            "tags": ["security", r.category.as_str(), "kubernetes", "api-server-load"],
            "security-severity": security_severity(r.severity),
            "precision": precision(r.category),
        },
    })
}

fn physical(loc: &super::Position) -> Value {
    json!({
        "artifactLocation": artifact(&loc.file),
        "region": {
            "startLine": loc.line,
            "startColumn": loc.column,
            "endLine": loc.end_line,
            "endColumn": loc.end_column.max(if loc.end_line == loc.line { loc.column } else { 1 }),
        }
    })
}

fn result(locator: &Locator, d: &Diagnostic, fingerprint: String) -> Value {
    let index = rules::all().iter().position(|r| r.id == d.rule.id).unwrap_or(0);
    let related: Vec<Value> = d
        .related
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"id": i + 1, "physicalLocation": physical(&locator.position(r.location)), "message": {"text": escape_message(&r.message)}}))
        .collect();
    let mut properties =
        json!({"category": d.rule.category.as_str(), "security-severity": security_severity(d.severity)});
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
    // The chain, each step linked to its related location (`[text](id)`).
    let mut text = escape_message(&d.message);
    for (i, r) in d.related.iter().enumerate() {
        text.push_str(&format!("\n- [{}]({})", escape_message(&r.message), i + 1));
    }
    if let Some(h) = &d.help {
        text.push_str(&format!("\nFix: {}", escape_message(h)));
    }
    json!({
        "ruleId": d.rule.id,
        "ruleIndex": index,
        "level": level(d.severity),
        "message": {"text": text},
        "locations": [{"physicalLocation": physical(&locator.position(d.location))}],
        "relatedLocations": related,
        "partialFingerprints": {"apiload/v1": fingerprint},
        "properties": properties,
    })
}

pub fn render(report: &Report) -> String {
    let root = report.locator.root();
    let mut root_uri =
        format!("file://{}", percent_encode(&root.display().to_string().replace('\\', "/"), b"-._~/!$&'()*+,;=@"));
    if !root_uri.ends_with('/') {
        root_uri.push('/');
    }
    let results: Vec<Value> =
        report.diagnostics.iter().map(|d| result(report.locator, d, (report.fingerprint)(d))).collect();
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
            "automationDetails": {"id": "apiload/"},
            "originalUriBaseIds": {SRCROOT: {"uri": root_uri, "description": {"text": "The repository root"}}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_uris_encode_what_a_uri_reference_cannot_hold() {
        assert_eq!(artifact("deploy/a b:c.yaml"), json!({"uri": "deploy/a%20b%3Ac.yaml", "uriBaseId": "%SRCROOT%"}));
        assert_eq!(artifact("/abs/x.yaml"), json!({"uri": "file:///abs/x.yaml"}));
        assert_eq!(escape_message("a [b] \\"), "a \\[b\\] \\\\");
    }
}
