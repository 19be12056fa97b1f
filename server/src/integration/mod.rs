//! Integration: Webex call and agent events → the per-agent state machine → recording commands.
//!
//! - [`tracker`]: per-agent call memory, snapshots → the seed's events (dedup, ordering);
//! - [`machine`]: the pure per-agent state machine, events → actions.

pub mod machine;
pub mod tracker;
