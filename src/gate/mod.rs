//! Approval gates ("consensus"): after a phase that `requires_consensus`, the run stops until a
//! human decides. A [`Gate`] publishes the request and reports the decision, re-deriving it from
//! its backend every time: `LocalGate` uses files and `orchestrator run approve|reject`;
//! `github::gate::GitHubGate` a pull-request comment and labels.

mod local;
pub(crate) mod request;
pub(crate) mod tally;

use std::future::Future;
use std::pin::Pin;

pub(crate) use local::LocalGate;

use crate::config::Workflow;
use crate::state::{Decision, RunState};

#[derive(Debug, thiserror::Error)]
pub(crate) enum GateError {
    #[error("cannot write the approval request `{path}`: {source}")]
    Write { path: String, source: std::io::Error },
    /// The backend that holds the gate (GitHub's API) failed; the backend converts its own
    /// errors into this, so the gate depends on no backend.
    #[error("approval gate on {backend}: {source}")]
    Backend { backend: &'static str, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("approval gate: {0}")]
    Other(String),
}

/// Where a gate stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Waiting,
    Decided(Decision),
    /// A push changed the phase's outputs while its gate waited (`consensus.rerun_on_push`):
    /// run the phase again for the new head.
    Rerun,
}

pub(crate) type GateFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GateError>> + Send + 'a>>;

/// A consensus backend.
pub(crate) trait Gate: Send + Sync {
    /// Publish the approval request for `phase` (which has just succeeded); returns where it lives.
    fn open<'a>(&'a self, wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, String>;

    /// The decision on `phase`, derived afresh from the backend. An error means "not
    /// approved" (the gate fails closed).
    fn decision<'a>(&'a self, wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, Answer>;

    /// Whether the backend's own record confirms the approval that `state` says `phase` has. A
    /// state can come from a file or a comment that someone else wrote; a backend that keeps
    /// its decisions elsewhere (GitHub) checks there. The file gate's decisions live in the
    /// state itself.
    fn confirm<'a>(&'a self, _wf: &'a Workflow, _state: &'a RunState, _phase: &'a str) -> GateFuture<'a, bool> {
        Box::pin(async { Ok(true) })
    }

    /// Whether a reviewer asked for `phase` (rejected or failed) to run again through the
    /// backend (a `/retry` comment); the file gate has `orchestrator run retry` instead.
    fn retry_requested<'a>(&'a self, _wf: &'a Workflow, _state: &'a RunState, _phase: &'a str) -> GateFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
}
