//! A large workspace does not hold back the first diagnostics: with 10,000
//! files still being read, the document the user opened is analysed first;
//! the finding that needs a role from the last file arrives once all is read.

mod lsp_client;

use lsp_client::{Client, codes, file_uri};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

const FILES: usize = 10_000;

fn generate(root: &Path) {
    let _ = std::fs::remove_dir_all(root);
    for i in 0..FILES - 1 {
        let dir = root.join(format!("team-{:02}", i % 50));
        if i < 50 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\n  namespace: team-{ns}\ndata:\n  key: value-{i}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: team-{ns}\nspec:\n  ports: [{{port: 80}}]\n",
            ns = i % 50
        );
        std::fs::write(dir.join(format!("app-{i:05}.yaml")), text).unwrap();
    }
    // The role of the agent sorts last.
    std::fs::create_dir_all(root.join("zz-rbac")).unwrap();
    std::fs::write(root.join("zz-rbac/agent.yaml"), RBAC).unwrap();
}

const RBAC: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: agent\nrules:\n- apiGroups: [\"\"]\n  resources: [\"pods\"]\n  verbs: [\"list\", \"watch\"]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: agent\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agent}\nsubjects:\n- {kind: ServiceAccount, name: agent, namespace: monitoring}\n";

const AGENT: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: monitoring\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      serviceAccountName: agent\n      containers: [{name: agent, image: example.com/agent:1}]\n";

#[test]
fn the_open_document_is_analysed_before_10000_files_are_read() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lsp-10k");
    generate(&root);
    let started = Instant::now();
    let mut c = Client::start(Some(&root), json!({}));
    // A new buffer, not saved yet: only the editor has it (10,001 manifests in all).
    let uri = c.open(&root.join("agent.yaml"), AGENT);
    let first = c.diagnostics(&uri, "the first diagnostics of the open document", |_| true);
    let first_at = started.elapsed();
    let first_index = c.seen.len();
    assert!(!codes(&first).contains(&"AL101".to_string()), "{first:#?}");
    let done = c.wait("the workspace analysis", lsp_client::WAIT * 4, |m| {
        m["method"] == "window/logMessage"
            && m["params"]["message"].as_str().unwrap_or("").contains("workspace analysed")
    });
    let done_at = started.elapsed();
    let done_index = c.seen.iter().position(|m| *m == done).unwrap();
    assert!(first_index <= done_index, "the open document waited for the workspace");
    assert!(done["params"]["message"].as_str().unwrap().contains("10001 manifests"), "{done}");
    let all = c.diagnostics(&uri, "AL101 once the role is read", |d| codes(d).contains(&"AL101".to_string()));
    assert_eq!(all[0]["relatedInformation"][0]["location"]["uri"], file_uri(&root.join("zz-rbac/agent.yaml")));
    eprintln!("first diagnostics after {first_at:?}; {FILES} files analysed after {done_at:?} (debug build)");
    assert!(c.shutdown().success());
}
