//! `apiload lint .` on an ordinary repository: Helm chart sources, Kustomize
//! files, other tools' configuration, a FIFO and a symbolic link cycle are
//! left out, said in the summary, and never reported as broken manifests.

mod common;

use common::*;
use serde_json::Value;

const SA: &str = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: web\n";

fn repository(name: &str) -> std::path::PathBuf {
    let root = scratch(name);
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("deploy/app.yaml", SA);
    write("deploy/kustomization.yaml", "resources: [app.yaml]\n");
    write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    write("charts/web/values.yaml", "replicas: 2\n");
    write("charts/web/templates/deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\n{{ .Values.x }}\n");
    write("mkdocs.yml", "site_name: docs\n");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(".", root.join("deploy/loop")).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(root.join("deploy/pipe.yaml")).status().unwrap().success());
    }
    root
}

#[test]
fn lint_skips_what_is_not_a_manifest_and_says_so() {
    let root = repository("walk-human");
    let out = apiload().args(["lint", "--fail-on", "info"]).arg(&root).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains("AL001"), "{stdout}");
    assert!(stdout.contains("in 1 file "), "{stdout}");
    #[cfg(unix)]
    {
        assert!(stdout.contains("; 7 paths skipped ("), "{stdout}");
        assert!(stdout.contains("1 symbolic link cycle"), "{stdout}");
        assert!(stdout.contains("1 FIFO, socket or device"), "{stdout}");
        assert!(stderr.contains("pipe.yaml: a FIFO, not a regular file"), "{stderr}");
        assert!(stderr.contains("loop: a symbolic link back to"), "{stderr}");
    }
    assert!(stdout.contains("3 Helm chart sources"), "{stdout}");
    assert!(stdout.contains("1 Kustomize configuration"), "{stdout}");
    assert!(stdout.contains("1 other tool's configuration"), "{stdout}");
}

#[test]
fn the_json_output_lists_what_was_skipped() {
    let root = repository("walk-json");
    let out = apiload().args(["lint", "--format", "json"]).arg(&root).output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped = json["skipped"].as_array().unwrap();
    assert_eq!(json["summary"]["skipped"], skipped.len());
    let reason = |suffix: &str| {
        skipped.iter().find(|s| s["path"].as_str().unwrap().ends_with(suffix)).map(|s| s["reason"].clone())
    };
    assert_eq!(reason("charts/web/Chart.yaml"), Some("helm-chart".into()));
    assert_eq!(reason("charts/web/templates"), Some("helm-chart".into()));
    assert_eq!(reason("deploy/kustomization.yaml"), Some("kustomize".into()));
    assert_eq!(reason("mkdocs.yml"), Some("other-tool".into()));
    #[cfg(unix)]
    {
        assert_eq!(reason("deploy/pipe.yaml"), Some("not-a-file".into()));
        assert_eq!(reason("deploy/loop"), Some("link-cycle".into()));
    }
    assert!(skipped.iter().all(|s| s["message"].as_str().is_some_and(|m| !m.is_empty())));
}

#[test]
fn files_named_explicitly_follow_the_same_rules() {
    // As a pre-commit hook runs it: every changed file named on the command line.
    let root = repository("walk-explicit");
    let out = apiload()
        .arg("lint")
        .arg(root.join("charts/web/Chart.yaml"))
        .arg(root.join("charts/web/values.yaml"))
        .arg(root.join("deploy/kustomization.yaml"))
        .arg(root.join("deploy/app.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("in 1 file ") && stdout.contains("3 paths skipped"), "{stdout}");
}
