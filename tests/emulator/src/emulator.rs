//! The running emulator and what tests can ask of it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::audio::FrameLibrary;
use crate::auth::Auth;
use crate::config::EmulatorConfig;
use crate::delivery::Deliverer;
use crate::error::EmulatorError;
use crate::faults::{Document, Faults};
use crate::ids::IdSource;
use crate::model::{Party, Person, RecordingInfo, RecordingSpec, Status};
use crate::scenario::{self, CallOutcome, CallPlan, ContactCenterTiming, ScenarioHandle};
use crate::state::{self, Draft, Identity, Shared, lock};
use crate::stats::{RequestRecord, Stats};
use crate::{bulk, clock, http, tls};

/// What a client needs to talk to the emulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// A valid access token of the compliance officer.
    pub access_token: String,
    /// The integration's (and service app's) client id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// A refresh token for `POST /access_token`.
    pub refresh_token: String,
    /// The service app's id (hydra) for `POST /applications/{id}/token`.
    pub service_app_id: String,
    /// The org's id (hydra), the `targetOrgId` of service app tokens.
    pub org_id: String,
}

/// A running Webex emulator. Dropping it stops the server and every background task.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    credentials: Credentials,
    ca_file: PathBuf,
    handle: axum_server::Handle,
    server: Mutex<Option<JoinHandle<()>>>,
    bulk_batches: Mutex<u64>,
}

impl Emulator {
    /// Generates (or reuses) the TLS certificate, encodes the audio library and starts listening.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        std::fs::create_dir_all(&config.data_dir).map_err(EmulatorError::io(&config.data_dir))?;
        let tls_dir = config.data_dir.join("tls");
        let tls = tokio::task::spawn_blocking(move || tls::server_tls(&tls_dir))
            .await
            .map_err(|e| EmulatorError::Task(e.to_string()))??;
        let library = tokio::task::spawn_blocking(FrameLibrary::encode)
            .await
            .map_err(|e| EmulatorError::Task(e.to_string()))??;
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| EmulatorError::Listen {
                addr: config.listen,
                source,
            })?;
        let listen_error = |source| EmulatorError::Listen {
            addr: config.listen,
            source,
        };
        listener.set_nonblocking(true).map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let origin = format!("https://localhost:{}", addr.port());
        let ids = IdSource::new(config.seed);
        let identity = Identity {
            base_url: format!("{origin}/v1"),
            origin,
            org_id: ids.uuid(),
            app_id: ids.uuid(),
            admin: Person {
                id: ids.uuid(),
                email: "compliance.officer@emulator.example".into(),
                name: "Compliance Officer".into(),
                extension: "1000".into(),
            },
        };
        let mut auth = Auth::new(
            format!("C{}{}", ids.uuid().simple(), ids.uuid().simple()),
            format!("{}{}", ids.uuid().simple(), ids.uuid().simple()),
            config.token_ttl,
            config.refresh_token_ttl,
        );
        let access = config
            .access_token
            .clone()
            .unwrap_or_else(|| format!("{}_PF84_{}", ids.token(64), identity.org_id));
        let refresh = format!("{}_PF84_{}", ids.token(64), identity.org_id);
        auth.grant(
            identity.admin.id,
            access.clone(),
            refresh.clone(),
            clock::now(),
        );
        let credentials = Credentials {
            access_token: access,
            client_id: auth.client_id.clone(),
            client_secret: auth.client_secret.clone(),
            refresh_token: refresh,
            service_app_id: String::new(),
            org_id: String::new(),
        };
        let shared = Arc::new(Shared::new(
            config,
            identity,
            library,
            ids,
            auth,
            Deliverer::new()?,
        ));
        let credentials = Credentials {
            service_app_id: shared.app_hydra(),
            org_id: shared.org_hydra(),
            ..credentials
        };
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls.config))
            .handle(handle.clone())
            .serve(http::router(Arc::clone(&shared)).into_make_service());
        let task = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "the emulator's server stopped");
            }
        });
        handle.listening().await;
        tracing::info!(base_url = %shared.base_url, "webex emulator listening");
        Ok(Emulator {
            shared,
            credentials,
            ca_file: tls.ca_file,
            handle,
            server: Mutex::new(Some(task)),
            bulk_batches: Mutex::new(0),
        })
    }

    /// `https://localhost:PORT/v1`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The initial tokens and the client credentials.
    pub fn credentials(&self) -> Credentials {
        self.credentials.clone()
    }

    /// The compliance officer the initial token belongs to.
    pub fn admin(&self) -> Person {
        self.shared.admin.clone()
    }

    /// Registers a person (an agent); returns the existing one for a known email.
    pub fn add_person(&self, email: &str, name: &str) -> Person {
        self.shared.add_person(email, name)
    }

    /// Everyone the emulator knows.
    pub fn people(&self) -> Vec<Person> {
        lock(&self.shared.store).people.clone()
    }

    /// A new access token for `person` (e.g. for `GET /convergedRecordings`, which lists the
    /// caller's own recordings).
    pub fn token_for(&self, person: &Person) -> String {
        let access = self.shared.ids.token(64);
        let refresh = self.shared.ids.token(64);
        lock(&self.shared.auth).grant(person.id, access.clone(), refresh, clock::now());
        access
    }

    /// Trusts the CA certificates in `path` for webhook deliveries from now on.
    pub fn trust_ca(&self, path: &Path) -> Result<(), EmulatorError> {
        self.shared.deliverer.trust(path)
    }

    /// Adds one recording, published at `spec.publish_at` (default now); webhooks and a
    /// compliance event only with `spec.notify`. Must be called within a Tokio runtime.
    pub fn add_recording(&self, spec: RecordingSpec) -> RecordingInfo {
        let shared = &self.shared;
        let owner = spec.owner.unwrap_or_else(|| {
            let n = shared.ids.token(6).to_lowercase();
            shared.add_person(
                &format!("agent-{n}@emulator.example"),
                &format!("Agent {n}"),
            )
        });
        let start = clock::floor_second(spec.time_recorded);
        let paused: Duration = spec.pauses.iter().map(|(_, length)| *length).sum();
        let stop = clock::add(
            start,
            Duration::from_secs(u64::from(spec.duration_s)) + paused,
        );
        let customer = Party {
            actor_type: "EXTERNAL",
            actor_id: shared.ids.uuid(),
            number: "+14085550100".into(),
            name: "Customer".into(),
            person: None,
        };
        let draft = Draft {
            id: shared.ids.recording_id(),
            topic: spec.topic.unwrap_or_else(|| "Call with Customer".into()),
            answerer: Party::user(&owner),
            owner,
            owner_type: spec.owner_type,
            location_id: shared.location_id(),
            call_session_id: spec.call_session_id.unwrap_or_else(|| shared.ids.uuid()),
            call_number: shared.ids.call_number(),
            personality: "terminator",
            remote: customer,
            redirect: None,
            start,
            stop,
            pauses: spec
                .pauses
                .iter()
                .map(|(offset, length)| {
                    let from = clock::add(start, *offset);
                    (from, clock::add(from, *length))
                })
                .collect(),
            beeps: spec.beeps,
            holds: spec.holds,
        };
        let create_time = clock::floor_second(spec.publish_at.unwrap_or_else(clock::now));
        let recording = state::build_shared(shared, draft, create_time);
        let info = recording.info();
        shared.publish(vec![recording], spec.notify);
        info
    }

    /// Adds `n` recordings started in `[from, to)` (see the crate docs), deterministic for a given
    /// seed and call order. Cheap: about a millisecond per recording, off the runtime.
    pub async fn add_recordings(
        &self,
        n: usize,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<RecordingInfo> {
        let batch = {
            let mut batches = lock(&self.bulk_batches);
            *batches += 1;
            *batches
        };
        let owners = bulk::owners(&self.shared);
        let shared = Arc::clone(&self.shared);
        let seed = shared.config.seed ^ batch.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let generated = tokio::task::spawn_blocking(move || {
            let recordings = bulk::generate(&shared, &owners, seed, n, from, to);
            (shared, recordings)
        })
        .await;
        match generated {
            Ok((shared, recordings)) => shared.publish(recordings, false),
            Err(e) => {
                tracing::error!(error = %e, "generating recordings failed");
                Vec::new()
            }
        }
    }

    /// Every recording (any status, published or not), newest `timeRecorded` first.
    pub fn recordings(&self) -> Vec<RecordingInfo> {
        let mut infos: Vec<RecordingInfo> =
            lock(&self.shared.store).all().map(|r| r.info()).collect();
        infos.sort_by(|a, b| (b.time_recorded, &b.id).cmp(&(a.time_recorded, &a.id)));
        infos
    }

    /// One recording.
    pub fn recording(&self, id: &str) -> Option<RecordingInfo> {
        lock(&self.shared.store).get(id).map(|r| r.info())
    }

    /// The exact MP3 bytes of a recording.
    pub fn audio(&self, id: &str) -> Option<Vec<u8>> {
        let plan = lock(&self.shared.store).get(id).map(|r| r.audio.clone())?;
        Some(plan.bytes(&self.shared.library))
    }

    /// Changes a recording's status (e.g. to `Purged`); false for an unknown id.
    pub fn set_status(&self, id: &str, status: Status) -> bool {
        lock(&self.shared.store).set_status(id, status)
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared.faults).faults = faults;
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        lock(&self.shared.faults).faults.clone()
    }

    /// Every route answers 429, 423 or 5xx with probability `rate` (see [`Faults::storm`]).
    pub fn storm(&self, rate: f64) {
        self.set_faults(Faults::storm(rate));
    }

    /// Every download link minted so far stops working (403).
    pub fn expire_all_links(&self) {
        lock(&self.shared.store).expire_tickets();
    }

    /// From now on, `document` of recording `id` is always malformed (a 200 with half a body).
    pub fn corrupt(&self, id: &str, document: Document) {
        lock(&self.shared.faults)
            .corrupt
            .insert((id.to_owned(), document));
    }

    /// The next `n` list pages are malformed.
    pub fn corrupt_next_list_pages(&self, n: u32) {
        lock(&self.shared.faults).corrupt_list_pages = n;
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).stats.clone()
    }

    /// Every request so far, in arrival order of their answers.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.stats).log.clone()
    }

    /// Plays one call in real time; returns once its last delivery is queued. Its recordings are
    /// published `publish_delay` later.
    pub async fn run_call(&self, plan: CallPlan) -> CallOutcome {
        scenario::run_call(&self.shared, plan).await
    }

    /// Runs calls of random kinds across `agents` until the handle is dropped.
    pub fn spawn_contact_center(
        &self,
        agents: Vec<Person>,
        timing: ContactCenterTiming,
    ) -> ScenarioHandle {
        scenario::spawn_contact_center(Arc::clone(&self.shared), agents, timing)
    }

    /// Stops the server (letting requests in flight finish for up to a second) and every task.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        self.handle.graceful_shutdown(Some(Duration::from_secs(1)));
        let task = lock(&self.server).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        self.handle.shutdown();
    }
}
