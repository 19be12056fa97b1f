//! `capture-server webhooks replay FILE...`: captured Webex deliveries in, one JSON line per event
//! and action out, in the order the live service takes them.

use std::process::Command;

use capture_shared::ids::encode_hydra;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_capture-server");
const PERSON: &str = "ac7913cd-d943-4e34-81a8-f66ad1a5e376";

fn envelope(state: &str, event: &str, at: &str, extra: Value) -> Value {
    let mut data = json!({
        "eventType": "updated",
        "eventTimestamp": at,
        "callId": encode_hydra("us", "CALL", "callhalf-581329:0"),
        "callSessionId": encode_hydra("us", "CALL_SESSION", "fe2f5688-91a8-4799-a867-a396bb2b024a"),
        "personality": "terminator",
        "state": state,
        "created": "2026-11-26T09:00:00.000Z",
        "someFutureField": { "nested": true },
    });
    if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
        data.extend(extra.clone());
    }
    json!({
        "id": "Y2lzY29zcGFyazovL3VzL1dFQkhPT0svOTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh",
        "resource": "telephony_calls",
        "event": event,
        "actorId": encode_hydra("us", "PEOPLE", PERSON),
        "data": data,
    })
}

fn replay(dir: &std::path::Path, files: &[&str], extra: &[&str]) -> (i32, Vec<Value>, String) {
    let output = Command::new(BINARY)
        .current_dir(dir)
        .env_remove("CAPTURE_CONFIG")
        .args(["webhooks", "replay"])
        .args(files)
        .args(extra)
        .output()
        .expect("run");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    (
        output.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_captured_call_replays_to_events_and_actions_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ringing = envelope("alerting", "created", "2026-11-26T09:00:00.000Z", json!({}));
    let answered = envelope(
        "connected",
        "updated",
        "2026-11-26T09:00:04.000Z",
        json!({"answered": "2026-11-26T09:00:04.000Z"}),
    );
    let ended = envelope(
        "disconnected",
        "deleted",
        "2026-11-26T09:02:00.000Z",
        json!({"answered": "2026-11-26T09:00:04.000Z", "disconnected": "2026-11-26T09:02:00.000Z"}),
    );
    // One file with an array (duplicates included), one with a single envelope.
    std::fs::write(
        dir.path().join("a.json"),
        serde_json::to_vec(&json!([ringing, ringing, answered])).expect("json"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("b.json"),
        serde_json::to_vec(&ended).expect("json"),
    )
    .expect("write");

    let (code, lines, stderr) = replay(
        dir.path(),
        &["a.json", "b.json"],
        &["--agent", &format!("{PERSON}=agent-7")],
    );
    assert_eq!(code, 0, "{stderr}");
    let summary: Vec<String> = lines
        .iter()
        .map(|l| match (l.get("action"), l.get("skipped")) {
            (Some(action), _) => format!(
                "{}:{}",
                l["event"].as_str().unwrap_or(""),
                action.as_str().unwrap_or("")
            ),
            (None, Some(_)) => "skipped".to_owned(),
            _ => l["event"].as_str().unwrap_or("?").to_owned(),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "Ringing",
            "Ringing:start_recording",
            "Ringing:marker",
            "skipped",
            "Connected",
            "Connected:marker",
            "Connected:keep_recording",
            "Wrap Up",
            "Wrap Up:marker",
            "Agent Available:stop_recording",
        ]
    );
    let start = &lines[1];
    assert_eq!(start["agent"], "agent-7");
    assert_eq!(start["call_session_id"], "fe2f568891a84799a867a396bb2b024a");
    assert_eq!(start["call_id"], "callhalf-581329:0");
    let stop = lines.last().expect("stop");
    assert_eq!(stop["reason"], "wrap_up_timer");
    assert_eq!(
        stop["at"], "2026-11-26T09:02:30.000Z",
        "30 s after the call ended"
    );
}

#[test]
fn bad_files_and_bad_deliveries_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.json"), "{ not json").expect("write");
    let (code, _, stderr) = replay(dir.path(), &["bad.json"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.json is not JSON"), "{stderr}");

    let no_data = json!({"id": "x", "resource": "telephony_calls", "event": "created", "data": {"state": "alerting"}});
    std::fs::write(
        dir.path().join("partial.json"),
        serde_json::to_vec(&no_data).expect("json"),
    )
    .expect("write");
    let (code, lines, stderr) = replay(dir.path(), &["partial.json"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        lines[0]["rejected"]
            .as_str()
            .expect("reason")
            .contains("callId"),
        "{lines:?}"
    );

    let (code, _, stderr) = replay(dir.path(), &["partial.json"], &["--agent", "nobody"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("PERSON=AGENT"), "{stderr}");
}
