//! Consolidation on Cisco's published examples: recordings join one interaction by normalised
//! callSessionId, whatever form Webex wrote it in.

use serde_json::Value;

use crate::store::{Discovered, InteractionFilter, Store, StoredRecording};
use crate::webex::recordings::{RecordingMetadata, RecordingSummary};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/webex/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn stored(summary: &RecordingSummary, session: Option<String>) -> StoredRecording {
    StoredRecording {
        id: summary.id.clone(),
        call_session_id: session,
        owner_email: summary.owner_email.clone(),
        time_recorded_ms: summary.time_recorded.map(|t| t.0),
        duration_s: summary.duration_s,
        audio_path: format!("audio/{}.mp3", summary.id),
        audio_sha256: "00".repeat(32),
        audio_bytes: 1,
        details: "{}".into(),
        metadata: "{}".into(),
        ..StoredRecording::default()
    }
}

async fn file(store: &Store, recording: &StoredRecording) -> Option<String> {
    store
        .discover_recordings(
            &[Discovered {
                id: recording.id.clone(),
                time_recorded_ms: recording.time_recorded_ms,
            }],
            "poll",
            0,
        )
        .await
        .expect("discover");
    let claimed = store
        .claim_recordings("me", 0, 60_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed, vec![recording.id.clone()]);
    store
        .store_recording("me", recording, 1)
        .await
        .expect("store")
}

#[tokio::test]
async fn the_published_list_items_sharing_a_session_become_one_interaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).await.expect("store");
    let list = fixture("converged_recordings_list.openapi.json");
    let items: Vec<RecordingSummary> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|v| RecordingSummary::from_value(v).expect("item"))
        .collect();
    let first = file(&store, &stored(&items[0], items[0].call_session_id.clone())).await;
    let second = file(&store, &stored(&items[1], items[1].call_session_id.clone())).await;
    assert!(first.is_some());
    assert_eq!(first, second, "one callSessionId, one interaction");

    // The metadata example writes its session as a dashed UUID; a list item with the same
    // session in the list's 32-hex form joins the same interaction.
    let metadata =
        RecordingMetadata::from_value(fixture("converged_recording_metadata.openapi.json"))
            .expect("metadata");
    let mut other = items[0].clone();
    other.id = "81bb582c-e93e-40aa-abf6-962b620f6db4".into();
    let third = file(&store, &stored(&other, metadata.call_session_id.clone())).await;
    other.id = "another-leg".into();
    let fourth = file(
        &store,
        &stored(
            &other,
            Some("FE2F568891A84799A867A396BB2B024A".to_lowercase()),
        ),
    )
    .await;
    assert_eq!(third, fourth);
    assert_ne!(third, first);

    // Without a callSessionId a recording stands alone.
    other.id = "lonely".into();
    let lonely = file(&store, &stored(&other, None)).await;
    assert_ne!(lonely, first);

    let all = store
        .interactions(&InteractionFilter {
            limit: 10,
            ..InteractionFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 3);
    let joined = all
        .iter()
        .find(|i| Some(&i.id) == first.as_ref())
        .expect("joined");
    assert_eq!(joined.recordings, 2);
    assert_eq!(joined.duration_s, 120);
    assert_eq!(joined.call_session_id, "7ba2967530164bf0af1966cf2854b000");
    assert_eq!(
        joined.start_ms,
        items[1].time_recorded.map(|t| t.0),
        "the earlier leg starts it"
    );

    // A recording is filed once: storing it again (another process's late attempt) changes nothing.
    assert_eq!(
        store
            .store_recording(
                "me",
                &stored(&items[0], items[0].call_session_id.clone()),
                2
            )
            .await
            .expect("again"),
        None
    );
    let (interaction, recordings) = store
        .interaction(joined.id.as_str())
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(interaction.recordings, 2);
    assert_eq!(recordings.len(), 2);
}
