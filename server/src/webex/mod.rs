//! Webex's wire formats as Capture reads them: webhook envelopes and their signature, and the
//! payloads of the resources Capture subscribes to. Parsers accept unknown fields and missing
//! optional ones; facts and uncertainties are in the team's `webex/API.md`.

pub mod agent_state;
pub mod auth;
pub mod client;
pub mod recordings;
pub mod signature;
pub mod telephony;
pub mod time;
pub mod webhook;
