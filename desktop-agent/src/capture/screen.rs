//! The real screen through `scrap` (vendored with an owner-only X11 shared-memory segment:
//! `desktop-agent/vendor/scrap/VENDORED.md`).
//!
//! scrap's API is the same on X11 and macOS (Quartz); what differs per OS (monitor placement,
//! getting a fresh image, the pointer) is in one module per OS, selected here once. Only the X11
//! module is compiled and tested on our build machines; Windows has its own backends
//! (`windows/`), which scrap's DXGI code could not carry (no dirty rectangles, no pointer).

#[cfg(target_os = "linux")]
#[path = "screen_x11.rs"]
mod platform;

#[cfg(target_os = "macos")]
#[path = "screen_macos.rs"]
#[allow(unsafe_code)]
mod platform;

use std::time::Instant;

use capture_shared::ids::MonitorId;
use capture_shared::protocol::MonitorInfo;

use std::sync::Arc;

use super::{CaptureError, Grab, ImagePool, MonitorCapture, PointerSource, ScreenSource};

/// The real screen.
#[derive(Debug, Default, Clone)]
pub struct Screen {
    /// The display to capture (an X11 display name such as `:1`); the session's own when `None`.
    pub display: Option<String>,
}

impl Screen {
    fn displays(&self) -> Result<Vec<scrap::Display>, CaptureError> {
        platform::displays(self.display.as_deref()).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                CaptureError::NotPermitted(e.to_string())
            } else {
                CaptureError::NoDisplay(e.to_string())
            }
        })
    }
}

impl ScreenSource for Screen {
    fn monitors(&self) -> Result<Vec<MonitorInfo>, CaptureError> {
        let displays = self.displays()?;
        let mut monitors = Vec::with_capacity(displays.len());
        for (index, display) in displays.iter().enumerate() {
            let (x, y, primary) = platform::placement(display, index);
            monitors.push(MonitorInfo {
                id: MonitorId(u16::try_from(index).unwrap_or(u16::MAX)),
                x,
                y,
                width: u32::try_from(display.width()).unwrap_or(0),
                height: u32::try_from(display.height()).unwrap_or(0),
                scale: 1.0,
                primary,
            });
        }
        if monitors.is_empty() {
            return Err(CaptureError::NoDisplay("no monitors".into()));
        }
        Ok(monitors)
    }

    fn open(&self, monitor: MonitorId) -> Result<Box<dyn MonitorCapture>, CaptureError> {
        let display = self
            .displays()?
            .into_iter()
            .nth(usize::from(monitor.0))
            .ok_or(CaptureError::NoSuchMonitor(monitor))?;
        let capturer = scrap::Capturer::new(display)?;
        Ok(Box::new(ScreenCapture {
            capturer,
            requested: Instant::now(),
            changes: platform::ChangeWatch::new(self.display.as_deref()),
            first: true,
            missed: false,
            pool: Arc::new(ImagePool::default()),
        }))
    }

    fn pointer(&self) -> Box<dyn PointerSource> {
        platform::pointer(self.display.as_deref())
    }

    fn backend(&self) -> String {
        platform::BACKEND.to_owned()
    }

    #[cfg(target_os = "linux")]
    fn layout_watch(&self) -> Box<dyn super::LayoutWatch> {
        Box::new(platform::MonitorWatch::new(self.display.as_deref()))
    }
}

/// A capture of one real monitor.
struct ScreenCapture {
    capturer: scrap::Capturer,
    /// When the image the next `frame()` call returns was requested (X11).
    requested: Instant,
    /// Whether the screen changed since the last grab, where the platform can tell.
    changes: platform::ChangeWatch,
    first: bool,
    /// A change seen while no buffer was free: read it next time.
    missed: bool,
    pool: Arc<ImagePool>,
}

impl MonitorCapture for ScreenCapture {
    fn grab(&mut self, force: bool) -> Result<Option<Grab>, CaptureError> {
        // An unchanged screen costs no read at all (the detector would drop it anyway).
        let changed = self.changes.changed() || std::mem::take(&mut self.missed);
        if !(changed || force || std::mem::take(&mut self.first)) {
            return Ok(None);
        }
        let (width, height) = (self.capturer.width(), self.capturer.height());
        let pool = self.pool.clone();
        let read = platform::fresh_frame(&mut self.capturer, &mut self.requested, |bytes| {
            let stride = bytes.len().checked_div(height).unwrap_or(0);
            if stride < width * 4 {
                return Err(CaptureError::Io(std::io::Error::other(format!(
                    "frame of {} bytes is too small for {width}x{height}",
                    bytes.len()
                ))));
            }
            let (w, h) = (
                u32::try_from(width).unwrap_or(0),
                u32::try_from(height).unwrap_or(0),
            );
            Ok(pool.take(w, h, stride, |buffer| buffer.extend_from_slice(bytes)))
        })?;
        match read {
            Some((Some(image), at)) => Ok(Some(Grab { image, at })),
            Some((None, _)) => {
                // Every buffer is in the pipeline: skip this read, but not the change.
                self.missed = changed;
                Ok(None)
            }
            None => Ok(None),
        }
    }
}
