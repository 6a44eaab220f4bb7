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

/// `git` in the workspace: not with the agents' hooks, nor the run's token (see `git_cmd`).
fn git(root: &Path, args: &[&str]) -> Result<String, PushError> {
    let mut cmd = crate::git_cmd::command(root);
    cmd.args(args);
    output(cmd, args)
}

/// Run `cmd` (git with `args`): its output, trimmed, or what it said as the error.
fn output(mut cmd: std::process::Command, args: &[&str]) -> Result<String, PushError> {
    let out = cmd.output().map_err(|e| PushError(format!("cannot run git: {e}")))?;
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

/// The push's credentials: the run's token as the header `actions/checkout` would have left in
/// the checkout's config, for the GitHub server only, given to this one git process in its
/// environment (not its arguments, which any process can list). The generated workflow's
/// checkout persists no credentials: agents read that config. No token: nothing is added.
fn push_auth(token: Option<String>, server: Option<String>) -> Vec<(String, String)> {
    use base64::Engine as _;
    let Some(token) = token.filter(|t| !t.is_empty()) else { return Vec::new() };
    let server = server.filter(|s| !s.is_empty()).unwrap_or_else(|| "https://github.com".to_owned());
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    let key = format!("http.{}/.extraheader", server.trim_end_matches('/'));
    // An empty value first clears the header a checkout that persisted its credentials left (a
    // workflow not written by `ci generate`): two `Authorization` headers are refused.
    vec![
        ("GIT_CONFIG_COUNT".to_owned(), "2".to_owned()),
        ("GIT_CONFIG_KEY_0".to_owned(), key.clone()),
        ("GIT_CONFIG_VALUE_0".to_owned(), String::new()),
        ("GIT_CONFIG_KEY_1".to_owned(), key),
        ("GIT_CONFIG_VALUE_1".to_owned(), format!("AUTHORIZATION: basic {basic}")),
    ]
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
    let head = git(root, &["rev-parse", "HEAD"])?;
    push_isolated(root, &head, branch)?;
    Ok(Some(head))
}

/// Push commit `head` of the workspace's repository to `branch` of its `origin`, from a
/// repository of the tool's own. The workspace's git config is the agents' to write: a proxy or
/// CA of theirs for the GitHub server, a credential helper, a transport that runs a program would
/// each see the run's token in a push made there. So the commit is fetched (without the token)
/// into a new bare repository, and pushed from it with no configuration but the tool's (no
/// global or system config either: the agents share the home folder), the token given only
/// when `origin` is on the GitHub server.
fn push_isolated(root: &Path, head: &str, branch: &str) -> Result<(), PushError> {
    let url = git(root, &["config", "--get", "remote.origin.url"])
        .map_err(|e| PushError(format!("the checkout has no `origin` to push to: {e}")))?;
    let server = std::env::var("GITHUB_SERVER_URL").ok().filter(|s| !s.is_empty());
    let on_server = {
        let server = server.as_deref().unwrap_or("https://github.com").trim_end_matches('/');
        url.strip_prefix(server).is_some_and(|rest| rest.starts_with('/'))
    };
    let auth = if on_server { push_auth(std::env::var("GITHUB_TOKEN").ok(), server) } else { Vec::new() };
    let own = tempfile::tempdir().map_err(|e| PushError(format!("cannot make a repository to push from: {e}")))?;
    let bare = own.path().display().to_string();
    // Only this repository and the tool's settings: no repository the environment names, no
    // global or system config, no prompt.
    let in_own = |args: &[&str], extra: &[(String, String)]| -> Result<String, PushError> {
        let mut cmd = crate::git_cmd::command(own.path());
        for var in
            ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "GIT_NAMESPACE"]
        {
            cmd.env_remove(var);
        }
        cmd.arg(format!("--git-dir={bare}"))
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .envs(extra.iter().map(|(k, v)| (k, v)));
        output(cmd, args)
    };
    in_own(&["init", "--quiet", "--bare", &bare], &[])?;
    // A runner's checkout is shallow: its boundary comes along (the server has what lies past it).
    let from = root.display().to_string();
    in_own(&["fetch", "--quiet", "--no-tags", "--update-shallow", &from, "HEAD:refs/heads/out"], &[])?;
    let fetched = in_own(&["rev-parse", "--verify", "refs/heads/out"], &[])?;
    if fetched != head {
        return Err(PushError(format!("the commit to push changed while it was copied ({head} became {fetched})")));
    }
    in_own(&["push", "--quiet", &url, &format!("refs/heads/out:refs/heads/{branch}")], &auth)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_gets_the_token_for_the_github_server_only_and_in_its_environment() {
        let env = push_auth(Some("ghs_abc".into()), Some("https://github.example/".into()));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("GIT_CONFIG_COUNT"), Some("2"));
        // The header a checkout persisted is cleared, then the run's is the only one.
        assert_eq!(get("GIT_CONFIG_KEY_0"), Some("http.https://github.example/.extraheader"));
        assert_eq!(get("GIT_CONFIG_VALUE_0"), Some(""));
        assert_eq!(get("GIT_CONFIG_KEY_1"), Some("http.https://github.example/.extraheader"));
        // base64("x-access-token:ghs_abc")
        assert_eq!(get("GIT_CONFIG_VALUE_1"), Some("AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX2FiYw=="));
        let default = push_auth(Some("t".into()), None);
        assert_eq!(default[1].1, "http.https://github.com/.extraheader");
        assert!(push_auth(None, None).is_empty() && push_auth(Some(String::new()), None).is_empty());
    }
}
