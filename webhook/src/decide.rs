//! From findings to an admission answer, by mode.

use crate::admission::Response;
use apiload_rules::review::{NotJudged, Verdict};
use apiload_rules::{Category, Diagnostic, Severity};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Deny error findings; warnings become admission warnings.
    Enforce,
    /// Allow; every finding becomes an admission warning.
    Warn,
    /// Allow; findings go to logs and metrics only.
    Audit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

/// What happened to one finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Denied,
    Warned,
    Recorded,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Denied => "denied",
            Outcome::Warned => "warned",
            Outcome::Recorded => "recorded",
        }
    }
}

/// The answer and, per finding, what was done with it.
pub struct Decision {
    pub response: Response,
    pub outcomes: Vec<(&'static str, Outcome)>,
}

/// The API server truncates longer warnings; a warning says the rule, the
/// workload and the gist (the full text is in the deny message and the logs).
const MAX_WARNING_CHARS: usize = 256;

/// Decides on a judged review.
pub fn decide(uid: &str, subject: &str, mode: Mode, verdict: &Verdict) -> Decision {
    let mut denials: Vec<&Diagnostic> = Vec::new();
    let mut warnings = Vec::new();
    let mut outcomes = Vec::new();
    for d in &verdict.findings {
        // An object the engine cannot read is allowed: the API server
        // validates objects itself, and apiload must not be the outage.
        let severity = if d.rule.category == Category::Input { d.severity.min(Severity::Warning) } else { d.severity };
        let outcome = match (mode, severity) {
            (Mode::Enforce, Severity::Error) => Outcome::Denied,
            (Mode::Enforce | Mode::Warn, Severity::Error | Severity::Warning) => Outcome::Warned,
            _ => Outcome::Recorded,
        };
        match outcome {
            Outcome::Denied => denials.push(d),
            Outcome::Warned => warnings.push(warning(d)),
            Outcome::Recorded => {}
        }
        outcomes.push((d.rule.id, outcome));
    }
    let mut response =
        if denials.is_empty() { Response::allow(uid) } else { Response::deny(uid, deny_message(subject, &denials)) };
    response.warnings = warnings;
    if let Some(reason @ NotJudged::Kind(_)) = &verdict.not_judged {
        response.warnings.push(truncate(&format!("apiload: not analysed: {reason}")));
    }
    if !verdict.findings.is_empty() {
        let ids: Vec<&str> = verdict.findings.iter().map(|d| d.rule.id).collect();
        response.audit_annotations.insert("findings".into(), ids.join(","));
        response.audit_annotations.insert("mode".into(), mode.as_str().into());
    }
    Decision { response, outcomes }
}

/// `AL101 per-node-cluster-watch (DaemonSet monitoring/agent): <message>`, cut to size.
fn warning(d: &Diagnostic) -> String {
    truncate(&format!("apiload {} {}: {}", d.rule.id, d.rule.name, d.message))
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_WARNING_CHARS {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_WARNING_CHARS - 1).collect();
    out.push('…');
    out
}

/// The rule, the finding with its numbers, the chain that leads to it and
/// the fix, for each denied finding.
fn deny_message(subject: &str, denials: &[&Diagnostic]) -> String {
    let mut out = format!("apiload denied {subject}:");
    for d in denials {
        out.push_str(&format!("\n[{} {}] {}", d.rule.id, d.rule.name, d.message));
        let chain: Vec<&str> = d.related.iter().map(|r| r.message.as_str()).collect();
        if !chain.is_empty() {
            out.push_str(&format!(" (via: {})", chain.join("; ")));
        }
        if let Some(help) = d.help.as_deref().or(Some(d.rule.fix)) {
            out.push_str(&format!(" Fix: {}", first_sentence(help)));
        }
    }
    out.push_str("\nSee `apiload explain <rule>`; to accept a finding, add an exemption with a reason to the webhook's configuration.");
    out
}

fn first_sentence(s: &str) -> &str {
    match s.find(". ") {
        Some(i) => &s[..=i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_warnings_are_cut_on_a_character_boundary() {
        let s = "é".repeat(300);
        let t = truncate(&s);
        assert_eq!(t.chars().count(), MAX_WARNING_CHARS);
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn the_fix_is_its_first_sentence() {
        assert_eq!(first_sentence("Do this. Then that."), "Do this.");
        assert_eq!(first_sentence("Only one"), "Only one");
    }
}
