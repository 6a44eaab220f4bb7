//! git as the tool runs it in a workspace after the agents: the gate comment's diffs
//! (`review`), `commit_outputs`' add, commit and push (`github::outputs`).
//!
//! Agents run as the same user, in the same checkout: they can write `.git/config`, `.git/hooks`
//! and `.gitattributes`, which name programs git starts — hooks, `core.fsmonitor`, a diff
//! driver's `textconv`, a filter's `clean`, a credential helper. Those would run under the tool,
//! after the phase's checks, with the tool's environment, which holds the run's GitHub token
//! that agents are never given (`executor::subprocess::RUN_TOKEN_VARS`). So git is started
//! without the run's token and the runner's own variables, and with hooks and the file-system
//! monitor off (a hook could add files to the run's own commit, which counts as the run's push;
//! callers of `diff` also pass `--no-textconv`). A program git still starts from the agents'
//! configuration (a filter driver) runs without the token.

use std::path::Path;
use std::process::Command;

use crate::executor::subprocess::{RUN_TOKEN_VARS, RUNNER_ONLY_VARS};

/// Settings that keep git from starting the programs an agent could have configured.
const OFF: [&str; 4] = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"];

/// `git` in `root`, with the agents' hooks and monitor off and without the run's secrets in its
/// environment; the caller adds the subcommand.
pub(crate) fn command(root: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(root).args(OFF);
    for var in RUNNER_ONLY_VARS.iter().chain(&RUN_TOKEN_VARS) {
        cmd.env_remove(var);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_token_and_the_runners_files_are_not_passed_to_git() {
        let cmd = command(Path::new("/"));
        let removed: Vec<String> =
            cmd.get_envs().filter(|(_, v)| v.is_none()).map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        for var in ["GITHUB_TOKEN", "GH_TOKEN", "GITHUB_ENV", "GITHUB_OUTPUT", "ACTIONS_RUNTIME_TOKEN"] {
            assert!(removed.iter().any(|r| r == var), "{var} reaches git: {removed:?}");
        }
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]);
    }
}
