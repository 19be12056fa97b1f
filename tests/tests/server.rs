//! The server over real TLS on a loopback port 0: health, metrics, certificate verification and
//! graceful shutdown.

use std::time::{Duration, Instant};

use capture_tests::server::{TestServer, https_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_over_verified_tls() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = server.client()?;
    let response = client
        .get(format!("{}/healthz", server.base_url()))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN offers h2"
    );
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    // The same address by IP: the generated certificate names 127.0.0.1 too.
    let by_ip = client
        .get(format!("https://127.0.0.1:{}/healthz", server.addr.port()))
        .send()
        .await?;
    assert_eq!(by_ip.status(), 200);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_ca_is_refused() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let other = TestServer::start().await?;
    // A client trusting another server's CA must not accept this server's certificate.
    let stranger = https_client(&other.ca_file())?;
    let error = stranger
        .get(format!("{}/healthz", server.base_url()))
        .send()
        .await
        .expect_err("untrusted");
    assert!(error.is_connect() || error.is_request(), "{error:?}");
    // Two servers in one process: nothing global is shared.
    assert_ne!(
        std::fs::read(server.ca_file())?,
        std::fs::read(other.ca_file())?
    );
    other.stop().await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = server.client()?;
    for _ in 0..3 {
        client
            .get(format!("{}/healthz", server.base_url()))
            .send()
            .await?
            .error_for_status()?;
    }
    let missing = client
        .get(format!("{}/no-such-page", server.base_url()))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    let text = server.metrics().await?;
    let healthz = text
        .lines()
        .find(|line| {
            line.starts_with("capture_http_requests_total{") && line.contains("route=\"/healthz\"")
        })
        .unwrap_or_else(|| panic!("no healthz counter in:\n{text}"));
    // The wait-for-healthy probe counts too: at least the three requests made here.
    let count: f64 = healthz.rsplit(' ').next().unwrap_or("0").parse()?;
    assert!(count >= 3.0, "{healthz}");
    assert!(
        text.contains("route=\"unmatched\",status=\"4xx\""),
        "{text}"
    );
    assert!(text.contains("capture_build_info{version="), "{text}");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_within_the_grace_period() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = server.client()?;
    client
        .get(format!("{}/healthz", server.base_url()))
        .send()
        .await?
        .error_for_status()?;
    let addr = server.addr;
    let started = Instant::now();
    server.stop().await?;
    // The test server's grace period is 2 s; an idle keep-alive connection must not hold it up.
    assert!(
        started.elapsed() < Duration::from_secs(2) + capture_server::SHUTDOWN_SLACK,
        "{:?}",
        started.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed"
    );
    Ok(())
}
