//! The state every route and task shares, and the publication of recordings.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use capture_shared::ids::encode_hydra;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::audio::{AudioPlan, Digests, FRAME_DURATION, FrameLibrary};
use crate::auth::Auth;
use crate::config::EmulatorConfig;
use crate::delivery::{self, Deliverer};
use crate::faults::FaultState;
use crate::hooks::Hooks;
use crate::ids::IdSource;
use crate::model::{
    CLUSTER, OwnerType, Party, Person, Recording, RecordingAction, RecordingInfo, Status,
};
use crate::stats::StatsState;
use crate::store::{ComplianceEvent, Store};
use crate::{clock, documents};

/// Locks, ignoring poisoning (a panicking holder leaves plain data behind).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything the routes, the scenario engine and the delivery workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    /// `https://localhost:PORT/v1`.
    pub base_url: String,
    /// `https://localhost:PORT`.
    pub origin: String,
    pub org_id: Uuid,
    pub app_id: Uuid,
    /// The compliance officer the initial token belongs to.
    pub admin: Person,
    pub library: FrameLibrary,
    /// Digests of the audio shapes seen (see [`Digests`]).
    pub digests: Mutex<Digests>,
    pub ids: IdSource,
    pub store: Mutex<Store>,
    pub auth: Mutex<Auth>,
    pub hooks: Mutex<Hooks>,
    pub faults: Mutex<FaultState>,
    pub stats: Mutex<StatsState>,
    pub deliverer: Deliverer,
    pub cancel: CancellationToken,
    tracking: AtomicU64,
    next_extension: AtomicU64,
}

/// A recording before publication, as the scenario engine or `add_recording` describes it.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub id: String,
    pub topic: String,
    pub owner: Person,
    pub owner_type: OwnerType,
    pub location_id: Uuid,
    pub call_session_id: Uuid,
    pub call_number: u64,
    pub personality: &'static str,
    pub remote: Party,
    pub answerer: Party,
    pub redirect: Option<&'static str>,
    pub start: Timestamp,
    pub stop: Timestamp,
    /// Paused stretches on the wall clock.
    pub pauses: Vec<(Timestamp, Timestamp)>,
    /// Beeps besides the start one, as audio offsets.
    pub beeps: Vec<Duration>,
    /// True silence, as audio ranges.
    pub holds: Vec<Range<Duration>>,
}

/// Parts of [`Shared`] decided at start.
pub(crate) struct Identity {
    pub base_url: String,
    pub origin: String,
    pub org_id: Uuid,
    pub app_id: Uuid,
    pub admin: Person,
}

impl Shared {
    pub fn new(
        config: EmulatorConfig,
        identity: Identity,
        library: FrameLibrary,
        ids: IdSource,
        auth: Auth,
        deliverer: Deliverer,
    ) -> Shared {
        let seed = config.seed;
        let mut store = Store::default();
        store.people.push(identity.admin.clone());
        Shared {
            config,
            base_url: identity.base_url,
            origin: identity.origin,
            org_id: identity.org_id,
            app_id: identity.app_id,
            admin: identity.admin,
            library,
            digests: Mutex::new(Digests::default()),
            ids,
            store: Mutex::new(store),
            auth: Mutex::new(auth),
            hooks: Mutex::new(Hooks::default()),
            faults: Mutex::new(FaultState::new(seed ^ 0xfa17)),
            stats: Mutex::new(StatsState::default()),
            deliverer,
            cancel: CancellationToken::new(),
            tracking: AtomicU64::new(1),
            next_extension: AtomicU64::new(1001),
        }
    }

    /// The service app's hydra `APPLICATION` id.
    pub fn app_hydra(&self) -> String {
        encode_hydra(CLUSTER, "APPLICATION", &self.app_id.to_string())
    }

    /// The org's hydra `ORGANIZATION` id.
    pub fn org_hydra(&self) -> String {
        encode_hydra(CLUSTER, "ORGANIZATION", &self.org_id.to_string())
    }

    /// The org's single location.
    pub fn location_id(&self) -> Uuid {
        Uuid::new_v5(&self.org_id, b"location")
    }

    /// A fresh `trackingId`.
    pub fn tracking_id(&self) -> String {
        format!("EMU_{:08}", self.tracking.fetch_add(1, Ordering::Relaxed))
    }

    /// Registers a person (or returns the one with this email).
    pub fn add_person(&self, email: &str, name: &str) -> Person {
        let mut store = lock(&self.store);
        if let Some(person) = store.person_by_email(email) {
            return person.clone();
        }
        let person = Person {
            id: self.ids.uuid(),
            email: email.to_owned(),
            name: name.to_owned(),
            extension: self
                .next_extension
                .fetch_add(1, Ordering::Relaxed)
                .to_string(),
        };
        store.people.push(person.clone());
        person
    }

    /// Publishes recordings at `create_time` (already past or later): stored now, visible from
    /// then; with `notify`, the `convergedRecordings` webhook and compliance event go out then.
    pub fn publish(
        self: &Arc<Self>,
        recordings: Vec<Recording>,
        notify: bool,
    ) -> Vec<RecordingInfo> {
        let infos = recordings.iter().map(Recording::info).collect();
        let mut announcements = Vec::new();
        {
            let mut store = lock(&self.store);
            for recording in recordings {
                if notify {
                    let data = documents::recording_event_data(&recording, self.org_id);
                    store.add_event(ComplianceEvent {
                        id: encode_hydra(CLUSTER, "EVENT", &self.ids.uuid().to_string()),
                        created: recording.create_time,
                        actor_id: recording.owner.hydra_id(),
                        data: data.clone(),
                    });
                    announcements.push((recording.create_time, recording.owner.clone(), data));
                }
                store.insert(recording);
            }
        }
        for (at, owner, data) in announcements {
            let shared = Arc::clone(self);
            let wait = clock::between(clock::now(), at);
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {
                        delivery::dispatch(&shared, "convergedRecordings", "created", &owner, &data);
                    }
                    () = shared.cancel.cancelled() => {}
                }
            });
        }
        infos
    }
}

/// `durationSeconds` of a draft: recorded time minus pauses, rounded to the second.
pub(crate) fn recorded_seconds(draft: &Draft) -> u32 {
    let paused: Duration = draft
        .pauses
        .iter()
        .map(|(from, to)| clock::between(*from, *to))
        .sum();
    let recorded = clock::between(draft.start, draft.stop).saturating_sub(paused);
    u32::try_from((recorded.as_millis() + 500) / 1000).unwrap_or(u32::MAX)
}

/// [`build`] with the shared digest cache.
pub(crate) fn build_shared(shared: &Shared, draft: Draft, create_time: Timestamp) -> Recording {
    build(
        draft,
        create_time,
        &shared.library,
        &mut lock(&shared.digests),
    )
}

/// Builds the stored recording: durations, actions, audio and its digest.
pub(crate) fn build(
    draft: Draft,
    create_time: Timestamp,
    library: &FrameLibrary,
    digests: &mut Digests,
) -> Recording {
    let duration_s = recorded_seconds(&draft);
    let tag = *Uuid::new_v5(&Uuid::NAMESPACE_OID, draft.id.as_bytes()).as_bytes();
    let audio = AudioPlan::new(duration_s, &draft.beeps, &draft.holds, tag);
    let sha256 = digests.sha256(&audio, library);
    let beeps = audio.beep_frames().map(|f| FRAME_DURATION * f).collect();
    let actions = draft
        .pauses
        .iter()
        .flat_map(|(from, to)| {
            [
                (RecordingAction::Pause, *from),
                (RecordingAction::Resume, *to),
            ]
        })
        .collect();
    Recording {
        id: draft.id,
        topic: draft.topic,
        owner: draft.owner,
        owner_type: draft.owner_type,
        location_id: draft.location_id,
        call_session_id: draft.call_session_id,
        call_number: draft.call_number,
        personality: draft.personality,
        remote: draft.remote,
        answerer: draft.answerer,
        redirect: draft.redirect,
        time_recorded: draft.start,
        stop_time: draft.stop,
        create_time,
        duration_s,
        actions,
        status: Status::Available,
        audio,
        beeps,
        sha256,
    }
}
