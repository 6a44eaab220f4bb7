//! Carrying the run state to a fresh runner. A gate in `wait: event` mode ends its workflow run;
//! the reviewer's label starts a new one on a machine without `.claude/orchestrator_state.json`.
//! The gate comment therefore carries the state in a hidden block: JSON, deflated, base64, with
//! its sha256. A resume restores it only when there is no local state, only from a comment
//! posted by a bot (the workflow's own token), and only if the digest matches; the approval
//! itself is re-derived from GitHub all the same.

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

/// The newest state carried by a bot-authored gate comment among `comments`.
pub fn newest(comments: &[Value]) -> Result<Option<RunState>, String> {
    let carried = comments
        .iter()
        .rev()
        .filter(|c| c["user"]["type"] == "Bot")
        .filter_map(|c| c["body"].as_str())
        .find(|b| b.contains(PREFIX) && b.contains("<!-- orchestrator:gate "));
    match carried {
        Some(body) => read(body),
        None => Ok(None),
    }
}

/// The state carried by the newest bot-authored gate comment on the pull request of `ctx`.
pub async fn fetch(ctx: &super::context::PrContext) -> Result<Option<RunState>, String> {
    let client = super::client::Client::new(&ctx.api_url, &ctx.token).map_err(|e| e.to_string())?;
    let comments = client
        .get_all(&format!("{}/issues/{}/comments", ctx.repo_path(), ctx.number))
        .await
        .map_err(|e| e.to_string())?;
    newest(&comments)
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
    fn only_bot_comments_are_trusted() {
        let body = format!("<!-- orchestrator:gate run=r1 phase=plan -->\n{}", block(&state()).unwrap());
        let human = serde_json::json!([{"user": {"login": "mallory", "type": "User"}, "body": body}]);
        assert_eq!(newest(human.as_array().unwrap()).unwrap(), None);
        let bot = serde_json::json!([{"user": {"login": "github-actions[bot]", "type": "Bot"}, "body": body}]);
        assert_eq!(newest(bot.as_array().unwrap()).unwrap().map(|s| s.run_id), Some("r1".into()));
    }
}
