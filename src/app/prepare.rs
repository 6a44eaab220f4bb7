//! `run prepare`: the run brought into this workspace, and nothing run. The first job of the
//! jobs layout (`ci generate --jobs`) runs it and uploads the state; every other job downloads
//! and merges that upload, so all the jobs of a workflow run work on one run whatever the
//! workflow's shape (a parallel first phase whose agents start in a matrix, several phases that
//! need none, a later event that continues a run). Two matrix jobs never each create a run of
//! their own: only this job creates one.

use std::path::PathBuf;

use chrono::Utc;

use super::invocation::Invocation;
use super::{AppError, Ctx, start};
use crate::cli::ExecArgs;
use crate::exit_code;
use crate::runner_log::neutralize;
use crate::state::{self, RunState};

pub(crate) async fn prepare(ctx: &Ctx, or_start: bool, intake: Option<PathBuf>) -> Result<i32, AppError> {
    let inv = Invocation::for_run(ctx).await?;
    if or_start {
        let args = start::StartArgs { intake, force: false, or_resume: true, phase: None, create_only: true };
        return start::start(ctx, inv, args, ExecArgs::default()).await;
    }
    inv.check_state_file()?;
    // The run here, or the one the gate comment carries; none at all is refused before
    // anything is written.
    inv.state_to_check().await?;
    let _lock = inv.lock().await?;
    let state = state::read(&inv.state_path())?;
    ready(&inv, &state)
}

/// Say which run this workspace holds; on a runner, the step's outputs (the upload list with
/// the state) and the job summary.
pub(super) fn ready(inv: &Invocation, state: &RunState) -> Result<i32, AppError> {
    outln!(
        "run {} is ready in this workspace ({}); nothing was run",
        neutralize(&state.run_id),
        state.status().as_str()
    );
    if let Some(runner) = super::runner::Runner::detect() {
        runner.mask(&inv.redactor);
        runner.finish(&inv.wf, state, exit_code::SUCCESS, Utc::now(), &inv.redactor);
    }
    Ok(exit_code::SUCCESS)
}
