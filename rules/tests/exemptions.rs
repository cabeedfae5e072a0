//! Exemptions remove exactly the findings they cover, and say why.

mod common;

use common::*;

const AGENT: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: telemetry-agent
  namespace: monitoring
  labels: {team: observability}
  ANNOTATIONS
spec:
  selector:
    matchLabels: {app: telemetry-agent}
  template:
    metadata:
      labels: {app: telemetry-agent}
      TEMPLATE_ANNOTATIONS
    spec:
      serviceAccountName: telemetry-agent
      containers:
      - {name: agent, image: registry.example.com/telemetry-agent:2.1.0}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: telemetry-agent
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: ServiceAccount, name: telemetry-agent, namespace: monitoring}
"#;

fn manifest(annotations: &str, template: &str) -> String {
    AGENT.replace("TEMPLATE_ANNOTATIONS", template).replace("ANNOTATIONS", annotations)
}

fn rules_of(report: &apiload_rules::Report) -> Vec<&'static str> {
    let mut r: Vec<_> = report.diagnostics.iter().map(|d| d.rule.id).collect();
    r.sort();
    r
}

fn run(manifest: &str, settings: Option<&str>) -> apiload_rules::Report {
    analyze_with_settings(&[("m.yaml", manifest)], settings).1
}

#[test]
fn without_exemptions_the_agent_is_reported() {
    let r = run(&manifest("{}", "{}").replace("  {}\n", "\n"), None);
    assert!(rules_of(&r).contains(&"AL101"), "{:?}", rules_of(&r));
}

#[test]
fn config_exemption_by_label_selector() {
    let settings = "exemptions:\n- match: {kind: DaemonSet, labelSelector: {matchLabels: {team: observability}}}\n  rules: [per-node-cluster-watch]\n  reason: migrating to the node-scoped agent (OBS-42)\n";
    let r = run(&manifest("annotations: {}", "annotations: {}"), Some(settings));
    assert!(!rules_of(&r).contains(&"AL101"), "{:?}", rules_of(&r));
    let s = r.suppressed.iter().find(|s| s.diagnostic.rule.id == "AL101").expect("recorded as suppressed");
    assert_eq!(s.reason, "migrating to the node-scoped agent (OBS-42)");
    // Other rules still report.
    assert!(rules_of(&r).contains(&"AL401"));
    // A selector that does not match exempts nothing.
    let other = settings.replace("team: observability", "team: payments");
    assert!(rules_of(&run(&manifest("annotations: {}", "annotations: {}"), Some(&other))).contains(&"AL101"));
}

#[test]
fn annotation_exemption_on_the_workload_and_on_its_pod_template() {
    let ann = "annotations: {apiload.dev/exempt: \"AL101\", apiload.dev/exempt-reason: \"accepted (PLAT-7)\"}";
    for (top, tpl) in [(ann, "annotations: {}"), ("annotations: {}", ann)] {
        let r = run(&manifest(top, tpl), None);
        assert!(!rules_of(&r).contains(&"AL101"), "{top} / {tpl}: {:?}", rules_of(&r));
        assert_eq!(r.suppressed.iter().filter(|s| s.diagnostic.rule.id == "AL101").count(), 1);
    }
}

#[test]
fn annotation_exemptions_follow_the_namespace_policy() {
    let ann = "annotations: {apiload.dev/exempt: \"*\", apiload.dev/exempt-reason: \"accepted\"}";
    // Namespaces are globs, as the chart's example `team-*` expects.
    let r = run(&manifest(ann, "annotations: {}"), Some("annotationExemptions:\n  namespaces: [\"monitor*\"]\n"));
    assert!(!rules_of(&r).contains(&"AL101"), "{:?}", rules_of(&r));
    let r = run(&manifest(ann, "annotations: {}"), Some("annotationExemptions:\n  namespaces: [\"team-*\"]\n"));
    assert!(rules_of(&r).contains(&"AL101"), "{:?}", rules_of(&r));
    let r = run(&manifest(ann, "annotations: {}"), Some("annotationExemptions:\n  namespaces: [platform]\n"));
    assert!(rules_of(&r).contains(&"AL101"));
    assert!(rules_of(&r).contains(&"AL006"));
    let r = run(&manifest(ann, "annotations: {}"), Some("annotationExemptions:\n  namespaces: [monitoring]\n"));
    assert!(!rules_of(&r).iter().any(|r| r.starts_with("AL1") || *r == "AL006"), "{:?}", rules_of(&r));
}

#[test]
fn an_expired_exemption_stops_applying_and_is_reported() {
    let settings =
        "exemptions:\n- match: {name: telemetry-agent}\n  rules: [\"*\"]\n  reason: temporary\n  expires: 2025-12-31\n";
    let r = run(&manifest("annotations: {}", "annotations: {}"), Some(settings));
    assert!(rules_of(&r).contains(&"AL101"));
    assert!(rules_of(&r).contains(&"AL005"));
    let valid = settings.replace("2025-12-31", "2026-01-01");
    let r = run(&manifest("annotations: {}", "annotations: {}"), Some(&valid));
    assert!(!rules_of(&r).contains(&"AL101") && !rules_of(&r).contains(&"AL005"), "{:?}", rules_of(&r));
}

#[test]
fn rule_settings_turn_rules_off_and_change_severity() {
    let r = run(&manifest("annotations: {}", "annotations: {}"), Some("rules:\n  AL401: off\n  AL101: info\n"));
    assert!(!rules_of(&r).contains(&"AL401"));
    let d = r.diagnostics.iter().find(|d| d.rule.id == "AL101").unwrap();
    assert_eq!(d.severity, apiload_rules::Severity::Info);
}
