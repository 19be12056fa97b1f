//! Calls played end to end: deliveries, publication, recordings, metadata and audio agree.

use std::time::Duration;

use anyhow::Result;
use capture_shared::ids::normalize_call_session_id;
use serde_json::Value;
use webex_emulator::{CallKind, CallOutcome, CallPlan, Person, PlannedRecording};

use crate::common::{Harness, Receiver, beep_onsets, decode, ffprobe, register, start_with};

const RING: Duration = Duration::from_millis(300);
const PHASE: Duration = Duration::from_secs(1);

fn states_of(bodies: &[Value], person: &Person) -> Vec<String> {
    bodies
        .iter()
        .filter(|b| {
            b["resource"] == "telephony_calls" && b["actorId"] == person.hydra_id().as_str()
        })
        .map(|b| {
            format!(
                "{}/{}",
                b["event"].as_str().unwrap_or("?"),
                b["data"]["state"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn z(at: jiff::Timestamp) -> String {
    format!("{at:.0}")
}

/// Details, metadata and the MP3 of a published recording agree with the plan.
async fn check_recording(h: &Harness, planned: &PlannedRecording) -> Result<Value> {
    let (status, _, details) = h
        .get(&format!("/convergedRecordings/{}", planned.id))
        .await?;
    assert_eq!(status, 200, "details of {}", planned.id);
    assert_eq!(details["durationSeconds"], planned.duration_s);
    let session = details["serviceData"]["callSessionId"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        normalize_call_session_id(session)?.as_str(),
        planned.call_session_id.simple().to_string()
    );
    let created: jiff::Timestamp = details["createTime"].as_str().unwrap_or_default().parse()?;
    assert_eq!(created, planned.publish_at);
    let (_, _, metadata) = h
        .get(&format!("/convergedRecordings/{}/metadata", planned.id))
        .await?;
    let service = &metadata["serviceData"];
    assert_eq!(
        service["session"]["startTime"],
        z(planned.time_recorded).as_str()
    );
    assert_eq!(
        service["session"]["stopTime"],
        z(planned.stop_time).as_str()
    );
    assert_eq!(
        service["callSessionId"],
        planned.call_session_id.to_string().as_str()
    );
    let mp3 = h.download(&planned.id).await?;
    let (codec, duration) = ffprobe(&mp3)?;
    assert_eq!(codec, "mp3");
    assert!(
        (duration - f64::from(planned.duration_s)).abs() <= 0.05,
        "{duration} vs {}",
        planned.duration_s
    );
    Ok(metadata)
}

async fn wait_until(at: jiff::Timestamp) {
    let wait = at.duration_since(jiff::Timestamp::now());
    if let Ok(wait) = Duration::try_from(wait) {
        tokio::time::sleep(wait + Duration::from_millis(100)).await;
    }
}

fn listed_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn consult_transfer_stop_restart_and_pause_resume_end_to_end() -> Result<()> {
    let h = start_with(|c| c.publish_delay = Duration::from_secs(1)).await?;
    let receiver = Receiver::start(0).await?;
    register(&h, "telephony_calls", &receiver.url, "s1").await?;
    register(&h, "convergedRecordings", &receiver.url, "s2").await?;
    let people: Vec<Person> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| {
            h.emulator
                .add_person(&format!("{n}@example.com"), &n.to_uppercase())
        })
        .collect();
    let plan = |agent: &Person, kind| CallPlan::new(agent.clone(), kind).with_timing(RING, PHASE);
    let (transfer, restart, pause): (CallOutcome, CallOutcome, CallOutcome) = tokio::join!(
        h.emulator.run_call(plan(
            &people[0],
            CallKind::ConsultTransfer {
                to: people[1].clone()
            }
        )),
        h.emulator.run_call(plan(&people[2], CallKind::StopRestart)),
        h.emulator.run_call(plan(&people[3], CallKind::PauseResume)),
    );

    // The longest call's recordings are not listed before their publication.
    let (_, _, list) = h.get("/admin/convergedRecordings?max=100").await?;
    let early = listed_ids(&list);
    assert!(
        transfer.recordings.iter().all(|r| !early.contains(&r.id)),
        "{list}"
    );
    let bodies = receiver.bodies();
    assert_eq!(
        states_of(&bodies, &people[0]),
        [
            "created/alerting",
            "updated/alerting",
            "updated/connected",
            "updated/held",
            "created/connecting",
            "updated/connected",
            "deleted/disconnected",
            "deleted/disconnected",
        ]
    );
    assert_eq!(
        states_of(&bodies, &people[1]),
        [
            "created/alerting",
            "updated/connected",
            "updated/connected",
            "deleted/disconnected"
        ]
    );
    let b_after_transfer = bodies
        .iter()
        .filter(|b| b["actorId"] == people[1].hydra_id().as_str())
        .nth(2)
        .cloned()
        .unwrap_or_default();
    let session = capture_shared::ids::call_session_id(
        b_after_transfer["data"]["callSessionId"]
            .as_str()
            .unwrap_or_default(),
    )?;
    assert_eq!(
        session.as_str(),
        transfer.call_session_id.simple().to_string()
    );
    let pauses: Vec<&str> = bodies
        .iter()
        .filter(|b| b["actorId"] == people[3].hydra_id().as_str())
        .filter_map(|b| b["data"]["recordingState"].as_str())
        .collect();
    assert_eq!(pauses, ["started", "paused", "started", "started"]);

    let publish_at = [&transfer, &restart, &pause]
        .iter()
        .flat_map(|o| o.recordings.iter().map(|r| r.publish_at))
        .max()
        .unwrap_or_else(jiff::Timestamp::now);
    wait_until(publish_at).await;
    let (_, _, list) = h.get("/admin/convergedRecordings?max=100").await?;
    let listed = listed_ids(&list);
    assert_eq!(listed.len(), 6, "{list}");

    // Consult transfer: A's customer leg and B's call share the session; A's consult leg not.
    assert_eq!(transfer.recordings.len(), 3);
    let (a_customer, a_consult, b_leg) = (
        &transfer.recordings[0],
        &transfer.recordings[1],
        &transfer.recordings[2],
    );
    assert_eq!(a_customer.call_session_id, transfer.call_session_id);
    assert_eq!(b_leg.call_session_id, transfer.call_session_id);
    assert_ne!(a_consult.call_session_id, transfer.call_session_id);
    assert_eq!(
        (a_customer.owner, b_leg.owner),
        (people[0].id, people[1].id)
    );
    for planned in &transfer.recordings {
        check_recording(&h, planned).await?;
    }

    // Stop/restart: two recordings, one session, published together.
    assert_eq!(restart.recordings.len(), 2);
    assert_eq!(
        restart.recordings[0].call_session_id,
        restart.recordings[1].call_session_id
    );
    for planned in &restart.recordings {
        check_recording(&h, planned).await?;
    }

    // Pause/resume: a hole in the audio, listed as actions, a beep right after the resume.
    let planned = &pause.recordings[0];
    assert_eq!(planned.duration_s, 2);
    let metadata = check_recording(&h, planned).await?;
    let actions = &metadata["serviceData"]["recordingActions"];
    let paused_at = planned.time_recorded + jiff::SignedDuration::from_secs(1);
    assert_eq!(actions[0]["action"], "PAUSE");
    assert_eq!(actions[0]["time"], z(paused_at).as_str());
    assert_eq!(actions[1]["action"], "RESUME");
    assert_eq!(
        actions[1]["time"],
        z(paused_at + jiff::SignedDuration::from_secs(1)).as_str()
    );
    let onsets = beep_onsets(&decode(&h.download(&planned.id).await?)?);
    assert_eq!(onsets.len(), 2, "{onsets:?}");
    assert!((onsets[1] - 1.0).abs() <= 0.036, "{onsets:?}");

    // Every recording was announced by webhook and compliance event.
    let announced = receiver
        .wait_for(Duration::from_secs(3), |b| {
            b.iter()
                .filter(|b| b["resource"] == "convergedRecordings")
                .count()
                >= 6
        })
        .await;
    let mut announced: Vec<String> = announced
        .iter()
        .filter(|b| b["resource"] == "convergedRecordings" && b["event"] == "created")
        .filter_map(|b| b["data"]["id"].as_str().map(str::to_owned))
        .collect();
    let mut expected = listed.clone();
    announced.sort();
    expected.sort();
    assert_eq!(announced, expected);
    let (_, _, events) = h
        .get("/events?resource=convergedRecordings&serviceType=calling&max=4")
        .await?;
    assert_eq!(events["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(events["items"][0]["type"], "created");
    Ok(())
}

#[tokio::test]
async fn answered_elsewhere_and_conference() -> Result<()> {
    let h = start_with(|c| c.publish_delay = Duration::from_millis(200)).await?;
    let receiver = Receiver::start(0).await?;
    register(&h, "telephony_calls", &receiver.url, "s").await?;
    let people: Vec<Person> = ["e", "f", "g", "i"]
        .iter()
        .map(|n| {
            h.emulator
                .add_person(&format!("{n}@example.com"), &n.to_uppercase())
        })
        .collect();
    let plan = |agent: &Person, kind| CallPlan::new(agent.clone(), kind).with_timing(RING, PHASE);
    let (elsewhere, conference) = tokio::join!(
        h.emulator.run_call(plan(
            &people[0],
            CallKind::AnsweredElsewhere {
                answerer: people[1].clone()
            }
        )),
        h.emulator.run_call(plan(
            &people[2],
            CallKind::Conference {
                with: people[3].clone()
            }
        )),
    );
    let bodies = receiver
        .wait_for(Duration::from_secs(3), |b| b.len() >= 16)
        .await;
    let last_e = bodies
        .iter()
        .rfind(|b| b["actorId"] == people[0].hydra_id().as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last_e["data"]["completedElsewhere"], true);
    assert!(last_e["data"].get("answered").is_none());
    assert_eq!(elsewhere.recordings.len(), 1);
    assert_eq!(elsewhere.recordings[0].owner, people[1].id);
    assert_eq!(conference.recordings.len(), 2);
    assert!(
        conference
            .recordings
            .iter()
            .all(|r| r.call_session_id == conference.call_session_id)
    );
    wait_until(
        conference.recordings[0]
            .publish_at
            .max(elsewhere.recordings[0].publish_at),
    )
    .await;
    let (_, _, metadata) = h
        .get(&format!(
            "/convergedRecordings/{}/metadata?showAllTypes=true",
            elsewhere.recordings[0].id
        ))
        .await?;
    assert_eq!(
        metadata["serviceData"]["callActivity"][0]["redirectInfo"]["reason"],
        "callQueue"
    );
    let (_, _, plain) = h
        .get(&format!(
            "/convergedRecordings/{}/metadata",
            elsewhere.recordings[0].id
        ))
        .await?;
    assert!(
        plain["serviceData"]["callActivity"][0]
            .get("redirectInfo")
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn contact_center_runs_calls_by_itself() -> Result<()> {
    let h = start_with(|c| c.publish_delay = Duration::from_millis(100)).await?;
    let receiver = Receiver::start(0).await?;
    register(&h, "telephony_calls", &receiver.url, "s").await?;
    let agents: Vec<Person> = (1..=4)
        .map(|n| {
            h.emulator
                .add_person(&format!("cc{n}@example.com"), &format!("CC {n}"))
        })
        .collect();
    let timing = webex_emulator::ContactCenterTiming {
        call: webex_emulator::CallTiming {
            ring: Duration::from_millis(200),
            phase: Duration::from_millis(500),
        },
        arrival: Duration::from_millis(200),
        wrap_up: Duration::from_millis(100),
    };
    let handle = h.emulator.spawn_contact_center(agents.clone(), timing);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.emulator.recordings().len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(handle);
    assert!(
        h.emulator.recordings().len() >= 3,
        "{:?}",
        h.emulator.recordings()
    );
    let bodies = receiver.bodies();
    assert!(bodies.len() >= 8);
    // Once stopped, nothing new starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = receiver.bodies().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.bodies().len(), settled);
    Ok(())
}
