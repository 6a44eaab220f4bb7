//! Approval gates ("consensus"): after a phase that `requires_consensus`, the run stops until a
//! human decides. A [`Gate`] publishes the request and reports the decision; the local gate uses
//! files and `orchestrator run approve|reject`.

mod local;
pub mod request;

pub use local::LocalGate;

use crate::config::Workflow;
use crate::state::{Decision, RunState};

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot write the approval request `{path}`: {source}")]
    Write { path: String, source: std::io::Error },
}

/// A consensus backend.
pub trait Gate: Send + Sync {
    /// Publish the approval request for `phase` (which has just succeeded); returns where it lives.
    fn open(&self, wf: &Workflow, state: &RunState, phase: &str) -> Result<String, GateError>;

    /// The decision on `phase`, derived afresh from the backend; `None` while undecided.
    fn decision(&self, state: &RunState, phase: &str) -> Result<Option<Decision>, GateError>;
}
