//! The emulator's TLS: a local certificate authority and a server certificate for `localhost` and
//! `127.0.0.1`, kept in `<data_dir>/tls` and reused when present; and the client configuration
//! webhook deliveries use. The ring provider is always passed explicitly (never installed
//! process-wide).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::EmulatorError;

const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";
/// The names the server certificate is valid for.
const NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// What the server serves and the CA clients should trust.
#[derive(Debug, Clone)]
pub(crate) struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_file: PathBuf,
}

fn tls_error(e: impl std::fmt::Display) -> EmulatorError {
    EmulatorError::Tls(e.to_string())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads the certificate from `dir`, generating it first when any file is missing.
pub(crate) fn server_tls(dir: &Path) -> Result<ServerTls, EmulatorError> {
    let (ca, cert, key) = (dir.join(CA_FILE), dir.join(CERT_FILE), dir.join(KEY_FILE));
    if !(ca.exists() && cert.exists() && key.exists()) {
        generate(dir, &ca, &cert, &key)?;
    }
    let chain = read_certs(&cert)?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| EmulatorError::Certificate {
        path: key.clone(),
        reason: e.to_string(),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        ca_file: ca,
    })
}

fn generate(
    dir: &Path,
    ca_path: &Path,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), EmulatorError> {
    fs::create_dir_all(dir).map_err(EmulatorError::io(dir))?;
    let ca_key = rcgen::KeyPair::generate().map_err(tls_error)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Webex emulator test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(tls_error)?;
    let server_key = rcgen::KeyPair::generate().map_err(tls_error)?;
    let mut params =
        rcgen::CertificateParams::new(NAMES.map(String::from).to_vec()).map_err(tls_error)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &ca).map_err(tls_error)?;
    let write = |path: &Path, text: String| fs::write(path, text).map_err(EmulatorError::io(path));
    write(key_path, server_key.serialize_pem())?;
    write(cert_path, format!("{}{}", server_cert.pem(), ca.pem()))?;
    // The CA last: its presence marks a complete generation.
    write(ca_path, ca.pem())?;
    tracing::info!(dir = %dir.display(), "generated the emulator's certificate authority");
    Ok(())
}

/// The certificates of a PEM file.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, EmulatorError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| EmulatorError::Certificate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(EmulatorError::Certificate {
            path: path.to_owned(),
            reason: "no certificate in file".into(),
        });
    }
    Ok(certs)
}

/// A client trusting the system's roots plus `extra`.
pub(crate) fn client(extra: &[CertificateDer<'static>]) -> Result<reqwest::Client, EmulatorError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    for cert in extra {
        roots.add(cert.clone()).map_err(tls_error)?;
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .user_agent("webex-emulator")
        .build()
        .map_err(tls_error)
}
