//! The control plane's certificates and keys, made fresh for every run: one
//! CA that signs the API server's and the webhook's serving certificates and
//! every client certificate, and the ServiceAccount token signing key.

use crate::Result;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use std::path::{Path, PathBuf};

pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

/// A certificate and its key, written as PEM files.
#[derive(Clone, Debug)]
pub struct PemFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

impl Pki {
    /// A new CA, its certificate written to `dir/ca.crt`.
    pub fn new(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "apiload e2e CA");
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let ca = CertifiedIssuer::self_signed(params, key).map_err(|e| e.to_string())?;
        write(&dir.join("ca.crt"), &ca.pem())?;
        Ok(Pki { ca, dir: dir.to_path_buf() })
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    fn issue(&self, name: &str, params: CertificateParams) -> Result<PemFiles> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.signed_by(&key, &self.ca).map_err(|e| format!("signing {name}: {e}"))?;
        let files = PemFiles { cert: self.dir.join(format!("{name}.crt")), key: self.dir.join(format!("{name}.key")) };
        write(&files.cert, &cert.pem())?;
        write(&files.key, &key.serialize_pem())?;
        Ok(files)
    }

    /// A serving certificate for 127.0.0.1 and localhost (and the names
    /// in-cluster clients use for the API server).
    pub fn serving(&self, name: &str, extra_dns: &[&str]) -> Result<PemFiles> {
        let mut dns = vec!["localhost".to_string()];
        dns.extend(extra_dns.iter().map(|s| s.to_string()));
        let mut params = CertificateParams::new(dns).map_err(|e| e.to_string())?;
        params.subject_alt_names.push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(name, params)
    }

    /// A client certificate: the API server reads the user from the common
    /// name and the groups from the organizations.
    pub fn client(&self, file: &str, user: &str, groups: &[&str]) -> Result<PemFiles> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, user);
        for g in groups {
            params.distinguished_name.push(DnType::OrganizationName, *g);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(file, params)
    }

    /// The ServiceAccount token signing key (ECDSA P-256, ES256 tokens) and
    /// its public half.
    pub fn service_account_key(&self) -> Result<PemFiles> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let files = PemFiles { cert: self.dir.join("sa.pub"), key: self.dir.join("sa.key") };
        write(&files.cert, &key.public_key_pem())?;
        write(&files.key, &key.serialize_pem())?;
        Ok(files)
    }
}
