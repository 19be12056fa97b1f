//! The scenario engine: virtual agents taking calls in real time, with the `telephony_calls`
//! deliveries of every agent involved and, `publish_delay` after the call, its recordings.
//!
//! A call is planned up front as a timeline (pure: [`plan`]), then played: each delivery is sent
//! at its planned instant, and the recordings are stored with `createTime` = publication time. All
//! timestamps in deliveries, recordings and metadata come from the plan, so they agree exactly.
//! The recording start (answer) is aligned to a whole second and every phase inside a recording is
//! rounded up to whole seconds (at least 1 s), because `durationSeconds` and the metadata's times
//! are whole seconds.

mod contact_center;
mod plan;
mod run;

use std::time::Duration;

use jiff::Timestamp;
use uuid::Uuid;

use crate::model::Person;

pub(crate) use contact_center::spawn as spawn_contact_center;
pub use contact_center::{ContactCenterTiming, ScenarioHandle};
pub(crate) use run::run_call;

/// What happens in a call. The agent is [`CallPlan::agent`] ("A" below); every call comes in from
/// the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallKind {
    /// A answers, talks, the customer hangs up. One recording; A is the terminator and the remote
    /// party is the calling party.
    Answered,
    /// A call-queue call offered to A and `answerer` at once; `answerer` takes it. A sees alerting
    /// then `disconnected` without `answered` and with `completedElsewhere: true`. Only the
    /// answerer's call is recorded. Both legs share one callSessionId (uncertain).
    AnsweredElsewhere {
        /// Who takes the call.
        answerer: Person,
    },
    /// Connected → held → connected → disconnected. One continuous recording (silence while held)
    /// with a beep at the resume.
    HoldResume,
    /// A talks, holds the customer, calls `to` (a consult call with its own callSessionId —
    /// uncertain), then transfers. `to`'s call half continues connected to the customer and takes
    /// the original callSessionId (uncertain). Recordings: A's customer leg and `to`'s call (from
    /// its answer of the consult to the end, beep at the transfer) share the original session; A's
    /// consult leg has the consult session.
    ConsultTransfer {
        /// Who the call is transferred to.
        to: Person,
    },
    /// A answers, then adds `with`; both recordings share the callSessionId (uncertain). A's
    /// recording has a beep where `with` joined.
    Conference {
        /// Who joins.
        with: Person,
    },
    /// Recording paused for one phase then resumed: one recording with a hole (PAUSE/RESUME
    /// actions), beep right after the resume.
    PauseResume,
    /// Recording stopped for one phase then restarted: two recordings, one callSessionId,
    /// published together.
    StopRestart,
}

/// How long the parts of a call last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTiming {
    /// Alerting before the first answer (the answer is then aligned to a whole second). Rings
    /// inside a call (consult, conference) use it rounded up to whole seconds.
    pub ring: Duration,
    /// Each talk / hold / pause phase, rounded up to whole seconds (at least 1 s).
    pub phase: Duration,
}

impl Default for CallTiming {
    fn default() -> CallTiming {
        CallTiming {
            ring: Duration::from_secs(3),
            phase: Duration::from_secs(10),
        }
    }
}

/// The customer on the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Display name.
    pub name: String,
    /// E.164 number.
    pub number: String,
}

impl Default for Customer {
    fn default() -> Customer {
        Customer {
            name: "Customer".into(),
            number: "+14085550100".into(),
        }
    }
}

/// A call to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPlan {
    /// The agent the call is offered to first.
    pub agent: Person,
    /// What happens.
    pub kind: CallKind,
    /// How long things take.
    pub timing: CallTiming,
    /// Who calls.
    pub customer: Customer,
}

impl CallPlan {
    /// A call of `kind` to `agent` with default timing.
    pub fn new(agent: Person, kind: CallKind) -> CallPlan {
        CallPlan {
            agent,
            kind,
            timing: CallTiming::default(),
            customer: Customer::default(),
        }
    }

    /// The same plan with this ring and phase duration.
    pub fn with_timing(mut self, ring: Duration, phase: Duration) -> CallPlan {
        self.timing = CallTiming { ring, phase };
        self
    }
}

/// One agent's call half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLeg {
    /// The agent.
    pub person: Uuid,
    /// Raw call id (`callhalf-<n>:0`).
    pub call_id: String,
    /// The call session the leg started in.
    pub call_session_id: Uuid,
}

/// A recording a call will publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRecording {
    /// The recording id.
    pub id: String,
    /// The owner.
    pub owner: Uuid,
    /// Its callSessionId.
    pub call_session_id: Uuid,
    /// Recording start.
    pub time_recorded: Timestamp,
    /// Recording stop.
    pub stop_time: Timestamp,
    /// `durationSeconds`.
    pub duration_s: u32,
    /// When it becomes visible (`createTime`).
    pub publish_at: Timestamp,
}

/// What a played call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// The customer call's session (the original one for transfers).
    pub call_session_id: Uuid,
    /// Every agent call half, in creation order.
    pub legs: Vec<CallLeg>,
    /// The agents involved.
    pub people: Vec<Uuid>,
    /// The recordings, all published at the same instant.
    pub recordings: Vec<PlannedRecording>,
    /// The first delivery's time.
    pub started: Timestamp,
    /// The first answer.
    pub answered: Timestamp,
    /// The last disconnect.
    pub ended: Timestamp,
}
