//! List paging, validation and speed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};

use crate::common::{Harness, start};

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

fn next_link(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get("link")?.to_str().ok()?;
    let (url, rel) = value.split_once(';')?;
    (rel.trim() == "rel=\"next\"").then(|| {
        url.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    })
}

fn encode(at: Timestamp) -> String {
    at.to_string().replace('+', "%2B").replace(':', "%3A")
}

/// Follows `Link` from `first` until an empty page or no link: the ids and the pages' sizes.
async fn walk(h: &Harness, first: &str) -> Result<(Vec<String>, Vec<usize>)> {
    let mut url = Some(first.to_owned());
    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
    while let Some(current) = url.take() {
        let (status, headers, page) = h.get(&current).await?;
        assert_eq!(status, StatusCode::OK, "{current}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        sizes.push(items.len());
        ids.extend(
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned)),
        );
        if items.is_empty() {
            break;
        }
        url = next_link(&headers);
        if let Some(next) = &url {
            assert!(next.starts_with(h.emulator.base_url()), "absolute: {next}");
            assert!(
                next.contains("max=") && next.contains("from=") && next.contains("to="),
                "{next}"
            );
        }
    }
    Ok((ids, sizes))
}

#[tokio::test]
async fn paging_follows_links_newest_first_without_gaps() -> Result<()> {
    let h = start().await?;
    let now = Timestamp::now();
    let (from, to) = (now - days(10), now - days(1));
    h.emulator.add_recordings(57, from, to).await;
    // Recordings outside the window must not show.
    h.emulator
        .add_recordings(5, now - days(20), now - days(12))
        .await;
    let expected: Vec<String> = h
        .emulator
        .recordings()
        .into_iter()
        .filter(|r| r.time_recorded >= from && r.time_recorded < to)
        .map(|r| r.id)
        .collect();
    assert_eq!(expected.len(), 57);

    let query = format!("from={}&to={}", encode(from), encode(to));
    let (ids, sizes) = walk(&h, &format!("/admin/convergedRecordings?{query}&max=10")).await?;
    assert_eq!(ids, expected);
    assert_eq!(sizes, [10, 10, 10, 10, 10, 7]);

    // An exactly full last page links to an empty one.
    let (ids, sizes) = walk(&h, &format!("/admin/convergedRecordings?max=19&{query}")).await?;
    assert_eq!(ids, expected);
    assert_eq!(sizes, [19, 19, 19, 0]);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 57);
    Ok(())
}

#[tokio::test]
async fn invalid_windows_and_max_are_refused() -> Result<()> {
    let h = start().await?;
    let now = Timestamp::now();
    let bad = [
        format!("from={}&to={}", encode(now - days(31)), encode(now)),
        format!("from={}&to={}", encode(now), encode(now - days(1))),
        "max=0".to_owned(),
        "max=101".to_owned(),
        "max=ten".to_owned(),
        "status=gone".to_owned(),
        "from=yesterday".to_owned(),
    ];
    for query in bad {
        let (status, _, body) = h
            .get(&format!("/admin/convergedRecordings?{query}"))
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body["message"].is_string(), "{query}: {body}");
        assert!(body["errors"][0]["description"].is_string());
        assert!(
            body["trackingId"]
                .as_str()
                .is_some_and(|t| t.starts_with("EMU_"))
        );
    }
    let ok = format!("from={}&to={}&max=100", encode(now - days(30)), encode(now));
    assert_eq!(
        h.get(&format!("/admin/convergedRecordings?{ok}")).await?.0,
        StatusCode::OK
    );
    Ok(())
}

#[tokio::test]
async fn timezone_is_accepted_as_query_and_header() -> Result<()> {
    let h = start().await?;
    h.emulator
        .add_recordings(3, Timestamp::now() - days(2), Timestamp::now() - days(1))
        .await;
    let (status, _, body) = h
        .get("/admin/convergedRecordings?timezone=Asia/Shanghai")
        .await?;
    assert_eq!(status, StatusCode::OK);
    let created = body["items"][0]["createTime"].as_str().unwrap_or_default();
    assert!(created.ends_with("+08:00"), "{created}");
    let response = h
        .client
        .get(h.url("/admin/convergedRecordings"))
        .bearer_auth(&h.token)
        .header("timezone", "America/New_York")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await?;
    let recorded = body["items"][0]["timeRecorded"]
        .as_str()
        .unwrap_or_default();
    assert!(
        recorded.ends_with("-05:00") || recorded.ends_with("-04:00"),
        "{recorded}"
    );
    let parsed: Timestamp = recorded.parse()?;
    assert!(
        h.emulator
            .recordings()
            .iter()
            .any(|r| r.time_recorded == parsed)
    );
    Ok(())
}

#[tokio::test]
async fn twenty_thousand_recordings_page_quickly() -> Result<()> {
    let h = start().await?;
    let now = Timestamp::now();
    let started = Instant::now();
    let infos = h.emulator.add_recordings(20_000, now - days(29), now).await;
    let generation = started.elapsed();
    assert_eq!(infos.len(), 20_000);
    eprintln!("generated 20000 recordings in {generation:?}");
    assert!(generation < Duration::from_secs(30), "{generation:?}");
    let query = format!("from={}&to={}&max=100", encode(now - days(30)), encode(now));
    // Warm the connection, then time whole pages (TLS, routing, JSON) along a Link chain.
    let (_, mut headers, _) = h
        .get(&format!("/admin/convergedRecordings?{query}"))
        .await?;
    let mut times = Vec::new();
    for _ in 0..20 {
        let Some(next) = next_link(&headers) else {
            break;
        };
        let started = Instant::now();
        let (status, next_headers, page) = h.get(&next).await?;
        times.push(started.elapsed());
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["items"].as_array().map(Vec::len), Some(100));
        headers = next_headers;
    }
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "list page round trip: median {median:?}, max {:?}",
        times.last()
    );
    assert!(median < Duration::from_millis(25), "median page {median:?}");
    Ok(())
}
