//! The session around the capture: DPI awareness, monitor DPI, the input desktop, the pointer.

use windows::Win32::Foundation::HANDLE;
use windows::Win32::Graphics::Gdi::HMONITOR;
use windows::Win32::System::StationsAndDesktops::{
    CloseDesktop, DESKTOP_CONTROL_FLAGS, DESKTOP_READOBJECTS, GetUserObjectInformationW,
    OpenInputDesktop, UOI_NAME,
};
use windows::Win32::UI::HiDpi::{
    DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2, GetDpiForMonitor, MDT_EFFECTIVE_DPI,
    SetProcessDpiAwarenessContext,
};
use windows::Win32::UI::WindowsAndMessaging::{CURSOR_SHOWING, CURSORINFO, GetCursorInfo};

use super::super::PointerSource;
use super::super::layout::BASE_DPI;

/// Makes the process per-monitor-v2 DPI aware, so that monitor rectangles, captures and the
/// pointer are all in physical pixels. Process-wide and idempotent: a second call (or a manifest
/// that already set it) fails harmlessly.
pub fn make_dpi_aware() {
    // SAFETY: no pointers; the context is one of the documented constants.
    if let Err(error) =
        unsafe { SetProcessDpiAwarenessContext(DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2) }
    {
        tracing::debug!(%error, "DPI awareness not changed (already set?)");
    }
}

/// A monitor's effective DPI (96 when unknown).
pub fn monitor_dpi(monitor: HMONITOR) -> u32 {
    let (mut x, mut y) = (0u32, 0u32);
    // SAFETY: both out-pointers are valid for the call.
    match unsafe { GetDpiForMonitor(monitor, MDT_EFFECTIVE_DPI, &mut x, &mut y) } {
        Ok(()) if x > 0 => x,
        _ => BASE_DPI,
    }
}

/// The name of the desktop receiving input (`Default`, `Winlogon`, `Screen-saver`), or `None`
/// when it cannot be opened (the secure desktop, for a user's process).
pub fn input_desktop() -> Option<String> {
    // SAFETY: no pointers; the handle is closed below.
    let desktop =
        unsafe { OpenInputDesktop(DESKTOP_CONTROL_FLAGS(0), false, DESKTOP_READOBJECTS) }.ok()?;
    let mut name = [0u16; 64];
    let mut needed = 0u32;
    // SAFETY: `name` is valid for its size in bytes; `needed` for one u32.
    let read = unsafe {
        GetUserObjectInformationW(
            HANDLE(desktop.0),
            UOI_NAME,
            Some(name.as_mut_ptr().cast()),
            (name.len() * 2) as u32,
            Some(&mut needed),
        )
    };
    // SAFETY: the handle came from OpenInputDesktop and is closed once.
    let _ = unsafe { CloseDesktop(desktop) };
    read.ok()?;
    Some(from_wide(&name))
}

/// A NUL-terminated UTF-16 buffer as a string.
pub fn from_wide(wide: &[u16]) -> String {
    let end = wide.iter().position(|&c| c == 0).unwrap_or(wide.len());
    String::from_utf16_lossy(&wide[..end])
}

/// The pointer from `GetCursorInfo`, in physical virtual-desktop pixels; `None` while hidden
/// (a full-screen video, a touch session).
pub struct CursorPointer;

impl PointerSource for CursorPointer {
    fn position(&mut self) -> Option<(i32, i32)> {
        let mut info = CURSORINFO {
            cbSize: std::mem::size_of::<CURSORINFO>() as u32,
            ..CURSORINFO::default()
        };
        // SAFETY: `info` is valid and its size is set, as the call requires.
        unsafe { GetCursorInfo(&mut info) }.ok()?;
        (info.flags.0 & CURSOR_SHOWING.0 != 0).then_some((info.ptScreenPos.x, info.ptScreenPos.y))
    }
}
