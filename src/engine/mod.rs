//! The engine: decides what runs next, runs agents with timeouts, retries and bounded
//! parallelism, validates artifacts, opens gates, and keeps the state. It never prints; it sends
//! [`Event`]s.

mod agent;
pub mod context;
mod event;
pub mod plan;
pub mod retry;
mod runner;

pub use event::Event;
pub use runner::{Engine, EngineError, Mode, RunOptions, RunSummary, transcript_path};
