//! An emulator of the Webex APIs Capture uses, speaking Webex's documented wire format over HTTPS:
//! converged recordings (list, details with expiring download links, metadata, delete, the MP3
//! download servlet), OAuth and Service App tokens, webhooks (CRUD and signed deliveries), people,
//! compliance events. A scenario engine plays contact-center calls in real time, and everything
//! can misbehave on demand (429/423/5xx, slow or malformed answers, expired links, duplicated,
//! reordered or lost deliveries).
//!
//! ```no_run
//! # async fn demo() -> Result<(), webex_emulator::EmulatorError> {
//! use std::time::Duration;
//! use webex_emulator::{CallKind, CallPlan, Emulator, EmulatorConfig};
//!
//! let dir = std::env::temp_dir().join("emulator-doc");
//! let emulator = Emulator::start(EmulatorConfig::in_dir(&dir)).await?;
//! let agent = emulator.add_person("agent@example.com", "Agent");
//! let plan = CallPlan::new(agent, CallKind::PauseResume)
//!     .with_timing(Duration::from_millis(500), Duration::from_secs(1));
//! let outcome = emulator.run_call(plan).await;
//! println!("{} recordings at {}", outcome.recordings.len(), emulator.base_url());
//! # Ok(())
//! # }
//! ```
//!
//! Uncertain Webex behaviours and the answer picked for each are documented where they are
//! implemented (search for "uncertain").

pub mod audio;
mod auth;
mod bulk;
mod clock;
mod config;
mod delivery;
mod documents;
mod emulator;
mod error;
mod faults;
mod hooks;
mod http;
mod ids;
mod model;
mod scenario;
mod state;
mod stats;
mod store;
mod telephony;
mod tls;

pub use config::{
    DEFAULT_LINK_TTL, DEFAULT_PUBLISH_DELAY, DEFAULT_REFRESH_TOKEN_TTL, DEFAULT_TOKEN_TTL,
    EmulatorConfig,
};
pub use delivery::{SIGNATURE_HEADER, sign};
pub use emulator::{Credentials, Emulator};
pub use error::EmulatorError;
pub use faults::{DeliveryFaults, Document, Faults, Route, RouteFaults};
pub use model::{OwnerType, Person, RecordingInfo, RecordingSpec, Status};
pub use scenario::{
    CallKind, CallLeg, CallOutcome, CallPlan, CallTiming, ContactCenterTiming, Customer,
    PlannedRecording, ScenarioHandle,
};
pub use stats::{RequestRecord, Stats};
