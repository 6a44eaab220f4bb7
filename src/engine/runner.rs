//! Scheduling phases and agents, with retries, cancellation and durable records.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::{Event, plan};
use crate::config::{Phase, Workflow};
use crate::executor::{self, Cancel, Redactor};
use crate::gate::{Answer, Gate, GateError};
use crate::report::{Recorder, hygiene};
use crate::state::{
    AgentStatus, ChangeSet, GateState, PhaseState, PhaseStatus, RunState, RunStatus, StateError, StateStore,
};
use crate::workspace::{self, Snapshot};

/// How much of the workflow one command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Until the run completes, fails, or every remaining phase waits on a gate.
    Continue,
    /// The phases that are ready now, then stop.
    Step,
    /// This phase only.
    Phase(String),
}

#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    pub mode: Mode,
    /// Overrides `max_parallel_agents`.
    pub max_workers: Option<usize>,
    /// Overrides every attempt's timeout.
    pub timeout: Option<Duration>,
    /// Run every phase's agents concurrently, even where `parallel` is false.
    pub force_parallel: bool,
    /// Run only this agent of the phase and leave the phase open (`run phase --agent`).
    pub only_agent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error("cannot write `{path}`: {source}")]
    Write { path: String, source: std::io::Error },
    #[error(transparent)]
    Record(#[from] crate::report::RecordError),
    #[error("internal error: {0}")]
    Internal(String),
    /// `run phase` on a phase whose `needs` are still not done once gates were re-read.
    #[error("phase `{phase}` needs {unmet} first")]
    NotReady { phase: String, unmet: String },
}

impl Engine {
    /// `state` with every string redacted, for what is published from it.
    fn redacted(&self, state: RunState) -> RunState {
        if self.redactor.is_empty() {
            return state;
        }
        let Ok(mut value) = serde_json::to_value(&state) else { return state };
        self.redactor.redact_json(&mut value);
        serde_json::from_value(value).unwrap_or(state)
    }
}

#[derive(Debug)]
pub(crate) struct RunSummary {
    pub status: RunStatus,
    pub interrupted: bool,
}

/// The transcript of `agent` in `phase`, relative to the workspace.
pub(crate) fn transcript_path(run_id: &str, phase: &str, agent: &str) -> String {
    format!(".claude/logs/agents/{run_id}_{phase}_{agent}.log")
}

pub(crate) struct Engine {
    pub(super) wf: Arc<Workflow>,
    pub(super) store: Mutex<StateStore>,
    pub(super) events: mpsc::UnboundedSender<Event>,
    pub(super) cancel: watch::Receiver<Cancel>,
    pub(super) gate: Arc<dyn Gate>,
    pub(super) redactor: Arc<Redactor>,
    /// Each agent's prompt template, read once per command: `None` without one.
    pub(super) templates: std::collections::HashMap<String, Result<Option<String>, String>>,
    pub(super) recorder: Arc<Recorder>,
    pub(super) root: PathBuf,
    /// Where agents' reported and written paths must stay.
    pub(super) workspace: workspace::Confinement,
    /// The transcripts' folder, opened at the first agent and again if an agent moves it.
    pub(super) transcripts: Mutex<Option<Arc<crate::transcript::Folder>>>,
    /// The records' writers, one per [`Lane`]: each a task writing its records one at a time, in
    /// the order they were asked for (a later copy of the state never lands before an earlier
    /// one). Started at their first record.
    pub(super) writers: [std::sync::OnceLock<mpsc::UnboundedSender<RecordJob>>; 2],
    /// Records written while the run goes on (see [`Engine::record_later`]).
    pub(super) deferred: Mutex<Vec<oneshot::Receiver<Result<(), EngineError>>>>,
    /// Phases that ended (not at a gate) and whose end is not saved yet, with what says so: saved,
    /// then said, by the run's loop before anything after them starts or while other phases
    /// run; else by the run's end, which saves anyway (see [`Engine::save_ended_phases`]).
    pub(super) ended_unsaved: Mutex<Vec<Event>>,
    pub(super) opts: RunOptions,
}

/// Which records a write is of. Each lane writes its own files, in order; the two lanes write
/// side by side (the run's end does not wait for the last phase's reports to start its metrics).
#[derive(Debug, Clone, Copy)]
pub(super) enum Lane {
    /// The metrics JSON and the Prometheus file.
    Metrics = 0,
    /// A phase's reports: the hygiene report, the validation report and the bundle.
    Phases = 1,
}

/// Writes records from a copy of the state.
type RecordWrite = Box<dyn FnOnce(&Recorder, &Workflow) -> Result<(), crate::report::RecordError> + Send>;
/// A record to write and where to say how it went.
pub(super) type RecordJob = (RecordWrite, oneshot::Sender<Result<(), EngineError>>);

/// Limits on agents: `run` bounds the agents running at once (`max_parallel_agents`);
/// `prepare` bounds those prepared ahead (transcript open, prompt rendered) so the next agent can
/// start the moment a running one ends, without holding a file open for every queued agent.
#[derive(Clone)]
pub(super) struct Slots {
    pub(super) run: Arc<Semaphore>,
    pub(super) prepare: Arc<Semaphore>,
    /// One agent of each phase may be prepared besides `prepare`'s: a phase that runs beside a
    /// large parallel one (which holds all of `prepare`) does not wait for one of its agents to
    /// end before its next agent can join the line. Phases running at once get such a place
    /// while `owners` has one (each holds a transcript open: at most 64, and a 16th of the limit on
    /// open files).
    pub(super) own: Arc<Semaphore>,
    pub(super) owners: Arc<Semaphore>,
    /// How many agent tasks a parallel phase keeps in flight: as many as may be prepared, so
    /// memory follows the workers, not the phase's size.
    pub(super) ahead: usize,
}

impl Slots {
    fn new(workers: usize) -> Slots {
        let open_files = crate::executor::launcher::open_files_limit();
        let prepared = workers + spare_in_line(workers, open_files);
        Slots {
            run: Arc::new(Semaphore::new(workers)),
            prepare: Arc::new(Semaphore::new(prepared)),
            // Each phase gets its own in `run_phase`; the run has none.
            own: Arc::new(Semaphore::new(0)),
            owners: Arc::new(Semaphore::new(usize::try_from(open_files / 16).unwrap_or(usize::MAX).clamp(1, 64))),
            ahead: prepared,
        }
    }
}

/// How many prepared agents wait in line beyond those running: enough that slots freed while
/// the runtime's thread is busy elsewhere (it writes every agent's records) still find an agent
/// to start. A launcher thread starts the next in line the moment its agent exits; with the
/// line empty it waits for the runtime's thread, and its core idles meanwhile.
///
/// Measured on a 2-core machine, 500 quick agents, 2 workers: one spare per worker (the line
/// before) left cores idle 13% of the run; seven per worker cut the run's time by 4–5%, and more
/// gained nothing. Each waiting agent holds its transcript open: at most a 16th of the limit on
/// open files (`open_files`) and 64 go to them, never fewer than one per worker.
fn spare_in_line(workers: usize, open_files: u64) -> usize {
    let budget = usize::try_from(open_files / 16).unwrap_or(usize::MAX);
    workers.saturating_mul(7).min(64).min(budget).max(workers)
}

pub(super) enum AgentEnd {
    Finished(AgentStatus),
    Interrupted,
}

impl Engine {
    pub(crate) fn new(
        wf: Arc<Workflow>,
        store: StateStore,
        events: mpsc::UnboundedSender<Event>,
        cancel: watch::Receiver<Cancel>,
        gate: Arc<dyn Gate>,
        redactor: Redactor,
        opts: RunOptions,
    ) -> Engine {
        let workspace = workspace::Confinement::for_workflow(&wf);
        let root = workspace.root().to_path_buf();
        let recorder = Arc::new(Recorder::new(&wf.root, redactor.clone()));
        let listing = crate::prompt::Listing::of(&wf.root);
        let templates = wf
            .agents
            .values()
            .map(|a| (a.name.clone(), listing.read(&wf.root, a).map_err(|d| d.to_string())))
            .collect();
        Engine {
            wf,
            store: Mutex::new(store),
            events,
            cancel,
            gate,
            redactor: Arc::new(redactor),
            templates,
            recorder,
            root,
            workspace,
            transcripts: Mutex::new(None),
            writers: [std::sync::OnceLock::new(), std::sync::OnceLock::new()],
            deferred: Mutex::new(Vec::new()),
            ended_unsaved: Mutex::new(Vec::new()),
            opts,
        }
    }

    pub(super) fn store(&self) -> MutexGuard<'_, StateStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Write records from a copy of the state: on a blocking thread, outside the state lock,
    /// after every record of its lane asked for before.
    pub(super) async fn record(
        &self,
        lane: Lane,
        state: impl std::borrow::Borrow<RunState> + Send + 'static,
        write: impl FnOnce(&Recorder, &Workflow, &RunState) -> Result<(), crate::report::RecordError> + Send + 'static,
    ) -> Result<(), EngineError> {
        self.queue_record(lane, state, write)
            .await
            .map_err(|_| EngineError::Internal("the records' writer stopped".into()))?
    }

    /// As [`Engine::record`], without waiting: the agents start (or the run ends) while the
    /// records are written. Their errors are the run's, once it ends (`deferred_records`).
    pub(super) fn record_later(
        &self,
        lane: Lane,
        state: impl std::borrow::Borrow<RunState> + Send + 'static,
        write: impl FnOnce(&Recorder, &Workflow, &RunState) -> Result<(), crate::report::RecordError> + Send + 'static,
    ) {
        let done = self.queue_record(lane, state, write);
        self.deferred.lock().unwrap_or_else(|e| e.into_inner()).push(done);
    }

    fn queue_record(
        &self,
        lane: Lane,
        state: impl std::borrow::Borrow<RunState> + Send + 'static,
        write: impl FnOnce(&Recorder, &Workflow, &RunState) -> Result<(), crate::report::RecordError> + Send + 'static,
    ) -> oneshot::Receiver<Result<(), EngineError>> {
        let writer = self.writers[lane as usize].get_or_init(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<RecordJob>();
            let (recorder, wf) = (Arc::clone(&self.recorder), Arc::clone(&self.wf));
            tokio::spawn(async move {
                while let Some((job, reply)) = rx.recv().await {
                    let (recorder, wf) = (Arc::clone(&recorder), Arc::clone(&wf));
                    let written = tokio::task::spawn_blocking(move || job(&recorder, &wf))
                        .await
                        .map_err(|e| EngineError::Internal(format!("writing the records failed: {e}")))
                        .and_then(|r| r.map_err(EngineError::from));
                    let _ = reply.send(written);
                }
            });
            tx
        });
        let (reply, done) = oneshot::channel();
        let job: RecordWrite = Box::new(move |r, wf| write(r, wf, state.borrow()));
        // The writer runs as long as the engine: a send fails only once it is gone, and then the
        // dropped reply says so.
        let _ = writer.send((job, reply));
        done
    }

    /// Wait for the records written while the run went on; the first error, if any.
    async fn deferred_records(&self) -> Result<(), EngineError> {
        let pending = std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|e| e.into_inner()));
        let mut first = Ok(());
        for done in pending {
            let written =
                done.await.unwrap_or_else(|_| Err(EngineError::Internal("the records' writer stopped".into())));
            if let (Ok(()), Err(e)) = (&first, written) {
                first = Err(e);
            }
        }
        first
    }

    pub(super) fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    pub(super) fn cancelled(&self) -> bool {
        *self.cancel.borrow() != Cancel::None
    }

    /// A slot from `sem`, or `None` once the run is being cancelled.
    /// A place among the agents prepared ahead: the phase's own if free, else one of the run's
    /// (see [`Slots`]); `None` once the run is being cancelled.
    pub(super) async fn prepared(&self, slots: &Slots) -> Result<Option<OwnedSemaphorePermit>, EngineError> {
        if self.cancelled() {
            return Ok(None);
        }
        if let Ok(own) = Arc::clone(&slots.own).try_acquire_owned() {
            return Ok(Some(own));
        }
        tokio::select! {
            p = Arc::clone(&slots.own).acquire_owned() => p.map(Some).map_err(|e| EngineError::Internal(e.to_string())),
            p = Arc::clone(&slots.prepare).acquire_owned() => p.map(Some).map_err(|e| EngineError::Internal(e.to_string())),
            _ = Self::wait_cancel(self.cancel.clone()) => Ok(None),
        }
    }

    /// `fut` (a gate call, maybe a network round trip), or `None` once the run is being
    /// cancelled: a signal never waits for GitHub.
    pub(super) async fn unless_cancelled<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, GateError>>,
    ) -> Result<Option<T>, EngineError> {
        if self.cancelled() {
            return Ok(None);
        }
        tokio::select! {
            r = fut => Ok(Some(r?)),
            _ = Self::wait_cancel(self.cancel.clone()) => Ok(None),
        }
    }

    /// Resolves once the run is being cancelled (never, if the canceller is gone).
    pub(super) async fn wait_cancel(mut cancel: watch::Receiver<Cancel>) {
        if cancel.wait_for(|c| *c != Cancel::None).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Run according to the options. The store comes back with the result, whatever it is.
    pub(crate) async fn run(self) -> (Result<RunSummary, EngineError>, StateStore) {
        let mut engine = Arc::new(self);
        let result = Arc::clone(&engine).run_shared().await;
        // Records still being written are part of the run.
        let deferred = engine.deferred_records().await;
        let result = result.and_then(|summary| deferred.map(|()| summary));
        // Every task holding the engine was joined; one being dropped still lets go shortly.
        let engine = loop {
            match Arc::try_unwrap(engine) {
                Ok(e) => break e,
                Err(shared) => {
                    engine = shared;
                    tokio::task::yield_now().await;
                }
            }
        };
        (result, engine.store.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    async fn run_shared(self: Arc<Self>) -> Result<RunSummary, EngineError> {
        let retried = self.recover().await?;
        // A reviewer's retry runs the phase again, whichever step of the workflow reads it.
        let mode = match &self.opts.mode {
            Mode::Phase(_) if retried => Mode::Continue,
            m => m.clone(),
        };
        // A phase whose needs wait at a gate (or were rejected) does not run; the run's status
        // says why.
        let blocked = match &mode {
            Mode::Phase(name) => self.check_needs(name)?,
            _ => false,
        };
        let workers = self.opts.max_workers.unwrap_or(self.wf.settings.max_parallel_agents).max(1);
        let slots = Slots::new(workers);
        let mut running: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<(String, Result<PhaseStatus, EngineError>)> = JoinSet::new();
        let mut launched = false;
        let mut stop = blocked;
        let mut first_error: Option<EngineError> = None;
        loop {
            if !stop && !self.cancelled() {
                let mut ready: Vec<String> = match &mode {
                    // A phase that has run (or waits at its gate) is not run again: a repeated
                    // step is harmless, and its gate was re-read above.
                    Mode::Phase(name) if !launched => match self.wf.phase(name) {
                        Some(p) if plan::readiness(&self.store().state, p) == plan::Readiness::Ready => {
                            vec![name.clone()]
                        }
                        _ => Vec::new(),
                    },
                    Mode::Step if !launched => {
                        plan::ready(&self.wf, &self.store().state, &running).iter().map(|p| p.name.clone()).collect()
                    }
                    Mode::Continue => {
                        plan::ready(&self.wf, &self.store().state, &running).iter().map(|p| p.name.clone()).collect()
                    }
                    _ => Vec::new(),
                };
                launched = true;
                // A phase that ended is on disk before anything after it starts.
                if !ready.is_empty()
                    && let Err(e) = self.save_ended_phases().await
                {
                    stop = true;
                    first_error.get_or_insert(e);
                    ready.clear();
                }
                for name in ready {
                    running.insert(name.clone());
                    let engine = Arc::clone(&self);
                    let slots = slots.clone();
                    tasks.spawn(async move {
                        let result = engine.run_phase(&name, slots).await;
                        (name, result)
                    });
                }
            }
            // Other phases go on: one that ended is saved now, as it would be alone.
            if !running.is_empty()
                && let Err(e) = self.save_ended_phases().await
            {
                stop = true;
                first_error.get_or_insert(e);
            }
            let Some(joined) = tasks.join_next().await else { break };
            match joined {
                Ok((name, result)) => {
                    running.remove(&name);
                    match result {
                        Ok(PhaseStatus::Failed) => stop = true,
                        Ok(_) => {}
                        Err(e) => {
                            stop = true;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                Err(e) => {
                    stop = true;
                    first_error.get_or_insert(EngineError::Internal(format!("a phase task failed: {e}")));
                }
            }
        }
        // Every agent of this process has ended: so has everything they started. Swept while the
        // run's state is saved and its records (metrics, JUnit) are written: all three at once.
        let sweep = tokio::task::spawn_blocking(|| {
            executor::escapees::kill_marked(&executor::escapees::own_prefix(), true);
        });
        let interrupted = self.cancelled();
        let (status, state) = {
            let mut store = self.store();
            store.state.interrupted = interrupted;
            let status = store.state.status();
            // A finished run (completed, failed or rejected) has a fixed duration; one that goes on
            // (a retry) has none yet.
            if matches!(status, RunStatus::Completed | RunStatus::Failed | RunStatus::Rejected) {
                if store.state.finished_at.is_none() {
                    store.state.finished_at = Some(Utc::now());
                }
            } else {
                store.state.finished_at = None;
            }
            (status, store.state.clone())
        };
        // The metrics after every record asked for before (a phase's may hold metrics too); the
        // JUnit report, which only this writes, at once, beside them.
        let state = Arc::new(state);
        let metrics = self.queue_record(Lane::Metrics, Arc::clone(&state), |r, wf, state| r.metrics(wf, state));
        let (recorder, wf) = (Arc::clone(&self.recorder), Arc::clone(&self.wf));
        let junit = tokio::task::spawn_blocking(move || recorder.junit(&wf, &state));
        let engine = Arc::clone(&self);
        let saved = tokio::task::spawn_blocking(move || engine.store().save());
        let (saved, metrics, junit, _) = tokio::join!(saved, metrics, junit, sweep);
        saved.map_err(|e| EngineError::Internal(format!("saving the state failed: {e}")))??;
        // The phases whose end that save holds: said only now.
        for ev in std::mem::take(&mut *self.ended_unsaved.lock().unwrap_or_else(|e| e.into_inner())) {
            self.emit(ev);
        }
        junit.map_err(|e| EngineError::Internal(format!("writing the records failed: {e}")))??;
        metrics.map_err(|_| EngineError::Internal("the records' writer stopped".into()))??;
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(RunSummary { status, interrupted })
    }

    /// Save the ends of the phases left unsaved by `finish_phase` (see [`Engine::ended_unsaved`]),
    /// then say them.
    async fn save_ended_phases(self: &Arc<Self>) -> Result<(), EngineError> {
        let ended = std::mem::take(&mut *self.ended_unsaved.lock().unwrap_or_else(|e| e.into_inner()));
        if ended.is_empty() {
            return Ok(());
        }
        let engine = Arc::clone(self);
        tokio::task::spawn_blocking(move || engine.store().save())
            .await
            .map_err(|e| EngineError::Internal(format!("saving the state failed: {e}")))??;
        for ev in ended {
            self.emit(ev);
        }
        Ok(())
    }

    /// A single phase runs only once every phase it needs is done (gates included, as just
    /// re-read from their backend). `Ok(true)`: it cannot run because a need awaits approval or
    /// was rejected; an error when a need has not run or failed.
    fn check_needs(&self, name: &str) -> Result<bool, EngineError> {
        let Some(phase) = self.wf.phase(name) else { return Ok(false) };
        let readiness = plan::readiness(&self.store().state, phase);
        match readiness {
            plan::Readiness::Blocked(_) if readiness.gated() => Ok(true),
            plan::Readiness::Blocked(_) => {
                Err(EngineError::NotReady { phase: name.to_owned(), unmet: readiness.unmet() })
            }
            _ => Ok(false),
        }
    }

    /// Make a state left by a stopped or killed process runnable again, and re-read gate
    /// decisions. Returns whether a reviewer's retry made an ended phase runnable again.
    async fn recover(&self) -> Result<bool, EngineError> {
        let mut notes = Vec::new();
        let (before, awaiting) = {
            let mut store = self.store();
            let before = store.state.clone();
            store.state.interrupted = false;
            for (phase, ps) in store.state.phases.iter_mut().filter(|(_, p)| p.status == PhaseStatus::Running) {
                for (name, agent) in ps.agents.iter_mut().filter(|(_, a)| a.status == AgentStatus::Running) {
                    // The process that ran it died; make sure nothing of it survives, but kill
                    // only a group that is provably what it left (the state is input too).
                    let leader = agent.pgid_leader.take();
                    if let Some(pgid) = agent.pgid.take() {
                        match executor::groups::verify(pgid, leader.as_ref()) {
                            executor::groups::Verdict::Ours => {
                                executor::subprocess::signal_group(pgid, nix::sys::signal::Signal::SIGKILL)
                            }
                            executor::groups::Verdict::Gone => {}
                            executor::groups::Verdict::NotOurs(why) => notes.push(format!(
                                "process group {pgid} recorded for `{phase}/{name}` was left alone: {why}"
                            )),
                        }
                    }
                    agent.status = AgentStatus::Pending;
                }
            }
            let awaiting: Vec<String> = store
                .state
                .phases
                .iter()
                .filter(|(_, p)| p.status == PhaseStatus::AwaitingApproval)
                .map(|(n, _)| n.clone())
                .collect();
            (before, awaiting)
        };
        for message in notes {
            self.emit(Event::Note { message });
        }
        // Gate calls may go over the network: not under the lock.
        self.confirm_approvals().await?;
        let awaiting: Vec<String> = {
            let store = self.store();
            let mut all = awaiting;
            for (name, p) in &store.state.phases {
                if p.status == PhaseStatus::AwaitingApproval && !all.contains(name) {
                    all.push(name.clone());
                }
            }
            all
        };
        let mut opened = Vec::new();
        let mut decided = Vec::new();
        let mut rerun = Vec::new();
        for name in awaiting {
            let snapshot = self.store().state.clone();
            if snapshot.phases[&name].gate.is_none() {
                // The process died between finishing the phase and opening its gate.
                let Some(request) = self.unless_cancelled(self.gate.open(&self.wf, &snapshot, &name)).await? else {
                    return Ok(false);
                };
                opened.push((name.clone(), request));
            }
            let Some(answer) = self.unless_cancelled(self.gate.decision(&self.wf, &snapshot, &name)).await? else {
                return Ok(false);
            };
            match answer {
                Answer::Waiting => {}
                Answer::Decided(decision) => decided.push((name, decision)),
                Answer::Rerun => rerun.push(name),
            }
        }
        {
            let mut store = self.store();
            for (name, request) in opened {
                if let Some(ps) = store.state.phases.get_mut(&name) {
                    ps.gate = Some(GateState { requested_at: Utc::now(), request, decision: None });
                }
            }
            for (name, decision) in decided {
                let Some(ps) = store.state.phases.get_mut(&name) else { continue };
                ps.status = if decision.approved { PhaseStatus::Approved } else { PhaseStatus::Rejected };
                self.emit(Event::GateDecided {
                    phase: name.clone(),
                    approved: decision.approved,
                    by: decision.by.clone(),
                });
                if let Some(g) = ps.gate.as_mut() {
                    g.decision = Some(decision);
                }
            }
            for name in &rerun {
                if let Some(ps) = store.state.phases.get_mut(name) {
                    ps.start_over();
                    self.emit(Event::RerunOnPush { phase: name.clone() });
                }
            }
        }
        // After the decisions: a phase rejected just now may have been asked to run again.
        let retried = self.retries_asked().await? || !rerun.is_empty();
        let changed = {
            let mut store = self.store();
            // A fresh run has nothing to recover: skip the fsync'd rewrite.
            if store.state != before {
                store.save()?;
                Some(store.state.clone())
            } else {
                None
            }
        };
        if let Some(state) = changed {
            self.record(Lane::Metrics, state, |r, wf, state| r.metrics(wf, state)).await?;
        }
        Ok(retried)
    }

    /// Rejected and failed phases that a reviewer asked to run again (`/retry` on the pull
    /// request) become pending, keeping their run count.
    async fn retries_asked(&self) -> Result<bool, EngineError> {
        let ended: Vec<String> = {
            let store = self.store();
            let state = &store.state;
            self.wf
                .phases
                .iter()
                .filter(|p| {
                    state
                        .phases
                        .get(&p.name)
                        .is_some_and(|s| matches!(s.status, PhaseStatus::Rejected | PhaseStatus::Failed))
                })
                .map(|p| p.name.clone())
                .collect()
        };
        let mut any = false;
        for name in ended {
            let snapshot = self.store().state.clone();
            let asked = self.unless_cancelled(self.gate.retry_requested(&self.wf, &snapshot, &name)).await?;
            if asked != Some(true) {
                continue;
            }
            let mut store = self.store();
            if let Some(ps) = store.state.phases.get_mut(&name) {
                ps.start_over();
                any = true;
                self.emit(Event::RetryRequested { phase: name });
            }
        }
        Ok(any)
    }

    /// A gated phase counts as approved only if the gate's backend confirms it: a state read
    /// from a file or carried by a comment is progress, never a decision. An approval the
    /// backend does not confirm (and a gated phase that finished without its gate) waits at its
    /// gate again, and the phases after it run again once it is decided.
    async fn confirm_approvals(&self) -> Result<(), EngineError> {
        let claimed: Vec<String> = {
            let store = self.store();
            self.wf
                .phases
                .iter()
                .filter(|p| p.requires_consensus)
                .filter(|p| {
                    store
                        .state
                        .phases
                        .get(&p.name)
                        .is_some_and(|s| matches!(s.status, PhaseStatus::Approved | PhaseStatus::Succeeded))
                })
                .map(|p| p.name.clone())
                .collect()
        };
        for name in claimed {
            let snapshot = self.store().state.clone();
            let confirmed = snapshot.phases[&name].status == PhaseStatus::Approved
                && match self.unless_cancelled(self.gate.confirm(&self.wf, &snapshot, &name)).await? {
                    Some(c) => c,
                    None => return Ok(()),
                };
            if confirmed {
                continue;
            }
            let mut store = self.store();
            if let Some(ps) = store.state.phases.get_mut(&name) {
                // Its gate opens again: a round that was decided stays decided, one that
                // was not (or whose outputs a push changed) starts anew.
                ps.status = PhaseStatus::AwaitingApproval;
                ps.gate = None;
            }
            // What ran after an unconfirmed approval ran without one.
            for later in plan::dependents(&self.wf, &name) {
                if let Some(ps) = store.state.phases.get_mut(&later)
                    && ps.status != PhaseStatus::Pending
                {
                    ps.start_over();
                }
            }
            self.emit(Event::GateUnconfirmed { phase: name });
        }
        self.reset_unreachable();
        Ok(())
    }

    /// A phase can have run only after every phase it needs was done: a state that says
    /// otherwise (a forged or hand-edited one, or one whose gate was not confirmed) has the
    /// phase run again once its needs are done.
    fn reset_unreachable(&self) {
        let mut store = self.store();
        for phase in plan::topological(&self.wf) {
            let status = store.state.phases.get(&phase.name).map(|p| p.status).unwrap_or(PhaseStatus::Pending);
            if status == PhaseStatus::Pending {
                continue;
            }
            let unmet = phase.needs.iter().any(|n| !store.state.phases.get(n).is_some_and(|p| p.status.is_done()));
            if unmet && let Some(ps) = store.state.phases.get_mut(&phase.name) {
                ps.start_over();
            }
        }
    }

    async fn run_phase(self: &Arc<Self>, name: &str, slots: Slots) -> Result<PhaseStatus, EngineError> {
        let owner = Arc::clone(&slots.owners).try_acquire_owned().ok();
        let slots = Slots { own: Arc::new(Semaphore::new(usize::from(owner.is_some()))), ..slots };
        let phase =
            self.wf.phase(name).cloned().ok_or_else(|| EngineError::Internal(format!("unknown phase `{name}`")))?;
        let started = Instant::now();
        let started_state = {
            let mut store = self.store();
            let ps = store.state.phases.entry(name.to_owned()).or_insert_with(PhaseState::pending);
            if ps.status != PhaseStatus::Running {
                // A fresh start (a resumed phase keeps its finished agents); what an earlier run
                // did is kept for the timeline.
                ps.archive();
                ps.runs = ps.runs.saturating_add(1);
                ps.started_at = Some(Utc::now());
                ps.agents.clear();
            }
            ps.status = PhaseStatus::Running;
            ps.finished_at = None;
            ps.validation = None;
            ps.gate = None;
            ps.error = None;
            store.save()?;
            store.state.clone()
        };
        // Written while the agents start.
        self.record_later(Lane::Metrics, started_state, |r, wf, state| r.metrics(wf, state));
        self.emit(Event::PhaseStarted {
            phase: name.to_owned(),
            agents: phase.agents.len(),
            parallel: phase.parallel || self.opts.force_parallel,
        });
        let (root, state_file) = (self.wf.root.clone(), self.wf.settings.state_file.clone());
        let before = tokio::task::spawn_blocking(move || Snapshot::take(&root, &state_file, true))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;

        let parallel = phase.parallel || self.opts.force_parallel;
        let todo: Vec<String> = {
            let store = self.store();
            let done = &store.state.phases[name].agents;
            // A sequential phase stops at its first failed agent, also when the phase is resumed
            // with one (the process was killed after that agent's end was journaled, before the
            // phase's end was saved): what comes after it never runs.
            let stopped = !parallel && done.values().any(|a| a.status == AgentStatus::Failed);
            phase
                .agents
                .iter()
                .filter(|_| !stopped)
                .filter(|a| {
                    !matches!(done.get(*a).map(|s| s.status), Some(AgentStatus::Succeeded | AgentStatus::Failed))
                })
                .filter(|a| self.opts.only_agent.as_ref().is_none_or(|only| only == *a))
                .cloned()
                .collect()
        };
        let mut interrupted = false;
        if parallel {
            // Tasks are spawned as slots free up, and share one copy of the phase: a task per
            // agent up front, each with its own copy of the phase's agent list, made memory grow
            // with the square of the phase's size.
            let shared = Arc::new(phase.clone());
            let mut queue = todo.into_iter();
            let mut set = JoinSet::new();
            loop {
                while set.len() < slots.ahead && !self.cancelled() {
                    let Some(agent) = queue.next() else { break };
                    let engine = Arc::clone(self);
                    let (phase, slots) = (Arc::clone(&shared), slots.clone());
                    set.spawn(async move { engine.run_agent(&phase, &agent, slots).await });
                }
                let Some(r) = set.join_next().await else { break };
                match r.map_err(|e| EngineError::Internal(format!("an agent task failed: {e}")))?? {
                    AgentEnd::Interrupted => interrupted = true,
                    AgentEnd::Finished(_) => {}
                }
            }
        } else {
            for agent in todo {
                match self.run_agent(&phase, &agent, slots.clone()).await? {
                    AgentEnd::Interrupted => {
                        interrupted = true;
                        break;
                    }
                    AgentEnd::Finished(AgentStatus::Failed) => break,
                    AgentEnd::Finished(_) => {}
                }
            }
        }
        if let (Some(only), false) = (&self.opts.only_agent, interrupted || self.cancelled()) {
            // One agent in a job of its own: keep what it changed for the job that ends the phase.
            let (root, state_file) = (self.wf.root.clone(), self.wf.settings.state_file.clone());
            let changes =
                tokio::task::spawn_blocking(move || before.diff(&Snapshot::take(&root, &state_file, false), &root))
                    .await
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
            let mut store = self.store();
            if let Some(a) = store.state.phases.get_mut(name).and_then(|p| p.agents.get_mut(only)) {
                a.changes = Some(changes);
            }
            store.save()?;
            return Ok(PhaseStatus::Running);
        }
        if interrupted || self.cancelled() {
            // Stays `running`: a resume continues it with the finished agents kept.
            self.store().save()?;
            return Ok(PhaseStatus::Running);
        }
        self.finish_phase(&phase, before, started).await
    }

    async fn finish_phase(
        self: &Arc<Self>,
        phase: &Phase,
        before: Snapshot,
        started: Instant,
    ) -> Result<PhaseStatus, EngineError> {
        let (root, state_file, patterns) =
            (self.wf.root.clone(), self.wf.settings.state_file.clone(), phase.artifacts.clone());
        let (run_id, reported, elsewhere): (String, Vec<String>, Vec<ChangeSet>) = {
            let store = self.store();
            let agents = || store.state.phases.get(&phase.name).map(|p| p.agents.values()).into_iter().flatten();
            (
                store.state.run_id.clone(),
                agents().flat_map(|a| a.artifacts.iter().cloned()).collect(),
                // Agents that ran in jobs of their own changed the workspace before this process
                // looked at it.
                agents().filter_map(|a| a.changes.clone()).collect(),
            )
        };
        let for_hygiene = phase.clone();
        let redactor = Arc::clone(&self.redactor);
        let ended = phase.name.clone();
        let (validation, changes, hygiene) = tokio::task::spawn_blocking(move || {
            // Nothing the phase's agents started outlives the phase, not even what left their
            // process groups; and it writes nothing more into what is recorded below.
            executor::escapees::kill_marked(&executor::escapees::phase_prefix(&ended), true);
            let now = Snapshot::take(&root, &state_file, false);
            let mut changes = before.diff(&now, &root);
            for c in &elsewhere {
                changes.absorb(c);
            }
            // What the agents wrote is posted, committed and uploaded: no secret goes with it.
            changes.redacted = workspace::redact_files(&root, changes.added.iter().chain(&changes.modified), &redactor);
            let validation = (!patterns.is_empty()).then(|| workspace::validate(&root, &patterns));
            // The workspace as the hygiene check sees it: as it was, unless redaction rewrote files.
            let after = if changes.redacted.is_empty() { now } else { Snapshot::take(&root, &state_file, false) };
            let hygiene = hygiene::assess(&root, &run_id, &for_hygiene, &changes, &reported, &after);
            (validation, changes, hygiene)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?;

        let (status, error, snapshot) = {
            let mut store = self.store();
            let ps = store.state.phases.get_mut(&phase.name).expect("phase state exists once started");
            let failed: Vec<String> = phase
                .agents
                .iter()
                .filter(|a| ps.agents.get(*a).is_none_or(|s| s.status != AgentStatus::Succeeded))
                .cloned()
                .collect();
            let missing: Vec<String> = validation
                .as_ref()
                .map(|v| v.patterns.iter().filter(|p| p.files.is_empty()).map(|p| format!("`{}`", p.pattern)).collect())
                .unwrap_or_default();
            let (status, error) = if !failed.is_empty() {
                let list = failed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
                (
                    PhaseStatus::Failed,
                    Some(format!("agent{} {list} did not succeed", if failed.len() == 1 { "" } else { "s" })),
                )
            } else if !missing.is_empty() {
                (
                    PhaseStatus::Failed,
                    Some(format!(
                        "no file matches artifact pattern{} {}",
                        if missing.len() == 1 { "" } else { "s" },
                        missing.join(", ")
                    )),
                )
            } else if phase.requires_consensus {
                (PhaseStatus::AwaitingApproval, None)
            } else {
                (PhaseStatus::Succeeded, None)
            };
            ps.status = status;
            ps.error = error.clone();
            ps.validation = validation;
            ps.changes = Some(changes);
            ps.finished_at = Some(Utc::now());
            ps.duration_s = Some(started.elapsed().as_secs_f64());
            store.state.hygiene = Some(hygiene.summary());
            if status == PhaseStatus::AwaitingApproval {
                // Saved first: if the process dies while the gate opens, a resume opens it again
                // (a gate finds its own earlier request, so nothing is posted twice).
                store.save()?;
            }
            (status, error, store.state.clone())
        };
        // Otherwise saved by the run's loop before anything after this phase starts, or while
        // other phases run; when the run ends here, by the run's end, which saves anyway: one
        // fsync'd write of the whole state, not two. Said once saved (below).
        // The records (hygiene, validation report, bundle, metrics) are written off the lock.
        let name = phase.name.clone();
        let gated = status == PhaseStatus::AwaitingApproval;
        // The metrics follow at most once a second here: the next phase's start and the run's end
        // write them anyway.
        let metrics = !gated && self.recorder.metrics_due();
        let reports = move |r: &Recorder, _: &Workflow, state: &RunState| {
            r.hygiene(&hygiene)?;
            r.phase(state, &name)
        };
        let snapshot = if gated {
            // In place before the gate publishes.
            self.record(Lane::Phases, snapshot.clone(), reports).await?;
            Some(snapshot)
        } else {
            // Written while the run goes on to its next phase or its end, from one copy.
            let snapshot = Arc::new(snapshot);
            if metrics {
                self.record_later(Lane::Metrics, Arc::clone(&snapshot), |r, wf, state| r.metrics(wf, state));
            }
            self.record_later(Lane::Phases, snapshot, reports);
            None
        };
        let mut gate_request = None;
        if let Some(snapshot) = snapshot {
            // The gate publishes (REQUEST.md, a pull-request comment carrying the state): what it
            // sees is redacted. It may call GitHub: not under the lock, and not past a cancel (the
            // phase is saved as awaiting approval; a resume opens its gate).
            let snapshot = self.redacted(snapshot);
            let Some(request) = self.unless_cancelled(self.gate.open(&self.wf, &snapshot, &phase.name)).await? else {
                self.emit(Event::PhaseFinished {
                    phase: phase.name.clone(),
                    status,
                    error,
                    duration: started.elapsed(),
                });
                return Ok(status);
            };
            let state = {
                let mut store = self.store();
                if let Some(ps) = store.state.phases.get_mut(&phase.name) {
                    ps.gate = Some(GateState { requested_at: Utc::now(), request: request.clone(), decision: None });
                }
                store.save()?;
                store.state.clone()
            };
            self.record(Lane::Metrics, state, |r, wf, state| r.metrics(wf, state)).await?;
            gate_request = Some(request);
        }
        let finished = Event::PhaseFinished { phase: phase.name.clone(), status, error, duration: started.elapsed() };
        if !gated {
            self.ended_unsaved.lock().unwrap_or_else(|e| e.into_inner()).push(finished);
            return Ok(status);
        }
        self.emit(finished);
        if let Some(request) = gate_request {
            self.emit(Event::GateOpened { phase: phase.name.clone(), request });
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::spare_in_line;

    #[test]
    fn the_line_holds_seven_spares_per_worker_within_the_open_files_budget() {
        assert_eq!(spare_in_line(2, 1024), 14);
        // At most 64, and at most a 16th of the limit on open files.
        assert_eq!(spare_in_line(32, 1_048_576), 64);
        assert_eq!(spare_in_line(8, 256), 16);
        // Never fewer than one per worker, as before.
        assert_eq!(spare_in_line(4, 64), 4);
        assert_eq!(spare_in_line(100, 1024), 100);
        assert_eq!(spare_in_line(1, 0), 1);
    }
}
