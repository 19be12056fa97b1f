//! The window and its picture.

use std::cell::Cell;
use std::path::PathBuf;

use windows::Win32::Foundation::{COLORREF, HWND, LPARAM, LRESULT, RECT, WPARAM};
use windows::Win32::Graphics::Gdi::{
    BeginPaint, CreateFontW, CreateSolidBrush, DeleteObject, EndPaint, FillRect, HDC,
    InvalidateRect, PAINTSTRUCT, SelectObject, SetBkMode, SetTextColor, TRANSPARENT, TextOutW,
    UpdateWindow,
};
use windows::Win32::System::LibraryLoader::GetModuleHandleW;
use windows::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DestroyWindow, DispatchMessageW, GetMessageW,
    GetSystemMetrics, MSG, PostQuitMessage, RegisterClassW, SM_CXSCREEN, SM_CYSCREEN, SW_SHOW,
    SetTimer, ShowWindow, TranslateMessage, WM_DESTROY, WM_PAINT, WM_TIMER, WNDCLASSW,
    WS_EX_TOPMOST, WS_POPUP, WS_VISIBLE,
};
use windows::core::{PCWSTR, w};

/// The text drawn in the white quadrant.
pub const TEXT: &str = "CAPTURE WINE TEST 4711";

thread_local! {
    static STATE: Cell<(bool, bool)> = const { Cell::new((false, false)) };
    static DIR: std::cell::RefCell<PathBuf> = std::cell::RefCell::new(PathBuf::new());
}

fn rgb(r: u8, g: u8, b: u8) -> COLORREF {
    COLORREF(u32::from(r) | (u32::from(g) << 8) | (u32::from(b) << 16))
}

fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn fill(dc: HDC, rect: RECT, color: COLORREF) {
    // SAFETY: a brush made and deleted here; `dc` is the paint DC.
    unsafe {
        let brush = CreateSolidBrush(color);
        FillRect(dc, &rect, brush);
        let _ = DeleteObject(brush.into());
    }
}

fn paint(window: HWND) {
    let (changed, _) = STATE.with(Cell::get);
    let (w, h) = screen_size();
    let (hw, hh) = (w / 2, h / 2);
    let mut ps = PAINTSTRUCT::default();
    // SAFETY: BeginPaint/EndPaint pair on our window; GDI objects made here are deleted here.
    unsafe {
        let dc = BeginPaint(window, &mut ps);
        let top_left = if changed {
            rgb(255, 255, 0)
        } else {
            rgb(255, 0, 0)
        };
        fill(
            dc,
            RECT {
                left: 0,
                top: 0,
                right: hw,
                bottom: hh,
            },
            top_left,
        );
        fill(
            dc,
            RECT {
                left: hw,
                top: 0,
                right: w,
                bottom: hh,
            },
            rgb(0, 255, 0),
        );
        fill(
            dc,
            RECT {
                left: 0,
                top: hh,
                right: hw,
                bottom: h,
            },
            rgb(0, 0, 255),
        );
        fill(
            dc,
            RECT {
                left: hw,
                top: hh,
                right: w,
                bottom: h,
            },
            rgb(255, 255, 255),
        );
        let font = CreateFontW(
            48,
            0,
            0,
            0,
            700,
            0,
            0,
            0,
            Default::default(),
            Default::default(),
            Default::default(),
            Default::default(),
            0,
            w!("Arial"),
        );
        let old = SelectObject(dc, font.into());
        SetBkMode(dc, TRANSPARENT);
        SetTextColor(dc, rgb(0, 0, 0));
        let text: Vec<u16> = TEXT.encode_utf16().collect();
        let _ = TextOutW(dc, hw + 40, hh + 60, &text);
        SelectObject(dc, old);
        let _ = DeleteObject(font.into());
        let _ = EndPaint(window, &ps);
    }
}

fn screen_size() -> (i32, i32) {
    // SAFETY: no pointers.
    unsafe { (GetSystemMetrics(SM_CXSCREEN), GetSystemMetrics(SM_CYSCREEN)) }
}

fn write(name: &str, text: &str) {
    let dir = DIR.with(|d| d.borrow().clone());
    let temporary = dir.join(format!("{name}.tmp"));
    if std::fs::write(&temporary, text).is_ok() {
        let _ = std::fs::rename(&temporary, dir.join(name));
    }
}

unsafe extern "system" fn window_proc(
    window: HWND,
    message: u32,
    wparam: WPARAM,
    lparam: LPARAM,
) -> LRESULT {
    match message {
        WM_PAINT => {
            paint(window);
            let (changed, ready) = STATE.with(Cell::get);
            if !ready {
                STATE.with(|s| s.set((changed, true)));
                write("ready", &now_us().to_string());
            }
            LRESULT(0)
        }
        WM_TIMER => {
            let dir = DIR.with(|d| d.borrow().clone());
            let (changed, ready) = STATE.with(Cell::get);
            if dir.join("quit").exists() {
                // SAFETY: our own window.
                let _ = unsafe { DestroyWindow(window) };
            } else if !changed && dir.join("change").exists() {
                STATE.with(|s| s.set((true, ready)));
                // SAFETY: our own window; UpdateWindow paints it before returning.
                unsafe {
                    let _ = InvalidateRect(Some(window), None, false);
                    let _ = UpdateWindow(window);
                }
                write("changed", &now_us().to_string());
            }
            LRESULT(0)
        }
        WM_DESTROY => {
            // SAFETY: no pointers.
            unsafe { PostQuitMessage(0) };
            LRESULT(0)
        }
        // SAFETY: the default handling of every other message.
        _ => unsafe { DefWindowProcW(window, message, wparam, lparam) },
    }
}

/// Shows the picture until `dir/quit` appears.
pub fn run(dir: PathBuf) -> windows::core::Result<()> {
    DIR.with(|d| *d.borrow_mut() = dir);
    let (w, h) = screen_size();
    // SAFETY: the class and window live for the whole program; the message loop is the
    // thread's own.
    unsafe {
        let instance = GetModuleHandleW(None)?;
        let class = WNDCLASSW {
            lpfnWndProc: Some(window_proc),
            hInstance: instance.into(),
            lpszClassName: w!("CaptureTestDesktop"),
            ..WNDCLASSW::default()
        };
        RegisterClassW(&class);
        let window = CreateWindowExW(
            WS_EX_TOPMOST,
            w!("CaptureTestDesktop"),
            PCWSTR::null(),
            WS_POPUP | WS_VISIBLE,
            0,
            0,
            w,
            h,
            None,
            None,
            Some(instance.into()),
            None,
        )?;
        let _ = ShowWindow(window, SW_SHOW);
        let _ = UpdateWindow(window);
        SetTimer(Some(window), 1, 50, None);
        let mut message = MSG::default();
        while GetMessageW(&mut message, None, 0, 0).as_bool() {
            let _ = TranslateMessage(&message);
            DispatchMessageW(&message);
        }
    }
    Ok(())
}
