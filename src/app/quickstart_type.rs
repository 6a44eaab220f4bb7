//! `quickstart --type TYPE`: which starter, checked before anything is written, and whether its
//! run can start here (an API key, a CLI on PATH) or the quickstart stops after writing it.

use std::path::{Path, PathBuf};

use super::{AppError, Ctx};
use crate::cli::QuickstartArgs;
use crate::starter::{self, Needs, Starter};

/// The starter and folder, or `None` when `--type` without a value asked for the list (printed).
pub(crate) fn choose(ctx: &Ctx, args: &QuickstartArgs) -> Result<Option<(&'static Starter, PathBuf)>, AppError> {
    let kind = match args.kind.as_deref() {
        None => "demo",
        Some("") => {
            outln!("Starters for `orchestrator quickstart DIR --type TYPE`:\n{}", starter::list().trim_end());
            return Ok(None);
        }
        Some(k) => k,
    };
    let Some(chosen) = starter::find(kind) else {
        let help = crate::diagnostic::did_you_mean(kind, starter::ALL.iter().map(|s| s.name))
            .map(|h| format!("help: {h}\n"))
            .unwrap_or_default();
        return Err(AppError::Usage(
            format!("no starter `{kind}`; the starters are:\n{}{help}", starter::list()).trim_end().to_owned(),
        ));
    };
    let Some(dir) = args.dir.clone() else {
        return Err(AppError::Usage(format!(
            "which folder should the `{kind}` starter go in?\nhelp: orchestrator quickstart DIR --type {kind}"
        )));
    };
    if args.ci && args.uses.is_none() {
        let target = if dir.is_absolute() { dir.clone() } else { ctx.root.join(&dir) };
        // Nothing is written when `ci generate` would refuse for want of `--uses`.
        let nearest = target.ancestors().find(|d| d.exists()).unwrap_or(Path::new("."));
        let own = super::repository_root(nearest).is_some_and(|r| {
            std::fs::read_to_string(r.join("action.yml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "name: orchestrator"))
        });
        if !own {
            return Err(AppError::Usage(
                "which orchestrator action should the workflow use?\nhelp: pass `--uses OWNER/orchestrator@REF` with `--ci` (the repository and release of the orchestrator action)".into(),
            ));
        }
    }
    Ok(Some((chosen, dir)))
}

/// Whether the starter's run can start here; if not, says what to do and what was written.
pub(crate) fn ready_to_run(sub: &Ctx, chosen: &Starter, shown: &Path) -> Result<bool, AppError> {
    if chosen.needs == Needs::Nothing {
        return Ok(true);
    }
    // The written project must hold together before anything runs or is suggested.
    super::validate::validate(sub)?;
    if chosen.needs.met() {
        return Ok(true);
    }
    let what = match chosen.needs {
        Needs::Nothing => return Ok(true),
        n => n.how(),
    };
    outln!("\nThe `{}` starter is in {}. Before its first run, {what}; then:", chosen.name, shown.display());
    outln!("  orchestrator run start --dry-run   # the plan, prompts and commands; nothing runs");
    outln!("  orchestrator run start             # runs to the plan's review");
    Ok(false)
}
