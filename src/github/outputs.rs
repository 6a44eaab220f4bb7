//! Committing a run's outputs to the pull request's branch (`consensus.commit_outputs`), so that
//! reviewers see them in the pull request and a later workflow run on a fresh runner has them.
//! Only the artifacts of the run's finished phases are added — never the orchestrator's own
//! records — and the push uses the checkout's credentials (with the workflow's token, a push
//! starts no new workflow run).

use std::path::Path;

use crate::state::{PhaseStatus, RunState};

/// The author of the commits the run makes: a later check tells the run's own pushes from
/// others' by it.
pub(crate) const AUTHOR_EMAIL: &str = "orchestrator@users.noreply.github.com";

/// Why the outputs could not be committed and pushed: git's own words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct PushError(String);

fn git(root: &Path, args: &[&str]) -> Result<String, PushError> {
    // Not with the agents' hooks, nor the run's token in what they configured (see `git_cmd`).
    let out =
        crate::git_cmd::command(root).args(args).output().map_err(|e| PushError(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(PushError(format!("`git {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// The artifacts of the phases of `state` that have run to success (or wait at a gate).
fn outputs(root: &Path, state: &RunState) -> Vec<String> {
    let mut files: Vec<String> = state
        .phases
        .values()
        .filter(|p| matches!(p.status, PhaseStatus::Succeeded | PhaseStatus::AwaitingApproval | PhaseStatus::Approved))
        .flat_map(|p| {
            let validated = p.validation.iter().flat_map(|v| v.patterns.iter().flat_map(|pat| pat.files.iter()));
            p.agents.values().flat_map(|a| a.artifacts.iter()).chain(validated).cloned().collect::<Vec<_>>()
        })
        .filter(|f| root.join(f).is_file())
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Commit the run's outputs and push them to `branch`. Returns the new head commit, or `None`
/// when there was nothing new to commit.
pub(crate) fn commit_and_push(
    root: &Path,
    state: &RunState,
    phase: &str,
    branch: &str,
) -> Result<Option<String>, PushError> {
    let files = outputs(root, state);
    if files.is_empty() {
        return Ok(None);
    }
    let mut add = vec!["add", "--"];
    add.extend(files.iter().map(String::as_str));
    git(root, &add)?;
    if git(root, &["diff", "--cached", "--quiet", "--no-ext-diff", "--no-textconv"]).is_ok() {
        return Ok(None); // nothing changed since the last commit
    }
    let message = format!("orchestrator: outputs of phase `{phase}` (run {})", state.run_id);
    git(
        root,
        &[
            "-c",
            "user.name=orchestrator",
            "-c",
            &format!("user.email={AUTHOR_EMAIL}"),
            "commit",
            "--quiet",
            "-m",
            &message,
        ],
    )?;
    git(root, &["push", "--quiet", "origin", &format!("HEAD:refs/heads/{branch}")])?;
    git(root, &["rev-parse", "HEAD"]).map(Some)
}
