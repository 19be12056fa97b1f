//! Capture's desktop agent library. It will capture the agent's screen, encode it to H.264 and
//! stream it to the server's recorder (issue 4); the Tauri tray app is a thin shell on it.
//!
//! What exists so far are the two pieces the connection is built on:
//! - [`clock`]: the one monotonic clock every capture timestamp comes from;
//! - [`backoff`]: reconnect delays, exponential with jitter.

pub mod backoff;
pub mod clock;
