//! `run start`: a new run (or, with `--or-resume`, the one that has not finished).

use std::path::PathBuf;

use super::invocation::Invocation;
use super::{AppError, Ctx, checks, drive, dry_run, existing};
use crate::cli::ExecArgs;
use crate::engine::Mode;
use crate::exit_code;
use crate::runner_log::neutralize;
use crate::state::{self, RunStatus, StateStore};

pub(crate) struct StartArgs {
    pub(crate) intake: Option<PathBuf>,
    pub(crate) force: bool,
    pub(crate) or_resume: bool,
    pub(crate) phase: Option<String>,
    /// `run prepare --or-start`: the run is created (or the unfinished one kept) and nothing
    /// runs, so no agent's key is needed here.
    pub(crate) create_only: bool,
}

pub(crate) async fn execute(ctx: &Ctx, args: StartArgs, exec: ExecArgs) -> Result<i32, AppError> {
    let inv = if exec.dry_run { Invocation::load(ctx)? } else { Invocation::for_run(ctx).await? };
    start(ctx, inv, args, exec).await
}

/// A run that has not finished: it goes on, or is replaced only when asked.
fn unfinished(status: RunStatus) -> bool {
    matches!(status, RunStatus::Running | RunStatus::Interrupted | RunStatus::AwaitingApproval)
}

pub(crate) async fn start(ctx: &Ctx, inv: Invocation, args: StartArgs, exec: ExecArgs) -> Result<i32, AppError> {
    let wf = &inv.wf;
    let mode = match &args.phase {
        None => Mode::Continue,
        Some(name) => {
            wf.phase(name).ok_or_else(|| checks::unknown_phase(wf, name))?;
            Mode::Phase(name.clone())
        }
    };
    if !args.or_resume {
        can_start_with(wf, &mode)?;
    }
    let (intake_rel, explicit) = match &args.intake {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(crate::intake::DEFAULT_INTAKE), false),
    };
    let intake_value = crate::intake::load(&ctx.root, &intake_rel, explicit)?;
    let mut new_state = checks::preview_state(wf, intake_value, Some(&intake_rel));
    let path = inv.state_path();
    if exec.dry_run {
        checks::preflight(wf, &new_state)?;
        dry_run::print(&inv, &new_state, true, &mode, &exec);
        return Ok(exit_code::SUCCESS);
    }
    if !args.force {
        // `--force` replaces a state it cannot read (under the lock, below).
        inv.check_state_file()?;
    }
    // The run found here, or on a fresh runner the one the gate comment carries (restored
    // under the lock): what is decided on it is checked before anything is written.
    // (`--force` alone replaces whatever is there: nothing to read before the lock.)
    let found = if args.force && !args.or_resume {
        None
    } else {
        match state::read(&path) {
            Ok(s) => Some(s),
            Err(state::StateError::NoRun { .. }) => inv.carried().await?.cloned(),
            Err(_) => None,
        }
    };
    let found = found.filter(|s| unfinished(s.status()));
    if let Some(previous) = &found
        && !args.or_resume
        && !args.force
    {
        return Err(not_finished(previous));
    }
    // `--or-resume` decides on that run under the same lock it then runs under.
    let resuming = args.or_resume && found.is_some();
    if args.or_resume && !resuming {
        // No run to continue: a new one, refused before the lock if it cannot start so.
        can_start_with(wf, &mode)?;
    }
    match found {
        Some(_) if resuming && args.create_only => {}
        Some(copy) if resuming => existing::check_copy(&inv, copy, &mode, &exec)?,
        _ => {
            checks::preflight(wf, &new_state)?;
            if !args.create_only {
                checks::llm_agents(wf, &new_state)?;
            }
        }
    }
    let lock = inv.lock().await?;
    // `--force` alone needs only the replaced run's id (a new id must differ from it): read
    // without building its state, which for a large run is most of a start's time.
    let replaced = if args.force && !args.or_resume {
        match state::read_run_id(&path) {
            Ok(id) => Some(id),
            Err(state::StateError::NoRun { .. }) => None,
            Err(e) => {
                errln!("note: replacing an unreadable state: {}", neutralize(&e.to_string()));
                None
            }
        }
    } else {
        None
    };
    if replaced.as_ref() == Some(&new_state.run_id) {
        new_state.run_id.push_str("_2");
    }
    let previous = if args.force && !args.or_resume { Ok(None) } else { state::read(&path).map(Some) };
    let previous = match previous {
        Ok(previous) => previous,
        Err(state::StateError::NoRun { .. }) => None,
        Err(e) if args.force => {
            errln!("note: replacing an unreadable state: {}", neutralize(&e.to_string()));
            None
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(previous) = previous {
        let status = previous.status();
        if args.or_resume && unfinished(status) && args.create_only {
            return super::prepare::ready(&inv, &previous);
        }
        if args.or_resume && unfinished(status) {
            errln!("run {} has not finished; continuing it (--or-resume)", neutralize(&previous.run_id));
            return existing::run_locked(inv, lock, mode, exec).await;
        }
        if !args.force && unfinished(status) {
            return Err(not_finished(&previous));
        }
        if previous.run_id == new_state.run_id {
            new_state.run_id.push_str("_2");
        }
    }
    if args.or_resume {
        // No run to continue after all: a new one, checked as one.
        can_start_with(wf, &mode)?;
        if resuming {
            checks::preflight(wf, &new_state)?;
            if !args.create_only {
                checks::llm_agents(wf, &new_state)?;
            }
        }
    }
    let store = StateStore::create(&path, lock, new_state)?;
    errln!("run {} started", neutralize(&store.state.run_id));
    if args.create_only {
        return super::prepare::ready(&inv, &store.state);
    }
    drive::drive(inv, store, mode, &exec).await
}

fn not_finished(previous: &state::RunState) -> AppError {
    AppError::Usage(format!(
        "run {} has not finished (it is {})\nhelp: continue it with `orchestrator run resume`, or replace it with `orchestrator run start --force`",
        previous.run_id,
        previous.status().as_str()
    ))
}

/// A new run starts with a phase that needs none.
fn can_start_with(wf: &crate::config::Workflow, mode: &Mode) -> Result<(), AppError> {
    match mode {
        Mode::Phase(name) => match wf.phase(name).filter(|p| !p.needs.is_empty()) {
            Some(p) => Err(cannot_start_with(wf, p)),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn cannot_start_with(wf: &crate::config::Workflow, p: &crate::config::Phase) -> AppError {
    let first: Vec<String> = wf.phases.iter().filter(|p| p.needs.is_empty()).map(|p| format!("`{}`", p.name)).collect();
    AppError::Usage(format!(
        "a run cannot start with phase `{}`: it needs {}\nhelp: start with a phase that needs none: {}",
        p.name,
        p.needs.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
        first.join(", ")
    ))
}
