//! Access control of the replay API, route by route from the OpenAPI document the server serves:
//! every route refuses a caller with no session, a forged cookie, an expired session and the
//! wrong role; a session's state-changing request without its CSRF token is refused; a media
//! range request without a session gets no media byte; failed logins are throttled; logins,
//! searches and refusals leave the audit chain intact.

use std::collections::BTreeMap;

use capture_tests::replay::{PASSWORD, Session, add_user, login};
use capture_tests::server::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;

/// Who may call a route, by the OpenAPI tag it carries.
fn allowed(tag: &str, role: &str) -> Option<bool> {
    Some(match tag {
        "session" => true,
        "replay" => matches!(role, "supervisor" | "auditor"),
        "audit" => role == "auditor",
        "users" | "administration" => role == "admin",
        _ => return None, // public: the login, the desktops' enrolment
    })
}

async fn call(
    server: &TestServer,
    method: &Method,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = server
        .client()?
        .request(method.clone(), format!("{}{path}", server.base_url()))
        .header(reqwest::header::RANGE, "bytes=0-99");
    if let Some(cookie) = cookie {
        request = request.header(reqwest::header::COOKIE, cookie);
    }
    if let Some(csrf) = csrf {
        request = request.header("X-CSRF-Token", csrf);
    }
    if method != Method::GET {
        request = request.json(&serde_json::json!({}));
    }
    let response = request.send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_the_wrong_caller() -> anyhow::Result<()> {
    let server = TestServer::start_with(|config| {
        config.replay.admin_password = Some("the first admin's password".into());
    })
    .await?;
    add_user(&server, "sam", "supervisor").await?;
    add_user(&server, "ada", "auditor").await?;
    let mut sessions: BTreeMap<&str, Session> = BTreeMap::new();
    sessions.insert(
        "admin",
        login(&server, "admin", "the first admin's password").await?,
    );
    sessions.insert("supervisor", login(&server, "sam", PASSWORD).await?);
    sessions.insert("auditor", login(&server, "ada", PASSWORD).await?);

    // An expired session of sam's, written as the server writes sessions (token hash only).
    let expired_token = "0".repeat(64);
    let db_url = format!(
        "sqlite://{}",
        server.data_dir.path().join("capture.db").display()
    );
    let mut db = sqlx::SqliteConnection::connect(&db_url).await?;
    sqlx::query(
        "INSERT INTO user_sessions (token_sha256, user_id, csrf, created_ms, expires_ms, last_seen_ms)
         SELECT ?, id, 'x', 1, 2, 1 FROM users WHERE username = 'sam'",
    )
    .bind(hex::encode(Sha256::digest(expired_token.as_bytes())))
    .execute(&mut db)
    .await?;
    db.close().await?;

    let document: Value = server
        .client()?
        .get(format!("{}/api/openapi.json", server.base_url()))
        .send()
        .await?
        .json()
        .await?;
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "every route is documented: {paths:?}");
    let mut checked = 0;
    for (template, operations) in paths {
        let path = template
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{username}", "nobody");
        for (method, operation) in operations.as_object().expect("operations") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes())?;
            let tag = operation["tags"][0].as_str().unwrap_or_default();
            // The login is public; logging out mid-way would end the sessions used here.
            if allowed(tag, "admin").is_none()
                || path == "/api/v1/login"
                || path == "/api/v1/logout"
            {
                continue;
            }
            let what = format!("{method} {template}");
            // No credentials, a forged cookie, an expired session: 401, nothing else said.
            for cookie in [
                None,
                Some(format!("capture_session={}", "f".repeat(64))),
                Some(format!("capture_session={expired_token}")),
            ] {
                let (status, body) =
                    call(&server, &method, &path, cookie.as_deref(), Some("x")).await?;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{what} with {cookie:?}: {body}"
                );
                assert_eq!(body["code"], "unauthenticated", "{what}: {body}");
            }
            for (role, session) in &sessions {
                let (status, body) = call(
                    &server,
                    &method,
                    &path,
                    Some(&session.cookie),
                    Some(&session.csrf),
                )
                .await?;
                if allowed(tag, role) == Some(true) {
                    assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{what} as {role}: {status} {body}"
                    );
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what} as {role}: {body}");
                    assert_eq!(body["code"], "forbidden", "{what} as {role}");
                }
                // A state-changing request of a session without its CSRF token: refused.
                if method != Method::GET && path != "/api/v1/logout" {
                    let (status, body) =
                        call(&server, &method, &path, Some(&session.cookie), None).await?;
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{what} as {role} without CSRF"
                    );
                    assert_eq!(body["code"], "csrf", "{what}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} routes checked");

    // Media without a session: a JSON refusal, not a byte of media.
    let response = server
        .client()?
        .get(format!(
            "{}/api/v1/interactions/00000000-0000-0000-0000-000000000000/media?view=audio",
            server.base_url()
        ))
        .header(reqwest::header::RANGE, "bytes=0-")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .is_none()
    );
    assert!(response.text().await?.contains("unauthenticated"));

    // The session cookie is Secure, HttpOnly, SameSite=Strict.
    let response = server
        .client()?
        .post(format!("{}/api/v1/login", server.base_url()))
        .json(&serde_json::json!({ "username": "sam", "password": PASSWORD }))
        .send()
        .await?;
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }

    // Logging out ends the session.
    let sam = &sessions["supervisor"];
    let (status, _) = call(
        &server,
        &Method::POST,
        "/api/v1/logout",
        Some(&sam.cookie),
        Some(&sam.csrf),
    )
    .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&server, &Method::GET, "/api/v1/me", Some(&sam.cookie), None).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Five wrong passwords: the sixth attempt is refused even with the right one.
    for _ in 0..5 {
        assert!(
            login(&server, "ada", "not the password at all")
                .await
                .is_err()
        );
    }
    let response = server
        .client()?
        .post(format!("{}/api/v1/login", server.base_url()))
        .json(&serde_json::json!({ "username": "ada", "password": PASSWORD }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .is_some()
    );

    // Everything above is on record, and the chain holds.
    let auditor = &sessions["auditor"];
    let (status, verified) = call(
        &server,
        &Method::GET,
        "/api/v1/audit/verify",
        Some(&auditor.cookie),
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert!(verified["broken"].is_null(), "{verified}");
    let (_, log) = call(
        &server,
        &Method::GET,
        "/api/v1/audit?limit=500",
        Some(&auditor.cookie),
        None,
    )
    .await?;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["login", "login_failed", "logout", "search", "add_user"] {
        assert!(
            actions.contains(&action),
            "{action} not audited: {actions:?}"
        );
    }
    server.stop().await
}
