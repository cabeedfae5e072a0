//! Certificates replaced on disk under load, and a drain on SIGTERM.

mod common;

use common::*;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn body(uid: &str) -> Vec<u8> {
    let ds = manifest(&std::fs::read_to_string(testdata().join("webhook/reviews/node-agent-daemonset.yaml")).unwrap());
    review(uid, "CREATE", &ds, None, true)
}

/// A TLS connection to the webhook, trusting `ca_pem`.
async fn connect(addr: std::net::SocketAddr, ca_pem: &str) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap()
}

/// The leaf certificate a new handshake gets, as PEM-decoded DER.
async fn served(addr: std::net::SocketAddr, ca_pem: &str) -> Vec<u8> {
    let tls = connect(addr, ca_pem).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

/// Writes a pair the way the kubelet updates a Secret volume: a new
/// timestamped folder, then one atomic rename of the `..data` symlink.
fn publish(dir: &Path, version: &str, pair: &Pair) {
    let folder = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("tls.crt"), &pair.cert).unwrap();
    std::fs::write(folder.join("tls.key"), &pair.key).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        let link = dir.join(f);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{f}"), &link).unwrap();
        }
    }
}

#[test]
fn certificates_replaced_on_disk_are_served_without_a_failed_request() {
    let dir = TempDir::new("rotate");
    let pki = Pki::new();
    let first = pki.server("first");
    publish(dir.path(), "2026_01_01", &first);
    let args: Vec<String> = [
        "--tls-cert-file",
        &dir.path().join("tls.crt").display().to_string(),
        "--tls-private-key-file",
        &dir.path().join("tls.key").display().to_string(),
        "--cert-reload-interval",
        "100ms",
        "--cluster-state",
        &testdata().join("webhook/state").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let webhook = Webhook::start(&args);
    let ca = pki.ca_pem();
    bounded(90, async {
        let addr = webhook.review;
        assert_eq!(served(addr, &ca).await, der(&first.cert));

        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut load = Vec::new();
        for t in 0..16 {
            let (stop, ok, failed, ca) = (stop.clone(), ok.clone(), failed.clone(), ca.clone());
            load.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    // A new client every 10 requests: new handshakes during the swap.
                    let client = https_client(&ca, None, t % 2 == 0);
                    for _ in 0..10 {
                        n += 1;
                        match post(&client, addr, "/validate", body(&format!("load-{t}-{n}"))).await {
                            Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                            Ok(r) => panic!("status {}: {}", r.status, r.text()),
                            Err(e) => {
                                eprintln!("request failed: {e}");
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let second = pki.server("second");
        publish(dir.path(), "2026_02_01", &second);
        let started = std::time::Instant::now();
        while served(addr, &ca).await != der(&second.cert) {
            assert!(started.elapsed() < Duration::from_secs(10), "the new certificate is never served");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A broken pair (key of another certificate) is refused; the current one stays.
        let other = pki.server("other");
        publish(dir.path(), "2026_03_01", &Pair { cert: other.cert.clone(), key: first.key.clone() });
        tokio::time::sleep(Duration::from_millis(700)).await;
        webhook.wait_for_log("still serving the previous pair", Duration::from_secs(5));
        assert_eq!(served(addr, &ca).await, der(&second.cert));

        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        for t in load {
            t.await.unwrap();
        }
        let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
        assert!(ok > 200, "only {ok} requests under load");
        let (_, metrics) = get(webhook.metrics, "/metrics").await.unwrap();
        assert!(metrics.contains(r#"apiload_certificate_reloads_total{result="reloaded"} 1"#), "{metrics}");
        assert!(metrics.contains(r#"apiload_certificate_reloads_total{result="rejected"} 1"#), "{metrics}");
    });
}

#[test]
fn sigterm_fails_readiness_and_finishes_the_review_in_flight() {
    let dir = TempDir::new("drain");
    let pki = Pki::new();
    let mut args = tls_args(&dir, &pki);
    args.extend(["--cluster-state".into(), testdata().join("webhook/state").display().to_string()]);
    let mut webhook = Webhook::start(&args);
    let ca = pki.ca_pem();
    bounded(60, async {
        assert_eq!(get(webhook.metrics, "/readyz").await.unwrap().0, 200);
        // A review whose body is still arriving when the signal comes.
        let payload = body("uid-in-flight");
        let mut tls = connect(webhook.review, &ca).await;
        let head = format!(
            "POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            payload.len()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(&payload[..100]).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;

        webhook.sigterm();
        webhook.wait_for_log("shutting down", Duration::from_secs(5));
        assert_eq!(get(webhook.metrics, "/readyz").await.unwrap().0, 503, "not ready while draining");

        tls.write_all(&payload[100..]).await.unwrap();
        tls.flush().await.unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&response).contains("uid-in-flight") {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before the answer: {}", String::from_utf8_lossy(&response));
            response.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        drop(tls);
    });
    assert!(webhook.wait(Duration::from_secs(30)).success());
    assert!(webhook.logs().iter().any(|l| l.contains("\"stopped\"")));
}
