//! The engine: decides what runs next, runs agents with timeouts, retries and bounded
//! parallelism, validates artifacts, opens gates, and keeps the state. It never prints; it sends
//! [`Event`]s.

mod agent;
pub(crate) mod context;
mod event;
pub(crate) mod plan;
pub(crate) mod retry;
mod runner;

pub(crate) use event::Event;
#[cfg(test)]
pub(crate) use runner::transcript_path;
pub(crate) use runner::{Engine, EngineError, Mode, RunOptions};
