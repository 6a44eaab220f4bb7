//! `validate`: the config, the intake and every prompt, checked without running anything.

use std::path::Path;

use super::{AppError, Ctx, checks};
use crate::exit_code;

pub(crate) fn validate(ctx: &Ctx) -> Result<i32, AppError> {
    let inv = super::invocation::Invocation::load(ctx)?;
    let wf = &inv.wf;
    let intake = crate::intake::load(&ctx.root, Path::new(crate::intake::DEFAULT_INTAKE), false)?;
    let state = checks::preview_state(wf, intake, None);
    checks::preflight(wf, &state)?;
    outln!(
        "{}: ok ({} phase{}, {} agent{})",
        ctx.config.display(),
        wf.phases.len(),
        if wf.phases.len() == 1 { "" } else { "s" },
        wf.agents.len(),
        if wf.agents.len() == 1 { "" } else { "s" }
    );
    Ok(exit_code::SUCCESS)
}
