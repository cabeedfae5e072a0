//! The serving certificate: read from files, checked, and reloaded when the
//! files change. Kubernetes updates a Secret volume by swapping a symlink,
//! and cert-manager rotates certificates long before they expire, so the
//! files are polled (content, not modification time). Established
//! connections keep the configuration they started with; new handshakes get
//! the new one. A pair that does not load (unreadable, wrong PEM, key that
//! does not match) leaves the current one in place and is logged once.

use crate::metrics::Metrics;
use crate::serve::TlsConfig;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// The files' bytes, read together so that one reload sees one pair.
struct Snapshot {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Snapshot {
    fn read(files: &TlsFiles) -> Result<Snapshot, String> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        Ok(Snapshot {
            cert: read(&files.cert)?,
            key: read(&files.key)?,
            client_ca: files.client_ca.as_deref().map(read).transpose()?,
        })
    }

    fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&self.cert, &self.key, &self.client_ca).hash(&mut h);
        h.finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(files: &TlsFiles, s: &Snapshot) -> Result<ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&s.cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", files.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&s.key)
        .map_err(|e| format!("{}: not a PEM private key: {e}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match (&files.client_ca, &s.client_ca) {
        (Some(path), Some(pem)) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(pem) {
                let ca = ca.map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
                roots.add(ca).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no CA certificate in it", path.display()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("{} and {} are not a pair: {e}", files.cert.display(), files.key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Loads the pair for startup; an error here stops the process.
pub fn load(files: &TlsFiles) -> Result<(TlsConfig, u64), String> {
    let s = Snapshot::read(files)?;
    let config = build(files, &s)?;
    Ok((Arc::new(std::sync::RwLock::new(Arc::new(config))), s.fingerprint()))
}

/// Polls the files and swaps in each new pair that loads.
pub async fn reload_loop(files: TlsFiles, config: TlsConfig, mut current: u64, every: Duration, metrics: Arc<Metrics>) {
    let mut rejected: Option<u64> = None;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let files2 = files.clone();
        let attempt = tokio::task::spawn_blocking(move || {
            let s = Snapshot::read(&files2)?;
            let fp = s.fingerprint();
            Ok::<_, String>((fp, s))
        })
        .await;
        let (fp, snapshot) = match attempt {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                // Mid-swap, one file may be missing for a moment: try again next tick.
                tracing::debug!(error = %e, "certificate files not readable now");
                continue;
            }
            Err(_) => continue,
        };
        if fp == current || Some(fp) == rejected {
            continue;
        }
        match build(&files, &snapshot) {
            Ok(new) => {
                *config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
                current = fp;
                rejected = None;
                Metrics::result(&metrics.cert_reloads, "reloaded");
                tracing::info!(cert = %files.cert.display(), "serving certificate reloaded");
            }
            Err(e) => {
                rejected = Some(fp);
                Metrics::result(&metrics.cert_reloads, "rejected");
                tracing::warn!(error = %e, "new certificate files rejected; still serving the previous pair");
            }
        }
    }
}
