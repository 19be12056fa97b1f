//! Screen capture behind one trait with the same shape on every OS.
//!
//! A [`ScreenSource`] lists the monitors and opens a [`MonitorCapture`] for one of them; the
//! capture is created and used on the capture stage's own thread (platform capturers are not
//! `Send`). Sources: [`screen::ScreenSource`] (the real screen through `scrap`: X11 with RandR
//! monitors and owner-only shared memory here, DXGI on Windows, Quartz on macOS) and
//! [`synthetic::SyntheticSource`] (a moving office-like desktop for the demo, load tests and
//! machines without a display). The mouse pointer comes from a [`PointerSource`] beside them.

#[cfg(any(target_os = "linux", windows, target_os = "macos"))]
pub mod screen;
pub mod synthetic;

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
}

/// One captured screen image, BGRA, rows of `stride` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row (at least `4 * width`).
    pub stride: usize,
    /// The pixels, `stride * height` bytes, B G R A per pixel.
    pub bgra: Vec<u8>,
}

impl Image {
    /// A blank (black) image.
    pub fn black(width: u32, height: u32) -> Image {
        let stride = width as usize * 4;
        Image {
            width,
            height,
            stride,
            bgra: vec![0; stride * height as usize],
        }
    }

    /// One row's pixels (without stride padding).
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.bgra[start..start + self.width as usize * 4]
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
}
