//! The capture stage: grabs the monitor every frame interval (`1 / fps_max`), stamps each image on
//! the agent's clock, and offers it to the detector without waiting (a busy detector means the
//! capture is dropped; see the module above).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use capture_shared::ids::MonitorId;
use capture_shared::protocol::StreamSettings;
use tokio::sync::mpsc;

use super::{Captured, Controls};
use crate::capture::ScreenSource;
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
    monitor: MonitorId,
    interval: Duration,
    clock: AgentClock,
    controls: Arc<Controls>,
}

impl CaptureStage {
    /// A stage that grabs `fps_max` times a second.
    pub fn new(
        source: Arc<dyn ScreenSource>,
        monitor: MonitorId,
        settings: &StreamSettings,
        clock: AgentClock,
        controls: Arc<Controls>,
    ) -> CaptureStage {
        let fps = settings.fps_max.clamp(0.1, 60.0);
        CaptureStage {
            source,
            monitor,
            interval: Duration::from_secs_f32(1.0 / fps),
            clock,
            controls,
        }
    }

    /// Runs until stopped (the capture is opened on this thread).
    pub fn run(self, output: &mpsc::Sender<Captured>) {
        let mut capture = match self.source.open(self.monitor) {
            Ok(capture) => capture,
            Err(error) => {
                tracing::error!(monitor = %self.monitor, %error, "cannot capture the monitor");
                return;
            }
        };
        let mut next = Instant::now();
        let mut last_read = Instant::now();
        while !self.controls.stop.load(Ordering::Relaxed) {
            let force = self.controls.keyframe.load(Ordering::Relaxed)
                || last_read.elapsed() >= SAFETY_READ;
            match capture.grab(force) {
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
            next += self.interval;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                // Far behind (a suspended machine): start the schedule again from now.
                next = now;
            }
        }
    }
}
