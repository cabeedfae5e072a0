//! Findings in generated input point at the source people edit: the Helm
//! template line (through `include` into `_pod.tpl`), or the Kustomize base
//! file named by the origin annotation, with paths relative to the
//! repository root, in every format.

mod common;

use common::*;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

const CHART_YAML: &str = "apiVersion: v2\nname: agent\nversion: 1.0.0\n";

/// A 24-line template whose pod spec comes from `_pod.tpl`, as in the issue
/// that asked for this: the finding is in the include, not in the template.
const DAEMONSET: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ .Release.Name }}-agent
  namespace: {{ .Release.Namespace }}
  labels:
    {{- toYaml .Values.labels | nindent 4 }}
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      {{- include "agent.pod" . | nindent 6 }}
"#;

const POD_TPL: &str = r#"{{/* The agent's pod spec, shared with the debug Deployment. */}}
{{- define "agent.pod" -}}
{{- if .Values.hostNetwork }}
hostNetwork: true
{{- end }}
serviceAccountName: {{ .Release.Name }}-agent
containers:
  - name: agent
    image: {{ .Values.image }}
{{- end }}
"#;

const RBAC: &str = r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}-agent
  namespace: {{ .Release.Namespace }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .Release.Name }}-agent
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .Release.Name }}-agent
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {{ .Release.Name }}-agent}
subjects:
  - kind: ServiceAccount
    name: {{ .Release.Name }}-agent
    namespace: {{ .Release.Namespace }}
"#;

/// What `helm template rel charts/agent -n mon` prints for that chart.
const RENDERED: &str = r#"---
# Source: agent/templates/rbac.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: rel-agent
  namespace: mon
---
# Source: agent/templates/rbac.yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: rel-agent
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch"]
---
# Source: agent/templates/rbac.yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: rel-agent
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rel-agent}
subjects:
  - kind: ServiceAccount
    name: rel-agent
    namespace: mon
---
# Source: agent/templates/daemonset.yaml
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: rel-agent
  namespace: mon
  labels:
    team: observability
    tier: node
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      serviceAccountName: rel-agent
      containers:
        - name: agent
          image: agent:1.0
"#;

/// A repository with the chart under `charts/`, and a `.git` so that it is the root.
fn repo(name: &str) -> std::path::PathBuf {
    let root = scratch(name);
    std::fs::create_dir_all(root.join(".git")).unwrap();
    let chart = root.join("charts/agent");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), CHART_YAML).unwrap();
    std::fs::write(chart.join("values.yaml"), "labels: {team: observability, tier: node}\nimage: agent:1.0\n").unwrap();
    std::fs::write(chart.join("templates/daemonset.yaml"), DAEMONSET).unwrap();
    std::fs::write(chart.join("templates/_pod.tpl"), POD_TPL).unwrap();
    std::fs::write(chart.join("templates/rbac.yaml"), RBAC).unwrap();
    root
}

fn lint_stdin(dir: &Path, args: &[&str], text: &str) -> Output {
    let mut child = apiload()
        .args(["lint", "--no-config"])
        .args(args)
        .arg("-")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn finding<'a>(v: &'a Value, rule: &str) -> &'a Value {
    v["diagnostics"].as_array().unwrap().iter().find(|d| d["rule"] == rule).unwrap_or_else(|| panic!("{rule} in {v}"))
}

fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1
}

/// Asserts AL101 is at `_pod.tpl`'s `serviceAccountName` line and its chain in rbac.yaml.
fn assert_at_templates(v: &Value, rendered: &str) {
    let d = finding(v, "AL101");
    let loc = &d["location"];
    assert_eq!(loc["file"], "charts/agent/templates/_pod.tpl", "{d}");
    assert_eq!(loc["line"].as_u64(), Some(line_of(POD_TPL, "serviceAccountName")), "{d}");
    assert_eq!(loc["column"], 21, "{d}");
    assert_eq!(loc["attribution"], "template");
    assert_eq!(loc["input_line"].as_u64(), Some(line_of(rendered, "serviceAccountName")));
    let verbs =
        d["related"].as_array().unwrap().iter().find(|r| r["message"].as_str().unwrap().contains("grants")).unwrap();
    assert_eq!(verbs["file"], "charts/agent/templates/rbac.yaml");
    assert_eq!(verbs["line"].as_u64(), Some(line_of(RBAC, "verbs")));
}

#[test]
fn helm_output_on_stdin_points_at_the_template_and_the_include() {
    let root = repo("origin-helm");
    // Run from a subfolder: paths are still relative to the repository root.
    let sub = root.join("charts");
    let out = lint_stdin(&sub, &["--format", "json"], RENDERED);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_at_templates(&v, RENDERED);
    // The same place in the other formats.
    let line = line_of(POD_TPL, "serviceAccountName");
    let gh = String::from_utf8(lint_stdin(&sub, &["--format", "github"], RENDERED).stdout).unwrap();
    assert!(gh.contains(&format!("::error file=charts/agent/templates/_pod.tpl,line={line},")), "{gh}");
    let sarif: Value = serde_json::from_slice(&lint_stdin(&sub, &["--format", "sarif"], RENDERED).stdout).unwrap();
    let r = &sarif["runs"][0]["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == "AL101").unwrap()["locations"]
        [0];
    assert_eq!(r["physicalLocation"]["artifactLocation"]["uri"], "charts/agent/templates/_pod.tpl");
    assert_eq!(r["physicalLocation"]["region"]["startLine"].as_u64(), Some(line));
    let human = String::from_utf8(lint_stdin(&sub, &["--color", "never"], RENDERED).stdout).unwrap();
    assert!(human.contains(&format!("<stdin> (charts/agent/templates/_pod.tpl:{line}:21)")), "{human}");
    // A line printed by an action is at the action's line.
    let labelled = RENDERED.replace("    tier: node\n", "    tier: node\n    extra: \"x\"\n");
    let out = lint_stdin(&sub, &["--format", "json"], &labelled);
    assert_at_templates(&serde_json::from_slice(&out.stdout).unwrap(), &labelled);
}

#[test]
fn helm_output_of_a_chart_not_on_disk_keeps_the_rendered_line_and_says_so() {
    let dir = scratch("origin-helm-missing");
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    let out = lint_stdin(&dir, &["--format", "json"], RENDERED);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let loc = &finding(&v, "AL101")["location"];
    assert_eq!(loc["file"], "agent/templates/daemonset.yaml");
    assert_eq!(loc["attribution"], "rendered");
    let mark = line_of(RENDERED, "# Source: agent/templates/daemonset.yaml");
    assert_eq!(loc["line"].as_u64(), Some(line_of(RENDERED, "serviceAccountName") - mark));
    let human = String::from_utf8(lint_stdin(&dir, &["--color", "never"], RENDERED).stdout).unwrap();
    let rendered_line = line_of(RENDERED, "serviceAccountName") - mark;
    assert!(human.contains(&format!("line {rendered_line} of the rendered document")), "{human}");
}

/// `--stdin-filename` names the chart when it is not under the root.
#[test]
fn stdin_filename_names_the_chart() {
    let root = repo("origin-helm-hint");
    let elsewhere = scratch("origin-helm-elsewhere");
    std::fs::create_dir_all(elsewhere.join(".git")).unwrap();
    let chart = root.join("charts/agent").display().to_string();
    let out = lint_stdin(&elsewhere, &["--format", "json", "--stdin-filename", &chart], RENDERED);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let loc = &finding(&v, "AL101")["location"];
    assert_eq!(loc["file"], format!("{chart}/templates/_pod.tpl"));
    assert_eq!(loc["attribution"], "template");
}

/// `--helm` renders the chart itself (helm-python-sdk here) and lints it in
/// place of its files: the same findings at the same template lines.
#[test]
fn helm_flag_renders_the_chart_and_attributes_to_templates() {
    let helm_on_path =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("helm").is_file()));
    if !tool("the Python package helm-python-sdk (or helm)", helm_on_path || python_has("helm_python")) {
        return;
    }
    let root = repo("origin-helm-flag");
    let out = apiload()
        .args(["lint", "--no-config", "--format", "json", "--helm", "-n", "mon", "--release-name", "rel", "charts"])
        .current_dir(&root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = finding(&v, "AL101");
    assert_eq!(d["location"]["file"], "charts/agent/templates/_pod.tpl", "{d}");
    assert_eq!(d["location"]["line"].as_u64(), Some(line_of(POD_TPL, "serviceAccountName")));
    assert_eq!(d["workload"]["name"], "rel-agent");
    // The chart's own files (Chart.yaml, values.yaml, templates) are not linted as manifests.
    assert!(!v["diagnostics"].as_array().unwrap().iter().any(|d| d["rule"] == "AL001"), "{v}");
    // Values files apply, later ones winning: on the host network the agent
    // knows its node, so its pod watch is one it could scope (AL107, a
    // warning) instead of an unscoped fan-out (AL101).
    std::fs::write(root.join("prod.yaml"), "hostNetwork: true\n").unwrap();
    let out = apiload()
        .args(["lint", "--no-config", "--format", "json", "--helm", "-f", "prod.yaml", "charts/agent"])
        .current_dir(&root)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = v["diagnostics"].as_array().unwrap().iter().filter_map(|d| d["rule"].as_str()).collect();
    assert!(rules.contains(&"AL107") && !rules.contains(&"AL101"), "{rules:?}");
    // A chart that does not render: an error naming it; exit 2.
    std::fs::write(root.join("charts/agent/templates/broken.yaml"), "{{ include \"nope\" . }}\n").unwrap();
    let out = apiload().args(["lint", "--no-config", "--helm", "charts"]).current_dir(&root).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("charts/agent"), "{}", String::from_utf8_lossy(&out.stderr));
}

const BASE_DS: &str = "# The node agent.\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: mon\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      serviceAccountName: agent\n      containers: [{name: agent, image: agent:1.0}]\n";
const BASE_RBAC: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: agent\nrules:\n- apiGroups: [\"\"]\n  resources: [\"pods\"]\n  verbs: [\"list\", \"watch\"]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: agent\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agent}\nsubjects: [{kind: ServiceAccount, name: agent, namespace: mon}]\n";

/// What `kustomize build overlays/prod` prints with `buildMetadata: [originAnnotations]`.
const KUSTOMIZED: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  annotations:
    config.kubernetes.io/origin: |
      path: ../../base/rbac.yaml
  name: prod-agent
rules:
- apiGroups:
  - ""
  resources:
  - pods
  verbs:
  - list
  - watch
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  annotations:
    config.kubernetes.io/origin: |
      path: ../../base/rbac.yaml
  name: prod-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: prod-agent
subjects:
- kind: ServiceAccount
  name: prod-agent
  namespace: mon
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  annotations:
    config.kubernetes.io/origin: |
      path: ../../base/ds.yaml
  name: prod-agent
  namespace: mon
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      containers:
      - image: agent:1.0
        name: agent
      serviceAccountName: prod-agent
"#;

#[test]
fn kustomize_origins_point_at_the_base_files() {
    let root = scratch("origin-kustomize");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("base")).unwrap();
    std::fs::create_dir_all(root.join("overlays/prod")).unwrap();
    std::fs::write(root.join("base/ds.yaml"), BASE_DS).unwrap();
    std::fs::write(root.join("base/rbac.yaml"), BASE_RBAC).unwrap();
    std::fs::write(root.join("base/kustomization.yaml"), "resources: [ds.yaml, rbac.yaml]\n").unwrap();
    std::fs::write(
        root.join("overlays/prod/kustomization.yaml"),
        "resources: [../../base]\nnamePrefix: prod-\nbuildMetadata: [originAnnotations]\n",
    )
    .unwrap();
    for args in [vec!["--format", "json", "--stdin-filename", "overlays/prod"], vec!["--format", "json"]] {
        let out = lint_stdin(&root, &args, KUSTOMIZED);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let d = finding(&v, "AL101");
        assert_eq!(d["location"]["file"], "base/ds.yaml", "{args:?}: {d}");
        assert_eq!(d["location"]["line"].as_u64(), Some(line_of(BASE_DS, "serviceAccountName")));
        assert_eq!(d["location"]["column"], 27);
        assert_eq!(d["location"]["attribution"], "origin");
        let verbs = d["related"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["message"].as_str().unwrap().contains("grants"))
            .unwrap();
        assert_eq!(verbs["file"], "base/rbac.yaml");
        assert_eq!(verbs["line"].as_u64(), Some(line_of(BASE_RBAC, "verbs")));
    }
    // Without origin annotations, stdin stays stdin.
    let plain = KUSTOMIZED.replace("config.kubernetes.io/origin", "example.com/note");
    let v: Value = serde_json::from_slice(&lint_stdin(&root, &["--format", "json"], &plain).stdout).unwrap();
    assert_eq!(finding(&v, "AL101")["location"]["file"], "<stdin>");
}
