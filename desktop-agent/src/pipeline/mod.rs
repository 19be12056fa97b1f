//! One monitor's pipeline: capture → change detection → colour conversion → encode, stages on
//! their own threads joined by bounded typed channels; encoded frames go to the connection's
//! send stage (async) through [`ENCODED_QUEUE`].
//!
//! The channel capacities are the backpressure policy. Every queue between stages holds one item:
//! when encoding or sending falls behind, the capture stage's `try_send` fails and that capture
//! is dropped — the next one shows the newer screen anyway, and memory never grows (a 1080p image
//! is 8 MB). The change detector compares against the last image it passed on, so a dropped
//! capture loses no change, only delays it by one interval.

pub mod capture;
pub mod convert;
pub mod detect;
pub mod encode;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use capture_shared::ids::{ContactId, MonitorId};
use capture_shared::protocol::StreamSettings;
use capture_shared::time::AgentMicros;
use tokio::sync::mpsc;

use crate::capture::{CaptureError, Image, ScreenSource};
use crate::clock::AgentClock;

/// Captures waiting for the change detector.
pub const CAPTURED_QUEUE: usize = 1;
/// Changed images waiting for colour conversion.
pub const CHANGED_QUEUE: usize = 1;
/// Converted images waiting for the encoder.
pub const CONVERTED_QUEUE: usize = 1;
/// Encoded frames waiting for the send stage (small: they are kilobytes).
pub const ENCODED_QUEUE: usize = 16;

/// A capture, stamped on the agent's clock.
#[derive(Debug)]
pub struct Captured {
    /// When the screen showed it.
    pub at: AgentMicros,
    /// The image.
    pub image: Image,
}

/// A capture the detector decided to encode.
#[derive(Debug)]
pub struct Changed {
    /// When the screen showed it.
    pub at: AgentMicros,
    /// The image.
    pub image: Image,
    /// Whether it must be encoded as a keyframe.
    pub keyframe: bool,
}

/// An image converted to I420, ready for the encoder.
pub struct Converted {
    /// When the screen showed it.
    pub at: AgentMicros,
    /// The planes (even width and height: odd edges are cropped).
    pub yuv: openh264::formats::YUVBuffer,
    /// Whether it must be encoded as a keyframe.
    pub keyframe: bool,
}

impl std::fmt::Debug for Converted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converted")
            .field("at", &self.at)
            .field("keyframe", &self.keyframe)
            .finish_non_exhaustive()
    }
}

/// One encoded access unit of one monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The contact.
    pub contact: ContactId,
    /// The monitor.
    pub monitor: MonitorId,
    /// When the screen showed it.
    pub at: AgentMicros,
    /// Whether it is an IDR.
    pub keyframe: bool,
    /// Encoded width.
    pub width: u32,
    /// Encoded height.
    pub height: u32,
    /// The access unit, Annex-B.
    pub data: Vec<u8>,
}

/// A stretch in which a monitor could not be captured (see `capture::interruption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureGap {
    /// The contact.
    pub contact: ContactId,
    /// The monitor.
    pub monitor: MonitorId,
    /// When capture stopped.
    pub from: AgentMicros,
    /// When it resumed (or the contact's capture ended).
    pub to: AgentMicros,
    /// Why, as the timeline says it.
    pub reason: &'static str,
}

/// What the pipelines give the send stage, in order: frames, gaps, and the end of a contact's
/// pipelines (after their last frame).
#[derive(Debug)]
pub enum Output {
    /// An encoded frame.
    Frame(EncodedFrame),
    /// A stretch the capture stage could not capture.
    Gap(CaptureGap),
    /// Every pipeline of the contact has ended; no more frames of it follow.
    Drained(ContactId),
}

impl From<EncodedFrame> for Output {
    fn from(frame: EncodedFrame) -> Output {
        Output::Frame(frame)
    }
}

/// What the connection can tell a running pipeline, and what its stages tell each other.
#[derive(Debug, Default)]
pub struct Controls {
    /// Stop capturing; the stages drain and end.
    pub stop: AtomicBool,
    /// Encode the next capture as a keyframe, changed or not.
    pub keyframe: AtomicBool,
    /// A lower frame-rate cap the server set while it is overloaded, in millihertz (0: none).
    pub fps_cap_mhz: AtomicU32,
    /// How long the encoder takes per frame, µs (a moving average): the capture stage grabs no
    /// faster than the encoder keeps up.
    pub encode_us: AtomicU64,
}

impl Controls {
    /// Asks for a keyframe.
    pub fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::Relaxed);
    }

    /// Caps the frame rate below the stream settings' `fps_max` (the server is overloaded);
    /// `None` lifts the cap.
    pub fn cap_fps(&self, fps: Option<f32>) {
        let mhz = fps.map_or(0, |fps| (fps.clamp(0.1, 60.0) * 1000.0) as u32);
        self.fps_cap_mhz.store(mhz, Ordering::Relaxed);
    }

    /// Records one frame's encoding time.
    fn encoded_in(&self, elapsed: std::time::Duration) {
        let sample = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let average = self.encode_us.load(Ordering::Relaxed);
        let next = if average == 0 {
            sample
        } else {
            (average * 7 + sample) / 8
        };
        self.encode_us.store(next, Ordering::Relaxed);
    }
}

/// The capture interval: `1 / fps_max` (or the server's lower cap), longer when the encoder
/// needs more time per frame than that (with a quarter to spare), never longer than
/// `1 / fps_min`. Under CPU pressure the frame rate thus drops towards `fps_min` before any
/// capture has to be dropped.
pub fn capture_interval(settings: &StreamSettings, cap_mhz: u32, encode_us: u64) -> Duration {
    let fps_min = settings.fps_min.clamp(0.1, 60.0);
    let mut fps_max = settings.fps_max.clamp(fps_min, 60.0);
    if cap_mhz > 0 {
        fps_max = fps_max.min(cap_mhz as f32 / 1000.0).max(fps_min);
    }
    let fastest = Duration::from_secs_f32(1.0 / fps_max);
    let slowest = Duration::from_secs_f32(1.0 / fps_min);
    let needed = Duration::from_micros(encode_us.saturating_add(encode_us / 4));
    needed.clamp(fastest, slowest)
}

/// A running pipeline of one monitor.
#[derive(Debug)]
pub struct Pipeline {
    /// Its controls.
    pub controls: Arc<Controls>,
    threads: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts capturing `monitor` (the platform's monitor `opened`) for `contact`; encoded frames
    /// go to `output`.
    pub fn spawn(
        source: Arc<dyn ScreenSource>,
        contact: ContactId,
        (monitor, opened): (MonitorId, MonitorId),
        settings: &StreamSettings,
        clock: AgentClock,
        output: mpsc::Sender<Output>,
        encoded: Arc<AtomicU64>,
    ) -> Result<Pipeline, CaptureError> {
        let controls = Arc::new(Controls::default());
        let (captured_tx, captured_rx) = mpsc::channel(CAPTURED_QUEUE);
        let (changed_tx, changed_rx) = mpsc::channel(CHANGED_QUEUE);
        let (converted_tx, converted_rx) = mpsc::channel(CONVERTED_QUEUE);
        let capture = capture::CaptureStage::new(
            source,
            (contact, monitor, opened),
            settings,
            clock,
            controls.clone(),
            output.clone(),
        );
        let detect = detect::ChangeDetector::new(settings, controls.clone());
        let encoder = Counted {
            stage: encode::EncodeStage::new(contact, monitor, settings)?,
            count: encoded,
            controls: controls.clone(),
        };
        let name = |stage: &str| format!("capture-{stage}-m{}", monitor.0);
        let spawn = |stage: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name(stage))
                .spawn(body)
                .map_err(CaptureError::Io)
        };
        let threads = vec![
            spawn("grab", Box::new(move || capture.run(&captured_tx)))?,
            spawn(
                "detect",
                Box::new(move || run_stage(detect, captured_rx, &changed_tx)),
            )?,
            spawn(
                "convert",
                Box::new(move || run_stage(convert::Converter, changed_rx, &converted_tx)),
            )?,
            spawn(
                "encode",
                Box::new(move || run_stage(encoder, converted_rx, &output)),
            )?,
        ];
        Ok(Pipeline { controls, threads })
    }

    /// Stops capturing; the stages finish what they hold and end. Returns at once.
    pub fn stop(&self) {
        self.controls.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for every stage to end (call after [`Pipeline::stop`], off the async runtime).
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// A synchronous stage: one input in, at most one output out.
pub trait Stage {
    /// What it takes.
    type In;
    /// What it gives.
    type Out;
    /// Handles one input.
    fn process(&mut self, input: Self::In) -> Option<Self::Out>;
}

/// A stage whose outputs are counted and timed (the encoder's: frames encoded, sent or not yet;
/// its time per frame paces the capture stage).
struct Counted<S> {
    stage: S,
    count: Arc<AtomicU64>,
    controls: Arc<Controls>,
}

impl<S: Stage> Stage for Counted<S> {
    type In = S::In;
    type Out = S::Out;

    fn process(&mut self, input: S::In) -> Option<S::Out> {
        let started = std::time::Instant::now();
        let out = self.stage.process(input);
        if out.is_some() {
            self.count.fetch_add(1, Ordering::Relaxed);
            self.controls.encoded_in(started.elapsed());
        }
        out
    }
}

/// Runs a stage on the current thread until its input closes or its output is gone.
pub fn run_stage<S: Stage, T: From<S::Out>>(
    mut stage: S,
    mut input: mpsc::Receiver<S::In>,
    output: &mpsc::Sender<T>,
) {
    while let Some(item) = input.blocking_recv() {
        if let Some(out) = stage.process(item)
            && output.blocking_send(T::from(out)).is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_rate_follows_the_encoder_down_to_fps_min() {
        let settings = StreamSettings {
            fps_min: 1.0,
            fps_max: 5.0,
            ..StreamSettings::default()
        };
        let ms = |d: Duration| d.as_millis();
        // An idle encoder: fps_max.
        assert_eq!(ms(capture_interval(&settings, 0, 0)), 200);
        assert_eq!(ms(capture_interval(&settings, 0, 100_000)), 200);
        // Encoding takes 400 ms a frame: a capture every 500 ms, none wasted.
        assert_eq!(ms(capture_interval(&settings, 0, 400_000)), 500);
        // Far slower: never below fps_min.
        assert_eq!(ms(capture_interval(&settings, 0, 5_000_000)), 1_000);
        // The server's cap lowers fps_max, not below fps_min.
        assert_eq!(ms(capture_interval(&settings, 2_000, 0)), 500);
        assert_eq!(ms(capture_interval(&settings, 100, 0)), 1_000);
    }
}
