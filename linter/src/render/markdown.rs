//! `--format markdown`: a report for a pull-request comment or a job summary
//! (`--format markdown=$GITHUB_STEP_SUMMARY`): the summary line, one table
//! row per finding, and the chain and fix of each finding folded under it.
//! Kept under GitHub's 65,536-character limit for comments: findings past
//! the limit are counted, not shown.

use super::{Report, help_uri};

/// Where the findings stop being listed, leaving room for the closing lines.
const LIMIT: usize = 60_000;

/// Text for a table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Text outside tables: HTML-significant characters escaped.
fn text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn render(report: &Report) -> String {
    let locator = report.locator;
    let mut out = format!("### apiload: {}\n\n", report.summary());
    for w in report.warnings {
        out.push_str(&format!("> **Warning:** {}\n\n", text(w)));
    }
    if report.diagnostics.is_empty() {
        out.push_str("No findings.\n");
        return out;
    }
    let mut table = String::from("| severity | rule | workload | location | finding |\n|---|---|---|---|---|\n");
    let mut details = String::new();
    let mut shown = 0;
    for d in report.diagnostics {
        let p = locator.position(d.location);
        let severity = if report.fails(d) { format!("**{}**", d.severity) } else { d.severity.to_string() };
        let workload = d.workload.as_ref().map_or_else(String::new, |w| cell(&w.to_string()));
        let row = format!(
            "| {severity} | [{}]({}) `{}` | {workload} | `{}:{}` | {} |\n",
            d.rule.id,
            help_uri(d.rule.id, d.rule.name),
            d.rule.name,
            cell(&p.file),
            p.line,
            cell(&text(&d.message))
        );
        let mut detail = format!(
            "<details><summary>{} {}: {}</summary>\n\n{}\n\n",
            d.rule.id,
            text(d.rule.name),
            text(&d.workload.as_ref().map_or_else(|| p.file.clone(), |w| w.to_string())),
            text(&d.message)
        );
        for r in &d.related {
            let rp = locator.position(r.location);
            detail.push_str(&format!("- `{}:{}`: {}\n", rp.file, rp.line, text(&r.message)));
        }
        if let Some(h) = &d.help {
            detail.push_str(&format!("\n**Fix:** {}\n", text(h)));
        }
        detail.push_str("\n</details>\n");
        if out.len() + table.len() + row.len() + details.len() + detail.len() > LIMIT {
            break;
        }
        table.push_str(&row);
        details.push_str(&detail);
        shown += 1;
    }
    out.push_str(&table);
    let left = report.diagnostics.len() - shown;
    if left > 0 {
        out.push_str(&format!(
            "\n{} more not shown here (the limit of a comment); the JSON or SARIF report has them all.\n",
            super::plural(left, "finding", "findings")
        ));
    }
    out.push('\n');
    out.push_str(&details);
    out
}
