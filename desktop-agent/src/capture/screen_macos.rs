//! macOS (Quartz) through scrap. Not compiled on our build machines (macOS cannot be built on
//! Linux): written against scrap's documented common API.
//!
//! What this platform still needs (see the agent's README): monitor origins (scrap exposes only
//! sizes there, so monitors are reported side by side from the primary), the pointer
//! (`CGEventGetLocation`), change notifications, and a signed build.

use std::io;
use std::time::Instant;

use super::super::{CaptureError, PointerSource};

/// The backend's name in `Hello`.
pub const BACKEND: &str = "quartz";

/// The monitors (a display name means nothing here).
pub fn displays(_name: Option<&str>) -> io::Result<Vec<scrap::Display>> {
    scrap::Display::all()
}

/// Monitors side by side from the primary (scrap reports no origin on these platforms).
pub fn placement(display: &scrap::Display, index: usize) -> (i32, i32, bool) {
    let x = i32::try_from(index * display.width()).unwrap_or(0);
    (x, 0, index == 0)
}

/// A frame when the platform has a new one (`WouldBlock` means "unchanged, try later"), handed
/// to `take` (which copies what it keeps).
pub fn fresh_frame<R>(
    capturer: &mut scrap::Capturer,
    requested: &mut Instant,
    take: impl FnOnce(&[u8]) -> Result<R, CaptureError>,
) -> Result<Option<(R, Instant)>, CaptureError> {
    let at = Instant::now();
    *requested = at;
    match capturer.frame() {
        Ok(frame) => Ok(Some((take(&frame)?, at))),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// No pointer source yet on these platforms.
pub fn pointer(_display: Option<&str>) -> Box<dyn PointerSource> {
    Box::new(NoPointer)
}

struct NoPointer;

impl PointerSource for NoPointer {
    fn position(&mut self) -> Option<(i32, i32)> {
        None
    }
}

/// No change notifications here: every grab reads the screen.
pub struct ChangeWatch;

impl ChangeWatch {
    /// A watch that always says "changed".
    pub fn new(_display: Option<&str>) -> ChangeWatch {
        ChangeWatch
    }

    /// Always true.
    pub fn changed(&mut self) -> bool {
        true
    }
}
