//! X11: RandR monitors, scrap's one-call delay, the pointer from the X server.
//!
//! scrap's X11 `frame()` returns the image requested by the *previous* call and requests the next
//! one. A loop that calls it once per tick would show the screen one tick late. We call it twice:
//! the first call's (stale) image is discarded and its new request is answered at once by the
//! second, so the image is fresh and stamped with when it was requested.
//!
//! Reading an unchanged 1080p screen five times a second would cost more than the whole idle
//! budget (two 8 MB reads, a copy and a hash each time), so the X server's DAMAGE extension tells
//! us when anything was drawn: without damage, no read. If the extension is missing, every grab
//! reads.

use std::io;
use std::time::Instant;

use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::super::{CaptureError, PointerSource};

/// The backend's name in `Hello`.
pub const BACKEND: &str = "x11";

/// The monitors of display `name`, or of `DISPLAY`.
pub fn displays(name: Option<&str>) -> io::Result<Vec<scrap::Display>> {
    match name {
        Some(name) => scrap::Display::all_on(name),
        None => scrap::Display::all(),
    }
}

/// A monitor's origin in the virtual desktop and whether it is the primary one.
pub fn placement(display: &scrap::Display, _index: usize) -> (i32, i32, bool) {
    let (x, y) = display.origin();
    (x, y, display.is_primary())
}

/// A fresh frame, handed to `take` (which copies what it keeps), and when it was requested.
pub fn fresh_frame<R>(
    capturer: &mut scrap::Capturer,
    requested: &mut Instant,
    take: impl FnOnce(&[u8]) -> Result<R, CaptureError>,
) -> Result<Option<(R, Instant)>, CaptureError> {
    let _stale = capturer.frame()?.len();
    let at = Instant::now();
    let frame = capturer.frame()?;
    let kept = take(&frame)?;
    *requested = Instant::now();
    Ok(Some((kept, at)))
}

/// Whether anything was drawn on the display since the last call (X DAMAGE on each root).
pub struct ChangeWatch {
    connection: Option<RustConnection>,
}

impl ChangeWatch {
    /// Watches `display` (or `DISPLAY`); without DAMAGE, reports every call as a change.
    pub fn new(display: Option<&str>) -> ChangeWatch {
        ChangeWatch {
            connection: Self::connect(display).ok(),
        }
    }

    fn connect(display: Option<&str>) -> io::Result<RustConnection> {
        use x11rb::protocol::damage::{ConnectionExt as _, ReportLevel};
        let (connection, _) = x11rb::connect(display).map_err(io::Error::other)?;
        connection
            .damage_query_version(1, 1)
            .map_err(io::Error::other)?
            .reply()
            .map_err(io::Error::other)?;
        let roots: Vec<u32> = connection.setup().roots.iter().map(|s| s.root).collect();
        for root in roots {
            let damage = connection.generate_id().map_err(io::Error::other)?;
            connection
                .damage_create(damage, root, ReportLevel::NON_EMPTY)
                .map_err(io::Error::other)?;
        }
        connection.flush().map_err(io::Error::other)?;
        Ok(connection)
    }

    /// Whether damage was reported since the last call (and re-arms the report).
    pub fn changed(&mut self) -> bool {
        use x11rb::protocol::Event;
        use x11rb::protocol::damage::ConnectionExt as _;
        let Some(connection) = &self.connection else {
            return true;
        };
        let mut damaged = Vec::new();
        loop {
            match connection.poll_for_event() {
                Ok(Some(Event::DamageNotify(notify))) => damaged.push(notify.damage),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    self.connection = None;
                    return true;
                }
            }
        }
        damaged.sort_unstable();
        damaged.dedup();
        for damage in &damaged {
            // NON_EMPTY reports once until the damage is subtracted.
            let _ = connection.damage_subtract(*damage, x11rb::NONE, x11rb::NONE);
        }
        let _ = connection.flush();
        !damaged.is_empty()
    }
}

/// One RandR monitor as the watch compares it: root window, x, y, width, height.
type Listed = (u32, i16, i16, u16, u16);

/// Whether RandR's monitor list changed: the list (a few bytes per monitor) is asked for on the
/// watch's own connection each time, one round trip to the X server. (A monitor defined with
/// `xrandr --setmonitor`, as a virtual display or a test adds one, changes no output or CRTC, so
/// RandR's output events would not tell us.)
pub struct MonitorWatch {
    display: Option<String>,
    connection: Option<(RustConnection, Vec<u32>)>,
    last: Option<Vec<Listed>>,
}

impl MonitorWatch {
    /// Watches `display` (or `DISPLAY`).
    pub fn new(display: Option<&str>) -> MonitorWatch {
        MonitorWatch {
            display: display.map(str::to_owned),
            connection: None,
            last: None,
        }
    }

    fn list(&mut self) -> Option<Vec<Listed>> {
        use x11rb::protocol::randr::ConnectionExt as _;
        if self.connection.is_none() {
            let (connection, _) = x11rb::connect(self.display.as_deref()).ok()?;
            let roots = connection.setup().roots.iter().map(|s| s.root).collect();
            self.connection = Some((connection, roots));
        }
        let (connection, roots) = self.connection.as_ref()?;
        let mut list = Vec::new();
        for root in roots {
            let reply = connection
                .randr_get_monitors(*root, true)
                .ok()
                .and_then(|cookie| cookie.reply().ok());
            let Some(reply) = reply else {
                self.connection = None; // reconnect next time
                return None;
            };
            list.extend(
                reply
                    .monitors
                    .iter()
                    .map(|m| (*root, m.x, m.y, m.width, m.height)),
            );
        }
        Some(list)
    }
}

impl super::super::LayoutWatch for MonitorWatch {
    fn changed(&mut self) -> bool {
        match self.list() {
            // The first listing too: the agent listed the monitors before this watch began.
            Some(list) if self.last.as_ref() != Some(&list) => {
                self.last = Some(list);
                true
            }
            Some(_) => false,
            // No answer: let the agent list the monitors itself (it reports what fails).
            None => true,
        }
    }
}

/// The pointer, read from the X server with its own connection.
pub fn pointer(display: Option<&str>) -> Box<dyn PointerSource> {
    Box::new(X11Pointer {
        display: display.map(str::to_owned),
        connection: None,
    })
}

struct X11Pointer {
    display: Option<String>,
    connection: Option<(RustConnection, u32)>,
}

impl X11Pointer {
    fn connect(display: Option<&str>) -> io::Result<(RustConnection, u32)> {
        let (connection, screen) = x11rb::connect(display).map_err(io::Error::other)?;
        let root = connection
            .setup()
            .roots
            .get(screen)
            .map(|s| s.root)
            .ok_or_else(|| io::Error::other("no X screen"))?;
        Ok((connection, root))
    }
}

impl PointerSource for X11Pointer {
    fn position(&mut self) -> Option<(i32, i32)> {
        if self.connection.is_none() {
            self.connection = Self::connect(self.display.as_deref()).ok();
        }
        let (connection, root) = self.connection.as_ref()?;
        let reply = connection
            .query_pointer(*root)
            .ok()
            .and_then(|cookie| cookie.reply().ok());
        match reply {
            Some(reply) => Some((i32::from(reply.root_x), i32::from(reply.root_y))),
            None => {
                // The server went away: reconnect next time.
                self.connection = None;
                None
            }
        }
    }
}
