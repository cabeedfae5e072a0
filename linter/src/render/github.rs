//! `--format github`: GitHub Actions workflow commands, one per finding, so
//! that findings show as annotations on the pull request's files
//! (https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands).

use super::Report;
use apiload_rules::Severity;

/// Escapes a command's message (`%`, CR, LF).
fn data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a command property (also `:` and `,`).
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(report: &Report) -> String {
    let locator = report.locator;
    let mut out = String::new();
    for w in report.warnings {
        out.push_str(&format!("::warning title=apiload::{}\n", data(w)));
    }
    for d in report.diagnostics {
        let p = locator.position(d.location);
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut message = d.message.clone();
        for r in &d.related {
            let rp = locator.position(r.location);
            message.push_str(&format!("\n  {}:{}:{}: {}", rp.file, rp.line, rp.column, r.message));
        }
        if let Some(h) = &d.help {
            message.push_str(&format!("\nFix: {h}"));
        }
        out.push_str(&format!(
            "::{command} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
            property(&p.file),
            p.line,
            p.column,
            p.end_line,
            p.end_column,
            property(&format!("{} {}", d.rule.id, d.rule.name)),
            data(&message)
        ));
    }
    out
}
