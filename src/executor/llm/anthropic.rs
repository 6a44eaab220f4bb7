//! The Anthropic Messages API: `POST {base_url}/v1/messages` with `x-api-key` and
//! `anthropic-version`; content blocks in, content blocks out.

use serde_json::{Value, json};

use super::{Stop, ToolCall, ToolDef, ToolResult, Turn};
use crate::config::LlmSpec;

pub(super) const VERSION: &str = "2023-06-01";

pub(super) fn url(spec: &LlmSpec) -> String {
    format!("{}/v1/messages", spec.base_url)
}

pub(super) fn headers(key: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![("anthropic-version", VERSION.to_owned())];
    if let Some(k) = key {
        h.push(("x-api-key", k.to_owned()));
    }
    h
}

pub(super) fn first_messages(prompt: &str) -> Vec<Value> {
    vec![json!({"role": "user", "content": prompt})]
}

pub(super) fn body(spec: &LlmSpec, system: &str, messages: &[Value], tools: &[ToolDef]) -> Value {
    let mut b = json!({
        "model": spec.model,
        "max_tokens": spec.max_tokens,
        "system": system,
        "messages": messages,
        "tools": tools.iter().map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.schema})).collect::<Vec<_>>(),
    });
    if let Some(t) = spec.temperature {
        b["temperature"] = json!(t);
    }
    b
}

pub(super) fn parse(v: &Value) -> Result<Turn, String> {
    if v["type"] == "error" {
        return Err(v["error"]["message"].as_str().unwrap_or("error response").to_owned());
    }
    let content = v["content"].as_array().ok_or("the response has no `content` array")?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in content {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(ToolCall {
                id: block["id"].as_str().ok_or("a `tool_use` block has no `id`")?.to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                input: Ok(block["input"].clone()),
            }),
            _ => {}
        }
    }
    let stop = match v["stop_reason"].as_str() {
        Some("end_turn" | "stop_sequence") => Stop::End,
        Some("tool_use") => Stop::ToolUse,
        Some("max_tokens") => Stop::MaxTokens,
        Some(other) => Stop::Other(other.to_owned()),
        None => Stop::Other("missing stop_reason".into()),
    };
    Ok(Turn {
        text,
        calls,
        stop,
        input_tokens: v["usage"]["input_tokens"].as_u64(),
        output_tokens: v["usage"]["output_tokens"].as_u64(),
    })
}

/// Append the assistant's turn and the results of its tool calls.
pub(super) fn append(messages: &mut Vec<Value>, response: &Value, results: &[ToolResult]) {
    messages.push(json!({"role": "assistant", "content": response["content"]}));
    let blocks: Vec<Value> = results
        .iter()
        .map(|r| json!({"type": "tool_result", "tool_use_id": r.id, "content": r.content, "is_error": r.is_error}))
        .collect();
    messages.push(json!({"role": "user", "content": blocks}));
}

/// The error message in an error response body.
pub(super) fn error_message(v: &Value) -> Option<String> {
    v["error"]["message"].as_str().map(|m| match v["error"]["type"].as_str() {
        Some(t) => format!("{t}: {m}"),
        None => m.to_owned(),
    })
}
