//! The processor: applies stored deliveries in arrival order and fires machine timers. Each
//! delivery's state changes commit in one transaction with the delivery marked processed, so a
//! crash re-applies nothing and loses nothing; commands go to agents after the commit.

use std::sync::Arc;
use std::time::Duration;

use capture_shared::event::{CallEvent, EventKind};
use capture_shared::ids::{AgentId, ContactId, PersonId};
use capture_shared::protocol::ServerMessage;
use capture_shared::time::UtcMillis;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::decode::{self, AgentRecord, Decoded};
use super::link::{AgentLink, GAP_AGENT_OFFLINE, GAP_NOT_ENROLLED};
use super::machine::{self, Action, CloseReason, Policy};
use crate::clock::Clock;
use crate::store::{Inserted, NewDelivery, Store, StoreError, StoreTx, StoredDelivery};
use crate::webex::webhook::Envelope;

/// How many deliveries one pass reads.
const BATCH: i64 = 16;

/// The processor's shared parts.
#[derive(Debug, Clone)]
pub struct Processor {
    /// The store.
    pub store: Store,
    /// The clock.
    pub clock: Clock,
    /// The machine's rules.
    pub policy: Policy,
    /// Command delivery.
    pub link: Arc<dyn AgentLink>,
    /// Woken when deliveries are stored.
    pub wake: Arc<Notify>,
    /// Notified when a `convergedRecordings` delivery queues a recording for the adapter.
    pub recordings_wake: Arc<Notify>,
}

/// A command to send once the transaction committed.
#[derive(Debug)]
struct Outgoing {
    agent: AgentId,
    contact: ContactId,
    message: ServerMessage,
    at: i64,
}

/// One unit of the processor's work.
#[derive(Debug)]
enum Work<'a> {
    /// A stored delivery.
    Delivery(&'a StoredDelivery),
    /// A person's timers, at this time (UTC ms).
    Tick(PersonId, i64),
}

impl Processor {
    /// Processes deliveries and timers until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            if let Err(error) = self.drain().await {
                tracing::error!(%error, "processing webhook deliveries failed; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            let deadline = match self.store.next_machine_deadline().await {
                Ok(deadline) => deadline,
                Err(error) => {
                    tracing::error!(%error, "reading machine deadlines failed");
                    Some(self.clock.now_ms() + 1000)
                }
            };
            let sleep = async {
                match deadline {
                    Some(due) => tokio::time::sleep_until(self.clock.instant_at(due)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = sleep => {}
            }
        }
    }

    /// Stores a batch of webhook deliveries and, when no older delivery waits for the processor,
    /// applies them in the same transaction, so that one commit (one fsync) lies between a
    /// delivery's arrival and its commands, which are sent before this returns. When older
    /// deliveries wait (arrival order comes first), or applying fails, the batch is only stored
    /// and [`Processor::run`] applies it, parking what cannot be applied.
    pub async fn intake(&self, batch: &[NewDelivery]) -> Result<Vec<Inserted>, StoreError> {
        let mut tx = self.store.begin().await?;
        let backlog = tx.has_pending_deliveries().await?;
        let inserted = tx.insert_deliveries(batch).await?;
        let mut outgoing = Vec::new();
        let applied = if backlog {
            Ok(())
        } else {
            // The held writes too: a statement of theirs that fails falls back like the rest.
            match self
                .apply_stored(&mut tx, batch, &inserted, &mut outgoing)
                .await
            {
                Ok(()) => tx.flush().await,
                Err(error) => Err(error),
            }
        };
        let inserted = match applied {
            Ok(()) => {
                tx.commit().await?;
                inserted
            }
            Err(error) => {
                tracing::warn!(%error, "applying webhook deliveries on arrival failed; the processor applies them");
                drop(tx);
                outgoing.clear();
                let mut tx = self.store.begin().await?;
                let inserted = tx.insert_deliveries(batch).await?;
                tx.commit().await?;
                inserted
            }
        };
        // The processor drains what was only stored, and its next timer may have moved.
        self.wake.notify_one();
        self.send(outgoing).await?;
        Ok(inserted)
    }

    async fn apply_stored(
        &self,
        tx: &mut StoreTx,
        batch: &[NewDelivery],
        inserted: &[Inserted],
        outgoing: &mut Vec<Outgoing>,
    ) -> Result<(), StoreError> {
        let new: Vec<(i64, UtcMillis, Decoding)> = batch
            .iter()
            .zip(inserted)
            .filter_map(|(delivery, inserted)| match inserted {
                Inserted::New(seq) => {
                    let received_at = UtcMillis(delivery.received_at_ms);
                    Some((*seq, received_at, decode_body(&delivery.body, received_at)))
                }
                Inserted::Duplicate => None,
            })
            .collect();
        let persons: Vec<PersonId> = new.iter().filter_map(|(_, _, d)| person_of(d)).collect();
        tx.load_machines(&persons).await?;
        for (seq, received_at, decoded) in new {
            self.process(tx, seq, decoded, received_at, outgoing)
                .await?;
        }
        Ok(())
    }

    /// Applies every pending delivery and every due timer.
    pub async fn drain(&self) -> Result<(), StoreError> {
        loop {
            let pending = self.store.pending_deliveries(BATCH).await?;
            if pending.is_empty() {
                break;
            }
            let work: Vec<Work<'_>> = pending.iter().map(Work::Delivery).collect();
            self.apply_batch(&work).await?;
        }
        let now = self.clock.now_ms();
        let due: Vec<Work<'_>> = self
            .store
            .due_machines(now)
            .await?
            .iter()
            .filter_map(|person| uuid::Uuid::parse_str(person).map(PersonId).ok())
            .map(|person| Work::Tick(person, now))
            .collect();
        for chunk in due.chunks(BATCH as usize) {
            self.apply_batch(chunk).await?;
        }
        Ok(())
    }

    /// Applies a batch in one transaction (one fsync), then sends its commands. A unit the store
    /// cannot apply (its person's stored state is unreadable) must not hold up the others: the
    /// batch is then redone one unit per transaction, and the failing unit is parked with its
    /// reason (a delivery marked `failed: …`, a person's timers stopped).
    async fn apply_batch(&self, batch: &[Work<'_>]) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        let mut outgoing = Vec::new();
        let mut unreadable = false;
        let decoded: Vec<Option<Decoding>> = batch
            .iter()
            .map(|work| match work {
                Work::Delivery(d) => Some(decode_body(&d.body, UtcMillis(d.received_at_ms))),
                Work::Tick(..) => None,
            })
            .collect();
        let persons: Vec<PersonId> = batch
            .iter()
            .zip(&decoded)
            .filter_map(|(work, decoded)| match (work, decoded) {
                (Work::Tick(person, _), _) => Some(*person),
                (Work::Delivery(_), Some(decoded)) => person_of(decoded),
                (Work::Delivery(_), None) => None,
            })
            .collect();
        tx.load_machines(&persons).await?;
        for (work, decoded) in batch.iter().zip(decoded) {
            match self.apply(&mut tx, work, decoded, &mut outgoing).await {
                Ok(()) => {}
                Err(StoreError::Corrupt(_)) => {
                    unreadable = true;
                    break;
                }
                Err(error) => return Err(error),
            }
        }
        if !unreadable {
            tx.commit().await?;
            return self.send(outgoing).await;
        }
        drop(tx);
        for work in batch {
            let mut tx = self.store.begin().await?;
            let mut outgoing = Vec::new();
            match self.apply(&mut tx, work, None, &mut outgoing).await {
                Ok(()) => {
                    tx.commit().await?;
                    self.send(outgoing).await?;
                }
                Err(StoreError::Corrupt(reason)) => {
                    drop(tx);
                    self.park(work, &reason).await?;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Applies one unit; a delivery's body is decoded here unless `decoded` brings it.
    async fn apply(
        &self,
        tx: &mut StoreTx,
        work: &Work<'_>,
        decoded: Option<Decoding>,
        outgoing: &mut Vec<Outgoing>,
    ) -> Result<(), StoreError> {
        match work {
            Work::Delivery(delivery) => {
                let received_at = UtcMillis(delivery.received_at_ms);
                let decoded = decoded.unwrap_or_else(|| decode_body(&delivery.body, received_at));
                self.process(tx, delivery.seq, decoded, received_at, outgoing)
                    .await
            }
            Work::Tick(person, now) => self.tick(tx, *person, *now, outgoing).await,
        }
    }

    async fn park(&self, work: &Work<'_>, reason: &str) -> Result<(), StoreError> {
        match work {
            Work::Delivery(delivery) => {
                tracing::error!(seq = delivery.seq, %reason, "webhook delivery cannot be applied; parked");
                let mut tx = self.store.begin().await?;
                tx.mark_processed(
                    delivery.seq,
                    &format!("failed: {reason}"),
                    self.clock.now_ms(),
                )
                .await?;
                tx.commit().await
            }
            Work::Tick(person, _) => {
                tracing::error!(%person, %reason, "machine state unreadable; its timers are parked");
                self.store.park_machine(*person).await
            }
        }
    }

    async fn process(
        &self,
        tx: &mut StoreTx,
        seq: i64,
        decoded: Decoding,
        received_at: UtcMillis,
        outgoing: &mut Vec<Outgoing>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let person = match &decoded {
            Ok(Decoded::Call { person, .. } | Decoded::AgentState { person, .. }) => *person,
            Ok(Decoded::Recording { id }) => {
                let new = tx.discover_recording(id, received_at.0, now).await?;
                if new {
                    self.recordings_wake.notify_one();
                }
                let outcome = if new {
                    format!("recording {id} queued for the adapter")
                } else {
                    format!("recording {id} already known")
                };
                return tx.mark_processed(seq, &outcome, now).await;
            }
            Ok(Decoded::Other { resource }) => {
                let outcome = format!("ignored: resource {resource} is not a call or agent event");
                return tx.mark_processed(seq, &outcome, now).await;
            }
            Err(reason) => {
                tracing::warn!(seq, %reason, "webhook delivery rejected by the normaliser");
                return tx
                    .mark_processed(seq, &format!("rejected: {reason}"), now)
                    .await;
            }
        };
        let decoded = decoded.map_err(StoreError::Corrupt)?;
        let mut record = load(tx, person).await?;
        let stepped = decode::step(&mut record, &decoded, &self.policy);
        let agent = tx.agent_for_person(person).await?;
        for applied in &stepped.applied {
            let contact = applied.actions.iter().find_map(|a| match a {
                Action::Marker { contact, .. } => Some(*contact),
                _ => None,
            });
            let note = applied.actions.iter().find_map(|a| match a {
                Action::Ignored { reason, .. } => Some(*reason),
                _ => None,
            });
            self.execute(
                tx,
                person,
                agent,
                &applied.actions,
                Some(&applied.event),
                outgoing,
            )
            .await?;
            tx.insert_event(Some(seq), &applied.event, contact, note)
                .await?;
        }
        let outcome = if stepped.late {
            "late: older than what the call already applied"
        } else if stepped.duplicate {
            "no change"
        } else {
            "applied"
        };
        save(tx, person, &record, &self.policy, now).await?;
        tx.mark_processed(seq, outcome, now).await
    }

    async fn tick(
        &self,
        tx: &mut StoreTx,
        person: PersonId,
        now: i64,
        outgoing: &mut Vec<Outgoing>,
    ) -> Result<(), StoreError> {
        let mut record = load(tx, person).await?;
        let actions = decode::tick(&mut record, UtcMillis(now), &self.policy);
        let agent = tx.agent_for_person(person).await?;
        self.execute(tx, person, agent, &actions, None, outgoing)
            .await?;
        for action in &actions {
            if let Action::StopRecording {
                contact,
                at,
                reason,
                ..
            }
            | Action::DiscardRecording {
                contact,
                at,
                reason,
                ..
            } = action
                && *reason != CloseReason::NotResponding
            {
                // The timer's Agent Available goes on the timeline like a reported one.
                let event = CallEvent {
                    kind: EventKind::AgentAvailable,
                    agent: person,
                    call_id: None,
                    call_session_id: None,
                    at: *at,
                };
                let note = match reason {
                    CloseReason::WrapUpTimer => Some("wrap-up timer"),
                    CloseReason::ContactCap => Some("contact length cap"),
                    _ => None,
                };
                tx.insert_event(None, &event, Some(*contact), note).await?;
            }
        }
        save(tx, person, &record, &self.policy, now).await
    }

    /// Applies actions to the store and collects the commands they imply.
    async fn execute(
        &self,
        tx: &mut StoreTx,
        person: PersonId,
        agent: Option<AgentId>,
        actions: &[Action],
        event: Option<&CallEvent>,
        outgoing: &mut Vec<Outgoing>,
    ) -> Result<(), StoreError> {
        let mut command = |contact: ContactId, message: ServerMessage, at: i64| {
            if let Some(agent) = agent {
                outgoing.push(Outgoing {
                    agent,
                    contact,
                    message,
                    at,
                });
            }
        };
        for action in actions {
            match action {
                Action::StartRecording { contact, at } => {
                    tx.create_contact(*contact, person, agent, at.0).await?;
                    match agent {
                        Some(agent) if self.link.is_connected(agent) => {
                            if let Some(reason) = self.link.refusal() {
                                tracing::warn!(%contact, reason, "contact refused by the recorder");
                                tx.open_gap(*contact, at.0, reason).await?;
                            } else {
                                command(
                                    *contact,
                                    ServerMessage::Start {
                                        contact: *contact,
                                        resume: Vec::new(),
                                    },
                                    at.0,
                                );
                            }
                        }
                        Some(_) => tx.open_gap(*contact, at.0, GAP_AGENT_OFFLINE).await?,
                        None => tx.open_gap(*contact, at.0, GAP_NOT_ENROLLED).await?,
                    }
                }
                Action::KeepRecording { contact } => {
                    tx.set_contact_state(*contact, "kept", None).await?;
                    command(*contact, ServerMessage::Keep { contact: *contact }, 0);
                }
                Action::Marker {
                    contact,
                    event: kind,
                    at,
                } => {
                    if let Some(event) = event
                        && let Some(call) = &event.call_id
                    {
                        tx.add_contact_call(*contact, call, event.call_session_id.as_ref())
                            .await?;
                    }
                    command(
                        *contact,
                        ServerMessage::Marker {
                            contact: *contact,
                            label: kind.label().to_owned(),
                            at: *at,
                        },
                        0,
                    );
                }
                Action::DiscardRecording {
                    contact,
                    at,
                    reason,
                    ..
                } => {
                    tx.set_contact_state(*contact, "discarded", Some((at.0, reason_text(*reason))))
                        .await?;
                    tx.close_gaps(*contact, at.0).await?;
                    tx.audit(
                        self.clock.now_ms(),
                        "system",
                        "discard_recording",
                        &contact.to_string(),
                        Some(reason_text(*reason)),
                    )
                    .await?;
                    command(*contact, ServerMessage::Discard { contact: *contact }, 0);
                }
                Action::StopRecording {
                    contact,
                    at,
                    reason,
                    ..
                } => {
                    tx.set_contact_state(*contact, "closed", Some((at.0, reason_text(*reason))))
                        .await?;
                    tx.close_gaps(*contact, at.0).await?;
                    command(*contact, ServerMessage::Stop { contact: *contact }, 0);
                }
                Action::Ignored { .. } => {}
            }
        }
        Ok(())
    }

    /// Sends commands; a start that cannot be delivered becomes a gap.
    async fn send(&self, outgoing: Vec<Outgoing>) -> Result<(), StoreError> {
        for command in outgoing {
            let is_start = matches!(command.message, ServerMessage::Start { .. });
            if !self.link.send(command.agent, command.message) && is_start {
                let mut tx = self.store.begin().await?;
                tx.open_gap(command.contact, command.at, GAP_AGENT_OFFLINE)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

/// A delivery's body decoded, or why it cannot be.
type Decoding = Result<Decoded, String>;

fn decode_body(body: &[u8], received_at: UtcMillis) -> Decoding {
    Envelope::parse(body)
        .map_err(|e| e.to_string())
        .and_then(|e| decode::decode(&e, received_at))
}

/// Whose machine a decoded delivery steps.
fn person_of(decoded: &Decoding) -> Option<PersonId> {
    match decoded {
        Ok(Decoded::Call { person, .. } | Decoded::AgentState { person, .. }) => Some(*person),
        _ => None,
    }
}

fn reason_text(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::AgentAvailable => "agent available",
        CloseReason::WrapUpTimer => "wrap-up timer",
        CloseReason::ContactCap => "contact length cap",
        CloseReason::NotResponding => "not responding",
    }
}

async fn load(tx: &mut StoreTx, person: PersonId) -> Result<AgentRecord, StoreError> {
    match tx.machine(person).await? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("machine of {person}: {e}"))),
        None => Ok(AgentRecord::default()),
    }
}

async fn save(
    tx: &mut StoreTx,
    person: PersonId,
    record: &AgentRecord,
    policy: &Policy,
    now: i64,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let deadline = machine::next_deadline(&record.machine, policy).map(|d| d.0);
    tx.save_machine(person, &json, deadline, now).await
}
