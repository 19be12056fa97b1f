//! Screen capture behind one trait with the same shape on every OS.
//!
//! A [`ScreenSource`] lists the monitors and opens a [`MonitorCapture`] for one of them; the
//! capture is created and used on the capture stage's own thread (platform capturers are not
//! `Send`). Sources: `screen::Screen` (the real screen: X11 through `scrap` with RandR monitors
//! and owner-only shared memory, Quartz through `scrap` on macOS, and on Windows Desktop
//! Duplication with a GDI fallback through the `windows` crate) and
//! [`synthetic::SyntheticSource`] (a moving office-like desktop for the demo, load tests and
//! machines without a display). The mouse pointer comes from a [`PointerSource`] beside them.
//!
//! What the platforms describe is turned into our terms by pure modules, tested on every OS:
//! [`layout`] (output descriptions → monitors), [`tiles`] (changed rectangles → tiles),
//! [`interruption`] (the input desktop → a named gap).

pub mod interruption;
pub mod layout;
pub mod live;
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub mod screen;
#[cfg(windows)]
#[path = "windows/mod.rs"]
pub mod screen;
pub mod synthetic;
pub mod tiles;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use capture_shared::ids::MonitorId;
use capture_shared::protocol::MonitorInfo;

/// Why capturing failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// No display to capture (no X server, locked session, ...).
    #[error("no display to capture: {0}")]
    NoDisplay(String),
    /// The monitor is not (or no longer) there.
    #[error("monitor {0} not found")]
    NoSuchMonitor(MonitorId),
    /// The platform capturer failed.
    #[error("capture failed: {0}")]
    Io(#[from] std::io::Error),
    /// The user has not allowed this program to record the screen (macOS: Privacy & Security →
    /// Screen Recording). The agent stays connected, says so in its backend, and refuses each
    /// contact with this reason, so the recorder names the gap.
    #[error("screen recording not permitted: {0}")]
    NotPermitted(String),
    /// The screen cannot be captured for a while (locked); the stretch is a named gap.
    #[error("screen not capturable: {}", .0.reason())]
    Interrupted(interruption::Interruption),
}

/// One captured screen image, BGRA, rows of `stride` bytes.
#[derive(Debug)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row (at least `4 * width`).
    pub stride: usize,
    /// The pixels, `stride * height` bytes, B G R A per pixel.
    pub bgra: Vec<u8>,
    /// The pool the pixel buffer returns to when the image is dropped.
    pool: Option<Arc<ImagePool>>,
}

impl Clone for Image {
    /// A copy outside any pool.
    fn clone(&self) -> Image {
        Image {
            width: self.width,
            height: self.height,
            stride: self.stride,
            bgra: self.bgra.clone(),
            pool: None,
        }
    }
}

impl PartialEq for Image {
    fn eq(&self, other: &Image) -> bool {
        (self.width, self.height, self.stride) == (other.width, other.height, other.stride)
            && self.bgra == other.bgra
    }
}

impl Eq for Image {}

impl Drop for Image {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give(std::mem::take(&mut self.bgra));
        }
    }
}

impl Image {
    /// An image of these pixels, outside any pool.
    pub fn new(width: u32, height: u32, stride: usize, bgra: Vec<u8>) -> Image {
        Image {
            width,
            height,
            stride,
            bgra,
            pool: None,
        }
    }

    /// A blank (black) image.
    pub fn black(width: u32, height: u32) -> Image {
        let stride = width as usize * 4;
        Image::new(width, height, stride, vec![0; stride * height as usize])
    }

    /// One row's pixels (without stride padding).
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.bgra[start..start + self.width as usize * 4]
    }
}

/// Pixel buffers of one capture, at most [`ImagePool::MAX_BUFFERS`] alive at once: a 1080p
/// buffer is 8 MB, and this is what bounds the pipeline's memory, whatever the stages do.
#[derive(Debug, Default)]
pub struct ImagePool {
    free: Mutex<Vec<Vec<u8>>>,
    alive: AtomicUsize,
}

impl ImagePool {
    /// Buffers alive at most. One: capture, detection and conversion take a few milliseconds
    /// each, far less than a frame interval, so a second buffer would only let a capture wait
    /// in a queue; while the one buffer is busy a change is remembered and read next tick.
    pub const MAX_BUFFERS: usize = 1;

    /// An image of `len` bytes from the pool; `None` when every buffer is in use (the capture
    /// is skipped, as when a queue is full).
    pub fn take(
        self: &Arc<Self>,
        width: u32,
        height: u32,
        stride: usize,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> Option<Image> {
        let recycled = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut buffer = match recycled {
            Some(buffer) => buffer,
            None => {
                if self.alive.load(Ordering::Acquire) >= Self::MAX_BUFFERS {
                    return None;
                }
                self.alive.fetch_add(1, Ordering::AcqRel);
                Vec::new()
            }
        };
        buffer.clear();
        fill(&mut buffer);
        Some(Image {
            width,
            height,
            stride,
            bgra: buffer,
            pool: Some(self.clone()),
        })
    }

    fn give(&self, buffer: Vec<u8>) {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(buffer);
    }
}

/// An image and when the screen showed it.
#[derive(Debug, Clone)]
pub struct Grab {
    /// The image.
    pub image: Image,
    /// When the screen was read (for the real screen: when the read was requested; see
    /// `screen`'s notes on scrap's one-call delay).
    pub at: Instant,
}

/// Lists monitors and opens captures; shared by the stages (hence `Send + Sync`).
pub trait ScreenSource: Send + Sync + std::fmt::Debug {
    /// The monitors, numbered from 0, with their geometry.
    fn monitors(&self) -> Result<Vec<MonitorInfo>, CaptureError>;
    /// Opens a capture of one monitor, on the calling thread.
    fn open(&self, monitor: MonitorId) -> Result<Box<dyn MonitorCapture>, CaptureError>;
    /// The pointer source that goes with this screen.
    fn pointer(&self) -> Box<dyn PointerSource>;
    /// The capture backend in use (`x11`, `dxgi`, `gdi`, `quartz`, `synthetic`), reported to
    /// the server in `Hello` and heartbeats.
    fn backend(&self) -> String;
    /// What tells the agent that the monitors may have changed (one was connected, removed,
    /// or changed resolution), asked every [`LAYOUT_POLL`]. X11 compares RandR's monitor list;
    /// elsewhere the monitors are listed again every [`EveryNth::DEFAULT`] asks.
    fn layout_watch(&self) -> Box<dyn LayoutWatch> {
        Box::new(EveryNth::new(EveryNth::DEFAULT))
    }
}

/// How often the agent asks its [`LayoutWatch`] whether the monitors changed.
pub const LAYOUT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Tells when the monitor layout may have changed, so that the agent lists the monitors again
/// (on its own thread: platform calls block).
pub trait LayoutWatch: Send {
    /// Whether the layout may have changed since the last call.
    fn changed(&mut self) -> bool;
}

/// A watch for platforms without a cheap change signal: every `n`th ask says "maybe".
#[derive(Debug)]
pub struct EveryNth {
    n: u32,
    asked: u32,
}

impl EveryNth {
    /// Every 4th ask: the monitors are listed again every 2 s.
    pub const DEFAULT: u32 = 4;

    /// Says "maybe" every `n`th ask.
    pub fn new(n: u32) -> EveryNth {
        EveryNth {
            n: n.max(1),
            asked: 0,
        }
    }
}

impl LayoutWatch for EveryNth {
    fn changed(&mut self) -> bool {
        self.asked += 1;
        self.asked.is_multiple_of(self.n)
    }
}

/// A capture of one monitor.
pub trait MonitorCapture {
    /// The monitor's current image; `None` when the platform knows nothing changed since the
    /// last grab (X11's DAMAGE extension) or has nothing new yet. `force` reads the screen anyway
    /// (keyframe requests, the periodic safety read).
    fn grab(&mut self, force: bool) -> Result<Option<Grab>, CaptureError>;
}

/// Where the mouse pointer is, in virtual-desktop pixels; `None` when unknown.
pub trait PointerSource: Send {
    /// The pointer's position now.
    fn position(&mut self) -> Option<(i32, i32)>;
}

/// The monitor under a virtual-desktop point, and the point in that monitor's pixels.
pub fn locate(monitors: &[MonitorInfo], (x, y): (i32, i32)) -> Option<(MonitorId, i32, i32)> {
    monitors.iter().find_map(|m| {
        let inside = x >= m.x
            && y >= m.y
            && i64::from(x) < i64::from(m.x) + i64::from(m.width)
            && i64::from(y) < i64::from(m.y) + i64::from(m.height);
        inside.then_some((m.id, x - m.x, y - m.y))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_located_on_its_monitor() {
        let monitor = |id, x, width| MonitorInfo {
            id: MonitorId(id),
            x,
            y: 0,
            width,
            height: 1080,
            scale: 1.0,
            primary: id == 0,
        };
        let monitors = [monitor(0, 0, 1920), monitor(1, 1920, 1280)];
        assert_eq!(locate(&monitors, (10, 20)), Some((MonitorId(0), 10, 20)));
        assert_eq!(locate(&monitors, (1920, 5)), Some((MonitorId(1), 0, 5)));
        assert_eq!(locate(&monitors, (3200, 5)), None);
        assert_eq!(locate(&monitors, (-1, 5)), None);
    }

    #[test]
    fn the_pool_bounds_live_buffers_and_reuses_them() {
        let pool = Arc::new(ImagePool::default());
        let fill = |b: &mut Vec<u8>| b.resize(16, 7);
        let taken: Vec<Image> = (0..ImagePool::MAX_BUFFERS)
            .map(|_| pool.take(2, 2, 8, fill).expect("within the bound"))
            .collect();
        assert!(pool.take(2, 2, 8, fill).is_none(), "one more is refused");
        let pointer = taken[0].bgra.as_ptr();
        drop(taken);
        let again = pool
            .take(2, 2, 8, fill)
            .expect("a returned buffer is reused");
        assert_eq!(again.bgra.as_ptr(), pointer);
        assert_eq!(again.bgra, vec![7; 16]);
    }
}
