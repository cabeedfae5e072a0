//! `apiload learn`, and `lint`/`estimate --audit-log`, on the audit log the
//! end-to-end suite recorded from the real API server
//! (testdata/audit/learn-agents.jsonl, e2e/src/checks/learn.rs): node-agent
//! lists and watches the pods of its own node from each of three nodes,
//! cluster-agent lists and watches every pod from each of them and is
//! refused a LIST of Secrets. Both are granted pods, nodes and ConfigMaps
//! cluster-wide (testdata/audit/learn/agents.yaml). docs/learn.md.

mod common;

use common::{apiload, scratch};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(rel)
}

fn log() -> String {
    repo("testdata/audit/learn-agents.jsonl").display().to_string()
}

fn manifests() -> String {
    repo("testdata/audit/learn/agents.yaml").display().to_string()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs apiload from the repository's root (so that the paths it prints
/// are the same wherever the checkout is), on a fixed date.
fn run(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = apiload();
    cmd.args(args).current_dir(repo("")).env("APILOAD_TODAY", "2026-12-02");
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Per workload, each call as `verb resource scope node=… copies=… refused=…`.
fn learned_calls(summary: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for w in summary["workloads"].as_array().unwrap() {
        for c in w["calls"].as_array().unwrap() {
            out.push(format!(
                "{} {} {} {} fieldSelector={} node={} copies={} requests={} refused={}",
                w["workload"]["name"].as_str().unwrap_or("?"),
                c["verb"].as_str().unwrap(),
                c["resource"].as_str().unwrap(),
                c["scope"].as_str().unwrap(),
                c["field_selector"].as_str().unwrap_or("-"),
                c["node"].as_str().unwrap_or("-"),
                c["copies"],
                c["requests"],
                c["refused"],
            ));
        }
    }
    out
}

/// The findings about API calls: (rule, workload, basis), sorted.
fn findings(lint_json: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = lint_json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d.get("basis").is_some())
        .map(|d| {
            (
                d["rule"].as_str().unwrap().to_string(),
                d["workload"]["name"].as_str().unwrap_or("").to_string(),
                d["basis"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn relative(path: &str) -> String {
    let root = format!("{}/", repo("").display().to_string().trim_end_matches('/'));
    path.strip_prefix(&root).unwrap_or(path).to_string()
}

#[test]
fn the_summary_says_what_each_agent_was_seen_to_call() {
    let (log, manifests) = (relative(&log()), relative(&manifests()));
    let r = run(&["learn", "--no-config", "--audit-log", &log, &manifests], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    insta::assert_snapshot!("summary-human", r.stdout);

    let r = run(&["learn", "--no-config", "--format", "json", "--audit-log", &log, &manifests], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(
        learned_calls(&v),
        [
            "node-agent get nodes object fieldSelector=- node=own-node copies=3 requests=3 refused=0",
            "node-agent list pods node fieldSelector=spec.nodeName=<node> node=own-node copies=3 requests=3 refused=0",
            "node-agent watch pods node fieldSelector=spec.nodeName=<node> node=own-node copies=3 requests=3 refused=0",
            "cluster-agent list pods cluster fieldSelector=- node=- copies=3 requests=3 refused=0",
            "cluster-agent list secrets cluster fieldSelector=- node=- copies=3 requests=3 refused=3",
            "cluster-agent watch pods cluster fieldSelector=- node=- copies=3 requests=3 refused=0",
        ]
    );
    let node_agent = &v["workloads"][0];
    assert_eq!(node_agent["workload"]["kind"], "DaemonSet");
    assert_eq!(node_agent["workload"]["image"], "registry.example.com/learn/node-agent:1.0");
    assert_eq!(node_agent["copies"].as_array().unwrap().len(), 3);
    assert!(
        node_agent["copies"].as_array().unwrap().iter().all(|c| c["pod"].as_str().unwrap().starts_with("node-agent-"))
    );
    // Granted configmaps and the LIST/WATCH of nodes, and never used them.
    let unused: Vec<String> = node_agent["over_grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("{} {}", g["verb"].as_str().unwrap(), g["resource"].as_str().unwrap()))
        .collect();
    for grant in ["list configmaps", "watch configmaps", "list nodes", "watch nodes"] {
        assert!(unused.iter().any(|u| u == grant), "{grant} not reported unused: {unused:?}");
    }
    assert!(!unused.iter().any(|u| u == "list pods" || u == "get nodes"), "used grants reported unused: {unused:?}");
    assert_eq!(v["malformed_lines"], 0);
}

#[test]
fn without_manifests_every_service_account_is_summarised() {
    let r = run(&["learn", "--no-config", "--format", "json", "--audit-log", &log()], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v = json(&r.stdout);
    let accounts: Vec<&str> =
        v["workloads"].as_array().unwrap().iter().map(|w| w["service_account"].as_str().unwrap()).collect();
    assert_eq!(accounts, ["e2e-learn/cluster-agent", "e2e-learn/node-agent"]);
    assert!(v["workloads"].as_array().unwrap().iter().all(|w| w["workload"].is_null()));
}

/// The issue's test: learned profiles make `lint --profiles` report an
/// over-grant of the node-scoped agent and a cluster-wide fan-out of the
/// other; `lint --audit-log` reports the same, with basis `observed`.
#[test]
fn learned_profiles_and_the_log_itself_give_the_same_findings() {
    let out = scratch("learn-profiles");
    let out_arg = out.display().to_string();
    let r = run(&["learn", "--no-config", "-q", "--audit-log", &log(), &manifests(), "--out", &out_arg], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let mut written: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    written.sort();
    assert_eq!(written, ["learned-cluster-agent.yaml", "learned-node-agent.yaml"]);
    // Readable and saying where it comes from (the log's path is the test's own).
    let profile = std::fs::read_to_string(out.join("learned-node-agent.yaml")).unwrap().replace(&log(), "LOG");
    insta::assert_snapshot!("profile-node-agent", profile);

    let with_profiles = run(&["lint", "--no-config", "--format", "json", "--profiles", &out_arg, &manifests()], None);
    assert_eq!(with_profiles.code, Some(1), "{}", with_profiles.stderr);
    assert_eq!(
        findings(&json(&with_profiles.stdout)),
        [
            ("AL101".into(), "cluster-agent".into(), "profile".into()),
            ("AL103".into(), "node-agent".into(), "profile".into()),
        ]
    );

    let with_log = run(&["lint", "--no-config", "--format", "json", "--audit-log", &log(), &manifests()], None);
    assert_eq!(with_log.code, Some(1), "{}", with_log.stderr);
    let v = json(&with_log.stdout);
    assert_eq!(
        findings(&v),
        [
            ("AL101".into(), "cluster-agent".into(), "observed".into()),
            ("AL103".into(), "node-agent".into(), "observed".into()),
        ]
    );
    let al101 = v["diagnostics"].as_array().unwrap().iter().find(|d| d["rule"] == "AL101").unwrap();
    let pods = al101["calls"].as_array().unwrap().iter().find(|c| c["resource"] == "pods").unwrap();
    assert_eq!((pods["scope"].as_str(), pods["basis"].as_str()), (Some("cluster"), Some("observed")), "{al101:#}");

    // Without the log nothing shows what the agents do: their grants are all there is.
    let inferred = run(&["lint", "--no-config", "--format", "json", &manifests()], None);
    assert!(findings(&json(&inferred.stdout)).iter().all(|(_, _, basis)| basis == "inferred"), "{}", inferred.stdout);
}

#[test]
fn the_estimate_multiplies_the_observed_rate_by_production() {
    let r = run(
        &["estimate", "--no-config", "--format", "json", "--nodes", "1000", "--audit-log", &log(), &manifests()],
        None,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v = json(&r.stdout);
    let learned = run(&["learn", "--no-config", "--format", "json", "--audit-log", &log(), &manifests()], None);
    let summary = json(&learned.stdout);
    for w in summary["workloads"].as_array().unwrap() {
        let name = w["workload"]["name"].as_str().unwrap();
        let e = v["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no estimate of {name}: {v:#}"));
        let per_copy = w["requests_per_copy_per_second"].as_f64().unwrap();
        let all = e["observed_requests_per_second"].as_f64().unwrap_or_else(|| panic!("{e:#}"));
        assert!((all - per_copy * 1000.0).abs() < 1e-6 * all.max(1.0), "{name}: {all} ≠ {per_copy} × 1000 copies");
    }
}

#[test]
fn the_suggested_rbac_is_what_was_seen() {
    let (log, manifests) = (relative(&log()), relative(&manifests()));
    let r = run(&["learn", "--no-config", "--suggest-rbac", "--audit-log", &log, &manifests], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    insta::assert_snapshot!("suggest-rbac", r.stdout);
    assert!(r.stderr.contains("DaemonSet e2e-learn/node-agent"), "the summary goes to stderr: {}", r.stderr);
}

/// Lines of the recorded log with bad ones among them: every good line is
/// still learned, every bad one is named by file and line.
#[test]
fn bad_lines_are_named_and_the_rest_is_learned() {
    let good = std::fs::read_to_string(log()).unwrap();
    let good: Vec<&str> = good.lines().collect();
    let mut text: Vec<u8> = Vec::new();
    let mut expected = Vec::new();
    let mut line = 0;
    let mut push = |text: &mut Vec<u8>, bytes: &[u8]| {
        text.extend_from_slice(bytes);
        text.push(b'\n');
        line += 1;
        line
    };
    for (i, g) in good.iter().enumerate() {
        push(&mut text, g.as_bytes());
        match i {
            2 => expected.push((push(&mut text, &g.as_bytes()[..g.len() / 2]), "cut short")),
            5 => {
                let mut bad = g.as_bytes().to_vec();
                bad[30] = 0xff;
                expected.push((push(&mut text, &bad), "not UTF-8"));
            }
            8 => expected.push((push(&mut text, br#"{"kind":"ConfigMap","apiVersion":"v1"}"#), "not an audit event")),
            11 => expected.push((push(&mut text, b"E1202 00:21:54 audit.go:42] something else"), "not JSON")),
            14 => {
                // Longer than the longest line read (16 MiB): skipped, not held.
                let huge = vec![b'x'; (16 << 20) + 10];
                expected.push((push(&mut text, &huge), "longer than"));
            }
            17 => {
                expected.push((push(&mut text, br#"{"apiVersion":"audit.k8s.io/v1","kind":"Event"}"#), "missing field"))
            }
            _ => {}
        }
    }
    let dir = scratch("learn-bad-lines");
    let path = dir.join("audit.log");
    std::fs::write(&path, &text).unwrap();
    let name = path.display().to_string();
    let r = run(&["learn", "--no-config", "--format", "json", "--audit-log", &name, &manifests()], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for (line, what) in &expected {
        let prefix = format!("warning: {name}:{line}: ");
        assert!(
            r.stderr.lines().any(|l| l.starts_with(&prefix) && l.contains(what)),
            "no `{prefix}… {what}` in:\n{}",
            r.stderr
        );
    }
    let v = json(&r.stdout);
    assert_eq!(v["malformed_lines"], expected.len());
    assert_eq!(v["problems"].as_array().unwrap().len(), expected.len(), "{:#}", v["problems"]);
    let clean = run(&["learn", "--no-config", "--format", "json", "--audit-log", &log(), &manifests()], None);
    assert_eq!(learned_calls(&v), learned_calls(&json(&clean.stdout)), "the good lines are not all learned");
    // lint reads the log the same way: warnings, and the findings of the good lines.
    let lint = run(&["lint", "--no-config", "--format", "json", "--audit-log", &name, &manifests()], None);
    assert_eq!(lint.code, Some(1), "{}", lint.stderr);
    assert_eq!(lint.stderr.lines().filter(|l| l.starts_with(&format!("warning: {name}:"))).count(), expected.len());
    assert_eq!(
        findings(&json(&lint.stdout)),
        [
            ("AL101".into(), "cluster-agent".into(), "observed".into()),
            ("AL103".into(), "node-agent".into(), "observed".into()),
        ]
    );
}

/// Rotated logs in a folder, one of them gzip, and the same on stdin,
/// learn what the one file does.
#[test]
fn folders_gzip_and_stdin_read_as_the_file() {
    let text = std::fs::read_to_string(log()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (older, newer) = lines.split_at(lines.len() / 2);
    let dir = scratch("learn-rotated");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(format!("{}\n", older.join("\n")).as_bytes()).unwrap();
    std::fs::write(dir.join("audit-2026-12-02T00-21-55.000.log.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.join("audit.log"), format!("{}\n", newer.join("\n"))).unwrap();
    std::fs::write(dir.join("README.md"), "not a log: left alone\n").unwrap();

    let calls = |r: Run| {
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        learned_calls(&json(&r.stdout))
    };
    let file = calls(run(&["learn", "--no-config", "--format", "json", "--audit-log", &log(), &manifests()], None));
    let folder = dir.display().to_string();
    let rotated = run(&["learn", "--no-config", "--format", "json", "--audit-log", &folder, &manifests()], None);
    assert!(rotated.stderr.contains("2 files"), "{}", rotated.stderr);
    assert_eq!(calls(rotated), file);
    let stdin =
        run(&["learn", "--no-config", "--format", "json", "--audit-log", "-", &manifests()], Some(text.as_bytes()));
    assert_eq!(calls(stdin), file);
}

#[test]
fn a_log_that_cannot_be_read_is_an_error_naming_it() {
    let r = run(&["learn", "--no-config", "--audit-log", "no/such/audit.log", &manifests()], None);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("error: cannot read audit log no/such/audit.log"), "{}", r.stderr);
    let r = run(&["lint", "--no-config", "--audit-log", "no/such/audit.log", &manifests()], None);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("no/such/audit.log"), "{}", r.stderr);
    // Only one of the log and the manifests can come from stdin.
    for command in ["learn", "lint"] {
        let r = run(&[command, "--no-config", "--audit-log", "-", "-"], Some(b""));
        assert_eq!(r.code, Some(2), "{command}: {}", r.stderr);
        assert!(r.stderr.contains("both read stdin"), "{command}: {}", r.stderr);
    }
    // --out writes profiles keyed by image: the manifests say which.
    let r = run(&["learn", "--no-config", "--audit-log", &log(), "--out", "nowhere"], None);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("--out"), "{}", r.stderr);
}
