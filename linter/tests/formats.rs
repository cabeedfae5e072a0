//! SARIF, GitHub workflow commands, JUnit and Markdown: valid against their
//! published schemas (testdata/schemas/), complete, one entry per finding,
//! and what GitHub code scanning and CI test reports read from them.

mod common;

use common::*;

use serde_json::Value;
use std::path::{Path, PathBuf};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(rel)
}

/// Inputs with findings of every severity and related locations in other files.
fn inputs() -> Vec<PathBuf> {
    vec![testdata("examples"), testdata("rules/per-node-cluster-watch"), testdata("rules/unbounded-client/fires.yaml")]
}

fn run(format: &str) -> (String, Value) {
    let out = apiload().args(["lint", "--no-config", "--format", format]).args(inputs()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let json = apiload().args(["lint", "--no-config", "--format", "json"]).args(inputs()).output().unwrap();
    (String::from_utf8(out.stdout).unwrap(), serde_json::from_slice(&json.stdout).unwrap())
}

fn count(json: &Value) -> usize {
    json["diagnostics"].as_array().unwrap().len()
}

/// The properties SARIF 2.1.0 requires (OASIS standard, sections 3.13–3.34),
/// and the references between them that viewers rely on.
#[test]
fn sarif_is_valid_sarif_2_1_0() {
    let (text, json) = run("sarif");
    if let Some(valid) = validate(Schema::Sarif, &text, "formats.sarif") {
        valid.expect("valid against the SARIF 2.1.0 schema");
    }
    let log: Value = serde_json::from_str(&text).expect("SARIF is JSON");
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = log["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "apiload");
    let rules = driver["rules"].as_array().expect("driver.rules");
    for r in rules {
        let id = r["id"].as_str().expect("rule id");
        assert!(
            r["name"].is_string()
                && r["shortDescription"]["text"].is_string()
                && r["fullDescription"]["text"].is_string()
        );
        assert!(r["help"]["text"].is_string() && r["help"]["markdown"].is_string(), "{id}");
        assert!(r["helpUri"].as_str().unwrap().starts_with("https://"));
        assert!(["none", "note", "warning", "error"].contains(&r["defaultConfiguration"]["level"].as_str().unwrap()));
    }
    assert!(["utf16CodeUnits", "unicodeCodePoints"].contains(&run["columnKind"].as_str().unwrap()));
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), count(&json), "one result per finding");
    let check_location = |l: &Value| {
        let uri = l["physicalLocation"]["artifactLocation"]["uri"].as_str().expect("artifactLocation.uri");
        assert!(!uri.is_empty() && !uri.contains(' ') && !uri.contains('\\'), "uri {uri}");
        let r = &l["physicalLocation"]["region"];
        let (sl, sc) = (r["startLine"].as_u64().unwrap(), r["startColumn"].as_u64().unwrap());
        let (el, ec) = (r["endLine"].as_u64().unwrap(), r["endColumn"].as_u64().unwrap());
        assert!(sl >= 1 && sc >= 1 && el >= sl && ec >= 1 && (el > sl || ec >= sc), "region {r}");
    };
    for res in results {
        assert!(res["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        let rule_id = res["ruleId"].as_str().unwrap();
        let index = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], rule_id, "ruleIndex points at the rule");
        assert!(["none", "note", "warning", "error"].contains(&res["level"].as_str().unwrap()));
        let locations = res["locations"].as_array().unwrap();
        assert_eq!(locations.len(), 1);
        check_location(&locations[0]);
        let mut ids = Vec::new();
        for rl in res["relatedLocations"].as_array().unwrap() {
            let id = rl["id"].as_u64().expect("related id");
            assert!(!ids.contains(&id), "related ids are unique");
            ids.push(id);
            assert!(rl["message"]["text"].is_string());
            check_location(rl);
        }
        assert!(res["partialFingerprints"].as_object().unwrap().values().all(Value::is_string));
    }
    code_scanning(run);
    // The chain is there: some finding has related locations in another file.
    assert!(results.iter().any(|r| {
        let main = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].clone();
        r["relatedLocations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|rl| rl["physicalLocation"]["artifactLocation"]["uri"] != main)
    }));
}

/// What GitHub code scanning reads beyond the schema: URIs relative to
/// `%SRCROOT%` (the repository root), normalised; `automationDetails`; rules
/// with `security-severity` (and the `security` tag it needs) and
/// `precision`; related locations linked from the message.
fn code_scanning(run: &Value) {
    let root = run["originalUriBaseIds"]["%SRCROOT%"]["uri"].as_str().expect("%SRCROOT%");
    assert!(root.starts_with("file:///") && root.ends_with('/'), "{root}");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().canonicalize().unwrap();
    assert_eq!(root, format!("file://{}/", repo.display()));
    assert!(run["automationDetails"]["id"].as_str().is_some_and(|id| id.starts_with("apiload/")));
    for r in run["tool"]["driver"]["rules"].as_array().unwrap() {
        let p = &r["properties"];
        let score: f64 = p["security-severity"].as_str().unwrap().parse().unwrap();
        assert!((0.0..=10.0).contains(&score));
        assert!(["very-high", "high", "medium", "low"].contains(&p["precision"].as_str().unwrap()));
        assert!(p["tags"].as_array().unwrap().contains(&Value::from("security")));
    }
    let mut linked = 0;
    for res in run["results"].as_array().unwrap() {
        let mut locations = vec![&res["locations"][0]];
        locations.extend(res["relatedLocations"].as_array().unwrap());
        for l in locations {
            let a = &l["physicalLocation"]["artifactLocation"];
            let uri = a["uri"].as_str().unwrap();
            assert_eq!(a["uriBaseId"], "%SRCROOT%", "{uri}");
            assert!(uri.starts_with("testdata/"), "relative to the repository root: {uri}");
            assert!(!uri.contains("/../") && !uri.contains("./") && !uri.contains(':'), "{uri}");
        }
        let text = res["message"]["text"].as_str().unwrap();
        for (i, _) in res["relatedLocations"].as_array().unwrap().iter().enumerate() {
            assert!(text.contains(&format!("]({})", i + 1)), "related location {} linked from: {text}", i + 1);
            linked += 1;
        }
    }
    assert!(linked > 0);
}

/// A path given with `..` and a file name with `:`: a normalised relative
/// URI with the `:` encoded (else its first segment reads as a scheme).
#[test]
fn sarif_uris_are_normalised_and_encoded() {
    let dir = scratch("sarif-uris");
    std::fs::create_dir_all(dir.join("deploy")).unwrap();
    std::fs::copy(testdata("rules/per-node-cluster-watch/fires.yaml"), dir.join("deploy/agent:v1 x.yaml")).unwrap();
    let out = apiload()
        .args(["lint", "--no-config", "--format", "sarif", "--root"])
        .arg(&dir)
        .arg(dir.join("deploy/../deploy/agent:v1 x.yaml"))
        .output()
        .unwrap();
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &log["runs"][0];
    let uri = &run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(uri["uri"], "deploy/agent%3Av1%20x.yaml");
    assert_eq!(uri["uriBaseId"], "%SRCROOT%");
    assert_eq!(run["originalUriBaseIds"]["%SRCROOT%"]["uri"], format!("file://{}/", dir.display()));
    if let Some(valid) = validate(Schema::Sarif, &String::from_utf8_lossy(&out.stdout), "uris.sarif") {
        valid.unwrap();
    }
}

#[test]
fn github_commands_parse() {
    let (text, json) = run("github");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), count(&json), "one command per finding");
    for line in lines {
        let rest = line.strip_prefix("::").expect("starts with ::");
        let (command, rest) = rest.split_once(' ').expect("command and properties");
        assert!(["error", "warning", "notice"].contains(&command), "{command}");
        let (props, message) = rest.split_once("::").expect("properties::message");
        assert!(!message.is_empty() && !message.contains('\n') && !message.contains('\r'));
        let mut keys = Vec::new();
        for p in props.split(',') {
            let (k, v) = p.split_once('=').unwrap_or_else(|| panic!("property {p} in {line}"));
            assert!(!v.contains(':') && !v.contains(','), "escaped {v}");
            if ["line", "col", "endLine", "endColumn"].contains(&k) {
                assert!(v.parse::<u32>().unwrap() >= 1);
            }
            keys.push(k);
        }
        assert_eq!(keys, ["file", "line", "col", "endLine", "endColumn", "title"]);
    }
}

/// Test cases and failures of a JUnit report, per suite: (suite, cases, failures, declared failures).
fn junit_suites(text: &str) -> Vec<(String, usize, usize, usize)> {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut reader = Reader::from_str(text);
    let mut suites = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart, name: &str| {
        e.try_get_attribute(name).unwrap().map(|a| a.unescape_value().unwrap().to_string()).unwrap_or_default()
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) if e.name().as_ref() == b"testsuite" => {
                suites.push((attr(&e, "name"), 0, 0, attr(&e, "failures").parse().unwrap()));
            }
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                suites.last_mut().unwrap().1 += 1;
            }
            Event::Start(e) if e.name().as_ref() == b"failure" => suites.last_mut().unwrap().2 += 1,
            Event::Eof => break,
            _ => {}
        }
    }
    suites
}

/// One suite per file, one case per finding; a case fails only when its
/// finding reaches `--fail-on`, so that a green job shows no failed test.
#[test]
fn junit_is_schema_valid_and_fails_only_at_fail_on() {
    let (text, json) = run("junit");
    if let Some(valid) = validate(Schema::Junit, &text, "formats.xml") {
        valid.expect("valid against Jenkins' JUnit schema");
    }
    let suites = junit_suites(&text);
    let findings = json["diagnostics"].as_array().unwrap();
    let errors = findings.iter().filter(|d| d["severity"] == "error").count();
    assert!(errors < findings.len(), "the inputs have findings below error");
    let cases: usize = suites.iter().map(|s| s.1).sum();
    let failures: usize = suites.iter().map(|s| s.2).sum();
    assert!(cases >= findings.len());
    assert_eq!(failures, errors, "failures are the findings at --fail-on error");
    assert!(suites.iter().all(|s| s.2 == s.3), "declared failures match: {suites:?}");
    let files: std::collections::BTreeSet<&str> =
        findings.iter().map(|d| d["location"]["file"].as_str().unwrap()).collect();
    for f in files {
        assert!(suites.iter().any(|s| s.0 == f), "a suite for {f}: {suites:?}");
    }
    // With --fail-on never, nothing fails; the findings are still reported.
    let out = apiload()
        .args(["lint", "--no-config", "--format", "junit", "--fail-on", "never"])
        .args(inputs())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(junit_suites(&text).iter().all(|s| s.2 == 0));
    assert_eq!(text.matches("<system-out>").count(), findings.len());
    // Warnings fail at --fail-on warning.
    let out = apiload()
        .args(["lint", "--no-config", "--format", "junit", "--fail-on", "warning"])
        .args(inputs())
        .output()
        .unwrap();
    let warned = findings.iter().filter(|d| d["severity"] != "info").count();
    let suites = junit_suites(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(suites.iter().map(|s| s.2).sum::<usize>(), warned);
}

#[test]
fn junit_without_findings_has_one_passing_case_per_file() {
    let out = apiload()
        .args(["lint", "--no-config", "--format", "junit"])
        .arg(testdata("rules/duplicate-object/passes.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let suites = junit_suites(&text);
    assert_eq!(suites.len(), 1, "{text}");
    assert_eq!((suites[0].1, suites[0].2), (1, 0));
    assert_eq!(suites[0].0, "testdata/rules/duplicate-object/passes.yaml");
    if let Some(valid) = validate(Schema::Junit, &text, "clean.xml") {
        valid.unwrap();
    }
}

/// `--format markdown`: the summary, one table row and one folded detail per finding.
#[test]
fn markdown_report_has_a_row_and_details_per_finding() {
    let (text, json) = run("markdown");
    let n = count(&json);
    assert!(text.starts_with("### apiload: "), "{text}");
    let rows = text.lines().filter(|l| l.starts_with("| ") && l.contains("docs/rules.md#al")).count();
    assert_eq!(rows, n);
    assert_eq!(text.matches("<details>").count(), n);
    assert_eq!(text.matches("</details>").count(), n);
    let first = &json["diagnostics"][0];
    assert!(text.contains(&format!("`{}:{}`", first["location"]["file"].as_str().unwrap(), first["location"]["line"])));
    // Table cells hold no raw `|` from messages.
    for l in text.lines().filter(|l| l.starts_with("| ") && l.contains("docs/rules.md#al")) {
        assert_eq!(l.matches(" | ").count() - l.matches("\\|").count(), 4, "{l}");
    }
}
