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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

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

/// What the connection can tell a running pipeline.
#[derive(Debug, Default)]
pub struct Controls {
    /// Stop capturing; the stages drain and end.
    pub stop: AtomicBool,
    /// Encode the next capture as a keyframe, changed or not.
    pub keyframe: AtomicBool,
}

impl Controls {
    /// Asks for a keyframe.
    pub fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::Relaxed);
    }
}

/// A running pipeline of one monitor.
#[derive(Debug)]
pub struct Pipeline {
    /// Its controls.
    pub controls: Arc<Controls>,
    threads: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts capturing `monitor` for `contact`; encoded frames go to `output`.
    pub fn spawn(
        source: Arc<dyn ScreenSource>,
        contact: ContactId,
        monitor: MonitorId,
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
            (contact, monitor),
            settings,
            clock,
            controls.clone(),
            output.clone(),
        );
        let detect = detect::ChangeDetector::new(settings, controls.clone());
        let encoder = Counted {
            stage: encode::EncodeStage::new(contact, monitor, settings)?,
            count: encoded,
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

/// A stage whose outputs are counted (the encoder's: frames encoded, sent or not yet).
struct Counted<S> {
    stage: S,
    count: Arc<AtomicU64>,
}

impl<S: Stage> Stage for Counted<S> {
    type In = S::In;
    type Out = S::Out;

    fn process(&mut self, input: S::In) -> Option<S::Out> {
        let out = self.stage.process(input);
        if out.is_some() {
            self.count.fetch_add(1, Ordering::Relaxed);
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
