//! A real Capture server on a loopback port 0 with its own temporary data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use capture_server::config::{Config, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server; dropping it stops the server.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory (deleted with the server).
    pub data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), capture_server::ServerError>>>,
}

impl TestServer {
    /// Starts a server with default settings on `127.0.0.1:0` and waits until it answers.
    pub async fn start() -> anyhow::Result<TestServer> {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` changed its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> anyhow::Result<TestServer> {
        TestServer::start_at(|config, _| adjust(config)).await
    }

    /// Starts a server after `adjust` changed its configuration, knowing the address it will
    /// listen on (for `webex.public_url`).
    pub async fn start_at(
        adjust: impl FnOnce(&mut Config, SocketAddr),
    ) -> anyhow::Result<TestServer> {
        TestServer::start_in(tempfile::tempdir()?, adjust).await
    }

    /// [`start_at`](Self::start_at) on a data directory prepared beforehand.
    pub async fn start_in(
        data_dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut Config, SocketAddr),
    ) -> anyhow::Result<TestServer> {
        let mut config = Config {
            data_dir: data_dir.path().to_owned(),
            ..Config::default()
        };
        config.shutdown_grace_s = 2;
        config.webex.webhook_secret = Some(crate::webex::SECRET.to_owned());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        adjust(&mut config, addr);
        let settings = Settings::from_config(config)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(capture_server::run(settings, listener, async {
            let _ = stopped.await;
        }));
        let server = TestServer {
            addr,
            data_dir,
            stop: Some(stop),
            task: Some(task),
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// Enrols a desktop with the server's enrolment token (as `capture-agent enroll` does) and
    /// maps it to a new Webex person (as an administrator does, `PATCH /api/v1/agents/{id}`);
    /// returns the enrolment and the person.
    pub async fn enroll_desktop(
        &self,
        machine: &str,
    ) -> anyhow::Result<(capture_agent::enroll::Enrolled, uuid::Uuid)> {
        let person = uuid::Uuid::new_v4();
        Ok((self.enroll_desktop_as(machine, person).await?, person))
    }

    /// Enrols a desktop and maps it to the Webex person `person`.
    pub async fn enroll_desktop_as(
        &self,
        machine: &str,
        person: uuid::Uuid,
    ) -> anyhow::Result<capture_agent::enroll::Enrolled> {
        let token = std::fs::read_to_string(self.data_dir.path().join("enrolment-token"))?;
        let enrolled = capture_agent::enroll::enroll(
            &self.base_url(),
            Some(&self.ca_file()),
            &capture_agent::enroll::EnrollRequest {
                token: token.trim(),
                machine,
                os_user: "agent1",
                email: None,
            },
        )
        .await?;
        self.client()?
            .patch(format!(
                "{}/api/v1/agents/{}",
                self.base_url(),
                enrolled.agent_id
            ))
            .bearer_auth(self.api_token()?)
            .json(&serde_json::json!({ "person_id": person.to_string() }))
            .send()
            .await?
            .error_for_status()?;
        Ok(enrolled)
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .client()?
            .get(format!("{}/metrics", self.base_url()))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// `https://localhost:<port>`.
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The generated CA certificate clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir
            .path()
            .join("tls")
            .join(capture_server::tls::GENERATED_CA)
    }

    /// The SHA-256 (hex) of the generated CA certificate: what an installer's
    /// `SERVER_CA_SHA256` carries.
    pub fn ca_sha256(&self) -> anyhow::Result<String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        use sha2::Digest as _;
        let ca = CertificateDer::pem_file_iter(self.ca_file())?
            .next()
            .ok_or_else(|| anyhow::anyhow!("no CA certificate"))??;
        Ok(hex::encode(sha2::Sha256::digest(ca.as_ref())))
    }

    /// The administrator's API token.
    pub fn api_token(&self) -> anyhow::Result<String> {
        let path = self
            .data_dir
            .path()
            .join(capture_server::api::API_TOKEN_FILE);
        Ok(std::fs::read_to_string(path)?.trim().to_owned())
    }

    /// GETs an API path with the administrator's token and returns the JSON.
    pub async fn api_get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let response = self
            .client()?
            .get(format!("{}{path}", self.base_url()))
            .bearer_auth(self.api_token()?)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// A client that trusts only this server's CA.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        https_client(&self.ca_file())
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.ca_file().exists() {
                let client = self.client()?;
                if let Ok(response) = client
                    .get(format!("{}/healthz", self.base_url()))
                    .send()
                    .await
                    && response.status().is_success()
                {
                    return Ok(());
                }
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "server did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Signals shutdown and waits for `run` to return, with its result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().context("already stopped")?;
        task.await??;
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An HTTPS client that verifies certificates against `ca_file` alone (HTTP/2 offered).
pub fn https_client(ca_file: &Path) -> anyhow::Result<reqwest::Client> {
    client_with_alpn(ca_file, &[b"h2", b"http/1.1"])
}

/// The same, speaking HTTP/1.1 only: one request per connection at a time, as Webex delivers.
pub fn https_client_http1(ca_file: &Path) -> anyhow::Result<reqwest::Client> {
    client_with_alpn(ca_file, &[b"http/1.1"])
}

fn client_with_alpn(ca_file: &Path, alpn: &[&[u8]]) -> anyhow::Result<reqwest::Client> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A preconfigured rustls config carries its own ALPN list.
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Starts the `test-server` binary (`binary`: the test's `env!("CARGO_BIN_EXE_test-server")`) on
/// `data_dir` with the webhook secret, warnings-only logs and the extra `env` settings
/// (`CAPTURE_*`); waits for its `READY <port>` line. Tests kill it (SIGKILL) to prove durability.
pub fn spawn_test_server(
    binary: &str,
    data_dir: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<(std::process::Child, u16)> {
    spawn_test_server_on(binary, data_dir, None, env)
}

/// [`spawn_test_server`] on `port` (a restart where the first run listened, so that agents
/// find it again); `None`: a free port.
pub fn spawn_test_server_on(
    binary: &str,
    data_dir: &Path,
    port: Option<u16>,
    env: &[(&str, &str)],
) -> anyhow::Result<(std::process::Child, u16)> {
    use std::io::BufRead as _;
    let mut command = std::process::Command::new(binary);
    command.arg(data_dir);
    if let Some(port) = port {
        command.arg(port.to_string());
    }
    command
        .env("CAPTURE_WEBEX__WEBHOOK_SECRET", crate::webex::SECRET)
        .env("CAPTURE_LOG__LEVEL", "warn")
        .env_remove("CAPTURE_CONFIG")
        .stdout(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().context("spawn test-server")?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let port = line
        .trim()
        .strip_prefix("READY ")
        .context("READY line")?
        .parse()
        .context("port")?;
    Ok((child, port))
}
