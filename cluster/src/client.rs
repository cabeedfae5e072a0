//! The client both front ends talk to a cluster with: kubeconfig (a file,
//! `$KUBECONFIG` or `~/.kube/config`, with a context), or the in-cluster
//! ServiceAccount; one client-side rate limit in front of every request
//! (`rate.rs`); and no retries below the limit, so that a retried request
//! counts against it too (kube's default retry layer sits under any layer
//! added on top, and would not).

use crate::error::{ClusterError, ErrorKind};
use crate::rate::{RateLimit, RateLimitLayer};
use crate::x509;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;
use std::time::Duration;

/// How to reach the cluster.
#[derive(Clone, Debug)]
pub struct Connect {
    /// A kubeconfig file; `None`: `$KUBECONFIG`, `~/.kube/config`, then the
    /// in-cluster configuration.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig instead of its current one.
    pub context: Option<String>,
    pub qps: f64,
    pub burst: u32,
    /// Each request's deadline (connecting included).
    pub timeout: Duration,
    /// Retry 429, 503 and 504 below the rate limit (kube's default retry
    /// policy). Off for the audit, whose own retries go through the limit.
    pub kube_retries: bool,
}

impl Connect {
    /// Checks the numbers a user gives.
    pub fn check(&self) -> Result<(), ClusterError> {
        if !(self.qps > 0.0 && self.qps.is_finite()) || self.burst == 0 {
            return Err(ClusterError::new(
                ErrorKind::Config,
                "--kube-api-qps and --kube-api-burst must be positive".to_string(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ClusterError::new(ErrorKind::Config, "--request-timeout must be positive".to_string()));
        }
        Ok(())
    }
}

/// A client and what it talks to.
#[derive(Clone)]
pub struct Connected {
    pub client: kube::Client,
    /// `https://10.0.0.1:6443`.
    pub server: String,
    /// The kubeconfig context, or `None` in a pod.
    pub context: Option<String>,
    pub limit: RateLimit,
    pub timeout: Duration,
}

fn config_error(message: String) -> ClusterError {
    ClusterError::new(ErrorKind::Config, message)
}

/// Where the configuration comes from, for messages.
enum Origin {
    File(PathBuf),
    Default,
    InCluster,
}

/// Builds the client. Nothing is sent yet; an expired client certificate
/// is an error here.
pub async fn connect(c: &Connect) -> Result<Connected, ClusterError> {
    c.check()?;
    let options = KubeConfigOptions { context: c.context.clone(), ..KubeConfigOptions::default() };
    let (kubeconfig, origin) = match &c.kubeconfig {
        Some(path) => (
            Some(Kubeconfig::read_from(path).map_err(|e| config_error(format!("{}: {e}", path.display())))?),
            Origin::File(path.clone()),
        ),
        None => match Kubeconfig::read() {
            Ok(kc) => (Some(kc), Origin::Default),
            Err(kube::config::KubeconfigError::FindPath) => (None, Origin::InCluster),
            Err(e) if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) => {
                return Err(config_error(format!("$KUBECONFIG: {e}")));
            }
            Err(e) => match default_kubeconfig_path() {
                Some(p) if p.exists() => return Err(config_error(format!("{}: {e}", p.display()))),
                _ => (None, Origin::InCluster),
            },
        },
    };
    let (mut config, context) = match kubeconfig {
        Some(kc) => {
            let context = c.context.clone().or_else(|| kc.current_context.clone());
            let named = |what: &str| match &origin {
                Origin::File(p) => format!("{} ({what})", p.display()),
                _ => format!("the kubeconfig ({what})"),
            };
            if let Some(name) = &context
                && !kc.contexts.iter().any(|ctx| ctx.name == *name)
            {
                let known: Vec<&str> = kc.contexts.iter().map(|ctx| ctx.name.as_str()).collect();
                return Err(config_error(format!(
                    "{}: no context `{name}`; it has {}",
                    named("contexts"),
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            }
            let config = kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| config_error(format!("{}: {e}", named(context.as_deref().unwrap_or("no context")))))?;
            (config, context)
        }
        None => {
            if c.context.is_some() {
                return Err(config_error(
                    "--context names a kubeconfig context, and there is no kubeconfig ($KUBECONFIG, ~/.kube/config, --kubeconfig)"
                        .to_string(),
                ));
            }
            let config = kube::Config::incluster().map_err(|e| {
                config_error(format!(
                    "no kubeconfig ($KUBECONFIG, ~/.kube/config; or --kubeconfig) and no in-cluster configuration: {e}"
                ))
            })?;
            (config, None)
        }
    };
    check_certificate_expiry(&config, context.as_deref())?;
    let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
    config.default_retry = c.kube_retries;
    config.connect_timeout = Some(c.timeout);
    let limit = RateLimit::new(c.qps, c.burst);
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| config_error(format!("cannot build a client for {server}: {e}")))?;
    let client = builder.with_layer(&RateLimitLayer(limit.clone())).build();
    Ok(Connected { client, server, context, limit, timeout: c.timeout })
}

fn default_kubeconfig_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
}

/// An expired client certificate is refused by the API server with a bare
/// 401; say so before sending anything.
fn check_certificate_expiry(config: &kube::Config, context: Option<&str>) -> Result<(), ClusterError> {
    use base64::Engine as _;
    let auth = &config.auth_info;
    let pem = match (&auth.client_certificate_data, &auth.client_certificate) {
        (Some(data), _) => {
            base64::engine::general_purpose::STANDARD.decode(data.trim()).ok().and_then(|b| String::from_utf8(b).ok())
        }
        (None, Some(path)) => std::fs::read_to_string(path).ok(),
        (None, None) => None,
    };
    let Some(pem) = pem else { return Ok(()) };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    for der in x509::pem_certificates(&pem).iter().take(1) {
        if let Some(end) = x509::not_after(der)
            && end < now
        {
            return Err(ClusterError::new(
                ErrorKind::Expired,
                format!(
                    "the client certificate of {} expired on {}: the API server would refuse it (401); renew it \
                     (your provider's get-credentials command, or a new certificate)",
                    context.map_or_else(|| "the kubeconfig".to_string(), |c| format!("context `{c}`")),
                    x509::format_utc(end)
                ),
            ));
        }
    }
    Ok(())
}
