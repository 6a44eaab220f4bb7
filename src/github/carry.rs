//! Carrying the run state to a fresh runner. A gate in `wait: event` mode ends its workflow run;
//! the reviewer's label starts a new one on a machine without `.claude/orchestrator_state.json`.
//! The gate comment therefore carries the state in a hidden block: JSON, deflated, base64, with
//! its sha256. A resume restores it only when there is no local state, only from a comment the
//! run itself posted (`github-actions[bot]`, or the token's user), and only if the digest
//! matches; the approval itself is re-derived from GitHub all the same.

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::state::RunState;

const PREFIX: &str = "<!-- orchestrator:state ";
/// A state larger than this (encoded) is not carried; the comment says so.
pub const MAX_ENCODED: usize = 24_000;
/// The most a carried state may inflate to.
const MAX_JSON: u64 = 16 * 1024 * 1024;

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The hidden block carrying `state`, or `None` if it is too large to carry.
pub fn block(state: &RunState) -> Option<String> {
    let json = serde_json::to_vec(state).ok()?;
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
    enc.write_all(&json).ok()?;
    let encoded = STANDARD.encode(enc.finish().ok()?);
    (encoded.len() <= MAX_ENCODED).then(|| format!("{PREFIX}{} {encoded} -->", hex(&json)))
}

/// `body` without its state block, for comparing what a reader sees.
pub fn strip(body: &str) -> String {
    body.lines().filter(|l| !l.starts_with(PREFIX)).collect::<Vec<_>>().join("\n")
}

/// The state carried in a comment body, checked against its digest.
pub fn read(body: &str) -> Result<Option<RunState>, String> {
    let Some(start) = body.find(PREFIX).map(|i| i + PREFIX.len()) else { return Ok(None) };
    let end = body[start..].find(" -->").map(|i| i + start).ok_or("the state block is not closed")?;
    let (digest, encoded) = body[start..end].split_once(' ').ok_or("the state block has no digest")?;
    let deflated = STANDARD.decode(encoded.trim()).map_err(|e| format!("the state block is not base64: {e}"))?;
    let mut json = Vec::new();
    DeflateDecoder::new(deflated.as_slice())
        .take(MAX_JSON)
        .read_to_end(&mut json)
        .map_err(|e| format!("the state block does not inflate: {e}"))?;
    if hex(&json) != digest {
        return Err("the state block does not match its digest".into());
    }
    serde_json::from_slice(&json).map(Some).map_err(|e| format!("the carried state is not valid: {e}"))
}

/// The newest state carried by a gate comment among `comments` posted by one of `trusted`
/// (the run's own identities). Anyone else — people, other apps' bots — could forge one.
pub fn newest(comments: &[Value], trusted: &[String]) -> Result<Option<RunState>, String> {
    let carried = comments
        .iter()
        .rev()
        .filter(|c| c["user"]["login"].as_str().is_some_and(|l| trusted.iter().any(|t| t.eq_ignore_ascii_case(l))))
        .filter_map(|c| c["body"].as_str())
        .find(|b| b.contains(PREFIX) && b.contains("<!-- orchestrator:gate "));
    match carried {
        Some(body) => read(body),
        None => Ok(None),
    }
}

/// The state carried by the newest gate comment the run itself posted on the pull request of
/// `ctx`: by `github-actions[bot]` (the workflow's token) or the token's own user.
pub async fn fetch(ctx: &super::context::PrContext) -> Result<Option<RunState>, String> {
    let client = super::client::Client::new(&ctx.api_url, &ctx.token).map_err(|e| e.to_string())?;
    let mut trusted = vec!["github-actions[bot]".to_owned()];
    if let Some(me) = client.get("/user").await.ok().and_then(|u| u["login"].as_str().map(str::to_owned)) {
        trusted.push(me);
    }
    let comments = client
        .get_all(&format!("{}/issues/{}/comments", ctx.repo_path(), ctx.number))
        .await
        .map_err(|e| e.to_string())?;
    newest(&comments, &trusted)
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
        let b = block(&state()).unwrap();
        assert_eq!(read(&format!("text\n{b}\n")).unwrap(), Some(state()));
        let at = PREFIX.len();
        let flipped = if &b[at..at + 1] == "0" { "1" } else { "0" };
        let tampered = format!("{}{flipped}{}", &b[..at], &b[at + 1..]);
        assert!(read(&tampered).is_err());
        assert_eq!(read("no block here").unwrap(), None);
    }

    #[test]
    fn only_the_runs_own_comments_are_trusted() {
        let body = format!("<!-- orchestrator:gate run=r1 phase=plan -->\n{}", block(&state()).unwrap());
        let trusted = ["github-actions[bot]".to_owned()];
        for (login, kind) in [("mallory", "User"), ("dependabot[bot]", "Bot")] {
            let other = serde_json::json!([{"user": {"login": login, "type": kind}, "body": body}]);
            assert_eq!(newest(other.as_array().unwrap(), &trusted).unwrap(), None, "{login}");
        }
        let ours = serde_json::json!([{"user": {"login": "github-actions[bot]", "type": "Bot"}, "body": body}]);
        assert_eq!(newest(ours.as_array().unwrap(), &trusted).unwrap().map(|s| s.run_id), Some("r1".into()));
    }
}
