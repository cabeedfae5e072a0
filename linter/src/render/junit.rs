//! `--format junit`: JUnit XML for GitLab, Jenkins and other CI test reports,
//! valid against Jenkins' JUnit schema (testdata/schemas/jenkins-junit.xsd).
//! One test suite per file; one test case per finding, which fails only when
//! the finding reaches `--fail-on` (so that a job that passes shows no failed
//! test), the others passing with the finding in their `system-out`; a file
//! without findings has one passing case.

use super::Report;
use std::collections::BTreeMap;

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

struct Case {
    name: String,
    /// `(severity, message)` when the case fails.
    failure: Option<(String, String)>,
    body: String,
}

pub fn render(report: &Report) -> String {
    let locator = report.locator;
    let mut suites: BTreeMap<String, Vec<Case>> = BTreeMap::new();
    for d in report.diagnostics {
        let p = locator.position(d.location);
        let subject = d.workload.as_ref().map_or_else(|| p.file.clone(), |w| w.to_string());
        let mut body = format!("{}:{}:{}: {}: {}\n", p.file, p.line, p.column, d.severity, d.message);
        for r in &d.related {
            let rp = locator.position(r.location);
            body.push_str(&format!("  {}:{}:{}: {}\n", rp.file, rp.line, rp.column, r.message));
        }
        if let Some(h) = &d.help {
            body.push_str(&format!("Fix: {h}\n"));
        }
        suites.entry(p.file.clone()).or_default().push(Case {
            name: format!("{} {}: {subject}", d.rule.id, d.rule.name),
            failure: report.fails(d).then(|| (d.severity.to_string(), d.message.clone())),
            body,
        });
    }
    for id in report.inputs {
        if report.diagnostics.iter().any(|d| d.location.source == *id) {
            continue;
        }
        let name = locator.display(&report.sources.get(*id).name);
        suites
            .entry(name)
            .or_insert_with(|| vec![Case { name: "no findings".into(), failure: None, body: String::new() }]);
    }
    let tests: usize = suites.values().map(Vec::len).sum();
    let failures: usize = suites.values().flatten().filter(|c| c.failure.is_some()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<testsuites name=\"apiload\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n"));
    for (file, cases) in &suites {
        let f = cases.iter().filter(|c| c.failure.is_some()).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" skipped=\"0\">\n",
            xml(file),
            cases.len()
        ));
        for c in cases {
            out.push_str(&format!("    <testcase name=\"{}\" classname=\"{}\"", xml(&c.name), xml(file)));
            match (&c.failure, c.body.is_empty()) {
                (None, true) => out.push_str("/>\n"),
                (None, false) => {
                    out.push_str(&format!(">\n      <system-out>{}</system-out>\n    </testcase>\n", xml(&c.body)))
                }
                (Some((severity, message)), _) => out.push_str(&format!(
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                    xml(message),
                    xml(severity),
                    xml(&c.body)
                )),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    if suites.is_empty() {
        out.push_str("  <testsuite name=\"apiload\" tests=\"0\" failures=\"0\" errors=\"0\" skipped=\"0\"/>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
