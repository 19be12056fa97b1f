//! Retention: archived interactions older than the policy leave the archive (audited), those on
//! legal hold stay.

use std::time::Duration;

use super::*;
use crate::store::{Discovered, InteractionFilter, StoredRecording};

const DAY_MS: i64 = 86_400_000;

async fn archived_interaction(store: &Store, archive: &Archive, id: &str, now: i64) -> String {
    store
        .discover_recordings(
            &[Discovered {
                id: id.into(),
                time_recorded_ms: Some(now),
            }],
            "poll",
            now,
        )
        .await
        .expect("discover");
    store
        .claim_recordings("me", now, now + 60_000, 1)
        .await
        .expect("claim");
    let interaction = store
        .store_recording(
            "me",
            &StoredRecording {
                id: id.into(),
                call_session_id: Some(format!("{id:0>32}")),
                audio_path: format!("audio/{id}.mp3"),
                audio_sha256: "00".into(),
                details: "{}".into(),
                metadata: "{}".into(),
                ..StoredRecording::default()
            },
            now,
        )
        .await
        .expect("store")
        .expect("stored");
    let prefix = format!("interactions/2026/01/01/{interaction}");
    let sha = archive
        .put_bytes(&format!("{prefix}/interaction.mp4"), b"mp4".to_vec())
        .await
        .expect("put");
    archive
        .put_bytes(&format!("{prefix}/manifest.json"), b"{}".to_vec())
        .await
        .expect("put");
    let inputs = store
        .interaction_inputs(&interaction)
        .await
        .expect("inputs");
    store
        .interaction_archived(
            &inputs,
            &Archived {
                key: format!("{prefix}/interaction.mp4"),
                sha256: sha,
                bytes: 3,
                missing: Some("screen".into()),
                timeline_start_ms: now,
                timeline_ms: 1_000,
                tracks: serde_json::json!([]),
            },
            now,
        )
        .await
        .expect("archived");
    interaction
}

#[tokio::test]
async fn old_interactions_leave_the_archive_audited_unless_on_legal_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).await.expect("store");
    let archive = Archive::local(&dir.path().join("archive")).expect("archive");
    let start = 1_800_000_000_000;
    let old = archived_interaction(&store, &archive, "a1", start).await;
    let held = archived_interaction(&store, &archive, "a2", start).await;
    let recent = archived_interaction(&store, &archive, "a3", start + 20 * DAY_MS).await;
    assert!(
        store
            .set_legal_hold(&held, true, "api", "case 42", start)
            .await
            .expect("hold")
    );
    let ingestion = Ingestion {
        store: store.clone(),
        data_dir: dir.path().to_owned(),
        archive: archive.clone(),
        settings: IngestionSettings {
            settle: Duration::from_secs(1),
            wait_for_audio: Duration::from_secs(1),
            wait_for_screen: Duration::from_secs(1),
            min_screen: Duration::ZERO,
            archive_dir: dir.path().join("archive"),
            stitch_attempts: 8,
            stitch_retry: Duration::from_secs(30),
            retention: Some(Duration::from_secs(30 * 86_400)),
        },
        clock: Clock::manual(start),
        wake: Arc::new(Notify::new()),
        metrics: None,
        late_failures: std::sync::Arc::default(),
    };
    // Not yet 30 days: nothing goes.
    assert_eq!(
        ingestion
            .apply_retention(start + 29 * DAY_MS)
            .await
            .expect("retention"),
        0
    );
    assert_eq!(
        ingestion
            .apply_retention(start + 31 * DAY_MS)
            .await
            .expect("retention"),
        1
    );
    let key = |id: &str| format!("interactions/2026/01/01/{id}/interaction.mp4");
    assert!(
        !archive.exists(&key(&old)).await.expect("head"),
        "expired file still archived"
    );
    assert!(
        !archive
            .exists(&format!("interactions/2026/01/01/{old}/manifest.json"))
            .await
            .expect("head")
    );
    assert!(
        archive.exists(&key(&held)).await.expect("head"),
        "legal hold ignored"
    );
    assert!(archive.exists(&key(&recent)).await.expect("head"));
    let audit = store.audit_for(&old).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|(_, actor, action, detail)| actor == "retention"
                && action == "delete_interaction"
                && detail.as_deref() == Some("retention 30 days"))
    );
    let listed = store
        .interactions(&InteractionFilter {
            limit: 10,
            ..InteractionFilter::default()
        })
        .await
        .expect("list");
    let state = |id: &str| {
        listed
            .iter()
            .find(|i| i.id == id)
            .map(|i| (i.state.clone(), i.legal_hold))
    };
    // Deleted interactions are listed only when asked for.
    assert_eq!(state(&old), None);
    assert_eq!(state(&held), Some(("archived".into(), true)));
    let deleted = store
        .interactions(&InteractionFilter {
            limit: 10,
            state: Some("deleted".into()),
            ..InteractionFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(
        deleted.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [old.as_str()]
    );
    // Released, it goes at the next round.
    assert!(
        store
            .set_legal_hold(&held, false, "api", "case closed", start)
            .await
            .expect("release")
    );
    assert_eq!(
        ingestion
            .apply_retention(start + 31 * DAY_MS)
            .await
            .expect("retention"),
        1
    );
    assert!(!archive.exists(&key(&held)).await.expect("head"));
    assert!(
        !store
            .set_legal_hold("nope", true, "api", "x", start)
            .await
            .expect("unknown")
    );
}

#[tokio::test]
async fn a_failed_interaction_is_retried_with_backoff_then_parked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).await.expect("store");
    let archive = Archive::local(&dir.path().join("archive")).expect("archive");
    let id = archived_interaction(&store, &archive, "f1", 1_000).await;
    let state = async || {
        let filter = InteractionFilter {
            limit: 10,
            ..InteractionFilter::default()
        };
        store
            .interactions(&filter)
            .await
            .expect("list")
            .into_iter()
            .find(|i| i.id == id)
            .map(|i| (i.state, i.error))
    };
    let retry = Duration::from_secs(30);
    let fail = async |now: i64| {
        store
            .interaction_failed(&id, "archive: disk full", 3, |attempts| {
                now + crate::ingestion::stitch_backoff(retry, attempts).as_millis() as i64
            })
            .await
            .expect("failed")
    };
    assert_eq!(fail(10_000).await, (1, false));
    assert_eq!(
        state().await,
        Some(("failed".into(), Some("archive: disk full".into())))
    );
    // Not before its time; then collected again.
    assert_eq!(store.retry_due_interactions(39_999).await.expect("due"), 0);
    assert_eq!(store.retry_due_interactions(40_000).await.expect("due"), 1);
    assert_eq!(state().await.map(|s| s.0), Some("collecting".into()));
    // The second wait is twice the first.
    assert_eq!(fail(50_000).await, (2, false));
    assert_eq!(store.retry_due_interactions(109_999).await.expect("due"), 0);
    assert_eq!(store.retry_due_interactions(110_000).await.expect("due"), 1);
    // The last attempt parks it; only an operator brings it back, from zero.
    assert_eq!(fail(120_000).await, (3, true));
    assert_eq!(state().await.map(|s| s.0), Some("parked".into()));
    assert_eq!(
        store.retry_due_interactions(i64::MAX).await.expect("due"),
        0
    );
    assert_eq!(store.parked_interactions().await.expect("count"), 1);
    assert!(store.retry_interaction(&id).await.expect("retry"));
    assert!(!store.retry_interaction(&id).await.expect("again"));
    assert_eq!(state().await.map(|s| s.0), Some("collecting".into()));
    assert_eq!(
        fail(130_000).await,
        (1, false),
        "attempts count from zero again"
    );
}

#[tokio::test]
async fn a_failed_interaction_is_collected_again_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).await.expect("store");
    let archive = Archive::local(&dir.path().join("archive")).expect("archive");
    let id = archived_interaction(&store, &archive, "f1", 1_000).await;
    store
        .interaction_failed(&id, "archive: disk full", 8, |_| i64::MAX)
        .await
        .expect("failed");
    assert_eq!(store.retry_failed_interactions().await.expect("retry"), 1);
}
