//! `run next`, `run resume`, `run phase` and `run retry`: going on with the run there is.

use super::invocation::Invocation;
use super::{AppError, Ctx, checks, drive, dry_run};
use crate::cli::ExecArgs;
use crate::engine::Mode;
use crate::exit_code;
use crate::runner_log::neutralize;
use crate::state::{self, RunState, RunStatus, StateLock, StateStore};

/// What the command does to the run before the engine takes it.
pub(crate) struct Step {
    pub(crate) mode: Mode,
    /// `run retry --phase P`: P is reset to pending first.
    pub(crate) retry: Option<String>,
}

pub(crate) async fn execute(ctx: &Ctx, step: Step, exec: ExecArgs) -> Result<i32, AppError> {
    if exec.dry_run {
        let inv = Invocation::load(ctx)?;
        let mut state = state::read(&inv.state_path())?;
        prepare(&inv, &mut state, &step, &exec)?;
        dry_run::print(&inv, &state, false, &step.mode, &exec);
        return Ok(exit_code::SUCCESS);
    }
    let inv = Invocation::for_run(ctx).await?;
    inv.check_state_file()?;
    // Every check on a copy first (of the state here, or of the one the gate comment carries,
    // which is restored under the lock): a refusal takes no lock and writes nothing.
    let mut copy = inv.state_to_check().await?;
    check(&inv, &mut copy, &step, &exec)?;
    let lock = inv.lock().await?;
    run_locked_step(inv, lock, step, exec).await
}

/// The checks `run start --or-resume` runs on a copy of the run it continues.
pub(crate) fn check_copy(inv: &Invocation, mut copy: RunState, mode: &Mode, exec: &ExecArgs) -> Result<(), AppError> {
    check(inv, &mut copy, &Step { mode: mode.clone(), retry: None }, exec)
}

/// Continue the run under `lock` (taken by `run start --or-resume`).
pub(crate) async fn run_locked(inv: Invocation, lock: StateLock, mode: Mode, exec: ExecArgs) -> Result<i32, AppError> {
    run_locked_step(inv, lock, Step { mode, retry: None }, exec).await
}

async fn run_locked_step(inv: Invocation, lock: StateLock, step: Step, exec: ExecArgs) -> Result<i32, AppError> {
    let mut store = StateStore::open(&inv.state_path(), lock)?;
    check(&inv, &mut store.state, &step, &exec)?;
    // On a pull request a completed state is a claim like any other: the engine confirms its
    // approvals with GitHub before calling it complete.
    if store.state.status() == RunStatus::Completed && inv.pull_request().is_none() {
        outln!("run {} is complete; start a new one with `orchestrator run start`", neutralize(&store.state.run_id));
        return Ok(exit_code::SUCCESS);
    }
    store.save()?;
    drive::drive(inv, store, step.mode, &exec).await
}

/// [`prepare`], and the LLM agents that will run have their keys: on a copy before the lock,
/// again under it.
fn check(inv: &Invocation, state: &mut RunState, step: &Step, exec: &ExecArgs) -> Result<(), AppError> {
    prepare(inv, state, step, exec)?;
    checks::llm_agents(&inv.wf, state)
}

/// Bring the state in line with the config, apply the step, and check that it can run: every
/// prompt renders.
fn prepare(inv: &Invocation, state: &mut RunState, step: &Step, exec: &ExecArgs) -> Result<(), AppError> {
    let wf = &inv.wf;
    checks::reconcile(wf, state);
    if let Some(name) = &step.retry {
        checks::reset_for_retry(wf, state, name)?;
    }
    if let Mode::Phase(name) = &step.mode {
        checks::phase_runnable(wf, state, name, inv.pull_request().is_some())?;
        if let Some(agent) = &exec.only_agent {
            checks::agent_of(wf, state, name, agent)?;
        }
    }
    checks::preflight(wf, state)
}
