//! `apiload learn` against the real API server. Two agents of
//! testdata/audit/learn/agents.yaml run as DaemonSets would, one pod per
//! node on three Nodes (no kubelet: the pods are bound and never run; each
//! copy is a kube-rs client with a token bound to its pod, so the audit log
//! names its pod and node): node-agent lists and watches its own node's
//! pods and reads its own Node, cluster-agent lists and watches every pod
//! and tries to list Secrets. Their requests are kept as
//! testdata/audit/learn-agents.jsonl (`e2e/run --record-audit`; otherwise
//! what `apiload learn` makes of this run must be what it makes of the
//! committed file). Profiles learned from it (`--out`) make `apiload lint
//! --profiles` report exactly an over-grant of node-agent and a
//! cluster-wide fan-out of cluster-agent, and `lint --audit-log` the same
//! with basis `observed`. Then `apiload learn --suggest-rbac` replaces the
//! agents' broad ClusterRole: the agents run again with nothing else and
//! every call they made before is allowed, and what they never did is not.

use crate::checks::chart::ensure_namespace;
use crate::cluster::{KubeconfigUser, client, write_kubeconfig};
use crate::{Result, Suite, audit, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchParams};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const NAMESPACE: &str = "e2e-learn";
const NODES: usize = 3;
const AGENTS: &[&str] = &["node-agent", "cluster-agent"];
const RECORDING: &str = "testdata/audit/learn-agents.jsonl";
const MANIFESTS: &str = "testdata/audit/learn/agents.yaml";

fn node_name(i: usize) -> String {
    format!("learn-node-{i}")
}

/// One copy of an agent: its pod, its node, a client with its pod's token.
struct Copy {
    agent: &'static str,
    node: String,
    client: kube::Client,
}

async fn copies(s: &Suite) -> Result<Vec<Copy>> {
    let nodes: Api<Node> = Api::all(s.admin.clone());
    for i in 0..NODES {
        let node: Node =
            serde_json::from_value(json!({"metadata": {"name": node_name(i)}})).map_err(|e| e.to_string())?;
        if nodes.get_opt(&node_name(i)).await.map_err(|e| e.to_string())?.is_none() {
            nodes.create(&PostParams::default(), &node).await.map_err(|e| e.to_string())?;
        }
    }
    let pods: Api<Pod> = Api::namespaced(s.admin.clone(), NAMESPACE);
    let mut out = Vec::new();
    for agent in AGENTS {
        for i in 0..NODES {
            // Named as the DaemonSet controller names its pods.
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"generateName": format!("{agent}-"), "labels": {"app": agent}},
                "spec": {
                    "nodeName": node_name(i),
                    "serviceAccountName": agent,
                    "containers": [{"name": "agent", "image": format!("registry.example.com/learn/{agent}:1.0")}],
                },
            }))
            .map_err(|e| e.to_string())?;
            let created = pods.create(&PostParams::default(), &pod).await.map_err(|e| e.to_string())?;
            let name = created.metadata.name.unwrap_or_default();
            let token = s
                .kubectl
                .ok(
                    &[
                        "create",
                        "token",
                        agent,
                        "-n",
                        NAMESPACE,
                        "--bound-object-kind=Pod",
                        &format!("--bound-object-name={name}"),
                        "--duration=1h",
                    ],
                    None,
                )
                .await?
                .stdout;
            let path = s.work(&format!("learn-{name}.kubeconfig"));
            write_kubeconfig(&path, &s.cp.server_url(), &s.cp.pki.ca_path(), KubeconfigUser::Token(token.trim()))?;
            out.push(Copy { agent, node: node_name(i), client: client(&path).await? });
        }
    }
    Ok(out)
}

/// What each copy does: an informer (LIST from the watch cache, WATCH from
/// its resourceVersion for a few seconds) of its node's pods or of all pods,
/// and node-agent's read of its own Node, cluster-agent's forbidden LIST of
/// Secrets.
async fn run_copy(c: &Copy) -> Result<()> {
    let pods: Api<Pod> = Api::all(c.client.clone());
    let mut lp = ListParams::default().match_any();
    let mut wp = WatchParams::default().timeout(3);
    if c.agent == "node-agent" {
        let nodes: Api<Node> = Api::all(c.client.clone());
        nodes.get(&c.node).await.map_err(|e| format!("{} GET node {}: {e}", c.agent, c.node))?;
        let selector = format!("spec.nodeName={}", c.node);
        lp = lp.fields(&selector);
        wp = wp.fields(&selector);
    } else {
        let secrets: Api<Secret> = Api::all(c.client.clone());
        match secrets.list(&ListParams::default()).await {
            Err(kube::Error::Api(e)) if e.code == 403 => {}
            other => return Err(format!("cluster-agent's LIST of Secrets was not refused: {other:?}")),
        }
    }
    let list = pods.list(&lp).await.map_err(|e| format!("{} LIST pods: {e}", c.agent))?;
    let rv = list.metadata.resource_version.unwrap_or_default();
    let mut stream = pods.watch(&wp, &rv).await.map_err(|e| format!("{} WATCH pods: {e}", c.agent))?.boxed();
    while let Some(ev) = stream.next().await {
        ev.map_err(|e| format!("{} WATCH pods: {e}", c.agent))?;
    }
    Ok(())
}

/// Runs every copy at once; returns the audit log's lines of the agents.
async fn run_all(s: &Suite, copies: &[Copy]) -> Result<Vec<String>> {
    let mark = audit::mark(&s.cp.audit_log);
    let results = futures::future::join_all(copies.iter().map(run_copy)).await;
    for r in results {
        r?;
    }
    // The blocking audit backend writes the watches' completion last.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let users: Vec<String> = AGENTS.iter().map(|a| format!("system:serviceaccount:{NAMESPACE}:{a}")).collect();
    let lines = audit::lines_since(&s.cp.audit_log, mark)?;
    let events = audit::parse(&lines.join("\n"))?;
    Ok(lines.into_iter().zip(events).filter(|(_, e)| users.contains(&e.user.username)).map(|(l, _)| l).collect())
}

async fn apiload(s: &Suite, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(s.args.apiload_bin.join("apiload"))
        .args(args)
        .current_dir(&s.args.repo)
        .output()
        .await
        .map_err(|e| format!("apiload {}: {e}", args.join(" ")))?;
    ensure!(
        out.status.success(),
        "apiload {} exited {:?}: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `apiload learn` makes of a log: per workload, each call's verb,
/// resource, scope, selectors, node evidence and how many pods sent it.
async fn learned(s: &Suite, log: &Path) -> Result<Vec<String>> {
    let log = log.display().to_string();
    let json = apiload(s, &["learn", "--no-config", "--format", "json", "--audit-log", &log, MANIFESTS]).await?;
    let v: Value = serde_json::from_str(&json).map_err(|e| format!("apiload learn --format json: {e}"))?;
    let mut out = Vec::new();
    for w in v["workloads"].as_array().into_iter().flatten() {
        for c in w["calls"].as_array().into_iter().flatten() {
            out.push(format!(
                "{} {} {} {} {} fieldSelector={} node={} copies={} refused={}",
                w["workload"]["name"].as_str().unwrap_or("?"),
                c["verb"].as_str().unwrap_or(""),
                c["resource"].as_str().unwrap_or(""),
                c["scope"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap_or("-"),
                c["field_selector"].as_str().unwrap_or("-"),
                c["node"].as_str().unwrap_or("-"),
                c["copies"],
                c["refused"]
            ));
        }
    }
    out.sort();
    Ok(out)
}

/// `apiload lint --format json` of the agents' manifests with `extra`
/// flags: the findings about API calls, as (rule, workload, basis), sorted.
/// Exit status 1 (an error found) is expected.
async fn lint_findings(s: &Suite, extra: &[&str]) -> Result<Vec<(String, String, String)>> {
    let out = tokio::process::Command::new(s.args.apiload_bin.join("apiload"))
        .args(["lint", "--no-config", "--format", "json"])
        .args(extra)
        .arg(MANIFESTS)
        .current_dir(&s.args.repo)
        .output()
        .await
        .map_err(|e| format!("apiload lint: {e}"))?;
    ensure!(
        matches!(out.status.code(), Some(0 | 1)),
        "apiload lint {} exited {:?}: {}",
        extra.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("apiload lint --format json: {e}"))?;
    let mut found: Vec<(String, String, String)> = v["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d.get("basis").is_some())
        .map(|d| {
            let text = |v: &Value| v.as_str().unwrap_or("").to_string();
            (text(&d["rule"]), text(&d["workload"]["name"]), text(&d["basis"]))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// `kubectl auth can-i` as the agent.
async fn can(s: &Suite, agent: &str, verb: &str, what: &str) -> Result<bool> {
    let user = format!("--as=system:serviceaccount:{NAMESPACE}:{agent}");
    let out = s.kubectl.run(&["auth", "can-i", verb, what, &user, "--all-namespaces"], None).await?;
    Ok(out.stdout.trim() == "yes")
}

pub async fn suggested_rbac_covers_what_was_seen(s: &mut Suite) -> Result<()> {
    ensure_namespace(s, NAMESPACE).await?;
    let manifests = std::fs::read_to_string(s.args.repo.join(MANIFESTS)).map_err(|e| e.to_string())?;
    s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", "-"], Some(&manifests)).await?;
    let copies = copies(s).await?;
    let lines = run_all(s, &copies).await?;
    let events = audit::parse(&lines.join("\n"))?;
    ensure!(!events.is_empty(), "no request of the agents in the audit log");
    // Bound tokens name their pod and node: what tells node scope apart.
    ensure!(
        lines.iter().all(|l| l.contains("authentication.kubernetes.io/pod-name")
            && l.contains("authentication.kubernetes.io/node-name")),
        "the agents' requests do not name their pods and nodes in user.extra"
    );
    let fresh = s.work("learn-agents.jsonl");
    std::fs::write(&fresh, format!("{}\n", lines.join("\n"))).map_err(|e| e.to_string())?;
    let committed: PathBuf = s.args.repo.join(RECORDING);
    if s.args.record_audit {
        std::fs::copy(&fresh, &committed).map_err(|e| format!("{}: {e}", committed.display()))?;
        eprintln!("e2e:      wrote {}", committed.display());
    } else {
        let (now, then) = (learned(s, &fresh).await?, learned(s, &committed).await?);
        ensure!(
            now == then,
            "apiload learn makes of this run's requests not what it makes of {} (re-record with e2e/run --record-audit):\nnow: {now:#?}\ncommitted: {then:#?}",
            committed.display()
        );
    }

    // What this run's log teaches lint: learned profiles give an over-grant
    // of the node-scoped agent and a cluster-wide fan-out of the other, and
    // the log itself the same findings with basis `observed`.
    let fresh_arg = fresh.display().to_string();
    let profiles = s.work("learn-profiles");
    let _ = std::fs::remove_dir_all(&profiles);
    let profiles_arg = profiles.display().to_string();
    apiload(s, &["learn", "--no-config", "-q", "--audit-log", &fresh_arg, MANIFESTS, "--out", &profiles_arg]).await?;
    let expected = |basis: &str| {
        vec![
            ("AL101".to_string(), "cluster-agent".to_string(), basis.to_string()),
            ("AL103".to_string(), "node-agent".to_string(), basis.to_string()),
        ]
    };
    let with_profiles = lint_findings(s, &["--profiles", &profiles_arg]).await?;
    ensure!(with_profiles == expected("profile"), "lint --profiles (learned) found {with_profiles:?}");
    let with_log = lint_findings(s, &["--audit-log", &fresh_arg]).await?;
    ensure!(with_log == expected("observed"), "lint --audit-log found {with_log:?}");

    // The suggested RBAC in place of the agents' ClusterRole.
    let rbac =
        apiload(s, &["learn", "--no-config", "-q", "--suggest-rbac", "--audit-log", &fresh_arg, MANIFESTS]).await?;
    std::fs::write(s.work("learn-rbac.yaml"), &rbac).map_err(|e| e.to_string())?;
    s.kubectl.ok(&["delete", "clusterrolebinding", "e2e-learn-agents"], None).await?;
    let applied = s
        .kubectl
        .ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "--validate=strict", "-f", "-"], Some(&rbac))
        .await?;
    ensure!(applied.warnings().is_empty(), "applying the suggested RBAC warned: {:?}", applied.warnings());
    // RBAC changes reach the authorizer through its informers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(can(s, "node-agent", "list", "pods").await? && can(s, "cluster-agent", "watch", "pods").await?) {
        ensure!(std::time::Instant::now() < deadline, "the suggested RBAC was not in effect after 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let again = run_all(s, &copies).await?;
    let again = audit::parse(&again.join("\n"))?;
    ensure!(
        again.len() >= events.len(),
        "the agents did less the second time: {} requests, then {}",
        events.len(),
        again.len()
    );
    let refused: Vec<String> = again
        .iter()
        .filter(|e| e.code() == 403 && e.resource() != "secrets")
        .map(|e| format!("{} {} {}", e.user.username, e.verb, e.request_uri))
        .collect();
    ensure!(refused.is_empty(), "calls the agents made before are refused with the suggested RBAC: {refused:#?}");
    ensure!(
        again.iter().any(|e| e.code() == 403 && e.resource() == "secrets"),
        "the LIST of Secrets, refused before, is no longer refused"
    );
    // Nothing the agents did not do.
    for (agent, verb, what) in [
        ("node-agent", "list", "configmaps"),
        ("node-agent", "list", "nodes"),
        ("node-agent", "watch", "nodes"),
        ("cluster-agent", "get", "nodes"),
        ("cluster-agent", "list", "secrets"),
        ("cluster-agent", "list", "configmaps"),
    ] {
        ensure!(!can(s, agent, verb, what).await?, "the suggested RBAC lets {agent} {verb} {what}, which it never did");
    }
    for (agent, verb, what) in
        [("node-agent", "get", "nodes"), ("node-agent", "watch", "pods"), ("cluster-agent", "list", "pods")]
    {
        ensure!(can(s, agent, verb, what).await?, "the suggested RBAC does not let {agent} {verb} {what}");
    }
    s.measured.insert("learn_requests".into(), (events.len() as u64).into());

    // Leave the cluster as the next checks expect it.
    let nodes: Api<Node> = Api::all(s.admin.clone());
    for i in 0..NODES {
        let _ = nodes.delete(&node_name(i), &DeleteParams::default()).await;
    }
    for kind in ["clusterrolebinding", "clusterrole"] {
        for agent in AGENTS {
            let _ = s
                .kubectl
                .run(&["delete", kind, &format!("apiload-learned:{NAMESPACE}:{agent}"), "--ignore-not-found"], None)
                .await;
        }
    }
    let _ = s.kubectl.run(&["delete", "clusterrole", "e2e-learn-agents", "--ignore-not-found"], None).await;
    let _ = s.kubectl.run(&["delete", "flowschema", "e2e-learn-agents", "--ignore-not-found"], None).await;
    // Waited for: the cluster audit that follows reads the whole cluster.
    // The copies' Pods are bound to Nodes and no kubelet confirms their
    // graceful deletion, so they go at once or the namespace never does.
    s.kubectl.ok(&["delete", "pods", "--all", "-n", NAMESPACE, "--grace-period=0", "--force"], None).await?;
    s.kubectl.ok(&["delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s"], None).await?;
    Ok(())
}
