//! A local HTTP server standing in for a model API: real HTTP on 127.0.0.1, scripted replies in
//! order, every request recorded (method, path, headers, body).

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Reply {
    pub(crate) fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply { status, body: body.to_string(), headers: vec![], delay: Duration::ZERO }
    }

    pub(crate) fn raw(status: u16, body: &str) -> Reply {
        Reply { status, body: body.to_owned(), headers: vec![], delay: Duration::ZERO }
    }

    pub(crate) fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    pub(crate) fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub(crate) struct FakeApi {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeApi {
    pub(crate) fn start(replies: Vec<Reply>) -> FakeApi {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut replies = replies.into_iter();
            for mut req in server.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                log.lock().unwrap().push(Seen {
                    method: req.method().to_string(),
                    path: req.url().to_owned(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string().to_lowercase(), h.value.to_string()))
                        .collect(),
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                });
                let reply = replies.next().unwrap_or_else(|| Reply::raw(500, "no more scripted replies"));
                std::thread::sleep(reply.delay);
                let mut resp = tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
                resp.add_header(tiny_http::Header::from_bytes("content-type", "application/json").unwrap());
                for (k, v) in reply.headers {
                    resp.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
                }
                let _ = req.respond(resp);
            }
        });
        FakeApi { url: format!("http://127.0.0.1:{port}"), seen }
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// An Anthropic Messages API response with text.
pub(crate) fn anthropic_text(text: &str, stop: &str) -> Reply {
    Reply::json(
        200,
        serde_json::json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop, "usage": {"input_tokens": 100, "output_tokens": 20}
        }),
    )
}

/// An Anthropic Messages API response asking for tool calls: (id, name, input).
pub(crate) fn anthropic_tools(calls: &[(&str, &str, serde_json::Value)]) -> Reply {
    let mut content = vec![serde_json::json!({"type": "text", "text": "Working on it."})];
    content.extend(
        calls
            .iter()
            .map(|(id, name, input)| serde_json::json!({"type": "tool_use", "id": id, "name": name, "input": input})),
    );
    Reply::json(
        200,
        serde_json::json!({
            "id": "msg_02", "type": "message", "role": "assistant", "model": "claude-test",
            "content": content, "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 30}
        }),
    )
}

pub(crate) fn anthropic_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(status, serde_json::json!({"type": "error", "error": {"type": kind, "message": message}}))
}

/// An OpenAI chat completion with text.
pub(crate) fn openai_text(text: &str) -> Reply {
    Reply::json(
        200,
        serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48}
        }),
    )
}

/// An OpenAI chat completion asking for tool calls: (id, name, arguments).
pub(crate) fn openai_tools(calls: &[(&str, &str, serde_json::Value)]) -> Reply {
    let calls: Vec<serde_json::Value> = calls
        .iter()
        .map(|(id, name, args)| serde_json::json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
        .collect();
    Reply::json(
        200,
        serde_json::json!({
            "id": "chatcmpl-2", "object": "chat.completion", "model": "gpt-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
        }),
    )
}
