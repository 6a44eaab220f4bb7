//! Running one agent: its prompt, its transcript, its attempts under the retry policy, and its
//! outcome in the journal.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chrono::Utc;

use super::runner::{AgentEnd, Engine, EngineError, Slots, transcript_path};
use super::{Event, context, retry};
use crate::config::Phase;
use crate::executor::{self, AttemptContext, AttemptReport};
use crate::state::{AgentState, AgentStatus, Attempt, RefusedArtifact, RunState, StateError};

impl Engine {
    pub(super) async fn run_agent(
        self: &Arc<Self>,
        phase: &Phase,
        name: &str,
        slots: Slots,
    ) -> Result<AgentEnd, EngineError> {
        let Some(_prepared) = self.prepared(&slots).await? else { return Ok(AgentEnd::Interrupted) };
        if self.cancelled() {
            return Ok(AgentEnd::Interrupted);
        }
        let agent = &self.wf.agents[name];
        let command = agent.command_for(&phase.name);
        let (run_id, mut agent_state, had_record) = {
            let store = self.store();
            let state: &RunState = &store.state;
            let previous = state.phases.get(&phase.name).and_then(|p| p.agents.get(name)).cloned();
            let had_record = previous.is_some();
            let agent_state = AgentState {
                status: AgentStatus::Running,
                command: command.clone(),
                transcript: transcript_path(&state.run_id, &phase.name, name),
                attempts: previous.map(|p| p.attempts).unwrap_or_default(),
                artifacts: Vec::new(),
                refused_artifacts: Vec::new(),
                pgid: None,
                pgid_leader: None,
                attempt_started_at: None,
                duration_s: None,
                changes: None,
            };
            (state.run_id.clone(), agent_state, had_record)
        };
        // An agent that never started (the run was stopped while it waited in line) is recorded
        // only if it was before: otherwise it is left out, as the agents behind it are.
        let never_started = |engine: &Engine, agent_state: AgentState| -> Result<AgentEnd, EngineError> {
            if had_record || !agent_state.attempts.is_empty() {
                engine.store().record_agent(&phase.name, name, agent_state)?;
            }
            Ok(AgentEnd::Interrupted)
        };
        // The agent's time runs from its first attempt's start (below): not the wait for a slot.
        let mut started = Instant::now();
        let mut env = vec![
            ("ORCHESTRATOR_RUN_ID".to_owned(), run_id.clone()),
            ("ORCHESTRATOR_PHASE".to_owned(), phase.name.clone()),
            ("ORCHESTRATOR_AGENT".to_owned(), name.to_owned()),
            ("ORCHESTRATOR_WORKSPACE".to_owned(), self.root.display().to_string()),
        ];
        let mut transcript = self.open_transcript(&agent_state.transcript)?;
        let mut prompt_text = None;
        let prepared = match self.prepare_prompt(phase, name) {
            Ok(None) if agent.llm().is_some() => Err(format!(
                "LLM agent `{name}` has no prompt template at `{}`",
                crate::prompt::template_path(agent).display()
            )),
            other => other,
        };
        match prepared {
            Ok(Some((prompt_file, text))) => {
                env.push(("ORCHESTRATOR_PROMPT_FILE".to_owned(), prompt_file));
                prompt_text = Some(text);
            }
            Ok(None) => {}
            Err(message) => {
                let _ = writeln!(transcript, "=== orchestrator: agent `{name}`, phase `{}`: {message} ===", phase.name);
                let _ = transcript.flush();
                let failed = AttemptReport { error: Some(message.clone()), ..AttemptReport::default() };
                agent_state.attempts.push(attempt_record(
                    agent_state.attempts.len() as u32 + 1,
                    Utc::now(),
                    0.0,
                    &failed,
                ));
                return self
                    .finish_agent(
                        phase,
                        name,
                        agent_state,
                        AgentStatus::Failed,
                        message,
                        started,
                        AttemptReport::default(),
                    )
                    .await;
            }
        }

        let policy = &self.wf.settings.retry;
        let max_attempts = policy.retries + 1;
        let timeout = self.opts.timeout.unwrap_or_else(|| self.wf.timeout_for(phase));
        let executor = executor::for_agent(agent);
        let mut last = AttemptReport::default();
        for attempt in 1..=max_attempts {
            // A shell agent's slot is taken by its launcher (see `executor::launcher`); others hold
            // one from the engine for the attempt, waiting in the launcher's line too.
            let running = if executor.takes_own_slot() {
                None
            } else {
                let turn = executor::launcher::Turn { group: &phase.name, retry: attempt > 1 };
                let Some(permit) = executor::launcher::acquire(&slots.run, &self.cancel, turn).await else {
                    agent_state.status = AgentStatus::Pending;
                    return never_started(self, agent_state);
                };
                Some(permit)
            };
            // The LLM exchange records: inside the workspace only (the folder may be a link, put
            // there by an agent that ran while this one waited), checked as the attempt starts;
            // a refusal is the attempt's error. Other agents keep none, and their spawn does not
            // pay for the check.
            let records = agent.llm().map(|_| {
                let rel = format!(".claude/agent_outputs/{name}/{}", phase.name);
                match crate::report::confined_dir(&self.root, &rel) {
                    Ok(_) => Ok(rel),
                    Err(e) => Err(e.to_string()),
                }
            });
            let number = agent_state.attempts.len() as u32 + 1;
            // When the attempt started: set by `on_start`, once it has its slot.
            let began: Arc<OnceLock<(chrono::DateTime<Utc>, Instant)>> = Arc::default();
            let reopen_error: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
            let on_start = {
                let (engine, began, reopen_error) = (Arc::clone(self), Arc::clone(&began), Arc::clone(&reopen_error));
                let (phase_name, agent_name, command) = (phase.name.clone(), name.to_owned(), command.clone());
                let rel = agent_state.transcript.clone();
                Box::new(move |transcript: &mut BufWriter<File>| {
                    // The transcript was opened when the agent was prepared; if an agent removed,
                    // replaced or moved it (or its folder) meanwhile, it is opened again where it
                    // belongs, with the same checks.
                    if !engine.transcript_holds(&rel, transcript.get_ref()) {
                        match engine.append_transcript(&rel) {
                            Ok(file) => {
                                let _ = transcript.flush();
                                *transcript.get_mut() = file;
                            }
                            Err(e) => *reopen_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e),
                        }
                    }
                    let start = Utc::now();
                    let _ = began.set((start, Instant::now()));
                    let _ = writeln!(
                        transcript,
                        "=== orchestrator: agent `{agent_name}`, phase `{phase_name}`, attempt {attempt} of {max_attempts} ===\ncommand: {command}\nstarted: {}\ntimeout: {:.1}s\n--- output ---",
                        start.to_rfc3339(),
                        timeout.as_secs_f64()
                    );
                    engine.emit(Event::AttemptStarted { phase: phase_name, agent: agent_name, attempt, max_attempts });
                })
            };
            let mut env = env.clone();
            env.push(("ORCHESTRATOR_ATTEMPT".to_owned(), attempt.to_string()));
            let journal_error: Arc<Mutex<Option<StateError>>> = Arc::default();
            let mut report = {
                let engine = Arc::clone(self);
                let running = agent_state.clone();
                let (phase_name, agent_name, journal_error) =
                    (phase.name.clone(), name.to_owned(), Arc::clone(&journal_error));
                let began = Arc::clone(&began);
                let on_spawn = Box::new(move |pgid: i32, leader: Option<crate::state::GroupStamp>| {
                    let mut running = running;
                    running.pgid = Some(pgid);
                    running.pgid_leader = leader;
                    running.attempt_started_at = began.get().map(|(at, _)| *at);
                    if let Err(e) = engine.store().record_agent(&phase_name, &agent_name, running) {
                        *journal_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    }
                });
                executor
                    .run(AttemptContext {
                        agent,
                        command: &command,
                        prompt: prompt_text.as_deref(),
                        records: records.as_ref().map(|r| r.as_deref().map_err(String::as_str)),
                        attempt,
                        cwd: &self.wf.root,
                        workspace: &self.workspace,
                        env: &env,
                        timeout,
                        kill_grace: self.wf.settings.kill_grace,
                        messages: &policy.retryable_messages,
                        transcript: &mut transcript,
                        redactor: &self.redactor,
                        cancel: self.cancel.clone(),
                        slots: Some(&slots.run),
                        on_start,
                        on_spawn,
                    })
                    .await
            };
            if let Some(running) = running {
                // To the next in line, whose turn it is (see `launcher::Turn`).
                executor::launcher::hand_on(running);
                // Let the agent waiting for this slot start before this one's bookkeeping.
                tokio::task::yield_now().await;
            }
            // An agent replaced this one's transcript by a link (or a FIFO, or a file with other
            // hard links) while it waited: its output went nowhere the run records.
            if let Some(e) = reopen_error.lock().unwrap_or_else(|e| e.into_inner()).take()
                && report.error.is_none()
            {
                report.error = Some(format!("could not write the transcript `{}`: {e}", agent_state.transcript));
            }
            if let Some(e) = journal_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Err(e.into());
            }
            let Some(&(attempt_start, clock)) = began.get() else {
                // The run was cancelled while the attempt waited for its slot: it never started.
                agent_state.status = AgentStatus::Pending;
                return never_started(self, agent_state);
            };
            if attempt == 1 {
                started = clock;
            }
            let duration = clock.elapsed().as_secs_f64();
            let mut record = attempt_record(number, attempt_start, duration, &report);
            if record.timed_out && report.error.is_none() && !report.cancelled {
                record.timeout_s = Some(timeout.as_secs_f64());
            }
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
            // A timeout says its limit and how long the agent took to stop (grace included).
            let outcome = if record.timed_out {
                format!("{} after {}", record.outcome(), crate::state::seconds(record.duration_s))
            } else {
                record.outcome()
            };
            agent_state.attempts.push(record);
            let status = if succeeded { AgentStatus::Succeeded } else { AgentStatus::Failed };
            let end = self.finish_agent(phase, name, agent_state, status, outcome, started, report).await;
            let _ = transcript.flush();
            return end;
        }
        let outcome = agent_state.attempts.last().map(Attempt::outcome).unwrap_or_default();
        self.finish_agent(phase, name, agent_state, AgentStatus::Failed, outcome, started, last).await
    }

    #[expect(clippy::too_many_arguments)]
    async fn finish_agent(
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
            match self.workspace.reported(reported) {
                Ok(rel) if !agent_state.artifacts.contains(&rel) => agent_state.artifacts.push(rel),
                Ok(_) => {}
                Err(reason) => refused
                    .push(RefusedArtifact { path: self.redactor.redact_str(reported), reason: reason.to_string() }),
            }
        }
        if !refused.is_empty() {
            // The agent may have swapped its transcript for a link: never appended through it.
            if let Ok(mut f) = self.append_transcript(&agent_state.transcript) {
                for r in &refused {
                    let _ = writeln!(f, "=== refused artifact `{}`: {} ===", r.path, r.reason);
                }
            }
        }
        agent_state.refused_artifacts = refused.clone();
        agent_state.status = status;
        agent_state.pgid = None;
        agent_state.pgid_leader = None;
        let duration = started.elapsed();
        agent_state.duration_s = Some(duration.as_secs_f64());
        let attempts = agent_state.attempts.len() as u32;
        let (artifacts, transcript) = (agent_state.artifacts.len(), agent_state.transcript.clone());
        let due = {
            let mut store = self.store();
            store.record_agent(&phase.name, name, agent_state)?;
            // The metrics at most once a second, from a copy, written off the lock.
            self.recorder.metrics_due().then(|| store.state.clone())
        };
        if let Some(state) = due {
            self.record(super::runner::Lane::Metrics, state, |r, wf, state| r.metrics(wf, state)).await?;
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
        let file = self.append_transcript(rel).map_err(|source| EngineError::Write { path: rel.to_owned(), source })?;
        Ok(BufWriter::with_capacity(16 * 1024, file))
    }

    /// Whether `file` is still the transcript at `rel`, in the transcripts' folder where it was
    /// opened (see `transcript::Folder::holds`).
    fn transcript_holds(&self, rel: &str, file: &File) -> bool {
        let held = self.transcripts.lock().unwrap_or_else(|e| e.into_inner()).clone();
        held.is_some_and(|folder| folder.holds(rel, file))
    }

    /// The transcript at `rel`, to append to, in the transcripts' folder: opened once per run
    /// (inside the workspace only: a folder on the way may be a link the pull request made), and
    /// again, with the same checks, if an agent moved or removed it.
    fn append_transcript(&self, rel: &str) -> std::io::Result<File> {
        let held = self.transcripts.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let folder = match held {
            Some(f) if f.in_place() => f,
            _ => {
                let f = Arc::new(crate::transcript::Folder::for_writing(&self.wf.root)?);
                *self.transcripts.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&f));
                f
            }
        };
        folder.append(rel)
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
        // Inside the workspace only (the folder may be a link), replacing a link at its name.
        let dir = crate::report::confined_dir(&self.root, &format!(".claude/agent_outputs/{name}/{}", phase.name))
            .map_err(|e| e.to_string())?;
        let out = dir.join("prompt.md");
        crate::state::replace_file(&out, self.redactor.redact_str(&rendered).as_bytes())
            .map_err(|e| format!("cannot write `{}`: {e}", out.display()))?;
        Ok(Some((out.display().to_string(), rendered)))
    }
}

/// The record of an attempt, from what the executor reported.
fn attempt_record(number: u32, started_at: chrono::DateTime<Utc>, duration_s: f64, report: &AttemptReport) -> Attempt {
    Attempt {
        number,
        started_at,
        duration_s,
        exit_code: report.exit_code,
        signal: report.signal,
        timed_out: report.timed_out,
        timeout_s: None,
        error: report.error.clone().or_else(|| report.cancelled.then(|| "interrupted".to_owned())),
        retry_reason: None,
        retry_delay_s: None,
        leaked_output: report.leaked_output,
        usage: report.usage.clone(),
    }
}
