//! `.claude/metrics/metrics.prom`: Prometheus text exposition for the node_exporter textfile
//! collector: HELP and TYPE for every family, a `run_id` label on every sample, base units,
//! `_total` on counters, no timestamps.

use std::fmt::Write;

use super::metrics::RunMetrics;
use crate::state::{PhaseStatus, RunStatus};

/// Escape a label value into `out`: backslash, double quote and newline.
fn push_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
fn label(v: &str) -> String {
    let mut out = String::new();
    push_label(&mut out, v);
    out
}

/// Escape HELP text: backslash and newline.
fn help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, text: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}\n# TYPE {name} {kind}", help(text));
    }

    /// One sample, written straight into the output: there is one per agent and family, and
    /// metrics are refreshed while a phase runs.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let out = &mut *self.out;
        out.push_str(name);
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            push_label(out, v);
            out.push('"');
        }
        out.push_str("} ");
        push_number(out, value);
        out.push('\n');
    }
}

fn push_number(out: &mut String, v: f64) {
    let _ = if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        write!(out, "{}", v as i64)
    } else {
        write!(out, "{v}")
    };
}

#[cfg(test)]
fn number(v: f64) -> String {
    let mut out = String::new();
    push_number(&mut out, v);
    out
}

const RUN_STATUSES: [RunStatus; 6] = [
    RunStatus::Running,
    RunStatus::Interrupted,
    RunStatus::AwaitingApproval,
    RunStatus::Failed,
    RunStatus::Rejected,
    RunStatus::Completed,
];

fn status_name<T: serde::Serialize>(s: T) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Render `m` as Prometheus text.
pub(crate) fn render(m: &RunMetrics) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    let run = m.run_id.as_str();

    f.header("orchestrator_run_status", "gauge", "1 for the run's current status, 0 for the others.");
    let current = status_name(m.status);
    for s in RUN_STATUSES {
        let name = status_name(s);
        f.sample(
            "orchestrator_run_status",
            &[("run_id", run), ("status", &name)],
            f64::from(u8::from(name == current)),
        );
    }
    f.header("orchestrator_run_duration_seconds", "gauge", "Wall time of the run so far, in seconds.");
    f.sample("orchestrator_run_duration_seconds", &[("run_id", run)], m.duration_s);

    f.header("orchestrator_phase_duration_seconds", "gauge", "Wall time of each phase's latest run, in seconds.");
    for (phase, p) in &m.phases {
        f.sample("orchestrator_phase_duration_seconds", &[("run_id", run), ("phase", phase)], p.duration_s);
    }
    f.header("orchestrator_phase_status", "gauge", "1 for each phase's current status.");
    for (phase, p) in &m.phases {
        f.sample(
            "orchestrator_phase_status",
            &[("run_id", run), ("phase", phase), ("status", &status_name::<PhaseStatus>(p.status))],
            1.0,
        );
    }
    f.header("orchestrator_phase_artifacts", "gauge", "Artifacts reported by each phase's agents.");
    for (phase, p) in &m.phases {
        f.sample("orchestrator_phase_artifacts", &[("run_id", run), ("phase", phase)], p.artifacts_count as f64);
    }
    f.header(
        "orchestrator_gate_wait_seconds",
        "gauge",
        "Time each approval gate has waited or waited for its decision, in seconds.",
    );
    for (phase, p) in &m.phases {
        if let Some(w) = p.gate_wait_s {
            f.sample("orchestrator_gate_wait_seconds", &[("run_id", run), ("phase", phase)], w);
        }
    }

    f.header(
        "orchestrator_agent_runtime_seconds",
        "gauge",
        "Wall time of each agent, all attempts and retry delays included, in seconds.",
    );
    for (phase, p) in &m.phases {
        for (agent, t) in &p.agent_runtimes {
            f.sample("orchestrator_agent_runtime_seconds", &[("run_id", run), ("phase", phase), ("agent", agent)], *t);
        }
    }
    f.header("orchestrator_agent_attempts_total", "counter", "Attempts made by each agent.");
    for (phase, p) in &m.phases {
        for (agent, attempts) in &p.attempts {
            f.sample(
                "orchestrator_agent_attempts_total",
                &[("run_id", run), ("phase", phase), ("agent", agent)],
                attempts.len() as f64,
            );
        }
    }
    f.header("orchestrator_agent_retries_total", "counter", "Retries of each agent (attempts after the first).");
    for (phase, p) in &m.phases {
        for (agent, r) in &p.agent_retries {
            f.sample(
                "orchestrator_agent_retries_total",
                &[("run_id", run), ("phase", phase), ("agent", agent)],
                *r as f64,
            );
        }
    }
    f.header(
        "orchestrator_agent_outcome",
        "gauge",
        "1 for each agent's current outcome (pending, running, succeeded, failed).",
    );
    for (phase, p) in &m.phases {
        for (agent, o) in &p.agent_outcomes {
            f.sample(
                "orchestrator_agent_outcome",
                &[("run_id", run), ("phase", phase), ("agent", agent), ("outcome", o.as_str())],
                1.0,
            );
        }
    }
    f.header("orchestrator_agent_timeouts_total", "counter", "Attempts of each agent that timed out.");
    for (phase, p) in &m.phases {
        for (agent, attempts) in &p.attempts {
            let n = attempts.iter().filter(|a| a.timed_out).count();
            f.sample(
                "orchestrator_agent_timeouts_total",
                &[("run_id", run), ("phase", phase), ("agent", agent)],
                n as f64,
            );
        }
    }

    f.header(
        "orchestrator_total_retries",
        "gauge",
        "Retries over the whole run (the seed's name; see orchestrator_retries_total).",
    );
    f.sample("orchestrator_total_retries", &[("run_id", run)], m.total_retries as f64);
    f.header("orchestrator_retries_total", "counter", "Retries over the whole run.");
    f.sample("orchestrator_retries_total", &[("run_id", run)], m.total_retries as f64);
    if let Some(score) = m.cleanliness_score {
        f.header(
            "orchestrator_cleanliness_score",
            "gauge",
            "Repository cleanliness score, 0 to 100 (reports/hygiene_summary.json).",
        );
        f.sample("orchestrator_cleanliness_score", &[("run_id", run)], score);
    }
    if m.usage.input_tokens.is_some() || m.usage.output_tokens.is_some() {
        f.header("orchestrator_llm_tokens_total", "counter", "Tokens used by LLM agents, by direction.");
        f.sample(
            "orchestrator_llm_tokens_total",
            &[("run_id", run), ("direction", "input")],
            m.usage.input_tokens.unwrap_or(0) as f64,
        );
        f.sample(
            "orchestrator_llm_tokens_total",
            &[("run_id", run), ("direction", "output")],
            m.usage.output_tokens.unwrap_or(0) as f64,
        );
    }
    if let Some(cost) = m.usage.cost_usd {
        f.header("orchestrator_llm_cost_dollars_total", "counter", "Cost of LLM calls, in US dollars.");
        f.sample("orchestrator_llm_cost_dollars_total", &[("run_id", run)], cost);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::AgentStatus;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(help("x\\y\nz"), r"x\\y\nz");
    }

    #[test]
    fn agent_outcomes_are_named_as_in_the_state() {
        for s in [AgentStatus::Pending, AgentStatus::Running, AgentStatus::Succeeded, AgentStatus::Failed] {
            assert_eq!(s.as_str(), status_name(s));
        }
    }

    #[test]
    fn numbers_are_plain() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
    }
}
