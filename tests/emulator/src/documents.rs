//! Recordings as JSON, with exactly the keys of Cisco's published examples
//! (`tests/fixtures/webex/*.openapi.json`).

use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock;
use crate::model::{Party, Recording};

/// The storage region every recording reports.
const STORAGE_REGION: &str = "US";
/// The host part of the SIP addresses in metadata.
const SIP_HOST: &str = "192.0.2.10";

/// A list item (typed: the list is the hot path, built and serialised without a `Value` tree).
///
/// `serviceData.callSessionId` is 32 hex digits without dashes here (as in the list example) and a
/// dashed UUID in details and metadata (as in those examples): clients must normalise. Uncertain:
/// whether one recording shows both forms in real Webex; we show both to keep clients honest.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListItem<'a> {
    id: &'a str,
    topic: &'a str,
    create_time: String,
    time_recorded: String,
    owner_id: String,
    owner_type: &'static str,
    owner_email: &'a str,
    format: &'static str,
    duration_seconds: u32,
    size_bytes: u64,
    service_type: &'static str,
    storage_region: &'static str,
    status: &'static str,
    service_data: ServiceData,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceData {
    location_id: String,
    call_session_id: String,
}

/// A list item.
pub(crate) fn list_item<'a>(recording: &'a Recording, zone: &TimeZone) -> ListItem<'a> {
    item(
        recording,
        zone,
        recording.call_session_id.simple().to_string(),
    )
}

fn item<'a>(recording: &'a Recording, zone: &TimeZone, call_session_id: String) -> ListItem<'a> {
    ListItem {
        id: &recording.id,
        topic: &recording.topic,
        create_time: clock::format_in(recording.create_time, zone),
        time_recorded: clock::format_in(recording.time_recorded, zone),
        owner_id: recording.owner.id.to_string(),
        owner_type: recording.owner_type.as_str(),
        owner_email: &recording.owner.email,
        format: "MP3",
        duration_seconds: recording.duration_s,
        size_bytes: recording.audio.size_bytes(),
        service_type: "calling",
        storage_region: STORAGE_REGION,
        status: recording.status.as_str(),
        service_data: ServiceData {
            location_id: recording.location_id.to_string(),
            call_session_id,
        },
    }
}

/// The links of a details answer.
pub(crate) struct Links {
    pub audio: String,
    pub notes_base: String,
    pub expiration: jiff::Timestamp,
}

/// A details answer: the list item plus `temporaryDirectDownloadLinks`. There is no transcript
/// link (the published example has none; calling recordings are not transcribed by default).
pub(crate) fn details(recording: &Recording, zone: &TimeZone, links: &Links) -> Value {
    let mut value =
        serde_json::to_value(item(recording, zone, recording.call_session_id.to_string()))
            .unwrap_or_default();
    let notes = |kind: &str| {
        format!(
            "{}/wbxaibridge/api/v2/{kind}/{}?contentType=html&resourceType=CallingRecording&resourceId={}",
            links.notes_base,
            Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("{kind}/{}", recording.id).as_bytes()
            ),
            recording.id
        )
    };
    value["temporaryDirectDownloadLinks"] = json!({
        "audioDownloadLink": links.audio,
        "suggestedNotesDownloadLink": notes("notes"),
        "actionItemsDownloadLink": notes("actionItems"),
        "shortNotesDownloadLink": notes("shortNotes"),
        "expiration": clock::format_z(links.expiration),
    });
    value
}

fn sip(number: &str) -> String {
    format!("sip:{number}@{SIP_HOST};user=phone")
}

fn party(party: &Party) -> Value {
    json!({
        "actor": { "type": party.actor_type, "id": party.actor_id.to_string() },
        "number": sip(&party.number),
    })
}

/// A metadata answer.
///
/// `callActivity` holds one entry (the recording's start, with the recording announcement). With
/// `showAllTypes=true`, calls that reached the owner through a queue or a transfer add
/// `redirectInfo` and `redirectedCall` to that entry; without it they are omitted, which is our
/// reading of "the redirect/transfer detail is hidden" (their exact shape is not published: the
/// one here is a guess). Uncertain: whether Webex hides only those fields or more.
pub(crate) fn metadata(recording: &Recording, org_id: Uuid, show_all_types: bool) -> Value {
    let owner = Party::user(&recording.owner);
    let (calling, called) = if recording.personality == "originator" {
        (&owner, &recording.remote)
    } else {
        (&recording.remote, &owner)
    };
    let stream = Uuid::new_v5(&Uuid::NAMESPACE_OID, recording.id.as_bytes()).to_string();
    let participant = |p: &Party| {
        json!({
            "actor": { "type": p.actor_type, "id": p.actor_id.to_string() },
            "aor": sip(&p.number),
            "send": stream,
        })
    };
    let start = clock::format_z(recording.time_recorded);
    let mut activity = json!({
        "timeStamp": start,
        "mediaStreams": [{ "streamId": stream, "mode": "mixed", "mLineIndex": "0" }],
        "participants": [participant(&owner), participant(&recording.remote)],
        "announcementData": {
            "announcementFilename": "http:///media/en_US/TrtCallRecordingStarted.wav",
            "announcementTimestamp": start,
            "announcementParticipants": [sip(&owner.number), sip(&recording.remote.number)],
            "announcementType": "USER_LEVEL",
        },
    });
    if let (true, Some(reason)) = (show_all_types, recording.redirect) {
        activity["redirectInfo"] = json!({
            "reason": reason,
            "redirectingParty": party(&recording.answerer),
        });
        activity["redirectedCall"] = json!({
            "callId": recording.call_id(),
            "callSessionId": recording.call_session_id.to_string(),
        });
    }
    let actions: Vec<Value> = recording
        .actions
        .iter()
        .map(|(action, at)| json!({ "action": action.as_str(), "time": clock::format_z(*at) }))
        .collect();
    json!({
        "id": recording.id,
        "orgId": org_id.to_string(),
        "ownerId": recording.owner.id.to_string(),
        "ownerType": recording.owner_type.upper(),
        "ownerName": recording.owner.name,
        "ownerEmail": recording.owner.email,
        "storageRegion": STORAGE_REGION,
        "serviceType": "calling",
        "version": "1.2",
        "serviceData": {
            "callRecordingId": recording.id,
            "locationId": recording.location_id.to_string(),
            "callSessionId": recording.call_session_id.to_string(),
            "personality": recording.personality,
            "callingParty": party(calling),
            "calledParty": party(called),
            "callId": recording.call_id(),
            "session": {
                "startTime": start,
                "stopTime": clock::format_z(recording.stop_time),
            },
            "recordingType": "alwaysON",
            "answererInfo": party(&recording.answerer),
            "recordingActions": actions,
            "callActivity": [activity],
            "managedBy": party(&owner),
            "connectedParty": party(&recording.remote),
        },
    })
}

/// The `data` of a `convergedRecordings` `created` webhook and compliance event.
///
/// Uncertain: Webex does not publish this payload. We send the recording id as `data.id` (API.md:
/// "most likely the recording id — always fetch details") plus a few list fields.
pub(crate) fn recording_event_data(recording: &Recording, org_id: Uuid) -> Value {
    json!({
        "id": recording.id,
        "serviceType": "calling",
        "ownerId": recording.owner.id.to_string(),
        "ownerEmail": recording.owner.email,
        "ownerType": recording.owner_type.as_str(),
        "createTime": clock::format_z(recording.create_time),
        "timeRecorded": clock::format_z(recording.time_recorded),
        "format": "MP3",
        "orgId": org_id.to_string(),
    })
}
