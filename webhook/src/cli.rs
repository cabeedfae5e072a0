//! Flags, in the API server's own style (`--tls-cert-file`, `--client-ca-file`).

use crate::decide::Mode;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "apiload-webhook",
    version,
    about = "Validating admission webhook: denies workloads whose API-server load multiplies with cluster size",
    long_about = "Validating admission webhook: denies workloads whose API-server load multiplies with \
                  cluster size.\n\nLive mode (the default) keeps the cluster state from its own watches; \
                  static mode (--cluster-state) reads it from manifest files."
)]
pub struct Args {
    /// Serving certificate (PEM, chain first), reloaded when it changes on disk.
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: PathBuf,

    /// Private key of the serving certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_private_key_file: PathBuf,

    /// CA bundle (PEM) that client certificates must chain to; without it no
    /// client certificate is asked for.
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,

    /// Address of the HTTPS review endpoint (`POST /validate`).
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Address of the plain-HTTP `/healthz`, `/readyz` and `/metrics` endpoints.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub metrics_listen: SocketAddr,

    /// enforce: deny error findings, other findings as warnings; warn: every
    /// finding as a warning; audit: allow, findings in logs and metrics only.
    #[arg(long, value_enum, default_value = "enforce")]
    pub mode: Mode,

    /// The configuration (`.apiload.yaml` format: cluster profile, rule
    /// settings, exemptions, annotationExemptions.namespaces, profiles).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Static mode: take the cluster state from these manifest files or
    /// folders instead of watching an API server.
    #[arg(long, value_name = "PATH", num_args = 1.., value_delimiter = ',')]
    pub cluster_state: Vec<String>,

    /// Node count the cluster is judged at. Default: the configuration's
    /// cluster profile (5,000 nodes unless set), or more when the cluster
    /// already has more nodes.
    #[arg(long, value_name = "N")]
    pub nodes: Option<u64>,

    /// Agent profiles folder, added to the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub profiles: Vec<PathBuf>,

    /// Sustained rate of requests to the API server (lists, watches, ConfigMap reads).
    #[arg(long, default_value_t = 5.0, value_name = "QPS")]
    pub kube_api_qps: f64,

    /// Requests to the API server allowed in a burst.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub kube_api_burst: u32,

    /// Kubeconfig for live mode; in a pod the ServiceAccount is used.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Deadline of one review, well under the webhook's `timeoutSeconds`;
    /// a review that misses it is allowed with a warning.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Largest request body accepted (bigger ones get 413).
    #[arg(long, default_value_t = 8 * 1024 * 1024, value_name = "BYTES")]
    pub max_request_bytes: usize,

    /// Bytes of all request bodies being read or reviewed at once; a body
    /// that does not fit gets 503 (the API server applies the failurePolicy).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub max_inflight_bytes: usize,

    /// An object with more JSON than this is allowed with a warning, not
    /// analysed (the API server refuses bodies over 3 MiB).
    #[arg(long, default_value_t = 3 * 1024 * 1024, value_name = "BYTES")]
    pub max_object_bytes: usize,

    /// An object with more values than this (scalars, lists, maps) is
    /// allowed with a warning, not analysed.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub max_object_fields: usize,

    /// Reviews analysed at once (default: the CPUs the process may use, at
    /// least 2). Reviews with large bodies take at most half of them, at a
    /// lower CPU priority.
    #[arg(long, value_name = "N")]
    pub analysis_workers: Option<usize>,

    /// Connections to the review port at once. When full, a new connection
    /// takes the place of the one that waited longest without a request in
    /// progress; cut to what the open-files limit allows.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_connections: usize,

    /// Connections to the health and metrics port at once (same policy).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_ops_connections: usize,

    /// A TLS handshake must complete within this.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub tls_handshake_timeout: Duration,

    /// A request's headers must arrive within this of its first byte (of
    /// the connection's start, for its first request).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub header_timeout: Duration,

    /// A connection with no request for this long is closed.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,

    /// After SIGTERM, how long to keep serving (not ready) before the
    /// listener closes, so that the Service stops sending reviews first
    /// (the chart uses a preStop sleep instead).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_delay: Duration,

    /// How often the certificate files are checked for a new pair.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub cert_reload_interval: Duration,

    /// How long a ConfigMap read for a review is reused.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub configmap_cache_ttl: Duration,

    /// How long in-flight reviews may take to finish after SIGTERM.
    #[arg(long, default_value = "20s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_grace: Duration,

    /// Live mode: judge the whole cluster state every DURATION (`10m`) and
    /// keep its wgpolicyk8s.io/v1alpha2 PolicyReports up to date, as
    /// `apiload audit --format policyreport` writes them (docs/audit.md).
    /// Needs the PolicyReport CRDs and RBAC to manage them. Off when unset.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub audit_interval: Option<Duration>,

    /// Log format: json (one object per line) or text.
    #[arg(long, default_value = "json", value_parser = ["json", "text"])]
    pub log_format: String,
}

/// `500ms`, `2s`, `1m`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| format!("`{s}` is not a duration (like 500ms, 2s, 1m)"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h)")),
    };
    if !(0.0..=86_400.0 * 365.0).contains(&seconds) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
