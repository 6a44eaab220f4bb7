//! `.claude/metrics/run_<run_id>.json`: the seed's metrics shape, derived from the run state,
//! extended with every attempt and with room for LLM token usage and cost.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Workflow;
use crate::state::{AgentStatus, PhaseStatus, RunState, RunStatus, Usage};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunMetrics {
    pub run_id: String,
    pub start_ts: String,
    pub duration_s: f64,
    pub status: RunStatus,
    pub phases: BTreeMap<String, PhaseMetrics>,
    pub total_retries: u64,
    pub total_attempts: u64,
    pub cleanliness_score: Option<f64>,
    pub cleanliness_grade: Option<String>,
    /// Token usage and cost over all agents that report them.
    pub usage: UsageTotals,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PhaseMetrics {
    pub phase_name: String,
    pub status: PhaseStatus,
    pub duration_s: f64,
    pub agent_runtimes: BTreeMap<String, f64>,
    /// The last attempt's exit code; `null` for a timeout or a signal.
    pub agent_exit_codes: BTreeMap<String, Option<i32>>,
    pub agent_retries: BTreeMap<String, u64>,
    pub agent_outcomes: BTreeMap<String, AgentStatus>,
    /// `pass`, `fail`, or `none` when the phase declares no artifacts.
    pub validation_status: &'static str,
    pub artifacts_count: usize,
    /// Seconds between the gate opening and its decision (or now, while it waits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_wait_s: Option<f64>,
    pub attempts: BTreeMap<String, Vec<AttemptMetrics>>,
    pub agent_usage: BTreeMap<String, UsageTotals>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AttemptMetrics {
    pub number: u32,
    pub start_ts: String,
    pub duration_s: f64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub error: Option<String>,
    pub retry_reason: Option<String>,
    pub retry_delay_s: Option<f64>,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct UsageTotals {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

impl UsageTotals {
    fn add(&mut self, u: &Usage) {
        fn sum<T: std::ops::Add<Output = T> + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(x), Some(y)) => Some(x + y),
                (x, None) => x,
                (None, y) => y,
            }
        }
        self.input_tokens = sum(self.input_tokens, u.input_tokens);
        self.output_tokens = sum(self.output_tokens, u.output_tokens);
        self.cost_usd = sum(self.cost_usd, u.cost_usd);
    }

    fn merge(&mut self, other: &UsageTotals) {
        self.add(&Usage {
            input_tokens: other.input_tokens,
            output_tokens: other.output_tokens,
            cost_usd: other.cost_usd,
        });
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The metrics of the run in `state`, as of `now`.
pub(crate) fn compute(wf: &Workflow, state: &RunState, now: DateTime<Utc>) -> RunMetrics {
    let end = state.finished_at.unwrap_or(now);
    let mut phases = BTreeMap::new();
    let (mut total_retries, mut total_attempts) = (0, 0);
    let mut usage = UsageTotals::default();
    for phase in &wf.phases {
        let Some(ps) = state.phases.get(&phase.name) else { continue };
        let mut m = PhaseMetrics {
            phase_name: phase.name.clone(),
            status: ps.status,
            duration_s: ps.duration_s.unwrap_or(0.0),
            agent_runtimes: BTreeMap::new(),
            agent_exit_codes: BTreeMap::new(),
            agent_retries: BTreeMap::new(),
            agent_outcomes: BTreeMap::new(),
            validation_status: match &ps.validation {
                Some(v) if v.passed => "pass",
                Some(_) => "fail",
                None => "none",
            },
            artifacts_count: ps.agents.values().map(|a| a.artifacts.len()).sum(),
            gate_wait_s: ps.gate.as_ref().map(|g| {
                let until = g.decision.as_ref().map(|d| d.at).unwrap_or(now);
                (until - g.requested_at).num_milliseconds().max(0) as f64 / 1000.0
            }),
            attempts: BTreeMap::new(),
            agent_usage: BTreeMap::new(),
        };
        for (name, a) in &ps.agents {
            let retries = a.attempts.len().saturating_sub(1) as u64;
            total_retries += retries;
            total_attempts += a.attempts.len() as u64;
            m.agent_runtimes.insert(name.clone(), a.duration_s.unwrap_or(0.0));
            m.agent_exit_codes.insert(name.clone(), a.attempts.last().and_then(|t| t.exit_code));
            m.agent_retries.insert(name.clone(), retries);
            m.agent_outcomes.insert(name.clone(), a.status);
            let mut agent_usage = UsageTotals::default();
            for t in &a.attempts {
                if let Some(u) = &t.usage {
                    agent_usage.add(u);
                }
            }
            usage.merge(&agent_usage);
            m.agent_usage.insert(name.clone(), agent_usage);
            m.attempts.insert(
                name.clone(),
                a.attempts
                    .iter()
                    .map(|t| AttemptMetrics {
                        number: t.number,
                        start_ts: ts(t.started_at),
                        duration_s: t.duration_s,
                        exit_code: t.exit_code,
                        signal: t.signal,
                        timed_out: t.timed_out,
                        error: t.error.clone(),
                        retry_reason: t.retry_reason.clone(),
                        retry_delay_s: t.retry_delay_s,
                        usage: t.usage.clone(),
                    })
                    .collect(),
            );
        }
        phases.insert(phase.name.clone(), m);
    }
    RunMetrics {
        run_id: state.run_id.clone(),
        start_ts: ts(state.started_at),
        duration_s: (end - state.started_at).num_milliseconds().max(0) as f64 / 1000.0,
        status: state.status(),
        phases,
        total_retries,
        total_attempts,
        cleanliness_score: state.hygiene.as_ref().map(|h| h.score),
        cleanliness_grade: state.hygiene.as_ref().map(|h| h.grade.clone()),
        usage,
    }
}
