//! The file-based gate: the request is `.claude/consensus/<phase>/REQUEST.md`; the decision is
//! what `orchestrator run approve|reject` recorded in the run state.

use std::path::PathBuf;

use super::{Answer, Gate, GateError, GateFuture, request};
use crate::config::Workflow;
use crate::state::{RunState, write_atomic};

pub(crate) struct LocalGate {
    pub root: PathBuf,
    /// Secrets never reach REQUEST.md, whatever the agents reported.
    pub redactor: crate::executor::Redactor,
}

impl LocalGate {
    pub(crate) fn request_path(phase: &str) -> String {
        format!(".claude/consensus/{phase}/REQUEST.md")
    }
}

impl Gate for LocalGate {
    fn open<'a>(&'a self, wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, String> {
        Box::pin(async move {
            let rel = Self::request_path(phase);
            // The request, then each changed file's diff (as the pull request's comment shows them).
            // The diffs go before the checklist: a reviewer reads them before ticking it.
            let mut body = request::render(wf, state, phase, chrono::Utc::now());
            let files = crate::review::phase_diffs_blocking(&self.root, state, phase).await;
            let changes = crate::review::request_section(&files, phase);
            if !changes.is_empty() {
                let at = ["## Reviewer Checklist", "## Decision Required"]
                    .iter()
                    .find_map(|h| body.find(&format!("\n{h}\n")).map(|i| i + 1))
                    .unwrap_or(body.len());
                body.insert_str(at, &format!("{changes}\n"));
            }
            let body = self.redactor.redact_str(&body);
            // Inside the workspace only: `.claude/consensus` may be a link a pull request made.
            let path = crate::report::confined(&self.root, &rel)
                .map_err(|e| GateError::Write { path: rel.clone(), source: e.source })?;
            write_atomic(&path, body.as_bytes()).map_err(|source| GateError::Write { path: rel.clone(), source })?;
            Ok(rel)
        })
    }

    fn decision<'a>(&'a self, _wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, Answer> {
        Box::pin(async move {
            Ok(match state.phases.get(phase).and_then(|p| p.gate.as_ref()).and_then(|g| g.decision.clone()) {
                Some(d) => Answer::Decided(d),
                None => Answer::Waiting,
            })
        })
    }
}
