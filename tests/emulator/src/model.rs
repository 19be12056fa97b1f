//! What the emulator knows: people, recordings and their public descriptions.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use capture_shared::ids::encode_hydra;
use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use crate::audio::AudioPlan;

/// The cluster segment of every hydra id the emulator makes.
pub const CLUSTER: &str = "us";

/// A Webex user the emulator knows (an agent, a supervisor, the compliance officer).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Person {
    /// The raw person id (recordings' `ownerId`).
    pub id: Uuid,
    /// The primary email address.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The internal extension (`4060` in the published metadata example).
    pub extension: String,
}

impl Person {
    /// The hydra form of the id (`ciscospark://us/PEOPLE/<uuid>`), as webhooks and `/people` use.
    pub fn hydra_id(&self) -> String {
        encode_hydra(CLUSTER, "PEOPLE", &self.id.to_string())
    }
}

/// A recording's lifecycle status (the list filter `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Listed by default.
    Available,
    /// In the recycle bin (after `DELETE`).
    Deleted,
    /// Gone for good.
    Purged,
}

impl Status {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Available => "available",
            Status::Deleted => "deleted",
            Status::Purged => "purged",
        }
    }

    /// Parses the wire form.
    pub fn parse(text: &str) -> Option<Status> {
        [Status::Available, Status::Deleted, Status::Purged]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What owns a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OwnerType {
    /// A user (an agent).
    #[default]
    User,
    /// A workspace.
    Place,
    /// A virtual line.
    VirtualLine,
    /// A call queue.
    CallQueue,
}

impl OwnerType {
    /// The list/details form (`user`, `virtualLine`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::User => "user",
            OwnerType::Place => "place",
            OwnerType::VirtualLine => "virtualLine",
            OwnerType::CallQueue => "callQueue",
        }
    }

    /// The metadata form (`USER`, `VIRTUAL_LINE`, ...).
    pub fn upper(self) -> &'static str {
        match self {
            OwnerType::User => "USER",
            OwnerType::Place => "PLACE",
            OwnerType::VirtualLine => "VIRTUAL_LINE",
            OwnerType::CallQueue => "CALL_QUEUE",
        }
    }
}

/// A recording to add directly (backfill tests, benchmarks), without a call.
#[derive(Debug, Clone)]
pub struct RecordingSpec {
    /// The owner; a new person when `None`.
    pub owner: Option<Person>,
    /// What the owner is.
    pub owner_type: OwnerType,
    /// The call session; a new one when `None`.
    pub call_session_id: Option<Uuid>,
    /// When recording started (truncated to the second).
    pub time_recorded: Timestamp,
    /// Audio length in seconds (recorded time minus pauses).
    pub duration_s: u32,
    /// Paused stretches: (offset from `time_recorded` on the wall clock, length). Absent from the
    /// audio and listed as PAUSE/RESUME in the metadata.
    pub pauses: Vec<(Duration, Duration)>,
    /// Beeps besides the one at the start, as offsets into the audio.
    pub beeps: Vec<Duration>,
    /// Stretches of true silence (on hold), as offsets into the audio.
    pub holds: Vec<Range<Duration>>,
    /// When it becomes visible (its `createTime`); now when `None`.
    pub publish_at: Option<Timestamp>,
    /// Send the `convergedRecordings` `created` webhook and compliance event at publication.
    pub notify: bool,
    /// The topic; a default when `None`.
    pub topic: Option<String>,
}

impl RecordingSpec {
    /// A recording of `duration_s` seconds that started at `time_recorded`, published now.
    pub fn new(time_recorded: Timestamp, duration_s: u32) -> RecordingSpec {
        RecordingSpec {
            owner: None,
            owner_type: OwnerType::User,
            call_session_id: None,
            time_recorded,
            duration_s,
            pauses: Vec::new(),
            beeps: Vec::new(),
            holds: Vec::new(),
            publish_at: None,
            notify: false,
            topic: None,
        }
    }
}

/// A recording as tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    /// The recording id (32 hex digits or a dashed UUID, as Webex mixes both).
    pub id: String,
    /// The call session.
    pub call_session_id: Uuid,
    /// The owner's email.
    pub owner_email: String,
    /// The owner's raw id.
    pub owner_id: Uuid,
    /// When recording started.
    pub time_recorded: Timestamp,
    /// When recording stopped (the metadata's `session.stopTime`).
    pub stop_time: Timestamp,
    /// When it was (or will be) published.
    pub create_time: Timestamp,
    /// `durationSeconds`.
    pub duration_s: u32,
    /// Exact size of the MP3.
    pub size_bytes: u64,
    /// SHA-256 of the MP3, lower-case hex.
    pub sha256: String,
    /// Current status.
    pub status: Status,
    /// Beep onsets in the audio, as placed (quantised to 36 ms frames), the first at 0.
    pub beeps: Vec<Duration>,
}

/// One side of a recorded call, as the metadata names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// `USER` for people the emulator knows, `EXTERNAL` for customers (uncertain: the published
    /// example only shows `USER`).
    pub actor_type: &'static str,
    /// The raw id.
    pub actor_id: Uuid,
    /// The number (an extension for users).
    pub number: String,
    /// The display name.
    pub name: String,
    /// The person, when a known user.
    pub person: Option<Person>,
}

impl Party {
    /// A known user.
    pub fn user(person: &Person) -> Party {
        Party {
            actor_type: "USER",
            actor_id: person.id,
            number: person.extension.clone(),
            name: person.name.clone(),
            person: Some(person.clone()),
        }
    }
}

/// A recording action in the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingAction {
    /// Recording paused.
    Pause,
    /// Recording resumed.
    Resume,
}

impl RecordingAction {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingAction::Pause => "PAUSE",
            RecordingAction::Resume => "RESUME",
        }
    }
}

/// A recording as the emulator stores it.
#[derive(Debug, Clone)]
pub(crate) struct Recording {
    pub id: String,
    pub topic: String,
    pub owner: Person,
    pub owner_type: OwnerType,
    pub location_id: Uuid,
    pub call_session_id: Uuid,
    /// The owner's call half: `callhalf-<n>:0`.
    pub call_number: u64,
    /// `originator` or `terminator`, from the owner's view.
    pub personality: &'static str,
    /// The other side of the owner's call.
    pub remote: Party,
    /// Who answered the call (the owner for inbound calls).
    pub answerer: Party,
    /// How the call reached the owner, shown with `showAllTypes=true` (`callQueue`,
    /// `consultativeTransfer`, ...).
    pub redirect: Option<&'static str>,
    pub time_recorded: Timestamp,
    pub stop_time: Timestamp,
    pub create_time: Timestamp,
    pub duration_s: u32,
    pub actions: Vec<(RecordingAction, Timestamp)>,
    pub status: Status,
    pub audio: AudioPlan,
    pub beeps: Vec<Duration>,
    pub sha256: [u8; 32],
}

impl Recording {
    pub fn info(&self) -> RecordingInfo {
        RecordingInfo {
            id: self.id.clone(),
            call_session_id: self.call_session_id,
            owner_email: self.owner.email.clone(),
            owner_id: self.owner.id,
            time_recorded: self.time_recorded,
            stop_time: self.stop_time,
            create_time: self.create_time,
            duration_s: self.duration_s,
            size_bytes: self.audio.size_bytes(),
            sha256: hex::encode(self.sha256),
            status: self.status,
            beeps: self.beeps.clone(),
        }
    }

    /// The raw call id (`callhalf-581329:0`).
    pub fn call_id(&self) -> String {
        format!("callhalf-{}:0", self.call_number)
    }
}
