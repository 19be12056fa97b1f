//! GDI: the monitors from `EnumDisplayMonitors`, each captured with `BitBlt` from the screen DC
//! into a top-down 32-bit DIB section.
//!
//! GDI has no change notifications: each tick copies the monitor into the DIB (the one cost of
//! this backend), then the tiles are hashed in place, and the picture is copied out to the
//! pipeline only when a tile changed (or a read is forced), so a still desktop sends nothing.

use std::sync::Arc;
use std::time::Instant;

use windows::Win32::Foundation::{LPARAM, RECT};
use windows::Win32::Graphics::Gdi::{
    BI_RGB, BITMAPINFO, BITMAPINFOHEADER, BitBlt, CAPTUREBLT, CreateCompatibleDC, CreateDIBSection,
    DEVMODEW, DIB_RGB_COLORS, DeleteDC, DeleteObject, ENUM_CURRENT_SETTINGS, EnumDisplayMonitors,
    EnumDisplaySettingsW, GdiFlush, GetDC, GetMonitorInfoW, HBITMAP, HDC, HGDIOBJ, HMONITOR,
    MONITORINFO, MONITORINFOEXW, ReleaseDC, SRCCOPY, SelectObject,
};
use windows::core::{BOOL, PCWSTR};

use super::super::layout::{Output, OutputDesc, Rect, Rotation, layout};
use super::super::{CaptureError, Grab, ImagePool};
use super::GrabError;
use super::desktop::{from_wide, monitor_dpi};
use crate::pipeline::detect::tile_hashes_of;

fn io(error: windows::core::Error) -> CaptureError {
    CaptureError::Io(std::io::Error::other(error))
}

/// The monitors, numbered as [`layout`] does.
pub fn outputs() -> Result<Vec<Output>, CaptureError> {
    let mut found: Vec<OutputDesc> = Vec::new();
    // SAFETY: the callback runs synchronously within this call and receives a pointer to
    // `found`, alive for the whole call.
    let listed = unsafe {
        EnumDisplayMonitors(
            None,
            None,
            Some(collect_monitor),
            LPARAM(&mut found as *mut Vec<OutputDesc> as isize),
        )
    };
    if !listed.as_bool() {
        return Err(CaptureError::NoDisplay("EnumDisplayMonitors failed".into()));
    }
    Ok(layout(&found))
}

unsafe extern "system" fn collect_monitor(
    monitor: HMONITOR,
    _dc: HDC,
    _clip: *mut RECT,
    data: LPARAM,
) -> BOOL {
    // SAFETY: `data` is the `Vec` passed by `outputs`, exclusively ours during the call.
    let found = unsafe { &mut *(data.0 as *mut Vec<OutputDesc>) };
    let mut info = MONITORINFOEXW {
        monitorInfo: MONITORINFO {
            cbSize: std::mem::size_of::<MONITORINFOEXW>() as u32,
            ..MONITORINFO::default()
        },
        ..MONITORINFOEXW::default()
    };
    // SAFETY: `info` is a MONITORINFOEXW with its size set, as the call requires.
    if !unsafe { GetMonitorInfoW(monitor, &mut info.monitorInfo) }.as_bool() {
        return BOOL(1);
    }
    let mut mode = DEVMODEW {
        dmSize: std::mem::size_of::<DEVMODEW>() as u16,
        ..DEVMODEW::default()
    };
    // SAFETY: the device name is NUL-terminated within its array; `mode` has its size set.
    let rotation = if unsafe {
        EnumDisplaySettingsW(
            PCWSTR(info.szDevice.as_ptr()),
            ENUM_CURRENT_SETTINGS,
            &mut mode,
        )
    }
    .as_bool()
    {
        // SAFETY: for a display device the union holds the display fields.
        Rotation::from_display_orientation(unsafe {
            mode.Anonymous1.Anonymous2.dmDisplayOrientation.0
        })
    } else {
        Rotation::Identity
    };
    let r = info.monitorInfo.rcMonitor;
    found.push(OutputDesc {
        device: from_wide(&info.szDevice),
        desktop: Rect {
            left: r.left,
            top: r.top,
            right: r.right,
            bottom: r.bottom,
        },
        rotation,
        dpi: monitor_dpi(monitor),
        attached: true,
    });
    BOOL(1)
}

/// One monitor's GDI capture.
pub struct Capture {
    screen: HDC,
    memory: HDC,
    bitmap: HBITMAP,
    previous: HGDIOBJ,
    bits: *const u8,
    origin: (i32, i32),
    size: (u32, u32),
    tiles: Vec<u32>,
}

impl Capture {
    /// Prepares the bitmap of one monitor.
    pub fn open(output: &Output) -> Result<Capture, CaptureError> {
        let (width, height) = (output.info.width, output.info.height);
        let info = BITMAPINFO {
            bmiHeader: BITMAPINFOHEADER {
                biSize: std::mem::size_of::<BITMAPINFOHEADER>() as u32,
                biWidth: i32::try_from(width).unwrap_or(i32::MAX),
                // Negative: rows top-down, as the pipeline's images.
                biHeight: -i32::try_from(height).unwrap_or(i32::MAX),
                biPlanes: 1,
                biBitCount: 32,
                biCompression: BI_RGB.0,
                ..BITMAPINFOHEADER::default()
            },
            ..BITMAPINFO::default()
        };
        // SAFETY: plain GDI handle calls; every handle made here is released in `Drop`, and
        // `bits` points into the DIB section, alive as long as `bitmap`.
        unsafe {
            let screen = GetDC(None);
            if screen.is_invalid() {
                return Err(CaptureError::NoDisplay("no screen DC".into()));
            }
            let memory = CreateCompatibleDC(Some(screen));
            let mut bits: *mut std::ffi::c_void = std::ptr::null_mut();
            let bitmap =
                match CreateDIBSection(Some(memory), &info, DIB_RGB_COLORS, &mut bits, None, 0) {
                    Ok(bitmap) if !bits.is_null() => bitmap,
                    Ok(bitmap) => {
                        let _ = DeleteObject(bitmap.into());
                        let _ = DeleteDC(memory);
                        ReleaseDC(None, screen);
                        return Err(CaptureError::NoDisplay("no DIB bits".into()));
                    }
                    Err(error) => {
                        let _ = DeleteDC(memory);
                        ReleaseDC(None, screen);
                        return Err(io(error));
                    }
                };
            let previous = SelectObject(memory, bitmap.into());
            Ok(Capture {
                screen,
                memory,
                bitmap,
                previous,
                bits: bits.cast_const().cast(),
                origin: (output.info.x, output.info.y),
                size: (width, height),
                tiles: Vec::new(),
            })
        }
    }

    /// Copies the monitor into the bitmap; hands it on if a tile changed (or `force`).
    pub fn grab(&mut self, force: bool, pool: &Arc<ImagePool>) -> Result<Option<Grab>, GrabError> {
        let (width, height) = self.size;
        let at = Instant::now();
        // SAFETY: both DCs are alive (owned by `self`); the rectangle is the monitor's.
        unsafe {
            BitBlt(
                self.memory,
                0,
                0,
                width as i32,
                height as i32,
                Some(self.screen),
                self.origin.0,
                self.origin.1,
                SRCCOPY | CAPTUREBLT,
            )
            .map_err(io)?;
            let _ = GdiFlush();
        }
        let stride = width as usize * 4;
        // SAFETY: the DIB section holds `stride * height` bytes at `bits` while `bitmap` lives;
        // GdiFlush above finished GDI's writes to it.
        let pixels = unsafe { std::slice::from_raw_parts(self.bits, stride * height as usize) };
        let tiles = tile_hashes_of(pixels, stride, width, height);
        if tiles == self.tiles && !force {
            return Ok(None);
        }
        let Some(image) = pool.take(width, height, stride, |buffer| {
            buffer.extend_from_slice(pixels)
        }) else {
            // Every buffer is in the pipeline: the change is seen again next tick.
            return Ok(None);
        };
        self.tiles = tiles;
        Ok(Some(Grab { image, at }))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // SAFETY: the handles were made in `open` and are released once, in reverse order.
        unsafe {
            SelectObject(self.memory, self.previous);
            let _ = DeleteObject(self.bitmap.into());
            let _ = DeleteDC(self.memory);
            ReleaseDC(None, self.screen);
        }
    }
}
