//! `run status --timeline` and `run report`: the run's timeline in the terminal, and the run's
//! report as Markdown (the job summary, with its Mermaid timeline) or as one self-contained HTML
//! file. All of it is drawn from the state (see [`crate::timeline`]).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::Utc;

use super::{AppError, Ctx};
use crate::exit_code;
use crate::runner_log::neutralize;
use crate::state;
use crate::timeline::{Timeline, html, terminal};

/// `run status --timeline`.
pub(crate) fn timeline(ctx: &Ctx) -> Result<i32, AppError> {
    let inv = super::invocation::Invocation::load(ctx)?;
    let (wf, redactor) = (&inv.wf, &inv.redactor);
    let state = state::read(&wf.state_path())?;
    let t = Timeline::build(wf, &state, Utc::now());
    let text = terminal::render(&t, terminal::width(), terminal::colour());
    // Untrusted text in it is neutralized where it is drawn; neutralizing the whole would take
    // the colours out.
    out!("{}", redactor.redact_str(&text));
    Ok(exit_code::SUCCESS)
}

/// `run report [--html] [--output PATH]`.
pub(crate) fn write(ctx: &Ctx, as_html: bool, output: Option<PathBuf>) -> Result<i32, AppError> {
    let inv = super::invocation::Invocation::load(ctx)?;
    let (wf, redactor) = (&inv.wf, &inv.redactor);
    let state = state::read(&wf.state_path())?;
    let now = Utc::now();
    let (body, default) = if as_html {
        (html::render(wf, &state, now, redactor), Some(html::default_path(&state.run_id)))
    } else {
        (redactor.redact_str(&crate::actions::summary_at(wf, &state, now)), None)
    };
    // A relative path is in the workspace, where agents write: written as the default is, never
    // through a link out of it and never over the orchestrator's own files.
    let (path, inside) = match (output, default) {
        (Some(p), _) if p == Path::new("-") => (None, None),
        (None, None) => (None, None),
        (Some(p), _) if p.is_absolute() => (Some(p), None),
        (Some(p), _) => {
            let rel = p.to_str().map(str::to_owned).ok_or_else(|| {
                AppError::Usage(format!("`{}` is not UTF-8; expected a path to write the report to", p.display()))
            })?;
            (Some(wf.root.join(&p)), Some((rel, true)))
        }
        (None, Some(rel)) => (Some(wf.root.join(&rel)), Some((rel, false))),
    };
    let Some(path) = path else {
        out!("{}", neutralize(&body));
        return Ok(exit_code::SUCCESS);
    };
    if path.is_dir() {
        return Err(AppError::Usage(format!(
            "`{}` is a folder; expected a file to write the report to\nhelp: name a file, like `--output reports/run.{}`",
            path.display(),
            if as_html { "html" } else { "md" }
        )));
    }
    if let Some((rel, given)) = inside {
        let written = match crate::workspace::Confinement::for_workflow(wf).write(&rel, body.as_bytes()) {
            Ok(written) => written,
            // The user's `--output`: a usage error, with the way out.
            Err(why) if given => {
                return Err(AppError::Usage(format!(
                    "cannot write the report: `{rel}` {why}\nhelp: name another file in the workspace, or give an absolute path"
                )));
            }
            Err(why) => return Err(anyhow::anyhow!("cannot write the report: `{rel}` {why}").into()),
        };
        outln!("wrote {}", neutralize(&written));
        return Ok(exit_code::SUCCESS);
    }
    state::replace_file(&path, body.as_bytes())
        .with_context(|| format!("cannot write the report to `{}`", path.display()))?;
    outln!("wrote {}", neutralize(&path.display().to_string()));
    Ok(exit_code::SUCCESS)
}
