//! The gateway's TLS certificate: loaded from PEM files, swapped in place on
//! SIGHUP, shared by the HTTPS listener and SIP over TLS.
//!
//! One [`CertFiles`] is the certificate resolver of every rustls
//! `ServerConfig` the gateway builds, so a reload needs no listener restart:
//! a handshake that starts after the swap gets the new certificate, one in
//! progress finishes with the old. A file that fails to load (unreadable,
//! not PEM, key not matching the certificate) leaves the old certificate in
//! service and is logged at ERROR (docs/security.md, "TLS and SRTP").

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// The certificate chain and key files and what was last loaded from them.
#[derive(Debug)]
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertFiles {
    /// Loads `cert` (PEM chain, leaf first) and `key` (PEM, PKCS#8, SEC1 or
    /// PKCS#1); fails when either is unusable or they do not belong together.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        let loaded = load_pair(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(loaded),
        }))
    }

    /// Reads the files again and puts the new pair in service; on error the
    /// old pair stays. Returns the new leaf's SHA-256 fingerprint.
    pub fn reload(&self) -> anyhow::Result<String> {
        let loaded = load_pair(&self.cert, &self.key)?;
        let fp = fingerprint(&loaded);
        match self.current.write() {
            Ok(mut cur) => *cur = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(fp)
    }

    /// The SHA-256 fingerprint of the leaf certificate in service
    /// (`AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.in_service())
    }

    fn in_service(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(cur) => cur.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A server config answering every handshake with the pair in service,
    /// offering `alpn` (e.g. `http/1.1`; empty for SIP).
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> anyhow::Result<Arc<ServerConfig>> {
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(cfg))
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.in_service())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load_pair(cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("TLS certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("TLS certificate {}: not PEM", cert.display()))?;
    if chain.is_empty() {
        bail!("TLS certificate {}: no CERTIFICATE block", cert.display());
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("TLS key {}: no usable PEM private key", key.display()))?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .with_context(|| format!("TLS key {}: unsupported key", key.display()))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().with_context(|| {
        format!(
            "TLS key {} does not belong to certificate {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(Arc::new(pair))
}

fn fingerprint(pair: &CertifiedKey) -> String {
    let digest = Sha256::digest(pair.end_entity_cert().map(|c| c.as_ref()).unwrap_or(&[]));
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reloads `files` on every SIGHUP, for as long as the process runs.
pub fn reload_on_sighup(files: Option<Arc<CertFiles>>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(files) = &files else {
                tracing::info!("SIGHUP: no TLS certificate configured, nothing to reload");
                continue;
            };
            match files.reload() {
                Ok(fp) => tracing::info!(
                    cert = %files.cert.display(),
                    sha256 = %fp,
                    "SIGHUP: TLS certificate reloaded; new connections get it"
                ),
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    kept = %files.fingerprint(),
                    "SIGHUP: TLS certificate NOT reloaded; the previous one stays in service"
                ),
            }
        }
    });
    Ok(())
}
