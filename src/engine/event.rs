//! What the engine reports as a run goes. The engine never prints: the terminal display (and,
//! later, other consumers) read these.

use std::time::Duration;

use crate::state::{PhaseStatus, RefusedArtifact};

#[derive(Debug, Clone)]
pub(crate) enum Event {
    PhaseStarted {
        phase: String,
        agents: usize,
        parallel: bool,
    },
    AttemptStarted {
        phase: String,
        agent: String,
        attempt: u32,
        max_attempts: u32,
    },
    /// An attempt failed and another will follow after `delay`.
    Retrying {
        phase: String,
        agent: String,
        attempt: u32,
        outcome: String,
        reason: String,
        delay: Duration,
    },
    AgentFinished {
        phase: String,
        agent: String,
        succeeded: bool,
        outcome: String,
        attempts: u32,
        duration: Duration,
        artifacts: usize,
        refused: Vec<RefusedArtifact>,
        leaked_output: bool,
        /// The last lines of output (redacted), for failures.
        tail: String,
        transcript: String,
    },
    PhaseFinished {
        phase: String,
        status: PhaseStatus,
        error: Option<String>,
        duration: Duration,
    },
    GateOpened {
        phase: String,
        request: String,
    },
    /// The state said `phase` was approved (or passed its gate), but the gate's backend does
    /// not confirm it: it waits at its gate again.
    GateUnconfirmed {
        phase: String,
    },
    /// A push changed `phase`'s outputs while its gate waited: it runs again for the new head.
    RerunOnPush {
        phase: String,
    },
    /// A reviewer asked for the ended `phase` to run again.
    RetryRequested {
        phase: String,
    },
    GateDecided {
        phase: String,
        approved: bool,
        by: String,
    },
    /// Something worth telling that changes nothing about the run.
    Note {
        message: String,
    },
}
