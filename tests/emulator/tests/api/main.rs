//! End-to-end tests of the Webex emulator over real HTTPS.

mod audio;
mod auth;
mod binary;
mod common;
mod faults;
mod keys;
mod paging;
mod scenarios;
mod webhooks;
