//! Baselines: adopt apiload in a repository that already has findings, and
//! fail only on new ones. A baseline is the list of the findings' fingerprints
//! (rule, subject, and message with its numbers removed — so that findings
//! survive line shifts and cluster-size changes).

use apiload_rules::{Diagnostic, Sources};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    findings: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    fingerprint: String,
    rule: String,
    subject: String,
    message: String,
}

/// What a finding is about: its workload, or its file.
fn subject(sources: &Sources, d: &Diagnostic) -> String {
    match &d.workload {
        Some(w) => w.to_string(),
        None => sources.get(d.location.source).name.clone(),
    }
}

/// A stable identity of a finding (FNV-1a of rule, subject and message
/// without its numbers: digits, and the byte units the numbers carry, which
/// change with them — `900 GB` becomes `1.4 TB` in a bigger cluster).
pub fn fingerprint(sources: &Sources, d: &Diagnostic) -> String {
    let number = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',');
    let text: String = d
        .message
        .split(' ')
        .map(|word| word.trim_end_matches([',', ';', ':', ')']))
        .filter(|word| !number(word) && !matches!(*word, "B" | "KB" | "MB" | "GB" | "TB" | "PB" | "EB"))
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in d.rule.id.bytes().chain([0]).chain(subject(sources, d).bytes()).chain([0]).chain(text.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub fn write(path: &str, sources: &Sources, diagnostics: &[Diagnostic]) -> Result<(), String> {
    let file = File {
        version: 1,
        findings: diagnostics
            .iter()
            .map(|d| Entry {
                fingerprint: fingerprint(sources, d),
                rule: d.rule.id.to_string(),
                subject: subject(sources, d),
                message: d.message.clone(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))
}

/// The fingerprints of a baseline file.
pub fn read(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let file: File =
        serde_json::from_str(&text).map_err(|e| format!("{path}:{}:{}: not a baseline: {e}", e.line(), e.column()))?;
    Ok(file.findings.into_iter().map(|e| e.fingerprint).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiload_rules::Location;
    use apiload_yaml::Span;

    fn finding(sources: &mut Sources, message: &str) -> String {
        let id = sources.add("m.yaml", b"x: 1\n");
        let rule = apiload_rules::rules::find("AL101").unwrap();
        fingerprint(sources, &Diagnostic::new(rule, Location::new(id, Span::new(0, 1)), message))
    }

    #[test]
    fn numbers_and_their_units_do_not_change_a_fingerprint() {
        let mut s = Sources::new();
        let at_5000 = finding(&mut s, "at 5,000 nodes a rollout LISTs about 2.3 TB at once; 1,389 events/s");
        let at_3000 = finding(&mut s, "at 3,000 nodes a rollout LISTs about 837 GB at once; 500 events/s");
        assert_eq!(at_5000, at_3000);
        assert_ne!(at_5000, finding(&mut s, "at 5,000 nodes a rollout WATCHes about 2.3 TB at once; 1,389 events/s"));
    }
}
