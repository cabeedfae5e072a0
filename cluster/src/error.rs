//! What can go wrong talking to a cluster, said so that the reader knows
//! what to do: which server, which request, and the likely cause.

use std::fmt;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No usable kubeconfig or in-cluster configuration.
    Config,
    /// The kubeconfig's credentials have expired (known before any request).
    Expired,
    /// The server cannot be reached: refused, unresolvable, TLS failed.
    Unreachable,
    /// No answer in time.
    Timeout,
    /// 401: the server does not accept the credentials.
    Unauthorized,
    /// 403: the identity may not do this.
    Forbidden,
    /// 404: the server does not serve this collection.
    NotServed,
    /// 410: a `continue` token the server no longer has.
    Gone,
    /// 429 or 5xx after the retries.
    Server,
    /// Anything else (an answer that cannot be read).
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ClusterError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ClusterError {
        ClusterError { kind, message: message.into() }
    }

    /// Errors that end the audit: nothing more can be read from this
    /// server with these credentials. A 403 or a 404 costs only its
    /// collection.
    pub fn is_fatal(&self) -> bool {
        !matches!(self.kind, ErrorKind::Forbidden | ErrorKind::NotServed)
    }

    /// A failed request, from kube's error: `what` names the request
    /// (`listing daemonsets.apps`), `server` the API server.
    pub fn from_kube(e: &kube::Error, what: &str, server: &str) -> ClusterError {
        match e {
            kube::Error::Api(status) => {
                let detail = if status.message.is_empty() { status.reason.clone() } else { status.message.clone() };
                match status.code {
                    401 => ClusterError::new(
                        ErrorKind::Unauthorized,
                        format!(
                            "{what}: the API server at {server} refused the credentials (401 Unauthorized): they have \
                             expired or been revoked, or belong to another cluster; renew them (a new token or \
                             certificate, or your provider's get-credentials command)"
                        ),
                    ),
                    403 => ClusterError::new(ErrorKind::Forbidden, format!("{what}: forbidden (403): {detail}")),
                    404 => ClusterError::new(
                        ErrorKind::NotServed,
                        format!("{what}: the API server does not serve it (404): {detail}"),
                    ),
                    410 => ClusterError::new(ErrorKind::Gone, format!("{what}: expired on the server (410): {detail}")),
                    code => ClusterError::new(
                        ErrorKind::Server,
                        format!("{what}: the API server answered {code}: {detail}"),
                    ),
                }
            }
            kube::Error::SerdeError(err) => {
                ClusterError::new(ErrorKind::Other, format!("{what}: the answer of {server} cannot be read: {err}"))
            }
            other => {
                let chain = chain(other);
                let lower = chain.to_lowercase();
                let kind = if lower.contains("timed out") || lower.contains("deadline has elapsed") {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unreachable
                };
                let hint = if lower.contains("certificate") || lower.contains("tls") {
                    " (the TLS handshake failed: check the cluster's certificate-authority-data)"
                } else if lower.contains("refused") {
                    " (nothing listens there: is the cluster up, and is this its address?)"
                } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
                    " (the name does not resolve)"
                } else {
                    ""
                };
                ClusterError::new(kind, format!("{what}: cannot reach the API server at {server}: {chain}{hint}"))
            }
        }
    }

    pub fn timeout(what: &str, server: &str, after: Duration) -> ClusterError {
        ClusterError::new(
            ErrorKind::Timeout,
            format!(
                "{what}: the API server at {server} did not answer within {} s (--request-timeout)",
                after.as_secs_f64()
            ),
        )
    }
}

/// An error and its sources, `a: b: c`, without repeats (hyper and kube
/// often repeat their source in their own message).
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClusterError {}
