//! A real browser for the replay page's tests and benchmarks: Debian's Chromium, headless, driven
//! through chromedriver (WebDriver over plain HTTP on loopback).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// chromedriver on a free loopback port, killed on drop.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts it (package chromium-driver).
    pub fn start() -> anyhow::Result<Driver> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("chromedriver (package chromium-driver): {e}"))?;
        Ok(Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session at 1366×768 that accepts the server's own certificate and plays
/// media without a gesture.
pub async fn browser(driver: &Driver) -> anyhow::Result<Client> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                // The server's certificate is the one it generated for itself.
                "--ignore-certificate-errors",
                "--autoplay-policy=no-user-gesture-required",
                "--window-size=1366,768",
            ],
        }),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return Ok(client),
            Err(error) if tokio::time::Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => anyhow::bail!("no browser session: {error}"),
        }
    }
}

/// Evaluates `script` (a function body) in the page.
pub async fn js(client: &Client, script: &str) -> anyhow::Result<Value> {
    Ok(client.execute(script, Vec::new()).await?)
}

/// Clicks the element `css` selects, finding it again if the page re-rendered it between the
/// find and the click (a search answered twice replaces its rows): at most 5 tries.
pub async fn click(client: &Client, css: &str) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        tries += 1;
        let clicked = match client.find(fantoccini::Locator::Css(css)).await {
            Ok(element) => element.click().await,
            Err(error) => Err(error),
        };
        match clicked {
            Ok(()) => return Ok(()),
            Err(error) if tries < 5 && error.to_string().contains("stale element") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Waits until `script` returns true.
pub async fn until(
    client: &Client,
    what: &str,
    script: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if js(client, script).await? == Value::Bool(true) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "waited {within:?} for {what}; page says {}",
            js(client, "return document.body.innerText.slice(0, 2000)").await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs `name` in on the replay page that `client` shows (its login form) and waits until the
/// page has taken the login.
pub async fn log_in(client: &Client, name: &str, password: &str) -> anyhow::Result<()> {
    use fantoccini::Locator;
    client
        .wait()
        .for_element(Locator::Id("login-username"))
        .await?;
    client
        .find(Locator::Id("login-username"))
        .await?
        .send_keys(name)
        .await?;
    client
        .find(Locator::Id("login-password"))
        .await?
        .send_keys(password)
        .await?;
    client
        .find(Locator::Id("login-submit"))
        .await?
        .click()
        .await?;
    until(
        client,
        "the page after the login",
        "return document.querySelector('#login-view').hidden",
        Duration::from_secs(10),
    )
    .await
}
