//! Test harness: certificates, the webhook binary on loopback, an HTTPS
//! client, and AdmissionReview bodies shaped as the API server sends them.
#![allow(dead_code)]

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `testdata/` at the workspace root.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// A folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "apiload-webhook-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test CA that signs serving and client certificates.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

pub struct Pair {
    pub cert: String,
    pub key: String,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "apiload test CA");
        Pki { ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A serving certificate for localhost and 127.0.0.1, with `cn` as its common name.
    pub fn server(&self, cn: &str) -> Pair {
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Pair { cert: cert.pem(), key: key.serialize_pem() }
    }

    /// A client certificate (the API server's, for `--client-ca-file`).
    pub fn client(&self) -> Pair {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Pair { cert: cert.pem(), key: key.serialize_pem() }
    }
}

/// The webhook binary, started on loopback ports of its choosing.
pub struct Webhook {
    child: Child,
    pub review: SocketAddr,
    pub metrics: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    /// Starts `apiload-webhook` with `args` (TLS flags included) and waits
    /// for it to listen.
    pub fn start(args: &[String]) -> Webhook {
        Webhook::start_with_open_files(args, None)
    }

    /// [`Webhook::start`] with the open-files limit (soft and hard) set to `limit`.
    pub fn start_with_open_files(args: &[String], limit: Option<u64>) -> Webhook {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_apiload-webhook"));
        #[cfg(unix)]
        if let Some(n) = limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit only reads the struct; it runs in the child before exec.
            unsafe {
                cmd.pre_exec(move || {
                    let l = libc::rlimit { rlim_cur: n, rlim_max: n };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &l) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd.args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(args)
            .env("APILOAD_TODAY", "2026-01-01")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start apiload-webhook");
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let started = Instant::now();
        loop {
            let found = logs.lock().unwrap().iter().find(|l| l.contains("\"listening\"")).cloned();
            if let Some(line) = found {
                let v: Value = serde_json::from_str(&line).unwrap();
                let review = v["review"].as_str().unwrap().parse().unwrap();
                let metrics = v["metrics"].as_str().unwrap().parse().unwrap();
                return Webhook { child, review, metrics, logs };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("apiload-webhook exited with {status}:\n{}", logs.lock().unwrap().join("\n"));
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not listening after 30 s:\n{}",
                logs.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until a log line contains `text`.
    pub fn wait_for_log(&self, text: &str, within: Duration) -> String {
        let started = Instant::now();
        loop {
            if let Some(l) = self.logs().into_iter().find(|l| l.contains(text)) {
                return l;
            }
            assert!(
                started.elapsed() < within,
                "no log line with {text:?} after {within:?}:\n{}",
                self.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok);
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(started.elapsed() < within, "still running after {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serving files for a webhook: `tls.crt`, `tls.key`, `ca.crt` in `dir`.
pub fn tls_args(dir: &TempDir, pki: &Pki) -> Vec<String> {
    let pair = pki.server("apiload-webhook");
    let cert = dir.write("tls.crt", &pair.cert);
    let key = dir.write("tls.key", &pair.key);
    dir.write("ca.crt", &pki.ca_pem());
    vec![
        "--tls-cert-file".into(),
        cert.display().to_string(),
        "--tls-private-key-file".into(),
        key.display().to_string(),
    ]
}

pub type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// An HTTPS client that trusts `ca_pem`, optionally presenting a client certificate.
pub fn https_client(ca_pem: &str, client: Option<&Pair>, http2_only: bool) -> HttpsClient {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(p) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(p.cert.as_bytes()).map(|c| c.unwrap()).collect();
            builder.with_client_auth_cert(certs, PrivateKeyDer::from_pem_slice(p.key.as_bytes()).unwrap()).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config).https_only();
    let connector = if http2_only { https.enable_http2().build() } else { https.enable_all_versions().build() };
    let mut b = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
    b.http2_only(http2_only).pool_idle_timeout(Duration::from_secs(30));
    b.build(connector)
}

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub version: hyper::Version,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn response(&self) -> Value {
        self.json()["response"].clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

pub async fn post(client: &HttpsClient, addr: SocketAddr, path: &str, body: Vec<u8>) -> Result<Reply, String> {
    let req = hyper::Request::post(format!("https://localhost:{}{path}", addr.port()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let (status, version) = (res.status().as_u16(), res.version());
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
    Ok(Reply { status, body, version })
}

/// A plain-HTTP GET (health, readiness, metrics).
pub async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let res = client.get(format!("http://{addr}{path}").parse().unwrap()).await.map_err(|e| format!("{e:?}"))?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

/// A YAML manifest as the JSON object the API server would send.
pub fn manifest(yaml: &str) -> Value {
    let doc = apiload_yaml::load_str(yaml, &Default::default()).remove(0).unwrap();
    serde_json::from_str(&doc.root.to_json()).unwrap()
}

fn plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.ends_with('y') { format!("{}ies", &lower[..lower.len() - 1]) } else { format!("{lower}s") }
}

/// An AdmissionReview as the API server sends it for `object` (and
/// `old_object` on UPDATE).
pub fn review(uid: &str, operation: &str, object: &Value, old_object: Option<&Value>, dry_run: bool) -> Vec<u8> {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap_or("");
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": plural(kind)});
    let namespace = object["metadata"]["namespace"].clone();
    let options_kind = if operation == "CREATE" { "CreateOptions" } else { "UpdateOptions" };
    let mut request = json!({
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": object["metadata"]["name"],
        "operation": operation,
        "userInfo": {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
        "object": object,
        "oldObject": old_object.cloned().unwrap_or(Value::Null),
        "dryRun": dry_run,
        "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
    });
    if !namespace.is_null() {
        request["namespace"] = namespace;
    }
    serde_json::to_vec(&json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}))
        .unwrap()
}

/// Runs an async test body with a time bound.
pub fn bounded<F: std::future::Future<Output = ()>>(seconds: u64, f: F) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(seconds), f).await.expect("test took too long");
    });
}
