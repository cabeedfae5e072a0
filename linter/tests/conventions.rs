//! The command-line conventions users of ruff, kube-linter and Checkov
//! expect, each documented in `--help` and docs/ci.md: rule selection,
//! `--fix`, `-q`, colour, `-o`, several reports in one run,
//! `--stdin-filename`, `.` by default, a warning for input without objects;
//! and the small things a newcomer notices first.

mod common;
mod lsp_client;

use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(rel)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

fn rules_of(v: &Value) -> Vec<String> {
    v["diagnostics"].as_array().unwrap().iter().map(|d| d["rule"].as_str().unwrap().to_string()).collect()
}

fn with_stdin(args: &[&str], text: &[u8]) -> Output {
    let mut child =
        apiload().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(text).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn select_and_ignore_take_ids_prefixes_names_and_categories() {
    let examples = testdata("examples");
    let lint = |extra: &[&str]| {
        apiload().args(["lint", "--no-config", "--format", "json"]).args(extra).arg(&examples).output().unwrap()
    };
    let all = rules_of(&json(&lint(&[])));
    assert!(all.contains(&"AL101".into()) && all.iter().any(|r| r != "AL101"), "{all:?}");
    assert_eq!(rules_of(&json(&lint(&["--select", "AL101"]))).iter().filter(|r| *r != "AL101").count(), 0);
    let by_name = rules_of(&json(&lint(&["--select", "per-node-cluster-watch"])));
    assert_eq!(by_name, rules_of(&json(&lint(&["--select", "AL101"]))));
    let no_fanout = json(&lint(&["--ignore", "fanout-cluster-watch,AL4"]));
    let left = rules_of(&no_fanout);
    assert!(!left.contains(&"AL101".into()) && !left.iter().any(|r| r.starts_with("AL4")), "{left:?}");
    assert!(no_fanout["summary"]["deselected"].as_u64().unwrap() > 0);
    // A deselected error does not fail the run.
    let risky = testdata("rules/per-node-cluster-watch/fires.yaml");
    let run = |extra: &[&str]| apiload().args(["lint", "--no-config"]).args(extra).arg(&risky).output().unwrap();
    assert_eq!(run(&[]).status.code(), Some(1));
    assert_eq!(run(&["--ignore", "AL101"]).status.code(), Some(0));
    // An unknown name is a usage error that names it.
    let out = lint(&["--select", "AL101,not-a-rule"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`not-a-rule`"));
}

/// Applies LSP text edits (ASCII text: characters are bytes) to a text.
fn apply_lsp_edits(text: &str, edits: &[Value]) -> String {
    let starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let offset = |p: &Value| starts[p["line"].as_u64().unwrap() as usize] + p["character"].as_u64().unwrap() as usize;
    let mut edits: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| (offset(&e["range"]["start"]), offset(&e["range"]["end"]), e["newText"].as_str().unwrap()))
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (s, e, new) in edits {
        out.replace_range(s..e, new);
    }
    out
}

/// `--fix` makes exactly the edit of the language server's preferred quick
/// fix, and a second run changes nothing.
#[test]
fn fix_applies_the_preferred_code_action_and_is_idempotent() {
    let original = std::fs::read_to_string(testdata("rules/rollout-herd/fires.yaml")).unwrap();
    // What the editor would do.
    let ws = scratch("fix-lsp");
    let file = ws.join("agent.yaml");
    std::fs::write(&file, &original).unwrap();
    let mut c = lsp_client::Client::start(Some(&ws), json!({}));
    let uri = c.open(&file, &original);
    let ds = c.diagnostics(&uri, "AL301", |d| lsp_client::codes(d).contains(&"AL301".to_string()));
    let d = ds.iter().find(|d| d["code"] == "AL301" && d["range"]["start"]["line"] == 12).expect("AL301 at line 13");
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d], "only": ["quickfix"]}}),
    );
    let preferred = actions.as_array().unwrap().iter().find(|a| a["isPreferred"] == true).expect("a preferred fix");
    let by_editor = apply_lsp_edits(&original, preferred["edit"]["changes"][&uri].as_array().unwrap());
    c.shutdown();
    assert_ne!(by_editor, original);
    // What --fix does.
    let dir = scratch("fix-cli");
    let file = dir.join("agent.yaml");
    std::fs::write(&file, &original).unwrap();
    let out = apiload().args(["lint", "--no-config", "--fix", "--format", "json"]).arg(&file).output().unwrap();
    let fixed = std::fs::read_to_string(&file).unwrap();
    assert_eq!(fixed, by_editor, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fixed 1 finding in 1 file"));
    // The report is of the fixed file: the fixed finding is gone.
    let left = json(&out);
    assert!(
        !left["diagnostics"].as_array().unwrap().iter().any(|d| d["rule"] == "AL301" && d["location"]["line"] == 13)
    );
    // Idempotent.
    let again = apiload().args(["lint", "--no-config", "--fix", "--format", "json"]).arg(&file).output().unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), fixed);
    assert!(String::from_utf8_lossy(&again.stderr).contains("fixed 0 findings in 0 files"));
    // stdin is never rewritten, and says nothing is fixed there.
    let out = with_stdin(&["lint", "--no-config", "--fix", "--format", "json", "-"], original.as_bytes());
    assert!(rules_of(&json(&out)).contains(&"AL301".into()));
}

#[test]
fn quiet_prints_findings_only() {
    let risky = testdata("rules/per-node-cluster-watch/fires.yaml");
    let out = apiload().args(["lint", "--no-config", "-q"]).arg(&risky).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("AL101") && !text.contains(" in 1 file"), "{text}");
    assert_eq!(out.status.code(), Some(1));
    let loud = apiload().args(["lint", "--no-config"]).arg(&risky).output().unwrap();
    assert!(String::from_utf8_lossy(&loud.stdout).contains(" in 1 file ("));
}

#[test]
fn colour_follows_color_no_color_and_force_color() {
    let risky = testdata("rules/per-node-cluster-watch/fires.yaml");
    let colored = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = apiload();
        c.args(["lint", "--no-config"]).args(args).arg(&risky).env_remove("NO_COLOR").env_remove("FORCE_COLOR");
        for (k, v) in env {
            c.env(k, v);
        }
        String::from_utf8(c.output().unwrap().stdout).unwrap().contains('\u{1b}')
    };
    assert!(!colored(&[], &[]), "not a terminal: no colour");
    assert!(colored(&["--color", "always"], &[]));
    assert!(colored(&["--color", "always"], &[("NO_COLOR", "1")]), "the flag wins");
    assert!(!colored(&["--color", "never"], &[("FORCE_COLOR", "1")]));
    assert!(colored(&[], &[("FORCE_COLOR", "1")]));
    assert!(!colored(&[], &[("FORCE_COLOR", "0")]));
    assert!(!colored(&[], &[("FORCE_COLOR", "1"), ("NO_COLOR", "1")]));
}

#[test]
fn several_reports_in_one_run_and_output_files() {
    let dir = scratch("outputs");
    let risky = testdata("rules/per-node-cluster-watch/fires.yaml");
    let sarif = dir.join("apiload.sarif");
    let report = dir.join("report.json");
    let out = apiload()
        .args(["lint", "--no-config", "--format"])
        .arg(format!("sarif={}", sarif.display()))
        .args(["--format", "github", "--format"])
        .arg(format!("json={}", report.display()))
        .arg(&risky)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().all(|l| l.starts_with("::")) && stdout.contains("AL101"), "{stdout}");
    let log: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(rules_of(&report).contains(&"AL101".into()));
    // -o: the report without a file of its own.
    let o = dir.join("o.json");
    let out = apiload().args(["lint", "--no-config", "--format", "json", "-o"]).arg(&o).arg(&risky).output().unwrap();
    assert!(out.stdout.is_empty());
    assert_eq!(out.status.code(), Some(1));
    assert!(rules_of(&serde_json::from_slice(&std::fs::read(&o).unwrap()).unwrap()).contains(&"AL101".into()));
    // Two reports for stdout, an unknown format, a file that cannot be written: usage errors.
    let code = |args: &[&str]| apiload().args(["lint", "--no-config"]).args(args).arg(&risky).output().unwrap();
    let two = code(&["--format", "json", "--format", "github"]);
    assert_eq!(two.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&two.stderr).contains("only one --format can go to stdout"));
    assert_eq!(code(&["--format", "yaml"]).status.code(), Some(2));
    let unwritable = code(&["--format", "json=/no/such/dir/x.json"]);
    assert_eq!(unwritable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unwritable.stderr).contains("/no/such/dir/x.json"));
}

/// `--format markdown=$GITHUB_STEP_SUMMARY` appends, as every step does there.
#[test]
fn the_step_summary_is_appended_to() {
    let dir = scratch("step-summary");
    let summary = dir.join("summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    apiload()
        .args(["lint", "--no-config", "--format"])
        .arg(format!("markdown={}", summary.display()))
        .arg(testdata("rules/per-node-cluster-watch/fires.yaml"))
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("# earlier step\n### apiload: 1 error"), "{text}");
}

#[test]
fn stdin_filename_names_stdin() {
    let text = std::fs::read(testdata("rules/per-node-cluster-watch/fires.yaml")).unwrap();
    let dir = scratch("stdin-name");
    let name = dir.join("deploy/agent.yaml");
    let root = dir.display().to_string();
    let out = with_stdin(
        &[
            "lint",
            "--no-config",
            "--format",
            "json",
            "--root",
            &root,
            "--stdin-filename",
            &name.display().to_string(),
            "-",
        ],
        &text,
    );
    let v = json(&out);
    assert_eq!(v["diagnostics"][0]["location"]["file"], "deploy/agent.yaml");
    assert_eq!(v["diagnostics"][0]["location"]["line"], 14);
}

#[test]
fn the_default_path_is_the_current_folder() {
    let dir = scratch("default-path");
    std::fs::copy(testdata("rules/per-node-cluster-watch/fires.yaml"), dir.join("agent.yaml")).unwrap();
    let out = apiload().args(["lint", "--no-config", "--format", "json"]).current_dir(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(rules_of(&json(&out)).contains(&"AL101".into()));
}

/// Empty stdin after a failed `helm template`, or files without any
/// object, pass with a warning that says so, in every report.
#[test]
fn input_without_objects_is_warned_about() {
    let out = with_stdin(&["lint", "--no-config", "-"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("warning: stdin was empty"));
    let out = with_stdin(&["lint", "--no-config", "--format", "github", "-"], b"\n");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("::warning title=apiload::stdin was empty"));
    let out = with_stdin(&["lint", "--no-config", "--format", "json", "-"], b"replicaCount: 2\n");
    assert!(json(&out)["warnings"][0].as_str().unwrap().contains("no Kubernetes object"));
    let out = with_stdin(&["lint", "--no-config", "--format", "sarif", "-"], b"a: 1\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: the input holds no Kubernetes object"));
    // A Service alone is an object (the analysis reads nothing of it): no warning.
    let out = with_stdin(&["lint", "--no-config", "-"], b"apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning:"), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Every flag is in `--help` and in docs/ci.md.
#[test]
fn every_flag_is_documented() {
    let help = String::from_utf8(apiload().args(["lint", "--help"]).output().unwrap().stdout).unwrap();
    let ci = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ci.md")).unwrap();
    for flag in [
        "--format",
        "--select",
        "--ignore",
        "--fix",
        "--quiet",
        "--color",
        "--output",
        "--stdin-filename",
        "--root",
        "--helm",
        "--values",
        "--fail-on",
        "--baseline",
    ] {
        assert!(help.contains(flag), "lint --help lacks {flag}");
        assert!(ci.contains(&format!("`{flag}")), "docs/ci.md lacks {flag}");
    }
    for short in ["-q, --quiet", "-o, --output"] {
        assert!(help.contains(short), "{short}");
    }
    assert!(help.contains("[default: .]"));
    for word in ["markdown", "FORCE_COLOR", "NO_COLOR"] {
        assert!(help.contains(word) && ci.contains(word), "{word}");
    }
}

#[test]
fn rules_are_listed_in_aligned_columns_and_markdown_is_described() {
    let out = String::from_utf8(apiload().arg("rules").output().unwrap().stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let header = lines[0];
    for column in ["NAME", "CATEGORY", "SEVERITY", "SUMMARY"] {
        let at = header.find(column).unwrap();
        for l in &lines[1..] {
            let before = l[..at].chars().last().unwrap();
            let here = l[at..].chars().next().unwrap();
            assert!(before == ' ' && here != ' ', "{column} not aligned in:\n{l}");
        }
    }
    let help = String::from_utf8(apiload().args(["rules", "--help"]).output().unwrap().stdout).unwrap();
    let line = help.lines().find(|l| l.contains("--markdown")).unwrap();
    assert!(line.trim().len() > "--markdown".len() + 10, "described: {line}");
}

#[test]
fn summaries_say_1_file_and_nothing_when_nothing_was_read() {
    let out = apiload()
        .args(["lint", "--no-config"])
        .arg(testdata("rules/per-node-cluster-watch/fires.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1 error, 0 warnings, 1 info in 1 file (") || text.contains(" in 1 file ("), "{text}");
    assert!(!text.contains("1 errors") && !text.contains("1 files") && !text.contains("1 warnings"), "{text}");
    // The chain is not headed by miette's empty "Advice:".
    assert!(!text.contains("Advice:"), "{text}");
    let out = apiload().args(["lint", "--no-config", "/nonexistent"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent"));
}
