//! Load shedding: the recorder measures how long each frame takes from its arrival to stable
//! storage and, when that grows past [`SHED_ABOVE`] (the disk or the CPU cannot keep up), asks
//! every agent for fewer frames (`ServerMessage::Settings` with a lower `fps_max`, never below
//! the configured `fps_min`); after [`CALM_WINDOWS`] calm windows it lifts the cap step by step.
//! Agents slow their capture rather than drop frames (see the agent's pipeline).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use capture_shared::protocol::{ServerMessage, StreamSettings};

use super::{CallBuffer, Connections};
use crate::integration::link::AgentLink as _;
use crate::metrics::Metrics;

/// How often the window is judged.
pub const WINDOW: Duration = Duration::from_secs(5);
/// A window whose 99th-percentile frame-to-disk time exceeds this lowers the cap (the default
/// of `recorder.shed_above_ms`).
pub const SHED_ABOVE: Duration = Duration::from_millis(500);
/// A window is calm when its 99th percentile stays under this.
pub const CALM_BELOW: Duration = Duration::from_millis(100);
/// Calm windows in a row before the cap is raised one step.
pub const CALM_WINDOWS: u32 = 6;
/// Samples kept per window (beyond it a random sample: a percentile needs no more).
const MAX_SAMPLES: usize = 65_536;

/// The cap after a window: `cap` (`None`: uncapped), the window's p99 and the calm windows so
/// far; returns the new cap and calm count.
pub fn next_cap(
    cap: Option<f32>,
    p99: Option<Duration>,
    calm: u32,
    (settings, shed_above): (&StreamSettings, Duration),
) -> (Option<f32>, u32) {
    let Some(p99) = p99 else {
        // No frames: nothing to judge; a quiet recorder counts as calm.
        return raise(cap, calm + 1, settings);
    };
    if p99 > shed_above {
        let current = cap.unwrap_or(settings.fps_max);
        return (Some((current / 2.0).max(settings.fps_min)), 0);
    }
    if p99 < CALM_BELOW.min(shed_above) {
        return raise(cap, calm + 1, settings);
    }
    (cap, 0)
}

fn raise(cap: Option<f32>, calm: u32, settings: &StreamSettings) -> (Option<f32>, u32) {
    match cap {
        Some(cap) if calm >= CALM_WINDOWS => {
            let raised = cap * 2.0;
            ((raised < settings.fps_max).then_some(raised), 0)
        }
        other => (other, calm),
    }
}

#[derive(Debug, Default)]
struct Window {
    /// Frame-to-disk times, µs.
    samples: Vec<u32>,
    cap: Option<f32>,
    calm: u32,
}

/// Frame-to-disk times and the cap they lead to.
#[derive(Debug, Default)]
pub struct Load {
    window: Mutex<Window>,
    metrics: OnceLock<Arc<Metrics>>,
}

impl Load {
    /// Where frame-to-disk times and the cap are published (set once).
    pub fn set_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// One frame reached stable storage `latency` after it arrived.
    pub fn record(&self, latency: Duration) {
        if let Some(metrics) = self.metrics.get() {
            metrics.frame_to_disk.observe(latency.as_secs_f64());
        }
        let micros = latency.as_micros().min(u128::from(u32::MAX)) as u32;
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.samples.len() < MAX_SAMPLES {
            window.samples.push(micros);
        } else {
            // A full window keeps a random sample of its frames.
            let at = fastrand::usize(..MAX_SAMPLES);
            window.samples[at] = micros;
        }
    }

    /// The current cap (`None`: agents run at their configured `fps_max`).
    pub fn cap(&self) -> Option<f32> {
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .cap
    }

    /// Ends a window: judges it against `shed_above` and returns the new cap when it changed.
    pub fn judge(&self, settings: &StreamSettings, shed_above: Duration) -> Option<Option<f32>> {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut samples = std::mem::take(&mut window.samples);
        let p99 = (!samples.is_empty()).then(|| {
            let rank = (samples.len() * 99).div_ceil(100).saturating_sub(1);
            let (_, value, _) = samples.select_nth_unstable(rank);
            Duration::from_micros(u64::from(*value))
        });
        let (cap, calm) = next_cap(window.cap, p99, window.calm, (settings, shed_above));
        window.calm = calm;
        let changed = cap != window.cap;
        window.cap = cap;
        if let Some(metrics) = self.metrics.get() {
            metrics.fps_cap.set(f64::from(cap.unwrap_or(0.0)));
        }
        if changed {
            tracing::warn!(?p99, fps_cap = ?cap, "frame-to-disk time changed the agents' frame-rate cap");
        }
        changed.then_some(cap)
    }

    /// The settings an agent gets under `cap`.
    pub fn settings(settings: &StreamSettings, cap: Option<f32>) -> StreamSettings {
        StreamSettings {
            fps_max: cap.unwrap_or(settings.fps_max),
            ..settings.clone()
        }
    }
}

/// Judges the buffer's frame-to-disk times every [`WINDOW`] and sends every connected agent
/// the new cap when it changes (agents connecting later get it after their welcome), until
/// `cancel`.
pub async fn shed(
    buffer: Arc<CallBuffer>,
    connections: Arc<Connections>,
    (settings, shed_above): (StreamSettings, Duration),
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(WINDOW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cancel.cancelled() => return,
        }
        if let Some(cap) = buffer.load().judge(&settings, shed_above) {
            let message = ServerMessage::Settings(Load::settings(&settings, cap));
            for (agent, _) in connections.snapshot() {
                connections.send(agent, message.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Option<Duration> {
        Some(Duration::from_millis(millis))
    }

    #[test]
    fn a_slow_window_halves_the_cap_down_to_fps_min_and_calm_raises_it_back() {
        let settings = StreamSettings::default(); // 1–5 fps
        let (cap, calm) = next_cap(None, ms(800), 3, (&settings, SHED_ABOVE));
        assert_eq!((cap, calm), (Some(2.5), 0));
        let (cap, _) = next_cap(cap, ms(900), 0, (&settings, SHED_ABOVE));
        assert_eq!(cap, Some(1.25));
        let (cap, _) = next_cap(cap, ms(900), 0, (&settings, SHED_ABOVE));
        assert_eq!(cap, Some(1.0), "never below fps_min");
        // In between: neither slow nor calm holds the cap and restarts the calm count.
        assert_eq!(
            next_cap(cap, ms(300), 4, (&settings, SHED_ABOVE)),
            (Some(1.0), 0)
        );
        // Calm windows: one step up after CALM_WINDOWS of them, uncapped past fps_max.
        let mut state = (cap, 0);
        for _ in 0..CALM_WINDOWS - 1 {
            state = next_cap(state.0, ms(20), state.1, (&settings, SHED_ABOVE));
            assert_eq!(state.0, Some(1.0));
        }
        state = next_cap(state.0, ms(20), state.1, (&settings, SHED_ABOVE));
        assert_eq!(state, (Some(2.0), 0));
        for _ in 0..CALM_WINDOWS {
            state = next_cap(state.0, None, state.1, (&settings, SHED_ABOVE));
        }
        assert_eq!(state.0, Some(4.0), "a quiet recorder is calm");
        for _ in 0..CALM_WINDOWS {
            state = next_cap(state.0, ms(10), state.1, (&settings, SHED_ABOVE));
        }
        assert_eq!(state.0, None, "back to the configured fps_max");
    }

    #[test]
    fn the_window_judges_its_99th_percentile() {
        let load = Load::default();
        let settings = StreamSettings::default();
        for _ in 0..98 {
            load.record(Duration::from_millis(10));
        }
        load.record(Duration::from_millis(900));
        load.record(Duration::from_millis(900));
        assert_eq!(
            load.judge(&settings, SHED_ABOVE),
            Some(Some(2.5)),
            "2 % slow: p99 slow"
        );
        for _ in 0..100 {
            load.record(Duration::from_millis(10));
        }
        load.record(Duration::from_millis(900));
        assert_eq!(
            load.judge(&settings, SHED_ABOVE),
            None,
            "1 % slow of 101: p99 fast"
        );
        assert_eq!(load.cap(), Some(2.5));
    }
}
