//! Starting shell agents, and noticing that they exited, on threads of the launcher's own.
//!
//! A thread starts an agent and then waits for it in `waitid`, blocked, as `xargs` waits in
//! `wait4`. When the agent exits, the kernel wakes that thread on the core the agent just left,
//! and the thread starts the next agent in line at once, under the same slot. The runtime's
//! thread only reads output and keeps the records, off that path.
//!
//! Why (measured on a 2-core machine, one phase of 5,000 `true` agents, 2 slots): when the
//! runtime's thread started the next agent itself, it was woken by the exiting agent's pipes and
//! pidfd, which are not "sync" wake-ups, so the kernel queued it behind the agent on the other
//! core while the core the agent had left sat idle, for up to the scheduler's migration cost
//! (0.5 ms). Cores idled about 1,100 ms per run, against 470 ms for `xargs -P 2`; the gap from
//! an agent's exit to the next start was 163 µs at the median (`xargs`: 83 µs).
//!
//! A slot is a permit of the run's semaphore. An agent's task takes one when one is free;
//! otherwise it joins the line here *and* waits on the semaphore: whichever comes first, a thread
//! handing over its slot or a permit freed in the runtime (an LLM agent's), starts it. A thread
//! with nobody in line returns its permit to the semaphore.
//!
//! On Linux the thread does not reap the agent (`WNOWAIT`): the task supervising it does, after
//! its output, so the group id stays reserved while the task may still signal the group.
//! Elsewhere the thread reaps it and passes on its status.

use std::collections::VecDeque;
use std::process::{ChildStderr, ChildStdout, Command};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

use super::subprocess::{Cancel, signal_group};
use crate::state::GroupStamp;

/// How long an idle thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(10);

/// An agent that was started.
pub(crate) struct Started {
    pub pid: i32,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// The group leader's stamp, taken right after the spawn (see `groups`).
    pub stamp: Option<GroupStamp>,
    /// Fires when the agent has exited: with its status where the thread reaped it, `None` where
    /// it is left for the task to reap ([`reap`]).
    pub exited: oneshot::Receiver<Option<Exit>>,
}

/// How an agent ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// What became of a launch.
pub(crate) enum Launch {
    Started(Started),
    /// The agent could not be started: why.
    Failed(String),
    /// The run was cancelled before the agent's turn came.
    Cancelled,
}

struct Job {
    cmd: Command,
    cancel: watch::Receiver<Cancel>,
    reply: oneshot::Sender<Launch>,
}

/// A job in line for a slot of `slots`: taken by exactly one of its own task or a thread.
struct InLine {
    slots: Arc<Semaphore>,
    job: Mutex<Option<Job>>,
}

struct Work {
    job: Job,
    /// The slot it runs under; none for commands that run within a slot already held (an LLM
    /// agent's tool calls).
    permit: Option<OwnedSemaphorePermit>,
}

#[derive(Default)]
struct Pool {
    line: Mutex<VecDeque<Arc<InLine>>>,
    ready: Mutex<Ready>,
    wake: Condvar,
}

#[derive(Default)]
struct Ready {
    work: VecDeque<Work>,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::default)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start `cmd` under a slot of `slots` (at once without `slots`), unless the run is cancelled
/// first. The command must have piped stdout and stderr.
pub(crate) async fn launch(cmd: Command, slots: Option<&Arc<Semaphore>>, cancel: &watch::Receiver<Cancel>) -> Launch {
    if *cancel.borrow() != Cancel::None {
        return Launch::Cancelled;
    }
    let (reply, mut answer) = oneshot::channel();
    let job = Job { cmd, cancel: cancel.clone(), reply };
    let Some(slots) = slots else {
        pool().start(Work { job, permit: None });
        return answer.await.unwrap_or_else(|_| Launch::Failed("the launcher thread ended".into()));
    };
    if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
        pool().start(Work { job, permit: Some(permit) });
        return answer.await.unwrap_or_else(|_| Launch::Failed("the launcher thread ended".into()));
    }
    let entry = Arc::new(InLine { slots: Arc::clone(slots), job: Mutex::new(Some(job)) });
    lock(&pool().line).push_back(Arc::clone(&entry));
    // Out of line however this ends, even if this future is dropped.
    let _leave = Leave(Arc::clone(&entry));
    let mut watch = cancel.clone();
    let permit = tokio::select! {
        // A thread whose agent exited handed its slot over.
        r = &mut answer => {
            return r.unwrap_or_else(|_| Launch::Failed("the launcher thread ended".into()));
        }
        p = Arc::clone(slots).acquire_owned() => p.ok(),
        _ = cancelled(&mut watch) => None,
    };
    // A slot freed in the runtime, or the run is being cancelled: take the job back, unless a
    // thread took it meanwhile (then its answer is on the way, and this permit goes back).
    let job = lock(&entry.job).take();
    match (job, permit) {
        (Some(job), Some(permit)) => pool().start(Work { job, permit: Some(permit) }),
        (Some(_), None) => return Launch::Cancelled,
        (None, permit) => drop(permit),
    }
    answer.await.unwrap_or_else(|_| Launch::Failed("the launcher thread ended".into()))
}

/// Takes a job that is still in line out of it.
struct Leave(Arc<InLine>);

impl Drop for Leave {
    fn drop(&mut self) {
        lock(&self.0.job).take();
        lock(&pool().line).retain(|e| !Arc::ptr_eq(e, &self.0));
    }
}

async fn cancelled(watch: &mut watch::Receiver<Cancel>) {
    while *watch.borrow_and_update() == Cancel::None {
        if watch.changed().await.is_err() {
            // Nobody can cancel any more.
            std::future::pending::<()>().await;
        }
    }
}

/// How the agent `pid` ended, from what its thread said (see [`Started::exited`]).
pub(crate) async fn exit_of(pid: i32, said: Result<Option<Exit>, oneshot::error::RecvError>) -> Exit {
    match said {
        Ok(Some(exit)) => exit,
        // It has exited and waits to be reaped: at once.
        Ok(None) => reap(pid),
        // The thread is gone without a word: wait for the agent off the runtime.
        Err(_) => tokio::task::spawn_blocking(move || reap(pid)).await.unwrap_or_default(),
    }
}

/// Reap the agent `pid`, waiting for it to exit.
pub(crate) fn reap(pid: i32) -> Exit {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(WaitStatus::Exited(_, code)) => return Exit { code: Some(code), signal: None },
            Ok(WaitStatus::Signaled(_, sig, _)) => return Exit { code: None, signal: Some(sig as i32) },
            Ok(_) => continue,
            Err(_) => return Exit::default(),
        }
    }
}

impl Pool {
    /// Give `work` to an idle thread, or to a new one.
    fn start(&'static self, work: Work) {
        let mut ready = lock(&self.ready);
        if ready.idle > ready.work.len() {
            ready.work.push_back(work);
            drop(ready);
            self.wake.notify_one();
            return;
        }
        drop(ready);
        let slot = Arc::new(Mutex::new(Some(work)));
        let first = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("orchestrator-launcher".into())
            // It only starts processes and waits for them.
            .stack_size(256 * 1024)
            .spawn(move || {
                if let Some(work) = lock(&first).take() {
                    self.serve(work);
                }
            });
        if let Err(e) = spawned
            && let Some(work) = lock(&slot).take()
        {
            let _ = work.job.reply.send(Launch::Failed(format!("cannot start a launcher thread: {e}")));
        }
    }

    /// The first job in line for a slot of the semaphore `permit` is from.
    fn next_in_line(&self, permit: &OwnedSemaphorePermit) -> Option<Job> {
        let mut line = lock(&self.line);
        let mut i = 0;
        while i < line.len() {
            if Arc::ptr_eq(&line[i].slots, permit.semaphore()) {
                let entry = line.remove(i).expect("index in range");
                if let Some(job) = lock(&entry.job).take() {
                    return Some(job);
                }
            } else {
                i += 1;
            }
        }
        None
    }

    /// Work for an idle thread, or `None` after [`IDLE`] without any.
    fn next_ready(&self) -> Option<Work> {
        let mut ready = lock(&self.ready);
        ready.idle += 1;
        let deadline = std::time::Instant::now() + IDLE;
        loop {
            if let Some(work) = ready.work.pop_front() {
                ready.idle -= 1;
                return Some(work);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                ready.idle -= 1;
                return None;
            }
            ready = self.wake.wait_timeout(ready, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn serve(&self, mut work: Work) {
        // The agent that exited last, told only once the next one is on its way.
        let mut exited: Option<(oneshot::Sender<Option<Exit>>, Option<Exit>)> = None;
        loop {
            let Work { job, permit } = work;
            let running = start(job);
            if let Some((tell, exit)) = exited.take() {
                let _ = tell.send(exit);
            }
            if let Some((pid, tell)) = running {
                let exit = wait_exit(pid);
                if tell.is_closed() {
                    // Its task is gone: nobody else will reap it.
                    if exit.is_none() {
                        reap(pid);
                    }
                } else {
                    exited = Some((tell, exit));
                }
            }
            // The slot goes to the next in line, or back to the semaphore.
            if let Some(permit) = permit {
                if let Some(job) = self.next_in_line(&permit) {
                    work = Work { job, permit: Some(permit) };
                    continue;
                }
                drop(permit);
            }
            if let Some((tell, exit)) = exited.take() {
                let _ = tell.send(exit);
            }
            match self.next_ready() {
                Some(next) => work = next,
                None => return,
            }
        }
    }
}

/// Start the job's command, and answer its task. Returns the agent's pid and where to tell its
/// exit, if it started.
fn start(job: Job) -> Option<(i32, oneshot::Sender<Option<Exit>>)> {
    let Job { mut cmd, cancel, reply } = job;
    if *cancel.borrow() != Cancel::None {
        let _ = reply.send(Launch::Cancelled);
        return None;
    }
    let before = super::groups::boot_ticks();
    let spawned = cmd.spawn();
    let after = super::groups::boot_ticks();
    // It holds the parent's copy of the agent's standard input.
    drop(cmd);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = reply.send(Launch::Failed(format!("could not start `sh -c`: {e}")));
            return None;
        }
    };
    let pid = i32::try_from(child.id()).unwrap_or(-1);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = reply.send(Launch::Failed("the agent's output is not piped".into()));
        signal_group(pid, Signal::SIGKILL);
        let _ = child.wait();
        return None;
    };
    let stamp = super::groups::stamp_spawned(pid, before, after);
    let (tell, exited) = oneshot::channel();
    if reply.send(Launch::Started(Started { pid, stdout, stderr, stamp, exited })).is_err() {
        // Its task is gone (the run ended): the agent must not run unsupervised.
        signal_group(pid, Signal::SIGKILL);
        let _ = child.wait();
        return None;
    }
    Some((pid, tell))
}

/// Wait until `pid` has exited: on Linux without reaping it (`None`), elsewhere reaping it.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn wait_exit(pid: i32) -> Option<Exit> {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    loop {
        match waitid(Id::Pid(Pid::from_raw(pid)), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => return None,
            // Not our child any more (reaped elsewhere): nothing to wait for.
            Err(_) => return Some(Exit::default()),
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn wait_exit(pid: i32) -> Option<Exit> {
    Some(reap(pid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script]).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).process_group(0);
        cmd
    }

    async fn finish(launch: Launch) -> (String, Exit) {
        let Launch::Started(started) = launch else { panic!("not started") };
        let out = tokio::task::spawn_blocking(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut { started.stdout }, &mut s).unwrap();
            s
        })
        .await
        .unwrap();
        let exit = match started.exited.await.unwrap() {
            Some(exit) => exit,
            None => reap(started.pid),
        };
        (out, exit)
    }

    #[tokio::test]
    async fn a_full_semaphore_hands_each_slot_to_the_next_in_line_in_order() {
        let slots = Arc::new(Semaphore::new(1));
        let (_tx, cancel) = watch::channel(Cancel::None);
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut launches = Vec::new();
        for i in 0..6 {
            let script = format!(
                "echo start {i} >> '{}'; sleep 0.02; echo end {i} >> '{}'; exit {i}",
                log.display(),
                log.display()
            );
            let slots = Arc::clone(&slots);
            let cancel = cancel.clone();
            launches.push(tokio::spawn(async move { finish(launch(sh(&script), Some(&slots), &cancel).await).await }));
            tokio::task::yield_now().await;
        }
        for (i, l) in launches.into_iter().enumerate() {
            let (_, exit) = l.await.unwrap();
            assert_eq!(exit, Exit { code: Some(i as i32), signal: None });
        }
        // One slot: never two at once, and in the order they lined up.
        let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
        let expected: Vec<String> = (0..6).flat_map(|i| [format!("start {i}"), format!("end {i}")]).collect();
        assert_eq!(lines, expected);
        assert_eq!(slots.available_permits(), 1, "the slot is back once nobody waits");
    }

    #[tokio::test]
    async fn a_job_in_line_is_cancelled_without_starting() {
        let slots = Arc::new(Semaphore::new(1));
        let held = Arc::clone(&slots).acquire_owned().await.unwrap();
        let (tx, cancel) = watch::channel(Cancel::None);
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = format!("touch '{}'", marker.display());
        let waiting = tokio::spawn(async move { launch(sh(&script), Some(&slots), &cancel).await });
        tokio::task::yield_now().await;
        tx.send(Cancel::Graceful).unwrap();
        assert!(matches!(waiting.await.unwrap(), Launch::Cancelled));
        drop(held);
        assert!(!marker.exists());
    }

    #[tokio::test]
    async fn output_status_and_signals_come_through() {
        let (_tx, cancel) = watch::channel(Cancel::None);
        let (out, exit) = finish(launch(sh("echo hello; exit 3"), None, &cancel).await).await;
        assert_eq!((out.as_str(), exit), ("hello\n", Exit { code: Some(3), signal: None }));
        let (_, exit) = finish(launch(sh("kill -9 $$"), None, &cancel).await).await;
        assert_eq!(exit, Exit { code: None, signal: Some(9) });
        let missing = Command::new("/nonexistent/shell");
        assert!(matches!(launch(missing, None, &cancel).await, Launch::Failed(m) if m.contains("could not start")));
    }
}
