//! Reading the profile format: matching with exclusions, built-in
//! configurations and where their errors are reported.

use super::ProfileSet;
use super::model::ConfigSourceKind;

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: u32) -> (usize, usize) {
    let before = &text[..offset as usize];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, str::len) + 1;
    (line, col)
}

fn load(text: &str) -> Result<ProfileSet, Vec<crate::source::SpanError>> {
    let mut set = ProfileSet { profiles: Vec::new() };
    set.add_text("test.yaml", text).map(|()| set)
}

#[test]
fn exclusions_leave_other_programs_of_a_project_to_other_profiles() {
    let set = load(
        "id: agent\nname: Agent\nmatch:\n  images: ['*acme/agent*']\n  exclude_images: ['*acme/agent-operator']\n  exclude_commands: [agent-migrate]\n---\nid: operator\nname: Operator\nmatch:\n  images: ['*acme/agent-operator']\n",
    )
    .unwrap();
    let id = |image: &str, cmd: Option<&str>| set.for_container(Some(image), cmd).map(|p| p.id.clone());
    assert_eq!(id("registry.example.com/acme/agent:1.2", None).as_deref(), Some("agent"));
    assert_eq!(id("registry.example.com/acme/agent-operator:1.2", None).as_deref(), Some("operator"));
    // The same image running another binary of the project.
    assert_eq!(id("registry.example.com/acme/agent:1.2", Some("/usr/bin/agent-migrate")), None);
    assert_eq!(id("registry.example.com/acme/agent:1.2", Some("/bin/sh")).as_deref(), Some("agent"));
}

#[test]
fn a_builtin_configuration_is_parsed_when_the_profile_is_read() {
    let set = load(
        "id: dns\nname: DNS\nmatch: {images: ['*dns']}\nconfig:\n  - flag: [-conf]\n    format: corefile\n  - builtin: |\n      .:53 {\n          whoami\n      }\n    format: corefile\n    when: {absent: \"$.args[0]\"}\n",
    )
    .unwrap();
    let p = set.get("dns").unwrap();
    let ConfigSourceKind::Builtin { node, .. } = &p.config[1].kind else { panic!("{:?}", p.config[1].kind) };
    let name =
        node.path(&["servers"]).and_then(|s| s.as_seq()).unwrap()[0].get("plugins").and_then(|s| s.as_seq()).unwrap()
            [0]
        .get("name")
        .and_then(|n| n.as_str().map(str::to_string));
    assert_eq!(name.as_deref(), Some("whoami"));
    assert!(p.config[1].when.is_some());
}

#[test]
fn a_broken_builtin_configuration_is_an_error_at_its_line_in_the_profile() {
    let text = "id: dns\nname: DNS\nmatch: {images: ['*dns']}\nconfig:\n  - builtin: |\n      .:53 {\n          hosts \"/etc/hosts\n      }\n    format: corefile\n";
    let errors = load(text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("does not parse as `corefile`"), "{errors:?}");
    assert!(errors[0].message.contains("unterminated"), "{errors:?}");
    // The quote on line 7, column 17 of the profile file.
    assert_eq!(line_col(text, errors[0].span.start), (7, 17));
}

#[test]
fn format_errors_have_positions() {
    let cases = [
        ("id: a\nname: A\nmatch: {images: [x], exclude: [y]}\n", (3, 22), "unknown key `exclude`"),
        (
            "id: a\nname: A\nmatch: {images: [x]}\nconfig:\n  - builtin: 'a=b'\n    format: keyvalue\n",
            (5, 14),
            "keyvalue",
        ),
        (
            "id: a\nname: A\nmatch: {images: [x]}\nconfig:\n  - builtin: [x]\n    format: yaml\n",
            (5, 14),
            "must be a string",
        ),
        (
            "id: a\nname: A\nmatch: {images: [x]}\nconfig:\n  - path: /x\n    format: yaml\n    when: {versions: '< 1'}\n",
            (7, 12),
            "unknown condition",
        ),
    ];
    for (text, at, message) in cases {
        let errors = load(text).unwrap_err();
        assert!(errors[0].message.contains(message), "{text}: {errors:?}");
        assert_eq!(line_col(text, errors[0].span.start), at, "{text}: {errors:?}");
    }
}

/// Operators, controllers and helpers shipped next to the agents the
/// built-in profiles know, or from the same image with another command:
/// none of them is judged as the agent.
#[test]
fn builtin_profiles_leave_sibling_programs_alone() {
    let set = ProfileSet::builtin();
    let siblings: &[(&str, Option<&str>)] = &[
        ("ghcr.io/open-telemetry/opentelemetry-operator/opentelemetry-operator:0.120.0", None),
        ("ghcr.io/open-telemetry/opentelemetry-operator/target-allocator:0.120.0", None),
        ("ghcr.io/open-telemetry/opentelemetry-collector-contrib/telemetrygen:v0.120.0", None),
        ("quay.io/cilium/operator-generic:v1.17.0", None),
        ("quay.io/cilium/hubble-relay:v1.17.0", None),
        ("quay.io/cilium/cilium-envoy:v1.31.5", None),
        ("docker.io/calico/kube-controllers:v3.29.0", None),
        ("docker.io/calico/typha:v3.29.0", None),
        ("gcr.io/datadoghq/cluster-agent:7.60.0", None),
        ("gcr.io/datadoghq/operator:1.10.0", None),
        ("docker.io/kubearmor/kubearmor-controller:v1.5.2", None),
        ("docker.io/kubearmor/kubearmor-relay-server:v1.5.2", None),
        ("docker.io/kubearmor/kubearmor-init:v1.5.2", None),
        ("docker.io/kubearmor/kubearmor-operator:v1.5.2", None),
        ("docker.io/grafana/agent-operator:v0.44.0", None),
        ("quay.io/prometheus-operator/prometheus-operator:v0.80.0", None),
        ("quay.io/prometheus-operator/prometheus-config-reloader:v0.80.0", None),
        ("quay.io/metallb/controller:v0.14.9", None),
        ("docker.io/falcosecurity/falcoctl:0.11.0", None),
        ("docker.io/falcosecurity/falco-driver-loader:0.40.0", None),
        ("registry.k8s.io/fluentd-gcp-scaler:0.5.2", None),
        ("registry.k8s.io/csi-secrets-store/driver-crds:v1.5.3", None),
        ("registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0", None),
        ("registry.k8s.io/dns/k8s-dns-node-cache:1.25.0", None),
        ("registry.k8s.io/nfd/node-feature-discovery:v0.17.3", Some("nfd-master")),
        ("registry.k8s.io/nfd/node-feature-discovery:v0.17.3", Some("nfd-gc")),
        ("ghcr.io/k8snetworkplumbingwg/whereabouts:v0.8.0", Some("/ip-reconciler")),
        ("ghcr.io/k8snetworkplumbingwg/whereabouts:v0.8.0", Some("/node-slice-controller")),
    ];
    for (image, command) in siblings {
        let found = set.for_container(Some(image), *command).map(|p| p.id.clone());
        assert_eq!(found, None, "{image} {command:?} is another program, not the agent");
    }
    // ... while the agents themselves are still recognised.
    let agents: &[(&str, Option<&str>, &str)] = &[
        ("otel/opentelemetry-collector-contrib:0.120.0", None, "opentelemetry-collector"),
        ("quay.io/signalfx/splunk-otel-collector:0.120.0", Some("/otelcol"), "opentelemetry-collector"),
        ("registry.k8s.io/coredns/coredns:v1.12.0", None, "coredns"),
        ("registry.k8s.io/nfd/node-feature-discovery:v0.17.3", Some("nfd-worker"), "node-feature-discovery-worker"),
        ("ghcr.io/k8snetworkplumbingwg/whereabouts:v0.8.0", Some("/bin/sh"), "whereabouts"),
        ("fluent/fluentd-kubernetes-daemonset:v1.17", None, "fluentd"),
        ("docker.io/kubearmor/kubearmor:stable", None, "kubearmor"),
    ];
    for (image, command, id) in agents {
        let found = set.for_container(Some(image), *command).map(|p| p.id.clone());
        assert_eq!(found.as_deref(), Some(*id), "{image} {command:?}");
    }
}
