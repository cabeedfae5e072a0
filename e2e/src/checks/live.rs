//! Live mode for real: the webhook's caches follow the API server (initial
//! lists, events, deletes), survive a compaction and an API server restart
//! (410 Gone, relist), and the webhook's own requests, read back from the
//! audit log, are what apiload preaches.

use crate::audit::{self, Event};
use crate::checks::chart::ensure_namespace;
use crate::metrics;
use crate::{Result, Suite, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A namespace the webhook watches but is never asked about (the chart's
/// namespace opt-out label): what happens there reaches its caches only
/// through watch events.
const QUIET: &str = "e2e-unreviewed";

async fn quiet_namespace(s: &Suite) -> Result<()> {
    ensure_namespace(s, QUIET).await?;
    s.kubectl.ok(&["label", "namespace", QUIET, "apiload.dev/webhook=disabled", "--overwrite"], None).await.map(|_| ())
}

async fn cached(s: &Suite, kind: &str) -> Result<f64> {
    let w = s.webhook.as_ref().ok_or("the webhook is not running")?;
    Ok(metrics::sum(&w.metrics().await?, "apiload_cache_objects", &[("kind", kind)]))
}

async fn wait_cached(s: &Suite, kind: &str, want: f64, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let have = cached(s, kind).await?;
        if have == want {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the webhook caches {have} {kind} objects, the server has {want}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn server_count(s: &Suite) -> Result<f64> {
    let sas: Api<ServiceAccount> = Api::all(s.admin.clone());
    Ok(sas.list_metadata(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len() as f64)
}

fn account(name: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(QUIET.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub async fn caches_follow_lists_events_and_deletes(s: &mut Suite) -> Result<()> {
    quiet_namespace(s).await?;
    // The initial list: what the webhook holds is what the server has.
    wait_cached(s, "ServiceAccount", server_count(s).await?, Duration::from_secs(10)).await?;
    let sas: Api<ServiceAccount> = Api::namespaced(s.admin.clone(), QUIET);
    let before = server_count(s).await?;
    for i in 0..20 {
        sas.create(&PostParams::default(), &account(&format!("quiet-{i}"))).await.map_err(|e| e.to_string())?;
    }
    let t = Instant::now();
    wait_cached(s, "ServiceAccount", before + 20.0, Duration::from_secs(10)).await?;
    let added = t.elapsed();
    for i in 0..20 {
        sas.delete(&format!("quiet-{i}"), &DeleteParams::default()).await.map_err(|e| e.to_string())?;
    }
    wait_cached(s, "ServiceAccount", before, Duration::from_secs(10)).await?;
    // A delete changes what reviews decide: without its binding the risky
    // DaemonSet is harmless, with it again it is denied.
    let crb = s.kubectl.ok(&["get", "clusterrolebinding", "e2e-telemetry", "-o", "json"], None).await?.stdout;
    s.kubectl.ok(&["delete", "clusterrolebinding", "e2e-telemetry"], None).await?;
    let risky = s.args.repo.join("e2e/fixtures/admission/risky-daemonset.yaml").display().to_string();
    let dry = ["apply", "--server-side", "--field-manager=apiload-e2e", "--dry-run=server", "-f", risky.as_str()];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = s.kubectl.run(&dry, None).await?;
        if out.code == 0 {
            break;
        }
        ensure!(Instant::now() < deadline, "still denied 10 s after its binding was deleted: {}", out.stderr);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut v: serde_json::Value = serde_json::from_str(&crb).map_err(|e| e.to_string())?;
    for k in ["resourceVersion", "uid", "creationTimestamp", "managedFields"] {
        v["metadata"].as_object_mut().map(|m| m.remove(k));
    }
    s.kubectl.ok(&["create", "-f", "-"], Some(&v.to_string())).await?;
    let out = s.kubectl.run(&dry, None).await?;
    ensure!(out.code != 0, "admitted although its binding is back: {}", out.stdout);
    eprintln!(
        "e2e:      20 ServiceAccounts reached the webhook's cache {:.2} s after they were created",
        added.as_secs_f64()
    );
    Ok(())
}

/// A watch from a resourceVersion the server no longer has: `Err(410)` or
/// an ERROR event with code 410.
async fn watch_from(s: &Suite, resource_version: &str) -> Result<Option<i32>> {
    let sas: Api<ServiceAccount> = Api::all(s.admin.clone());
    let wp = WatchParams::default().timeout(5);
    match sas.watch(&wp, resource_version).await {
        Err(kube::Error::Api(e)) => Ok(Some(e.code as i32)),
        Err(e) => Err(e.to_string()),
        Ok(stream) => {
            let mut stream = stream.boxed();
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(WatchEvent::Error(e)) => return Ok(Some(e.code as i32)),
                    Ok(_) => continue,
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(None)
        }
    }
}

pub async fn survives_compaction_and_an_api_server_restart(s: &mut Suite) -> Result<()> {
    quiet_namespace(s).await?;
    let sas: Api<ServiceAccount> = Api::namespaced(s.admin.clone(), QUIET);
    let old_rv = sas
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mark = audit::mark(&s.cp.audit_log);
    // The webhook sleeps through a restart of the API server (its watches
    // break while it cannot read them), changes it never sees, and a
    // compaction: when it wakes, its resourceVersions are gone.
    s.webhook.as_ref().ok_or("the webhook is not running")?.signal(libc::SIGSTOP);
    let outcome = async {
        // A change to something the webhook does not watch: the restarted
        // watch cache begins after the last resourceVersion the webhook saw.
        let marker = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "restart-marker", "namespace": QUIET}});
        s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", "-"], Some(&marker.to_string())).await?;
        s.cp.stop_apiserver();
        s.cp.start_apiserver().await?;
        let sas: Api<ServiceAccount> = Api::namespaced(s.cp.admin().await?, QUIET);
        for i in 0..10 {
            sas.create(&PostParams::default(), &account(&format!("while-asleep-{i}")))
                .await
                .map_err(|e| e.to_string())?;
        }
        s.cp.compact_etcd().await
    }
    .await;
    if let Some(w) = s.webhook.as_ref() {
        w.signal(libc::SIGCONT);
    }
    let compacted = outcome?;
    s.admin = s.cp.admin().await?;
    let sas: Api<ServiceAccount> = Api::namespaced(s.admin.clone(), QUIET);
    // The server says 410 to a watch from before the compaction.
    let code = watch_from(s, &old_rv).await?;
    ensure!(
        code == Some(410),
        "a watch from resourceVersion {old_rv} (compacted at {compacted}) got {code:?}, not 410"
    );
    // The webhook relists and holds the changes it slept through.
    let want = server_count(s).await?;
    wait_cached(s, "ServiceAccount", want, Duration::from_secs(60)).await?;
    s.webhook.as_mut().ok_or("the webhook is gone")?.wait_ready(Duration::from_secs(60)).await?;
    // The audit event of a list is written once the answer is sent: the
    // webhook may hold the list before the log does.
    let user = webhook_user(s)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let relists = loop {
        let events = audit::read_since(&s.cp.audit_log, mark)?;
        let n = events
            .iter()
            .filter(|e| {
                e.user.username == user && e.is_request() && e.verb == "list" && e.resource() == "serviceaccounts"
            })
            .count();
        if n > 0 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ensure!(relists >= 1, "the webhook did not list ServiceAccounts again after the restart");
    // Reviews are right again: the risky DaemonSet is still denied.
    let risky = s.args.repo.join("e2e/fixtures/admission/risky-daemonset.yaml").display().to_string();
    let out = s
        .kubectl
        .run(&["apply", "--server-side", "--field-manager=apiload-e2e", "--dry-run=server", "-f", &risky], None)
        .await?;
    ensure!(out.code != 0, "after the restart the risky DaemonSet was admitted: {}", out.stdout);
    for i in 0..10 {
        let _ = sas.delete(&format!("while-asleep-{i}"), &DeleteParams::default()).await;
    }
    eprintln!(
        "e2e:      after compaction at revision {compacted} and a restart: 410 for the old watch, {relists} ServiceAccount relists by the webhook"
    );
    Ok(())
}

/// The user the chart's ServiceAccount authenticates as.
pub fn webhook_user(s: &Suite) -> Result<String> {
    let i = s.install.as_ref().ok_or("no chart install")?;
    Ok(format!("system:serviceaccount:{}:{}", i.namespace, i.account))
}

/// The most requests in any window of `seconds` (request arrival times).
pub fn max_in_window(times: &[f64], seconds: f64) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] > seconds {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// The most watches of one collection open at once, from their
/// ResponseStarted and ResponseComplete events (matched by audit ID). A
/// watch the API server never logged as complete ended at the next restart
/// of the API server (`restarts`, seconds since the epoch) after it began.
pub fn max_concurrent_watches(events: &[Event], restarts: &[f64]) -> BTreeMap<String, usize> {
    let mut points: BTreeMap<String, Vec<(f64, i32)>> = BTreeMap::new();
    let mut open: BTreeMap<&str, (&str, f64)> = BTreeMap::new();
    for e in events.iter().filter(|e| e.verb == "watch") {
        match e.stage.as_str() {
            "ResponseStarted" => {
                open.insert(&e.audit_id, (e.resource(), audit::rfc3339_seconds(&e.stage_timestamp).unwrap_or(0.0)));
            }
            "ResponseComplete" => {
                if let Some((res, start)) = open.remove(e.audit_id.as_str()) {
                    let end = audit::rfc3339_seconds(&e.stage_timestamp).unwrap_or(start);
                    let p = points.entry(res.to_string()).or_default();
                    p.push((start, 1));
                    p.push((end, -1));
                }
            }
            _ => {}
        }
    }
    for (res, start) in open.values() {
        let p = points.entry(res.to_string()).or_default();
        p.push((*start, 1));
        if let Some(end) = restarts.iter().find(|r| **r >= *start) {
            p.push((*end, -1));
        }
    }
    points
        .into_iter()
        .map(|(res, mut p)| {
            // At a tie the end comes first: a watch replaced at once is not two.
            p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let (mut now, mut most) = (0i32, 0i32);
            for (_, d) in p {
                now += d;
                most = most.max(now);
            }
            (res, most as usize)
        })
        .collect()
}

pub async fn webhook_requests_in_the_audit_log(s: &mut Suite) -> Result<()> {
    let user = webhook_user(s)?;
    let all: Vec<Event> = audit::read(&s.cp.audit_log)?.into_iter().filter(|e| e.user.username == user).collect();
    let requests: Vec<&Event> = all.iter().filter(|e| e.is_request()).collect();
    ensure!(!requests.is_empty(), "no request of {user} in the audit log");
    // Two kinds of LIST, both served from the watch cache of a v1.34 server
    // (cluster/src/list.rs says why): a cache's relist is `resourceVersion=0`
    // in one response; the scheduled audit's (the webhook-audit check ran one
    // under this ServiceAccount) are pages — `limit` or `continue` and no
    // resourceVersion, consistent reads the cache answers since 1.31.
    let (mut lists, mut paged) = (0, 0);
    for e in requests.iter().filter(|e| e.verb == "list") {
        lists += 1;
        let rv = e.query("resourceVersion");
        let paging = e.query("limit").is_some() || e.query("continue").is_some();
        match (rv.as_deref(), paging) {
            (Some("0"), false) => {}
            (None, true) => paged += 1,
            _ => return Err(format!("a list neither a cache's relist nor a page: {}", e.request_uri)),
        }
    }
    for e in &requests {
        // The chart's ClusterRole grants all the webhook asks for.
        ensure!(e.code() != 403, "the webhook was forbidden: {}", e.request_uri);
        ensure!(e.resource() != "secrets", "the webhook read a Secret: {}", e.request_uri);
        if e.resource() == "configmaps" {
            ensure!(e.verb == "get", "the webhook did more than GET a ConfigMap: {} {}", e.verb, e.request_uri);
        }
    }
    let concurrent = max_concurrent_watches(&all, &s.cp.restarts);
    for (res, n) in &concurrent {
        ensure!(*n == 1, "{n} watches of {res} open at once");
    }
    // One client-side token bucket: in any window of T seconds at most
    // burst + qps * T requests (the chart's --kube-api-qps and --kube-api-burst).
    let install = s.install.as_ref().ok_or("no chart install")?;
    let flag = |name: &str| {
        install.args.iter().find_map(|a| a.strip_prefix(&format!("{name}=")).and_then(|v| v.parse::<f64>().ok()))
    };
    let (qps, burst) = (flag("--kube-api-qps").unwrap_or(5.0), flag("--kube-api-burst").unwrap_or(10.0));
    let mut times: Vec<f64> = requests.iter().map(|e| e.received_seconds()).collect();
    times.sort_by(f64::total_cmp);
    let mut windows = serde_json::Map::new();
    for t in [1.0, 5.0, 30.0] {
        let most = max_in_window(&times, t);
        // The server stamps arrival, not departure: allow one request of jitter.
        ensure!(most as f64 <= burst + qps * t + 1.0, "{most} requests in {t} s, over burst {burst} + {qps}/s");
        windows.insert(format!("max_requests_in_{t}s"), most.into());
    }
    let watches = requests.iter().filter(|e| e.verb == "watch").count();
    eprintln!(
        "e2e:      {} requests by the webhook: {lists} lists ({paged} of them an audit's pages, the rest resourceVersion=0), \
         {watches} watches over {} collections, at most one open per collection; windows {windows:?}",
        requests.len(),
        concurrent.len()
    );
    s.measured.insert(
        "webhook_requests".into(),
        serde_json::json!({"requests": requests.len(), "lists": lists, "paged_lists": paged, "watches": watches, "windows": windows}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_requests() {
        let t = [0.0, 0.1, 0.2, 1.5, 1.6, 10.0];
        assert_eq!(max_in_window(&t, 1.0), 3);
        assert_eq!(max_in_window(&t, 2.0), 5);
        assert_eq!(max_in_window(&[], 1.0), 0);
    }

    fn ev(id: &str, stage: &str, at: &str) -> Event {
        let line = format!(
            r#"{{"auditID":"{id}","stage":"{stage}","verb":"watch","requestURI":"/api/v1/pods?watch=1","user":{{"username":"u"}},"objectRef":{{"resource":"pods"}},"requestReceivedTimestamp":"{at}","stageTimestamp":"{at}"}}"#
        );
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn concurrent_watches_from_start_and_end() {
        let events = vec![
            ev("a", "ResponseStarted", "2026-01-01T00:00:00Z"),
            ev("a", "ResponseComplete", "2026-01-01T00:01:00Z"),
            ev("b", "ResponseStarted", "2026-01-01T00:01:00Z"),
            ev("c", "ResponseStarted", "2026-01-01T00:01:30Z"),
        ];
        assert_eq!(max_concurrent_watches(&events, &[])["pods"], 2);
        assert_eq!(max_concurrent_watches(&events[..3], &[])["pods"], 1);
        // Never completed, but the API server restarted before the next began.
        let restart = audit::rfc3339_seconds("2026-01-01T00:01:10Z").unwrap();
        assert_eq!(max_concurrent_watches(&events[2..], &[restart])["pods"], 1);
    }
}
