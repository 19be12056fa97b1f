//! Capture's shared vocabulary, used by the server, the desktop agent and the tests.
//!
//! - [`event`]: the one call/agent event vocabulary every Webex source is normalised into;
//! - [`ids`]: Webex "hydra" id decoding and callSessionId normalisation;
//! - [`protocol`]: the agent ↔ server wire protocol (typed control messages, the binary
//!   video-frame header, clock-offset estimation, every limit as a `const`);
//! - [`scn`]: the SCN screen-buffer file format (append-only writer, crash-tolerant reader);
//! - [`time`]: explicit timestamp types, one per clock.
//!
//! This crate depends on no async runtime: it is plain data, codecs and blocking file IO.
#![warn(missing_docs)]

mod bytes;
pub mod event;
pub mod ids;
pub mod protocol;
pub mod scn;
pub mod time;
