//! `--format junit`: JUnit XML for GitLab, Jenkins and other CI test reports.
//! Every finding is a failed test case named after its rule and workload.

use super::Locator;
use apiload_rules::{Diagnostic, Sources};

/// Escapes text for XML, dropping characters XML 1.0 cannot hold.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

pub fn render(sources: &Sources, diagnostics: &[Diagnostic], files: usize) -> String {
    let locator = Locator::new(sources);
    let n = diagnostics.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<testsuites name=\"apiload\" tests=\"{}\" failures=\"{n}\" errors=\"0\">\n", n.max(1)));
    out.push_str(&format!(
        "  <testsuite name=\"apiload\" tests=\"{}\" failures=\"{n}\" errors=\"0\" skipped=\"0\">\n",
        n.max(1)
    ));
    for d in diagnostics {
        let p = locator.position(d.location);
        let subject = d.workload.as_ref().map_or_else(|| p.file.clone(), |w| w.to_string());
        let mut body = format!("{}:{}:{}: {}\n", p.file, p.line, p.column, d.message);
        for r in &d.related {
            let rp = locator.position(r.location);
            body.push_str(&format!("  {}:{}:{}: {}\n", rp.file, rp.line, rp.column, r.message));
        }
        if let Some(h) = &d.help {
            body.push_str(&format!("Fix: {h}\n"));
        }
        out.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
            xml(&format!("{} {}: {subject}", d.rule.id, d.rule.name)),
            xml(&format!("apiload.{}", d.rule.category)),
            xml(&p.file),
            p.line,
            xml(&d.message),
            d.severity,
            xml(&body)
        ));
    }
    if n == 0 {
        out.push_str(&format!(
            "    <testcase name=\"apiload: {files} files linted, no findings\" classname=\"apiload\"/>\n"
        ));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
