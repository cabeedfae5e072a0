//! Reviews of single changes against a cluster state (the webhook's
//! question), both directions of every join, and the invariant that the
//! order in which objects arrive never lets a risk through.

mod common;

use apiload_rules::exempt::ExemptionPolicy;
use apiload_rules::object::objects_from_document;
use apiload_rules::profile::ProfileSet;
use apiload_rules::review::{Change, ClusterState, ObjectKey, Verdict, is_reviewed_kind};
use apiload_rules::workload::controlling_owner;
use apiload_rules::{Object, ObjectRef, Options, Severity, Sources};
use apiload_yaml::Limits;
use std::collections::HashMap;

/// Objects of a YAML text, added to `sources` under `name`, with the
/// namespaces a lint of the text would settle for objects that name none (a
/// cluster's objects always have theirs).
fn objects(sources: &mut Sources, name: &str, text: &str) -> Vec<Object> {
    let id = sources.add(name, text.as_bytes());
    let mut objects = Vec::new();
    let mut diagnostics = Vec::new();
    for doc in apiload_yaml::load_stream(text.as_bytes(), &Limits::default()).into_iter().flatten() {
        objects_from_document(id, doc.root, "default", &mut objects, &mut diagnostics);
    }
    apiload_rules::inferred_namespace::infer(&mut objects, "default", &mut diagnostics);
    objects
}

fn one(sources: &mut Sources, name: &str, text: &str) -> Object {
    let mut all = objects(sources, name, text);
    assert_eq!(all.len(), 1, "{name}: expected one object");
    all.pop().unwrap()
}

struct Cluster {
    sources: Sources,
    state: ClusterState,
    options: Options,
}

impl Cluster {
    fn new(state_yaml: &str) -> Cluster {
        let mut sources = Sources::new();
        let mut state = ClusterState::new();
        for o in objects(&mut sources, "state.yaml", state_yaml) {
            state.upsert(o);
        }
        Cluster { sources, state, options: Options::default() }
    }

    /// Reviews `text` as a creation or, when the state has the object, an update.
    fn review(&mut self, text: &str) -> Verdict {
        let n = self.sources.len();
        let new = one(&mut self.sources, &format!("review-{n}.yaml"), text);
        let old = self.state.get(&ObjectKey::of(&new)).cloned();
        let plan = self.state.plan(&Change { old, new }, &ProfileSet::builtin());
        plan.judge(&self.sources, &ProfileSet::builtin(), &self.options, &ExemptionPolicy::default())
    }

    fn apply(&mut self, text: &str) {
        let n = self.sources.len();
        let o = one(&mut self.sources, &format!("apply-{n}.yaml"), text);
        self.state.upsert(o);
    }
}

/// `rule workload` of the findings, without AL401 (these states have no FlowSchema).
fn ids(v: &Verdict) -> Vec<String> {
    let mut ids: Vec<String> = v
        .findings
        .iter()
        .filter(|d| d.rule.id != "AL401")
        .map(|d| format!("{} {}", d.rule.id, d.workload.as_ref().map_or("-".to_string(), |w| w.to_string())))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

const AGENT_DS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: monitoring}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      serviceAccountName: agent
      containers:
        - name: agent
          image: registry.example.com/in-house/agent:1.0
"#;

const AGENT_SA: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: agent, namespace: monitoring}
"#;

const POD_READER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-reader}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch]
"#;

const AGENT_BINDING: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agent-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
subjects:
  - {kind: ServiceAccount, name: agent, namespace: monitoring}
"#;

fn join(parts: &[&str]) -> String {
    parts.iter().map(|p| format!("---{p}")).collect()
}

#[test]
fn a_daemonset_whose_identity_already_holds_a_cluster_wide_watch_is_found() {
    let mut c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_BINDING]));
    let v = c.review(AGENT_DS);
    assert_eq!(ids(&v), ["AL101 DaemonSet monitoring/agent"], "{:#?}", v.findings);
    assert_eq!(v.findings[0].severity, Severity::Error);
}

#[test]
fn a_binding_that_arms_an_existing_daemonset_is_found_and_an_unrelated_one_is_not() {
    let mut c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_DS]));
    assert!(c.review(&AGENT_BINDING.replace("name: agent,", "name: someone-else,")).findings.is_empty());
    let v = c.review(AGENT_BINDING);
    assert_eq!(ids(&v), ["AL101 DaemonSet monitoring/agent"]);
    assert_eq!(v.affected.len(), 1);
}

#[test]
fn a_role_created_after_its_binding_is_found() {
    let mut c = Cluster::new(&join(&[AGENT_SA, AGENT_DS, AGENT_BINDING]));
    assert_eq!(ids(&c.review(POD_READER)), ["AL101 DaemonSet monitoring/agent"]);
}

#[test]
fn group_subjects_reach_every_workload_they_name() {
    let mut c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_DS]));
    for group in ["system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"] {
        let binding = AGENT_BINDING.replace(
            "{kind: ServiceAccount, name: agent, namespace: monitoring}",
            &format!("{{kind: Group, name: \"{group}\"}}"),
        );
        let v = c.review(&binding);
        assert!(ids(&v).contains(&"AL101 DaemonSet monitoring/agent".to_string()), "{group}: {:?}", ids(&v));
    }
    let other_ns = AGENT_BINDING.replace(
        "{kind: ServiceAccount, name: agent, namespace: monitoring}",
        "{kind: Group, name: \"system:serviceaccounts:other\"}",
    );
    assert!(!ids(&c.review(&other_ns)).iter().any(|f| f.starts_with("AL101")));
    let user = AGENT_BINDING.replace(
        "{kind: ServiceAccount, name: agent, namespace: monitoring}",
        "{kind: User, name: \"system:serviceaccount:monitoring:agent\"}",
    );
    assert_eq!(ids(&c.review(&user)), ["AL101 DaemonSet monitoring/agent"]);
}

#[test]
fn a_cluster_role_aggregated_into_a_bound_built_in_role_is_found() {
    // `view` is built in and aggregates every ClusterRole labelled
    // aggregate-to-view. It already lets the agent watch pods; Nodes it does not.
    let view_binding = AGENT_BINDING.replace("name: pod-reader", "name: view");
    let mut c = Cluster::new(&join(&[AGENT_SA, AGENT_DS, &view_binding]));
    let node_reader = POD_READER.replace("resources: [pods]", "resources: [nodes]");
    assert_eq!(ids(&c.review(&node_reader)), Vec::<String>::new());
    let labelled = node_reader.replace(
        "metadata: {name: pod-reader}",
        "metadata: {name: pod-reader, labels: {rbac.authorization.k8s.io/aggregate-to-view: \"true\"}}",
    );
    assert_eq!(ids(&c.review(&labelled)), ["AL102 DaemonSet monitoring/agent"]);
}

#[test]
fn a_cluster_role_aggregated_into_a_bound_role_of_the_cluster_is_found() {
    let aggregate = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agent-aggregate}
aggregationRule:
  clusterRoleSelectors:
    - matchLabels: {example.com/aggregate-to-agent: "true"}
rules: []
"#;
    let binding = AGENT_BINDING.replace("name: pod-reader", "name: agent-aggregate");
    let mut c = Cluster::new(&join(&[AGENT_SA, AGENT_DS, aggregate, &binding]));
    let labelled = POD_READER.replace(
        "metadata: {name: pod-reader}",
        "metadata: {name: pod-reader, labels: {example.com/aggregate-to-agent: \"true\"}}",
    );
    assert_eq!(ids(&c.review(&labelled)), ["AL101 DaemonSet monitoring/agent"]);
}

#[test]
fn flow_schemas_of_the_state_are_read() {
    let flow_schema = r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: agents}
spec:
  priorityLevelConfiguration: {name: agents}
  matchingPrecedence: 1000
  rules:
    - subjects:
        - kind: ServiceAccount
          serviceAccount: {name: agent, namespace: monitoring}
      resourceRules:
        - {verbs: ["*"], apiGroups: ["*"], resources: ["*"], clusterScope: true, namespaces: ["*"]}
"#;
    let mut c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_BINDING]));
    assert!(c.review(AGENT_DS).findings.iter().any(|d| d.rule.id == "AL401"));
    c.apply(flow_schema);
    assert!(c.review(AGENT_DS).findings.iter().all(|d| d.rule.id != "AL401"));
}

#[test]
fn a_service_account_that_re_enables_its_token_is_found() {
    let disabled = AGENT_SA.replace(
        "metadata: {name: agent, namespace: monitoring}",
        "metadata: {name: agent, namespace: monitoring}\nautomountServiceAccountToken: false",
    );
    let mut c = Cluster::new(&join(&[&disabled, POD_READER, AGENT_BINDING, AGENT_DS]));
    assert!(c.review(AGENT_DS).findings.is_empty(), "no token, no API calls");
    assert_eq!(ids(&c.review(AGENT_SA)), ["AL101 DaemonSet monitoring/agent"]);
}

const OTEL_DS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: otel-agent, namespace: monitoring}
spec:
  selector: {matchLabels: {app: otel}}
  template:
    metadata: {labels: {app: otel}}
    spec:
      serviceAccountName: agent
      containers:
        - name: otel
          image: otel/opentelemetry-collector-contrib:0.160.0
          args: [--config=/conf/config.yaml]
          env:
            - name: K8S_NODE_NAME
              valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
          volumeMounts: [{name: conf, mountPath: /conf}]
      volumes:
        - name: conf
          configMap: {name: otel-agent}
"#;

fn otel_config(filter: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: otel-agent, namespace: monitoring}}
data:
  config.yaml: |
    receivers:
      otlp:
        protocols: {{grpc: {{}}}}
    processors:
      k8sattributes:
{filter}
    exporters:
      debug: {{}}
    service:
      pipelines:
        traces: {{receivers: [otlp], processors: [k8sattributes], exporters: [debug]}}
"#
    )
}

#[test]
fn a_config_map_that_drops_the_node_filter_is_found() {
    let scoped = otel_config("        filter:\n          node_from_env_var: K8S_NODE_NAME");
    let unscoped = otel_config("        passthrough: false");
    let mut c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_BINDING, &scoped, OTEL_DS]));
    assert!(
        c.review(OTEL_DS).findings.iter().all(|d| d.rule.id != "AL101"),
        "scoped to its node: {:?}",
        ids(&c.review(OTEL_DS))
    );
    let v = c.review(&unscoped);
    assert!(ids(&v).contains(&"AL101 DaemonSet monitoring/otel-agent".to_string()), "{:?}", ids(&v));
    // Putting the filter back is fine.
    c.apply(&unscoped);
    assert!(c.review(&scoped).findings.iter().all(|d| d.rule.id != "AL101"));
}

#[test]
fn a_harmless_change_is_not_blamed_for_a_risk_that_was_already_there() {
    let mut c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_BINDING, AGENT_DS]));
    // A second binding to the same role adds nothing new.
    let second = AGENT_BINDING.replace("name: agent-pods", "name: agent-pods-again");
    assert!(c.review(&second).findings.is_empty(), "{:?}", ids(&c.review(&second)));
    // Relabelling the binding changes nothing either.
    let relabelled =
        AGENT_BINDING.replace("metadata: {name: agent-pods}", "metadata: {name: agent-pods, labels: {a: b}}");
    assert!(c.review(&relabelled).findings.is_empty());
    // The workload itself is judged in full.
    assert_eq!(ids(&c.review(AGENT_DS)), ["AL101 DaemonSet monitoring/agent"]);
}

#[test]
fn an_hpa_that_makes_a_deployment_fan_out_is_found() {
    let deploy = AGENT_DS
        .replace("kind: DaemonSet", "kind: Deployment")
        .replace("name: agent, namespace", "name: collector, namespace");
    let hpa = r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: collector, namespace: monitoring}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: collector}
  minReplicas: 2
  maxReplicas: 400
"#;
    let mut c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_BINDING, &deploy]));
    assert!(c.review(&deploy).findings.iter().all(|d| d.severity < Severity::Error));
    let v = c.review(hpa);
    assert!(ids(&v).contains(&"AL101 Deployment monitoring/collector".to_string()), "{:?}", ids(&v));
}

#[test]
fn objects_owned_by_a_controller_and_unknown_kinds_are_not_judged() {
    let mut c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_BINDING]));
    let rs = AGENT_DS.replace("kind: DaemonSet", "kind: ReplicaSet").replace(
        "metadata: {name: agent, namespace: monitoring}",
        "metadata:\n  name: agent-5d8f\n  namespace: monitoring\n  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: agent, uid: x, controller: true}]",
    );
    let v = c.review(&rs);
    assert!(v.findings.is_empty());
    assert!(v.not_judged.clone().unwrap().to_string().contains("judged through its owner Deployment monitoring/agent"));
    let v = c.review("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
    assert!(v.not_judged.unwrap().to_string().contains("does not analyse Service"));
}

#[test]
fn state_indexes_follow_updates_and_removals() {
    let mut c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_DS]));
    c.apply(AGENT_BINDING);
    // The binding now names someone else: the DaemonSet is no longer reached by it.
    c.apply(&AGENT_BINDING.replace("name: agent,", "name: someone-else,"));
    assert!(
        c.review(&AGENT_BINDING.replace("name: agent-pods", "name: unrelated").replace("name: agent,", "name: x,"))
            .affected
            .is_empty()
    );
    assert!(c.state.remove(&ObjectKey::new("ClusterRoleBinding", "", "agent-pods")).is_some());
    assert!(c.state.remove(&ObjectKey::new("ClusterRoleBinding", "", "agent-pods")).is_none());
    assert_eq!(c.state.workload_count(), 1);
    c.state.replace_kind("DaemonSet", Vec::new());
    assert_eq!(c.state.workload_count(), 0);
    assert!(c.review(AGENT_BINDING).findings.is_empty(), "no workload left to arm");
}

/// A deterministic permutation (xorshift), so that failures reproduce.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// The fixtures without a configuration of their own (those are about
/// settings, not joins), and the real charts of the labelled corpus.
fn fixture_files() -> Vec<std::path::PathBuf> {
    let mut files = common::fixture_files(false);
    // The real charts of the labelled corpus, beside the checkout; without
    // it the fixtures are still checked.
    if let Some(corpus) = common::shared("corpus") {
        for case in std::fs::read_dir(&corpus).unwrap() {
            let manifest = case.unwrap().path().join("manifest.yaml");
            if manifest.is_file() {
                files.push(manifest);
            }
        }
    }
    files.sort();
    files
}

/// Whatever order a fixture's objects arrive in, every finding the linter
/// reports on the whole set was reported by the review of some object, at
/// least as severe: no order lets a risk through unannounced.
#[test]
fn no_order_of_arrival_lets_a_risk_through() {
    let options = Options::default();
    let policy = ExemptionPolicy::default();
    let profiles = ProfileSet::builtin();
    let mut checked = 0;
    for path in fixture_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut sources = Sources::new();
        let all = objects(&mut sources, &path.display().to_string(), &text);
        let mut input = apiload_rules::Input::new(options.clone());
        for o in &all {
            input.add_object(o.clone());
        }
        let report = input.analyze(&sources);
        let owned: Vec<ObjectRef> =
            all.iter().filter(|o| controlling_owner(o).is_some()).map(|o| o.reference()).collect();
        let expected: Vec<(&str, ObjectRef, Severity)> = report
            .diagnostics
            .iter()
            .filter_map(|d| Some((d.rule.id, d.workload.clone()?, d.severity)))
            .filter(|(_, w, _)| !owned.contains(w))
            .collect();
        if expected.is_empty() {
            continue;
        }
        for seed in [0u64, 1, 7, 42, 1234, 99991] {
            let mut order: Vec<Object> = all.clone();
            if seed == 1 {
                order.reverse();
            } else if seed > 1 {
                shuffle(&mut order, seed);
            }
            let mut state = ClusterState::new();
            let mut reported: HashMap<(&str, ObjectRef), Severity> = HashMap::new();
            for o in order {
                if is_reviewed_kind(&o.kind) {
                    let old = state.get(&ObjectKey::of(&o)).cloned();
                    let verdict = state
                        .plan(&Change { old, new: o.clone() }, &profiles)
                        .judge(&sources, &profiles, &options, &policy);
                    for d in verdict.findings {
                        if let Some(w) = d.workload {
                            let e = reported.entry((d.rule.id, w)).or_insert(d.severity);
                            *e = (*e).max(d.severity);
                        }
                    }
                }
                state.upsert(o);
            }
            for (rule, w, severity) in &expected {
                let got = reported.get(&(*rule, w.clone()));
                assert!(
                    got.is_some_and(|s| s >= severity),
                    "{}: order {seed}: {rule} {severity} on {w} was never reported by a review (got {got:?})",
                    path.display()
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} fixtures had workload findings");
}

/// The objects a review gathers are all the analysis reads: reviewing any
/// workload of a fixture against the rest gives exactly the findings (rule,
/// severity, message) the linter gives it on the whole fixture.
#[test]
fn a_review_sees_everything_the_whole_input_shows() {
    let options = Options::default();
    let policy = ExemptionPolicy::default();
    let profiles = ProfileSet::builtin();
    let mut compared = 0;
    for path in fixture_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut sources = Sources::new();
        let all = objects(&mut sources, &path.display().to_string(), &text);
        let mut input = apiload_rules::Input::new(options.clone());
        let mut state = ClusterState::new();
        for o in &all {
            input.add_object(o.clone());
            state.upsert(o.clone());
        }
        let report = input.analyze(&sources);
        for o in all.iter().filter(|o| state.get(&ObjectKey::of(o)).is_some()) {
            if apiload_rules::workload::WorkloadKind::from_kind(&o.kind).is_none() {
                continue;
            }
            let w = o.reference();
            let describe = |ds: &mut dyn Iterator<Item = &apiload_rules::Diagnostic>| {
                let mut v: Vec<String> = ds.map(|d| format!("{} {} {}", d.rule.id, d.severity, d.message)).collect();
                v.sort();
                v
            };
            let expected = describe(&mut report.diagnostics.iter().filter(|d| d.workload.as_ref() == Some(&w)));
            let verdict = state
                .plan(&Change { old: Some(o.clone()), new: o.clone() }, &profiles)
                .judge(&sources, &profiles, &options, &policy);
            let got = describe(&mut verdict.findings.iter().filter(|d| d.workload.as_ref() == Some(&w)));
            assert_eq!(got, expected, "{}: {w}", path.display());
            compared += 1;
        }
    }
    assert!(compared > 50, "only {compared} workloads compared");
}

#[test]
fn the_config_maps_a_review_reads_are_listed_for_front_ends_that_fetch_them() {
    let c = Cluster::new(&join(&[AGENT_SA, POD_READER, AGENT_DS]));
    let mut sources = Sources::new();
    let otel = one(&mut sources, "otel.yaml", OTEL_DS);
    let keys = c.state.config_maps_read(&Change { old: None, new: otel }, &ProfileSet::builtin());
    // Its mounted configuration, and the ConfigMaps profiles read by name in its namespace.
    assert!(keys.contains(&ObjectKey::new("ConfigMap", "monitoring", "otel-agent")), "{keys:?}");
    assert!(keys.contains(&ObjectKey::new("ConfigMap", "monitoring", "cilium-config")), "{keys:?}");
    let binding = one(&mut sources, "b.yaml", AGENT_BINDING);
    let keys = c.state.config_maps_read(&Change { old: None, new: binding }, &ProfileSet::builtin());
    assert!(keys.iter().all(|k| &*k.namespace == "monitoring"), "the armed DaemonSet's namespace: {keys:?}");
}

#[test]
fn a_review_reads_the_parameters_of_the_autoscaler_that_sizes_the_workload() {
    // The autoscaler's ConfigMap sets the replica count the cost multiplies
    // by, so a front end that fetches ConfigMaps must fetch it too.
    let autoscaler = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: dns-autoscaler, namespace: kube-system}
spec:
  selector: {matchLabels: {app: dns-autoscaler}}
  template:
    metadata: {labels: {app: dns-autoscaler}}
    spec:
      containers:
      - name: autoscaler
        image: registry.k8s.io/cpa/cluster-proportional-autoscaler:v1.9.0
        command: [/cluster-proportional-autoscaler, --namespace=kube-system, --configmap=dns-params, --target=Deployment/dns]
";
    let dns = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: dns, namespace: kube-system}
spec:
  selector: {matchLabels: {app: dns}}
  template:
    metadata: {labels: {app: dns}}
    spec:
      containers: [{name: dns, image: registry.example.com/dns:1.0}]
";
    let c = Cluster::new(&join(&[autoscaler, dns]));
    let mut sources = Sources::new();
    let new = one(&mut sources, "dns.yaml", dns);
    let keys = c.state.config_maps_read(&Change { old: None, new }, &ProfileSet::builtin());
    assert!(keys.contains(&ObjectKey::new("ConfigMap", "kube-system", "dns-params")), "{keys:?}");
    // Without the autoscaler nothing sizes it, and nothing is read for it.
    let alone = Cluster::new(dns);
    let new = one(&mut sources, "dns-2.yaml", dns);
    let keys = alone.state.config_maps_read(&Change { old: None, new }, &ProfileSet::builtin());
    assert!(!keys.iter().any(|k| &*k.name == "dns-params"), "{keys:?}");
}
