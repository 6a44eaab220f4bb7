//! Executors run one attempt of one agent. The engine decides what to run, how often and when;
//! an executor only runs it and reports what happened.

pub mod output;
pub mod subprocess;

use std::fs::File;
use std::future::Future;
use std::io::BufWriter;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Agent, AgentKind};
pub use output::{Redactor, TAIL_BYTES};
pub use subprocess::Cancel;

/// Everything an attempt needs.
pub struct AttemptContext<'a> {
    /// The shell command (for subprocess agents).
    pub command: &'a str,
    pub cwd: &'a Path,
    pub env: &'a [(String, String)],
    pub timeout: Duration,
    pub kill_grace: Duration,
    /// Retryable messages, lowercased.
    pub messages: &'a [String],
    pub transcript: &'a mut BufWriter<File>,
    pub redactor: &'a Redactor,
    pub cancel: watch::Receiver<Cancel>,
    /// Called with the process group id once the agent is running.
    pub on_spawn: Box<dyn FnOnce(i32) + Send + 'a>,
}

/// What one attempt did.
#[derive(Debug, Default)]
pub struct AttemptReport {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub leaked_output: bool,
    /// The attempt could not run or be recorded (not the agent's own failure).
    pub error: Option<String>,
    /// Paths the agent reported, as written.
    pub artifacts: Vec<String>,
    pub matched_message: Option<String>,
    /// The last bytes of output, redacted.
    pub tail: String,
    pub output_bytes: u64,
}

pub type AttemptFuture<'a> = Pin<Box<dyn Future<Output = AttemptReport> + Send + 'a>>;

/// Runs attempts of one kind of agent.
pub trait Executor: Send + Sync {
    fn run<'a>(&'a self, ctx: AttemptContext<'a>) -> AttemptFuture<'a>;
}

/// Runs shell commands: see [`subprocess`].
pub struct SubprocessExecutor;

impl Executor for SubprocessExecutor {
    fn run<'a>(&'a self, ctx: AttemptContext<'a>) -> AttemptFuture<'a> {
        Box::pin(async move {
            let AttemptContext {
                command,
                cwd,
                env,
                timeout,
                kill_grace,
                messages,
                transcript,
                redactor,
                mut cancel,
                on_spawn,
            } = ctx;
            let mut sink = output::OutputSink::new(transcript, redactor, messages);
            let req = subprocess::SubprocessRequest { command, cwd, env, timeout, kill_grace };
            let out = subprocess::run(&req, &mut sink, &mut cancel, on_spawn).await;
            sink.finish();
            let error = out
                .spawn_error
                .or_else(|| sink.write_error.as_ref().map(|e| format!("could not write the transcript: {e}")));
            AttemptReport {
                exit_code: out.exit_code,
                signal: out.signal,
                timed_out: out.timed_out,
                cancelled: out.cancelled,
                leaked_output: out.leaked_output,
                error,
                artifacts: std::mem::take(&mut sink.artifacts),
                matched_message: sink.matched_message.take(),
                tail: sink.tail(),
                output_bytes: sink.bytes,
            }
        })
    }
}

/// The executor for `agent`.
pub fn for_agent(agent: &Agent) -> &'static dyn Executor {
    match agent.kind {
        AgentKind::Subprocess { .. } => &SubprocessExecutor,
    }
}
