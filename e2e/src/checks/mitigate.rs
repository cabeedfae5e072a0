//! `apiload mitigate` against the real API server (docs/mitigate.md). An
//! agent whose ServiceAccount may list and watch every pod
//! (fixtures/mitigate/agent.yaml) is applied; `apiload mitigate --cluster`
//! reads it back and writes what `apiload mitigate` writes for the manifest;
//! the server accepts the FlowSchema and the priority level with strict field
//! validation; its own metrics give the level the seats the comments promise
//! (`ceil(serverCL × shares / Σ shares)` over every level the server has,
//! read back from it), and the requests the agent's ServiceAccount sends
//! with a token of its own — LISTs, a WATCH, a GET of /version and a LIST the
//! authorizer refuses — are dispatched in the new FlowSchema and level
//! (`apiserver_flowcontrol_dispatched_requests_total`). A second
//! `mitigate --cluster` then finds the agent contained and writes nothing.

use crate::checks::chart::ensure_namespace;
use crate::checks::cluster_audit::apiload_in;
use crate::cluster::{KubeconfigUser, client, write_kubeconfig};
use crate::metrics::{self, Sample};
use crate::{Result, Suite, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, WatchParams};
use serde_json::Value;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "e2e-mitigate";
const ACCOUNT: &str = "node-inventory";
const FIXTURE: &str = "e2e/fixtures/mitigate/agent.yaml";
/// Another priority level the server has, which mitigate must count.
const OTHER_LEVEL: &str = "e2e/fixtures/mitigate/other-level.yaml";
/// What the API server's defaults give it under APF: --max-requests-inflight
/// 400 + --max-mutating-requests-inflight 200 (cluster.rs sets neither).
const SERVER_CL: u64 = 600;
/// The size both runs judge for (the cluster has no Nodes).
const NODES: &str = "1000";
/// LISTs the agent sends.
const LISTS: usize = 12;

fn level_name() -> String {
    format!("apiload-{NAMESPACE}-{ACCOUNT}")
}

/// `apiload mitigate ARGS` from the repository root; its stdout and stderr.
async fn mitigate(s: &Suite, args: &[&str]) -> Result<(String, String)> {
    let argv: Vec<&str> = ["mitigate", "--no-config"].into_iter().chain(args.iter().copied()).collect();
    let run = apiload_in(s, &s.args.repo, &argv).await?;
    ensure!(run.code == 0, "apiload mitigate {} exited {}:\n{}", args.join(" "), run.code, run.stderr);
    Ok((run.stdout, run.stderr))
}

/// The documents after the header comment (which names the input).
fn documents(yaml: &str) -> &str {
    yaml.find("\n---\n").map_or("", |i| &yaml[i + 1..])
}

/// The comments of the output as one line of words (they wrap at any word).
fn prose(yaml: &str) -> String {
    let words: Vec<&str> =
        yaml.lines().filter_map(|l| l.trim_start().strip_prefix('#')).flat_map(str::split_whitespace).collect();
    words.join(" ")
}

/// `key: N` of the first line that holds it.
fn field(yaml: &str, key: &str) -> Result<u64> {
    yaml.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no `{key}:` in the output of apiload mitigate:\n{yaml}"))
}

/// The API server's metrics now (as the admin, whose requests are exempt).
async fn scrape(s: &Suite) -> Result<Vec<Sample>> {
    let req = http::Request::get("/metrics").body(Vec::new()).map_err(|e| e.to_string())?;
    let text = s.admin.request_text(req).await.map_err(|e| format!("GET /metrics: {e}"))?;
    Ok(metrics::parse(&text))
}

/// The shares of every priority level the server has, and of those it
/// made itself (annotated `apf.kubernetes.io/autoupdate-spec: "true"`).
async fn shares_on_the_server(s: &Suite) -> Result<(u64, u64)> {
    let out = s.kubectl.ok(&["get", "prioritylevelconfigurations", "-o", "json"], None).await?;
    let v: Value = serde_json::from_str(&out.stdout).map_err(|e| format!("kubectl get -o json: {e}"))?;
    let (mut all, mut bootstrap) = (0, 0);
    for pl in v["items"].as_array().into_iter().flatten() {
        let spec = &pl["spec"];
        let part = if spec["type"] == "Exempt" { &spec["exempt"] } else { &spec["limited"] };
        let shares = part["nominalConcurrencyShares"].as_u64().unwrap_or(0);
        all += shares;
        if pl["metadata"]["annotations"]["apf.kubernetes.io/autoupdate-spec"] == "true" {
            bootstrap += shares;
        }
    }
    Ok((all, bootstrap))
}

pub async fn the_agents_requests_go_to_its_new_level(s: &mut Suite) -> Result<()> {
    ensure_namespace(s, NAMESPACE).await?;
    let read = |f: &str| std::fs::read_to_string(s.args.repo.join(f)).map_err(|e| format!("{f}: {e}"));
    let fixture = format!("{}---\n{}", read(FIXTURE)?, read(OTHER_LEVEL)?);
    s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", "-"], Some(&fixture)).await?;

    // The manifests and the cluster: the same two objects.
    let (from_files, _) = mitigate(s, &["--nodes", NODES, FIXTURE, OTHER_LEVEL]).await?;
    let admin = s.cp.admin_kubeconfig.display().to_string();
    let (from_cluster, summary) = mitigate(s, &["--cluster", "--kubeconfig", &admin, "--nodes", NODES]).await?;
    ensure!(
        documents(&from_cluster) == documents(&from_files),
        "apiload mitigate --cluster wrote other objects than apiload mitigate {FIXTURE}:\n--- cluster\n{from_cluster}\n--- files\n{from_files}"
    );
    let name = level_name();
    let kinds: Vec<&str> = from_cluster.lines().filter(|l| l.starts_with("kind: ")).collect();
    ensure!(
        kinds == ["kind: FlowSchema", "kind: PriorityLevelConfiguration"]
            && from_cluster.contains(&format!("name: {name}\n")),
        "expected one FlowSchema and one level named {name} for the only fan-out in the cluster:\n{from_cluster}"
    );
    ensure!(
        summary.contains(&format!("DaemonSet {NAMESPACE}/{ACCOUNT}: 1,000 copies → FlowSchema {name}")),
        "no summary line for the agent: {summary}"
    );

    // The server accepts them as written.
    let applied = s
        .kubectl
        .ok(
            &["apply", "--server-side", "--field-manager=apiload-e2e", "--validate=strict", "-f", "-"],
            Some(&from_cluster),
        )
        .await?;
    ensure!(applied.warnings().is_empty(), "applying mitigate's objects warned: {:?}", applied.warnings());

    // The level's seats, once the APF configuration controller has it.
    let shares = field(&from_cluster, "nominalConcurrencyShares")?;
    let lendable = field(&from_cluster, "lendablePercent")?;
    let (total, bootstrap) = shares_on_the_server(s).await?;
    let known: u64 = apiload_rules::apf::BOOTSTRAP_LEVELS.iter().map(|(_, n)| n).sum();
    ensure!(bootstrap == known, "the server's own levels hold {bootstrap} shares; apiload's list of them, {known}");
    let nominal = (SERVER_CL * shares).div_ceil(total);
    let promised = format!("ceil({SERVER_CL} × {shares} / {total}) = {nominal} seats");
    ensure!(
        prose(&from_cluster).contains(&promised),
        "the level's comment does not say {promised} (the server's levels hold {total} shares):\n{from_cluster}"
    );
    ensure!(
        prose(&from_cluster).contains(&format!("({total} in all)")),
        "mitigate --cluster counted other shares than the server's {total}:\n{from_cluster}"
    );
    let level = [("priority_level", name.as_str())];
    let deadline = Instant::now() + Duration::from_secs(30);
    let seats = loop {
        let m = scrape(s).await?;
        if m.iter().any(|x| {
            x.name == "apiserver_flowcontrol_nominal_limit_seats" && x.labels.get("priority_level") == Some(&name)
        }) {
            break m;
        }
        ensure!(Instant::now() < deadline, "the API server did not configure priority level {name} within 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let got = |metric: &str| metrics::sum(&seats, metric, &level) as u64;
    let lower = nominal - (nominal as f64 * lendable as f64 / 100.0).round() as u64;
    ensure!(
        (
            got("apiserver_flowcontrol_nominal_limit_seats"),
            got("apiserver_flowcontrol_lower_limit_seats"),
            got("apiserver_flowcontrol_upper_limit_seats")
        ) == (nominal, lower, nominal),
        "the server gives {name} nominal/lower/upper {}/{}/{} seats; mitigate's figures say {nominal}/{lower}/{nominal}",
        got("apiserver_flowcontrol_nominal_limit_seats"),
        got("apiserver_flowcontrol_lower_limit_seats"),
        got("apiserver_flowcontrol_upper_limit_seats")
    );

    // The agent's requests, with a token of its ServiceAccount.
    let token = s.kubectl.ok(&["create", "token", ACCOUNT, "-n", NAMESPACE, "--duration=1h"], None).await?.stdout;
    let path = s.work("mitigate-agent.kubeconfig");
    write_kubeconfig(&path, &s.cp.server_url(), &s.cp.pki.ca_path(), KubeconfigUser::Token(token.trim()))?;
    let agent = client(&path).await?;
    let before = scrape(s).await?;
    let pods: Api<Pod> = Api::all(agent.clone());
    let mut rv = String::new();
    for _ in 0..LISTS {
        let list = pods.list(&ListParams::default()).await.map_err(|e| format!("the agent's LIST of pods: {e}"))?;
        rv = list.metadata.resource_version.unwrap_or_default();
    }
    let mut watch = pods
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .map_err(|e| format!("the agent's WATCH of pods: {e}"))?
        .boxed();
    while let Some(ev) = watch.next().await {
        ev.map_err(|e| format!("the agent's WATCH of pods: {e}"))?;
    }
    agent.apiserver_version().await.map_err(|e| format!("the agent's GET /version: {e}"))?;
    let secrets: Api<Secret> = Api::all(agent.clone());
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => return Err(format!("the agent's LIST of Secrets was not refused: {other:?}")),
    }
    let sent = LISTS + 3;
    let after = scrape(s).await?;
    let schema = [("flow_schema", name.as_str()), ("priority_level", name.as_str())];
    let dispatched = metrics::delta(&before, &after, "apiserver_flowcontrol_dispatched_requests_total", &schema);
    ensure!(
        dispatched >= sent as f64,
        "{dispatched} requests dispatched in FlowSchema and level {name}; the agent sent {sent}"
    );
    s.measured.insert("mitigate_dispatched".into(), (dispatched as u64).into());
    s.measured.insert("mitigate_nominal_seats".into(), nominal.into());

    // Contained: a second run writes nothing.
    let (again, again_summary) = mitigate(s, &["--cluster", "--kubeconfig", &admin, "--nodes", NODES]).await?;
    ensure!(
        !again.lines().any(|l| l.starts_with("kind: "))
            && again_summary.contains(&format!("already in FlowSchema {name}")),
        "mitigate --cluster after applying still writes:\n{again}\n{again_summary}"
    );
    eprintln!("e2e:      {dispatched} requests of the agent in {name} ({nominal} seats, {lower} kept from lending)");

    // Leave the cluster as the next checks expect it.
    for kind in ["flowschema", "prioritylevelconfiguration"] {
        s.kubectl.ok(&["delete", kind, &name, "--ignore-not-found"], None).await?;
    }
    s.kubectl.ok(&["delete", "-f", "-", "--ignore-not-found", "--wait=false"], Some(&fixture)).await?;
    s.kubectl.ok(&["delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s"], None).await?;
    Ok(())
}
