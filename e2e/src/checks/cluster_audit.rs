//! `apiload audit` against the real API server (docs/audit.md), run as the
//! ServiceAccount docs/audit.md's RBAC block creates, applied as written:
//!
//! - on every case of `../shared/corpus` (one at a time: cases share names),
//!   and on `fixtures/cluster-audit/`, the audit reports exactly what
//!   `apiload lint` reports on the manifests that were applied, their
//!   Secrets left out (the audit never reads one);
//! - its requests, read back from the audit log, are paged lists without a
//!   resourceVersion and GETs, never a watch or a Secret, nothing forbidden,
//!   and within its rate limit;
//! - a collection it may not list is named and the rest is audited;
//! - its PolicyReports server-side apply, with strict field validation,
//!   against the CRDs Kyverno ships, and hold its findings;
//! - an unreachable server, a server that never answers, refused
//!   credentials and an unknown context are each one clear error.

use crate::audit::{self, Event};
use crate::checks::chart::{ensure_namespace, group_served};
use crate::cluster::{KubeconfigUser, write_kubeconfig};
use crate::manifests::{self, kind_of, name_of, namespace_of};
use crate::{Result, Suite, ensure};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The fixture's namespace.
const NAMESPACE: &str = "e2e-cluster-audit";
/// The ServiceAccount of docs/audit.md.
const AUDITOR: (&str, &str) = ("apiload", "apiload-audit");
/// The size every run judges for, so that lint and audit assume the same
/// cluster (this one has no Nodes).
const NODES: &str = "1000";

/// The YAML between the `audit-rbac` markers of docs/audit.md.
fn documented_rbac(repo: &Path) -> Result<String> {
    let path = repo.join("docs/audit.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = text
        .split_once("<!-- audit-rbac:begin -->")
        .and_then(|(_, rest)| rest.split_once("<!-- audit-rbac:end -->"))
        .map(|(block, _)| block)
        .ok_or("docs/audit.md: no audit-rbac block")?;
    let yaml = block.split_once("```yaml\n").and_then(|(_, y)| y.split_once("```")).map(|(y, _)| y);
    Ok(yaml.ok_or("docs/audit.md: the audit-rbac block holds no yaml")?.to_string())
}

fn user_of(namespace: &str, account: &str) -> String {
    format!("system:serviceaccount:{namespace}:{account}")
}

/// Applies `rbac` (a ServiceAccount, its ClusterRole and binding) and
/// writes a kubeconfig with a token of the account.
async fn install_account(s: &Suite, rbac: &str, account: &str, file: &str) -> Result<PathBuf> {
    ensure_namespace(s, AUDITOR.0).await?;
    s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", "-"], Some(rbac)).await?;
    let token = s.kubectl.ok(&["create", "token", account, "-n", AUDITOR.0, "--duration=1h"], None).await?.stdout;
    let path = s.work(file);
    write_kubeconfig(&path, &s.cp.server_url(), &s.cp.pki.ca_path(), KubeconfigUser::Token(token.trim()))?;
    Ok(path)
}

async fn auditor(s: &Suite) -> Result<PathBuf> {
    let rbac = documented_rbac(&s.args.repo)?;
    install_account(s, &rbac, AUDITOR.1, "cluster-audit.kubeconfig").await
}

pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `apiload args` in the suite's work folder, killed after 120 s.
pub(crate) async fn apiload(s: &Suite, args: &[&str]) -> Result<Run> {
    apiload_in(s, &s.work(""), args).await
}

/// Runs `apiload args` in `dir`, killed after 120 s.
pub(crate) async fn apiload_in(s: &Suite, dir: &std::path::Path, args: &[&str]) -> Result<Run> {
    let mut cmd = tokio::process::Command::new(s.args.apiload_bin.join("apiload"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .map_err(|_| format!("apiload {} took more than 120 s", args.join(" ")))?
        .map_err(|e| format!("cannot run apiload: {e}"))?;
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    ensure!(!run.stderr.contains("panicked"), "apiload {} panicked:\n{}", args.join(" "), run.stderr);
    Ok(run)
}

fn json_of(run: &Run, what: &str) -> Result<Value> {
    serde_json::from_str(&run.stdout).map_err(|e| format!("{what}: not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// A finding as both commands report it: rule, severity, the workload it is
/// about (or nothing) and its message. Locations differ by nature (a file's
/// line, the live object's line).
type Finding = (String, String, String, String);

fn workload_of(d: &Value) -> String {
    let w = &d["workload"];
    if w.is_null() {
        return String::new();
    }
    let ns = w["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
    format!("{} {ns}{}", w["kind"].as_str().unwrap_or(""), w["name"].as_str().unwrap_or(""))
}

fn finding(d: &Value) -> Finding {
    let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
    (s("rule"), s("severity"), workload_of(d), s("message"))
}

/// `<cluster>/NAMESPACE/KIND/NAME` or `<cluster>/KIND/NAME`, the audit's
/// source names, of the applied objects; and their workloads as
/// [`workload_of`] writes them.
fn audited_names(objects: &[&Value]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut sources = BTreeSet::new();
    let mut workloads = BTreeSet::new();
    for o in objects {
        let kind = kind_of(o);
        let Some(k) = apiload_rules::kube::kinds::analyzed(kind) else { continue };
        let name = name_of(o);
        if k.namespaced {
            let ns = namespace_of(o).unwrap_or("default");
            sources.insert(format!("<cluster>/{ns}/{kind}/{name}"));
            workloads.insert(format!("{kind} {ns}/{name}"));
        } else {
            sources.insert(format!("<cluster>/{kind}/{name}"));
            workloads.insert(format!("{kind} {name}"));
        }
    }
    (sources, workloads)
}

/// The audit's findings about the applied objects (the cluster holds more).
fn audit_findings_about(report: &Value, objects: &[&Value]) -> Vec<Finding> {
    let (sources, workloads) = audited_names(objects);
    let mut out: Vec<Finding> = report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| {
            let w = workload_of(d);
            if w.is_empty() {
                d["location"]["file"].as_str().is_some_and(|f| sources.contains(f))
            } else {
                workloads.contains(&w)
            }
        })
        .map(finding)
        .collect();
    out.sort();
    out
}

fn lint_findings(report: &Value) -> Vec<Finding> {
    let mut out: Vec<Finding> = report["diagnostics"].as_array().into_iter().flatten().map(finding).collect();
    out.sort();
    out
}

/// What is in one list and not the other, for the failure message.
fn difference(lint: &[Finding], audit: &[Finding]) -> String {
    let count = |v: &[Finding]| {
        let mut m: BTreeMap<Finding, i32> = BTreeMap::new();
        for f in v {
            *m.entry(f.clone()).or_default() += 1;
        }
        m
    };
    let (l, a) = (count(lint), count(audit));
    let mut out = String::new();
    for (f, n) in &l {
        if a.get(f) != Some(n) {
            out.push_str(&format!("  lint {n}x, audit {}x: {f:?}\n", a.get(f).unwrap_or(&0)));
        }
    }
    for (f, n) in &a {
        if !l.contains_key(f) {
            out.push_str(&format!("  lint 0x, audit {n}x: {f:?}\n"));
        }
    }
    out
}

/// The documents of a manifest this server can take (its group served),
/// and the kinds left out.
async fn servable(s: &Suite, name: &str, text: &str) -> Result<(Vec<Value>, Vec<String>)> {
    let mut served: BTreeMap<String, bool> = BTreeMap::new();
    let mut keep = Vec::new();
    let mut left_out = Vec::new();
    for d in manifests::documents(name, text)? {
        let api_version = d["apiVersion"].as_str().unwrap_or("").to_string();
        if !served.contains_key(&api_version) {
            let ok = match api_version.split_once('/') {
                // The core group; and a group version the server serves.
                None => true,
                Some((group, _)) => {
                    group_served(&s.admin, group).await? && {
                        let req = http::Request::get(format!("/apis/{api_version}"))
                            .body(Vec::new())
                            .map_err(|e| e.to_string())?;
                        s.admin.request_text(req).await.is_ok()
                    }
                }
            };
            served.insert(api_version.clone(), ok);
        }
        if served[&api_version] {
            keep.push(d);
        } else {
            left_out.push(format!("{} {api_version}", kind_of(&d)));
        }
    }
    Ok((keep, left_out))
}

/// Applies `objects` (their namespaces created first); kubectl's errors
/// are returned, its warnings are not ours to judge.
async fn apply(s: &Suite, file: &Path, objects: &[&Value]) -> Result<()> {
    let namespaces: BTreeSet<&str> = objects.iter().filter_map(|o| namespace_of(o)).collect();
    for ns in namespaces {
        ensure_namespace(s, ns).await?;
    }
    std::fs::write(file, manifests::stream(objects)).map_err(|e| e.to_string())?;
    let path = file.display().to_string();
    s.kubectl
        .ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "--force-conflicts", "-f", &path], None)
        .await
        .map(|_| ())
}

async fn lint(s: &Suite, file: &Path) -> Result<Value> {
    let path = file.display().to_string();
    let run = apiload(s, &["lint", "--no-config", "--nodes", NODES, "--format", "json", &path]).await?;
    ensure!(run.code <= 1, "apiload lint {path} exited {}:\n{}", run.code, run.stderr);
    json_of(&run, "apiload lint")
}

async fn audit_json(s: &Suite, kubeconfig: &Path, extra: &[&str]) -> Result<(Run, Value)> {
    let kc = kubeconfig.display().to_string();
    let mut args =
        vec!["audit", "--kubeconfig", &kc, "--no-config", "--nodes", NODES, "--format", "json", "--progress", "never"];
    args.extend_from_slice(extra);
    let run = apiload(s, &args).await?;
    let json = json_of(&run, "apiload audit")?;
    Ok((run, json))
}

/// The corpus's cases (or the fixture), each applied alone, audited, linted and removed.
pub async fn reports_what_lint_reports(s: &mut Suite) -> Result<()> {
    let kubeconfig = auditor(s).await?;
    let mut cases: Vec<(String, String)> = Vec::new();
    match &s.shared {
        Some(shared) => {
            let corpus = shared.join("corpus");
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(&corpus)
                .map_err(|e| format!("{}: {e}", corpus.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("manifest.yaml").is_file())
                .collect();
            dirs.sort();
            for d in dirs {
                let name = d.file_name().unwrap_or_default().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(d.join("manifest.yaml")).map_err(|e| format!("{name}: {e}"))?;
                cases.push((name, text));
            }
        }
        None => {
            eprintln!("e2e:      ../shared/corpus is absent: the fixture only");
        }
    }
    let fixture = s.args.repo.join("e2e/fixtures/cluster-audit/agents.yaml");
    cases.push((
        "fixture".into(),
        std::fs::read_to_string(&fixture).map_err(|e| format!("{}: {e}", fixture.display()))?,
    ));

    let mut compared = 0;
    let mut findings = 0;
    let mut errors = 0;
    let mut not_applied: Vec<String> = Vec::new();
    let mut left_out: BTreeMap<String, usize> = BTreeMap::new();
    let mut mismatches = String::new();
    let mut with_secrets: Vec<String> = Vec::new();
    for (name, text) in &cases {
        let (docs, skipped) = servable(s, name, text).await?;
        for k in skipped {
            *left_out.entry(k).or_default() += 1;
        }
        let objects: Vec<&Value> = docs.iter().collect();
        let file = s.work(&format!("cluster-audit-{name}.yaml"));
        if let Err(e) = apply(s, &file, &objects).await {
            not_applied.push(format!("{name}: {}", e.lines().last().unwrap_or("")));
            // Whatever part of it was created goes.
            let path = file.display().to_string();
            let _ = s.kubectl.run(&["delete", "-f", &path, "--ignore-not-found", "--wait=false"], None).await;
            continue;
        }
        // The audit never reads a Secret (docs/audit.md): lint the same
        // objects without theirs, so that both judge what the audit can see.
        let without_secrets: Vec<&Value> = objects.iter().copied().filter(|o| kind_of(o) != "Secret").collect();
        if without_secrets.len() < objects.len() {
            with_secrets.push(name.clone());
        }
        let lint_file = s.work(&format!("cluster-audit-{name}.lint.yaml"));
        std::fs::write(&lint_file, manifests::stream(&without_secrets)).map_err(|e| e.to_string())?;
        let linted = lint_findings(&lint(s, &lint_file).await?);
        let (run, report) = audit_json(s, &kubeconfig, &[]).await?;
        ensure!(run.code <= 1, "{name}: apiload audit exited {}:\n{}", run.code, run.stderr);
        let audited = audit_findings_about(&report, &objects);
        if linted != audited {
            mismatches.push_str(&format!("{name}:\n{}", difference(&linted, &audited)));
        }
        compared += 1;
        findings += linted.len();
        errors += linted.iter().filter(|f| f.1 == "error").count();
        // Namespaces stay: one deleted now would still be terminating when
        // the next case that uses it is applied.
        let removable: Vec<&Value> = objects.iter().copied().filter(|o| kind_of(o) != "Namespace").collect();
        let remove_file = s.work(&format!("cluster-audit-{name}.remove.yaml"));
        std::fs::write(&remove_file, manifests::stream(&removable)).map_err(|e| e.to_string())?;
        let path = remove_file.display().to_string();
        // Without waiting: what the audit reads has no finalizer and goes at
        // once; a PersistentVolumeClaim would wait for a controller this
        // control plane does not run.
        s.kubectl.ok(&["delete", "-f", &path, "--ignore-not-found", "--wait=false"], None).await?;
    }
    std::fs::write(s.work("cluster-audit-mismatches.txt"), &mismatches).map_err(|e| e.to_string())?;
    eprintln!(
        "e2e:      {compared} of {} cases audited and linted: {findings} findings ({errors} errors); Secrets left out of lint's input (the audit reads none) in {with_secrets:?}; not applied: {not_applied:?}; kinds this server does not serve, left out: {left_out:?}",
        cases.len()
    );
    s.measured.insert(
        "cluster_audit_compared".into(),
        serde_json::json!({"cases": compared, "findings": findings, "errors": errors, "not_applied": not_applied, "secrets_left_out": with_secrets}),
    );
    ensure!(mismatches.is_empty(), "the audit and lint disagree (cluster-audit-mismatches.txt):\n{mismatches}");
    // Not vacuous: the cases have findings, errors among them.
    ensure!(findings > 0 && errors > 0, "{findings} findings, {errors} errors: nothing was compared");
    if s.shared.is_some() {
        ensure!(compared * 10 >= cases.len() * 9, "only {compared} of {} cases could be applied", cases.len());
    }
    Ok(())
}

/// The most requests in any window of `t` seconds (sorted times).
fn max_in_window(times: &[f64], t: f64) -> usize {
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] > t {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

async fn apply_fixture(s: &Suite) -> Result<()> {
    let fixture = s.args.repo.join("e2e/fixtures/cluster-audit/agents.yaml");
    let text = std::fs::read_to_string(&fixture).map_err(|e| format!("{}: {e}", fixture.display()))?;
    let docs = manifests::documents("agents.yaml", &text)?;
    let objects: Vec<&Value> = docs.iter().collect();
    ensure_namespace(s, NAMESPACE).await?;
    apply(s, &s.work("cluster-audit-fixture.yaml"), &objects).await
}

/// The DaemonSet's findings name it and the Helm release that installed it.
fn fixture_findings(report: &Value) -> Vec<&Value> {
    report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| workload_of(d) == format!("DaemonSet {NAMESPACE}/node-agent"))
        .collect()
}

pub async fn requests_keep_to_the_rate_limit_and_read_no_secret(s: &mut Suite) -> Result<()> {
    let kubeconfig = auditor(s).await?;
    apply_fixture(s).await?;
    let (qps, burst) = (5.0, 5.0);
    let mark = audit::mark(&s.cp.audit_log);
    let started = std::time::Instant::now();
    let (run, report) = audit_json(s, &kubeconfig, &["--kube-api-qps", "5", "--kube-api-burst", "5"]).await?;
    let took = started.elapsed().as_secs_f64();
    ensure!(run.code == 1, "apiload audit exited {} (1: findings):\n{}", run.code, run.stderr);
    let ds = fixture_findings(&report);
    ensure!(ds.iter().any(|d| d["severity"] == "error"), "no error about the DaemonSet:\n{}", run.stdout);
    ensure!(
        ds.iter().all(|d| d["related"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["message"].as_str().is_some_and(|m| m.contains("Helm release e2e-cluster-audit/node-agent")))),
        "a finding about the DaemonSet does not name its Helm release:\n{}",
        run.stdout
    );
    ensure!(
        ds.iter().all(|d| d["location"]["file"] == format!("<cluster>/{NAMESPACE}/DaemonSet/node-agent")
            || d["location"]["file"].as_str().is_some_and(|f| f.starts_with("<cluster>/"))),
        "a finding that does not point into a live object:\n{}",
        run.stdout
    );
    // The audit log is written asynchronously: wait for the last events.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let user = user_of(AUDITOR.0, AUDITOR.1);
    let events: Vec<Event> =
        audit::read_since(&s.cp.audit_log, mark)?.into_iter().filter(|e| e.user.username == user).collect();
    let requests: Vec<&Event> = events.iter().filter(|e| e.is_request()).collect();
    ensure!(requests.len() > 15, "{} requests of {user} in the audit log", requests.len());
    let mut lists = 0;
    for e in &requests {
        ensure!(e.verb == "list" || e.verb == "get", "the audit sent a {}: {}", e.verb, e.request_uri);
        ensure!(e.resource() != "secrets", "the audit read a Secret: {}", e.request_uri);
        ensure!(e.code() != 403, "the documented RBAC does not suffice: 403 on {}", e.request_uri);
        ensure!(e.query("watch").is_none(), "the audit watched: {}", e.request_uri);
        if e.verb == "list" {
            lists += 1;
            ensure!(e.query("limit").is_some(), "a list without a page size: {}", e.request_uri);
            ensure!(
                e.query("resourceVersion").is_none(),
                "a paged list with a resourceVersion (the cache would ignore the limit for 0): {}",
                e.request_uri
            );
        }
    }
    let note = format!("in {} requests", requests.len());
    ensure!(run.stderr.contains(&note), "the audit's note does not say `{note}`:\n{}", run.stderr);
    let mut times: Vec<f64> = requests.iter().map(|e| e.received_seconds()).collect();
    times.sort_by(f64::total_cmp);
    let mut windows = serde_json::Map::new();
    for t in [1.0, 2.0, 5.0] {
        let most = max_in_window(&times, t);
        // The server stamps arrival, not departure: one request of jitter.
        ensure!(most as f64 <= burst + qps * t + 1.0, "{most} requests in {t} s, over burst {burst} + {qps}/s");
        windows.insert(format!("max_requests_in_{t}s"), most.into());
    }
    // The limit held it back: n requests need (n - burst) / qps seconds.
    let least = (requests.len() as f64 - burst) / qps;
    ensure!(took >= least * 0.9, "{} requests in {took:.1} s: the rate limit did not hold them", requests.len());
    eprintln!(
        "e2e:      {} requests ({lists} paged lists, the rest GETs) in {took:.1} s at {qps}/s burst {burst}; windows {windows:?}",
        requests.len()
    );
    s.measured.insert(
        "cluster_audit_requests".into(),
        serde_json::json!({"requests": requests.len(), "lists": lists, "seconds": took, "windows": windows}),
    );
    Ok(())
}

pub async fn a_forbidden_collection_is_named_and_the_rest_audited(s: &mut Suite) -> Result<()> {
    apply_fixture(s).await?;
    let rbac = documented_rbac(&s.args.repo)?;
    let cronjobs = "  - apiGroups: [batch]\n    resources: [cronjobs]\n    verbs: [list]\n";
    ensure!(rbac.contains(cronjobs), "docs/audit.md's ClusterRole has no rule for cronjobs alone");
    let partial = rbac.replace(cronjobs, "").replace("apiload-audit", "apiload-audit-partial");
    let kubeconfig = install_account(s, &partial, "apiload-audit-partial", "cluster-audit-partial.kubeconfig").await?;
    let (run, report) = audit_json(s, &kubeconfig, &[]).await?;
    ensure!(run.code == 2, "exit {} with a collection unread (2: incomplete):\n{}", run.code, run.stderr);
    let named = "not audited: listing cronjobs.batch: forbidden (403)";
    ensure!(run.stderr.contains(named), "stderr does not say `{named}`:\n{}", run.stderr);
    ensure!(
        report["warnings"].as_array().into_iter().flatten().any(|w| w.as_str().is_some_and(|w| w.contains(named))),
        "the report's warnings do not say `{named}`:\n{}",
        run.stdout
    );
    ensure!(
        fixture_findings(&report).iter().any(|d| d["severity"] == "error"),
        "the rest was not audited: no finding about the DaemonSet:\n{}",
        run.stdout
    );
    ensure!(
        run.stderr.lines().filter(|l| l.starts_with("error:")).count() == 1,
        "more than one error:\n{}",
        run.stderr
    );
    eprintln!("e2e:      {}", run.stderr.lines().find(|l| l.contains(named)).unwrap_or(""));
    Ok(())
}

/// The PolicyReport CRDs Kyverno ships, from its Go module (the module
/// proxy, as the control plane is built).
fn kyverno_crds(s: &Suite) -> Result<Vec<PathBuf>> {
    const MODULE: &str = "github.com/kyverno/kyverno@v1.19.1";
    let out = std::process::Command::new("go")
        .args(["mod", "download", "-json", MODULE])
        .current_dir(s.args.repo.join("e2e/controlplane"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|e| format!("go mod download {MODULE}: {e}"))?;
    let info: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "go mod download {MODULE}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let dir = PathBuf::from(info["Dir"].as_str().ok_or_else(|| format!("go mod download {MODULE}: no Dir: {info}"))?);
    let crds: Vec<PathBuf> = ["wgpolicyk8s.io_policyreports.yaml", "wgpolicyk8s.io_clusterpolicyreports.yaml"]
        .iter()
        .map(|f| dir.join("config/crds/policyreport").join(f))
        .collect();
    for c in &crds {
        ensure!(c.is_file(), "{} is not in {MODULE}", c.display());
    }
    Ok(crds)
}

/// (rule name, result, `Kind namespace/name`) of every result of the
/// stored reports about the fixture.
type ReportResult = (String, String, String);

/// apiload's PolicyReports and ClusterPolicyReports as the server stores them.
pub(crate) async fn stored_reports(s: &Suite) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for kind in ["policyreports", "clusterpolicyreports"] {
        let got = s
            .kubectl
            .ok(&["get", kind, "-A", "-l", "app.kubernetes.io/managed-by=apiload", "-o", "json"], None)
            .await?;
        let list: Value = serde_json::from_str(&got.stdout).map_err(|e| format!("kubectl get {kind}: {e}"))?;
        out.extend(list["items"].as_array().cloned().unwrap_or_default());
    }
    Ok(out)
}

fn stored_results(reports: &[Value]) -> Vec<ReportResult> {
    let mut out = Vec::new();
    for report in reports {
        for r in report["results"].as_array().into_iter().flatten() {
            for res in r["resources"].as_array().into_iter().flatten() {
                if res["namespace"] != NAMESPACE && !res["name"].as_str().is_some_and(|n| n.starts_with(NAMESPACE)) {
                    continue;
                }
                let ns = res["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
                out.push((
                    r["rule"].as_str().unwrap_or("").to_string(),
                    r["result"].as_str().unwrap_or("").to_string(),
                    format!("{} {ns}{}", res["kind"].as_str().unwrap_or(""), res["name"].as_str().unwrap_or("")),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Applies the PolicyReport CRDs Kyverno ships and waits until they are served.
pub(crate) async fn install_policy_report_crds(s: &Suite) -> Result<()> {
    let crds = kyverno_crds(s)?;
    for c in &crds {
        let path = c.display().to_string();
        s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", &path], None).await?;
    }
    for crd in ["policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"] {
        s.kubectl.ok(&["wait", "--for=condition=Established", &format!("crd/{crd}"), "--timeout=60s"], None).await?;
    }
    Ok(())
}

pub async fn policy_reports_apply_and_hold_the_findings(s: &mut Suite) -> Result<()> {
    let kubeconfig = auditor(s).await?;
    apply_fixture(s).await?;
    install_policy_report_crds(s).await?;
    let reports_file = s.work("cluster-audit-policyreports.yaml");
    let json_file = s.work("cluster-audit.json");
    let kc = kubeconfig.display().to_string();
    let policyreport = format!("policyreport={}", reports_file.display());
    let json = format!("json={}", json_file.display());
    let run = apiload(
        s,
        &[
            "audit",
            "--kubeconfig",
            &kc,
            "--no-config",
            "--nodes",
            NODES,
            "--progress",
            "never",
            "--format",
            &policyreport,
            "--format",
            &json,
        ],
    )
    .await?;
    ensure!(run.code <= 1, "apiload audit exited {}:\n{}", run.code, run.stderr);
    let path = reports_file.display().to_string();
    let out = s
        .kubectl
        .ok(&["apply", "--server-side", "--field-manager=apiload", "--validate=strict", "-f", &path], None)
        .await?;
    let warnings = out.warnings();
    ensure!(warnings.is_empty(), "the API server warned about the reports:\n{}", warnings.join("\n"));
    let reports = stored_reports(s).await?;
    // Every stored report's summary counts its results.
    for report in &reports {
        let mut counted: BTreeMap<String, u64> = BTreeMap::new();
        for r in report["results"].as_array().into_iter().flatten() {
            *counted.entry(r["result"].as_str().unwrap_or("").to_string()).or_default() += 1;
        }
        for (k, n) in &counted {
            ensure!(report["summary"][k] == *n, "{}: summary.{k} is not {n}", report["metadata"]["name"]);
        }
    }
    let stored = stored_results(&reports);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_file).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", json_file.display()))?;
    let mut expected: Vec<ReportResult> = Vec::new();
    for d in report["diagnostics"].as_array().into_iter().flatten() {
        let w = workload_of(d);
        if !w.contains(&format!(" {NAMESPACE}/")) {
            continue;
        }
        let result = if d["severity"] == "error" { "fail" } else { "warn" };
        expected.push((d["name"].as_str().unwrap_or("").to_string(), result.to_string(), w));
    }
    // The quiet Deployment passes.
    expected.push((String::new(), "pass".into(), format!("Deployment {NAMESPACE}/web")));
    expected.sort();
    let findings: Vec<&ReportResult> = stored.iter().filter(|r| r.1 != "pass").collect();
    let expected_findings: Vec<&ReportResult> = expected.iter().filter(|r| r.1 != "pass").collect();
    ensure!(
        findings == expected_findings,
        "the stored reports' results {findings:?}\ndo not match the audit's findings {expected_findings:?}"
    );
    ensure!(
        stored.contains(&(String::new(), "pass".into(), format!("Deployment {NAMESPACE}/web"))),
        "no pass for the quiet Deployment: {stored:?}"
    );
    ensure!(!findings.is_empty(), "no finding in the reports");
    eprintln!(
        "e2e:      {} reports applied with strict validation; {} results about the fixture ({} findings)",
        reports.len(),
        stored.len(),
        findings.len()
    );
    Ok(())
}

pub async fn bad_connections_are_clear_errors(s: &mut Suite) -> Result<()> {
    let ca = s.cp.pki.ca_path();
    // Nothing listens on a port just freed.
    let port = crate::process::free_port()?;
    let unreachable = s.work("cluster-audit-unreachable.kubeconfig");
    write_kubeconfig(&unreachable, &format!("https://127.0.0.1:{port}"), &ca, KubeconfigUser::Token("x"))?;
    // A server that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let silent_port = silent.local_addr().map_err(|e| e.to_string())?.port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            open.push(c);
        }
    });
    let hanging = s.work("cluster-audit-silent.kubeconfig");
    write_kubeconfig(&hanging, &format!("https://127.0.0.1:{silent_port}"), &ca, KubeconfigUser::Token("x"))?;
    // The real server, a token it never issued.
    let refused = s.work("cluster-audit-refused.kubeconfig");
    write_kubeconfig(&refused, &s.cp.server_url(), &ca, KubeconfigUser::Token("not-a-token"))?;
    let cases: Vec<(&str, PathBuf, Vec<&str>, String)> = vec![
        ("unreachable", unreachable, vec![], format!("cannot reach the API server at https://127.0.0.1:{port}")),
        ("silent", hanging, vec!["--request-timeout", "2s"], "did not answer within 2 s".to_string()),
        ("refused", refused.clone(), vec![], "refused the credentials (401 Unauthorized)".to_string()),
        ("no such context", refused, vec!["--context", "prod"], "no context `prod`; it has e2e".to_string()),
    ];
    let mut said = Vec::new();
    for (what, kubeconfig, extra, expected) in cases {
        let kc = kubeconfig.display().to_string();
        let mut args = vec!["audit", "--kubeconfig", &kc, "--no-config", "--progress", "never"];
        args.extend(extra);
        let started = std::time::Instant::now();
        let run = apiload(s, &args).await?;
        let took = started.elapsed().as_secs_f64();
        ensure!(run.code == 2, "{what}: exit {} (2 expected):\n{}", run.code, run.stderr);
        let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        ensure!(
            errors.len() == 1 && errors[0].contains(&expected),
            "{what}: stderr is not one error saying `{expected}`:\n{}",
            run.stderr
        );
        ensure!(run.stdout.is_empty(), "{what}: a report was written although nothing was read:\n{}", run.stdout);
        ensure!(took < 30.0, "{what}: took {took:.1} s");
        said.push(format!("{what} ({took:.1} s): {}", errors[0]));
    }
    held.abort();
    for line in said {
        eprintln!("e2e:      {line}");
    }
    Ok(())
}

/// Nodes of the scale check, labelled so that they can be removed at once.
const SCALE_NODES: usize = 5_000;
const SCALE_LABEL: &str = "apiload.e2e/scale";

fn scale_node(i: usize) -> k8s_openapi::api::core::v1::Node {
    let pool = ["general", "general", "general", "memory", "gpu"][i % 5];
    let mut taints = serde_json::json!([]);
    if pool == "gpu" {
        taints = serde_json::json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]);
    }
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("scale-{i:05}"), "labels": {
            SCALE_LABEL: "true", "kubernetes.io/hostname": format!("scale-{i:05}"), "kubernetes.io/os": "linux",
            "cloud.google.com/gke-nodepool": pool, "topology.kubernetes.io/zone": format!("zone-{}", i % 3),
        }},
        "spec": {"taints": taints},
    }))
    .expect("a Node")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 10,000-object generated corpus (`gen-scale-corpus.py`, as the RBAC
/// oracle loads it) and 5,000 Nodes in three pools: the audit reports what
/// lint reports on the corpus, and its wall time and peak memory are
/// measured over five runs (BENCHMARKS.md; `APILOAD_AUDIT_BENCH_BIN`
/// names another build of apiload to time, e.g. target/release). Nothing is
/// asserted about speed here.
pub async fn at_scale(s: &mut Suite) -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    let Some(shared) = s.shared.clone() else {
        return Err(format!("{}../shared is absent: no generated corpus", crate::checks::SKIP));
    };
    let kubeconfig = auditor(s).await?;
    let corpus = super::scale_corpus(s, &shared).await?;
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&corpus).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "yaml"));
    files.sort();
    // Services are not read by the audit and cost the load most of its
    // time; Namespaces are created first; Secrets are applied (the audit
    // must leave them alone) and left out of lint's input.
    let mut all = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| e.to_string())?;
        all.extend(manifests::documents(&f.display().to_string(), &text)?);
    }
    let objects: Vec<&Value> = all.iter().filter(|d| kind_of(d) != "Service").collect();
    let namespaces: BTreeSet<String> = objects
        .iter()
        .filter_map(|o| if kind_of(o) == "Namespace" { Some(name_of(o)) } else { namespace_of(o) })
        .map(str::to_string)
        .collect();
    for ns in &namespaces {
        ensure_namespace(s, ns).await?;
    }
    let t = std::time::Instant::now();
    let chunks: Vec<PathBuf> = objects
        .chunks(500)
        .enumerate()
        .map(|(i, chunk)| {
            let path = s.work(&format!("cluster-audit-scale-{i:03}.yaml"));
            std::fs::write(&path, manifests::stream(chunk)).map(|_| path).map_err(|e| e.to_string())
        })
        .collect::<Result<_>>()?;
    let applied: Vec<Result<()>> = futures::stream::iter(chunks.iter().map(|p| {
        let kubectl = s.kubectl.clone();
        let path = p.display().to_string();
        async move {
            kubectl
                .ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "--force-conflicts", "-f", &path], None)
                .await
                .map(|_| ())
        }
    }))
    .buffer_unordered(3)
    .collect()
    .await;
    applied.into_iter().collect::<Result<Vec<()>>>()?;
    let node_api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(s.admin.clone());
    let pp = kube::api::PostParams::default();
    futures::stream::iter(0..SCALE_NODES)
        .map(|i| {
            let api = node_api.clone();
            let pp = pp.clone();
            async move {
                match api.create(&pp, &scale_node(i)).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(format!("node {i}: {e}")),
                }
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    let load_seconds = t.elapsed().as_secs_f64();
    let result = measure_at_scale(s, &kubeconfig, &objects).await;
    // The Nodes go, whatever happened: the cost check counts its own.
    let dp = kube::api::DeleteParams::default();
    let lp = kube::api::ListParams::default().labels(&format!("{SCALE_LABEL}=true"));
    node_api.delete_collection(&dp, &lp).await.map_err(|e| format!("deleting the scale Nodes: {e}"))?;
    let (figures, rss_mib, wall) = result?;
    eprintln!(
        "e2e:      {} objects and {SCALE_NODES} Nodes loaded in {load_seconds:.0} s; apiload audit ({}): median {wall:.2} s, peak RSS median {rss_mib:.0} MiB over 5 runs; {figures}",
        objects.len(),
        bench_bin(s).display()
    );
    Ok(())
}

fn bench_bin(s: &Suite) -> PathBuf {
    std::env::var_os("APILOAD_AUDIT_BENCH_BIN").map_or_else(|| s.args.apiload_bin.clone(), PathBuf::from)
}

/// Lint and audit agree on the corpus; then five timed audits.
async fn measure_at_scale(s: &mut Suite, kubeconfig: &Path, objects: &[&Value]) -> Result<(String, f64, f64)> {
    let without_secrets: Vec<&Value> = objects.iter().copied().filter(|o| kind_of(o) != "Secret").collect();
    let lint_file = s.work("cluster-audit-scale.lint.yaml");
    std::fs::write(&lint_file, manifests::stream(&without_secrets)).map_err(|e| e.to_string())?;
    let linted = lint_findings(&lint(s, &lint_file).await?);
    let profile = s.work("cluster-audit-scale-profile.yaml");
    let profile_arg = profile.display().to_string();
    let (run, report) = audit_json(s, kubeconfig, &["--write-cluster-profile", &profile_arg]).await?;
    ensure!(run.code <= 1, "apiload audit exited {}:\n{}", run.code, run.stderr);
    let audited = audit_findings_about(&report, objects);
    if linted != audited {
        let diff = difference(&linted, &audited);
        std::fs::write(s.work("cluster-audit-scale-mismatches.txt"), &diff).map_err(|e| e.to_string())?;
        return Err(format!("at scale, the audit and lint disagree (cluster-audit-scale-mismatches.txt):\n{diff}"));
    }
    // The cluster profile it wrote: every Node in a pool, the pools named
    // by their GKE label, and lint takes it.
    let text = std::fs::read_to_string(&profile).map_err(|e| format!("{profile_arg}: {e}"))?;
    let written = manifests::documents(&profile_arg, &text)?.into_iter().next().ok_or("an empty cluster profile")?;
    ensure!(written["nodes"] == SCALE_NODES as u64, "the profile's nodes: {}", written["nodes"]);
    ensure!(written["kubernetesVersion"] == "1.34", "the profile's version: {}", written["kubernetesVersion"]);
    let pools = written["nodePools"].as_array().cloned().unwrap_or_default();
    let in_pools: u64 = pools.iter().filter_map(|p| p["nodes"].as_u64()).sum();
    ensure!(in_pools == SCALE_NODES as u64, "{in_pools} Nodes in the profile's pools:\n{text}");
    for name in ["general", "memory", "gpu"] {
        ensure!(
            pools.iter().any(|p| p["name"].as_str().is_some_and(|n| n.starts_with(name))),
            "no pool named {name}:\n{text}"
        );
    }
    let lint_path = lint_file.display().to_string();
    let with_profile =
        apiload(s, &["lint", "--no-config", "--cluster-profile", &profile_arg, "--format", "json", &lint_path]).await?;
    ensure!(with_profile.code <= 1, "lint does not take the written profile:\n{}", with_profile.stderr);
    let kc = kubeconfig.display().to_string();
    let bin = bench_bin(s).join("apiload");
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    let mut note = String::new();
    for i in 0..5 {
        let times = s.work(&format!("cluster-audit-scale-time-{i}.txt"));
        let out = tokio::process::Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%e %M")
            .arg("-o")
            .arg(&times)
            .arg(&bin)
            .args(["audit", "--kubeconfig", &kc, "--no-config", "--format", "json", "--progress", "never"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("/usr/bin/time {}: {e}", bin.display()))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.code().is_some_and(|c| c <= 1), "timed audit {i} exited {:?}:\n{stderr}", out.status.code());
        let text = std::fs::read_to_string(&times).map_err(|e| e.to_string())?;
        // GNU time says `Command exited with non-zero status 1` first when
        // there are findings.
        let line = text.lines().last().unwrap_or("");
        let mut parts = line.split_whitespace();
        let wall: f64 = parts.next().and_then(|x| x.parse().ok()).ok_or(format!("time: {line}"))?;
        let kib: f64 = parts.next().and_then(|x| x.parse().ok()).ok_or(format!("time: {line}"))?;
        walls.push(wall);
        rss.push(kib / 1024.0);
        note = stderr.lines().find(|l| l.starts_with("note: read")).unwrap_or("").to_string();
    }
    ensure!(note.contains(&format!("{SCALE_NODES} Nodes")), "the audit did not count the Nodes: {note}");
    let (wall, rss_mib) = (median(walls.clone()), median(rss.clone()));
    s.measured.insert(
        "cluster_audit_at_scale".into(),
        serde_json::json!({"objects": objects.len(), "nodes": SCALE_NODES, "findings": linted.len(),
            "wall_seconds": walls, "peak_rss_mib": rss, "median_wall_seconds": wall, "median_peak_rss_mib": rss_mib,
            "binary": bin.display().to_string(), "note": note}),
    );
    Ok((format!("{} findings agree with lint; {note}", linted.len()), rss_mib, wall))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_rbac_block_is_found() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let rbac = documented_rbac(&repo).unwrap();
        assert!(rbac.contains("kind: ClusterRole\n") && rbac.contains("name: apiload-audit\n"), "{rbac}");
    }

    #[test]
    fn findings_about_other_objects_are_left_out() {
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "a", "namespace": "m"}});
        let role =
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}});
        let report = json!({"diagnostics": [
            {"rule": "AL101", "severity": "error", "message": "x", "workload": {"kind": "DaemonSet", "namespace": "m", "name": "a"}, "location": {"file": "<cluster>/m/DaemonSet/a"}},
            {"rule": "AL101", "severity": "error", "message": "y", "workload": {"kind": "DaemonSet", "namespace": "m", "name": "b"}, "location": {"file": "<cluster>/m/DaemonSet/b"}},
            {"rule": "AL301", "severity": "warning", "message": "z", "location": {"file": "<cluster>/ClusterRole/r"}},
            {"rule": "AL301", "severity": "warning", "message": "w", "location": {"file": "<cluster>/ClusterRole/other"}},
        ]});
        let got = audit_findings_about(&report, &[&ds, &role]);
        let rules: Vec<&str> = got.iter().map(|f| f.3.as_str()).collect();
        assert_eq!(rules, ["x", "z"]);
    }
}
