//! Adversarial review of the carried-state fold (`src/github/carry.rs`), the file-mode record
//! and `run merge` (`src/file_modes.rs`), the jobs layout's start job, and the transcripts'
//! folder handle. An agent runs as the same user as the tool, in a git checkout it can
//! configure; a pull request's author and other commenters may write anything on the PR.

use crate::fake_github::TOKEN;
use crate::github_gate::{PLANNER, setup_with};
use crate::harness::git;

/// A script that appends its environment to `log` (and prints the file it is given, as a
/// textconv or filter must), for an agent to leave where git will run it.
fn leak_script(dir: &std::path::Path, log: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("leak.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nenv >> '{}'\nif [ -f \"$1\" ]; then cat \"$1\"; fi\nexit 0\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Finding: the tool runs git in the workspace after the agents (the gate comment's diffs,
/// `commit_outputs`' add, commit and push) with its own environment, which holds the run's
/// GitHub token that agents are never given (`RUN_TOKEN_VARS`). The agent configured that
/// checkout: hooks, `core.fsmonitor`, a `textconv` driver named by `.gitattributes`: each is a
/// program git starts, with the tool's environment. Neither may see the token, and no hook
/// the agent left may run under the tool's commit or push.
#[test]
fn git_run_by_the_tool_after_the_agents_never_hands_them_the_token() {
    let outside = tempfile::tempdir().unwrap();
    let log = outside.path().join("leaked.env");
    let script = leak_script(outside.path(), &log);
    let s = script.display();
    // A filter is still run by `git add` (it is how the file is read): only without the token.
    let filter_log = outside.path().join("filter.env");
    let filter = outside.path().join("filter");
    std::fs::create_dir(&filter).unwrap();
    let f = leak_script(&filter, &filter_log);
    let f = f.display();
    let planner = format!(
        "{PLANNER}; mkdir -p .git/hooks; for h in pre-commit prepare-commit-msg commit-msg post-commit pre-push reference-transaction; do cp '{s}' .git/hooks/$h; done; git config core.fsmonitor '{s}'; git config diff.leak.textconv '{s}'; git config filter.leak.clean '{f}'; printf '* diff=leak\\n*.md filter=leak\\n' > .gitattributes"
    );
    let pr = setup_with(&planner, "  commit_outputs: true\n");
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "--quiet", "--bare", "origin.git"]);
    let origin = remote.path().join("origin.git");
    let ws = pr.p.root();
    git(ws, &["init", "--quiet", "-b", "feature"]);
    git(ws, &["remote", "add", "origin", origin.to_str().unwrap()]);
    // The plan exists on the branch: the agent's version is a change, shown as a diff.
    pr.p.write("docs/PLAN.md", "old plan\n");
    git(ws, &["add", ".claude/config.yaml", "docs/PLAN.md"]);
    git(ws, &["commit", "--quiet", "-m", "workflow"]);
    git(ws, &["push", "--quiet", "origin", "feature"]);
    std::fs::write(&pr.event, r#"{"pull_request": {"number": 7, "head": {"ref": "feature"}}}"#).unwrap();
    pr.run(&["run", "start"]).code(4);
    let pushed = git(&origin, &["log", "--format=%s", "feature"]);
    assert!(pushed.contains("orchestrator: outputs of phase `plan`"), "the outputs were not pushed: {pushed}");
    let leaked = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!leaked.contains(TOKEN), "a program the agent configured saw the run's token:\n{leaked}");
    assert!(!leaked.contains("GITHUB_TOKEN="), "{leaked}");
    let filtered = std::fs::read_to_string(&filter_log).unwrap_or_default();
    assert!(!filtered.is_empty(), "the filter never ran: the test tests nothing");
    assert!(!filtered.contains(TOKEN) && !filtered.contains("GITHUB_TOKEN="), "the filter saw the token");
    // Not one program the agent configured ran under the tool's git at all: a hook could add
    // files to the run's own commit (which counts as the run's push), a filter rewrite them.
    assert!(leaked.is_empty(), "the agent's git programs ran under the tool:\n{leaked}");
}
