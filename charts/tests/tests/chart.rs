//! `charts/apiload-webhook` rendered for real (Helm v4, through render.py) for
//! every values combination, then checked: Helm's lint, every object against
//! the Kubernetes API types, `apiload lint` on the chart's own output, and the
//! safety defaults that keep the webhook from ever locking a cluster out.

use apiload_chart_tests::{Case, Rendered, value};
use apiload_rules::exempt::ExemptionPolicy;
use apiload_rules::{Input, Options, Sources};
use k8s_openapi::api::admissionregistration::v1::{ValidatingWebhook, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// The chart rendered once for all the tests of this file.
fn rendered() -> &'static Rendered {
    static RENDERED: OnceLock<Rendered> = OnceLock::new();
    RENDERED
        .get_or_init(|| apiload_chart_tests::render(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chart")))
}

/// The values combinations the issue asks for: cert-manager on and off, each mode.
const MATRIX: [&str; 6] = [
    "cert-manager-off-enforce",
    "cert-manager-off-warn",
    "cert-manager-off-audit",
    "cert-manager-on-enforce",
    "cert-manager-on-warn",
    "cert-manager-on-audit",
];

// --- reading the rendered objects ------------------------------------------------------------

/// Every document of a case, as JSON (loaded by apiload's own YAML loader).
fn objects(case: &Case) -> Vec<Value> {
    apiload_yaml::load_stream(case.manifest.as_bytes(), &Default::default())
        .into_iter()
        .map(|doc| match doc {
            Ok(doc) => apiload_rules::profile::context::to_json(&doc.root),
            Err(e) => panic!("{}: a rendered document does not load: {}", case.name, e.message),
        })
        .collect()
}

fn kind_of(object: &Value) -> (&str, &str) {
    (object["apiVersion"].as_str().unwrap_or(""), object["kind"].as_str().unwrap_or(""))
}

fn all_of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<T: DeserializeOwned>(case: &Case, objects: &[Value], kind: &str) -> T {
    let found = all_of_kind(objects, kind);
    assert_eq!(found.len(), 1, "{}: expected one {kind}, found {}", case.name, found.len());
    serde_json::from_value(found[0].clone()).unwrap_or_else(|e| panic!("{}: {kind}: {e}", case.name))
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

// --- deserializing into the Kubernetes types -------------------------------------------------

/// Deserializes into `T` and serializes back: what the typed round trip lost
/// or changed is a field Kubernetes does not know or a value of the wrong type.
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut differences = Vec::new();
    diff("", object, &back, &mut differences);
    if differences.is_empty() { Ok(()) } else { Err(differences.join("; ")) }
}

fn diff(path: &str, original: &Value, back: &Value, out: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) => diff(&format!("{path}.{key}"), value, other, out),
                    None => out.push(format!("{path}.{key} is not a field of the type")),
                }
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}.{key} appeared"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} became {b}")),
    }
}

/// A Go duration (`2160h`, `4500ms`, `1h30m`).
fn is_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "h", "m", "s"].into_iter().find(|u| rest.starts_with(u));
        let Some(unit) = unit else { return false };
        rest = &rest[unit.len()..];
    }
    true
}

fn keys_within(object: &Value, allowed: &[&str]) -> Result<(), String> {
    let map = object.as_object().ok_or_else(|| format!("{object} is not a mapping"))?;
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unexpected field {k} (known: {})", allowed.join(", "))),
        None => Ok(()),
    }
}

fn string_at<'a>(object: &'a Value, pointer: &str) -> Result<&'a str, String> {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{pointer} missing"))
}

/// cert-manager.io/v1 and monitoring.coreos.com/v1 are CRDs, with no type in
/// k8s-openapi: their fields are checked against the CRDs' schemas by hand.
fn structural(object: &Value) -> Result<(), String> {
    keys_within(object, &["apiVersion", "kind", "metadata", "spec"])?;
    keys_within(&object["metadata"], &["name", "namespace", "labels", "annotations"])?;
    string_at(object, "/metadata/name")?;
    string_at(object, "/metadata/namespace")?;
    let spec = &object["spec"];
    match kind_of(object) {
        ("cert-manager.io/v1", "Issuer") => {
            keys_within(spec, &["selfSigned", "ca"])?;
            match (spec.get("selfSigned"), spec.get("ca")) {
                (Some(s), None) if s == &json!({}) => Ok(()),
                (None, Some(ca)) => keys_within(ca, &["secretName"]).and(string_at(ca, "/secretName").map(drop)),
                _ => Err("an Issuer needs exactly one of selfSigned and ca".into()),
            }
        }
        ("cert-manager.io/v1", "Certificate") => {
            keys_within(
                spec,
                &[
                    "secretName",
                    "commonName",
                    "dnsNames",
                    "duration",
                    "renewBefore",
                    "usages",
                    "privateKey",
                    "issuerRef",
                    "isCA",
                ],
            )?;
            string_at(spec, "/secretName")?;
            keys_within(&spec["issuerRef"], &["name", "kind", "group"])?;
            string_at(spec, "/issuerRef/name")?;
            if !["Issuer", "ClusterIssuer"].contains(&string_at(spec, "/issuerRef/kind")?) {
                return Err(format!("issuerRef.kind {}", spec["issuerRef"]["kind"]));
            }
            string_at(spec, "/issuerRef/group")?;
            for key in ["duration", "renewBefore"] {
                if let Some(d) = spec.get(key)
                    && !d.as_str().is_some_and(is_duration)
                {
                    return Err(format!("{key} {d} is not a duration"));
                }
            }
            if let Some(names) = spec.get("dnsNames")
                && !names.as_array().is_some_and(|n| !n.is_empty() && n.iter().all(Value::is_string))
            {
                return Err("dnsNames must be a list of names".into());
            }
            if let Some(usages) = spec.get("usages") {
                let known = ["server auth", "client auth", "digital signature", "key encipherment", "cert sign"];
                if !usages.as_array().is_some_and(|u| u.iter().all(|x| x.as_str().is_some_and(|x| known.contains(&x))))
                {
                    return Err(format!("usages {usages}"));
                }
            }
            if let Some(key) = spec.get("privateKey") {
                keys_within(key, &["algorithm", "size", "rotationPolicy"])?;
                if !["RSA", "ECDSA", "Ed25519"].contains(&string_at(key, "/algorithm")?) {
                    return Err("privateKey.algorithm".into());
                }
            }
            if spec.get("isCA").is_some_and(|b| !b.is_boolean()) {
                return Err("isCA must be a boolean".into());
            }
            Ok(())
        }
        ("monitoring.coreos.com/v1", "ServiceMonitor") => {
            keys_within(spec, &["selector", "namespaceSelector", "endpoints"])?;
            serde_json::from_value::<LabelSelector>(spec["selector"].clone()).map_err(|e| e.to_string())?;
            keys_within(&spec["namespaceSelector"], &["matchNames", "any"])?;
            let endpoints = spec["endpoints"].as_array().filter(|e| !e.is_empty()).ok_or("endpoints")?;
            for e in endpoints {
                keys_within(e, &["port", "path", "scheme", "interval"])?;
                string_at(e, "/port")?;
                if !e["interval"].as_str().is_some_and(is_duration) {
                    return Err("endpoint interval".into());
                }
            }
            Ok(())
        }
        (api, kind) => Err(format!("no check for {api} {kind}")),
    }
}

fn check_object(object: &Value) -> Result<(), String> {
    use k8s_openapi::api;
    match kind_of(object) {
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(object),
        ("v1", "Service") => round_trip::<Service>(object),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(object),
        ("v1", "Secret") => round_trip::<Secret>(object),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(object),
        ("policy/v1", "PodDisruptionBudget") => round_trip::<PodDisruptionBudget>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => round_trip::<ClusterRoleBinding>(object),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
            round_trip::<ValidatingWebhookConfiguration>(object)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<api::rbac::v1::Role>(object),
        ("networking.k8s.io/v1", "NetworkPolicy") => round_trip::<api::networking::v1::NetworkPolicy>(object),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<api::rbac::v1::RoleBinding>(object),
        ("cert-manager.io/v1" | "monitoring.coreos.com/v1", _) => structural(object),
        (api, kind) => Err(format!("the chart renders {api} {kind}, which this test does not know")),
    }
}

// --- label selectors as the API server evaluates them ----------------------------------------

fn selects(selector: &LabelSelector, labels: &BTreeMap<&str, &str>) -> bool {
    let labels_match = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k.as_str()) == Some(&v.as_str()));
    let expressions_match = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(e.key.as_str());
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
            "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            op => panic!("unknown selector operator {op}"),
        }
    });
    labels_match && expressions_match
}

fn namespace_labels<'a>(name: &'a str, extra: &[(&'a str, &'a str)]) -> BTreeMap<&'a str, &'a str> {
    let mut labels = BTreeMap::from([("kubernetes.io/metadata.name", name)]);
    labels.extend(extra.iter().copied());
    labels
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("a pod spec")
}

fn pod_labels(deployment: &Deployment) -> BTreeMap<&str, &str> {
    let template = &deployment.spec.as_ref().expect("spec").template;
    template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .expect("pod labels")
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn container(deployment: &Deployment) -> &Container {
    let containers = &pod_spec(deployment).containers;
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

/// `--flag=value` of the container's args.
fn flag<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    container.args.iter().flatten().find_map(|a| a.strip_prefix(prefix.as_str()))
}

fn port_of(flag_value: &str) -> i32 {
    flag_value.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port")
}

fn named_port(container: &Container, name: &str) -> i32 {
    container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.container_port)
        .unwrap_or_else(|| panic!("no container port {name}"))
}

fn webhook(vwc: &ValidatingWebhookConfiguration) -> &ValidatingWebhook {
    let webhooks = vwc.webhooks.as_deref().unwrap_or_default();
    assert_eq!(webhooks.len(), 1, "one webhook");
    &webhooks[0]
}

// --- the tests -------------------------------------------------------------------------------

#[test]
fn every_values_combination_is_rendered() {
    let r = rendered();
    let names: BTreeSet<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
    for name in MATRIX.iter().chain(&["defaults", "everything"]) {
        assert!(names.contains(name), "case {name} not rendered; rendered: {names:?}");
    }
    for case in &r.cases {
        assert!(!objects(case).is_empty(), "{} rendered nothing", case.name);
    }
    assert_eq!(r.index["helm_python"], apiload_chart_tests::HELM_PYTHON_SDK, "the pinned helm-python-sdk");
    assert!(r.index["helm_sdk"].as_str().is_some_and(|v| v.starts_with("v4.")), "Helm v4: {}", r.index["helm_sdk"]);
}

#[test]
fn helm_lint_passes_strict_for_every_values_combination() {
    let r = rendered();
    let mut reports = vec![("default values".to_string(), &r.index["lint_defaults"])];
    reports.extend(r.cases.iter().map(|c| (c.name.clone(), &c.lint)));
    for (name, lint) in reports {
        assert_eq!(lint["total_charts_linted"], 1, "{name}: {lint}");
        assert_eq!(lint["messages"], json!([]), "{name}: helm lint --strict: {lint}");
        assert_eq!(lint["errors"], json!([]), "{name}: helm lint --strict: {lint}");
    }
}

#[test]
fn every_rendered_object_deserializes_into_its_kubernetes_type() {
    let mut failures = Vec::new();
    let mut kinds = BTreeSet::new();
    for case in &rendered().cases {
        for object in objects(case) {
            kinds.insert(format!(
                "{} {}",
                object["apiVersion"].as_str().unwrap_or("?"),
                object["kind"].as_str().unwrap_or("?")
            ));
            if let Err(e) = check_object(&object) {
                failures.push(format!("{}: {} {}: {e}", case.name, object["kind"], name_of(&object)));
            }
        }
    }
    assert!(failures.is_empty(), "objects that are not valid Kubernetes objects:\n{}", failures.join("\n"));
    // Every kind the chart can render was seen by some case.
    for kind in [
        "v1 ServiceAccount",
        "v1 Service",
        "v1 ConfigMap",
        "v1 Secret",
        "apps/v1 Deployment",
        "policy/v1 PodDisruptionBudget",
        "rbac.authorization.k8s.io/v1 ClusterRole",
        "rbac.authorization.k8s.io/v1 ClusterRoleBinding",
        "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration",
        "networking.k8s.io/v1 NetworkPolicy",
        "cert-manager.io/v1 Issuer",
        "cert-manager.io/v1 Certificate",
        "monitoring.coreos.com/v1 ServiceMonitor",
    ] {
        assert!(kinds.contains(kind), "no case rendered {kind}: {kinds:?}");
    }
}

#[test]
fn the_round_trip_catches_a_field_kubernetes_does_not_know() {
    // The check above would let a misspelt field through if it only deserialized.
    let mut deployment = objects(rendered().case("defaults")).into_iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(check_object(&deployment), Ok(()));
    deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonroot"] = json!(true);
    let error = check_object(&deployment).unwrap_err();
    assert!(error.contains("runAsNonroot is not a field"), "{error}");
    let mut issuer = json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": "x", "namespace": "y"}, "spec": {"selfSigned": {}, "ca": {"secretName": "z"}}});
    assert!(structural(&issuer).is_err());
    issuer["spec"] = json!({"selfSigned": {}});
    assert_eq!(structural(&issuer), Ok(()));
}

fn lint(case: &Case, text: &str) -> Vec<String> {
    let mut sources = Sources::new();
    let id = sources.add(case.manifest_path.display().to_string(), text.as_bytes());
    let options = Options { default_namespace: case.namespace.clone(), ..Options::default() };
    let mut input = Input::new(options);
    input.set_exemptions(ExemptionPolicy { today: "2026-01-01".into(), report_unused: true, ..Default::default() });
    input.add_documents(id, apiload_yaml::load_stream(text.as_bytes(), &Default::default()));
    let report = input.analyze(&sources);
    report
        .diagnostics
        .iter()
        .map(|d| {
            let lc = sources.line_col(d.location);
            format!("{} {} {}:{}: {}", d.rule.id, d.severity, lc.line, lc.column, d.message)
        })
        .collect()
}

#[test]
fn apiload_lint_finds_nothing_in_the_charts_own_output() {
    // `apiload lint --fail-on info` with no configuration: not even an info.
    for case in &rendered().cases {
        let findings = lint(case, &case.manifest);
        assert!(findings.is_empty(), "{}: apiload lint on the chart's output:\n{}", case.name, findings.join("\n"));
    }
}

#[test]
fn apiload_lint_sees_the_webhooks_own_access() {
    // The clean result above is not for want of joining the chart's RBAC: the
    // same chart scaled to 60 replicas is a fan-out and is reported.
    let case = rendered().case("defaults");
    assert_eq!(case.manifest.matches("\n  replicas: 2\n").count(), 1);
    let scaled = case.manifest.replace("\n  replicas: 2\n", "\n  replicas: 60\n");
    let findings = lint(case, &scaled);
    assert!(
        findings.iter().any(|f| f.starts_with("AL101 ") && f.contains("apiload-apiload-webhook") && f.contains("60")),
        "{findings:#?}"
    );
}

#[test]
fn the_webhook_fails_open_with_a_short_timeout_by_default() {
    let r = rendered();
    for case in MATRIX.iter().chain(&["defaults"]).map(|n| r.case(n)) {
        let vwc: ValidatingWebhookConfiguration = one(case, &objects(case), "ValidatingWebhookConfiguration");
        let w = webhook(&vwc);
        assert_eq!(w.failure_policy.as_deref(), Some("Ignore"), "{}", case.name);
        assert_eq!(w.timeout_seconds, Some(3), "{}", case.name);
        assert_eq!(w.side_effects, "None", "{}", case.name);
        assert_eq!(w.admission_review_versions, ["v1"], "{}", case.name);
        assert_eq!(w.match_policy.as_deref(), Some("Equivalent"), "{}", case.name);
    }
    // And the values reach it when someone chooses otherwise.
    let case = r.case("everything");
    let vwc: ValidatingWebhookConfiguration = one(case, &objects(case), "ValidatingWebhookConfiguration");
    assert_eq!(webhook(&vwc).failure_policy.as_deref(), Some("Fail"));
    assert_eq!(webhook(&vwc).timeout_seconds, Some(5));
}

#[test]
fn the_webhook_never_reviews_kube_system_its_own_namespace_or_an_exempted_namespace() {
    for case in &rendered().cases {
        let vwc: ValidatingWebhookConfiguration = one(case, &objects(case), "ValidatingWebhookConfiguration");
        let w = webhook(&vwc);
        let ns = w.namespace_selector.as_ref().unwrap_or_else(|| panic!("{}: no namespaceSelector", case.name));
        let mut excluded = vec!["kube-system", case.namespace.as_str()];
        let extra: Vec<String> = value(&case.values, &["exemptNamespaces"])
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        excluded.extend(extra.iter().map(String::as_str));
        for name in excluded {
            assert!(!selects(ns, &namespace_labels(name, &[])), "{}: namespace {name} is reviewed", case.name);
        }
        // …and it does review everything else.
        for name in ["default", "team-a", "monitoring-2"] {
            assert!(selects(ns, &namespace_labels(name, &[])), "{}: namespace {name} is not reviewed", case.name);
        }
        // A namespace label exempts only when the admin's values list it.
        let opted_out = [("apiload.dev/webhook", "disabled")];
        let listed = value(&case.values, &["exemptNamespaceLabels", "apiload.dev/webhook"]).is_some();
        assert_eq!(!selects(ns, &namespace_labels("team-a", &opted_out)), listed, "{}", case.name);
        // Nothing on the object itself decides: whoever may edit a DaemonSet
        // must not be able to take it out of review with a label.
        assert_eq!(w.object_selector, None, "{}: an objectSelector", case.name);
        for object in objects(case) {
            assert!(
                object["metadata"]["labels"].get("apiload.dev/webhook").is_none(),
                "{}: {}",
                case.name,
                object["kind"]
            );
        }
    }
}

// --- matchConditions, evaluated as the API server does (CEL) ----------------------------------

/// A request as the API server hands it to matchConditions: `request` (the
/// AdmissionRequest's attributes), `object`, `oldObject`.
fn admission(kind: &str, operation: &str, name: &str, object: Value, old: Value) -> Value {
    json!({"request": {"kind": {"group": "", "version": "v1", "kind": kind}, "operation": operation,
                       "name": name, "namespace": "team-a", "userInfo": {"username": "someone"}},
           "object": object, "oldObject": old})
}

/// Whether the webhook is called: every condition true (an error counts as
/// not called, as with failurePolicy Ignore, and fails the test).
fn called(w: &ValidatingWebhook, input: &Value) -> bool {
    let conditions = w.match_conditions.as_deref().unwrap_or_default();
    let mut context = cel::Context::default();
    for var in ["request", "object", "oldObject"] {
        context.add_variable(var, input[var].clone()).unwrap();
    }
    conditions.iter().all(|c| {
        let program = cel::Program::compile(&c.expression).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        match program.execute(&context) {
            Ok(cel::Value::Bool(b)) => b,
            other => panic!("{}: {other:?} for {input}", c.name),
        }
    })
}

#[test]
fn match_conditions_skip_what_no_analysis_reads_and_nothing_else() {
    let owned = |owner: &str| json!({"metadata": {"name": "x", "ownerReferences": [{"kind": owner, "name": "o", "controller": true}]}});
    let cm = |data: Value, labels: Value| json!({"metadata": {"name": "c", "labels": labels}, "data": data});
    for case in &rendered().cases {
        let vwc: ValidatingWebhookConfiguration = one(case, &objects(case), "ValidatingWebhookConfiguration");
        let w = webhook(&vwc);
        let own_name = vwc.metadata.name.clone().unwrap();
        let skipped = [
            ("a Deployment's ReplicaSet", admission("ReplicaSet", "UPDATE", "x", owned("Deployment"), Value::Null)),
            ("a CronJob's Job", admission("Job", "CREATE", "x", owned("CronJob"), Value::Null)),
            (
                "a ConfigMap update that leaves the data",
                admission(
                    "ConfigMap",
                    "UPDATE",
                    "c",
                    cm(json!({"k": "v"}), json!({"new": "1"})),
                    cm(json!({"k": "v"}), json!({})),
                ),
            ),
            (
                "the webhook's own ClusterRole",
                admission("ClusterRole", "UPDATE", &own_name, json!({"metadata": {}}), Value::Null),
            ),
        ];
        for (what, input) in skipped {
            assert!(!called(w, &input), "{}: {what} is sent to the webhook", case.name);
        }
        let sent = [
            (
                "a ReplicaSet of its own",
                admission("ReplicaSet", "CREATE", "x", json!({"metadata": {"name": "x"}}), Value::Null),
            ),
            (
                "a ReplicaSet a non-controller owns",
                admission(
                    "ReplicaSet",
                    "UPDATE",
                    "x",
                    json!({"metadata": {"ownerReferences": [{"kind": "Deployment", "name": "o"}]}}),
                    Value::Null,
                ),
            ),
            ("a Job another controller owns", admission("Job", "CREATE", "x", owned("Workflow"), Value::Null)),
            (
                "a DaemonSet owned by a Deployment",
                admission("DaemonSet", "CREATE", "x", owned("Deployment"), Value::Null),
            ),
            (
                "a ConfigMap update that changes the data",
                admission(
                    "ConfigMap",
                    "UPDATE",
                    "c",
                    cm(json!({"k": "new"}), json!({})),
                    cm(json!({"k": "v"}), json!({})),
                ),
            ),
            (
                "a ConfigMap update that adds data",
                admission(
                    "ConfigMap",
                    "UPDATE",
                    "c",
                    cm(json!({"k": "v"}), json!({})),
                    json!({"metadata": {"name": "c"}}),
                ),
            ),
            ("a new ConfigMap", admission("ConfigMap", "CREATE", "c", cm(json!({}), json!({})), Value::Null)),
            ("another ClusterRole", admission("ClusterRole", "UPDATE", "view", json!({"metadata": {}}), Value::Null)),
            (
                "a labelled DaemonSet",
                admission(
                    "DaemonSet",
                    "CREATE",
                    "x",
                    json!({"metadata": {"labels": {"apiload.dev/webhook": "disabled"}}}),
                    Value::Null,
                ),
            ),
        ];
        for (what, input) in sent {
            assert!(called(w, &input), "{}: {what} is not sent to the webhook", case.name);
        }
    }
}

#[test]
fn the_webhook_reviews_exactly_the_kinds_it_understands_on_create_and_update() {
    // From the engine's analysed kinds, as the webhook takes them: the chart
    // cannot fall behind the engine (ReplicationControllers once did).
    let expected: BTreeSet<(String, String, String, String)> = apiload_webhook::kinds::reviewed()
        .flat_map(|k| {
            ["CREATE", "UPDATE"]
                .map(|op| (k.group.to_string(), k.version.to_string(), k.resource.to_string(), op.to_string()))
        })
        .collect();
    assert!(expected.iter().any(|(_, _, r, _)| r == "replicationcontrollers"));
    for case in &rendered().cases {
        let vwc: ValidatingWebhookConfiguration = one(case, &objects(case), "ValidatingWebhookConfiguration");
        let mut seen = BTreeSet::new();
        for rule in webhook(&vwc).rules.iter().flatten() {
            assert_eq!(rule.scope.as_deref(), Some("*"), "{}", case.name);
            for group in rule.api_groups.iter().flatten() {
                for version in rule.api_versions.iter().flatten() {
                    for resource in rule.resources.iter().flatten() {
                        for op in rule.operations.iter().flatten() {
                            assert!(
                                seen.insert((group.clone(), version.clone(), resource.clone(), op.clone())),
                                "{}: twice",
                                case.name
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(seen, expected, "{}: the webhook's rules", case.name);
    }
}

#[test]
fn the_webhook_points_at_its_service_over_https() {
    for case in &rendered().cases {
        let objects = objects(case);
        let vwc: ValidatingWebhookConfiguration = one(case, &objects, "ValidatingWebhookConfiguration");
        let service: Service = one(case, &objects, "Service");
        let deployment: Deployment = one(case, &objects, "Deployment");
        let target = webhook(&vwc).client_config.service.as_ref().expect("a service reference");
        assert_eq!(Some(&target.name), service.metadata.name.as_ref(), "{}", case.name);
        assert_eq!(target.namespace, case.namespace, "{}", case.name);
        assert_eq!(target.path.as_deref(), Some("/validate"), "{}", case.name);
        let spec = service.spec.as_ref().unwrap();
        let selector: BTreeMap<&str, &str> =
            spec.selector.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let labels = pod_labels(&deployment);
        assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)), "{}: the Service selects the pods", case.name);
        let c = container(&deployment);
        let port = |name: &str| {
            spec.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{}: no Service port {name}", case.name))
        };
        let https = port("https");
        assert_eq!(Some(https.port), target.port, "{}", case.name);
        assert_eq!(https.target_port, Some(IntOrString::String("https".into())), "{}", case.name);
        assert_eq!(named_port(c, "https"), port_of(flag(c, "listen").unwrap()), "{}", case.name);
        let metrics = port("metrics");
        assert_eq!(metrics.target_port, Some(IntOrString::String("metrics".into())), "{}", case.name);
        assert_eq!(named_port(c, "metrics"), port_of(flag(c, "metrics-listen").unwrap()), "{}", case.name);
    }
}

#[test]
fn the_deployment_is_highly_available_and_hardened() {
    for case in &rendered().cases {
        let objects = objects(case);
        let deployment: Deployment = one(case, &objects, "Deployment");
        let spec = deployment.spec.as_ref().unwrap();
        let replicas = value(&case.values, &["replicaCount"]).and_then(Value::as_i64).unwrap_or(2);
        assert_eq!(spec.replicas, Some(replicas as i32), "{}", case.name);
        let rolling = spec.strategy.as_ref().and_then(|s| s.rolling_update.as_ref()).expect("a rolling update");
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)), "{}: a rollout keeps every replica", case.name);
        let labels = pod_labels(&deployment);
        assert!(selects(&spec.selector, &labels), "{}", case.name);

        // Disruption budget, on the pods.
        let pdb: PodDisruptionBudget = one(case, &objects, "PodDisruptionBudget");
        let pdb_spec = pdb.spec.as_ref().unwrap();
        assert!(selects(pdb_spec.selector.as_ref().unwrap(), &labels), "{}", case.name);
        assert_eq!(pdb_spec.max_unavailable, Some(IntOrString::Int(1)), "{}", case.name);

        let pod = pod_spec(&deployment);
        let spread = pod.topology_spread_constraints.as_deref().unwrap_or_default();
        assert!(spread.iter().any(|t| t.topology_key == "kubernetes.io/hostname"), "{}: spread over nodes", case.name);
        for t in spread {
            assert!(selects(t.label_selector.as_ref().unwrap(), &labels), "{}: the spread counts the pods", case.name);
        }

        // Non-root, read-only, no capability, RuntimeDefault seccomp.
        let psc = pod.security_context.as_ref().expect("a pod securityContext");
        assert_eq!(psc.run_as_non_root, Some(true), "{}", case.name);
        assert_eq!(psc.run_as_user, Some(65532), "{}", case.name);
        assert_eq!(psc.run_as_group, Some(65532), "{}", case.name);
        assert_eq!(psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()), Some("RuntimeDefault"), "{}", case.name);
        let c = container(&deployment);
        let csc = c.security_context.as_ref().expect("a container securityContext");
        assert_eq!(csc.run_as_non_root, Some(true), "{}", case.name);
        assert_eq!(csc.allow_privilege_escalation, Some(false), "{}", case.name);
        assert_eq!(csc.read_only_root_filesystem, Some(true), "{}", case.name);
        assert_eq!(csc.privileged, Some(false), "{}", case.name);
        let caps = csc.capabilities.as_ref().expect("capabilities");
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]), "{}", case.name);
        assert_eq!(caps.add, None, "{}", case.name);
        assert_eq!(csc.seccomp_profile.as_ref().map(|s| s.type_.as_str()), Some("RuntimeDefault"), "{}", case.name);
        assert_eq!(pod.host_network, None, "{}", case.name);

        // Requests and limits for both CPU and memory.
        let resources = c.resources.as_ref().expect("resources");
        for (what, list) in [("requests", &resources.requests), ("limits", &resources.limits)] {
            let list = list.as_ref().unwrap_or_else(|| panic!("{}: no {what}", case.name));
            assert!(list.contains_key("cpu") && list.contains_key("memory"), "{}: {what} {list:?}", case.name);
        }

        // Probes on the plain-HTTP port: liveness /healthz, readiness /readyz (caches synced).
        for (probe, path) in [(&c.liveness_probe, "/healthz"), (&c.readiness_probe, "/readyz")] {
            let get = probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .unwrap_or_else(|| panic!("{}: no {path} probe", case.name));
            assert_eq!(get.path.as_deref(), Some(path), "{}", case.name);
            assert_eq!(get.port, IntOrString::String("metrics".into()), "{}", case.name);
            assert_eq!(get.scheme, None, "{}: HTTP", case.name);
        }
    }
}

#[test]
fn the_container_runs_the_webhook_with_the_contracts_flags() {
    let app_version = "0.1.0";
    for case in &rendered().cases {
        let objects = objects(case);
        let deployment: Deployment = one(case, &objects, "Deployment");
        let c = container(&deployment);
        assert_eq!(c.command.as_deref(), Some(&["/usr/local/bin/apiload-webhook".to_string()][..]), "{}", case.name);
        let image = c.image.as_deref().unwrap();
        match value(&case.values, &["image", "digest"]) {
            Some(digest) => assert!(image.ends_with(&format!("@{}", digest.as_str().unwrap())), "{}", case.name),
            None => assert_eq!(image, format!("ghcr.io/apiload/apiload-webhook:{app_version}"), "{}", case.name),
        }
        let mode = value(&case.values, &["mode"]).and_then(Value::as_str).unwrap_or("warn");
        assert_eq!(flag(c, "mode"), Some(mode), "{}", case.name);
        assert_eq!(flag(c, "tls-cert-file"), Some("/etc/apiload/tls/tls.crt"), "{}", case.name);
        assert_eq!(flag(c, "tls-private-key-file"), Some("/etc/apiload/tls/tls.key"), "{}", case.name);
        assert_eq!(flag(c, "listen"), Some("0.0.0.0:8443"), "{}", case.name);
        assert_eq!(flag(c, "metrics-listen"), Some("0.0.0.0:8080"), "{}", case.name);
        assert_eq!(flag(c, "config"), Some("/etc/apiload/config/config.yaml"), "{}", case.name);
        let qps = value(&case.values, &["kubeAPI", "qps"]).map_or("5".into(), |v| v.to_string());
        assert_eq!(flag(c, "kube-api-qps"), Some(qps.as_str()), "{}", case.name);
        let burst = value(&case.values, &["kubeAPI", "burst"]).map_or("10".into(), |v| v.to_string());
        assert_eq!(flag(c, "kube-api-burst"), Some(burst.as_str()), "{}", case.name);
        // The webhook answers before the API server stops waiting.
        let timeout = value(&case.values, &["requestTimeout"]).and_then(Value::as_str).unwrap_or("2s");
        assert_eq!(flag(c, "request-timeout"), Some(timeout), "{}", case.name);
        assert_eq!(
            flag(c, "nodes").map(String::from),
            value(&case.values, &["nodes"]).map(|v| v.to_string()),
            "{}",
            case.name
        );
        assert_eq!(flag(c, "cluster-state"), None, "{}: live mode", case.name);
        match value(&case.values, &["clientCA", "configMap"]) {
            Some(_) => assert_eq!(flag(c, "client-ca-file"), Some("/etc/apiload/client-ca/ca.crt"), "{}", case.name),
            None => assert_eq!(flag(c, "client-ca-file"), None, "{}", case.name),
        }

        // The TLS Secret and the configuration are mounted where the flags point, as folders
        // (no subPath) so that a renewed certificate reaches the pod.
        let pod = pod_spec(&deployment);
        let mounts = c.volume_mounts.as_deref().unwrap_or_default();
        let mount = |path: &str| {
            mounts.iter().find(|m| m.mount_path == path).unwrap_or_else(|| panic!("{}: nothing at {path}", case.name))
        };
        let volume = |name: &str| pod.volumes.iter().flatten().find(|v| v.name == name).unwrap();
        let tls = mount("/etc/apiload/tls");
        assert_eq!(tls.sub_path, None);
        assert_eq!(tls.read_only, Some(true));
        let tls_secret =
            volume(&tls.name).secret.as_ref().and_then(|s| s.secret_name.clone()).expect("a Secret volume");
        let config = mount("/etc/apiload/config");
        let config_map = volume(&config.name).config_map.as_ref().map(|c| c.name.clone()).expect("a ConfigMap volume");
        assert!(all_of_kind(&objects, "ConfigMap").iter().any(|o| name_of(o) == config_map), "{}", case.name);
        let tls_objects: Vec<&Value> = objects
            .iter()
            .filter(|o| {
                (o["kind"] == "Secret" && name_of(o) == tls_secret)
                    || (o["kind"] == "Certificate" && o["spec"]["secretName"] == tls_secret.as_str())
            })
            .collect();
        assert_eq!(tls_objects.len(), 1, "{}: the mounted TLS Secret {tls_secret} is created by the chart", case.name);

        // Its identity is the one the ClusterRoleBinding grants to.
        let sa = pod.service_account_name.as_deref().unwrap();
        let binding: ClusterRoleBinding = the_webhooks(case, &objects, "ClusterRoleBinding");
        let subjects = binding.subjects.as_deref().unwrap_or_default();
        assert!(
            subjects.iter().any(|s| s.kind == "ServiceAccount"
                && s.name == sa
                && s.namespace.as_deref() == Some(case.namespace.as_str())),
            "{}",
            case.name
        );
        let created_sa = all_of_kind(&objects, "ServiceAccount");
        let create = value(&case.values, &["serviceAccount", "create"]).and_then(Value::as_bool).unwrap_or(true);
        assert_eq!(created_sa.iter().any(|o| name_of(o) == sa), create, "{}", case.name);
        assert_eq!(pod.automount_service_account_token, Some(true), "{}: live mode needs the token", case.name);
    }
}

/// The suffix of the scheduled audit's ClusterRole and binding.
const AUDIT_RBAC: &str = "-policyreports";

/// The webhook's own ClusterRole or ClusterRoleBinding (not the audit's).
fn the_webhooks<T: DeserializeOwned>(case: &Case, objects: &[Value], kind: &str) -> T {
    let found: Vec<&Value> =
        all_of_kind(objects, kind).into_iter().filter(|o| !name_of(o).ends_with(AUDIT_RBAC)).collect();
    assert_eq!(found.len(), 1, "{}: expected one {kind} of the webhook, found {}", case.name, found.len());
    serde_json::from_value(found[0].clone()).unwrap_or_else(|e| panic!("{}: {kind}: {e}", case.name))
}

/// (group, resource, verb) of every rule, with no wildcard and no name or URL.
fn grants(case: &Case, role: &ClusterRole) -> BTreeSet<(String, String, String)> {
    let mut granted = BTreeSet::new();
    for rule in role.rules.iter().flatten() {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none(), "{}", case.name);
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    assert!(![group, resource, verb].iter().any(|s| s.contains('*')), "{}: a wildcard", case.name);
                    granted.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    granted
}

#[test]
fn the_cluster_role_grants_exactly_what_the_webhook_watches_and_never_secrets() {
    // From the webhook's own list of watches (itself from the engine's
    // analysed kinds), Nodes for their count, and GET of ConfigMaps.
    let mut expected: BTreeSet<(String, String, String)> = apiload_webhook::kinds::watched()
        .map(|k| (k.group, k.resource))
        .chain([("", "nodes")])
        .flat_map(|(g, r)| ["list", "watch"].map(|v| (g.to_string(), r.to_string(), v.to_string())))
        .collect();
    expected.insert((String::new(), "configmaps".into(), "get".into()));
    for case in &rendered().cases {
        let objects = objects(case);
        let role: ClusterRole = the_webhooks(case, &objects, "ClusterRole");
        let granted = grants(case, &role);
        assert_eq!(granted, expected, "{}: the ClusterRole", case.name);
        assert!(!granted.iter().any(|(_, r, _)| r == "secrets"), "{}", case.name);
        assert!(all_of_kind(&objects, "Role").is_empty() && all_of_kind(&objects, "RoleBinding").is_empty());
        let binding: ClusterRoleBinding = the_webhooks(case, &objects, "ClusterRoleBinding");
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    }
}

#[test]
fn the_scheduled_audit_has_its_flag_and_its_own_rbac_only_when_enabled() {
    use clap::Parser as _;
    let expected: BTreeSet<(String, String, String)> = ["policyreports", "clusterpolicyreports"]
        .into_iter()
        .flat_map(|r| {
            ["get", "list", "create", "update", "patch", "delete"]
                .map(|v| ("wgpolicyk8s.io".to_string(), r.to_string(), v.to_string()))
        })
        .collect();
    let mut enabled_cases = 0;
    for case in &rendered().cases {
        let objects = objects(case);
        let enabled = value(&case.values, &["audit", "enabled"]) == Some(&json!(true));
        let deployment: Deployment = one(case, &objects, "Deployment");
        let mut argv = vec!["apiload-webhook".to_string()];
        argv.extend(container(&deployment).args.iter().flatten().cloned());
        let args = apiload_webhook::cli::Args::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{}: the webhook refuses the chart's arguments: {e}", case.name));
        let roles: Vec<&Value> =
            all_of_kind(&objects, "ClusterRole").into_iter().filter(|o| name_of(o).ends_with(AUDIT_RBAC)).collect();
        let bindings: Vec<&Value> = all_of_kind(&objects, "ClusterRoleBinding")
            .into_iter()
            .filter(|o| name_of(o).ends_with(AUDIT_RBAC))
            .collect();
        if !enabled {
            assert_eq!(args.audit_interval, None, "{}: the audit is off by default", case.name);
            assert!(roles.is_empty() && bindings.is_empty(), "{}: audit RBAC without the audit", case.name);
            continue;
        }
        enabled_cases += 1;
        let interval = value(&case.values, &["audit", "interval"]).and_then(Value::as_str).unwrap_or("10m");
        assert_eq!(
            args.audit_interval,
            Some(apiload_webhook::cli::parse_duration(interval).unwrap()),
            "{}: --audit-interval",
            case.name
        );
        assert_eq!((roles.len(), bindings.len()), (1, 1), "{}: the audit's ClusterRole and binding", case.name);
        let role: ClusterRole = serde_json::from_value(roles[0].clone()).unwrap();
        assert_eq!(grants(case, &role), expected, "{}: the audit's ClusterRole", case.name);
        let binding: ClusterRoleBinding = serde_json::from_value(bindings[0].clone()).unwrap();
        assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref(), "{}", case.name);
        let own: ClusterRoleBinding = the_webhooks(case, &objects, "ClusterRoleBinding");
        assert_eq!(binding.subjects, own.subjects, "{}: granted to the webhook's ServiceAccount", case.name);
    }
    assert!(enabled_cases >= 2, "the matrix renders the audit on");
}

#[test]
fn cert_manager_issues_the_certificate_and_injects_its_ca() {
    let r = rendered();
    for case in r.cases.iter().filter(|c| value(&c.values, &["certManager", "enabled"]) == Some(&json!(true))) {
        let objects = objects(case);
        assert!(all_of_kind(&objects, "Secret").is_empty(), "{}: no Secret of the chart's own", case.name);
        let vwc: ValidatingWebhookConfiguration = one(case, &objects, "ValidatingWebhookConfiguration");
        assert_eq!(webhook(&vwc).client_config.ca_bundle, None, "{}: the cainjector fills caBundle", case.name);
        let inject = vwc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("cert-manager.io/inject-ca-from"))
            .expect("the cainjector annotation");
        let certificates = all_of_kind(&objects, "Certificate");
        let serving = certificates.iter().find(|c| c["spec"]["isCA"] != true).expect("a serving Certificate");
        assert_eq!(inject, &format!("{}/{}", case.namespace, name_of(serving)), "{}", case.name);
        let service: Service = one(case, &objects, "Service");
        let dns = format!("{}.{}.svc", service.metadata.name.unwrap(), case.namespace);
        assert!(serving["spec"]["dnsNames"].as_array().unwrap().contains(&json!(dns)), "{}: {dns}", case.name);
        assert!(serving["spec"]["usages"].as_array().unwrap().contains(&json!("server auth")), "{}", case.name);
        let issuer = &serving["spec"]["issuerRef"];
        match value(&case.values, &["certManager", "issuerRef", "name"]) {
            Some(name) => {
                assert_eq!(&issuer["name"], name, "{}", case.name);
                assert_eq!(certificates.len(), 1, "{}: no CA of the chart's own", case.name);
                assert!(all_of_kind(&objects, "Issuer").is_empty(), "{}", case.name);
            }
            None => {
                // selfSigned Issuer → CA Certificate → CA Issuer → serving Certificate.
                let issuers = all_of_kind(&objects, "Issuer");
                let ca_issuer =
                    issuers.iter().find(|i| name_of(i) == issuer["name"]).expect("the serving Certificate's Issuer");
                let ca_secret = &ca_issuer["spec"]["ca"]["secretName"];
                let ca =
                    certificates.iter().find(|c| &c["spec"]["secretName"] == ca_secret).expect("the CA Certificate");
                assert_eq!(ca["spec"]["isCA"], true, "{}", case.name);
                let root =
                    issuers.iter().find(|i| name_of(i) == ca["spec"]["issuerRef"]["name"]).expect("the root Issuer");
                assert_eq!(root["spec"], json!({"selfSigned": {}}), "{}", case.name);
            }
        }
    }
}

#[test]
fn the_chart_generated_certificate_is_valid_for_the_service_and_trusted_by_the_ca_bundle() {
    let r = rendered();
    let checks = r.index["certificates"].as_array().unwrap();
    let off: Vec<&Case> =
        r.cases.iter().filter(|c| value(&c.values, &["certManager", "enabled"]) != Some(&json!(true))).collect();
    assert_eq!(checks.len(), off.len());
    for check in checks {
        // The CA in the ValidatingWebhookConfiguration is the Secret's, and a TLS client trusting
        // only it completes a handshake with the certificate for <service>.<namespace>.svc…
        assert_eq!(check["ca_bundle_is_secret_ca"], true, "{check}");
        assert_eq!(check["handshake_error"], Value::Null, "{check}");
        // …and not for another name (the check can fail).
        assert!(check["wrong_name_error"].as_str().is_some_and(|e| e.contains("CERTIFICATE_VERIFY_FAILED")), "{check}");
    }
    for case in off {
        let objects = objects(case);
        let secret: Secret = one(case, &objects, "Secret");
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"), "{}", case.name);
        let keys: BTreeSet<&str> = secret.data.as_ref().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["ca.crt", "tls.crt", "tls.key"]), "{}", case.name);
        let vwc: ValidatingWebhookConfiguration = one(case, &objects, "ValidatingWebhookConfiguration");
        assert!(vwc.metadata.annotations.is_none(), "{}: no cainjector without cert-manager", case.name);
        assert_eq!(
            webhook(&vwc).client_config.ca_bundle.as_ref(),
            secret.data.as_ref().unwrap().get("ca.crt"),
            "{}",
            case.name
        );
    }
}

#[test]
fn upgrades_keep_the_generated_certificate() {
    // Rendered as `helm upgrade` does, against a stub API server on loopback that holds the
    // chart's TLS Secret: Helm's lookup finds it and the chart keeps it.
    let upgrades = rendered().index["upgrades"].as_array().unwrap();
    let scenario =
        |name: &str| upgrades.iter().find(|u| u["scenario"] == name).unwrap_or_else(|| panic!("no scenario {name}"));
    let lookup = json!(["/api/v1", "/api/v1/namespaces/apiload-system/secrets/apiload-apiload-webhook-tls"]);

    let kept = scenario("secret with all three keys");
    assert_eq!(kept["requests"], lookup, "the chart looked the Secret up");
    assert_eq!(kept["rendered"], kept["existing"], "the existing certificate is kept");
    assert_eq!(kept["ca_bundle"], kept["existing"]["ca.crt"], "and so is the caBundle");

    for name in ["secret without ca.crt", "no secret"] {
        let fresh = scenario(name);
        assert_eq!(fresh["requests"], lookup, "{name}");
        let rendered = &fresh["rendered"];
        assert_ne!(rendered["tls.crt"], kept["existing"]["tls.crt"], "{name}: a new certificate");
        assert!(rendered["tls.crt"].as_str().is_some_and(|c| c.starts_with("LS0tLS1CRUdJTi")), "{name}: PEM");
        assert_eq!(fresh["ca_bundle"], rendered["ca.crt"], "{name}: the caBundle is the new CA");
    }
}

#[test]
fn the_schema_refuses_unsafe_or_misspelt_values() {
    let rejected = rendered().index["rejected"].as_array().unwrap();
    assert!(rejected.len() >= 10);
    for r in rejected {
        let error = r["error"].as_str().unwrap_or_else(|| panic!("accepted {}: {}", r["why"], r["values"]));
        assert!(error.contains("HelmValuesError") && error.contains("schema"), "{}: {error}", r["why"]);
    }
}

#[test]
fn the_configuration_is_a_valid_apiload_yaml_and_honours_no_annotation_unless_configured() {
    use apiload_rules::settings::Settings;
    let r = rendered();
    for case in &r.cases {
        let objects = objects(case);
        let maps = all_of_kind(&objects, "ConfigMap");
        assert_eq!(maps.len(), 1, "{}", case.name);
        let text = maps[0]["data"]["config.yaml"].as_str().expect("config.yaml");
        let mut sources = Sources::new();
        let id = sources.add("config.yaml", text.as_bytes());
        let settings =
            Settings::parse(id, text).unwrap_or_else(|e| panic!("{}: config.yaml: {} ({text})", case.name, e.message));
        let expected: Option<Vec<String>> =
            value(&case.values, &["config", "annotationExemptions", "namespaces"]).map(|v| match v {
                Value::String(s) => vec![s.clone()],
                v => v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect(),
            });
        assert_eq!(settings.annotation_namespaces, expected, "{}", case.name);
        let exemptions = value(&case.values, &["config", "exemptions"]).and_then(Value::as_array).map_or(0, Vec::len);
        assert_eq!(settings.exemptions.len(), exemptions, "{}", case.name);
    }
    // The default configuration exempts nothing.
    let defaults = &r.case("defaults");
    let text = objects(defaults).into_iter().find(|o| o["kind"] == "ConfigMap").unwrap()["data"]["config.yaml"].clone();
    assert_eq!(text, "{}\n");
    // A change of configuration rolls the pods (the webhook reads it at start).
    let checksum = |case: &Case| {
        let d: Deployment = one(case, &objects(case), "Deployment");
        d.spec.unwrap().template.metadata.unwrap().annotations.unwrap()["checksum/config"].clone()
    };
    assert_ne!(checksum(r.case("defaults")), checksum(r.case("everything")));
    assert_eq!(checksum(r.case("defaults")), checksum(r.case("cert-manager-off-warn")));
}

#[test]
fn notes_say_the_mode_and_how_to_get_out() {
    for case in &rendered().cases {
        let mode = value(&case.values, &["mode"]).and_then(Value::as_str).unwrap_or("warn");
        assert!(case.notes.contains(&format!("Mode:            {mode}")), "{}: {}", case.name, case.notes);
        assert!(case.notes.contains("kubectl delete validatingwebhookconfiguration"), "{}", case.name);
        assert!(case.notes.contains("exemptNamespaces"), "{}", case.name);
        assert!(!case.notes.contains("kubectl label namespace"), "{}: a label nobody honours", case.name);
        assert_eq!(case.notes.contains("--set mode=enforce"), mode != "enforce", "{}", case.name);
        let fail = value(&case.values, &["failurePolicy"]) == Some(&json!("Fail"));
        assert_eq!(case.notes.contains("REJECTED"), fail, "{}", case.name);
    }
}

#[test]
fn a_network_policy_admits_only_the_two_ports_by_default_and_the_configured_peers() {
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    for case in &rendered().cases {
        let objects = objects(case);
        let enabled = value(&case.values, &["networkPolicy", "enabled"]).and_then(Value::as_bool).unwrap_or(true);
        let policies = all_of_kind(&objects, "NetworkPolicy");
        assert_eq!(policies.len(), usize::from(enabled), "{}: on by default", case.name);
        if !enabled {
            continue;
        }
        let policy: NetworkPolicy = one(case, &objects, "NetworkPolicy");
        let spec = policy.spec.expect("spec");
        let deployment: Deployment = one(case, &objects, "Deployment");
        assert!(selects(&spec.pod_selector.unwrap_or_default(), &pod_labels(&deployment)), "{}", case.name);
        assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".to_string()][..]), "{}", case.name);
        let rules = spec.ingress.unwrap_or_default();
        let ports: Vec<IntOrString> =
            rules.iter().flat_map(|r| r.ports.iter().flatten().filter_map(|p| p.port.clone())).collect();
        assert_eq!(
            ports,
            [IntOrString::String("https".into()), IntOrString::String("metrics".into())],
            "{}",
            case.name
        );
        let from = |i: usize| serde_json::to_value(&rules[i].from).unwrap();
        for (i, key) in [(0, "webhookFrom"), (1, "metricsFrom")] {
            match value(&case.values, &["networkPolicy", key]) {
                // Configured: exactly those peers.
                Some(peers) => assert_eq!(&from(i), peers, "{}: {key}", case.name),
                // Default: every source, so that the API server always gets in.
                None => assert_eq!(from(i), Value::Null, "{}: {key}", case.name),
            }
        }
    }
}

#[test]
fn pods_leave_the_service_before_they_stop_listening() {
    for case in &rendered().cases {
        let deployment: Deployment = one(case, &objects(case), "Deployment");
        let pod = pod_spec(&deployment);
        let c = container(&deployment);
        let pre_stop = value(&case.values, &["shutdown", "preStopSeconds"]).and_then(Value::as_i64).unwrap_or(10);
        let grace = value(&case.values, &["shutdown", "graceSeconds"]).and_then(Value::as_i64).unwrap_or(20);
        let sleep = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).and_then(|p| p.sleep.as_ref());
        assert_eq!(sleep.map(|s| s.seconds), Some(pre_stop), "{}: a preStop sleep", case.name);
        assert_eq!(flag(c, "shutdown-grace"), Some(format!("{grace}s").as_str()), "{}", case.name);
        let termination = pod.termination_grace_period_seconds.expect("terminationGracePeriodSeconds");
        assert!(termination > pre_stop + grace, "{}: {termination} s to stop", case.name);
    }
}
