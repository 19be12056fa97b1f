//! The monitors while the agent runs: one pipeline per monitor per recorded contact, monitors
//! connected, removed or changed during a contact (their streams start and end without a
//! restart), keyframe requests, and the pointer located on its monitor.

use std::collections::BTreeMap;

use capture_shared::ids::{ContactId, MonitorId};
use capture_shared::protocol::{
    AgentMessage, MAX_MONITORS, MAX_POINTER_SAMPLES, MAX_STREAMS, MonitorInfo, PointerSample,
};
use capture_shared::time::AgentMicros;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{Agent, POINTER_INTERVAL, State, control};
use crate::capture::{LAYOUT_POLL, locate};
use crate::pipeline::Pipeline;

/// Streams one contact may have: the recorder's limit, less a layout's worth of monitors so
/// that the streams a spool reports never pass it either.
pub const MAX_STREAMS_PER_CONTACT: usize = MAX_STREAMS - MAX_MONITORS;

/// Why a monitor connected during a contact is not recorded.
pub const GAP_TOO_MANY_STREAMS: &str =
    "screen not captured: the monitors changed too often during this contact";

/// One monitor's pipeline of a recorded contact.
#[derive(Debug)]
pub(super) struct Running {
    /// The monitor (stable number).
    pub monitor: MonitorId,
    pub pipeline: Pipeline,
    /// Its monitor went away: stopped, its last frames still draining.
    pub retired: bool,
}

impl Agent {
    /// Starts one pipeline per current monitor for `contact`; the reason when one cannot start.
    pub(super) fn start_pipelines(
        &self,
        contact: ContactId,
        state: &State,
    ) -> Result<Vec<Running>, String> {
        let mut running = Vec::new();
        for monitor in &state.layout.monitors {
            running.push(self.start_pipeline(contact, monitor.id, state)?);
        }
        Ok(running)
    }

    fn start_pipeline(
        &self,
        contact: ContactId,
        monitor: MonitorId,
        state: &State,
    ) -> Result<Running, String> {
        let opened = state
            .layout
            .source(monitor)
            .ok_or_else(|| format!("monitor {monitor} is gone"))?;
        let pipeline = Pipeline::spawn(
            self.source.clone(),
            contact,
            (monitor, opened),
            &state.settings,
            self.clock,
            state.output_tx.clone(),
            state.encoded.clone(),
        )
        .map_err(|error| error.to_string().chars().take(200).collect::<String>())?;
        pipeline.controls.cap_fps(state.fps_cap);
        Ok(Running {
            monitor,
            pipeline,
            retired: false,
        })
    }

    /// A new listing of the monitors: streams of monitors that went away (or changed) end, each
    /// recorded contact starts streams for the new ones. Returns what to tell the recorder.
    pub(super) fn monitors_listed(
        &self,
        listed: &[MonitorInfo],
        state: &mut State,
    ) -> Vec<AgentMessage> {
        let change = state.layout.update(listed);
        if change.is_empty() {
            return Vec::new();
        }
        let sizes: Vec<String> = state
            .layout
            .monitors
            .iter()
            .map(|m| format!("{}: {}x{}+{}+{}", m.id, m.width, m.height, m.x, m.y))
            .collect();
        tracing::info!(monitors = ?sizes, ended = change.ended.len(), started = change.started.len(), "the monitors changed");
        let now = self.clock.now();
        let mut messages = Vec::new();
        let contacts: Vec<ContactId> = state.recordings.keys().copied().collect();
        for contact in contacts {
            let mut started = Vec::new();
            let streams = state.recordings.get(&contact).map_or(0, Vec::len);
            for (n, monitor) in change.started.iter().enumerate() {
                if streams + n >= MAX_STREAMS_PER_CONTACT {
                    // The recorder takes at most MAX_STREAMS streams of a contact.
                    tracing::warn!(%contact, %monitor, "too many monitor changes in this contact: the new monitor is not recorded");
                    messages.push(AgentMessage::CaptureGap {
                        contact,
                        monitor: *monitor,
                        from: now,
                        to: now,
                        reason: GAP_TOO_MANY_STREAMS.into(),
                    });
                    continue;
                }
                match self.start_pipeline(contact, *monitor, state) {
                    Ok(running) => started.push(running),
                    Err(error) => {
                        tracing::warn!(%contact, %monitor, error, "cannot record the new monitor");
                    }
                }
            }
            let Some(running) = state.recordings.get_mut(&contact) else {
                continue;
            };
            for ended in &change.ended {
                for r in running
                    .iter_mut()
                    .filter(|r| r.monitor == ended.monitor && !r.retired)
                {
                    r.pipeline.stop();
                    r.retired = true;
                    messages.push(AgentMessage::StreamEnded {
                        contact,
                        monitor: ended.monitor,
                        at: now,
                        reason: ended.reason.clone(),
                    });
                }
            }
            running.extend(started);
        }
        // New spool segments name the monitors as they are now.
        state.spool.set_monitors(state.layout.monitors.clone());
        messages.push(AgentMessage::Monitors {
            monitors: state.layout.monitors.clone(),
        });
        messages
    }
}

/// Asks the pipelines of `contact` (of one monitor, or all) for a keyframe.
pub(super) fn request_keyframe(state: &State, contact: ContactId, monitor: Option<MonitorId>) {
    if let Some(running) = state.recordings.get(&contact) {
        for r in running {
            if !r.retired && monitor.is_none_or(|m| m == r.monitor) {
                r.pipeline.controls.request_keyframe();
            }
        }
    }
}

/// Buffered pointer moves, as one message per contact and monitor.
pub(super) fn pointer_messages(state: &mut State) -> Vec<Message> {
    if state.pointer.is_empty() {
        return Vec::new();
    }
    let mut by_monitor: BTreeMap<MonitorId, Vec<PointerSample>> = BTreeMap::new();
    for (captured, x, y) in state.pointer.drain(..) {
        if let Some((monitor, x, y)) = locate(&state.layout.monitors, (x, y)) {
            by_monitor
                .entry(monitor)
                .or_default()
                .push(PointerSample { captured, x, y });
        }
    }
    let mut messages = Vec::new();
    for contact in state.recordings.keys() {
        for (monitor, samples) in &by_monitor {
            for chunk in samples.chunks(MAX_POINTER_SAMPLES) {
                messages.push(control(&AgentMessage::Pointer {
                    contact: *contact,
                    monitor: *monitor,
                    samples: chunk.to_vec(),
                }));
            }
        }
    }
    messages
}

/// Reads the pointer on its own thread (platform calls block) and reports moves only.
pub(super) fn spawn_pointer_reader(
    agent: &Agent,
    output: mpsc::Sender<(AgentMicros, i32, i32)>,
    cancel: CancellationToken,
) {
    let mut source = agent.source.pointer();
    let clock = agent.clock;
    let spawned = std::thread::Builder::new()
        .name("capture-pointer".into())
        .spawn(move || {
            let mut last = None;
            while !cancel.is_cancelled() {
                if let Some(position) = source.position()
                    && last != Some(position)
                {
                    last = Some(position);
                    if output
                        .try_send((clock.now(), position.0, position.1))
                        .is_err()
                        && output.is_closed()
                    {
                        return;
                    }
                }
                std::thread::sleep(POINTER_INTERVAL);
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no pointer reader");
    }
}

/// The monitors now; none when the platform says there is no display (every monitor
/// unplugged), `None` when they cannot be listed for another reason.
fn listing(source: &dyn crate::capture::ScreenSource) -> Option<Vec<MonitorInfo>> {
    match source.monitors() {
        Ok(listed) => Some(listed),
        Err(crate::capture::CaptureError::NoDisplay(_)) => Some(Vec::new()),
        Err(error) => {
            tracing::debug!(%error, "the monitors cannot be listed");
            None
        }
    }
}

/// Watches the monitor layout on its own thread (platform calls block): every [`LAYOUT_POLL`]
/// the source's watch is asked, and when it says the layout may have changed the monitors are
/// listed again and sent if they differ from the last listing.
pub(super) fn spawn_layout_watch(
    agent: &Agent,
    first: Vec<MonitorInfo>,
    output: mpsc::Sender<Vec<MonitorInfo>>,
    cancel: CancellationToken,
) {
    let source = agent.source.clone();
    let spawned = std::thread::Builder::new()
        .name("capture-monitors".into())
        .spawn(move || {
            let mut watch = source.layout_watch();
            let mut last = first;
            while !cancel.is_cancelled() {
                std::thread::sleep(LAYOUT_POLL);
                if !watch.changed() {
                    continue;
                }
                let Some(listed) = listing(source.as_ref()) else {
                    continue;
                };
                if listed == last {
                    continue;
                }
                // A layout settles before it counts (a dock brings its monitors up one by one; a
                // flapping link comes and goes): the same listing twice, one poll apart.
                std::thread::sleep(LAYOUT_POLL);
                if listing(source.as_ref()).as_ref() != Some(&listed) {
                    continue;
                }
                last.clone_from(&listed);
                if output.blocking_send(listed).is_err() {
                    return;
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no monitor watch: monitors connected later are not recorded");
    }
}
