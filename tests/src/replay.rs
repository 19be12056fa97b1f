//! Logging in to a test server's replay API: users added with the administrator's token, and
//! sessions (cookie + CSRF token) as the page holds them.

use serde_json::json;

use crate::server::TestServer;

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery";

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// `capture_session=<token>`, for the `Cookie` header.
    pub cookie: String,
    /// The session's CSRF token, for `X-CSRF-Token`.
    pub csrf: String,
}

/// Adds a user with `role` and [`PASSWORD`] (with the administrator's bearer token).
pub async fn add_user(server: &TestServer, name: &str, role: &str) -> anyhow::Result<()> {
    let response = server
        .client()?
        .post(format!("{}/api/v1/users", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&json!({ "username": name, "password": PASSWORD, "role": role }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == reqwest::StatusCode::CREATED,
        "adding {name}: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(())
}

/// Logs `name` in with `password`.
pub async fn login(server: &TestServer, name: &str, password: &str) -> anyhow::Result<Session> {
    let response = server
        .client()?
        .post(format!("{}/api/v1/login", server.base_url()))
        .json(&json!({ "username": name, "password": password }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "login of {name}: {} {}",
        response.status(),
        response.text().await?
    );
    let set_cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let cookie = set_cookie
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let me: serde_json::Value = response.json().await?;
    Ok(Session {
        cookie,
        csrf: me["csrf"].as_str().unwrap_or_default().to_owned(),
    })
}
