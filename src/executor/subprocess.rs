//! Running one attempt of a shell-command agent under supervision.
//!
//! The agent runs as `sh -c <command>` in its own process group. Its output is streamed into an
//! [`OutputSink`] as it arrives. On timeout or cancellation the whole group gets SIGTERM, then
//! SIGKILL after the grace period. When the agent exits, anything left in its group is killed, and
//! children that keep its output open are reported as a leak.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

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

/// Which of [`RUNNER_ONLY_VARS`] and [`RUN_TOKEN_VARS`] this process has, so are withheld from
/// agents: looked up once (nothing in this process changes its environment), so a spawn removes
/// only what is there.
fn withheld() -> &'static [&'static str] {
    static PRESENT: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    PRESENT.get_or_init(|| {
        RUNNER_ONLY_VARS.iter().chain(&RUN_TOKEN_VARS).copied().filter(|v| std::env::var_os(v).is_some()).collect()
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

/// Run one attempt. `on_spawn` receives the process group id as soon as the agent has started.
pub(crate) async fn run(
    req: &SubprocessRequest<'_>,
    sink: &mut OutputSink<'_>,
    cancel: &mut watch::Receiver<Cancel>,
    on_spawn: impl FnOnce(i32, Option<crate::state::GroupStamp>),
) -> SubprocessOutcome {
    let mut cmd = Command::new(shell());
    cmd.arg("-c")
        .arg(req.command)
        .current_dir(req.cwd)
        .envs(req.env.iter().map(|(k, v)| (k, v)))
        .stdin(dev_null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for var in withheld() {
        cmd.env_remove(var);
    }
    // Inherited by everything the agent starts, wherever it goes (see `escapees`).
    let phase = req.env.iter().find(|(k, _)| k == "ORCHESTRATOR_PHASE").map(|(_, v)| v.as_str()).unwrap_or_default();
    let mark = super::escapees::new_mark(phase);
    cmd.env(super::escapees::MARK, &mark);
    let mut outcome = SubprocessOutcome::default();
    if *cancel.borrow() != Cancel::None {
        outcome.cancelled = true;
        return outcome;
    }
    // The boot clock on both sides of the spawn: the leader's start time lies between them.
    let before = super::groups::boot_ticks();
    let spawned = cmd.spawn();
    let after = super::groups::boot_ticks();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            outcome.spawn_error = Some(format!("could not start `sh -c`: {e}"));
            return outcome;
        }
    };
    let Some(pgid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        outcome.spawn_error = Some("the agent exited before its process id could be read".into());
        return outcome;
    };
    // The leader has not been waited for yet, so it is still there to be read if need be.
    on_spawn(pgid, super::groups::stamp_spawned(pgid, before, after));
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        unreachable!("stdout and stderr are piped above");
    };

    let far = Instant::now() + Duration::from_secs(86400 * 365);
    let deadline = Instant::now() + req.timeout;
    let mut kill_at = far;
    let mut leak_at = far;
    let mut abandon_at = far;
    let (mut out_open, mut err_open, mut cancel_open) = (true, true, true);
    let mut status: Option<ExitStatus> = None;
    // Read into spare capacity: nothing is zeroed, and pages are touched only as output arrives.
    let mut buf_out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut buf_err: Vec<u8> = Vec::with_capacity(READ_CHUNK);

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
            s = child.wait(), if status.is_none() => {
                status = Some(s.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(-1)));
                leak_at = Instant::now() + LEAK_GRACE;
            },
            _ = sleep_until(deadline), if status.is_none() && !outcome.timed_out && !outcome.cancelled => {
                outcome.timed_out = true;
                signal_group(pgid, Signal::SIGTERM);
                kill_at = Instant::now() + req.kill_grace;
            },
            _ = sleep_until(kill_at), if kill_at != far => {
                signal_group(pgid, Signal::SIGKILL);
                super::escapees::kill_marked(&mark, false);
                kill_at = far;
            },
            _ = sleep_until(leak_at), if leak_at != far => {
                // The agent is gone but something it started still holds its output.
                outcome.leaked_output = true;
                signal_group(pgid, Signal::SIGKILL);
                super::escapees::kill_marked(&mark, false);
                leak_at = far;
                abandon_at = Instant::now() + ABANDON_AFTER;
            },
            _ = sleep_until(abandon_at), if abandon_at != far => break,
            changed = cancel.changed(), if cancel_open => match changed {
                Err(_) => cancel_open = false,
                Ok(()) => match *cancel.borrow_and_update() {
                    Cancel::None => {}
                    Cancel::Graceful => {
                        outcome.cancelled = true;
                        signal_group(pgid, Signal::SIGTERM);
                        kill_at = Instant::now() + req.kill_grace;
                    }
                    Cancel::Immediate => {
                        outcome.cancelled = true;
                        signal_group(pgid, Signal::SIGKILL);
                        super::escapees::kill_marked(&mark, false);
                    }
                },
            },
        }
    }
    // Background processes that closed their output are still part of the agent: stop them too.
    if group_alive(pgid) {
        signal_group(pgid, Signal::SIGTERM);
        let until = std::time::Instant::now() + req.kill_grace.min(Duration::from_secs(2));
        while group_alive(pgid) && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        signal_group(pgid, Signal::SIGKILL);
    }
    if outcome.timed_out || outcome.cancelled {
        // Whatever left the group must not outlive the attempt either.
        super::escapees::kill_marked(&mark, false);
    }
    if status.is_none() {
        status = child.wait().await.ok();
    }
    if let Some(s) = status {
        use std::os::unix::process::ExitStatusExt;
        outcome.exit_code = s.code();
        outcome.signal = s.signal();
    }
    outcome
}
