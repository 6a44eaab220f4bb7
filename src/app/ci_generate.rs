//! `ci generate`: the GitHub workflow for this config.

use anyhow::Context as _;
use std::path::{Path, PathBuf};

use super::{AppError, Ctx, repository_root};
use crate::exit_code;

pub(crate) fn ci_generate(
    ctx: &Ctx,
    jobs: bool,
    output: Option<PathBuf>,
    force: bool,
    uses: Option<String>,
) -> Result<i32, AppError> {
    let inv = super::invocation::Invocation::load(ctx)?;
    let wf = &inv.wf;
    let repo = repository_root(&ctx.root);
    let uses = match uses {
        Some(u) if u.trim().is_empty() || u.contains(char::is_whitespace) => {
            return Err(AppError::Usage(format!(
                "`--uses` must be an action reference like owner/orchestrator@v1, got `{u}`"
            )));
        }
        Some(u) => u,
        None => {
            let own = repo.as_ref().is_some_and(|r| {
                std::fs::read_to_string(r.join("action.yml"))
                    .is_ok_and(|t| t.lines().any(|l| l.trim() == "name: orchestrator"))
            });
            if !own {
                return Err(AppError::Usage(
                    "which orchestrator action should the workflow use?\nhelp: pass `--uses OWNER/orchestrator@REF` (the repository and release of the orchestrator action)".into(),
                ));
            }
            "./".to_owned()
        }
    };
    let working_directory = match &repo {
        Some(r) => {
            let root = ctx.root.canonicalize().unwrap_or_else(|_| ctx.root.clone());
            match root.strip_prefix(r) {
                Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
                Ok(rel) => crate::workspace::slash_path(rel),
                Err(_) => ".".to_owned(),
            }
        }
        None => ".".to_owned(),
    };
    let opts = crate::ci::Options { uses, working_directory, config: ctx.config.display().to_string(), jobs };
    let yaml = crate::ci::generate(wf, &opts);
    if output.as_deref() == Some(Path::new("-")) {
        out!("{yaml}");
        return Ok(exit_code::SUCCESS);
    }
    let path = match output {
        Some(p) if p.is_absolute() => p,
        Some(p) => ctx.root.join(p),
        None => repo.unwrap_or_else(|| ctx.root.clone()).join(".github/workflows/orchestrator.yml"),
    };
    if path.exists() && !force {
        return Err(AppError::Usage(format!(
            "`{}` exists; not replacing it\nhelp: pass --force to replace it, or --output PATH",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
    }
    crate::state::replace_file(&path, yaml.as_bytes()).with_context(|| format!("cannot write `{}`", path.display()))?;
    outln!(
        "wrote {} ({} layout, {} phase{})",
        path.display(),
        if jobs { "jobs" } else { "steps" },
        wf.phases.len(),
        if wf.phases.len() == 1 { "" } else { "s" }
    );
    Ok(exit_code::SUCCESS)
}
