//! `init` and `quickstart`: the default project written into a folder (and, for the
//! quickstart, run to its first gate).

use anyhow::Context as _;
use std::path::{Path, PathBuf};

use super::{AppError, Ctx, start};
use crate::cli::{InitArgs, QuickstartArgs};
use crate::exit_code;

fn folder_name(root: &Path) -> String {
    root.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".to_owned())
}

fn write_template(root: &Path, name: &str) -> Result<(), AppError> {
    write_starter(root, name, &crate::starter::ALL[0])
}

fn write_starter(root: &Path, name: &str, starter: &crate::starter::Starter) -> Result<(), AppError> {
    use crate::template::Written;
    let done = crate::template::write_files(root, name, starter.files)
        .with_context(|| format!("cannot write the template into `{}`", root.display()))?;
    for w in done {
        match w {
            Written::Created(p) => outln!("created   {p}"),
            Written::Replaced { path, backup } => outln!("replaced  {path} (previous config saved as {backup})"),
            Written::Unchanged(p) => outln!("unchanged {p}"),
            Written::Kept(p) => outln!("kept      {p} (exists; not overwritten)"),
        }
    }
    Ok(())
}

pub(crate) fn init(ctx: &Ctx, args: InitArgs) -> Result<i32, AppError> {
    let name = args.name.unwrap_or_else(|| folder_name(&ctx.root));
    write_template(&ctx.root, &name)?;
    outln!("\nnext: orchestrator validate, then orchestrator run start");
    Ok(exit_code::SUCCESS)
}

pub(crate) async fn quickstart(
    ctx: &Ctx,
    args: QuickstartArgs,
    cli_directory: Option<PathBuf>,
) -> Result<i32, AppError> {
    let Some((starter, dir_arg)) = super::quickstart_type::choose(ctx, &args)? else {
        return Ok(exit_code::SUCCESS);
    };
    let dir = if dir_arg.is_absolute() { dir_arg.clone() } else { ctx.root.join(&dir_arg) };
    // A run of this folder that has not finished is not thrown away unasked.
    let state_path = dir.join(crate::config::DEFAULT_STATE_FILE);
    if !args.force
        && let Ok(previous) = crate::state::read(&state_path)
        && matches!(
            previous.status(),
            crate::state::RunStatus::Running
                | crate::state::RunStatus::Interrupted
                | crate::state::RunStatus::AwaitingApproval
        )
    {
        let shown = match &cli_directory {
            Some(outer) if !dir_arg.is_absolute() => outer.join(&dir_arg),
            _ => dir_arg.clone(),
        };
        crate::hints::set(Some(&shown), Path::new(crate::config::DEFAULT_CONFIG));
        return Err(AppError::Usage(format!(
            "the demo in `{}` has a run that has not finished (run {}, {})\nhelp: continue it with `orchestrator run resume` (or `orchestrator run approve` at its gate); to start over, run the quickstart again with `--force`",
            shown.display(),
            previous.run_id,
            previous.status().as_str()
        )));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let name = args.name.clone().unwrap_or_else(|| folder_name(&dir));
    write_starter(&dir, &name, starter)?;
    let sub = Ctx { root: dir, config: PathBuf::from(crate::config::DEFAULT_CONFIG) };
    // From here on, printed commands work on the demo, from where the user is.
    let shown = match &cli_directory {
        Some(_) if dir_arg.is_absolute() => dir_arg.clone(),
        Some(outer) => outer.join(&dir_arg),
        None => dir_arg.clone(),
    };
    crate::hints::set(Some(&shown), &sub.config);
    if args.ci {
        super::ci_generate::ci_generate(&sub, false, None, false, args.uses.clone())?;
    }
    if !super::quickstart_type::ready_to_run(&sub, starter, &shown)? {
        return Ok(exit_code::SUCCESS);
    }
    outln!();
    let inv = super::invocation::Invocation::for_run(&sub).await?;
    let args = start::StartArgs { intake: None, force: true, or_resume: false, phase: None, create_only: false };
    let code = start::start(&sub, inv, args, Default::default()).await?;
    if code == exit_code::AWAITING_APPROVAL {
        outln!(
            "\nThe {} stopped at its first approval gate. Review {}/.claude/consensus/planning/REQUEST.md, then:",
            if starter.name == "demo" { "demo" } else { "project" },
            shown.display()
        );
        outln!("  orchestrator run approve                 # continue to the end");
        outln!("  orchestrator run reject --reason \"...\"   # send it back");
        outln!("  orchestrator run status                  # where the run stands");
    }
    Ok(code)
}
