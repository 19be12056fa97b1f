//! Windows: Desktop Duplication, with GDI as the fallback.
//!
//! - [`dxgi`]: one `IDXGIOutputDuplication` per output; `AcquireNextFrame` with no wait tells
//!   "nothing changed" (a still screen costs one call per tick), and each frame's dirty and move
//!   rectangles say which tiles to copy out of it, turned to the desktop's orientation.
//! - [`gdi`]: `BitBlt` of the monitor from the screen DC, with tile hashes over the bitmap so an
//!   unchanged screen is not copied on. Used when Desktop Duplication is unavailable (RDP
//!   sessions, some VDI, Wine), and by a capture whose duplication keeps being lost.
//! - [`desktop`]: per-monitor-v2 DPI awareness (every coordinate a physical pixel), the monitor
//!   layout from `DXGI_OUTPUT_DESC` (or `GetMonitorInfo`), the input desktop (lock screen, UAC),
//!   and the pointer (`GetCursorInfo`).
//!
//! Which backend runs is decided when the monitors are listed (a duplication of the first
//! output is tried), reported in `Hello` and heartbeats, and changes to GDI if a duplication
//! fails later.
//!
//! Compiled and linted here for `x86_64-pc-windows-gnu`; run here under Wine, which offers GDI
//! only. The Desktop Duplication path runs on real Windows only (see the agent's README).

#![allow(unsafe_code)]

mod desktop;
mod dxgi;
mod gdi;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capture_shared::ids::MonitorId;
use capture_shared::protocol::MonitorInfo;

use super::interruption::Interruption;
use super::layout::Output;
use super::{CaptureError, Grab, ImagePool, MonitorCapture, PointerSource, ScreenSource};

/// Duplications lost this many times within [`LOSS_WINDOW`] make a capture fall back to GDI.
pub const MAX_LOSSES: usize = 5;
/// The window of [`MAX_LOSSES`].
pub const LOSS_WINDOW: Duration = Duration::from_secs(60);

/// A capture backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Desktop Duplication.
    Dxgi,
    /// GDI `BitBlt`.
    Gdi,
}

impl Backend {
    /// The name reported to the server.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Dxgi => "dxgi",
            Backend::Gdi => "gdi",
        }
    }
}

/// The real screen of this Windows session.
#[derive(Debug, Clone)]
pub struct Screen {
    /// The backend now in use (`None` until the monitors are first listed); shared with the
    /// captures so a fallback shows in the next heartbeat.
    backend: Arc<Mutex<Option<Backend>>>,
    /// Only GDI, never Desktop Duplication (configuration: `source = "screen-gdi"`).
    gdi_only: bool,
}

impl Default for Screen {
    fn default() -> Screen {
        Screen::new(false)
    }
}

impl Screen {
    /// The screen, through Desktop Duplication where it works (or GDI only).
    pub fn new(gdi_only: bool) -> Screen {
        desktop::make_dpi_aware();
        Screen {
            backend: Arc::new(Mutex::new(None)),
            gdi_only,
        }
    }

    fn current(&self) -> Option<Backend> {
        *self
            .backend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, backend: Backend) {
        *self
            .backend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(backend);
    }

    /// The outputs, and the backend to capture them with (decided on the first call).
    fn outputs(&self) -> Result<(Vec<Output>, Backend), CaptureError> {
        let backend = match self.current() {
            Some(backend) => backend,
            None if self.gdi_only => Backend::Gdi,
            None => match dxgi::probe() {
                Ok(()) => Backend::Dxgi,
                Err(error) => {
                    tracing::info!(%error, "desktop duplication unavailable: capturing with GDI");
                    Backend::Gdi
                }
            },
        };
        self.set(backend);
        let outputs = match backend {
            Backend::Dxgi => dxgi::outputs().or_else(|_| gdi::outputs())?,
            Backend::Gdi => gdi::outputs()?,
        };
        if outputs.is_empty() {
            return Err(CaptureError::NoDisplay("no monitors".into()));
        }
        Ok((outputs, backend))
    }
}

impl ScreenSource for Screen {
    fn monitors(&self) -> Result<Vec<MonitorInfo>, CaptureError> {
        Ok(self.outputs()?.0.into_iter().map(|o| o.info).collect())
    }

    fn open(&self, monitor: MonitorId) -> Result<Box<dyn MonitorCapture>, CaptureError> {
        let (outputs, backend) = self.outputs()?;
        let output = outputs
            .into_iter()
            .find(|o| o.info.id == monitor)
            .ok_or(CaptureError::NoSuchMonitor(monitor))?;
        let inner = match backend {
            Backend::Dxgi => match dxgi::Duplication::open(&output) {
                Ok(duplication) => Inner::Dxgi(duplication),
                Err(error) => {
                    tracing::warn!(%monitor, %error, "desktop duplication failed: capturing with GDI");
                    self.set(Backend::Gdi);
                    Inner::Gdi(gdi::Capture::open(&output)?)
                }
            },
            Backend::Gdi => Inner::Gdi(gdi::Capture::open(&output)?),
        };
        Ok(Box::new(WindowsCapture {
            screen: self.clone(),
            output,
            inner: Some(inner),
            losses: Vec::new(),
            pool: Arc::new(ImagePool::default()),
        }))
    }

    fn pointer(&self) -> Box<dyn PointerSource> {
        Box::new(desktop::CursorPointer)
    }

    fn backend(&self) -> String {
        self.current().unwrap_or(Backend::Gdi).name().to_owned()
    }
}

/// Why a backend's grab failed.
#[derive(Debug)]
enum GrabError {
    /// The duplication is gone (mode change, desktop switch, full-screen application): open
    /// it again.
    Lost(String),
    /// Anything else.
    Failed(CaptureError),
}

impl From<CaptureError> for GrabError {
    fn from(error: CaptureError) -> GrabError {
        GrabError::Failed(error)
    }
}

enum Inner {
    Dxgi(dxgi::Duplication),
    Gdi(gdi::Capture),
}

/// One monitor's capture: the input desktop checked first, then the backend.
struct WindowsCapture {
    screen: Screen,
    output: Output,
    /// `None` after a duplication was lost: made again at the next grab.
    inner: Option<Inner>,
    /// When the duplication was lost (or could not be made again) recently: a storm sends the
    /// capture to GDI.
    losses: Vec<Instant>,
    pool: Arc<ImagePool>,
}

impl WindowsCapture {
    /// Counts a loss; whether they now make a storm.
    fn lost(&mut self) -> bool {
        let now = Instant::now();
        self.losses.retain(|t| now.duration_since(*t) < LOSS_WINDOW);
        self.losses.push(now);
        self.losses.len() >= MAX_LOSSES
    }

    /// The backend after a loss: Desktop Duplication again, or GDI after a storm.
    fn reopen(&mut self) -> Result<Inner, CaptureError> {
        if self.screen.current() == Some(Backend::Gdi) || self.losses.len() >= MAX_LOSSES {
            return Ok(Inner::Gdi(gdi::Capture::open(&self.output)?));
        }
        dxgi::Duplication::open(&self.output)
            .map(Inner::Dxgi)
            .inspect_err(|_| {
                if self.lost() {
                    tracing::warn!(monitor = %self.output.info.id, "desktop duplication cannot be made again: capturing with GDI");
                    self.screen.set(Backend::Gdi);
                }
            })
    }
}

impl MonitorCapture for WindowsCapture {
    fn grab(&mut self, force: bool) -> Result<Option<Grab>, CaptureError> {
        if let Some(interruption) =
            Interruption::for_input_desktop(desktop::input_desktop().as_deref())
        {
            return Err(CaptureError::Interrupted(interruption));
        }
        let inner = match self.inner.take() {
            Some(inner) => inner,
            None => self.reopen()?,
        };
        let inner = self.inner.insert(inner);
        let result = match inner {
            Inner::Dxgi(duplication) => duplication.grab(force, &self.pool),
            Inner::Gdi(capture) => capture.grab(force, &self.pool),
        };
        match result {
            Err(GrabError::Lost(reason)) => {
                // Mode changes, full-screen applications and desktop switches lose the
                // duplication. It is released before another is made (at the next grab), and a
                // storm of losses sends this monitor to GDI.
                self.inner = None;
                if self.lost() {
                    tracing::warn!(monitor = %self.output.info.id, reason, "desktop duplication keeps being lost: capturing with GDI");
                    self.screen.set(Backend::Gdi);
                } else {
                    tracing::info!(monitor = %self.output.info.id, reason, "desktop duplication lost; making it again");
                }
                Ok(None)
            }
            Err(GrabError::Failed(error)) => Err(error),
            Ok(grab) => Ok(grab),
        }
    }
}
