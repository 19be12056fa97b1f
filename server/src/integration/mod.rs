//! Integration: Webex call and agent events → the per-agent state machine → recording commands.
//!
//! - [`receiver`]: `POST /webhooks/webex` — signature, limits, durable before 2xx;
//! - [`processor`]: applies stored deliveries in order, fires timers, executes actions;
//! - [`setup`]: registers our webhooks with Webex and keeps the agent-event interest fresh;
//! - [`replay`]: the `webhooks replay` dry run;
//! - [`decode`]: delivery → person + snapshot/state → events → actions (shared with the dry run);
//! - [`tracker`]: per-agent call memory, snapshots → the seed's events (dedup, ordering);
//! - [`machine`]: the pure per-agent state machine, events → actions;
//! - [`link`]: how commands reach agents (the recorder), and the gap reasons when they cannot.

pub mod decode;
pub mod link;
pub mod machine;
pub mod processor;
pub mod receiver;
pub mod replay;
pub mod setup;
pub mod tracker;
