use super::*;

fn at<'a>(text: &'a str, n: &Node) -> &'a str {
    &text[n.span.start as usize..n.span.end as usize]
}

#[test]
fn otelcol_components_know_their_type_and_whether_a_pipeline_uses_them() {
    let text = "processors:\n  k8s_attributes/agent:\n    filter: {node_from_env_var: K8S_NODE_NAME}\n  batch:\n  k8sattributes: {}\nservice:\n  pipelines:\n    logs:\n      processors: [k8s_attributes/agent, batch]\n";
    let root = parse(Format::Otelcol, text).unwrap();
    let procs = root.get("processors").unwrap().as_seq().unwrap();
    assert_eq!(procs.len(), 3);
    assert_eq!(procs[0].get("type").unwrap().as_str(), Some("k8s_attributes"));
    assert_eq!(procs[0].get("active").unwrap().as_bool(), Some(true));
    assert_eq!(procs[2].get("active").unwrap().as_bool(), Some(false));
    assert_eq!(at(text, &procs[0]), "k8s_attributes/agent");
    let var = procs[0].path(&["body", "filter", "node_from_env_var"]).unwrap();
    assert_eq!(at(text, var), "K8S_NODE_NAME");
    assert!(root.get("raw").unwrap().get("service").is_some());
}

#[test]
fn fluent_bit_classic_and_yaml_read_the_same() {
    let classic = "[SERVICE]\n    Flush 1\n@INCLUDE extra.conf\n[INPUT]\n    Name tail\n[FILTER]\n    Name   kubernetes\n    Match  kube.*\n    Use_Kubelet On\n";
    let root = parse(Format::FluentBit, classic).unwrap();
    let filter = &root.get("filters").unwrap().as_seq().unwrap()[0];
    assert_eq!(filter.get("name").unwrap().as_str(), Some("kubernetes"));
    assert_eq!(filter.get("use_kubelet").unwrap().as_bool(), Some(true));
    assert_eq!(at(classic, filter.get("match").unwrap()), "kube.*");
    assert_eq!(root.get("includes").unwrap().as_seq().unwrap()[0].as_str(), Some("extra.conf"));
    let yaml = "service:\n  flush: 1\npipeline:\n  filters:\n    - name: kubernetes\n      Use_Kubelet: 'on'\n";
    let root = parse(Format::FluentBit, yaml).unwrap();
    let filter = &root.get("filters").unwrap().as_seq().unwrap()[0];
    assert_eq!(filter.get("use_kubelet").unwrap().as_bool(), Some(true));
    assert!(parse(Format::FluentBit, "    Name tail\n").is_err());
    assert!(parse(Format::FluentBit, "[INPUT\n").is_err());
}

#[test]
fn fluentd_directives_nest_and_labels_are_flattened() {
    let text = "<source>\n  @type tail\n  <parse>\n    @type json # comment\n  </parse>\n</source>\n<label @K8S>\n  <filter kubernetes.**>\n    @type kubernetes_metadata\n    watch false\n    ca_file \"/x#y\"\n  </filter>\n</label>\n";
    let root = parse(Format::Fluentd, text).unwrap();
    let src = &root.get("sources").unwrap().as_seq().unwrap()[0];
    assert_eq!(src.get("@type").unwrap().as_str(), Some("tail"));
    assert_eq!(src.get("parse").unwrap().as_seq().unwrap()[0].get("@type").unwrap().as_str(), Some("json"));
    let filter = &root.get("filters").unwrap().as_seq().unwrap()[0];
    assert_eq!(filter.get("pattern").unwrap().as_str(), Some("kubernetes.**"));
    assert_eq!(filter.get("watch").unwrap().as_bool(), Some(false));
    assert_eq!(filter.get("ca_file").unwrap().as_str(), Some("/x#y"));
    assert!(parse(Format::Fluentd, "<source>\n").is_err());
    assert!(parse(Format::Fluentd, "</source>\n").is_err());
}

#[test]
fn alloy_blocks_attributes_and_expressions() {
    let text = r#"// comment
discovery.kubernetes "pods" {
  role = "pod"
  selectors {
    role  = "pod"
    field = "spec.nodeName=" + coalesce(sys.env("HOSTNAME"), constants.hostname)
  }
  namespaces {
    names = ["a", "b"]
  }
  attach_metadata { node = true }
}
logging { level = "info" }
"#;
    let root = parse(Format::Alloy, text).unwrap();
    let blocks = root.get("blocks").unwrap().as_seq().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].get("name").unwrap().as_str(), Some("discovery.kubernetes"));
    assert_eq!(blocks[0].get("label").unwrap().as_str(), Some("pods"));
    let body = blocks[0].get("body").unwrap();
    assert_eq!(body.get("role").unwrap().as_str(), Some("pod"));
    let sel = &body.get("selectors").unwrap().as_seq().unwrap()[0];
    let field = sel.get("field").unwrap().as_str().unwrap();
    assert!(field.starts_with("\"spec.nodeName=\" + coalesce(sys.env(\"HOSTNAME\")"), "{field}");
    let names = body.path(&["namespaces"]).unwrap().as_seq().unwrap()[0].get("names").unwrap();
    assert_eq!(names.as_seq().unwrap().len(), 2);
    assert_eq!(body.get("attach_metadata").unwrap().as_seq().unwrap()[0].get("node").unwrap().as_bool(), Some(true));
    assert!(parse(Format::Alloy, "a \"b\" {\n").is_err());
    assert!(parse(Format::Alloy, "x = (1\n").is_err());
    assert!(parse(Format::Alloy, &"a { ".repeat(200)).is_err());
}

#[test]
fn toml_with_spans() {
    let text = "[sources.k8s]\ntype = \"kubernetes_logs\"\nuse_apiserver_cache = true\n";
    let root = parse(Format::Toml, text).unwrap();
    let src = root.path(&["sources", "k8s"]).unwrap();
    assert_eq!(src.get("type").unwrap().as_str(), Some("kubernetes_logs"));
    assert_eq!(at(text, src.get("use_apiserver_cache").unwrap()), "true");
    assert!(parse(Format::Toml, "[a\n").is_err());
}

#[test]
fn key_value_lines() {
    let root = parse(Format::KeyValue, "a=1\n# c\nb: two\n").unwrap();
    assert_eq!(root.get("a").unwrap().as_str(), Some("1"));
    assert_eq!(root.get("b").unwrap().as_str(), Some("two"));
}

#[test]
fn beats_dotted_keys_nest() {
    let text = "filebeat.autodiscover:\n  providers:\n    - type: kubernetes\nfilebeat:\n  inputs: []\n";
    let root = parse(Format::Beats, text).unwrap();
    let fb = root.get("filebeat").unwrap();
    assert!(fb.get("inputs").is_some());
    assert_eq!(fb.path(&["autodiscover", "providers"]).unwrap().as_seq().unwrap().len(), 1);
}
