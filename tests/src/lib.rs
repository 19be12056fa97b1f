//! Capture's test harnesses: a server on port 0 with temporary storage, an HTTPS client that
//! verifies the server's generated certificate, and SCN sample data shared by the crash tests
//! and the benchmarks, a virtual X display (Xvfb) with a scriptable desktop for the screen tests, and Windows
//! programs under Wine for the Windows agent's. End-to-end tests live in `tests/tests/`, benchmarks in `src/bin/bench.rs`.

pub mod av_sync;
pub mod browser;
pub mod buffer;
pub mod cargo;
pub mod desktop;
pub mod fake_agent;
pub mod fake_webex;
pub mod media;
pub mod netcut;
pub mod picture;
pub mod process;
pub mod recordings;
pub mod replay;
pub mod scn_samples;
pub mod server;
pub mod webex;
pub mod wine;
pub mod xvfb;
