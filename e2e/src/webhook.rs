//! apiload-webhook in live mode against the control plane, installed from
//! the chart's own rendered objects: its ServiceAccount, ClusterRole and
//! binding (the webhook runs with that account's token and nothing more),
//! its configuration, the container's arguments, and its
//! ValidatingWebhookConfiguration with `clientConfig` pointed at the
//! loopback port (no Service can route there without a kubelet).

use crate::cluster::{KubeconfigUser, write_kubeconfig};
use crate::manifests::{self, kind_of, name_of};
use crate::metrics::{self, Sample};
use crate::pki::PemFiles;
use crate::plain_http;
use crate::process::{Process, free_port};
use crate::{Result, Suite, ensure};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the chart installs, read from one rendered values combination.
#[derive(Clone, Debug)]
pub struct ChartInstall {
    pub case: String,
    pub namespace: String,
    pub account: String,
    /// The container's arguments as the chart renders them.
    pub args: Vec<String>,
    /// `config.yaml` of the chart's ConfigMap.
    pub config: String,
    pub webhook_configuration: Value,
    /// ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap.
    pub objects: Vec<Value>,
}

impl ChartInstall {
    pub fn from_case(case: &apiload_chart_tests::Case) -> Result<ChartInstall> {
        let docs = manifests::documents(&case.name, &case.manifest)?;
        let one = |kind: &str| -> Result<&Value> {
            let found: Vec<&Value> = docs.iter().filter(|d| kind_of(d) == kind).collect();
            ensure!(found.len() == 1, "{}: {} {kind} objects", case.name, found.len());
            Ok(found[0])
        };
        let deployment = one("Deployment")?;
        let pod = &deployment["spec"]["template"]["spec"];
        let args = pod["containers"][0]["args"]
            .as_array()
            .ok_or_else(|| format!("{}: the container has no args", case.name))?
            .iter()
            .map(|a| a.as_str().unwrap_or("").to_string())
            .collect();
        let account = pod["serviceAccountName"].as_str().unwrap_or("default").to_string();
        let config_map = one("ConfigMap")?;
        let config = config_map["data"]["config.yaml"].as_str().unwrap_or("").to_string();
        let objects = docs
            .iter()
            .filter(|d| matches!(kind_of(d), "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "ConfigMap"))
            .cloned()
            .collect();
        Ok(ChartInstall {
            case: case.name.clone(),
            namespace: case.namespace.clone(),
            account,
            args,
            config,
            webhook_configuration: one("ValidatingWebhookConfiguration")?.clone(),
            objects,
        })
    }

    /// The chart's ValidatingWebhookConfiguration, everything kept but
    /// `clientConfig`, which points at `url` with `ca_pem` as its caBundle.
    pub fn registration(&self, url: &str, ca_pem: &str) -> Value {
        let mut vwc = self.webhook_configuration.clone();
        use base64_like::encode;
        if let Some(hooks) = vwc["webhooks"].as_array_mut() {
            for h in hooks {
                h["clientConfig"] = json!({"url": url, "caBundle": encode(ca_pem.as_bytes())});
            }
        }
        vwc
    }
}

/// Standard base64, for the caBundle (no crate needed for twelve lines).
mod base64_like {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    #[test]
    fn encodes_like_rfc_4648() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
    }
}

pub struct Webhook {
    process: Process,
    pub review_port: u16,
    pub metrics_port: u16,
    pub log: PathBuf,
    pub args: Vec<String>,
}

/// The chart's arguments with the pod's paths and addresses replaced by
/// this run's, `overrides` (`--flag=value`) replacing the chart's.
pub fn translate_args(
    chart: &[String],
    tls: &PemFiles,
    config: &std::path::Path,
    kubeconfig: &std::path::Path,
    review_port: u16,
    metrics_port: u16,
    overrides: &[String],
) -> Vec<String> {
    let flag = |a: &str| a.split('=').next().unwrap_or("").to_string();
    let mut out = Vec::new();
    for a in chart {
        let f = flag(a);
        let replaced = match f.as_str() {
            "--tls-cert-file" => format!("--tls-cert-file={}", tls.cert.display()),
            "--tls-private-key-file" => format!("--tls-private-key-file={}", tls.key.display()),
            "--config" => format!("--config={}", config.display()),
            "--listen" => format!("--listen=127.0.0.1:{review_port}"),
            "--metrics-listen" => format!("--metrics-listen=127.0.0.1:{metrics_port}"),
            // The API server here presents no client certificate to webhooks.
            "--client-ca-file" => continue,
            _ => a.clone(),
        };
        if overrides.iter().any(|o| flag(o) == f) {
            continue;
        }
        out.push(replaced);
    }
    out.extend(overrides.iter().cloned());
    out.push(format!("--kubeconfig={}", kubeconfig.display()));
    out
}

impl Webhook {
    /// Installs the chart's account, role, binding and configuration, then
    /// starts the webhook with the account's token and waits until it is ready.
    pub async fn start(
        s: &Suite,
        install: &ChartInstall,
        overrides: &[String],
        config: Option<&str>,
        label: &str,
    ) -> Result<Webhook> {
        crate::checks::chart::ensure_namespace(s, &install.namespace).await?;
        let objects: Vec<&Value> = install.objects.iter().collect();
        crate::checks::chart::apply(s, &format!("webhook-{label}"), &objects).await?;
        let token = s
            .kubectl
            .ok(&["create", "token", &install.account, "-n", &install.namespace, "--duration=2h"], None)
            .await?
            .stdout
            .trim()
            .to_string();
        let dir = s.work(&format!("webhook-{label}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &s.cp.server_url(), &s.cp.pki.ca_path(), KubeconfigUser::Token(&token))?;
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config.unwrap_or(&install.config)).map_err(|e| e.to_string())?;
        let tls = s.cp.pki.serving("apiload-webhook", &[])?;
        let (review_port, metrics_port) = (free_port()?, free_port()?);
        let args = translate_args(&install.args, &tls, &config_path, &kubeconfig, review_port, metrics_port, overrides);
        let log = dir.join("webhook.log");
        let bin = s.args.apiload_bin.join("apiload-webhook");
        let process = Process::spawn("apiload-webhook", &bin, &args, &[("RUST_LOG", "info")], &log)?;
        let mut w = Webhook { process, review_port, metrics_port, log, args };
        w.wait_ready(Duration::from_secs(90)).await?;
        Ok(w)
    }

    pub async fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok((200, _)) = plain_http::request(self.metrics_port, "GET", "/readyz", None).await {
                return Ok(());
            }
            if let Some(status) = self.process.exited() {
                return Err(format!("apiload-webhook exited ({status}):\n{}", self.process.log_tail(30)));
            }
            if Instant::now() > deadline {
                return Err(format!("apiload-webhook not ready within {limit:?}:\n{}", self.process.log_tail(30)));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/validate", self.review_port)
    }

    pub async fn metrics(&self) -> Result<Vec<Sample>> {
        Ok(metrics::parse(&plain_http::get(self.metrics_port, "/metrics").await?))
    }

    pub fn signal(&self, signal: i32) {
        self.process.signal(signal);
    }

    pub fn exited(&mut self) -> Option<String> {
        self.process.exited()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(25));
    }
}

/// Registers `install`'s webhook configuration for `webhook` and waits
/// until the API server calls it (a dry-run of `probe` is answered by it).
pub async fn register(s: &Suite, install: &ChartInstall, webhook: &Webhook) -> Result<String> {
    let vwc = install.registration(&webhook.url(), &s.cp.pki.ca_pem());
    let name = name_of(&vwc).to_string();
    crate::checks::chart::apply(s, "webhook-configuration", &[&vwc]).await?;
    Ok(name)
}
