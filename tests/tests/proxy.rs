//! The installer's `PROXY_URL`: enrolment and the agent's websocket reach the recorder through an
//! HTTP proxy by `CONNECT` (here a small real one on loopback that records what it was asked),
//! with TLS end to end to the recorder, and the proxy's credentials when the URL carries them
//! (their percent-decoding is the connection module's unit test);
//! a proxy URL the agent cannot use is refused with its reason.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use capture_agent::connection::{ConnectError, Endpoint, Proxy, connect};
use capture_agent::enroll::{EnrollRequest, enroll_with};
use capture_tests::server::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy was asked: the CONNECT target and the Proxy-Authorization header, if any.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// An HTTP proxy that answers CONNECT only, then relays bytes both ways.
async fn proxy() -> anyhow::Result<(SocketAddr, Seen)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let mut lines = head.lines();
                let request: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
                let auth = lines
                    .filter_map(|l| l.split_once(": "))
                    .find(|(k, _)| k.eq_ignore_ascii_case("proxy-authorization"))
                    .map(|(_, v)| v.to_owned());
                if request.first() != Some(&"CONNECT") || request.len() < 2 {
                    let _ = client
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                        .await;
                    return;
                }
                let target = request[1].to_owned();
                if let Ok(mut seen) = log.lock() {
                    seen.push((target.clone(), auth));
                }
                let Ok(mut upstream) = TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    Ok((addr, seen))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_and_the_websocket_go_through_the_proxy() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let (addr, seen) = proxy().await?;
    let target = format!("localhost:{}", server.addr.port());
    let token = std::fs::read_to_string(server.data_dir.path().join("enrolment-token"))?;

    let endpoint = Endpoint::pinned(&server.base_url(), &server.ca_sha256()?)?
        .with_proxy(Some(&format!("http://agent7:secret@{addr}")))?;
    let enrolled = enroll_with(
        &endpoint,
        &EnrollRequest {
            token: token.trim(),
            machine: "pc-behind-proxy",
            os_user: "agent7",
            email: None,
        },
    )
    .await?;
    let hello = capture_tests::fake_agent::hello(enrolled.agent_id, &enrolled.credential);
    connect(&endpoint, &hello).await?;

    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("agent7:secret")
    );
    assert_eq!(seen.len(), 2, "enrolment and the websocket: {seen:?}");
    for (connected_to, auth) in &seen {
        assert_eq!(connected_to, &target);
        assert_eq!(auth.as_deref(), Some(basic.as_str()), "{seen:?}");
    }

    // Without the proxy nothing else reaches it; with an unusable URL, the reason.
    assert!(matches!(
        Proxy::parse("https://proxy.example:3128"),
        Err(ConnectError::BadProxy(why)) if why.contains("http://")
    ));
    assert!(matches!(
        Proxy::parse("http://proxy.example"),
        Err(ConnectError::BadProxy(why)) if why.contains("no port")
    ));
    server.stop().await
}
