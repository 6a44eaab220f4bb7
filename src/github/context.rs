//! Where a run stands on GitHub: from `GITHUB_*` variables and the event payload at
//! `GITHUB_EVENT_PATH`. A pull-request context comes from a `pull_request` or
//! `pull_request_target` event, an `issue_comment` on a pull request, a `labeled` PR event, or a
//! `workflow_dispatch` with a `pr_number` (or `pr`, `pull_request`) input.

use std::path::PathBuf;

use serde_json::Value;

#[derive(Debug, Clone)]
pub(crate) struct PrContext {
    pub api_url: String,
    pub server_url: String,
    pub owner: String,
    pub repo: String,
    pub number: u64,
    pub token: String,
    pub run_id: Option<String>,
    pub event_name: String,
    /// The pull request's branch, when the event says (`pull_request.head.ref`).
    pub head_ref: Option<String>,
    /// The repository the pull request's head lives in, when the event says and it is not this
    /// one (a fork).
    pub fork: Option<String>,
    /// The workflow artifact this step's records are uploaded as (`ORCHESTRATOR_ARTIFACT_NAME`,
    /// set by the action), where a state too large for the comment can be found again.
    pub artifact: Option<String>,
}

impl PrContext {
    pub(crate) fn repo_path(&self) -> String {
        format!("/repos/{}/{}", self.owner, self.repo)
    }

    pub(crate) fn run_url(&self) -> Option<String> {
        self.run_id.as_ref().map(|id| format!("{}/{}/{}/actions/runs/{id}", self.server_url, self.owner, self.repo))
    }
}

#[derive(Debug)]
pub(crate) enum Detected {
    /// Not running in GitHub Actions (no event payload).
    Local,
    /// In GitHub Actions, but the event is not about a pull request.
    NoPullRequest,
    PullRequest(Box<PrContext>),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ContextError {
    #[error("cannot read the GitHub event payload `{path}`: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the GitHub event payload `{path}` is not valid JSON: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("`GITHUB_REPOSITORY` must be `owner/name`, got `{0}`")]
    Repository(String),
    #[error(
        "`GITHUB_TOKEN` is not set: the approval gate needs it to comment on pull request #{0} and read its labels\nhelp: pass `github-token` to the action, or `env: GITHUB_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}`"
    )]
    Token(u64),
    #[error("the `{input}` input of this workflow_dispatch event is not a pull request number: `{value}`")]
    Input { input: &'static str, value: String },
    #[error(
        "the GitHub event payload `{path}` ({event} event) has no usable `{field}`: expected {expected}, got {got}"
    )]
    Field { path: PathBuf, event: String, field: &'static str, expected: &'static str, got: String },
}

/// Events that are about one pull request, whose payload must say which.
const PR_EVENTS: [&str; 4] =
    ["pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment"];

/// A short rendering of a JSON value for an error message.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        other => {
            let s = other.to_string();
            if s.chars().count() > 60 {
                format!("`{}…`", s.chars().take(60).collect::<String>())
            } else {
                format!("`{s}`")
            }
        }
    }
}

/// The payload's shape, checked where it names a pull request: an object; `pull_request` (when
/// present, and always in pull-request events) an object with a positive whole `number`; an
/// issue comment's `issue.number` likewise when the issue is a pull request.
fn check_shape(path: &std::path::Path, event_name: &str, event: &Value) -> Result<(), ContextError> {
    let field = |field, expected, got: &Value| ContextError::Field {
        path: path.to_path_buf(),
        event: if event_name.is_empty() { "unnamed".into() } else { event_name.to_owned() },
        field,
        expected,
        got: shown(got),
    };
    if !event.is_object() {
        return Err(field("(the payload)", "a JSON object", event));
    }
    let number_ok = |n: &Value| n.as_u64().is_some_and(|n| n > 0);
    let pr = &event["pull_request"];
    if PR_EVENTS.contains(&event_name) || !pr.is_null() {
        if !pr.is_object() {
            return Err(field("pull_request", "an object", pr));
        }
        if !number_ok(&pr["number"]) {
            return Err(field("pull_request.number", "a positive whole number", &pr["number"]));
        }
    }
    if !event["issue"]["pull_request"].is_null() && !number_ok(&event["issue"]["number"]) {
        return Err(field("issue.number", "a positive whole number", &event["issue"]["number"]));
    }
    Ok(())
}

/// The pull request number an event is about, if any.
fn pull_request_number(event_name: &str, event: &Value) -> Result<Option<u64>, ContextError> {
    if let Some(n) = event["pull_request"]["number"].as_u64() {
        return Ok(Some(n));
    }
    if event["issue"]["pull_request"].is_object()
        && let Some(n) = event["issue"]["number"].as_u64()
    {
        return Ok(Some(n));
    }
    if event_name == "workflow_dispatch" {
        for input in ["pr_number", "pr", "pull_request"] {
            match &event["inputs"][input] {
                Value::Null => continue,
                Value::Number(n) if n.as_u64().is_some() => return Ok(n.as_u64()),
                Value::String(s) if s.trim().is_empty() => continue,
                Value::String(s) => {
                    return s
                        .trim()
                        .trim_start_matches('#')
                        .parse()
                        .map(Some)
                        .map_err(|_| ContextError::Input { input, value: s.clone() });
                }
                other => return Err(ContextError::Input { input, value: other.to_string() }),
            }
        }
    }
    Ok(None)
}

/// Read the context from `env` (a lookup, so tests need not touch the process environment).
pub(crate) fn detect(env: impl Fn(&str) -> Option<String>) -> Result<Detected, ContextError> {
    let Some(path) = env("GITHUB_EVENT_PATH").filter(|p| !p.is_empty()).map(PathBuf::from) else {
        return Ok(Detected::Local);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ContextError::Read { path: path.clone(), source })?;
    let event: Value =
        serde_json::from_str(&text).map_err(|e| ContextError::Parse { path: path.clone(), detail: e.to_string() })?;
    let event_name = env("GITHUB_EVENT_NAME").unwrap_or_default();
    check_shape(&path, &event_name, &event)?;
    let Some(number) = pull_request_number(&event_name, &event)? else {
        return Ok(Detected::NoPullRequest);
    };
    let repository = env("GITHUB_REPOSITORY")
        .or_else(|| event["repository"]["full_name"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let Some((owner, repo)) =
        repository.split_once('/').filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
    else {
        return Err(ContextError::Repository(repository));
    };
    let token = env("GITHUB_TOKEN").filter(|t| !t.is_empty()).ok_or(ContextError::Token(number))?;
    Ok(Detected::PullRequest(Box::new(PrContext {
        api_url: env("GITHUB_API_URL")
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "https://api.github.com".into())
            .trim_end_matches('/')
            .to_owned(),
        server_url: env("GITHUB_SERVER_URL")
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "https://github.com".into())
            .trim_end_matches('/')
            .to_owned(),
        owner: owner.to_owned(),
        repo: repo.to_owned(),
        number,
        token,
        run_id: env("GITHUB_RUN_ID"),
        event_name,
        head_ref: event["pull_request"]["head"]["ref"].as_str().map(str::to_owned),
        artifact: env("ORCHESTRATOR_ARTIFACT_NAME").filter(|a| !a.trim().is_empty()),
        fork: event["pull_request"]["head"]["repo"]["full_name"]
            .as_str()
            .filter(|head| !head.eq_ignore_ascii_case(&repository))
            .map(str::to_owned),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_with(event_name: &str, payload: &str, extra: &[(&str, &str)]) -> Result<Detected, ContextError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, payload).unwrap();
        let mut vars: std::collections::HashMap<String, String> = [
            ("GITHUB_EVENT_PATH", path.to_str().unwrap()),
            ("GITHUB_EVENT_NAME", event_name),
            ("GITHUB_REPOSITORY", "octo/app"),
            ("GITHUB_TOKEN", "t0ken"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        detect(|k| vars.get(k).cloned())
    }

    fn number(d: Result<Detected, ContextError>) -> Option<u64> {
        match d.unwrap() {
            Detected::PullRequest(c) => Some(c.number),
            _ => None,
        }
    }

    #[test]
    fn pull_request_numbers_come_from_each_event_kind() {
        assert_eq!(number(detect_with("pull_request", r#"{"pull_request": {"number": 7}}"#, &[])), Some(7));
        assert_eq!(
            number(detect_with("pull_request_target", r#"{"action": "labeled", "pull_request": {"number": 8}}"#, &[])),
            Some(8)
        );
        assert_eq!(
            number(detect_with("issue_comment", r#"{"issue": {"number": 9, "pull_request": {}}}"#, &[])),
            Some(9)
        );
        assert_eq!(number(detect_with("issue_comment", r#"{"issue": {"number": 9}}"#, &[])), None);
        assert_eq!(number(detect_with("workflow_dispatch", r##"{"inputs": {"pr_number": "#12"}}"##, &[])), Some(12));
        assert_eq!(number(detect_with("push", r#"{"ref": "refs/heads/main"}"#, &[])), None);
    }

    #[test]
    fn bad_payloads_and_missing_token_are_clear_errors() {
        let e = detect_with("pull_request", "{not json", &[]).unwrap_err().to_string();
        assert!(e.contains("is not valid JSON"), "{e}");
        let e = detect_with("workflow_dispatch", r#"{"inputs": {"pr_number": "abc"}}"#, &[]).unwrap_err().to_string();
        assert!(e.contains("`pr_number` input") && e.contains("`abc`"), "{e}");
        let e = detect_with("pull_request", r#"{"pull_request": {"number": 7}}"#, &[("GITHUB_TOKEN", "")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`GITHUB_TOKEN` is not set") && e.contains("#7"), "{e}");
        let e = detect_with("pull_request", r#"{"pull_request": {"number": 7}}"#, &[("GITHUB_REPOSITORY", "nope")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("owner/name"), "{e}");
    }

    #[test]
    fn malformed_pull_request_payloads_name_the_file_and_the_field() {
        for (event, payload, field) in [
            ("pull_request", r#"{"pull_request": {"number": "7"}}"#, "pull_request.number"),
            ("pull_request", r#"{"pull_request": {"number": 7.5}}"#, "pull_request.number"),
            ("pull_request", r#"{"pull_request": {"number": -7}}"#, "pull_request.number"),
            ("pull_request", r#"{"pull_request": {"number": 0}}"#, "pull_request.number"),
            ("pull_request", r#"{"action": "opened"}"#, "pull_request"),
            ("pull_request_target", r#"{"pull_request": "7"}"#, "pull_request"),
            ("pull_request", "null", "(the payload)"),
            ("pull_request", "[1, 2]", "(the payload)"),
            ("push", r#"{"pull_request": [7]}"#, "pull_request"),
            ("issue_comment", r#"{"issue": {"number": "9", "pull_request": {}}}"#, "issue.number"),
        ] {
            let e = detect_with(event, payload, &[]).unwrap_err().to_string();
            assert!(e.contains("event.json") && e.contains(&format!("`{field}`")), "{payload}: {e}");
        }
    }

    #[test]
    fn outside_actions_is_local() {
        assert!(matches!(detect(|_| None).unwrap(), Detected::Local));
    }
}
