//! Token usage and cost printed by CLI coding agents run as subprocesses, read from the end of
//! their output:
//!
//! - Claude Code (`claude -p … --output-format json`): one final JSON object with
//!   `total_cost_usd` and `usage.{input_tokens, output_tokens}`.
//! - OpenAI Codex CLI (`codex exec --json …`): JSON lines; each `turn.completed` event carries
//!   `usage.{input_tokens, output_tokens}`, summed here.

use serde_json::Value;

use crate::state::Usage;

fn tokens(usage: &Value, key: &str) -> Option<u64> {
    usage.get(key).and_then(Value::as_u64)
}

/// Usage found in the last lines of an agent's output, if any.
pub(crate) fn from_tail(tail: &str) -> Option<Usage> {
    let objects: Vec<Value> = tail
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .collect();
    // Codex: sum the completed turns.
    let turns: Vec<&Value> =
        objects.iter().filter(|o| o["type"] == "turn.completed").filter_map(|o| o.get("usage")).collect();
    if !turns.is_empty() {
        return Some(Usage {
            input_tokens: Some(turns.iter().filter_map(|u| tokens(u, "input_tokens")).sum()),
            output_tokens: Some(turns.iter().filter_map(|u| tokens(u, "output_tokens")).sum()),
            cost_usd: None,
        });
    }
    // Claude Code: the last object that reports usage or cost.
    let last = objects
        .iter()
        .rev()
        .find(|o| o.get("total_cost_usd").is_some() || o.get("usage").is_some_and(Value::is_object))?;
    let usage = last.get("usage");
    Some(Usage {
        input_tokens: usage.and_then(|u| tokens(u, "input_tokens")),
        output_tokens: usage.and_then(|u| tokens(u, "output_tokens")),
        cost_usd: last.get("total_cost_usd").and_then(Value::as_f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_claude_code_result_object() {
        let tail = "working…\n{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"done\",\"total_cost_usd\":0.0123,\"usage\":{\"input_tokens\":1200,\"output_tokens\":340}}\n";
        assert_eq!(
            from_tail(tail),
            Some(Usage { input_tokens: Some(1200), output_tokens: Some(340), cost_usd: Some(0.0123) })
        );
    }

    #[test]
    fn sums_codex_turns() {
        let tail = "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":10,\"cached_input_tokens\":2,\"output_tokens\":5}}\n{\"type\":\"item.completed\"}\n{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":7,\"output_tokens\":3}}\n";
        assert_eq!(from_tail(tail), Some(Usage { input_tokens: Some(17), output_tokens: Some(8), cost_usd: None }));
    }

    #[test]
    fn plain_output_has_no_usage() {
        assert_eq!(from_tail("hello\n{not json}\n"), None);
    }
}
