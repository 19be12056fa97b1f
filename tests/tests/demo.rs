//! `capture-server demo`: with no Webex account, contacts and interactions appear within a minute
//! of starting it (the service, the built-in emulator and virtual agents in one process).

use std::time::Duration;

use capture_server::config::{Config, Settings};
use capture_tests::server::https_client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_contacts_and_interactions_within_a_minute() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    config.shutdown_grace_s = 2;
    config.log.level = "warn".into();
    let settings = Settings::from_config(config)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let demo = tokio::spawn(capture_server::demo::run(settings, listener, async {
        let _ = stopped.await;
    }));
    let started = tokio::time::Instant::now();
    let (mut contacts, mut interactions) = (0, 0);
    while started.elapsed() < Duration::from_secs(60) && (contacts == 0 || interactions == 0) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (Ok(token), true) = (
            std::fs::read_to_string(data.path().join("api-token")),
            data.path().join("tls/ca.pem").exists(),
        ) else {
            continue;
        };
        let client = https_client(&data.path().join("tls/ca.pem"))?;
        let get = |path: &'static str| {
            let request = client
                .get(format!("https://localhost:{port}{path}"))
                .bearer_auth(token.trim())
                .send();
            async move {
                anyhow::Ok(
                    request
                        .await?
                        .error_for_status()?
                        .json::<serde_json::Value>()
                        .await?,
                )
            }
        };
        let (Ok(c), Ok(i)) = (
            get("/api/v1/contacts").await,
            get("/api/v1/interactions").await,
        ) else {
            continue;
        };
        contacts = c["items"].as_array().map_or(0, Vec::len);
        interactions = i["items"].as_array().map_or(0, Vec::len);
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    demo.await??;
    assert!(
        contacts > 0 && interactions > 0,
        "after {elapsed:?}: {contacts} contacts, {interactions} interactions"
    );
    eprintln!("demo: first contact and interaction after {elapsed:?}");
    Ok(())
}
