//! `apiload mitigate` on testdata/mitigate: the exact YAML and summary
//! (snapshots), `lint` satisfied by what it writes, its patch applied by
//! `git apply` and `patch -p1` to what `lint --fix` makes, and bad input.

mod common;

use common::{apiload, scratch};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(rel)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `apiload mitigate --no-config ARGS` from the repository root.
fn mitigate(args: &[&str]) -> Output {
    let out = apiload().arg("mitigate").arg("--no-config").args(args).current_dir(repo()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// (rule, workload name) of `apiload lint --format json` on `paths`.
fn lint_findings(paths: &[&Path]) -> Vec<(String, String)> {
    let out =
        apiload().args(["lint", "--no-config", "--format", "json"]).args(paths).current_dir(repo()).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<(String, String)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["rule"].as_str().unwrap().to_string(), d["workload"]["name"].as_str().unwrap_or("").to_string()))
        .collect();
    found.sort();
    found
}

#[test]
fn writes_the_flowschemas_and_levels_of_the_fixture() {
    let out = mitigate(&["testdata/mitigate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("mitigate_yaml", text(&out.stdout));
    insta::assert_snapshot!("mitigate_summary", text(&out.stderr));
}

#[test]
fn every_document_is_a_flowcontrol_v1_object_apiload_manages() {
    let out = mitigate(&["-q", "testdata/mitigate"]);
    let yaml = text(&out.stdout);
    let docs = apiload_yaml::load_stream(yaml.as_bytes(), &Default::default());
    let mut kinds = Vec::new();
    for d in &docs {
        let d = d.as_ref().expect("every document parses");
        let root = &d.root;
        assert_eq!(root.path(&["apiVersion"]).and_then(|n| n.as_str()), Some("flowcontrol.apiserver.k8s.io/v1"));
        assert_eq!(
            root.path(&["metadata", "labels", "app.kubernetes.io/managed-by"]).and_then(|n| n.as_str()),
            Some("apiload")
        );
        let name = root.path(&["metadata", "name"]).and_then(|n| n.as_str()).unwrap().to_string();
        assert!(name.len() <= 63 && name.starts_with("apiload-"), "{name}");
        kinds.push((root.path(&["kind"]).and_then(|n| n.as_str()).unwrap().to_string(), name));
    }
    assert_eq!(
        kinds,
        [
            ("FlowSchema", "apiload-inventory-node-inventory"),
            ("PriorityLevelConfiguration", "apiload-inventory-node-inventory"),
            ("FlowSchema", "apiload-kube-system-route-reflector"),
            ("PriorityLevelConfiguration", "apiload-kube-system-route-reflector"),
        ]
        .map(|(k, n)| (k.to_string(), n.to_string()))
    );
}

#[test]
fn lint_of_the_input_and_its_output_no_longer_reports_al401_or_al402() {
    let dir = scratch("mitigate-lint");
    let before = lint_findings(&[&testdata("mitigate")]);
    for expected in [("AL401", "node-inventory"), ("AL402", "route-reflector")] {
        assert!(before.contains(&(expected.0.into(), expected.1.into())), "{before:?}");
    }
    let written = dir.join("apf.yaml");
    let out = mitigate(&["-q", "testdata/mitigate", "-o", written.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = lint_findings(&[&testdata("mitigate"), &written]);
    assert!(after.iter().all(|(rule, _)| rule != "AL401" && rule != "AL402"), "{after:?}");
    // Nothing else changed: the FlowSchemas contain the fan-out, they do not fix it.
    let others = |v: &[(String, String)]| -> Vec<(String, String)> {
        v.iter().filter(|(r, _)| r != "AL401" && r != "AL402").cloned().collect()
    };
    assert_eq!(others(&before), others(&after));
    // And mitigate of the two together has nothing more to write.
    let again = mitigate(&["testdata/mitigate", written.to_str().unwrap()]);
    assert!(!text(&again.stdout).contains("kind:"), "{}", text(&again.stdout));
    assert!(text(&again.stderr).contains("already in FlowSchema apiload-inventory-node-inventory"));
}

#[test]
fn a_bigger_server_gives_the_same_seats_for_fewer_shares() {
    let default = text(&mitigate(&["-q", "testdata/mitigate"]).stdout);
    let big = mitigate(&[
        "-q",
        "--max-requests-inflight",
        "2400",
        "--max-mutating-requests-inflight",
        "1200",
        "testdata/mitigate",
    ]);
    let big = text(&big.stdout);
    let shares = |y: &str| -> Vec<u64> {
        y.lines()
            .filter_map(|l| l.trim().strip_prefix("nominalConcurrencyShares: "))
            .map(|n| n.parse().unwrap())
            .collect()
    };
    // 600 seats: 33 shares each of 255 + 66 (ceil(600 × 33 / 321) = 62);
    // 3,600: 61 × 255 / (3,600 − 122) = 4.47 → 5, ceil(3,600 × 5 / 265) = 68.
    assert_eq!(shares(&default), [33, 33]);
    assert_eq!(shares(&big), [5, 5]);
    assert!(big.contains("# 5 shares: ceil(3600 × 5 / 265) = 68 seats."), "{big}");
}

#[test]
fn the_patch_applies_with_git_and_patch_and_makes_what_lint_fix_makes() {
    // Two copies of the fixture in repositories of their own.
    let dir = scratch("mitigate-patch");
    let copy = |name: &str| -> PathBuf {
        let root = dir.join(name);
        let to = root.join("testdata/mitigate");
        std::fs::create_dir_all(&to).unwrap();
        for f in ["agents.yaml", "rbac.yaml", "flowschema.yaml"] {
            std::fs::copy(testdata("mitigate").join(f), to.join(f)).unwrap();
        }
        std::fs::create_dir_all(root.join(".git")).unwrap();
        root
    };
    let (patched, fixed, with_patch) = (copy("patched"), copy("fixed"), copy("with-patch"));
    let patch = dir.join("fixes.patch");
    let out = apiload()
        .args(["mitigate", "--no-config", "-q", "testdata/mitigate", "--patches"])
        .arg(&patch)
        .current_dir(&patched)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let diff = std::fs::read_to_string(&patch).unwrap();
    insta::assert_snapshot!("mitigate_patch", diff);
    // `lint --fix` on the second copy.
    let out = apiload()
        .args(["lint", "--no-config", "-q", "--fix", "testdata/mitigate"])
        .current_dir(&fixed)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out.stderr));
    // patch -p1 on the first, git apply on the third.
    let patch_tool =
        std::process::Command::new("patch").args(["-p1", "--batch", "-i"]).arg(&patch).current_dir(&patched).output();
    let git = std::process::Command::new("git")
        .args(["apply", "--verbose"])
        .arg(&patch)
        .env("GIT_CEILING_DIRECTORIES", &dir)
        .current_dir(&with_patch)
        .output();
    let want = std::fs::read_to_string(fixed.join("testdata/mitigate/agents.yaml")).unwrap();
    let original = std::fs::read_to_string(testdata("mitigate/agents.yaml")).unwrap();
    assert_ne!(want, original, "lint --fix changed nothing");
    let mut applied = 0;
    for (tool, result, root) in [("patch -p1", patch_tool, &patched), ("git apply", git, &with_patch)] {
        match result {
            Ok(o) => {
                assert!(o.status.success(), "{tool}: {}{}", text(&o.stdout), text(&o.stderr));
                let got = std::fs::read_to_string(root.join("testdata/mitigate/agents.yaml")).unwrap();
                assert_eq!(got, want, "{tool} made something other than lint --fix");
                applied += 1;
            }
            Err(e) => common::skip(&format!("{tool} is not installed: {e}")),
        }
    }
    assert!(applied > 0 || std::env::var_os("APILOAD_REQUIRE_TOOLS").is_none(), "neither patch nor git ran");
}

#[test]
fn broken_documents_are_named_and_the_rest_is_still_mitigated() {
    let dir = scratch("mitigate-broken");
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n").unwrap();
    let out = mitigate(&["testdata/mitigate", broken.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.yaml:4:1: YAML syntax error") && stderr.contains("(AL001)"), "{stderr}");
    assert!(text(&out.stdout).contains("name: apiload-inventory-node-inventory"));
}

#[test]
fn an_unreadable_path_is_exit_2_and_the_rest_is_still_written() {
    let out = mitigate(&["testdata/mitigate", "testdata/mitigate/no-such-file.yaml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such-file.yaml"), "{stderr}");
    assert!(text(&out.stdout).contains("name: apiload-inventory-node-inventory"));
}

#[test]
fn usage_errors_are_exit_2_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--cluster", "testdata/mitigate"], "give no paths"),
        (
            &["--max-requests-inflight", "0", "--max-mutating-requests-inflight", "0", "testdata/mitigate"],
            "add up to 0",
        ),
        (&["-o", "/nonexistent-folder/apf.yaml", "testdata/mitigate"], "cannot write /nonexistent-folder/apf.yaml"),
        (&["--max-requests-inflight", "many", "testdata/mitigate"], "invalid value 'many'"),
    ];
    for (args, message) in cases {
        let out = mitigate(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn a_cluster_that_cannot_be_read_is_one_clear_error() {
    let dir = scratch("mitigate-cluster");
    let kubeconfig = dir.join("kubeconfig");
    // Port 9 on loopback: nothing listens there.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    )
    .unwrap();
    let out = mitigate(&["--cluster", "--kubeconfig", kubeconfig.to_str().unwrap(), "--request-timeout", "2s"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error:") && stderr.contains("127.0.0.1:9"), "{stderr}");
    assert!(out.stdout.is_empty());
    let out = mitigate(&["--cluster", "--kubeconfig", kubeconfig.to_str().unwrap(), "--context", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
}

#[test]
fn nothing_to_contain_is_said_and_exits_0() {
    let out = mitigate(&["testdata/examples/rbac"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("# Nothing to contain"));
    assert!(!text(&out.stdout).contains("kind:"));
    assert!(text(&out.stderr).contains("nothing to contain"), "{}", text(&out.stderr));
}

#[test]
fn every_flag_is_in_help_and_in_docs_mitigate_md() {
    let help = text(&apiload().args(["mitigate", "--help"]).output().unwrap().stdout);
    let doc = std::fs::read_to_string(repo().join("docs/mitigate.md")).unwrap();
    for flag in [
        "--cluster",
        "--kubeconfig",
        "--context",
        "--max-requests-inflight",
        "--max-mutating-requests-inflight",
        "--patches",
        "--output",
        "--quiet",
        "--nodes",
        "--helm",
        "--cluster-profile",
    ] {
        assert!(help.contains(flag), "mitigate --help lacks {flag}");
        assert!(doc.contains(&format!("`{flag}")), "docs/mitigate.md lacks {flag}");
    }
}
