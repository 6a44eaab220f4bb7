//! Carrying the run state to a fresh runner. A gate in `wait: event` mode ends its workflow run;
//! the reviewer's label starts a new one on a machine without `.claude/orchestrator_state.json`.
//! The gate comment therefore carries the state in a hidden block: JSON, deflated, base64, with
//! its sha256. A resume restores it only when there is no local state, only from a comment the
//! run itself posted (`github-actions[bot]`, or the token's user), and only if the digest
//! matches; the approval itself is re-derived from GitHub all the same.
//!
//! Phases on separate branches of a workflow spread over jobs (`ci generate --jobs`) open their
//! gates in separate jobs, each comment carrying what its own job saw. The newest comment's
//! state is therefore completed with the phases that the run's other gate comments carry
//! further ([`fold`]), or the next event would run again a phase that waits at its gate.
//!
//! A state too large for a comment (hundreds of agents) is written to
//! `.claude/carried/<phase>.json`, which the action uploads with the step's records; the comment
//! then carries a pointer instead: the workflow run, the artifact's name, the file's path and
//! its sha256. A fresh runner downloads that artifact through the REST API and restores the file
//! only if its digest matches the pointer, which only the run's own comment can carry.

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::executor::Redactor;
use crate::state::RunState;

const PREFIX: &str = "<!-- orchestrator:state ";
const REF_PREFIX: &str = "<!-- orchestrator:state-ref ";
/// Where a state too large for the comment is written, for the step's artifact.
pub(crate) const CARRIED_DIR: &str = ".claude/carried";
/// A state larger than this (encoded) is not carried; the comment says so.
pub(crate) const MAX_ENCODED: usize = 24_000;
/// The most a carried state may inflate to.
const MAX_JSON: u64 = 16 * 1024 * 1024;

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The hidden block carrying `state`, or `None` if it is too large to carry.
pub(crate) fn block(state: &RunState, redactor: &Redactor) -> Option<String> {
    let json = encode(state, redactor);
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
    enc.write_all(&json).ok()?;
    let encoded = STANDARD.encode(enc.finish().ok()?);
    (encoded.len() <= MAX_ENCODED).then(|| format!("{PREFIX}{} {encoded} -->", hex(&json)))
}

/// The file a state too large for the comment of `phase` is written to.
pub(crate) fn carried_file(phase: &str) -> String {
    format!("{CARRIED_DIR}/{phase}.json")
}

/// The bytes of `state` as carried (their sha256 is what a pointer names), secrets redacted.
pub(crate) fn encode(state: &RunState, redactor: &Redactor) -> Vec<u8> {
    let json = serde_json::to_vec(state).unwrap_or_default();
    redactor.redact(&json).into_owned()
}

/// Where a state too large for the comment can be found: the workflow run that uploaded it,
/// the artifact's name, the file's path in the workspace and the file's sha256.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StateRef {
    pub digest: String,
    pub run: String,
    pub artifact: String,
    pub path: String,
}

/// The pointer line for `state` at the gate of `phase`, when the step's records are uploaded
/// (`run` and `artifact` known).
pub(crate) fn pointer(
    state: &RunState,
    phase: &str,
    run: Option<&str>,
    artifact: Option<&str>,
    redactor: &Redactor,
) -> Option<String> {
    let (run, artifact) = (run?, artifact?);
    // The artifact name goes last and is percent-encoded for spaces: it may hold any text.
    let name = artifact.replace('%', "%25").replace(' ', "%20").replace("-->", "--%3E");
    Some(format!(
        "{REF_PREFIX}{} run={run} path={} artifact={name} -->",
        hex(&encode(state, redactor)),
        carried_file(phase)
    ))
}

fn read_ref(body: &str) -> Option<StateRef> {
    let line = super::comment::trailer(body).into_iter().find(|l| l.starts_with(REF_PREFIX))?;
    let rest = line.strip_prefix(REF_PREFIX)?.strip_suffix(" -->")?;
    let mut words = rest.split(' ');
    let digest = words.next()?.to_owned();
    let (mut run, mut path, mut artifact) = (None, None, None);
    for w in words {
        match w.split_once('=') {
            Some(("run", v)) => run = Some(v.to_owned()),
            Some(("path", v)) => path = Some(v.to_owned()),
            Some(("artifact", v)) => artifact = Some(v.replace("%20", " ").replace("--%3E", "-->").replace("%25", "%")),
            _ => {}
        }
    }
    let ok = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    // The run id goes into an API path: digits only.
    let run = run.filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))?;
    ok.then_some(StateRef { digest, run, artifact: artifact?, path: path? })
}

/// `body` without its state block (or pointer), for comparing what a reader sees.
pub(crate) fn strip(body: &str) -> String {
    body.lines().filter(|l| !l.starts_with(PREFIX) && !l.starts_with(REF_PREFIX)).collect::<Vec<_>>().join("\n")
}

/// Why a carried state cannot be restored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CarryError {
    /// What the comment or the artifact holds is not a usable state (no digest, a wrong one,
    /// not JSON, unsafe names, …).
    #[error("{0}")]
    Invalid(String),
    /// GitHub could not be asked.
    #[error(transparent)]
    Github(#[from] super::client::GithubError),
}

impl From<String> for CarryError {
    fn from(s: String) -> Self {
        CarryError::Invalid(s)
    }
}

impl From<&str> for CarryError {
    fn from(s: &str) -> Self {
        CarryError::Invalid(s.to_owned())
    }
}

/// The state carried in a comment body's hidden trailer (never in the text above it), checked
/// against its digest.
pub(crate) fn read(body: &str) -> Result<Option<RunState>, CarryError> {
    let Some(line) = super::comment::trailer(body).into_iter().find(|l| l.starts_with(PREFIX)) else {
        return Ok(None);
    };
    let inner =
        line.strip_prefix(PREFIX).and_then(|l| l.strip_suffix(" -->")).ok_or("the state block is not closed")?;
    let (digest, encoded) = inner.split_once(' ').ok_or("the state block has no digest")?;
    let deflated = STANDARD.decode(encoded.trim()).map_err(|e| format!("the state block is not base64: {e}"))?;
    let mut json = Vec::new();
    DeflateDecoder::new(deflated.as_slice())
        .take(MAX_JSON)
        .read_to_end(&mut json)
        .map_err(|e| format!("the state block does not inflate: {e}"))?;
    if hex(&json) != digest {
        return Err("the state block does not match its digest".into());
    }
    Ok(parse(&json).map(Some)?)
}

/// A carried state, refused unless its names and paths are safe to use in file paths (see
/// [`RunState::check_names`]): it is written into the workspace as the run's state.
fn parse(json: &[u8]) -> Result<RunState, String> {
    let state: RunState = serde_json::from_slice(json).map_err(|e| format!("the carried state is not valid: {e}"))?;
    state.check_names().map_err(|e| format!("the carried state is not valid: {e}"))?;
    Ok(state)
}

/// What the newest gate comment carries.
#[derive(Debug, PartialEq)]
pub(crate) enum Carried {
    State(Box<RunState>),
    Ref(StateRef),
    Nothing,
}

/// The newest state carried by a gate comment among `comments` posted by one of `trusted`
/// (the run's own identities). Anyone else — people, other apps' bots — could forge one.
fn newest(comments: &[Value], trusted: &[String]) -> Result<Carried, CarryError> {
    let carried = comments
        .iter()
        .rev()
        .filter(|c| c["user"]["login"].as_str().is_some_and(|l| trusted.iter().any(|t| t.eq_ignore_ascii_case(l))))
        .filter_map(|c| c["body"].as_str())
        .find(|b| {
            let hidden = super::comment::trailer(b);
            hidden.iter().any(|l| l.starts_with(PREFIX) || l.starts_with(REF_PREFIX))
                && hidden.iter().any(|l| l.starts_with("<!-- orchestrator:gate "))
        });
    let Some(body) = carried else { return Ok(Carried::Nothing) };
    if let Some(r) = read_ref(body) {
        return Ok(Carried::Ref(r));
    }
    Ok(read(body)?.map(|s| Carried::State(Box::new(s))).unwrap_or(Carried::Nothing))
}

/// Complete `state` with the phases that the other gate comments among `comments` posted by
/// one of `trusted` carry further for the same run (its id and start): a copy is taken whole
/// where it has run more often or got further (see `PhaseState::progress`). Only states carried
/// in the comments themselves, whose digest matches, are read; a pointer is not followed. They
/// add progress only: every decision is still re-derived from GitHub.
fn fold(state: &mut RunState, comments: &[Value], trusted: &[String]) {
    let others = comments
        .iter()
        .filter(|c| c["user"]["login"].as_str().is_some_and(|l| trusted.iter().any(|t| t.eq_ignore_ascii_case(l))))
        .filter_map(|c| c["body"].as_str())
        .filter(|b| super::comment::trailer(b).iter().any(|l| l.starts_with("<!-- orchestrator:gate ")))
        .filter_map(|b| read(b).ok().flatten());
    for other in others {
        if other.run_id != state.run_id || other.started_at != state.started_at {
            continue;
        }
        for (name, theirs) in &other.phases {
            let ours = state.phases.entry(name.clone()).or_insert_with(crate::state::PhaseState::pending);
            if theirs.progress() > ours.progress() {
                *ours = theirs.clone();
            }
        }
        state.journal_seq = state.journal_seq.max(other.journal_seq);
    }
}

/// The state a pointer names: the file in the artifact's zip whose path ends the pointer's path
/// (the artifact's root is the uploaded paths' common folder) and whose sha256 matches.
fn from_artifact(zip: &[u8], r: &StateRef) -> Result<RunState, String> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| format!("the artifact is not a zip: {e}"))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| format!("cannot read the artifact: {e}"))?;
        let Ok(name) = entry.name().map(|n| n.into_owned()) else { continue };
        if !(r.path == name || r.path.ends_with(&format!("/{name}"))) {
            continue;
        }
        let mut json = Vec::new();
        entry.by_ref().take(MAX_JSON).read_to_end(&mut json).map_err(|e| format!("cannot read `{name}`: {e}"))?;
        if hex(&json) != r.digest {
            return Err(format!("`{name}` in artifact `{}` does not match the digest in the gate comment", r.artifact));
        }
        return parse(&json);
    }
    Err(format!("artifact `{}` holds no `{}`", r.artifact, r.path))
}

/// The state carried by the newest gate comment the run itself posted on the pull request of
/// `ctx`: by `github-actions[bot]` (the workflow's token) or the token's own user.
pub(crate) async fn fetch(ctx: &super::context::PrContext) -> Result<Option<RunState>, CarryError> {
    let client = super::client::Client::shared(&ctx.api_url, &ctx.token)?;
    let trusted = super::client::own_identities(&client).await?;
    let comments = super::timeline::read(&client, ctx).await?.comments;
    let mut state = match newest(&comments, &trusted)? {
        Carried::Nothing => return Ok(None),
        Carried::State(s) => *s,
        Carried::Ref(r) => {
            let list = client
                .get_all_in(&format!("{}/actions/runs/{}/artifacts", ctx.repo_path(), r.run), "artifacts")
                .await?;
            let id = list
                .iter()
                .find(|a| a["name"].as_str() == Some(r.artifact.as_str()) && a["expired"] != true)
                .and_then(|a| a["id"].as_u64())
                .ok_or_else(|| {
                    format!(
                        "the gate comment points to artifact `{}` of workflow run {}, which is gone or expired",
                        r.artifact, r.run
                    )
                })?;
            let zip = client.download(&format!("{}/actions/artifacts/{id}/zip", ctx.repo_path())).await?;
            from_artifact(&zip, &r)?
        }
    };
    fold(&mut state, &comments, &trusted);
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RunState {
        serde_json::from_value(serde_json::json!({
            "version": 1, "run_id": "r1", "started_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "phases": {"plan": {"status": "awaiting_approval"}}
        }))
        .unwrap()
    }

    #[test]
    fn a_carried_state_round_trips_and_tampering_is_refused() {
        let b = block(&state(), &Redactor::default()).unwrap();
        assert_eq!(read(&format!("text\n{b}\n")).unwrap(), Some(state()));
        let at = PREFIX.len();
        let flipped = if &b[at..at + 1] == "0" { "1" } else { "0" };
        let tampered = format!("{}{flipped}{}", &b[..at], &b[at + 1..]);
        assert!(read(&tampered).is_err());
        assert_eq!(read("no block here").unwrap(), None);
    }

    #[test]
    fn only_the_runs_own_comments_are_trusted() {
        let body =
            format!("<!-- orchestrator:gate run=r1 phase=plan -->\n{}", block(&state(), &Redactor::default()).unwrap());
        let trusted = ["github-actions[bot]".to_owned()];
        for (login, kind) in [("mallory", "User"), ("dependabot[bot]", "Bot")] {
            let other = serde_json::json!([{"user": {"login": login, "type": kind}, "body": body}]);
            assert_eq!(newest(other.as_array().unwrap(), &trusted).unwrap(), Carried::Nothing, "{login}");
        }
        let ours = serde_json::json!([{"user": {"login": "github-actions[bot]", "type": "Bot"}, "body": body}]);
        assert_eq!(newest(ours.as_array().unwrap(), &trusted).unwrap(), Carried::State(Box::new(state())));
    }

    #[test]
    fn gates_opened_in_other_jobs_are_folded_into_the_newest_state() {
        // `left` and `right` need `plan` and opened their gates in jobs of their own: each
        // comment carries its own job's view.
        let view = |run_id: &str, started: &str, left: &str, right: &str| -> RunState {
            let phase = |s: &str| serde_json::json!({"status": s, "runs": u32::from(s != "pending")});
            serde_json::from_value(serde_json::json!({
                "version": 1, "run_id": run_id, "started_at": started, "updated_at": started,
                "phases": {"plan": phase("succeeded"), "left": phase(left), "right": phase(right)}
            }))
            .unwrap()
        };
        let at = "2026-01-01T00:00:00Z";
        let comment = |login: &str, phase: &str, s: &RunState| {
            let body = format!(
                "<!-- orchestrator:gate run={} phase={phase} -->\n{}",
                s.run_id,
                block(s, &Redactor::default()).unwrap()
            );
            serde_json::json!({"user": {"login": login, "type": "Bot"}, "body": body})
        };
        let trusted = ["github-actions[bot]".to_owned()];
        let bot = "github-actions[bot]";
        let left_view = view("r1", at, "awaiting_approval", "pending");
        let right_view = view("r1", at, "pending", "awaiting_approval");
        let comments = [comment(bot, "left", &left_view), comment(bot, "right", &right_view)];
        assert_eq!(newest(&comments, &trusted).unwrap(), Carried::State(Box::new(right_view.clone())));
        let mut state = right_view.clone();
        fold(&mut state, &comments, &trusted);
        assert_eq!(state.phases["left"], left_view.phases["left"], "the other gate is not forgotten");
        assert_eq!(state.phases["right"], right_view.phases["right"]);
        assert_eq!(state.phases["plan"], right_view.phases["plan"]);

        // Nothing is taken from a comment by anyone else, from another run (or another start
        // of one with the same id), or from a block that does not match its digest; a phase
        // is never taken back to where it was.
        let further = view("r1", at, "approved", "approved");
        let mut tampered = comment(bot, "left", &further);
        let body = tampered["body"].as_str().unwrap().replacen("orchestrator:state ", "orchestrator:state 0", 1);
        tampered["body"] = serde_json::Value::String(body);
        let others = [
            comment("mallory", "left", &further),
            comment(bot, "left", &view("r2", at, "approved", "approved")),
            comment(bot, "left", &view("r1", "2026-01-02T00:00:00Z", "approved", "approved")),
            tampered,
            comment(bot, "right", &view("r1", at, "pending", "pending")),
        ];
        let mut state = right_view.clone();
        fold(&mut state, &others, &trusted);
        assert_eq!(state, right_view);
    }

    #[test]
    fn a_carried_state_with_names_that_could_leave_a_folder_is_refused() {
        let mut bad = state();
        bad.run_id = "../../outside/X".into();
        let e = read(&block(&bad, &Redactor::default()).unwrap()).unwrap_err().to_string();
        assert!(e.starts_with("the carried state is not valid: `run_id` is \"../../outside/X\""), "{e}");
        let r = StateRef {
            digest: hex(&encode(&bad, &Redactor::default())),
            run: "1".into(),
            artifact: "a".into(),
            path: "s.json".into(),
        };
        let e = from_artifact(&zip_of(&[("s.json", &encode(&bad, &Redactor::default()))]), &r).unwrap_err().to_string();
        assert!(e.contains("`run_id` is \"../../outside/X\""), "{e}");
        let line = format!("{REF_PREFIX}{} run=1/../../user path=p artifact=a -->", "0".repeat(64));
        assert_eq!(read_ref(&line), None, "a run id that is not a number");
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn a_pointer_finds_the_state_in_the_artifact_by_path_and_digest() {
        let line = pointer(&state(), "plan", Some("77"), Some("records of plan"), &Redactor::default()).unwrap();
        let body = format!("<!-- orchestrator:gate run=r1 phase=plan -->\n{line}\n");
        let r = read_ref(&body).unwrap();
        assert_eq!(
            (r.run.as_str(), r.artifact.as_str(), r.path.as_str()),
            ("77", "records of plan", ".claude/carried/plan.json")
        );
        assert_eq!(strip(&body), "<!-- orchestrator:gate run=r1 phase=plan -->");
        let json = encode(&state(), &Redactor::default());
        // The artifact's root is the uploaded paths' common folder: here the workspace.
        let zip = zip_of(&[("reports/junit.xml", b"<x/>"), (".claude/carried/plan.json", &json)]);
        assert_eq!(from_artifact(&zip, &r).unwrap(), state());
        // ... or `.claude`, when nothing outside it was uploaded.
        assert_eq!(from_artifact(&zip_of(&[("carried/plan.json", &json)]), &r).unwrap(), state());
        let mut other = state();
        other.run_id = "forged".into();
        let forged = zip_of(&[(".claude/carried/plan.json", &encode(&other, &Redactor::default()))]);
        assert!(from_artifact(&forged, &r).unwrap_err().to_string().contains("does not match the digest"));
        assert!(from_artifact(&zip_of(&[("x", b"y")]), &r).unwrap_err().to_string().contains("holds no"));
        assert!(
            pointer(&state(), "plan", None, Some("a"), &Redactor::default()).is_none(),
            "no run id: nothing to point to"
        );
    }
}
