//! `apiload audit` at the command line, where no cluster is needed: bad
//! configuration is one clear error and exit status 2, and `lint` refuses
//! the format that only describes a cluster. The audit against a real API
//! server is in the end-to-end suite (e2e/src/checks/cluster_audit.rs).

mod common;

use common::{apiload, scratch};

fn run(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = apiload();
    cmd.args(args).env_remove("KUBECONFIG").env_remove("KUBERNETES_SERVICE_HOST");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn one_error(stderr: &str) -> &str {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0]
}

#[test]
fn a_missing_kubeconfig_is_named() {
    let dir = scratch("audit-missing-kubeconfig");
    let path = dir.join("absent.yaml");
    let (code, stdout, stderr) = run(&["audit", "--no-config", "--kubeconfig", path.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(one_error(&stderr).starts_with(&format!("error: {}: ", path.display())), "{stderr}");
}

#[test]
fn no_kubeconfig_and_no_pod_says_where_it_looked() {
    let home = scratch("audit-empty-home");
    // An empty $KUBECONFIG counts as unset, as for kubectl.
    let (code, _, stderr) = run(&["audit", "--no-config"], &[("HOME", home.to_str().unwrap()), ("KUBECONFIG", "")]);
    assert_eq!(code, 2);
    let e = one_error(&stderr);
    assert!(
        e.contains("no kubeconfig ($KUBECONFIG, ~/.kube/config; or --kubeconfig) and no in-cluster configuration"),
        "{e}"
    );
    let (code, _, stderr) = run(&["audit", "--no-config", "--context", "prod"], &[("HOME", home.to_str().unwrap())]);
    assert_eq!(code, 2);
    assert!(
        one_error(&stderr).contains("--context names a kubeconfig context, and there is no kubeconfig"),
        "{stderr}"
    );
}

#[test]
fn a_context_that_is_not_there_lists_those_that_are() {
    let dir = scratch("audit-context");
    let path = dir.join("config");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: staging\n  context: {cluster: c, user: u}\ncurrent-context: staging\n",
    )
    .unwrap();
    let (code, _, stderr) =
        run(&["audit", "--no-config", "--kubeconfig", path.to_str().unwrap(), "--context", "prod"], &[]);
    assert_eq!(code, 2);
    assert_eq!(one_error(&stderr), format!("error: {} (contexts): no context `prod`; it has staging", path.display()));
}

#[test]
fn numbers_are_checked_before_connecting() {
    for (flag, value, says) in [
        ("--kube-api-qps", "0", "--kube-api-qps and --kube-api-burst must be positive"),
        ("--request-timeout", "1h", "the unit is ms, s or m"),
    ] {
        let (code, _, stderr) = run(&["audit", "--no-config", "--kubeconfig", "/nonexistent", flag, value], &[]);
        assert_eq!(code, 2, "{flag} {value}: {stderr}");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
}

#[test]
fn lint_refuses_policy_reports() {
    let dir = scratch("audit-lint-policyreport");
    let file = dir.join("a.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n").unwrap();
    let (code, stdout, stderr) = run(&["lint", "--no-config", "--format", "policyreport", file.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert_eq!(
        one_error(&stderr),
        "error: --format policyreport is for `apiload audit`: PolicyReports describe objects in a cluster"
    );
}
