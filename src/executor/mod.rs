//! Executors run one attempt of one agent. The engine decides what to run, how often and when;
//! an executor only runs it and reports what happened.

pub(crate) mod cli_usage;
pub(crate) mod escapees;
pub(crate) mod groups;
pub(crate) mod launcher;
pub(crate) mod llm;
pub(crate) mod output;
pub(crate) mod redact;
pub(crate) mod subprocess;

use std::fs::File;
use std::future::Future;
use std::io::BufWriter;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Agent, AgentKind};
use crate::state::{RefusedArtifact, Usage};
pub(crate) use output::{Redacting, Redactor};
pub(crate) use subprocess::Cancel;

/// Everything an attempt needs.
pub(crate) struct AttemptContext<'a> {
    pub agent: &'a Agent,
    /// The shell command (for subprocess agents).
    pub command: &'a str,
    /// The rendered prompt, if the agent has a template (LLM agents always do).
    pub prompt: Option<&'a str>,
    /// `.claude/agent_outputs/<agent>/<phase>`, relative to the workspace, for the agent's own
    /// records (LLM agents only), or why it was refused.
    pub records: Option<Result<&'a str, &'a str>>,
    /// 1-based attempt number within this run of the agent.
    pub attempt: u32,
    /// The workspace.
    pub cwd: &'a Path,
    /// Where the agent's file tools may read and write (LLM agents).
    pub workspace: &'a crate::workspace::Confinement,
    pub env: &'a [(String, String)],
    pub timeout: Duration,
    pub kill_grace: Duration,
    /// Retryable messages, lowercased.
    pub messages: &'a [String],
    pub transcript: &'a mut BufWriter<File>,
    pub redactor: &'a Redactor,
    pub cancel: watch::Receiver<Cancel>,
    /// The run's slots, for an executor that takes its own ([`Executor::takes_own_slot`]).
    pub slots: Option<&'a std::sync::Arc<tokio::sync::Semaphore>>,
    /// Called once the attempt starts (it has its slot), before anything else is written to the
    /// transcript it is given. An attempt that never starts (the run was cancelled while it waited
    /// for a slot) does not call it.
    pub on_start: OnStart<'a>,
    /// Called with the process group id once a subprocess agent is running, and its leader's
    /// stamp (see `groups`) where this system can tell.
    pub on_spawn: Box<dyn FnOnce(i32, Option<crate::state::GroupStamp>) + Send + 'a>,
}

/// Writes an attempt's header when it starts (see [`AttemptContext::on_start`]).
pub(crate) type OnStart<'a> = Box<dyn FnOnce(&mut BufWriter<File>) + Send + 'a>;

/// What one attempt did.
#[derive(Debug, Default)]
pub(crate) struct AttemptReport {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub leaked_output: bool,
    /// The attempt failed for a reason other than an exit code: a sentence saying why.
    pub error: Option<String>,
    /// Paths the agent reported or wrote, as given.
    pub artifacts: Vec<String>,
    pub matched_message: Option<String>,
    /// The last bytes of output, redacted.
    pub tail: String,
    /// Set when the failure is transient (rate limit, overload, 5xx, connection): why to retry.
    pub transient: Option<String>,
    /// How long the server asked us to wait before retrying.
    pub retry_after: Option<Duration>,
    pub usage: Option<Usage>,
    /// Paths the agent tried to write that were refused.
    pub refused: Vec<RefusedArtifact>,
}

pub(crate) type AttemptFuture<'a> = Pin<Box<dyn Future<Output = AttemptReport> + Send + 'a>>;

/// Runs attempts of one kind of agent.
pub(crate) trait Executor: Send + Sync {
    fn run<'a>(&'a self, ctx: AttemptContext<'a>) -> AttemptFuture<'a>;

    /// Whether it waits for a slot of [`AttemptContext::slots`] itself. Otherwise the engine holds
    /// one for it during each attempt.
    fn takes_own_slot(&self) -> bool {
        false
    }
}

/// Runs shell commands: see [`subprocess`].
pub(crate) struct SubprocessExecutor;

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
                slots,
                on_start,
                on_spawn,
                attempt,
                ..
            } = ctx;
            let req = subprocess::SubprocessRequest { command, cwd, env, timeout, kill_grace, retry: attempt > 1 };
            // Started by a launcher thread, which hands its slot straight to the next agent in line
            // when this one exits (see `launcher`).
            let agent = match subprocess::launch(&req, slots, &cancel).await {
                Ok(agent) => agent,
                Err(out) if out.cancelled => return AttemptReport { cancelled: true, ..AttemptReport::default() },
                Err(out) => {
                    on_start(transcript);
                    return AttemptReport { error: out.spawn_error, ..AttemptReport::default() };
                }
            };
            on_start(transcript);
            on_spawn(agent.pid(), agent.stamp());
            let mut sink = output::OutputSink::new(transcript, redactor, messages);
            let out = subprocess::supervise(agent, &req, &mut sink, &mut cancel).await;
            sink.finish();
            let error = out
                .spawn_error
                .or_else(|| sink.write_error.as_ref().map(|e| format!("could not write the transcript: {e}")));
            let tail = sink.tail();
            AttemptReport {
                exit_code: out.exit_code,
                signal: out.signal,
                timed_out: out.timed_out,
                cancelled: out.cancelled,
                leaked_output: out.leaked_output,
                error,
                artifacts: std::mem::take(&mut sink.artifacts),
                matched_message: sink.matched_message.take(),
                usage: cli_usage::from_tail(&tail),
                tail,
                ..AttemptReport::default()
            }
        })
    }

    fn takes_own_slot(&self) -> bool {
        true
    }
}

/// The executor for `agent`.
pub(crate) fn for_agent(agent: &Agent) -> &'static dyn Executor {
    match agent.kind {
        AgentKind::Subprocess { .. } => &SubprocessExecutor,
        AgentKind::Llm(_) => &llm::LlmExecutor,
    }
}
