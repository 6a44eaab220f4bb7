//! Running one attempt of a shell-command agent under supervision.
//!
//! The agent runs as `sh -c <command>` in its own process group. Its output is streamed into an
//! [`OutputSink`] as it arrives. On timeout or cancellation the whole group gets SIGTERM, then
//! SIGKILL after the grace period. When the agent exits, anything left in its group is killed, and
//! children that keep its output open are reported as a leak.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, ChildStdout};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::launcher;
use super::output::{OutputSink, Stream};

/// How far a run has been asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cancel {
    None,
    /// SIGTERM to every agent's group, SIGKILL after the grace period.
    Graceful,
    /// SIGKILL at once.
    Immediate,
}

/// Bytes read from a pipe at a time. Small enough that the common quiet agent costs little to
/// set up; a loud one is limited by the pipe (64 KiB on Linux), not by this.
const READ_CHUNK: usize = 16 * 1024;
/// How long an exited agent's children may keep its output open before their group is killed.
const LEAK_GRACE: Duration = Duration::from_millis(500);
/// How long to keep reading after that kill (a process that left the group may hold the pipe).
const ABANDON_AFTER: Duration = Duration::from_secs(2);

pub(crate) struct SubprocessRequest<'a> {
    pub command: &'a str,
    pub cwd: &'a Path,
    pub env: &'a [(String, String)],
    pub timeout: Duration,
    pub kill_grace: Duration,
    /// A retry: it goes first in the line for a slot (see `launcher::Turn`).
    pub retry: bool,
}

#[derive(Debug, Default)]
pub(crate) struct SubprocessOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub leaked_output: bool,
    /// The agent could not be started.
    pub spawn_error: Option<String>,
}

/// Variables a GitHub runner gives a step that an agent must not have: the files through which
/// a step sets outputs, environment, PATH, state and the job summary (an agent appending to them
/// would speak for the tool), and the tokens and endpoints of the runner's services (caches,
/// artifacts, OIDC tokens). Removed from every agent's environment, whatever else it inherits.
pub(crate) const RUNNER_ONLY_VARS: [&str; 11] = [
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_PATH",
    "GITHUB_STATE",
    "GITHUB_STEP_SUMMARY",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_RUNTIME_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_CACHE_URL",
    "ACTIONS_RESULTS_URL",
];

/// The run's own GitHub token: with it an agent could act as the run (post or edit the gate
/// comment, mark its rounds). An agent that needs GitHub gets a token of another identity under
/// another name (`env:` of the workflow step), which the gate never trusts as its own.
pub(crate) const RUN_TOKEN_VARS: [&str; 2] = ["GITHUB_TOKEN", "GH_TOKEN"];

/// The environment agents inherit: this process's, without [`RUNNER_ONLY_VARS`] and
/// [`RUN_TOKEN_VARS`]. Read once (nothing in this process changes its environment), so a spawn
/// does not copy the whole environment again to take those out.
fn inherited() -> &'static [(std::ffi::OsString, std::ffi::OsString)] {
    static INHERITED: std::sync::OnceLock<Vec<(std::ffi::OsString, std::ffi::OsString)>> = std::sync::OnceLock::new();
    INHERITED.get_or_init(|| {
        std::env::vars_os()
            .filter(|(k, _)| !RUNNER_ONLY_VARS.iter().chain(&RUN_TOKEN_VARS).any(|v| k.as_os_str() == *v))
            .collect()
    })
}

/// The shell agents run in: `/bin/sh` (found without a PATH search on every spawn), else `sh`.
fn shell() -> &'static str {
    static SHELL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    SHELL.get_or_init(|| if Path::new("/bin/sh").exists() { "/bin/sh" } else { "sh" })
}

/// Standard input for agents: a duplicate of one `/dev/null` handle (a `dup` per spawn rather
/// than an `open`).
fn dev_null() -> Stdio {
    static NULL: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    NULL.get_or_init(|| std::fs::File::open("/dev/null").ok())
        .as_ref()
        .and_then(|f| f.try_clone().ok())
        .map(Stdio::from)
        .unwrap_or_else(Stdio::null)
}

/// Send `signal` to the process group `pgid`, ignoring a group that is already gone.
pub(crate) fn signal_group(pgid: i32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// Whether any process of group `pgid` is still alive.
pub(crate) fn group_alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// Run one command within a slot already held (an LLM agent's tool call): [`launch`], then
/// [`supervise`]. `on_spawn` receives the process group id as soon as it has started.
pub(crate) async fn run(
    req: &SubprocessRequest<'_>,
    sink: &mut OutputSink<'_>,
    cancel: &mut watch::Receiver<Cancel>,
    on_spawn: impl FnOnce(i32, Option<crate::state::GroupStamp>),
) -> SubprocessOutcome {
    match launch(req, None, cancel).await {
        Ok(agent) => {
            on_spawn(agent.pid(), agent.stamp());
            supervise(agent, req, sink, cancel).await
        }
        Err(outcome) => outcome,
    }
}

/// An agent that was started, to [`supervise`].
pub(crate) struct Launched {
    started: launcher::Started,
    mark: String,
}

impl Launched {
    /// Its process id, which is its process group's id.
    pub(crate) fn pid(&self) -> i32 {
        self.started.pid
    }

    pub(crate) fn stamp(&self) -> Option<crate::state::GroupStamp> {
        self.started.stamp.clone()
    }
}

/// Start the command as `sh -c` in a process group of its own, under a slot of `slots` (at once
/// without), unless the run is cancelled first. The outcome says why it did not start.
pub(crate) async fn launch(
    req: &SubprocessRequest<'_>,
    slots: Option<&std::sync::Arc<tokio::sync::Semaphore>>,
    cancel: &watch::Receiver<Cancel>,
) -> Result<Launched, SubprocessOutcome> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(shell());
    cmd.arg("-c")
        .arg(req.command)
        .current_dir(req.cwd)
        .env_clear()
        .envs(inherited().iter().map(|(k, v)| (k, v)))
        .envs(req.env.iter().map(|(k, v)| (k, v)))
        .stdin(dev_null())
        .process_group(0);
    // Inherited by everything the agent starts, wherever it goes (see `escapees`).
    let phase = req.env.iter().find(|(k, _)| k == "ORCHESTRATOR_PHASE").map(|(_, v)| v.as_str()).unwrap_or_default();
    let mark = super::escapees::new_mark(phase);
    cmd.env(super::escapees::MARK, &mark);
    match launcher::launch(cmd, slots, cancel, launcher::Turn { group: phase, retry: req.retry }).await {
        launcher::Launch::Started(started) => Ok(Launched { started, mark }),
        launcher::Launch::Failed(message) => {
            Err(SubprocessOutcome { spawn_error: Some(message), ..Default::default() })
        }
        launcher::Launch::Cancelled => Err(SubprocessOutcome { cancelled: true, ..Default::default() }),
    }
}

/// Stream the started agent's output into `sink` until it and its output are done, under its
/// timeout and the run's cancellation; then make sure nothing of its group is left.
pub(crate) async fn supervise(
    agent: Launched,
    req: &SubprocessRequest<'_>,
    sink: &mut OutputSink<'_>,
    cancel: &mut watch::Receiver<Cancel>,
) -> SubprocessOutcome {
    let Launched { started, mark } = agent;
    let launcher::Pipes { stdout, stderr, mut held } = started.pipes;
    let pgid = started.pid;
    let group = started.group;
    let mut exited = started.exited;
    // The agent's slot, if its thread left it with the agent (its group outlived it): handed on
    // to the next in line when this returns.
    let mut _slot = launcher::Slot::default();
    let mut outcome = SubprocessOutcome::default();
    let (mut stdout, mut stderr) = match (ChildStdout::from_std(stdout), ChildStderr::from_std(stderr)) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            // Not supervised, so not left running.
            group.signal(Signal::SIGKILL);
            let ended = launcher::exit_of(pgid, exited.await).await;
            // Its slot (dropped last) goes on once nothing of the group is left.
            let _slot = launcher::Slot::from(ended.slot);
            group.signal(Signal::SIGKILL);
            let exit = ended.exit;
            outcome.exit_code = exit.code;
            outcome.signal = exit.signal;
            outcome.spawn_error = Some(format!("cannot read the agent's output: {e}"));
            return outcome;
        }
    };
    let far = Instant::now() + Duration::from_secs(86400 * 365);
    let deadline = Instant::now() + req.timeout;
    let mut kill_at = far;
    let mut leak_at = far;
    let mut abandon_at = far;
    let (mut out_open, mut err_open, mut cancel_open) = (true, true, true);
    let mut status: Option<launcher::Exit> = None;
    // Read into spare capacity: nothing is zeroed, and pages are touched only as output arrives.
    let mut buf_out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut buf_err: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // The run may have been cancelled while the agent was being started.
    let asked = *cancel.borrow_and_update();
    stop_for(asked, &group, &mark, req.kill_grace, &mut outcome, &mut kill_at);

    loop {
        if status.is_some() && !out_open && !err_open {
            break;
        }
        tokio::select! {
            r = stdout.read_buf(&mut buf_out), if out_open => match r {
                Ok(0) | Err(_) => out_open = false,
                Ok(_) => {
                    sink.feed(Stream::Stdout, &buf_out);
                    buf_out.clear();
                }
            },
            r = stderr.read_buf(&mut buf_err), if err_open => match r {
                Ok(0) | Err(_) => err_open = false,
                Ok(_) => {
                    sink.feed(Stream::Stderr, &buf_err);
                    buf_err.clear();
                }
            },
            e = &mut exited, if status.is_none() => {
                let ended = launcher::exit_of(pgid, e).await;
                // The pipes close once nothing of the agent's holds them.
                drop(held.take());
                status = Some(ended.exit);
                _slot = ended.slot.into();
                leak_at = Instant::now() + LEAK_GRACE;
            },
            _ = sleep_until(deadline), if status.is_none() && !outcome.timed_out && !outcome.cancelled => {
                outcome.timed_out = true;
                group.signal(Signal::SIGTERM);
                kill_at = Instant::now() + req.kill_grace;
            },
            _ = sleep_until(kill_at), if kill_at != far => {
                group.signal(Signal::SIGKILL);
                super::escapees::kill_marked(&mark, false);
                kill_at = far;
            },
            _ = sleep_until(leak_at), if leak_at != far => {
                // The agent is gone but something it started still holds its output.
                outcome.leaked_output = true;
                group.signal(Signal::SIGKILL);
                super::escapees::kill_marked(&mark, false);
                leak_at = far;
                abandon_at = Instant::now() + ABANDON_AFTER;
            },
            _ = sleep_until(abandon_at), if abandon_at != far => break,
            changed = cancel.changed(), if cancel_open => match changed {
                Err(_) => cancel_open = false,
                Ok(()) => {
                    let asked = *cancel.borrow_and_update();
                    stop_for(asked, &group, &mark, req.kill_grace, &mut outcome, &mut kill_at);
                }
            },
        }
    }
    // Background processes that closed their output are still part of the agent: stop them too.
    if group.alive() {
        group.signal(Signal::SIGTERM);
        let until = std::time::Instant::now() + req.kill_grace.min(Duration::from_secs(2));
        while group.alive() && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        group.signal(Signal::SIGKILL);
    }
    if outcome.timed_out || outcome.cancelled {
        // Whatever left the group must not outlive the attempt either.
        super::escapees::kill_marked(&mark, false);
    }
    if status.is_none() {
        let ended = launcher::exit_of(pgid, exited.await).await;
        status = Some(ended.exit);
        _slot = ended.slot.into();
        // Whatever is left of the group goes before the slot does.
        group.signal(Signal::SIGKILL);
    }
    if let Some(s) = status {
        outcome.exit_code = s.code;
        outcome.signal = s.signal;
    }
    outcome
}

/// What the run's cancellation asks of a running agent: SIGTERM with the grace period before
/// SIGKILL, or SIGKILL at once (and whatever left its group).
fn stop_for(
    asked: Cancel,
    group: &launcher::Group,
    mark: &str,
    grace: Duration,
    outcome: &mut SubprocessOutcome,
    kill_at: &mut Instant,
) {
    match asked {
        Cancel::None => {}
        Cancel::Graceful => {
            outcome.cancelled = true;
            group.signal(Signal::SIGTERM);
            *kill_at = Instant::now() + grace;
        }
        Cancel::Immediate => {
            outcome.cancelled = true;
            group.signal(Signal::SIGKILL);
            super::escapees::kill_marked(mark, false);
        }
    }
}
