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

#[link(name = "CoreGraphics", kind = "framework")]
unsafe extern "C" {
    /// Whether this process may record the screen (macOS 10.15+), without asking.
    fn CGPreflightScreenCaptureAccess() -> bool;
    /// Asks the user once (the system's prompt); later calls only answer.
    fn CGRequestScreenCaptureAccess() -> bool;
}

/// What the user is told when Screen Recording is not allowed (the tray and the recorder show it).
pub const NOT_PERMITTED: &str = "Capture Agent may not record the screen: allow it in System \
Settings → Privacy & Security → Screen Recording (a standard user may, where IT's profile allows \
it), then reopen Capture Agent";

/// The monitors (a display name means nothing here), once the user has allowed Screen
/// Recording; at the first refusal the system's prompt is shown.
pub fn displays(_name: Option<&str>) -> io::Result<Vec<scrap::Display>> {
    // SAFETY: both take no arguments and only read (or ask for) this process's TCC grant.
    let allowed = unsafe { CGPreflightScreenCaptureAccess() || CGRequestScreenCaptureAccess() };
    if !allowed {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            NOT_PERMITTED,
        ));
    }
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
