//! Audit logs of known clients, recorded from the real API server for the
//! tests of `apiload learn`: small agents written here (a node-scoped and a
//! cluster-wide pod watcher, a periodic re-lister), kubectl, and the
//! webhook itself. Every run records them and checks that the shapes of
//! the requests (who, verb, resource, path, the query's keys and
//! selectors) are those committed under testdata/audit/;
//! `e2e/run --record-audit` rewrites the files. testdata/audit/README.md
//! says what each holds.

use crate::audit::{self, Event};
use crate::checks::chart::ensure_namespace;
use crate::cluster::{KubeconfigUser, client, write_kubeconfig};
use crate::{Result, Suite, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, PostParams, WatchParams};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

const NAMESPACE: &str = "e2e-recorded";

/// The recorded clients: file name, ServiceAccount (or `kubectl`, `webhook`).
pub const RECORDINGS: &[(&str, &str)] = &[
    ("node-scoped-pod-watch.jsonl", "node-agent"),
    ("cluster-wide-pod-watch.jsonl", "cluster-agent"),
    ("periodic-relist.jsonl", "poller"),
    ("kubectl.jsonl", "operator"),
    ("webhook.jsonl", "webhook"),
];

const RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-recorded-readers}
rules:
  - apiGroups: [""]
    resources: [pods, configmaps]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list]
  - apiGroups: [apps]
    resources: [deployments]
    verbs: [get, list, create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-recorded-readers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-recorded-readers}
subjects:
  - {kind: ServiceAccount, name: node-agent, namespace: e2e-recorded}
  - {kind: ServiceAccount, name: cluster-agent, namespace: e2e-recorded}
  - {kind: ServiceAccount, name: poller, namespace: e2e-recorded}
  - {kind: ServiceAccount, name: operator, namespace: e2e-recorded}
"#;

async fn account_kubeconfig(s: &Suite, name: &str) -> Result<PathBuf> {
    let sas: Api<ServiceAccount> = Api::namespaced(s.admin.clone(), NAMESPACE);
    if sas.get_opt(name).await.map_err(|e| e.to_string())?.is_none() {
        let sa = ServiceAccount {
            metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
            ..Default::default()
        };
        sas.create(&PostParams::default(), &sa).await.map_err(|e| e.to_string())?;
    }
    let token = s.kubectl.ok(&["create", "token", name, "-n", NAMESPACE, "--duration=1h"], None).await?.stdout;
    let path = s.work(&format!("recorded-{name}.kubeconfig"));
    write_kubeconfig(&path, &s.cp.server_url(), &s.cp.pki.ca_path(), KubeconfigUser::Token(token.trim()))?;
    Ok(path)
}

/// An informer's calls: LIST (from the watch cache) then WATCH from its
/// resourceVersion, with bookmarks, held for a few seconds.
async fn informer(c: kube::Client, field_selector: Option<&str>) -> Result<()> {
    let pods: Api<Pod> = Api::all(c);
    let mut lp = ListParams::default().match_any();
    let mut wp = WatchParams::default().timeout(4);
    if let Some(f) = field_selector {
        lp = lp.fields(f);
        wp = wp.fields(f);
    }
    let list = pods.list(&lp).await.map_err(|e| e.to_string())?;
    let rv = list.metadata.resource_version.unwrap_or_default();
    let mut stream = pods.watch(&wp, &rv).await.map_err(|e| e.to_string())?.boxed();
    while let Some(ev) = stream.next().await {
        ev.map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn shape(e: &Event) -> String {
    let mut keys: Vec<String> = e
        .request_uri
        .split_once('?')
        .map(|(_, q)| q.split('&').map(|kv| kv.split('=').next().unwrap_or("").to_string()).collect())
        .unwrap_or_default();
    keys.sort();
    keys.dedup();
    let selector = e.query("fieldSelector").map(|f| format!(" fieldSelector={f}")).unwrap_or_default();
    let rv = e.query("resourceVersion").filter(|v| v == "0").map(|_| " resourceVersion=0").unwrap_or("");
    let path = e
        .path()
        .split('/')
        .map(|p| if p.starts_with("kube-api-access") { "*" } else { p })
        .collect::<Vec<_>>()
        .join("/");
    format!("{} {} {} [{}]{selector}{rv}", e.verb, e.resource(), path, keys.join(","))
}

fn shapes(lines: &[String]) -> Result<BTreeSet<String>> {
    Ok(audit::parse(&lines.join("\n"))?.iter().filter(|e| e.is_request()).map(shape).collect())
}

pub async fn recorded_clients_match_testdata(s: &mut Suite) -> Result<()> {
    ensure_namespace(s, NAMESPACE).await?;
    s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", "-"], Some(RBAC)).await?;
    let mut recorded: Vec<(String, Vec<String>)> = Vec::new();
    let users = |sa: &str| format!("system:serviceaccount:{NAMESPACE}:{sa}");
    let mark = audit::mark(&s.cp.audit_log);

    let node = client(&account_kubeconfig(s, "node-agent").await?).await?;
    let cluster = client(&account_kubeconfig(s, "cluster-agent").await?).await?;
    let poller = client(&account_kubeconfig(s, "poller").await?).await?;
    let operator_kubeconfig = account_kubeconfig(s, "operator").await?;
    // The two informers at once, the poller every second meanwhile.
    let polling = async {
        let slices: Api<EndpointSlice> = Api::all(poller);
        for _ in 0..5 {
            slices.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok::<(), String>(())
    };
    let (a, b, c) = tokio::join!(informer(node, Some("spec.nodeName=node-0000")), informer(cluster, None), polling);
    a?;
    b?;
    c?;
    // kubectl as an operator uses it: discovery, get, apply, rollout status.
    let operator = crate::kubectl::Kubectl { bin: s.kubectl.bin.clone(), kubeconfig: operator_kubeconfig };
    operator.ok(&["get", "pods", "-A", "-o", "name"], None).await?;
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: recorded, namespace: {NAMESPACE}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: recorded}}}}\n  template:\n    metadata: {{labels: {{app: recorded}}}}\n    spec:\n      containers: [{{name: app, image: registry.example.com/app:1.0}}]\n"
    );
    operator.ok(&["apply", "--server-side", "-f", "-"], Some(&deployment)).await?;
    operator.ok(&["get", "deployment", "recorded", "-n", NAMESPACE, "-o", "yaml"], None).await?;
    // Give the blocking audit backend a moment for the last watch's completion.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lines = audit::lines_since(&s.cp.audit_log, mark)?;
    let events = audit::parse(&lines.join("\n"))?;
    for (file, sa) in RECORDINGS.iter().filter(|(_, sa)| *sa != "webhook") {
        let user = users(sa);
        let mine: Vec<String> =
            lines.iter().zip(&events).filter(|(_, e)| e.user.username == user).map(|(l, _)| l.clone()).collect();
        ensure!(!mine.is_empty(), "no request of {user} in the audit log");
        recorded.push((file.to_string(), mine));
    }
    // The webhook: everything it sent during the run.
    let webhook_user = crate::checks::live::webhook_user(s)?;
    let all = std::fs::read_to_string(&s.cp.audit_log).map_err(|e| e.to_string())?;
    let webhook: Vec<String> = all
        .lines()
        .filter(|l| serde_json::from_str::<Event>(l).is_ok_and(|e| e.user.username == webhook_user))
        .map(str::to_string)
        .collect();
    ensure!(!webhook.is_empty(), "no request of the webhook in the audit log");
    recorded.push(("webhook.jsonl".into(), webhook));

    // The shapes the tests of `apiload learn` rely on.
    let node_shapes = shapes(&recorded[0].1)?;
    ensure!(
        node_shapes
            .iter()
            .any(|s| s.starts_with("watch pods /api/v1/pods") && s.contains("fieldSelector=spec.nodeName=node-0000")),
        "no node-scoped pod watch recorded: {node_shapes:?}"
    );
    let cluster_shapes = shapes(&recorded[1].1)?;
    ensure!(
        cluster_shapes.iter().any(|s| s.starts_with("watch pods /api/v1/pods") && !s.contains("fieldSelector")),
        "no cluster-wide pod watch recorded: {cluster_shapes:?}"
    );
    let dir = s.args.repo.join("testdata/audit");
    if s.args.record_audit {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for (file, lines) in &recorded {
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(dir.join(file), text).map_err(|e| e.to_string())?;
        }
        eprintln!("e2e:      wrote {} recordings to {}", recorded.len(), dir.display());
        return Ok(());
    }
    for (file, lines) in &recorded {
        let path = dir.join(file);
        let committed = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e} (record it with e2e/run --record-audit)", path.display()))?;
        let committed: Vec<String> = committed.lines().map(str::to_string).collect();
        let (want, have) = (shapes(&committed)?, shapes(lines)?);
        // The webhook's recording spans the whole run: what it did this run
        // must include what was committed, a shorter run may do less.
        let missing: Vec<&String> = want.difference(&have).collect();
        let extra: Vec<&String> = have.difference(&want).collect();
        ensure!(
            missing.is_empty() && (extra.is_empty() || file.as_str() == "webhook.jsonl"),
            "{}: the requests' shapes changed (re-record with e2e/run --record-audit):\nonly committed: {missing:#?}\nonly now: {extra:#?}",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_keep_selectors_and_watch_cache_reads_only() {
        let line = r#"{"auditID":"x","stage":"ResponseComplete","verb":"list","requestURI":"/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1\u0026limit=500\u0026resourceVersion=0","user":{"username":"u"},"objectRef":{"resource":"pods"},"requestReceivedTimestamp":"2026-01-01T00:00:00Z","stageTimestamp":"2026-01-01T00:00:00Z"}"#;
        let e: Event = serde_json::from_str(line).unwrap();
        assert_eq!(
            shape(&e),
            "list pods /api/v1/pods [fieldSelector,limit,resourceVersion] fieldSelector=spec.nodeName=node-1 resourceVersion=0"
        );
    }
}
