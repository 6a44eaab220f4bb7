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
//! The line is fair to phases that run at the same time (see [`Turn`]): the agents of one phase
//! start in the order they lined up, the phases waiting take turns, and a retry goes first. A
//! phase keeps several agents prepared in line (see `engine::runner::Slots`), which would
//! otherwise make another phase's agent wait behind all of them.
//!
//! The slot is the agent's until nothing of its process group is left: the thread hands it on
//! only when the agent's shell was the group's last process. Otherwise (the agent left children
//! behind, which its task stops) the slot goes to the task with the agent's exit, and back when
//! the task is done with the group.
//!
//! The thread reaps the agent under its [`Group`]'s lock, and notes there whether the group is
//! gone: the task signals the group only under that lock and never once it is gone, so it never
//! signals an id the kernel may have given to another process. (On Linux the thread waits with
//! `WNOWAIT`, so that it reaps only under the lock.)
//!
//! A parent may start the tool with SIGCHLD ignored, and the kernel would then reap the agents
//! itself, their statuses lost: the launcher takes SIGCHLD back before its first agent.

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

use super::subprocess::{Cancel, group_alive, signal_group};
use crate::state::GroupStamp;

/// How long an idle thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(10);

/// An agent's stdout and stderr: the read ends, and a copy of each write end, held until the
/// agent has exited. While it is held, the agent's exit does not close its pipes, so the
/// runtime's thread is not woken by their closing apart from the exit itself: it lets go of
/// them when the agent's launcher thread reports the exit (with the next agent's start, in one
/// wake-up), and reads to their end then. Output is read as it comes, as ever.
///
/// Made by the launcher thread just before the spawn, not while the agent waits in line for a
/// slot: agents prepared ahead would hold six descriptors each for nothing (a review ran out of
/// them at a 1,024 limit with 80 slots).
pub(crate) struct Pipes {
    pub stdout: std::process::ChildStdout,
    pub stderr: std::process::ChildStderr,
    pub held: Option<Held>,
}

impl Pipes {
    /// Two pipes (close-on-exec), the write ends' copies held, and the write ends for the child.
    /// At most a 32nd of the process's limit on open files goes to held copies: past that an
    /// agent's copies are not held (it costs a wake-up more, and two descriptors fewer).
    fn new() -> std::io::Result<(Pipes, Stdio, Stdio)> {
        use nix::fcntl::OFlag;
        let (out_read, out_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let (err_read, err_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let held = match Held::claim() {
            Some(claim) => Some(Held { _fds: (out_write.try_clone()?, err_write.try_clone()?), _claim: claim }),
            None => None,
        };
        let pipes = Pipes {
            stdout: std::process::ChildStdout::from(out_read),
            stderr: std::process::ChildStderr::from(err_read),
            held,
        };
        Ok((pipes, Stdio::from(out_write), Stdio::from(err_write)))
    }
}

/// The copies of an agent's write ends, held (see [`Pipes`]); dropping them lets the pipes close.
pub(crate) struct Held {
    _fds: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
    _claim: Claim,
}

/// One agent's share of the descriptors that held copies may take.
struct Claim;

/// Agents whose copies are held now.
static HOLDING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Held {
    fn claim() -> Option<Claim> {
        use std::sync::atomic::Ordering;
        // Two descriptors each.
        let budget = open_files_limit() / 32 / 2;
        if HOLDING.fetch_add(1, Ordering::SeqCst) < budget {
            Some(Claim)
        } else {
            HOLDING.fetch_sub(1, Ordering::SeqCst);
            None
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        HOLDING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The process's limit on open files (its soft limit), read once; 1,024 if it cannot be read.
pub(crate) fn open_files_limit() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
    })
}

/// An agent that was started.
pub(crate) struct Started {
    pub pid: i32,
    /// Its output (the command's own stdout and stderr settings are replaced).
    pub pipes: Pipes,
    /// The group leader's stamp, taken right after the spawn (see `groups`).
    pub stamp: Option<GroupStamp>,
    /// Its process group, to signal.
    pub group: Arc<Group>,
    /// Fires when the agent has exited (and was reaped).
    pub exited: oneshot::Receiver<Ended>,
}

/// An agent that exited.
pub(crate) struct Ended {
    pub exit: Exit,
    /// Its slot, when processes of its group outlived it: to keep until they are stopped.
    pub slot: Option<OwnedSemaphorePermit>,
}

/// An agent's process group, signalled by its task while its launcher thread may reap the
/// leader: the one reaps and the other signals under the same lock, and once the group is
/// known to be gone it is never signalled again (its id may be another process's by then).
pub(crate) struct Group {
    pgid: i32,
    gone: Mutex<bool>,
}

impl Group {
    fn new(pgid: i32) -> Group {
        Group { pgid, gone: Mutex::new(false) }
    }

    /// Send `signal` to the group, unless it is gone.
    pub(crate) fn signal(&self, signal: Signal) {
        let gone = lock(&self.gone);
        if !*gone {
            signal_group(self.pgid, signal);
        }
    }

    /// Whether any process of the group is alive (its exited leader counts until reaped).
    pub(crate) fn alive(&self) -> bool {
        let gone = lock(&self.gone);
        !*gone && group_alive(self.pgid)
    }
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

/// Whose turn a launch is: the agents of one phase (`group`) go in the order they lined up, the
/// phases waiting take turns (one agent each), and a retry goes before them all, as it would
/// have kept its slot but for the delay.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Turn<'a> {
    pub group: &'a str,
    pub retry: bool,
}

struct Job {
    cmd: Command,
    cancel: watch::Receiver<Cancel>,
    reply: oneshot::Sender<Launch>,
}

/// A job in line for a slot of `slots`: taken by exactly one of its own task or a thread.
struct InLine {
    slots: Arc<Semaphore>,
    job: Mutex<Option<Waiting>>,
    group: Box<str>,
    retry: bool,
}

impl InLine {
    fn new(slots: &Arc<Semaphore>, waiting: Waiting, turn: Turn<'_>) -> Arc<InLine> {
        Arc::new(InLine {
            slots: Arc::clone(slots),
            job: Mutex::new(Some(waiting)),
            group: turn.group.into(),
            retry: turn.retry,
        })
    }

    fn same_group(&self, other: &InLine) -> bool {
        Arc::ptr_eq(&self.slots, &other.slots) && self.group == other.group
    }
}

/// The line for slots (see [`Turn`]).
#[derive(Default)]
struct Line {
    /// Whose turn comes first: retries, then the first in line of each group, in the order they
    /// became first.
    heads: VecDeque<Arc<InLine>>,
    /// The others, in the order they lined up.
    rest: VecDeque<Arc<InLine>>,
}

impl Line {
    fn push(&mut self, entry: Arc<InLine>) {
        if entry.retry {
            // After the retries already waiting: they go in the order they came too.
            let after = self.heads.iter().position(|h| !h.retry).unwrap_or(self.heads.len());
            self.heads.insert(after, entry);
        } else if self.heads.iter().any(|h| !h.retry && h.same_group(&entry)) {
            self.rest.push_back(entry);
        } else {
            self.heads.push_back(entry);
        }
    }

    /// Take `entry` out of line, wherever it is.
    fn remove(&mut self, entry: &Arc<InLine>) {
        if let Some(i) = self.heads.iter().position(|e| Arc::ptr_eq(e, entry)) {
            self.heads.remove(i);
            self.next_of(entry);
        } else if let Some(i) = self.rest.iter().position(|e| Arc::ptr_eq(e, entry)) {
            self.rest.remove(i);
        }
    }

    /// The first in line for a slot of `slots` whose turn it is, out of line.
    fn pop(&mut self, slots: &Arc<Semaphore>) -> Option<Arc<InLine>> {
        let i = self.heads.iter().position(|e| Arc::ptr_eq(&e.slots, slots))?;
        let entry = self.heads.remove(i)?;
        self.next_of(&entry);
        Some(entry)
    }

    /// When `gone` was its group's first in line, the next of the group becomes first (last in
    /// the turns).
    fn next_of(&mut self, gone: &InLine) {
        if gone.retry {
            return;
        }
        if let Some(i) = self.rest.iter().position(|e| e.same_group(gone))
            && let Some(next) = self.rest.remove(i)
        {
            self.heads.push_back(next);
        }
    }
}

/// What waits in line: a shell agent to start, or a task that runs its agent itself (an LLM
/// agent) and takes the slot. One line for both, so that neither passes the other.
#[expect(clippy::large_enum_variant, reason = "each lives in its own Arc'd entry: boxing would add an allocation")]
enum Waiting {
    Start(Job),
    Slot(oneshot::Sender<OwnedSemaphorePermit>),
}

struct Work {
    job: Job,
    /// The slot it runs under; none for commands that run within a slot already held (an LLM
    /// agent's tool calls).
    permit: Option<OwnedSemaphorePermit>,
}

#[derive(Default)]
struct Pool {
    line: Mutex<Line>,
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
/// first, with its stdout and stderr piped (see [`Pipes`]). It waits for its `turn` in line.
pub(crate) async fn launch(
    cmd: Command,
    slots: Option<&Arc<Semaphore>>,
    cancel: &watch::Receiver<Cancel>,
    turn: Turn<'_>,
) -> Launch {
    if *cancel.borrow() != Cancel::None {
        return Launch::Cancelled;
    }
    take_sigchld_back();
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
    let entry = InLine::new(slots, Waiting::Start(job), turn);
    lock(&pool().line).push(Arc::clone(&entry));
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
        (Some(Waiting::Start(job)), Some(permit)) => pool().start(Work { job, permit: Some(permit) }),
        (Some(_), _) => return Launch::Cancelled,
        (None, permit) => {
            if let Some(permit) = permit {
                hand_on(permit);
            }
        }
    }
    answer.await.unwrap_or_else(|_| Launch::Failed("the launcher thread ended".into()))
}

/// A slot of `slots` for a task that runs its agent itself, in the same line as the shell
/// agents' launches (see [`launch`]); `None` once the run is being cancelled.
pub(crate) async fn acquire(
    slots: &Arc<Semaphore>,
    cancel: &watch::Receiver<Cancel>,
    turn: Turn<'_>,
) -> Option<OwnedSemaphorePermit> {
    if *cancel.borrow() != Cancel::None {
        return None;
    }
    if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
        return Some(permit);
    }
    let (give, mut given) = oneshot::channel();
    let entry = InLine::new(slots, Waiting::Slot(give), turn);
    lock(&pool().line).push(Arc::clone(&entry));
    let _leave = Leave(Arc::clone(&entry));
    let mut watch = cancel.clone();
    let permit = tokio::select! {
        // A thread whose agent exited handed its slot over: to the next in line instead if the
        // run is being cancelled meanwhile.
        p = &mut given => {
            let p = p.ok()?;
            if *cancel.borrow() != Cancel::None {
                hand_on(p);
                return None;
            }
            return Some(p);
        }
        p = Arc::clone(slots).acquire_owned() => p.ok(),
        _ = cancelled(&mut watch) => None,
    };
    // Out of line, unless a thread took this place meanwhile: then its slot is on the way, and
    // the one taken here goes back.
    if lock(&entry.job).take().is_some() {
        return permit;
    }
    if let Some(permit) = permit {
        hand_on(permit);
    }
    let handed = given.await.ok();
    if *cancel.borrow() != Cancel::None {
        return None;
    }
    handed
}

/// Give a slot that is free again to the next in line whose turn it is (see [`Turn`]), as a
/// launcher thread does with its agent's: a job is started under it, or a task waiting for a
/// slot gets it; with nobody in line it goes back to its semaphore. A slot freed in the runtime
/// (an LLM agent's, or a shell agent's kept until its leftover processes were stopped) goes this
/// way, so that it keeps to the turns rather than to whoever waited on the semaphore first.
pub(crate) fn hand_on(permit: OwnedSemaphorePermit) {
    if let Some((job, permit)) = pool().next_in_line(permit) {
        pool().start(Work { job, permit: Some(permit) });
    }
}

/// A slot held in the runtime: handed on (see [`hand_on`]) when dropped.
#[derive(Default)]
pub(crate) struct Slot(Option<OwnedSemaphorePermit>);

impl From<Option<OwnedSemaphorePermit>> for Slot {
    fn from(permit: Option<OwnedSemaphorePermit>) -> Slot {
        Slot(permit)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(permit) = self.0.take() {
            hand_on(permit);
        }
    }
}

/// Takes a job that is still in line out of it.
struct Leave(Arc<InLine>);

impl Drop for Leave {
    fn drop(&mut self) {
        lock(&self.0.job).take();
        lock(&pool().line).remove(&self.0);
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
pub(crate) async fn exit_of(pid: i32, said: Result<Ended, oneshot::error::RecvError>) -> Ended {
    match said {
        Ok(ended) => ended,
        // The thread is gone without a word: wait for the agent off the runtime.
        Err(_) => Ended { exit: tokio::task::spawn_blocking(move || reap(pid)).await.unwrap_or_default(), slot: None },
    }
}

/// Make sure exited agents wait to be reaped: a SIGCHLD ignored by the parent that started the
/// tool (inherited through `exec`) has the kernel reap them itself, and their statuses are lost.
/// A handler of the runtime's replaces that disposition (there is no safe way to reset it).
fn take_sigchld_back() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if sigchld_ignored() {
            let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child());
        }
    });
}

/// Whether this process ignores SIGCHLD (Linux: read from `/proc`; elsewhere assumed, which
/// costs only a handler).
fn sigchld_ignored() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return true };
    let ignored = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).map(str::trim);
    ignored
        .and_then(|mask| u64::from_str_radix(mask, 16).ok())
        .is_none_or(|mask| mask & (1 << (Signal::SIGCHLD as i32 - 1)) != 0)
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

    /// Hand `permit` to the first in line for a slot of its semaphore: a job to start under it
    /// (returned), or a task waiting for it. Back to the semaphore when nobody waits.
    fn next_in_line(&self, mut permit: OwnedSemaphorePermit) -> Option<(Job, OwnedSemaphorePermit)> {
        let mut line = lock(&self.line);
        while let Some(entry) = line.pop(permit.semaphore()) {
            match lock(&entry.job).take() {
                Some(Waiting::Start(job)) => return Some((job, permit)),
                Some(Waiting::Slot(give)) => match give.send(permit) {
                    Ok(()) => return None,
                    // Its task is gone: the next one.
                    Err(back) => permit = back,
                },
                None => {}
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
        let mut exited: Option<(oneshot::Sender<Ended>, Exit)> = None;
        loop {
            let Work { job, mut permit } = work;
            let running = start(job);
            if let Some((tell, exit)) = exited.take() {
                let _ = tell.send(Ended { exit, slot: None });
            }
            if let Some((group, tell)) = running {
                let (exit, gone) = wait_exit(&group);
                if gone {
                    exited = Some((tell, exit));
                } else if let Err(unsupervised) = tell.send(Ended { exit, slot: permit.take() }) {
                    // Its processes outlive it and its task is gone: not left running.
                    group.signal(Signal::SIGKILL);
                    drop(unsupervised);
                }
            }
            // The slot goes to the next in line, or back to the semaphore.
            if let Some(permit) = permit
                && let Some((job, permit)) = self.next_in_line(permit)
            {
                work = Work { job, permit: Some(permit) };
                continue;
            }
            if let Some((tell, exit)) = exited.take() {
                let _ = tell.send(Ended { exit, slot: None });
            }
            match self.next_ready() {
                Some(next) => work = next,
                None => return,
            }
        }
    }
}

/// Start the job's command, and answer its task. Returns the agent's group and where to tell its
/// exit, if it started.
fn start(job: Job) -> Option<(Arc<Group>, oneshot::Sender<Ended>)> {
    let Job { mut cmd, cancel, reply } = job;
    if *cancel.borrow() != Cancel::None {
        let _ = reply.send(Launch::Cancelled);
        return None;
    }
    let (pipes, stdout, stderr) = match Pipes::new() {
        Ok(p) => p,
        Err(e) => {
            let _ = reply.send(Launch::Failed(format!("cannot make pipes for the agent's output: {e}")));
            return None;
        }
    };
    cmd.stdout(stdout).stderr(stderr);
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
    let stamp = super::groups::stamp_spawned(pid, before, after);
    let (tell, exited) = oneshot::channel();
    let group = Arc::new(Group::new(pid));
    let started = Started { pid, pipes, stamp, group: Arc::clone(&group), exited };
    if reply.send(Launch::Started(started)).is_err() {
        // Its task is gone (the run ended): the agent must not run unsupervised.
        signal_group(pid, Signal::SIGKILL);
        let _ = child.wait();
        return None;
    }
    Some((group, tell))
}

/// Wait until the group's leader has exited, and reap it: how it ended, and whether its group
/// is gone with it (noted in the group, under its lock).
fn wait_exit(group: &Group) -> (Exit, bool) {
    let pid = group.pgid;
    let reaped = wait_unreaped(pid);
    let mut gone = lock(&group.gone);
    let exit = reaped.unwrap_or_else(|| reap(pid));
    *gone = matches!(killpg(Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH));
    (exit, *gone)
}

/// Wait until `pid` has exited, leaving it to be reaped under the group's lock (`None`).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn wait_unreaped(pid: i32) -> Option<Exit> {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    // An error (not our child any more) leaves nothing to wait for.
    while let Err(nix::errno::Errno::EINTR) =
        waitid(Id::Pid(Pid::from_raw(pid)), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
    {}
    None
}

/// Elsewhere waiting reaps: not under the lock, which the task takes to signal the group.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn wait_unreaped(pid: i32) -> Option<Exit> {
    Some(reap(pid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script]).stdout(Stdio::null()).stderr(Stdio::null()).stdin(Stdio::null()).process_group(0);
        cmd
    }

    async fn finish(launch: Launch) -> Exit {
        let Launch::Started(started) = launch else { panic!("not started") };
        started.exited.await.unwrap().exit
    }

    /// The order in which `line` gives slots of `slots` out, by name.
    fn order(line: &mut Line, slots: &Arc<Semaphore>) -> Vec<String> {
        std::iter::from_fn(|| line.pop(slots)).map(|e| e.group.to_string() + if e.retry { "!" } else { "" }).collect()
    }

    fn entry(slots: &Arc<Semaphore>, group: &str, retry: bool) -> Arc<InLine> {
        InLine::new(slots, Waiting::Slot(oneshot::channel().0), Turn { group, retry })
    }

    #[test]
    fn phases_take_turns_in_line_each_in_its_own_order_and_a_retry_goes_first() {
        let slots = Arc::new(Semaphore::new(1));
        let mut line = Line::default();
        let big: Vec<_> = (0..4).map(|_| entry(&slots, "big", false)).collect();
        for e in &big {
            line.push(Arc::clone(e));
        }
        line.push(entry(&slots, "small", false));
        line.push(entry(&slots, "small", false));
        line.push(entry(&slots, "big", true));
        line.push(entry(&slots, "other", false));
        line.push(entry(&slots, "small", true));
        assert_eq!(order(&mut line, &slots), ["big!", "small!", "big", "small", "other", "big", "small", "big", "big"]);
        assert!(line.heads.is_empty() && line.rest.is_empty());

        // One that leaves the line hands its turn to the next of its phase.
        for e in &big {
            line.push(Arc::clone(e));
        }
        line.push(entry(&slots, "small", false));
        line.remove(&big[0]);
        line.remove(&big[2]);
        assert_eq!(order(&mut line, &slots), ["small", "big", "big"]);
        // Another semaphore's line is its own.
        let others = Arc::new(Semaphore::new(1));
        line.push(entry(&others, "big", false));
        line.push(entry(&slots, "big", false));
        assert_eq!(order(&mut line, &slots), ["big"]);
        assert_eq!(order(&mut line, &others), ["big"]);
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
            launches.push(tokio::spawn(async move {
                finish(launch(sh(&script), Some(&slots), &cancel, Turn::default()).await).await
            }));
            tokio::task::yield_now().await;
        }
        for (i, l) in launches.into_iter().enumerate() {
            let exit = l.await.unwrap();
            assert_eq!(exit, Exit { code: Some(i as i32), signal: None });
        }
        // One slot: never two at once, and in the order they lined up.
        let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
        let expected: Vec<String> = (0..6).flat_map(|i| [format!("start {i}"), format!("end {i}")]).collect();
        assert_eq!(lines, expected);
        assert_eq!(slots.available_permits(), 1, "the slot is back once nobody waits");
    }

    #[tokio::test]
    async fn a_task_waiting_for_a_slot_is_served_before_launches_that_lined_up_after_it() {
        let slots = Arc::new(Semaphore::new(1));
        let (_tx, cancel) = watch::channel(Cancel::None);
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let first = launch(sh("sleep 0.1"), Some(&slots), &cancel, Turn::default()).await;
        let waiting = {
            let (slots, cancel, log) = (Arc::clone(&slots), cancel.clone(), log.clone());
            tokio::spawn(async move {
                let permit = acquire(&slots, &cancel, Turn::default()).await.expect("a slot");
                std::fs::write(&log, "slot\n").unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop(permit);
            })
        };
        tokio::task::yield_now().await;
        let script = format!("echo shell >> '{}'", log.display());
        let later = {
            let (slots, cancel) = (Arc::clone(&slots), cancel.clone());
            tokio::spawn(async move { finish(launch(sh(&script), Some(&slots), &cancel, Turn::default()).await).await })
        };
        finish(first).await;
        waiting.await.unwrap();
        later.await.unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "slot\nshell\n");
        assert_eq!(slots.available_permits(), 1);
    }

    #[tokio::test]
    async fn a_job_in_line_is_cancelled_without_starting() {
        let slots = Arc::new(Semaphore::new(1));
        let held = Arc::clone(&slots).acquire_owned().await.unwrap();
        let (tx, cancel) = watch::channel(Cancel::None);
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = format!("touch '{}'", marker.display());
        let waiting = tokio::spawn(async move { launch(sh(&script), Some(&slots), &cancel, Turn::default()).await });
        tokio::task::yield_now().await;
        tx.send(Cancel::Graceful).unwrap();
        assert!(matches!(waiting.await.unwrap(), Launch::Cancelled));
        drop(held);
        assert!(!marker.exists());
    }

    #[tokio::test]
    async fn statuses_and_signals_come_through() {
        let (_tx, cancel) = watch::channel(Cancel::None);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let exit = finish(
            launch(sh(&format!("echo hello > '{}'; exit 3", out.display())), None, &cancel, Turn::default()).await,
        )
        .await;
        assert_eq!(exit, Exit { code: Some(3), signal: None });
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello\n");
        let exit = finish(launch(sh("kill -9 $$"), None, &cancel, Turn::default()).await).await;
        assert_eq!(exit, Exit { code: None, signal: Some(9) });
        let missing = Command::new("/nonexistent/shell");
        assert!(
            matches!(launch(missing, None, &cancel, Turn::default()).await, Launch::Failed(m) if m.contains("could not start"))
        );
    }
}
