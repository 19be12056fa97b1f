//! `capture-tray`: the tray app (see the library).

// No console window on Windows: the tray is started at login.
#![cfg_attr(windows, windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    capture_tray::run()
}
