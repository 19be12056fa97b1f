//! Reconciliation after each connection: what the server holds of every contact (its
//! `Welcome`) against what the agent recorded, kept and was doing while they were apart.

use capture_shared::protocol::{AgentMessage, Welcome};

use super::{Agent, GAP_AGENT_NOT_RUNNING, State, Stopping, queue_control};
use crate::spool::SpoolError;

impl Agent {
    /// Reconciles with what the server holds: sends from there, ends what it stopped, forgets
    /// what it no longer takes.
    pub(super) fn welcomed(&self, welcome: Welcome, state: &mut State) -> Result<(), SpoolError> {
        state.settings = welcome.settings;
        state.fps_cap = None;
        self.status(|s| s.fps_cap = None);
        for r in state.recordings.values().flatten() {
            r.pipeline.controls.cap_fps(None);
        }
        state.synced = false;
        for contact in &welcome.forget {
            tracing::info!(%contact, "the recorder no longer takes this contact: its spool is deleted");
            self.stop(*contact, Stopping::Discarded, state)?;
        }
        state.spool.reconnected(&welcome.held, &welcome.forget)?;
        for held in &welcome.held {
            let known = state.recordings.contains_key(&held.contact)
                || state.stopping.contains_key(&held.contact)
                || state.spool.contains(held.contact);
            if !held.ended {
                continue; // a `Start` with its resume point follows
            }
            if known {
                // Stopped while the agent was away.
                self.stop(held.contact, Stopping::Ended, state)?;
            } else {
                // Sent in full before (its `Stopped` was lost), or never heard of.
                if held.streams.iter().all(|s| s.frames == 0) {
                    queue_control(
                        state,
                        AgentMessage::RecordingFailed {
                            contact: held.contact,
                            reason: "the agent did not receive the start of this contact (it was out of reach)".into(),
                        },
                    );
                }
                queue_control(
                    state,
                    AgentMessage::Stopped {
                        contact: held.contact,
                        frames: held.streams.clone(),
                    },
                );
            }
        }
        // A previous run killed mid-contact: the stretch until now was not captured.
        let now = self.clock.now();
        for (contact, from, monitors) in state.spool.take_interrupted() {
            if !welcome.held.iter().any(|h| h.contact == contact) {
                continue;
            }
            for monitor in monitors {
                queue_control(
                    state,
                    AgentMessage::CaptureGap {
                        contact,
                        monitor,
                        from,
                        to: now.max(from),
                        reason: GAP_AGENT_NOT_RUNNING.into(),
                    },
                );
            }
        }
        state.wants_send = true;
        Ok(())
    }
}
