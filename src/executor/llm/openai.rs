//! OpenAI chat completions: `POST {base_url}/chat/completions` with a bearer token. Also spoken
//! by vLLM, Ollama, llama.cpp's server and OpenRouter.

use serde_json::{Value, json};

use super::{Stop, ToolCall, ToolDef, ToolResult, Turn};
use crate::config::LlmSpec;

pub(super) fn url(spec: &LlmSpec) -> String {
    format!("{}/chat/completions", spec.base_url)
}

pub(super) fn headers(key: Option<&str>) -> Vec<(&'static str, String)> {
    key.map(|k| vec![("authorization", format!("Bearer {k}"))]).unwrap_or_default()
}

pub(super) fn first_messages(system: &str, prompt: &str) -> Vec<Value> {
    vec![json!({"role": "system", "content": system}), json!({"role": "user", "content": prompt})]
}

pub(super) fn body(spec: &LlmSpec, messages: &[Value], tools: &[ToolDef]) -> Value {
    let mut b = json!({
        "model": spec.model,
        "max_tokens": spec.max_tokens,
        "messages": messages,
        "tools": tools.iter().map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.schema}})).collect::<Vec<_>>(),
    });
    if let Some(t) = spec.temperature {
        b["temperature"] = json!(t);
    }
    b
}

pub(super) fn parse(v: &Value) -> Result<Turn, String> {
    if let Some(m) = error_message(v) {
        return Err(m);
    }
    let choice = v["choices"].get(0).ok_or("the response has no `choices`")?;
    let message = &choice["message"];
    let mut calls = Vec::new();
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
        calls.push(ToolCall {
            id: call["id"].as_str().ok_or("a tool call has no `id`")?.to_owned(),
            name: call["function"]["name"].as_str().unwrap_or_default().to_owned(),
            input: serde_json::from_str(arguments).map_err(|e| format!("the arguments are not JSON: {e}")),
        });
    }
    let stop = match choice["finish_reason"].as_str() {
        Some("stop") => Stop::End,
        Some("tool_calls" | "function_call") => Stop::ToolUse,
        Some("length") => Stop::MaxTokens,
        Some(other) => Stop::Other(other.to_owned()),
        // Some compatible servers omit it; tool calls speak for themselves.
        None if !calls.is_empty() => Stop::ToolUse,
        None => Stop::End,
    };
    Ok(Turn {
        text: message["content"].as_str().unwrap_or_default().to_owned(),
        calls,
        stop,
        input_tokens: v["usage"]["prompt_tokens"].as_u64(),
        output_tokens: v["usage"]["completion_tokens"].as_u64(),
    })
}

pub(super) fn append(messages: &mut Vec<Value>, response: &Value, results: &[ToolResult]) {
    let mut message = response["choices"][0]["message"].clone();
    message["role"] = json!("assistant");
    messages.push(message);
    for r in results {
        messages.push(json!({"role": "tool", "tool_call_id": r.id, "content": r.content}));
    }
}

pub(super) fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    Some(match e {
        Value::String(s) => s.clone(),
        _ => e["message"].as_str().unwrap_or("error response").to_owned(),
    })
}
