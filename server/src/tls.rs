//! The server's TLS certificate: operator-provided PEM files, or a local certificate authority and
//! server certificate generated on first start and kept in `<data_dir>/tls`.
//!
//! The generated CA (`ca.pem`) is what agents and browsers are told to trust when no public
//! certificate is configured; its private key is never written to disk, so nothing else can be
//! signed by it. Deleting the directory makes the next start generate a new pair.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSource;
use crate::files::write_atomically;

/// File names inside the generated directory.
pub const GENERATED_CA: &str = "ca.pem";
/// The generated server certificate chain (leaf, then CA).
pub const GENERATED_CERT: &str = "cert.pem";
/// The generated server key (mode 0600).
pub const GENERATED_KEY: &str = "key.pem";

/// Why the certificate could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Generation failed.
    #[error("generating the certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key.
    #[error("the certificate and key are not usable: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What the server serves and, for a generated certificate, the CA clients should trust.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The rustls configuration (HTTP/2 and HTTP/1.1 offered by ALPN).
    pub config: Arc<ServerConfig>,
    /// The generated CA certificate, when the certificate was generated.
    pub generated_ca: Option<PathBuf>,
}

/// Loads or generates the certificate.
pub fn load(source: &TlsSource) -> Result<ServerTls, TlsError> {
    let (cert_path, key_path, generated_ca) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone(), None),
        TlsSource::Generated { dir, names } => {
            let ca = ensure_generated(dir, names)?;
            (dir.join(GENERATED_CERT), dir.join(GENERATED_KEY), Some(ca))
        }
    };
    let chain = read_chain(&cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Pem {
        path: key_path.clone(),
        reason: format!("no private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        generated_ca,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "no certificate in file".into(),
        });
    }
    Ok(chain)
}

/// Generates the CA and server certificate unless all three files exist. Returns the CA path.
fn ensure_generated(dir: &Path, names: &[String]) -> Result<PathBuf, TlsError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    let ca_path = dir.join(GENERATED_CA);
    let cert_path = dir.join(GENERATED_CERT);
    let key_path = dir.join(GENERATED_KEY);
    let present = [&ca_path, &cert_path, &key_path].map(|p| p.exists());
    if present.iter().all(|p| *p) {
        return Ok(ca_path);
    }
    if present.iter().any(|p| *p) {
        return Err(TlsError::Pem {
            path: dir.to_owned(),
            reason: format!(
                "incomplete generated certificate ({GENERATED_CA}, {GENERATED_CERT}, {GENERATED_KEY} must all \
                 exist); delete the directory to generate a new one"
            ),
        });
    }
    fs::create_dir_all(dir).map_err(io(dir))?;

    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Capture");
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "Capture local certificate authority",
    );
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;

    let server_key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Capture");
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().map_or("capture", String::as_str),
    );
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &ca)?;

    // The key first and the CA last: the CA's presence marks a complete generation.
    write_atomically(&key_path, server_key.serialize_pem().as_bytes(), true)
        .map_err(io(&key_path))?;
    let chain = format!("{}{}", server_cert.pem(), ca.pem());
    write_atomically(&cert_path, chain.as_bytes(), false).map_err(io(&cert_path))?;
    write_atomically(&ca_path, ca.pem().as_bytes(), false).map_err(io(&ca_path))?;
    tracing::info!(dir = %dir.display(), ?names, "generated a local certificate authority and server certificate");
    Ok(ca_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_is_kept_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = TlsSource::Generated {
            dir: dir.path().join("tls"),
            names: vec!["localhost".into()],
        };
        let first = load(&source).expect("generate");
        let ca = first.generated_ca.expect("ca path");
        let cert_before = fs::read(dir.path().join("tls").join(GENERATED_CERT)).expect("cert");
        load(&source).expect("reuse");
        assert_eq!(
            fs::read(dir.path().join("tls").join(GENERATED_CERT)).expect("cert"),
            cert_before
        );
        assert!(ca.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("tls").join(GENERATED_KEY))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "the private key is readable by its owner only"
            );
        }
    }

    #[test]
    fn a_half_generated_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(GENERATED_KEY), "x").expect("write");
        let source = TlsSource::Generated {
            dir: dir.path().to_owned(),
            names: vec!["localhost".into()],
        };
        let error = load(&source).expect_err("incomplete");
        assert!(
            error.to_string().contains("delete the directory"),
            "{error}"
        );
    }

    #[test]
    fn configured_files_that_are_not_pem_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("c.pem");
        fs::write(&cert, "not a certificate").expect("write");
        let source = TlsSource::Files {
            cert: cert.clone(),
            key: dir.path().join("k.pem"),
        };
        let error = load(&source).expect_err("bad pem");
        assert!(error.to_string().contains("c.pem"), "{error}");
    }
}
