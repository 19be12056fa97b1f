//! The connection to the recorder: `wss://<server>/agent/v1` over rustls, always verified (the
//! system's roots plus, when configured, the organisation's CA file; or, when the installer
//! carried `SERVER_CA_SHA256`, only the CA with that SHA-256 among those the server presents —
//! never "accept any certificate"), the `Hello`/`Welcome` handshake, and typed errors that say
//! whether to retry.

use std::path::Path;
use std::sync::Arc;

use capture_shared::protocol::{
    AgentMessage, Hello, MAX_CONTROL_MESSAGE_BYTES, MAX_FRAME_BYTES, READ_BUFFER_BYTES,
    RefusalCode, ServerMessage, Welcome,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The agent's websocket.
pub type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server URL is not `https://host[:port]`.
    #[error("bad server url {0:?}: expected https://host[:port]")]
    BadUrl(String),
    /// The CA file could not be read.
    #[error("ca file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The proxy URL is unusable.
    #[error("bad proxy url {0}")]
    BadProxy(String),
    /// Network, TLS or websocket failure: retry later.
    #[error("connection failed: {0}")]
    Network(String),
    /// The server refused the handshake.
    #[error("refused by the server ({code:?}): {message}")]
    Refused {
        /// Machine-readable reason.
        code: RefusalCode,
        /// Detail.
        message: String,
    },
}

impl ConnectError {
    /// Whether trying again later can succeed (a wrong credential or version cannot).
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectError::Network(_) => true,
            ConnectError::Refused { code, .. } => matches!(
                code,
                RefusalCode::ShuttingDown | RefusalCode::AlreadyConnected
            ),
            ConnectError::BadUrl(_) | ConnectError::BadProxy(_) | ConnectError::CaFile { .. } => {
                false
            }
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host name (checked against the certificate).
    pub host: String,
    /// Port.
    pub port: u16,
    /// The TLS settings.
    pub tls: Arc<rustls::ClientConfig>,
    /// An HTTP proxy to tunnel through (`CONNECT`); TLS stays end to end with the recorder.
    pub proxy: Option<Proxy>,
}

/// An HTTP proxy: `http://[user:password@]host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The URL as configured (for reqwest).
    pub url: String,
    /// Host.
    pub host: String,
    /// Port (the URL must say it).
    pub port: u16,
    /// Basic credentials, when the URL carries them.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({}:{})", self.host, self.port)
    }
}

impl Proxy {
    /// Parses `http://[user:password@]host:port` (an HTTPS proxy or one without a port is refused
    /// with its reason).
    pub fn parse(url: &str) -> Result<Proxy, ConnectError> {
        let bad = |why: &str| ConnectError::BadProxy(format!("{url:?}: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "http" {
            return Err(bad(
                "expected http://host:port (the tunnel's TLS is the recorder's)",
            ));
        }
        let host = parsed.host_str().ok_or_else(|| bad("no host"))?.to_owned();
        let port = parsed.port().ok_or_else(|| bad("no port"))?;
        let credentials = (!parsed.username().is_empty()).then(|| {
            // The URL keeps them percent-encoded (`s%40cret` for `s@cret`).
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (
                decode(parsed.username()),
                decode(parsed.password().unwrap_or_default()),
            )
        });
        Ok(Proxy {
            url: url.to_owned(),
            host,
            port,
            credentials,
        })
    }
}

impl Endpoint {
    /// An endpoint for `https://host[:port]`, trusting the system roots and `ca_file`.
    pub fn new(server: &str, ca_file: Option<&Path>) -> Result<Endpoint, ConnectError> {
        let (host, port) = parse_server(server)?;
        Ok(Endpoint {
            host,
            port,
            tls: Arc::new(tls_config(ca_file)?),
            proxy: None,
        })
    }

    /// An endpoint for `https://host[:port]` that trusts only the CA certificate whose SHA-256
    /// is `pin` (hex, colons allowed), which the server must present in its chain.
    pub fn pinned(server: &str, pin: &str) -> Result<Endpoint, ConnectError> {
        let (host, port) = parse_server(server)?;
        Ok(Endpoint {
            host,
            port,
            tls: Arc::new(pinned_tls_config(parse_pin(pin)?)?),
            proxy: None,
        })
    }

    /// Through the proxy at `url`, if any.
    pub fn with_proxy(mut self, url: Option<&str>) -> Result<Endpoint, ConnectError> {
        self.proxy = url.map(Proxy::parse).transpose()?;
        Ok(self)
    }

    /// A TCP stream to the recorder: direct, or tunnelled through the proxy.
    pub async fn tcp(&self) -> Result<TcpStream, ConnectError> {
        let network = |e: &dyn std::fmt::Display| ConnectError::Network(e.to_string());
        let Some(proxy) = &self.proxy else {
            return TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| network(&e));
        };
        let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))
            .await
            .map_err(|e| ConnectError::Network(format!("proxy {proxy:?}: {e}")))?;
        let tunnel = match &proxy.credentials {
            Some((user, password)) => {
                async_http_proxy::http_connect_tokio_with_basic_auth(
                    &mut tcp, &self.host, self.port, user, password,
                )
                .await
            }
            None => async_http_proxy::http_connect_tokio(&mut tcp, &self.host, self.port).await,
        };
        tunnel.map_err(|e| ConnectError::Network(format!("proxy {proxy:?} CONNECT: {e}")))?;
        Ok(tcp)
    }

    /// The base URL (`https://host:port`).
    pub fn base_url(&self) -> String {
        format!("https://{}:{}", self.host, self.port)
    }
}

/// Splits `https://host[:port][/]` (port 443 by default).
pub fn parse_server(server: &str) -> Result<(String, u16), ConnectError> {
    let bad = || ConnectError::BadUrl(server.to_owned());
    let rest = server.strip_prefix("https://").ok_or_else(bad)?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(bad());
    }
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
        }
        Some(_) => Err(bad()),
        None => Ok((rest.to_owned(), 443)),
    }
}

/// rustls client settings: system roots plus the configured CA.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ConnectError> {
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for cert in system.certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let ca_error = |message: String| ConnectError::CaFile {
            path: path.display().to_string(),
            message,
        };
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))? {
            roots
                .add(cert.map_err(|e| ca_error(e.to_string()))?)
                .map_err(|e| ca_error(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error("no certificate in the file".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Network(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A certificate pin: 64 hex digits (colons and spaces between them allowed, as tools print
/// fingerprints).
pub fn parse_pin(pin: &str) -> Result<[u8; 32], ConnectError> {
    let digits: String = pin.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let bad = || ConnectError::CaFile {
        path: "server_ca_sha256".into(),
        message: format!("{pin:?} is not a SHA-256 (64 hex digits)"),
    };
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(bytes)
}

/// rustls client settings that trust only the pinned CA.
pub fn pinned_tls_config(pin: [u8; 32]) -> Result<rustls::ClientConfig, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectError::Network(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCa { pin, provider }))
            .with_no_client_auth(),
    )
}

/// Verifies the server as a browser would, with the one certificate of its chain whose SHA-256
/// is the pin as the only root: name, validity and every signature are checked.
#[derive(Debug)]
struct PinnedCa {
    pin: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use sha2::Digest as _;
        let pinned = std::iter::once(end_entity)
            .chain(intermediates)
            .find(|cert| sha2::Sha256::digest(cert.as_ref()).as_slice() == self.pin)
            .ok_or_else(|| {
                rustls::Error::General(
                    "no certificate the server presents has the pinned SHA-256 (server_ca_sha256)"
                        .into(),
                )
            })?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pinned.clone().into_owned())?;
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?
        .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Longest a connection attempt (TCP, proxy, TLS, websocket upgrade) may take before the hello:
/// on a network that drops packets, TCP alone would retry for about two minutes.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connects and shakes hands; returns the socket and the server's settings.
pub async fn connect(
    endpoint: &Endpoint,
    hello: &Hello,
) -> Result<(Socket, Welcome), ConnectError> {
    let network = |e: &dyn std::fmt::Display| ConnectError::Network(e.to_string());
    let mut socket = tokio::time::timeout(CONNECT_TIMEOUT, open(endpoint))
        .await
        .map_err(|_| {
            ConnectError::Network(format!(
                "no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })??;
    use futures_util::{SinkExt as _, StreamExt as _};
    socket
        .send(Message::text(AgentMessage::Hello(hello.clone()).to_json()))
        .await
        .map_err(|e| network(&e))?;
    let answer = tokio::time::timeout(capture_shared::protocol::HELLO_TIMEOUT, socket.next())
        .await
        .map_err(|_| ConnectError::Network("no answer to the hello".into()))?;
    match answer {
        Some(Ok(Message::Text(text))) => match ServerMessage::parse(text.as_str()) {
            Ok(ServerMessage::Welcome(welcome)) => Ok((socket, welcome)),
            Ok(ServerMessage::Refused(refusal)) => Err(ConnectError::Refused {
                code: refusal.code,
                message: refusal.message,
            }),
            Ok(other) => Err(ConnectError::Network(format!(
                "unexpected first answer {other:?}"
            ))),
            Err(error) => Err(network(&error)),
        },
        Some(Ok(other)) => Err(ConnectError::Network(format!(
            "unexpected first answer {other:?}"
        ))),
        Some(Err(error)) => Err(network(&error)),
        None => Err(ConnectError::Network("closed during the handshake".into())),
    }
}

/// TCP (through the proxy, if any), TLS and the websocket upgrade.
async fn open(endpoint: &Endpoint) -> Result<Socket, ConnectError> {
    let network = |e: &dyn std::fmt::Display| ConnectError::Network(e.to_string());
    let tcp = endpoint.tcp().await?;
    tcp.set_nodelay(true).map_err(|e| network(&e))?;
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| network(&e))?;
    let stream = tokio_rustls::TlsConnector::from(endpoint.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| network(&e))?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES.max(MAX_CONTROL_MESSAGE_BYTES)))
        .max_frame_size(Some(MAX_FRAME_BYTES.max(MAX_CONTROL_MESSAGE_BYTES)))
        .read_buffer_size(READ_BUFFER_BYTES);
    let url = format!("wss://{}:{}/agent/v1", endpoint.host, endpoint.port);
    let (socket, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| network(&e))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_urls_credentials_are_percent_decoded() {
        let proxy =
            Proxy::parse("http://agent%207:s%40cret%2B1@proxy.example:3128").expect("parses");
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy.example", 3128));
        assert_eq!(
            proxy.credentials,
            Some(("agent 7".to_owned(), "s@cret+1".to_owned()))
        );
        assert!(!format!("{proxy:?}").contains("cret"), "no secret in logs");
        assert_eq!(
            Proxy::parse("http://proxy.example:3128")
                .expect("parses")
                .credentials,
            None
        );
    }

    #[test]
    fn server_urls_are_https_host_and_port() {
        assert_eq!(
            parse_server("https://rec.example.com:8443/").expect("ok"),
            ("rec.example.com".into(), 8443)
        );
        assert_eq!(
            parse_server("https://rec.example.com").expect("ok"),
            ("rec.example.com".into(), 443)
        );
        let pin = "AB:".repeat(31) + "ab";
        assert_eq!(parse_pin(&pin).expect("colons allowed"), [0xab; 32]);
        assert!(parse_pin("abcd").is_err());
        assert!(parse_pin(&"zz".repeat(32)).is_err());
        for bad in [
            "http://x:1",
            "https://",
            "https://x:port",
            "https://x/path",
            "x:1",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }
}
