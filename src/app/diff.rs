//! `run diff [PHASE]`: what a phase changed, file by file, in the terminal (see `review`).

use super::{AppError, Ctx};
use crate::exit_code;
use crate::runner_log::neutralize;
use crate::state::{self, PhaseStatus};

pub(crate) fn show(ctx: &Ctx, phase: Option<String>) -> Result<i32, AppError> {
    let inv = super::invocation::Invocation::load(ctx)?;
    let wf = &inv.wf;
    if let Some(p) = &phase
        && wf.phase(p).is_none()
    {
        let help = crate::diagnostic::did_you_mean(p, wf.phases.iter().map(|p| p.name.as_str()))
            .map(|h| format!("\nhelp: {h}"))
            .unwrap_or_default();
        return Err(AppError::Usage(format!("no phase `{p}` in `{}`{help}", wf.config_path.display())));
    }
    let state = state::read(&wf.state_path())?;
    let status = |name: &str| state.phases.get(name).map_or(PhaseStatus::Pending, |p| p.status);
    // Default: the phase at its gate, else the last one (in config order) that ran.
    let phase = phase
        .or_else(|| wf.phases.iter().find(|p| status(&p.name) == PhaseStatus::AwaitingApproval).map(|p| p.name.clone()))
        .or_else(|| wf.phases.iter().rev().find(|p| status(&p.name) != PhaseStatus::Pending).map(|p| p.name.clone()))
        .ok_or_else(|| {
            AppError::Usage(format!("no phase of run {} has run yet; there is nothing to show", state.run_id))
        })?;
    if status(&phase) == PhaseStatus::Pending {
        return Err(AppError::Usage(format!(
            "phase `{phase}` has not run in run {}; there is nothing to show",
            state.run_id
        )));
    }
    let diffs = crate::review::phase_diffs(&wf.root, &state, &phase);
    if diffs.is_empty() {
        outln!("phase {phase} of run {} changed no files", neutralize(&state.run_id));
        return Ok(exit_code::SUCCESS);
    }
    let bounds = crate::review::Bounds { lines_per_file: 2_000, total: 4 << 20 };
    let color = console::colors_enabled();
    out!("{}", crate::review::terminal::render(&diffs, bounds, color, &inv.redactor));
    Ok(exit_code::SUCCESS)
}
