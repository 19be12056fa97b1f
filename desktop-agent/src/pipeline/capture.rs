//! The capture stage: grabs the monitor every frame interval (`1 / fps_max`), stamps each image on
//! the agent's clock, and offers it to the detector without waiting (a busy detector means the
//! capture is dropped; see the module above).
//!
//! While the platform says the screen cannot be captured (locked, a secure prompt), nothing is
//! grabbed; when capture resumes (or stops) the stretch goes out as a [`CaptureGap`] and the
//! next image is a keyframe, so the recording never shows a frozen picture as if it were live.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use capture_shared::ids::{ContactId, MonitorId};
use capture_shared::protocol::StreamSettings;
use capture_shared::time::AgentMicros;
use tokio::sync::mpsc;

use super::{CaptureGap, Captured, Controls, Output};
use crate::capture::interruption::Interruption;
use crate::capture::{CaptureError, ScreenSource};
use crate::clock::AgentClock;

/// Pause after a failed grab before the next attempt.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// A read of the screen at least this often even without change notifications, in case a
/// drawing path does not report damage (the detector drops it when nothing changed).
pub const SAFETY_READ: Duration = Duration::from_secs(5);

/// The capture stage of one monitor.
#[derive(Debug)]
pub struct CaptureStage {
    source: Arc<dyn ScreenSource>,
    contact: ContactId,
    /// The monitor's stable number (what the recorder is told).
    monitor: MonitorId,
    /// Its number in the platform's list (what is opened).
    opened: MonitorId,
    settings: StreamSettings,
    clock: AgentClock,
    controls: Arc<Controls>,
    /// Where gaps go (the send stage's queue, beside the encoded frames).
    gaps: mpsc::Sender<Output>,
}

impl CaptureStage {
    /// A stage that grabs `fps_max` times a second, slower while the encoder cannot keep up or
    /// the server caps the rate ([`super::capture_interval`]).
    pub fn new(
        source: Arc<dyn ScreenSource>,
        (contact, monitor, opened): (ContactId, MonitorId, MonitorId),
        settings: &StreamSettings,
        clock: AgentClock,
        controls: Arc<Controls>,
        gaps: mpsc::Sender<Output>,
    ) -> CaptureStage {
        CaptureStage {
            source,
            contact,
            monitor,
            opened,
            settings: settings.clone(),
            clock,
            controls,
            gaps,
        }
    }

    /// Sends the gap of an interruption that ended now.
    fn end_gap(&self, (from, interruption): (AgentMicros, Interruption)) {
        let to = self.clock.now();
        tracing::info!(monitor = %self.monitor, contact = %self.contact, reason = interruption.reason(), "screen capturable again");
        let gap = CaptureGap {
            contact: self.contact,
            monitor: self.monitor,
            from,
            to,
            reason: interruption.reason(),
        };
        let _ = self.gaps.blocking_send(Output::Gap(gap));
    }

    /// Runs until stopped (the capture is opened on this thread).
    pub fn run(self, output: &mpsc::Sender<Captured>) {
        let mut capture = match self.source.open(self.opened) {
            Ok(capture) => capture,
            Err(error) => {
                tracing::error!(monitor = %self.monitor, %error, "cannot capture the monitor");
                return;
            }
        };
        let mut next = Instant::now();
        let mut last_read = Instant::now();
        let mut interrupted: Option<(AgentMicros, Interruption)> = None;
        while !self.controls.stop.load(Ordering::Relaxed) {
            let force = self.controls.keyframe.load(Ordering::Relaxed)
                || last_read.elapsed() >= SAFETY_READ;
            let grabbed = capture.grab(force);
            match (&grabbed, interrupted) {
                (Err(CaptureError::Interrupted(_)), _) | (_, None) => {}
                (_, Some(gap)) => {
                    interrupted = None;
                    self.end_gap(gap);
                    // What the screen shows now starts a new picture.
                    self.controls.request_keyframe();
                }
            }
            match grabbed {
                Err(CaptureError::Interrupted(interruption)) => {
                    if interrupted.is_none() {
                        tracing::info!(monitor = %self.monitor, contact = %self.contact, reason = interruption.reason(), "screen not capturable: capture paused");
                        interrupted = Some((self.clock.now(), interruption));
                    }
                }
                Ok(Some(grab)) => {
                    last_read = Instant::now();
                    let captured = Captured {
                        at: self.clock.at(grab.at),
                        image: grab.image,
                    };
                    match output.try_send(captured) {
                        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(monitor = %self.monitor, %error, "screen grab failed");
                    std::thread::sleep(RETRY_AFTER_ERROR);
                }
            }
            next += super::capture_interval(
                &self.settings,
                self.controls.fps_cap_mhz.load(Ordering::Relaxed),
                self.controls.encode_us.load(Ordering::Relaxed),
            );
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                // Far behind (a suspended machine): start the schedule again from now.
                next = now;
            }
        }
        if let Some(gap) = interrupted {
            self.end_gap(gap);
        }
    }
}
