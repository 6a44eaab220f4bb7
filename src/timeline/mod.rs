//! A run's timeline: phases, agents, attempts and gate waits, as bars in time. Built from the run
//! state alone (so it is exact after a crash: an attempt that was running when the process died
//! is shown as running at the last record), then drawn three ways: a Mermaid Gantt chart for the
//! job summary and the gate comment ([`mermaid`]), Unicode bars for `run status --timeline`
//! ([`terminal`]), and a self-contained HTML report ([`html`]).
//!
//! The model keeps agent-derived text (outcome messages, retry reasons, reviewers, rejection
//! reasons) as it is: each renderer escapes it for its own medium.

pub(crate) mod html;
pub(crate) mod mermaid;
pub(crate) mod terminal;

use chrono::{DateTime, Utc};

use crate::config::Workflow;
use crate::state::{AgentStatus, Attempt, PhaseStatus, RunState, RunStatus};

/// How an attempt ended (or that it had not, at the last record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Outcome {
    Succeeded,
    /// Failed, and another attempt followed.
    Retried,
    Failed,
    TimedOut,
    /// Stopped by a signal to the orchestrator (Ctrl-C, a cancelled job).
    Interrupted,
    /// Running when the state was last written.
    Running,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 6] = [
        Outcome::Succeeded,
        Outcome::Retried,
        Outcome::Failed,
        Outcome::TimedOut,
        Outcome::Interrupted,
        Outcome::Running,
    ];

    pub(crate) fn word(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed out",
            Outcome::Interrupted => "interrupted",
            Outcome::Running => "running",
        }
    }

    /// A class name for HTML and CSS.
    pub(crate) fn class(self) -> &'static str {
        match self {
            Outcome::Succeeded => "ok",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timedout",
            Outcome::Interrupted => "interrupted",
            Outcome::Running => "running",
        }
    }

    fn of(attempt: &Attempt) -> Outcome {
        if attempt.succeeded() {
            Outcome::Succeeded
        } else if attempt.retry_reason.is_some() {
            Outcome::Retried
        } else if attempt.timed_out {
            Outcome::TimedOut
        } else if attempt.error.as_deref() == Some("interrupted") {
            Outcome::Interrupted
        } else {
            Outcome::Failed
        }
    }
}

/// One attempt of one agent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bar {
    pub agent: String,
    /// Which run of the phase (a `run retry` starts another).
    pub run: u32,
    /// The attempt's number (1 for the first).
    pub attempt: u32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub outcome: Outcome,
    /// What happened, in the tool's words (`exit code 2`, `timed out (limit 3s)`) or, for an
    /// agent that could not start, an error message: agent-derived, escape it.
    pub detail: String,
    pub exit_code: Option<i32>,
    /// Why another attempt followed (agent-derived: it may quote the output).
    pub retry_reason: Option<String>,
}

impl Bar {
    pub(crate) fn seconds(&self) -> f64 {
        secs(self.start, self.end)
    }
}

/// Where a gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateOutcome {
    Waiting,
    Approved,
    Rejected,
    /// Never decided: the phase ran again first.
    Superseded,
}

impl GateOutcome {
    pub(crate) fn word(self) -> &'static str {
        match self {
            GateOutcome::Superseded => "superseded",
            GateOutcome::Waiting => "waiting",
            GateOutcome::Approved => "approved",
            GateOutcome::Rejected => "rejected",
        }
    }
}

/// A gate's wait: from its request to the decision, or to `as_of` while it waits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GateBar {
    /// The run of the phase it closed.
    pub round: u32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub outcome: GateOutcome,
    /// Who decided (a reviewer's login or a local user name: untrusted).
    pub by: Option<String>,
    /// Why it was rejected (untrusted).
    pub reason: Option<String>,
    /// The head commit the decision was made on (GitHub gates).
    pub commit: Option<String>,
    /// Where the request lives: REQUEST.md's path or the comment's URL.
    pub request: String,
}

impl GateBar {
    pub(crate) fn seconds(&self) -> f64 {
        secs(self.start, self.end)
    }
}

/// One agent of a phase with its attempts, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AgentRow {
    pub name: String,
    pub status: AgentStatus,
    pub bars: Vec<Bar>,
    /// The transcript's path, relative to the workspace.
    pub transcript: String,
}

impl AgentRow {
    /// The outcome that sums the agent up: its last attempt's.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        self.bars.last().map(|b| b.outcome)
    }
}

/// One phase: its agents in the config's order (each with its attempts over the phase's runs),
/// and its gate's rounds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PhaseLane {
    pub name: String,
    pub status: PhaseStatus,
    /// How many times the phase was started.
    pub runs: u32,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub agents: Vec<AgentRow>,
    /// Its gate's rounds: earlier runs' first, the current one last.
    pub gates: Vec<GateBar>,
    /// Why the phase failed (agent-derived).
    pub error: Option<String>,
}

/// Attempts of one outcome in a phase, drawn as one bar when a phase has too many to draw each.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub outcome: Outcome,
    pub attempts: usize,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl PhaseLane {
    pub(crate) fn bars(&self) -> impl Iterator<Item = &Bar> {
        self.agents.iter().flat_map(|a| &a.bars)
    }

    pub(crate) fn attempts(&self) -> usize {
        self.agents.iter().map(|a| a.bars.len()).sum()
    }

    /// The phase's attempts by outcome, in [`Outcome::ALL`]'s order, each spanning its first
    /// start to its last end.
    pub(crate) fn groups(&self) -> Vec<Group> {
        Outcome::ALL
            .iter()
            .filter_map(|&outcome| {
                let mut bars = self.bars().filter(|b| b.outcome == outcome).peekable();
                let first = bars.peek()?;
                let (mut start, mut end, mut attempts) = (first.start, first.end, 0);
                for b in bars {
                    start = start.min(b.start);
                    end = end.max(b.end);
                    attempts += 1;
                }
                Some(Group { outcome, attempts, start, end })
            })
            .collect()
    }

    /// The time the phase covers in the timeline: its recorded span, widened to its bars.
    fn span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let times = self
            .bars()
            .flat_map(|b| [b.start, b.end])
            .chain(self.start)
            .chain(self.end)
            .chain(self.gates.iter().flat_map(|g| [g.start, g.end]));
        let (mut lo, mut hi): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
        for t in times {
            lo = Some(lo.map_or(t, |l| l.min(t)));
            hi = Some(hi.map_or(t, |h| h.max(t)));
        }
        lo.zip(hi)
    }
}

/// A run's timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timeline {
    pub run_id: String,
    pub status: RunStatus,
    /// The run's start; every bar starts at or after it (clamped).
    pub start: DateTime<Utc>,
    /// The end of the picture: the run's end, or `as_of` while it goes on.
    pub end: DateTime<Utc>,
    /// The last time the state recorded: where attempts still running end.
    pub last_record: DateTime<Utc>,
    /// Phases in the config's order (those the state knows).
    pub phases: Vec<PhaseLane>,
}

/// Seconds from `a` to `b` (never negative).
pub(crate) fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    ((b - a).num_milliseconds().max(0)) as f64 / 1000.0
}

fn add_secs(t: DateTime<Utc>, s: f64) -> DateTime<Utc> {
    // A state may hold any number: a negative, NaN or huge duration draws as nothing.
    let ms = if s.is_finite() { (s * 1000.0).clamp(0.0, 1e13) as i64 } else { 0 };
    t.checked_add_signed(chrono::Duration::milliseconds(ms)).unwrap_or(t)
}

impl Timeline {
    /// The timeline of `state`. A gate that still waits is drawn up to `as_of` (the caller's
    /// "now", or any earlier time to draw it only up to the last event); an attempt that was
    /// running at the last record ends at that record, since the state cannot tell whether its
    /// process still runs.
    pub(crate) fn build(wf: &Workflow, state: &RunState, as_of: DateTime<Utc>) -> Timeline {
        // The last thing that happened (an attempt's end, a gate's request or decision), and the
        // last write of the state, which a resume makes even when nothing happens.
        let mut last_record = state.started_at;
        for ps in state.phases.values() {
            for a in ps.agents.values() {
                for t in &a.attempts {
                    last_record = last_record.max(add_secs(t.started_at, t.duration_s));
                }
                if let Some(t) = a.attempt_started_at {
                    last_record = last_record.max(t);
                }
            }
            if let Some(t) = ps.finished_at {
                last_record = last_record.max(t);
            }
            for e in &ps.earlier {
                for t in e.agents.values().flatten() {
                    last_record = last_record.max(add_secs(t.started_at, t.duration_s));
                }
                last_record = last_record.max(e.finished_at.unwrap_or(last_record));
            }
            for g in ps.earlier.iter().filter_map(|e| e.gate.as_ref()).chain(&ps.gate) {
                last_record = last_record.max(g.requested_at);
                if let Some(d) = &g.decision {
                    last_record = last_record.max(d.at);
                }
            }
        }
        let last_event = last_record;
        let last_record = last_record.max(state.updated_at);
        // A waiting gate is drawn to `as_of`, never before the last event: drawn to the last
        // event (an `as_of` in the past), the picture changes only when something happens.
        let as_of = as_of.max(last_event);
        let mut phases = Vec::new();
        for phase in &wf.phases {
            let Some(ps) = state.phases.get(&phase.name) else { continue };
            let bar = |name: &str, run: u32, t: &Attempt| Bar {
                agent: name.to_owned(),
                run,
                attempt: t.number,
                start: t.started_at,
                end: add_secs(t.started_at, t.duration_s),
                outcome: Outcome::of(t),
                detail: t.outcome(),
                exit_code: t.exit_code,
                retry_reason: t.retry_reason.clone(),
            };
            // Each agent's attempts over the phase's runs, earlier runs first.
            let mut rows: std::collections::BTreeMap<&String, AgentRow> = std::collections::BTreeMap::new();
            for e in &ps.earlier {
                for (name, attempts) in &e.agents {
                    let row = rows.entry(name).or_insert_with(|| AgentRow {
                        name: name.clone(),
                        status: AgentStatus::Pending,
                        bars: Vec::new(),
                        transcript: String::new(),
                    });
                    row.bars.extend(attempts.iter().map(|t| bar(name, e.run, t)));
                    row.status = match attempts.last() {
                        Some(t) if t.succeeded() => AgentStatus::Succeeded,
                        Some(_) => AgentStatus::Failed,
                        None => row.status,
                    };
                }
            }
            for (name, a) in &ps.agents {
                let row = rows.entry(name).or_insert_with(|| AgentRow {
                    name: name.clone(),
                    status: a.status,
                    bars: Vec::new(),
                    transcript: String::new(),
                });
                row.status = a.status;
                row.transcript = a.transcript.clone();
                row.bars.extend(a.attempts.iter().map(|t| bar(name, ps.runs, t)));
                if a.status == AgentStatus::Running {
                    // Before its process was recorded (or from an older build): it started after
                    // the previous attempt and its retry delay, or with the phase.
                    let start = a
                        .attempt_started_at
                        .or_else(|| {
                            a.attempts
                                .last()
                                .map(|t| add_secs(t.started_at, t.duration_s + t.retry_delay_s.unwrap_or(0.0)))
                        })
                        .or(ps.started_at)
                        .unwrap_or(last_record);
                    row.bars.push(Bar {
                        agent: name.clone(),
                        run: ps.runs,
                        attempt: a.attempts.last().map_or(1, |t| t.number.saturating_add(1)),
                        start,
                        end: last_record.max(start),
                        outcome: Outcome::Running,
                        detail: "running at the last record".into(),
                        exit_code: None,
                        retry_reason: None,
                    });
                }
            }
            // The config's agents first, in its order; then any the state holds besides (a
            // config changed between runs).
            let mut agents: Vec<AgentRow> = phase.agents.iter().filter_map(|n| rows.remove(n)).collect();
            agents.extend(rows.into_values());
            let gate_bar = |g: &crate::state::GateState, round: u32, open: bool, next_start: Option<DateTime<Utc>>| {
                let (outcome, end) = match &g.decision {
                    Some(d) if d.approved => (GateOutcome::Approved, d.at),
                    Some(d) => (GateOutcome::Rejected, d.at),
                    None if open => (GateOutcome::Waiting, as_of),
                    // Never decided, and the phase ran again: it waited until then.
                    None => (GateOutcome::Superseded, next_start.unwrap_or(g.requested_at)),
                };
                GateBar {
                    round,
                    start: g.requested_at,
                    end: end.max(g.requested_at),
                    outcome,
                    by: g.decision.as_ref().map(|d| d.by.clone()),
                    reason: g.decision.as_ref().and_then(|d| d.reason.clone()),
                    commit: g.decision.as_ref().and_then(|d| d.commit.clone()),
                    request: g.request.clone(),
                }
            };
            let mut gates = Vec::new();
            for (i, e) in ps.earlier.iter().enumerate() {
                if let Some(g) = &e.gate {
                    let next = ps.earlier.get(i + 1).and_then(|n| n.started_at).or(ps.started_at);
                    gates.push(gate_bar(g, e.run, false, next));
                }
            }
            if let Some(g) = &ps.gate {
                gates.push(gate_bar(g, ps.runs, ps.status == PhaseStatus::AwaitingApproval, ps.started_at));
            }
            let end = ps.finished_at.or_else(|| {
                (ps.status == PhaseStatus::Running).then_some(last_record).filter(|_| ps.started_at.is_some())
            });
            phases.push(PhaseLane {
                name: phase.name.clone(),
                status: ps.status,
                runs: ps.runs,
                start: ps.earlier.iter().find_map(|e| e.started_at).or(ps.started_at),
                end,
                agents,
                gates,
                error: ps.error.clone(),
            });
        }
        let mut start = state.started_at;
        for p in &phases {
            if let Some((lo, _)) = p.span() {
                start = start.min(lo);
            }
        }
        let waiting = phases.iter().flat_map(|p| &p.gates).any(|g| g.outcome == GateOutcome::Waiting);
        let end = match state.finished_at {
            Some(f) if !waiting => f.max(last_record),
            _ if waiting => as_of,
            _ => last_record,
        };
        Timeline { run_id: state.run_id.clone(), status: state.status(), start, end, last_record, phases }
    }

    /// Seconds the picture covers (at least a millisecond, so scales never divide by zero).
    pub(crate) fn seconds(&self) -> f64 {
        secs(self.start, self.end).max(0.001)
    }

    /// Where `t` falls in the picture, from 0 to 1.
    pub(crate) fn position(&self, t: DateTime<Utc>) -> f64 {
        (secs(self.start, t) / self.seconds()).clamp(0.0, 1.0)
    }

    /// How many attempts the run has recorded (running ones included).
    pub(crate) fn attempts(&self) -> usize {
        self.phases.iter().map(PhaseLane::attempts).sum()
    }
}

/// A duration as people read it: `0.4s`, `3.2s`, `5m 30s`, `1h 02m`, `2d 03h`.
pub(crate) fn duration(seconds: f64) -> String {
    let s = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
    if s < 60.0 {
        return crate::state::seconds(s);
    }
    let total = s.round() as u64;
    let (d, h, m, sec) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else {
        format!("{m}m {sec:02}s")
    }
}

#[cfg(test)]
pub(crate) mod fixture;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(duration(0.04), "0s");
        assert_eq!(duration(3.24), "3.2s");
        assert_eq!(duration(59.9), "59.9s");
        assert_eq!(duration(330.0), "5m 30s");
        assert_eq!(duration(3720.0), "1h 02m");
        assert_eq!(duration(2.0 * 86_400.0 + 3.0 * 3600.0), "2d 03h");
        assert_eq!(duration(f64::NAN), "0s");
        assert_eq!(duration(-5.0), "0s");
    }

    #[test]
    fn every_attempt_is_a_bar_with_its_outcome() {
        let (wf, state, as_of) = fixture::run();
        let t = Timeline::build(&wf, &state, as_of);
        let names: Vec<&str> = t.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["planning", "development", "review"]);
        let dev = &t.phases[1];
        let builder = dev.agents.iter().find(|a| a.name == "builder").unwrap();
        let outcomes: Vec<Outcome> = builder.bars.iter().map(|b| b.outcome).collect();
        assert_eq!(outcomes, [Outcome::Retried, Outcome::TimedOut]);
        let tester = dev.agents.iter().find(|a| a.name == "tester").unwrap();
        assert_eq!(tester.bars[0].outcome, Outcome::Succeeded);
        let plan_gate = &t.phases[0].gates[0];
        assert_eq!(plan_gate.outcome, GateOutcome::Approved);
        assert_eq!(plan_gate.seconds(), 3600.0);
    }

    #[test]
    fn an_attempt_running_at_a_crash_is_shown_running_until_the_last_record() {
        let (wf, mut state, as_of) = fixture::run();
        let review = state.phases.get_mut("review").unwrap();
        review.status = PhaseStatus::Running;
        review.gate = None;
        let a = review.agents.get_mut("critic").unwrap();
        a.status = AgentStatus::Running;
        let started = a.attempts[0].started_at;
        a.attempts.clear();
        a.attempt_started_at = Some(started);
        let t = Timeline::build(&wf, &state, as_of);
        let bar = &t.phases[2].agents[0].bars[0];
        assert_eq!(bar.outcome, Outcome::Running);
        assert_eq!(bar.start, started);
        assert_eq!(bar.end, t.last_record);
        assert!(bar.end >= bar.start);
        // From an older build, with no start recorded: after the phase's start.
        state.phases.get_mut("review").unwrap().agents.get_mut("critic").unwrap().attempt_started_at = None;
        let t = Timeline::build(&wf, &state, as_of);
        assert_eq!(t.phases[2].agents[0].bars[0].start, state.phases["review"].started_at.unwrap());
    }

    #[test]
    fn a_waiting_gate_runs_to_now_and_groups_count_every_attempt() {
        let (wf, mut state, as_of) = fixture::run();
        let review = state.phases.get_mut("review").unwrap();
        review.status = PhaseStatus::AwaitingApproval;
        review.gate.as_mut().unwrap().decision = None;
        review.finished_at = None;
        state.finished_at = None;
        let t = Timeline::build(&wf, &state, as_of);
        let gate = t.phases[2].gates.last().unwrap();
        assert_eq!((gate.outcome, gate.end), (GateOutcome::Waiting, as_of));
        assert_eq!(t.end, as_of);
        let groups = t.phases[1].groups();
        assert_eq!(groups.iter().map(|g| g.attempts).sum::<usize>(), t.phases[1].attempts());
    }

    #[test]
    fn a_rejected_and_retried_phase_keeps_its_first_run_and_both_gate_waits() {
        let (wf, mut state, as_of) = fixture::run();
        let review = state.phases.get_mut("review").unwrap();
        review.start_over();
        assert_eq!((review.status, review.runs, review.earlier.len()), (PhaseStatus::Pending, 1, 1));
        // The second run: the critic succeeds, the gate is approved.
        review.runs = 2;
        review.status = PhaseStatus::Approved;
        review.started_at = Some(fixture::at("2026-01-01T13:20:00Z"));
        review.finished_at = Some(fixture::at("2026-01-01T13:21:00Z"));
        let mut critic = review.earlier[0].agents["critic"].clone();
        critic[0] = crate::state::Attempt {
            started_at: fixture::at("2026-01-01T13:20:00Z"),
            error: None,
            exit_code: Some(0),
            ..critic[0].clone()
        };
        review.agents.insert(
            "critic".into(),
            serde_json::from_value(serde_json::json!({"status": "succeeded", "command": "c", "transcript": "t.log",
                "attempts": critic}))
            .unwrap(),
        );
        review.gate = Some(crate::state::GateState {
            requested_at: fixture::at("2026-01-01T13:21:00Z"),
            request: "REQUEST.md".into(),
            decision: Some(crate::state::Decision {
                approved: true,
                by: "bob".into(),
                at: fixture::at("2026-01-01T13:30:00Z"),
                reason: None,
                commit: None,
                last_comment: None,
            }),
        });
        let t = Timeline::build(&wf, &state, as_of);
        let lane = &t.phases[2];
        let critic = &lane.agents[0];
        assert_eq!(
            critic.bars.iter().map(|b| (b.run, b.outcome)).collect::<Vec<_>>(),
            [(1, Outcome::Failed), (2, Outcome::Succeeded)]
        );
        let gates: Vec<_> = lane.gates.iter().map(|g| (g.round, g.outcome, g.seconds())).collect();
        assert_eq!(gates, [(1, GateOutcome::Rejected, 60.0), (2, GateOutcome::Approved, 540.0)]);
        let chart = mermaid::render(&t, &mermaid::Limits::SUMMARY);
        assert!(chart.contains("critic run 1 1 failed") && chart.contains("critic 1 succeeded"), "{chart}");
        assert!(chart.contains("gate round 1 rejected") && chart.contains("gate round 2 approved"), "{chart}");
        let plain = terminal::render(&t, 100, false);
        assert!(plain.contains("  gate 1 ") && plain.contains("  gate 2 "), "{plain}");
    }

    #[test]
    fn drawn_to_the_last_event_a_waiting_run_changes_only_when_something_happens() {
        let (wf, mut state, _) = fixture::wide(20);
        let draw = |s: &RunState| mermaid::render(&Timeline::build(&wf, s, s.started_at), &mermaid::Limits::COMMENT);
        let before = draw(&state);
        // A resume that finds nothing new writes the state all the same.
        state.updated_at += chrono::Duration::hours(5);
        assert_eq!(draw(&state), before);
        state.phases.get_mut("swarm").unwrap().gate.as_mut().unwrap().requested_at += chrono::Duration::minutes(1);
        assert_ne!(draw(&state), before);
    }

    #[test]
    fn nonsense_durations_in_a_state_draw_nothing_and_never_panic() {
        let (wf, mut state, as_of) = fixture::run();
        for (i, d) in [f64::NAN, f64::INFINITY, -1e300, 1e300, -0.0].into_iter().enumerate() {
            let a = state.phases.get_mut("development").unwrap().agents.get_mut("tester").unwrap();
            a.attempts[0].duration_s = d;
            a.attempts[0].retry_delay_s = Some(d);
            let t = Timeline::build(&wf, &state, as_of);
            for b in t.phases.iter().flat_map(|p| p.bars()) {
                assert!(b.end >= b.start, "case {i}");
            }
            let _ = mermaid::render(&t, &mermaid::Limits::COMMENT);
            let _ = terminal::render(&t, 80, true);
        }
    }
}
