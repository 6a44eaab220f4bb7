//! Scheduling phases and agents, with retries, cancellation and durable records.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::{Event, context, plan, retry};
use crate::config::{Phase, Workflow};
use crate::executor::{self, AttemptContext, AttemptReport, Cancel, Redactor};
use crate::gate::{Gate, GateError};
use crate::report::{Recorder, hygiene};
use crate::state::{
    AgentState, AgentStatus, Attempt, GateState, PhaseState, PhaseStatus, RefusedArtifact, RunState, RunStatus,
    StateError, StateStore,
};
use crate::workspace::{self, Snapshot};

/// How much of the workflow one command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Until the run completes, fails, or every remaining phase waits on a gate.
    Continue,
    /// The phases that are ready now, then stop.
    Step,
    /// This phase only.
    Phase(String),
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    /// Overrides `max_parallel_agents`.
    pub max_workers: Option<usize>,
    /// Overrides every attempt's timeout.
    pub timeout: Option<Duration>,
    /// Run every phase's agents concurrently, even where `parallel` is false.
    pub force_parallel: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
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
}

#[derive(Debug)]
pub struct RunSummary {
    pub status: RunStatus,
    /// Phases this command ran (to any outcome).
    pub ran: Vec<String>,
    pub interrupted: bool,
}

/// The transcript of `agent` in `phase`, relative to the workspace.
pub fn transcript_path(run_id: &str, phase: &str, agent: &str) -> String {
    format!(".claude/logs/agents/{run_id}_{phase}_{agent}.log")
}

pub struct Engine {
    wf: Arc<Workflow>,
    store: Arc<Mutex<StateStore>>,
    events: mpsc::UnboundedSender<Event>,
    cancel: watch::Receiver<Cancel>,
    gate: Arc<dyn Gate>,
    redactor: Arc<Redactor>,
    /// Each agent's prompt template, read once per command: `None` without one.
    templates: std::collections::HashMap<String, Result<Option<String>, String>>,
    recorder: Recorder,
    root: PathBuf,
    opts: RunOptions,
}

/// Limits on agents: `run` bounds the agents running at once (`max_parallel_agents`);
/// `prepare` bounds those prepared ahead (transcript open, prompt rendered) so the next agent can
/// start the moment a running one ends, without holding a file open for every queued agent.
#[derive(Clone)]
struct Slots {
    run: Arc<Semaphore>,
    prepare: Arc<Semaphore>,
}

impl Slots {
    fn new(workers: usize) -> Slots {
        Slots { run: Arc::new(Semaphore::new(workers)), prepare: Arc::new(Semaphore::new(workers * 2)) }
    }
}

enum AgentEnd {
    Finished(AgentStatus),
    Interrupted,
}

impl Engine {
    pub fn new(
        wf: Arc<Workflow>,
        store: StateStore,
        events: mpsc::UnboundedSender<Event>,
        cancel: watch::Receiver<Cancel>,
        gate: Arc<dyn Gate>,
        redactor: Redactor,
        opts: RunOptions,
    ) -> Engine {
        let root = wf.root.canonicalize().unwrap_or_else(|_| wf.root.clone());
        let recorder = Recorder::new(&wf.root, redactor.clone());
        let templates = wf
            .agents
            .values()
            .map(|a| {
                let rel = crate::prompt::template_path(a);
                let source =
                    crate::prompt::read_template(&wf.root, &rel, a.prompt.is_some()).map_err(|d| d.to_string());
                (a.name.clone(), source)
            })
            .collect();
        Engine {
            wf,
            store: Arc::new(Mutex::new(store)),
            events,
            cancel,
            gate,
            redactor: Arc::new(redactor),
            templates,
            recorder,
            root,
            opts,
        }
    }

    /// The store, back from the engine once it is done.
    pub fn into_store(self) -> Option<StateStore> {
        Arc::into_inner(self.store).map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    fn store(&self) -> MutexGuard<'_, StateStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    fn cancelled(&self) -> bool {
        *self.cancel.borrow() != Cancel::None
    }

    /// A slot from `sem`, or `None` once the run is being cancelled.
    async fn acquire(&self, sem: &Arc<Semaphore>) -> Result<Option<OwnedSemaphorePermit>, EngineError> {
        if self.cancelled() {
            return Ok(None);
        }
        tokio::select! {
            p = Arc::clone(sem).acquire_owned() => p.map(Some).map_err(|e| EngineError::Internal(e.to_string())),
            _ = Self::wait_cancel(self.cancel.clone()) => Ok(None),
        }
    }

    /// Resolves once the run is being cancelled (never, if the canceller is gone).
    async fn wait_cancel(mut cancel: watch::Receiver<Cancel>) {
        if cancel.wait_for(|c| *c != Cancel::None).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Run according to the options; returns the run's status afterwards.
    pub async fn run(self: Arc<Self>) -> Result<RunSummary, EngineError> {
        self.recover()?;
        let workers = self.opts.max_workers.unwrap_or(self.wf.settings.max_parallel_agents).max(1);
        let slots = Slots::new(workers);
        let mut running: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<(String, Result<PhaseStatus, EngineError>)> = JoinSet::new();
        let mut launched = false;
        let mut stop = false;
        let mut first_error: Option<EngineError> = None;
        let mut ran = Vec::new();
        loop {
            if !stop && !self.cancelled() {
                let ready: Vec<String> = match &self.opts.mode {
                    Mode::Phase(name) if !launched => vec![name.clone()],
                    Mode::Step if !launched => {
                        plan::ready(&self.wf, &self.store().state, &running).iter().map(|p| p.name.clone()).collect()
                    }
                    Mode::Continue => {
                        plan::ready(&self.wf, &self.store().state, &running).iter().map(|p| p.name.clone()).collect()
                    }
                    _ => Vec::new(),
                };
                launched = true;
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
            let Some(joined) = tasks.join_next().await else { break };
            match joined {
                Ok((name, result)) => {
                    running.remove(&name);
                    ran.push(name);
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
        let interrupted = self.cancelled();
        let mut store = self.store();
        store.state.interrupted = interrupted;
        let status = store.state.status();
        if status == RunStatus::Completed && store.state.finished_at.is_none() {
            store.state.finished_at = Some(Utc::now());
        }
        store.save()?;
        self.recorder.run(&self.wf, &store.state)?;
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(RunSummary { status, ran, interrupted })
    }

    /// Make a state left by a stopped or killed process runnable again, and re-read gate decisions.
    fn recover(&self) -> Result<(), EngineError> {
        let mut store = self.store();
        let before = store.state.clone();
        store.state.interrupted = false;
        for ps in store.state.phases.values_mut() {
            if ps.status != PhaseStatus::Running {
                continue;
            }
            for agent in ps.agents.values_mut() {
                if agent.status == AgentStatus::Running {
                    // The process that ran it died; make sure nothing of it survives.
                    if let Some(pgid) = agent.pgid.take()
                        && executor::subprocess::group_alive(pgid)
                    {
                        executor::subprocess::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    }
                    agent.status = AgentStatus::Pending;
                }
            }
        }
        let awaiting: Vec<String> = store
            .state
            .phases
            .iter()
            .filter(|(_, p)| p.status == PhaseStatus::AwaitingApproval)
            .map(|(n, _)| n.clone())
            .collect();
        for name in awaiting {
            if let Some(decision) = self.gate.decision(&store.state, &name)? {
                let ps = store.state.phases.get_mut(&name).expect("listed above");
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
        }
        // A fresh run has nothing to recover: skip the fsync'd rewrite.
        if store.state != before {
            store.save()?;
            self.recorder.metrics(&self.wf, &store.state)?;
        }
        Ok(())
    }

    async fn run_phase(self: &Arc<Self>, name: &str, slots: Slots) -> Result<PhaseStatus, EngineError> {
        let phase =
            self.wf.phase(name).cloned().ok_or_else(|| EngineError::Internal(format!("unknown phase `{name}`")))?;
        let started = Instant::now();
        {
            let mut store = self.store();
            let ps = store.state.phases.entry(name.to_owned()).or_insert_with(PhaseState::pending);
            if ps.status != PhaseStatus::Running {
                // A fresh start (a resumed phase keeps its finished agents).
                ps.runs += 1;
                ps.started_at = Some(Utc::now());
                ps.agents.clear();
            }
            ps.status = PhaseStatus::Running;
            ps.finished_at = None;
            ps.validation = None;
            ps.gate = None;
            ps.error = None;
            store.save()?;
            self.recorder.metrics(&self.wf, &store.state)?;
        }
        self.emit(Event::PhaseStarted {
            phase: name.to_owned(),
            agents: phase.agents.len(),
            parallel: phase.parallel || self.opts.force_parallel,
        });
        let (root, state_file) = (self.wf.root.clone(), self.wf.settings.state_file.clone());
        let before = tokio::task::spawn_blocking(move || Snapshot::take(&root, &state_file, true))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;

        let todo: Vec<String> = {
            let store = self.store();
            let done = &store.state.phases[name].agents;
            phase
                .agents
                .iter()
                .filter(|a| {
                    !matches!(done.get(*a).map(|s| s.status), Some(AgentStatus::Succeeded | AgentStatus::Failed))
                })
                .cloned()
                .collect()
        };
        let mut interrupted = false;
        if phase.parallel || self.opts.force_parallel {
            let mut set = JoinSet::new();
            for agent in todo {
                let engine = Arc::clone(self);
                let (phase, slots) = (phase.clone(), slots.clone());
                set.spawn(async move { engine.run_agent(&phase, &agent, slots).await });
            }
            while let Some(r) = set.join_next().await {
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
        let (run_id, reported): (String, Vec<String>) = {
            let store = self.store();
            let agents = store.state.phases.get(&phase.name).map(|p| p.agents.values()).into_iter().flatten();
            (store.state.run_id.clone(), agents.flat_map(|a| a.artifacts.iter().cloned()).collect())
        };
        let for_hygiene = phase.clone();
        let (validation, changes, hygiene) = tokio::task::spawn_blocking(move || {
            let validation = (!patterns.is_empty()).then(|| workspace::validate(&root, &patterns));
            let after = Snapshot::take(&root, &state_file, false);
            let changes = before.diff(&after, &root);
            let hygiene = hygiene::assess(&root, &run_id, &for_hygiene, &changes, &reported, &after);
            (validation, changes, hygiene)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?;

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
        self.recorder.hygiene(&hygiene)?;
        self.recorder.phase(&store.state, &phase.name)?;
        let mut gate_request = None;
        if status == PhaseStatus::AwaitingApproval {
            let request = self.gate.open(&self.wf, &store.state, &phase.name)?;
            let ps = store.state.phases.get_mut(&phase.name).expect("exists");
            ps.gate = Some(GateState { requested_at: Utc::now(), request: request.clone(), decision: None });
            gate_request = Some(request);
        }
        store.save()?;
        self.recorder.metrics(&self.wf, &store.state)?;
        drop(store);
        self.emit(Event::PhaseFinished { phase: phase.name.clone(), status, error, duration: started.elapsed() });
        if let Some(request) = gate_request {
            self.emit(Event::GateOpened { phase: phase.name.clone(), request });
        }
        Ok(status)
    }

    async fn run_agent(self: &Arc<Self>, phase: &Phase, name: &str, slots: Slots) -> Result<AgentEnd, EngineError> {
        let Some(_prepared) = self.acquire(&slots.prepare).await? else { return Ok(AgentEnd::Interrupted) };
        if self.cancelled() {
            return Ok(AgentEnd::Interrupted);
        }
        let agent = &self.wf.agents[name];
        let command = agent.command_for(&phase.name);
        let (run_id, mut agent_state) = {
            let store = self.store();
            let state: &RunState = &store.state;
            let previous = state.phases.get(&phase.name).and_then(|p| p.agents.get(name)).cloned();
            let agent_state = AgentState {
                status: AgentStatus::Running,
                command: command.clone(),
                transcript: transcript_path(&state.run_id, &phase.name, name),
                attempts: previous.map(|p| p.attempts).unwrap_or_default(),
                artifacts: Vec::new(),
                refused_artifacts: Vec::new(),
                pgid: None,
                duration_s: None,
            };
            (state.run_id.clone(), agent_state)
        };
        let started = Instant::now();
        let mut env = vec![
            ("ORCHESTRATOR_RUN_ID".to_owned(), run_id.clone()),
            ("ORCHESTRATOR_PHASE".to_owned(), phase.name.clone()),
            ("ORCHESTRATOR_AGENT".to_owned(), name.to_owned()),
            ("ORCHESTRATOR_WORKSPACE".to_owned(), self.root.display().to_string()),
        ];
        let mut transcript = self.open_transcript(&agent_state.transcript)?;
        let mut prompt_text = None;
        match self.prepare_prompt(phase, name) {
            Ok(Some((prompt_file, text))) => {
                env.push(("ORCHESTRATOR_PROMPT_FILE".to_owned(), prompt_file));
                prompt_text = Some(text);
            }
            Ok(None) if agent.llm().is_some() => {
                let message = format!(
                    "LLM agent `{name}` has no prompt template at `{}`",
                    crate::prompt::template_path(agent).display()
                );
                return self.finish_agent(
                    phase,
                    name,
                    agent_state,
                    AgentStatus::Failed,
                    message,
                    started,
                    AttemptReport::default(),
                );
            }
            Ok(None) => {}
            Err(message) => {
                let _ = writeln!(transcript, "=== orchestrator: agent `{name}`, phase `{}`: {message} ===", phase.name);
                let _ = transcript.flush();
                agent_state.attempts.push(Attempt {
                    number: agent_state.attempts.len() as u32 + 1,
                    started_at: Utc::now(),
                    duration_s: 0.0,
                    exit_code: None,
                    signal: None,
                    timed_out: false,
                    error: Some(message.clone()),
                    retry_reason: None,
                    retry_delay_s: None,
                    leaked_output: false,
                    usage: None,
                });
                return self.finish_agent(
                    phase,
                    name,
                    agent_state,
                    AgentStatus::Failed,
                    message,
                    started,
                    AttemptReport::default(),
                );
            }
        }

        let policy = &self.wf.settings.retry;
        let max_attempts = policy.retries + 1;
        let timeout = self.opts.timeout.unwrap_or_else(|| self.wf.timeout_for(phase));
        let executor = executor::for_agent(agent);
        let records = self.root.join(format!(".claude/agent_outputs/{name}/{}", phase.name));
        let mut last = AttemptReport::default();
        for attempt in 1..=max_attempts {
            let Some(running) = self.acquire(&slots.run).await? else {
                agent_state.status = AgentStatus::Pending;
                self.store().record_agent(&phase.name, name, agent_state)?;
                return Ok(AgentEnd::Interrupted);
            };
            let number = agent_state.attempts.len() as u32 + 1;
            let attempt_start = Utc::now();
            let _ = writeln!(
                transcript,
                "=== orchestrator: agent `{name}`, phase `{}`, attempt {attempt} of {max_attempts} ===\ncommand: {command}\nstarted: {}\ntimeout: {:.1}s\n--- output ---",
                phase.name,
                attempt_start.to_rfc3339(),
                timeout.as_secs_f64()
            );
            self.emit(Event::AttemptStarted {
                phase: phase.name.clone(),
                agent: name.to_owned(),
                attempt,
                max_attempts,
            });
            let mut env = env.clone();
            env.push(("ORCHESTRATOR_ATTEMPT".to_owned(), attempt.to_string()));
            let clock = Instant::now();
            let journal_error: Arc<Mutex<Option<StateError>>> = Arc::default();
            let report = {
                let store = Arc::clone(&self.store);
                let running = agent_state.clone();
                let (phase_name, agent_name, journal_error) =
                    (phase.name.clone(), name.to_owned(), Arc::clone(&journal_error));
                let on_spawn = Box::new(move |pgid: i32| {
                    let mut running = running;
                    running.pgid = Some(pgid);
                    let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
                    if let Err(e) = store.record_agent(&phase_name, &agent_name, running) {
                        *journal_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    }
                });
                executor
                    .run(AttemptContext {
                        agent,
                        command: &command,
                        prompt: prompt_text.as_deref(),
                        records: &records,
                        attempt,
                        cwd: &self.wf.root,
                        env: &env,
                        timeout,
                        kill_grace: self.wf.settings.kill_grace,
                        messages: &policy.retryable_messages,
                        transcript: &mut transcript,
                        redactor: &self.redactor,
                        cancel: self.cancel.clone(),
                        on_spawn,
                    })
                    .await
            };
            drop(running);
            // Let the agent waiting for this slot start before this one's bookkeeping.
            tokio::task::yield_now().await;
            if let Some(e) = journal_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Err(e.into());
            }
            let duration = clock.elapsed().as_secs_f64();
            let mut record = Attempt {
                number,
                started_at: attempt_start,
                duration_s: duration,
                exit_code: report.exit_code,
                signal: report.signal,
                timed_out: report.timed_out,
                error: report.error.clone().or_else(|| report.cancelled.then(|| "interrupted".to_owned())),
                retry_reason: None,
                retry_delay_s: None,
                leaked_output: report.leaked_output,
                usage: report.usage.clone(),
            };
            let mut footer = format!("=== attempt {attempt}: {} after {duration:.2}s", record.outcome());
            if report.leaked_output {
                footer.push_str(
                    "; the agent exited but its children kept its output open, so its process group was killed",
                );
            }
            if report.cancelled {
                let _ = writeln!(transcript, "{footer} ===");
                let _ = transcript.flush();
                agent_state.attempts.push(record);
                agent_state.status = AgentStatus::Pending;
                agent_state.duration_s = Some(started.elapsed().as_secs_f64());
                self.store().record_agent(&phase.name, name, agent_state)?;
                return Ok(AgentEnd::Interrupted);
            }
            let succeeded = record.succeeded();
            let reason = if succeeded || attempt == max_attempts { None } else { retry::retry_reason(policy, &report) };
            if let Some(reason) = reason {
                // At least as long as the server asked (`retry-after`).
                let delay = retry::delay(policy, attempt, fastrand::f64()).max(report.retry_after.unwrap_or_default());
                record.retry_reason = Some(reason.clone());
                record.retry_delay_s = Some(delay.as_secs_f64());
                let _ = writeln!(transcript, "{footer}; retrying in {:.2}s because {reason} ===", delay.as_secs_f64());
                let _ = transcript.flush();
                let outcome = record.outcome();
                agent_state.attempts.push(record);
                self.store().record_agent(&phase.name, name, agent_state.clone())?;
                self.emit(Event::Retrying {
                    phase: phase.name.clone(),
                    agent: name.to_owned(),
                    attempt,
                    outcome,
                    reason,
                    delay,
                });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = Self::wait_cancel(self.cancel.clone()) => {
                        agent_state.status = AgentStatus::Pending;
                        self.store().record_agent(&phase.name, name, agent_state)?;
                        return Ok(AgentEnd::Interrupted);
                    }
                }
                last = report;
                continue;
            }
            let _ = writeln!(transcript, "{footer} ===");
            let outcome = record.outcome();
            agent_state.attempts.push(record);
            let status = if succeeded { AgentStatus::Succeeded } else { AgentStatus::Failed };
            return self.finish_agent(phase, name, agent_state, status, outcome, started, report).inspect(|_| {
                let _ = transcript.flush();
            });
        }
        let outcome = agent_state.attempts.last().map(Attempt::outcome).unwrap_or_default();
        self.finish_agent(phase, name, agent_state, AgentStatus::Failed, outcome, started, last)
    }

    #[expect(clippy::too_many_arguments)]
    fn finish_agent(
        &self,
        phase: &Phase,
        name: &str,
        mut agent_state: AgentState,
        status: AgentStatus,
        outcome: String,
        started: Instant,
        report: AttemptReport,
    ) -> Result<AgentEnd, EngineError> {
        let mut refused = report.refused.clone();
        for reported in &report.artifacts {
            match workspace::confine(&self.root, reported) {
                Ok(rel) if !agent_state.artifacts.contains(&rel) => agent_state.artifacts.push(rel),
                Ok(_) => {}
                Err(reason) => refused.push(RefusedArtifact { path: self.redactor.redact_str(reported), reason }),
            }
        }
        if !refused.is_empty() {
            let path = self.wf.root.join(&agent_state.transcript);
            if let Ok(mut f) = OpenOptions::new().append(true).open(&path) {
                for r in &refused {
                    let _ = writeln!(f, "=== refused artifact `{}`: {} ===", r.path, r.reason);
                }
            }
        }
        agent_state.refused_artifacts = refused.clone();
        agent_state.status = status;
        agent_state.pgid = None;
        let duration = started.elapsed();
        agent_state.duration_s = Some(duration.as_secs_f64());
        let attempts = agent_state.attempts.len() as u32;
        let (artifacts, transcript) = (agent_state.artifacts.len(), agent_state.transcript.clone());
        {
            let mut store = self.store();
            store.record_agent(&phase.name, name, agent_state)?;
            self.recorder.metrics_throttled(&self.wf, &store.state)?;
        }
        self.emit(Event::AgentFinished {
            phase: phase.name.clone(),
            agent: name.to_owned(),
            succeeded: status == AgentStatus::Succeeded,
            outcome,
            attempts,
            duration,
            artifacts,
            refused,
            leaked_output: report.leaked_output,
            tail: report.tail,
            transcript,
        });
        Ok(AgentEnd::Finished(status))
    }

    fn open_transcript(&self, rel: &str) -> Result<BufWriter<File>, EngineError> {
        let path = self.wf.root.join(rel);
        let write_err = |source| EngineError::Write { path: rel.to_owned(), source };
        let open = || OpenOptions::new().create(true).append(true).open(&path);
        let file = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The log folder does not exist yet; the first agent creates it.
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(write_err)?;
                }
                open()
            }
            other => other,
        }
        .map_err(write_err)?;
        Ok(BufWriter::with_capacity(16 * 1024, file))
    }

    /// Render the agent's prompt into `.claude/agent_outputs/<agent>/<phase>/prompt.md`; returns
    /// its absolute path, `None` without a template, or the error as a sentence.
    fn prepare_prompt(&self, phase: &Phase, name: &str) -> Result<Option<(String, String)>, String> {
        let agent = &self.wf.agents[name];
        let rel = crate::prompt::template_path(agent);
        let Some(source) = self.templates.get(name).cloned().unwrap_or(Ok(None))? else {
            return Ok(None);
        };
        // Built only when there is a template: the context grows with the run, so building it for
        // every agent of a large phase would cost O(agents²).
        let ctx = context::for_agent(&self.wf, &self.store().state, phase, agent);
        let rendered = crate::prompt::render(&rel, &source, &ctx).map_err(|d| d.to_string())?;
        let out = self.root.join(format!(".claude/agent_outputs/{name}/{}/prompt.md", phase.name));
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        }
        std::fs::write(&out, self.redactor.redact_str(&rendered))
            .map_err(|e| format!("cannot write `{}`: {e}", out.display()))?;
        Ok(Some((out.display().to_string(), rendered)))
    }
}
