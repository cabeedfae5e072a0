//! SARIF, GitHub workflow commands and JUnit: well-formed, complete, one entry per finding.

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

#[test]
fn junit_is_well_formed_with_one_failure_per_finding() {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let (text, json) = run("junit");
    let mut reader = Reader::from_str(&text);
    let (mut failures, mut testcases, mut depth) = (0, 0, 0i32);
    let mut declared = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                depth += 1;
                match e.name().as_ref() {
                    b"failure" => failures += 1,
                    b"testcase" => testcases += 1,
                    b"testsuite" => {
                        let a = e.try_get_attribute("failures").unwrap().unwrap();
                        declared = Some(a.unescape_value().unwrap().parse::<usize>().unwrap());
                    }
                    _ => {}
                }
            }
            Event::Empty(e) if e.name().as_ref() == b"testcase" => testcases += 1,
            Event::End(_) => depth -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0);
    assert_eq!(failures, count(&json));
    assert_eq!(testcases, count(&json));
    assert_eq!(declared, Some(count(&json)));
}

#[test]
fn junit_without_findings_has_one_passing_case() {
    let out = apiload()
        .args(["lint", "--no-config", "--format", "junit"])
        .arg(testdata("rules/duplicate-object/passes.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("failures=\"0\"") && text.contains("<testcase name=\"apiload: 1 files linted, no findings\"")
    );
}
