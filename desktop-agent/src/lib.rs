//! Capture's desktop agent library: captures the agent's screen, encodes it to H.264 and streams
//! it to the server's recorder. It runs headless (the `capture-agent` binary, tests); the tray
//! app is a thin shell on it.
//!
//! - [`capture`]: the screen behind one trait (real screen through scrap, or synthetic);
//! - [`pipeline`]: capture → change detection → colour conversion → encode, one per monitor;
//! - [`agent`]: the connection's life: commands, frames, acks, clock, pointer, reconnects;
//! - [`connection`]: verified TLS websocket and the handshake; [`enroll`]; [`config`];
//! - [`local`]: the one-agent-per-user lock and the status file the tray reads;
//! - [`clock`]: the one monotonic clock every timestamp comes from; [`backoff`];
//! - [`platform`]: configuration paths, the credential's protection, stop signals, per OS.

pub mod agent;
pub mod backoff;
pub mod capture;
pub mod clock;
pub mod config;
pub mod connection;
pub mod enroll;
pub mod local;
pub mod pipeline;
pub mod platform;
pub mod spool;

use std::sync::Arc;

use capture::ScreenSource;
use capture::synthetic::{SyntheticSource, Workload};

/// The capture source named in the configuration: `screen`, `synthetic-office` or
/// `synthetic-still` (1920×1080); on Windows also `screen-gdi` (GDI only, never Desktop
/// Duplication).
pub fn source(name: &str) -> Result<Arc<dyn ScreenSource>, String> {
    match name {
        #[cfg(any(target_os = "linux", windows, target_os = "macos"))]
        "screen" => Ok(Arc::new(capture::screen::Screen::default())),
        #[cfg(windows)]
        "screen-gdi" => Ok(Arc::new(capture::screen::Screen::new(true))),
        "synthetic-office" => Ok(Arc::new(SyntheticSource::new(
            Workload::Office,
            vec![(1920, 1080)],
        ))),
        "synthetic-still" => Ok(Arc::new(SyntheticSource::new(
            Workload::Still,
            vec![(1920, 1080)],
        ))),
        other => Err(format!(
            "unknown source {other:?}: expected screen, synthetic-office or synthetic-still"
        )),
    }
}
