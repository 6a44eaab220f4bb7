//! LLM agents: a bounded multi-turn conversation with a model API. The model works through tools
//! (`write_file`, `read_file`, `list_files`, and `run_command` where the config allows it); the
//! files it writes are the agent's artifacts. A plain answer may instead carry files as fenced
//! blocks tagged with a path (```` ```rust path=src/main.rs ````).
//!
//! Every request and response is kept under `.claude/agent_outputs/<agent>/<phase>/attempt-N/`
//! (keys are sent in headers and never recorded), the final text in `response.md`.
//! Rate limits (429), overload (529), 5xx and connection errors are transient: the engine retries
//! them under the agent's retry policy, waiting at least as long as `retry-after` asks.

mod anthropic;
mod fenced;
mod openai;
pub(crate) mod tools;

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use super::output::{OutputSink, Redactor};
use super::subprocess::{self, Cancel};
use super::{AttemptContext, AttemptFuture, AttemptReport, Executor};
use crate::config::Provider;
use crate::state::{RefusedArtifact, Usage};

pub(crate) struct ToolDef {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: Value,
}

pub(crate) struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments, or why they could not be read.
    pub input: Result<Value, String>,
}

pub(crate) struct ToolResult {
    pub id: String,
    pub content: String,
    pub is_error: bool,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Stop {
    End,
    ToolUse,
    MaxTokens,
    Other(String),
}

/// One model response, provider-neutral.
pub(crate) struct Turn {
    pub text: String,
    pub calls: Vec<ToolCall>,
    pub stop: Stop,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

pub(crate) struct LlmExecutor;

impl Executor for LlmExecutor {
    fn run<'a>(&'a self, ctx: AttemptContext<'a>) -> AttemptFuture<'a> {
        Box::pin(run(ctx))
    }
}

fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // Another part of the process may have installed a provider already; either is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .user_agent(concat!("orchestrator/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The system prompt when the config gives none.
fn default_system(agent: &str, allow_commands: bool) -> String {
    let commands = if allow_commands { ", run shell commands with `run_command`" } else { "" };
    format!(
        "You are the `{agent}` agent of an orchestrated, phase-gated workflow. You work in a project workspace \
         through tools: write every file you produce with `write_file` (paths relative to the workspace root), \
         read files with `read_file`, look around with `list_files`{commands}. Git's folders (`.git`) and the \
         orchestrator's own files (its config and prompts, the run state, `.claude/consensus/`, `.claude/carried/`) are off \
         limits. When you are done, reply with a short summary of what you did."
    )
}

/// A failure's cause as a sentence, with its source chain.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

enum Sent {
    Response { status: u16, retry_after: Option<Duration>, body: Vec<u8> },
    Timeout,
    Cancelled,
    Failed(String),
}

async fn send(
    url: &str,
    headers: &[(&str, String)],
    body: &Value,
    deadline: Instant,
    cancel: &mut watch::Receiver<Cancel>,
) -> Sent {
    let client = match client() {
        Ok(c) => c,
        Err(e) => return Sent::Failed(e),
    };
    let mut req = client.post(url).json(body).timeout(tools::remaining(deadline));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let exchange = async {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(3600.0)));
        let body = resp.bytes().await?.to_vec();
        Ok::<_, reqwest::Error>((status, retry_after, body))
    };
    tokio::select! {
        r = exchange => match r {
            Ok((status, retry_after, body)) => Sent::Response { status, retry_after, body },
            Err(e) if e.is_timeout() => Sent::Timeout,
            Err(e) => Sent::Failed(describe(&e)),
        },
        _ = tokio::time::sleep_until(deadline) => Sent::Timeout,
        _ = async { if cancel.wait_for(|c| *c != Cancel::None).await.is_err() { std::future::pending::<()>().await } } => Sent::Cancelled,
    }
}

/// One exchange record: write the record `rel` (relative to the workspace `root`), redacted, as the tool's other
/// records are: in its folder's real location, refused unless that is inside the workspace, and
/// replacing the file at its name (a link there, as a pull request can commit, is replaced, not
/// followed; a file with other hard links or a FIFO is not written into). One that is refused is
/// noted in the transcript (`out`), saying why.
fn record(root: &Path, rel: &str, bytes: &[u8], redactor: &Redactor, out: &mut dyn Write) {
    if let Err(e) = crate::report::write_record(root, rel, &redactor.redact(bytes)) {
        let _ = writeln!(out, "=== record not written: {} ===", redactor.redact_str(&e.to_string()));
    }
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// Whether an HTTP status is worth retrying: rate limits, overload, server errors.
fn transient_status(status: u16) -> bool {
    status == 408 || status == 429 || status == 529 || (500..600).contains(&status)
}

async fn run(ctx: AttemptContext<'_>) -> AttemptReport {
    // The engine holds this attempt's slot: it starts now.
    let on_start = ctx.on_start;
    on_start(&mut *ctx.transcript);
    let mut report = AttemptReport::default();
    let Some(spec) = ctx.agent.llm() else {
        report.error = Some("not an LLM agent".into());
        return report;
    };
    let AttemptContext {
        agent,
        prompt,
        records,
        attempt,
        cwd,
        workspace,
        timeout,
        kill_grace,
        transcript,
        redactor,
        mut cancel,
        ..
    } = ctx;
    let Some(prompt) = prompt else {
        report.error = Some(format!("LLM agent `{}` has no prompt template", agent.name));
        return report;
    };
    let records = match records {
        Some(Ok(records)) => records,
        Some(Err(why)) => {
            report.error = Some(format!("LLM agent `{}` cannot keep its records: {why}", agent.name));
            return report;
        }
        None => {
            report.error = Some(format!("LLM agent `{}` has no folder for its records", agent.name));
            return report;
        }
    };
    let key = match &spec.api_key_env {
        Some(var) => match std::env::var(var) {
            Ok(k) if !k.is_empty() => Some(k),
            _ => {
                report.error = Some(format!("the API key variable `{var}` is not set"));
                return report;
            }
        },
        None => None,
    };
    let deadline = Instant::now() + timeout;
    let system = spec.system.clone().unwrap_or_else(|| default_system(&agent.name, spec.allow_commands));
    let tool_defs = tools::definitions(spec.allow_commands);
    let (url, headers) = match spec.provider {
        Provider::Anthropic => (anthropic::url(spec), anthropic::headers(key.as_deref())),
        Provider::OpenAi => (openai::url(spec), openai::headers(key.as_deref())),
    };
    let mut messages = match spec.provider {
        Provider::Anthropic => anthropic::first_messages(prompt),
        Provider::OpenAi => openai::first_messages(&system, prompt),
    };
    let dir = format!("{records}/attempt-{attempt}");
    let mut usage = Usage { input_tokens: Some(0), output_tokens: Some(0), cost_usd: None };
    let mut wrote: Vec<String> = Vec::new();
    let mut finished = false;

    for turn in 1..=spec.max_turns {
        let body = match spec.provider {
            Provider::Anthropic => anthropic::body(spec, &system, &messages, &tool_defs),
            Provider::OpenAi => openai::body(spec, &messages, &tool_defs),
        };
        record(cwd, &format!("{dir}/request-{turn}.json"), &pretty(&body), redactor, transcript);
        let _ = writeln!(transcript, "→ turn {turn}: POST {url} ({}, {} messages)", spec.model, messages.len());
        let (status, retry_after, bytes) = match send(&url, &headers, &body, deadline, &mut cancel).await {
            Sent::Response { status, retry_after, body } => (status, retry_after, body),
            Sent::Timeout => {
                report.timed_out = true;
                break;
            }
            Sent::Cancelled => {
                report.cancelled = true;
                break;
            }
            Sent::Failed(e) => {
                report.error = Some(format!("request to {url} failed: {e}"));
                report.transient = Some("the connection failed".into());
                break;
            }
        };
        record(cwd, &format!("{dir}/response-{turn}.json"), &bytes, redactor, transcript);
        let parsed: Result<Value, _> = serde_json::from_slice(&bytes);
        if !(200..300).contains(&status) {
            let detail = parsed
                .as_ref()
                .ok()
                .and_then(|v| match spec.provider {
                    Provider::Anthropic => anthropic::error_message(v),
                    Provider::OpenAi => openai::error_message(v),
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).trim().to_owned());
            let _ = writeln!(transcript, "← HTTP {status}: {}", redactor.redact_str(&detail));
            report.error = Some(redactor.redact_str(&format!("HTTP {status} from {url}: {detail}")));
            if transient_status(status) {
                report.transient = Some(format!("HTTP {status} is transient"));
                report.retry_after = retry_after;
            }
            break;
        }
        let json = match parsed {
            Ok(v) => v,
            Err(e) => {
                report.error = Some(format!("malformed response from {url} (not JSON: {e})"));
                let _ = writeln!(transcript, "← {}", report.error.as_deref().unwrap_or_default());
                break;
            }
        };
        let parsed = match spec.provider {
            Provider::Anthropic => anthropic::parse(&json),
            Provider::OpenAi => openai::parse(&json),
        };
        let turn_result = match parsed {
            Ok(t) => t,
            Err(e) => {
                report.error = Some(format!("unexpected response from {url}: {e}"));
                let _ = writeln!(transcript, "← {}", report.error.as_deref().unwrap_or_default());
                break;
            }
        };
        usage.input_tokens = usage.input_tokens.map(|n| n + turn_result.input_tokens.unwrap_or(0));
        usage.output_tokens = usage.output_tokens.map(|n| n + turn_result.output_tokens.unwrap_or(0));
        let _ = writeln!(
            transcript,
            "← {status}: {} in / {} out tokens, stop: {:?}, {} tool call(s)",
            turn_result.input_tokens.unwrap_or(0),
            turn_result.output_tokens.unwrap_or(0),
            turn_result.stop,
            turn_result.calls.len()
        );
        if !turn_result.text.is_empty() {
            let _ = writeln!(transcript, "{}", redactor.redact_str(&turn_result.text));
        }
        if !turn_result.calls.is_empty() && turn_result.stop != Stop::MaxTokens {
            let mut results = Vec::new();
            for call in &turn_result.calls {
                let outcome = match &call.input {
                    Err(e) => tools::Outcome {
                        content: format!("invalid arguments: {e}"),
                        is_error: true,
                        ..Default::default()
                    },
                    Ok(input) if call.name == "run_command" && spec.allow_commands => {
                        run_command(input, cwd, deadline, kill_grace, transcript, redactor, &mut cancel).await
                    }
                    Ok(input) => tools::call_file_tool(&call.name, input, workspace),
                };
                let _ = writeln!(
                    transcript,
                    "  tool {}: {}{}",
                    call.name,
                    if outcome.is_error { "error: " } else { "" },
                    redactor.redact_str(outcome.content.lines().next().unwrap_or_default())
                );
                if let Some(path) = &outcome.wrote
                    && !wrote.contains(path)
                {
                    wrote.push(path.clone());
                }
                if let Some((path, reason)) = &outcome.refused {
                    report.refused.push(RefusedArtifact { path: redactor.redact_str(path), reason: reason.clone() });
                }
                results.push(ToolResult { id: call.id.clone(), content: outcome.content, is_error: outcome.is_error });
            }
            match spec.provider {
                Provider::Anthropic => anthropic::append(&mut messages, &json, &results),
                Provider::OpenAi => openai::append(&mut messages, &json, &results),
            }
            if *cancel.borrow() != Cancel::None {
                report.cancelled = true;
                break;
            }
            continue;
        }
        record(cwd, &format!("{records}/response.md"), turn_result.text.as_bytes(), redactor, transcript);
        match turn_result.stop {
            Stop::MaxTokens => {
                report.error = Some(format!("the response was cut off by max_tokens ({})", spec.max_tokens))
            }
            _ => {
                if wrote.is_empty() {
                    for (path, content) in fenced::files(&turn_result.text) {
                        let outcome = tools::call_file_tool(
                            "write_file",
                            &serde_json::json!({"path": path, "content": content}),
                            workspace,
                        );
                        let _ = writeln!(transcript, "  fenced block {path}: {}", outcome.content);
                        if let Some(p) = outcome.wrote {
                            wrote.push(p);
                        }
                        if let Some((path, reason)) = outcome.refused {
                            report.refused.push(RefusedArtifact { path, reason });
                        }
                    }
                }
                report.exit_code = Some(0);
            }
        }
        finished = true;
        break;
    }
    if !finished && report.error.is_none() && !report.timed_out && !report.cancelled {
        report.error = Some(format!("no final answer within max_turns ({})", spec.max_turns));
    }
    let _ = transcript.flush();
    if let Some(p) = spec.prices {
        let cost = usage.input_tokens.unwrap_or(0) as f64 / 1e6 * p.input_per_mtok
            + usage.output_tokens.unwrap_or(0) as f64 / 1e6 * p.output_per_mtok;
        usage.cost_usd = Some(cost);
    }
    report.usage = Some(usage);
    report.artifacts = wrote;
    report
}

/// The `run_command` tool: the same process-group supervision as subprocess agents, with the
/// command's output in the transcript and its tail returned to the model.
async fn run_command(
    input: &Value,
    cwd: &Path,
    deadline: Instant,
    kill_grace: Duration,
    transcript: &mut std::io::BufWriter<std::fs::File>,
    redactor: &Redactor,
    cancel: &mut watch::Receiver<Cancel>,
) -> tools::Outcome {
    let Some(command) = input.get("command").and_then(Value::as_str) else {
        return tools::Outcome {
            content: "missing string argument `command`".into(),
            is_error: true,
            ..Default::default()
        };
    };
    let _ = writeln!(transcript, "  $ {}", redactor.redact_str(command));
    let mut sink = OutputSink::new(transcript, redactor, &[]);
    let req = subprocess::SubprocessRequest {
        command,
        cwd,
        env: &[],
        timeout: tools::remaining(deadline),
        kill_grace,
        retry: false,
    };
    let out = subprocess::run(&req, &mut sink, cancel, |_, _| {}).await;
    sink.finish();
    let tail = sink.tail();
    let status = if out.timed_out {
        "timed out".to_owned()
    } else if let Some(e) = out.spawn_error {
        e
    } else {
        format!(
            "exit code {}",
            out.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "none (killed by a signal)".into())
        )
    };
    let keep = tail.len().saturating_sub(8 * 1024);
    let start = (keep..tail.len()).find(|i| tail.is_char_boundary(*i)).unwrap_or(tail.len());
    tools::Outcome {
        content: format!("{status}\n{}", &tail[start..]),
        is_error: out.exit_code != Some(0),
        ..Default::default()
    }
}
