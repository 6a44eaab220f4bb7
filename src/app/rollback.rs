//! `run rollback --phase`: the `ROLLBACK_<phase>.md` advisory. It says what the phase changed and
//! how to undo it by hand; it runs no git command and changes nothing else.

use anyhow::Context as _;
use std::fmt::Write;

use super::{AppError, Ctx};
use crate::exit_code;
use crate::state::{self, PhaseStatus};

pub(super) fn write(ctx: &Ctx, phase: &str) -> Result<i32, AppError> {
    let inv = super::invocation::Invocation::load(ctx)?;
    let wf = &inv.wf;
    if wf.phase(phase).is_none() {
        let help = crate::diagnostic::did_you_mean(phase, wf.phases.iter().map(|p| p.name.as_str()))
            .map(|h| format!("\nhelp: {h}"))
            .unwrap_or_default();
        return Err(AppError::Usage(format!("no phase `{phase}` in `{}`{help}", wf.config_path.display())));
    }
    let state = state::read(&wf.state_path())?;
    let ps = state.phases.get(phase).filter(|p| p.status != PhaseStatus::Pending).ok_or_else(|| {
        AppError::Usage(format!("phase `{phase}` has not run in run {}; there is nothing to roll back", state.run_id))
    })?;
    let mut s = String::new();
    let _ = writeln!(s, "# Rollback Advisory: {phase}\n");
    let _ = writeln!(s, "**Run ID:** {}\n\n**Phase status:** {}\n", state.run_id, ps.status.as_str());
    if let Some(at) = ps.finished_at.or(ps.started_at) {
        let _ = writeln!(s, "**Phase ran:** {}\n", at.format("%Y-%m-%dT%H:%M:%SZ"));
    }
    let _ = writeln!(s, "No automatic git operations were performed. Review each step before you run it.\n");
    let changes = ps.changes.clone().unwrap_or_default();
    let _ = writeln!(s, "## What the phase changed\n");
    if changes.added.is_empty() && changes.modified.is_empty() && changes.removed.is_empty() {
        let _ = writeln!(s, "No file changes were recorded for this phase.\n");
    }
    let section = |s: &mut String, title: &str, files: &[String], how: &str| {
        if files.is_empty() {
            return;
        }
        let _ = writeln!(s, "### {title}\n");
        for f in files {
            let _ = writeln!(s, "- `{f}`");
        }
        let _ = writeln!(s, "\n{how}\n");
        let _ = writeln!(s, "```sh");
        for f in files {
            let quoted = format!("'{}'", f.replace('\'', r"'\''"));
            let _ = match title {
                "Added" => writeln!(s, "rm -- {quoted}"),
                _ => writeln!(s, "git restore --source=HEAD -- {quoted}"),
            };
        }
        let _ = writeln!(s, "```\n");
    };
    section(&mut s, "Added", &changes.added, "These files did not exist before the phase. To undo, delete them:");
    section(
        &mut s,
        "Modified",
        &changes.modified,
        "If they are tracked by git and were clean before the phase, restore the committed version:",
    );
    section(&mut s, "Removed", &changes.removed, "If they are tracked by git, bring them back:");
    let reported: Vec<&String> = ps.agents.values().flat_map(|a| a.artifacts.iter()).collect();
    if !reported.is_empty() {
        let _ = writeln!(s, "## Artifacts the agents reported\n");
        for (agent, a) in &ps.agents {
            for f in &a.artifacts {
                let _ = writeln!(s, "- `{f}` ({agent})");
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "## Then\n\nRun the phase again with `orchestrator run retry --phase {phase}`, or continue with `orchestrator run resume`."
    );
    let rel = format!("ROLLBACK_{phase}.md");
    // File names come from the workspace, where agents name files.
    let s = inv.redactor.clone().redact_str(&s);
    state::write_atomic(&wf.root.join(&rel), s.as_bytes()).with_context(|| format!("cannot write `{rel}`"))?;
    outln!("wrote {rel}");
    Ok(exit_code::SUCCESS)
}
