//! The control plane: etcd, kube-apiserver and kube-controller-manager on
//! loopback, configured as a real cluster is (certificates, RBAC and Node
//! authorization, the default admission plugins plus NodeRestriction, an
//! audit log), with no kubelet and no scheduler: Pods stay Pending.

use crate::Result;
use crate::pki::{PemFiles, Pki};
use crate::plain_http;
use crate::process::{Process, free_port};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the binaries built by e2e/run are.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub dir: PathBuf,
}

impl Binaries {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Every request at Metadata level (who, what, when, the answer's code; no
/// bodies). The RequestReceived stage is left out: every request also has a
/// ResponseComplete (or, for watches, ResponseStarted) event.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
";

/// The controllers the suite needs: aggregated ClusterRoles, the
/// ServiceAccounts of new namespaces (the ServiceAccount admission plugin
/// rejects Pods without one), garbage collection of owned objects, and
/// namespace deletion.
pub const CONTROLLERS: &str =
    "clusterrole-aggregation-controller,serviceaccount-controller,garbage-collector-controller,namespace-controller";

pub struct ControlPlane {
    pub work: PathBuf,
    pub bins: Binaries,
    pub pki: Pki,
    pub etcd_port: u16,
    pub apiserver_port: u16,
    pub audit_log: PathBuf,
    pub admin_kubeconfig: PathBuf,
    /// When kube-apiserver was stopped for a restart (seconds since the epoch).
    pub restarts: Vec<f64>,
    apiserver_args: Vec<String>,
    etcd: Option<Process>,
    apiserver: Option<Process>,
    controller_manager: Option<Process>,
}

/// A kubeconfig for `server` with a client certificate or a bearer token.
pub fn write_kubeconfig(path: &Path, server: &str, ca: &Path, user: KubeconfigUser<'_>) -> Result<()> {
    let user_fields = match user {
        KubeconfigUser::Certificate(files) => {
            format!("    client-certificate: {}\n    client-key: {}\n", files.cert.display(), files.key.display())
        }
        KubeconfigUser::Token(token) => format!("    token: {token}\n"),
    };
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: e2e
  user:
{user_fields}contexts:
- name: e2e
  context:
    cluster: e2e
    user: e2e
current-context: e2e
",
        ca = ca.display()
    );
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub enum KubeconfigUser<'a> {
    Certificate(&'a PemFiles),
    Token(&'a str),
}

/// A kube-rs client from a kubeconfig file.
pub async fn client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
    config.read_timeout = Some(Duration::from_secs(120));
    kube::Client::try_from(config).map_err(|e| format!("client for {}: {e}", kubeconfig.display()))
}

fn s(v: impl std::fmt::Display) -> String {
    v.to_string()
}

impl ControlPlane {
    /// Generates the certificates, starts etcd, kube-apiserver and
    /// kube-controller-manager, and waits until the API server is ready and
    /// its bootstrap policy is in place.
    pub async fn start(work: &Path, bins: Binaries) -> Result<ControlPlane> {
        for b in ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"] {
            if !bins.path(b).is_file() {
                return Err(format!("{} is missing: e2e/run builds it", bins.path(b).display()));
            }
        }
        let pki_dir = work.join("pki");
        std::fs::create_dir_all(work.join("logs")).map_err(|e| e.to_string())?;
        let pki = Pki::new(&pki_dir)?;
        let serving = pki.serving(
            "kube-apiserver",
            &["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
        )?;
        let admin = pki.client("admin", "kubernetes-admin", &["system:masters"])?;
        let kcm = pki.client("kube-controller-manager", "system:kube-controller-manager", &[])?;
        let sa = pki.service_account_key()?;
        let etcd_port = free_port()?;
        let etcd_peer = free_port()?;
        let apiserver_port = free_port()?;
        let server = format!("https://127.0.0.1:{apiserver_port}");
        let admin_kubeconfig = work.join("admin.kubeconfig");
        write_kubeconfig(&admin_kubeconfig, &server, &pki.ca_path(), KubeconfigUser::Certificate(&admin))?;
        let kcm_kubeconfig = work.join("kube-controller-manager.kubeconfig");
        write_kubeconfig(&kcm_kubeconfig, &server, &pki.ca_path(), KubeconfigUser::Certificate(&kcm))?;
        let policy = work.join("audit-policy.yaml");
        std::fs::write(&policy, AUDIT_POLICY).map_err(|e| e.to_string())?;
        let audit_log = work.join("audit.log");

        let etcd_args = vec![
            s("--name=e2e"),
            format!("--data-dir={}", work.join("etcd").display()),
            format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-cluster=e2e=http://127.0.0.1:{etcd_peer}"),
            s("--log-level=warn"),
            // Throwaway data on a shared disk: durability buys nothing here.
            s("--unsafe-no-fsync"),
        ];
        let etcd = Process::spawn("etcd", &bins.path("etcd"), &etcd_args, &[], &work.join("logs/etcd.log"))?;
        let mut cp = ControlPlane {
            work: work.to_path_buf(),
            bins,
            pki,
            etcd_port,
            apiserver_port,
            audit_log: audit_log.clone(),
            admin_kubeconfig,
            restarts: Vec::new(),
            apiserver_args: Vec::new(),
            etcd: Some(etcd),
            apiserver: None,
            controller_manager: None,
        };
        cp.wait_etcd().await?;

        let ca = cp.pki.ca_path();
        cp.apiserver_args = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            s("--bind-address=127.0.0.1"),
            s("--advertise-address=127.0.0.1"),
            format!("--secure-port={apiserver_port}"),
            format!("--tls-cert-file={}", serving.cert.display()),
            format!("--tls-private-key-file={}", serving.key.display()),
            format!("--client-ca-file={}", ca.display()),
            s("--authorization-mode=Node,RBAC"),
            // The defaults of v1.34 (NamespaceLifecycle, LimitRanger,
            // ServiceAccount, PodSecurity, Priority, ResourceQuota, the
            // admission webhooks and policies, ...) plus what kubeadm adds.
            s("--enable-admission-plugins=NodeRestriction"),
            s("--allow-privileged=true"),
            // The `kubernetes` Service cannot point at a loopback address.
            s("--endpoint-reconciler-type=none"),
            // The default of 60 s cuts a request short and the client reads a
            // broken body. The cost check sends up to 100 cluster-wide LISTs
            // at once to measure their bytes, not their latency; on two cores
            // shared with builds they took over a minute in one CI run. A
            // real cluster's timeout is part of the outage, not of what the
            // suite measures. (Watches are bounded by --min-request-timeout.)
            s("--request-timeout=5m"),
            s("--service-cluster-ip-range=10.96.0.0/16"),
            s("--service-account-issuer=https://kubernetes.default.svc.cluster.local"),
            format!("--service-account-key-file={}", sa.cert.display()),
            format!("--service-account-signing-key-file={}", sa.key.display()),
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", audit_log.display()),
            s("--audit-log-maxsize=0"),
            s("--audit-log-maxbackup=0"),
            s("--profiling=false"),
            s("--v=1"),
        ];
        cp.start_apiserver().await?;

        let kcm_args = vec![
            format!("--kubeconfig={}", kcm_kubeconfig.display()),
            format!("--controllers={CONTROLLERS}"),
            s("--use-service-account-credentials=true"),
            format!("--service-account-private-key-file={}", sa.key.display()),
            format!("--root-ca-file={}", ca.display()),
            s("--leader-elect=false"),
            s("--bind-address=127.0.0.1"),
            s("--secure-port=0"),
            s("--v=1"),
        ];
        cp.controller_manager = Some(Process::spawn(
            "kube-controller-manager",
            &cp.bins.path("kube-controller-manager"),
            &kcm_args,
            &[],
            &work.join("logs/kube-controller-manager.log"),
        )?);
        // The aggregation controller fills `admin`, `edit` and `view` soon after it starts.
        cp.wait_until("the aggregated ClusterRole view has rules", Duration::from_secs(60), |c| async move {
            let roles: kube::Api<k8s_openapi::api::rbac::v1::ClusterRole> = kube::Api::all(c);
            Ok(roles.get("view").await.ok().and_then(|r| r.rules).is_some_and(|r| !r.is_empty()))
        })
        .await?;
        Ok(cp)
    }

    async fn wait_etcd(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(body) = plain_http::get(self.etcd_port, "/health").await
                && body.contains("true")
            {
                return Ok(());
            }
            if let Some(p) = self.etcd.as_mut()
                && let Some(status) = p.exited()
            {
                return Err(format!("etcd exited ({status}):\n{}", p.log_tail(20)));
            }
            if Instant::now() > deadline {
                return Err("etcd was not healthy within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn admin(&self) -> Result<kube::Client> {
        client(&self.admin_kubeconfig).await
    }

    /// Starts kube-apiserver and waits for `/readyz` (which includes the
    /// bootstrap policy's post-start hook).
    pub async fn start_apiserver(&mut self) -> Result<()> {
        let log = self.work.join("logs/kube-apiserver.log");
        self.apiserver =
            Some(Process::spawn("kube-apiserver", &self.bins.path("kube-apiserver"), &self.apiserver_args, &[], &log)?);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(c) = self.admin().await {
                let req = http::Request::get("/readyz").body(Vec::new()).map_err(|e| e.to_string())?;
                if let Ok(text) = c.request_text(req).await
                    && text.trim() == "ok"
                {
                    return Ok(());
                }
            }
            if let Some(p) = self.apiserver.as_mut()
                && let Some(status) = p.exited()
            {
                return Err(format!("kube-apiserver exited ({status}):\n{}", p.log_tail(30)));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "kube-apiserver was not ready within 120 s:\n{}",
                    self.apiserver.as_ref().map(|p| p.log_tail(30)).unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Stops kube-apiserver (SIGTERM: it drains, as on a real restart).
    pub fn stop_apiserver(&mut self) {
        if let Some(mut p) = self.apiserver.take() {
            p.stop(Duration::from_secs(30));
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            self.restarts.push(now.as_secs_f64());
        }
    }

    /// Polls `condition` with a fresh admin client until it holds.
    pub async fn wait_until<F, Fut>(&self, what: &str, limit: Duration, condition: F) -> Result<()>
    where
        F: Fn(kube::Client) -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + limit;
        let c = self.admin().await?;
        loop {
            if condition(c.clone()).await? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("timed out after {limit:?} waiting until {what}"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// etcd's current revision (through its JSON gateway).
    pub async fn etcd_revision(&self) -> Result<i64> {
        let (code, body) =
            plain_http::request(self.etcd_port, "POST", "/v3/kv/range", Some(r#"{"key":"AA=="}"#)).await?;
        if code != 200 {
            return Err(format!("etcd range: {code} {body}"));
        }
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("etcd range: {e}: {body}"))?;
        v["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| format!("etcd range: no revision in {body}"))
    }

    /// Compacts etcd's history up to its current revision, as the API
    /// server's periodic compaction does.
    pub async fn compact_etcd(&self) -> Result<i64> {
        let rev = self.etcd_revision().await?;
        let body = format!(r#"{{"revision":"{rev}","physical":true}}"#);
        match plain_http::request(self.etcd_port, "POST", "/v3/kv/compaction", Some(&body)).await? {
            (200, _) => Ok(rev),
            (code, text) => Err(format!("etcd compaction: {code} {text}")),
        }
    }

    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver_port)
    }

    /// Stops everything, the controller manager first and etcd last.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.controller_manager.take() {
            p.stop(Duration::from_secs(10));
        }
        self.stop_apiserver();
        if let Some(mut p) = self.etcd.take() {
            p.stop(Duration::from_secs(10));
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}
