//! A desktop agent's connection without the desktop: speaks the agent protocol over a real TLS
//! websocket (tokio-rustls + tokio-tungstenite), for recorder tests and benchmarks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use capture_shared::ids::AgentId;
use capture_shared::protocol::{AgentMessage, Hello, PROTOCOL_VERSION, ServerMessage};
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Socket = WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// An open agent connection.
#[derive(Debug)]
pub struct FakeAgent {
    socket: Socket,
}

/// A `Hello` for `agent` with one 1080p monitor.
pub fn hello(agent: AgentId, credential: &str) -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_id: agent,
        credential: credential.to_owned(),
        os_user: "alice".into(),
        machine: "pc-017".into(),
        monitors: vec![crate::scn_samples::primary_1080p()],
        agent_version: "test".into(),
        capture_backend: Some("fake".into()),
        spooled: None,
    }
}

impl FakeAgent {
    /// Opens `wss://localhost:<port>/agent/v1`, trusting `ca_file` only; no message sent yet.
    pub async fn open(port: u16, ca_file: &Path) -> anyhow::Result<FakeAgent> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file)? {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(ServerName::try_from("localhost")?.to_owned(), tcp)
            .await?;
        // The desktop agent's read buffer (it matters with thousands of these in one process).
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(capture_shared::protocol::READ_BUFFER_BYTES);
        let (socket, _) = tokio_tungstenite::client_async_with_config(
            format!("wss://localhost:{port}/agent/v1"),
            stream,
            Some(config),
        )
        .await?;
        Ok(FakeAgent { socket })
    }

    /// Opens and says hello; returns the agent and the server's first answer.
    pub async fn connect(
        port: u16,
        ca_file: &Path,
        hello: &Hello,
    ) -> anyhow::Result<(FakeAgent, ServerMessage)> {
        let mut agent = FakeAgent::open(port, ca_file).await?;
        agent.send(&AgentMessage::Hello(hello.clone())).await?;
        let answer = agent.recv(Duration::from_secs(10)).await?;
        Ok((agent, answer))
    }

    /// Sends a control message.
    pub async fn send(&mut self, message: &AgentMessage) -> anyhow::Result<()> {
        self.send_text(&message.to_json()).await
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.socket.send(Message::binary(bytes)).await?;
        Ok(())
    }

    /// The next control message from the server, within `within`.
    pub async fn recv(&mut self, within: Duration) -> anyhow::Result<ServerMessage> {
        loop {
            let message = tokio::time::timeout(within, self.socket.next())
                .await
                .context("no message from the server in time")?
                .context("the server closed the connection")??;
            match message {
                Message::Text(text) => return Ok(ServerMessage::parse(text.as_str())?),
                Message::Close(frame) => bail!("closed by the server: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Waits until the server closes the connection; returns the close code, if any.
    pub async fn closed(&mut self, within: Duration) -> anyhow::Result<Option<u16>> {
        loop {
            match tokio::time::timeout(within, self.socket.next())
                .await
                .context("still open")?
            {
                Some(Ok(Message::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ok(None),
            }
        }
    }
}
