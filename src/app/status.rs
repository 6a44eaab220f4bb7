//! `run status` and the summary printed after a run: where the run stands and what to do next.
//! Text read from the state (which agents can edit in the workspace) is printed neutralized.

use anyhow::Context as _;
use std::io::IsTerminal;

use console::style;

use super::{AppError, Ctx};
use crate::config::Workflow;
use crate::executor::Redactor;
use crate::exit_code;
use crate::runner_log::{neutralize, neutralize_json};
use crate::state::{self, AgentStatus, PhaseStatus, RunState, RunStatus};

pub(super) fn show(ctx: &Ctx, json: bool) -> Result<i32, AppError> {
    let inv = super::invocation::Invocation::load(ctx)?;
    let wf = &inv.wf;
    let state = state::read(&wf.state_path())?;
    if json {
        let mut value = serde_json::to_value(&state).context("cannot encode the state as JSON")?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("status".into(), serde_json::to_value(state.status()).unwrap_or_default());
            let metrics = crate::report::metrics::compute(wf, &state, chrono::Utc::now());
            obj.insert("metrics".into(), serde_json::to_value(metrics).unwrap_or_default());
        }
        let redactor = inv.redactor.clone();
        redactor.redact_json(&mut value);
        let json = serde_json::to_string_pretty(&value).context("cannot encode the status as JSON")?;
        outln!("{}", neutralize_json(&json));
        return Ok(exit_code::SUCCESS);
    }
    let redactor = inv.redactor.clone();
    out!("{}", redactor.redact_str(&table(wf, &state)));
    print_next(wf, &state, &redactor);
    Ok(exit_code::SUCCESS)
}

fn colored(status: PhaseStatus) -> String {
    let text = status.as_str();
    let padded = format!("{text:<18}");
    if !std::io::stdout().is_terminal() {
        return padded;
    }
    match status {
        PhaseStatus::Succeeded | PhaseStatus::Approved => style(padded).green().to_string(),
        PhaseStatus::Failed | PhaseStatus::Rejected => style(padded).red().to_string(),
        PhaseStatus::AwaitingApproval | PhaseStatus::Running => style(padded).yellow().to_string(),
        PhaseStatus::Pending => style(padded).dim().to_string(),
    }
}

/// `run metrics`: computed from the state, so they are exact even if the files are stale.
pub(super) fn metrics(ctx: &Ctx, json: bool, prom: bool) -> Result<i32, AppError> {
    let inv = super::invocation::Invocation::load(ctx)?;
    let wf = &inv.wf;
    let state = state::read(&wf.state_path())?;
    let m = crate::report::metrics::compute(wf, &state, chrono::Utc::now());
    let redactor = inv.redactor.clone();
    if json {
        let mut value = serde_json::to_value(&m).context("cannot encode the metrics as JSON")?;
        redactor.redact_json(&mut value);
        let json = serde_json::to_string_pretty(&value).context("cannot encode the metrics as JSON")?;
        outln!("{}", neutralize_json(&json));
    } else if prom {
        out!("{}", neutralize(&redactor.redact_text(&crate::report::prometheus::render(&m))));
    } else {
        let health = m
            .cleanliness_score
            .map(|s| format!(", cleanliness {s:.1} ({})", m.cleanliness_grade.clone().unwrap_or_default()))
            .unwrap_or_default();
        outln!(
            "run {}: {}, {:.2}s, {} attempts, {} retries{health}\n",
            neutralize(&m.run_id),
            m.status.as_str(),
            m.duration_s,
            m.total_attempts,
            m.total_retries
        );
        outln!(
            "{:<16} {:<18} {:<14} {:>9} {:>8} {:>5}  NOTE",
            "PHASE",
            "STATUS",
            "AGENT",
            "RUNTIME",
            "ATTEMPTS",
            "EXIT"
        );
        for phase in &wf.phases {
            let Some(p) = m.phases.get(&phase.name) else { continue };
            let runtime = format!("{:.2}s", p.duration_s);
            outln!(
                "{:<16} {:<18} {:<14} {runtime:>9} {:>8} {:>5}  validation: {}",
                p.phase_name,
                p.status.as_str(),
                "",
                "",
                "",
                p.validation_status
            );
            for (agent, t) in &p.agent_runtimes {
                let attempts = p.attempts.get(agent).map(Vec::len).unwrap_or(0);
                let exit = p
                    .agent_exit_codes
                    .get(agent)
                    .copied()
                    .flatten()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into());
                let outcome = p.agent_outcomes.get(agent).map(|o| o.as_str()).unwrap_or_default();
                let agent = neutralize(agent);
                outln!(
                    "{:<16} {:<18} {agent:<14} {:>9} {attempts:>8} {exit:>5}  {outcome}",
                    "",
                    "",
                    format!("{t:.2}s")
                );
            }
        }
    }
    Ok(exit_code::SUCCESS)
}

/// The status table: a row per phase, with its agents' outcomes.
pub(super) fn table(wf: &Workflow, state: &RunState) -> String {
    let mut out = format!(
        "run {}: {} (started {})\n\n{:<16} {:<18} {:>7} {:>9}  {}\n",
        neutralize(&state.run_id),
        state.status().as_str(),
        state.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        "PHASE",
        "STATUS",
        "AGENTS",
        "DURATION",
        "NOTE"
    );
    for phase in &wf.phases {
        let Some(ps) = state.phases.get(&phase.name) else { continue };
        let ok = ps.agents.values().filter(|a| a.status == AgentStatus::Succeeded).count();
        let duration = ps.duration_s.map(|d| format!("{d:.2}s")).unwrap_or_default();
        let note = match ps.status {
            PhaseStatus::AwaitingApproval => ps.gate.as_ref().map(|g| g.request.clone()).unwrap_or_default(),
            PhaseStatus::Approved | PhaseStatus::Rejected => ps
                .gate
                .as_ref()
                .and_then(|g| g.decision.as_ref())
                .map(|d| format!("by {}{}", d.by, d.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()))
                .unwrap_or_default(),
            PhaseStatus::Failed => ps.error.clone().unwrap_or_default(),
            _ => String::new(),
        };
        let note = neutralize(&note);
        out.push_str(&format!(
            "{:<16} {} {:>7} {:>9}  {note}\n",
            phase.name,
            colored(ps.status),
            format!("{ok}/{}", phase.agents.len()),
            duration
        ));
        for name in &phase.agents {
            let Some(a) = ps.agents.get(name) else { continue };
            if a.status == AgentStatus::Failed {
                let outcome = a.attempts.last().map(|t| t.outcome()).unwrap_or_default();
                out.push_str(&format!(
                    "  └ {name}: failed ({}), transcript {}\n",
                    neutralize(&outcome),
                    neutralize(&a.transcript)
                ));
            }
        }
    }
    out
}

/// After a run: one line on where it stands and what to do next.
pub(super) fn print_outcome(wf: &Workflow, state: &RunState, redactor: &Redactor) {
    outln!("\nrun {}: {}", neutralize(&redactor.redact_text(&state.run_id)), state.status().as_str());
    print_next(wf, state, redactor);
}

fn print_next(wf: &Workflow, state: &RunState, redactor: &Redactor) {
    let neutralize = |s: &str| neutralize(&redactor.redact_text(s)).into_owned();
    let phases = || wf.phases.iter().filter_map(|p| state.phases.get(&p.name).map(|s| (p, s)));
    match state.status() {
        RunStatus::AwaitingApproval => {
            for (p, s) in phases().filter(|(_, s)| s.status == PhaseStatus::AwaitingApproval) {
                let req = s.gate.as_ref().map(|g| g.request.as_str()).unwrap_or("");
                outln!("phase `{}` awaits approval: review {}", p.name, neutralize(req));
                if req.starts_with("http") {
                    let (approve, reject) = wf.labels(&p.name);
                    outln!(
                        "next: a reviewer adds the label `{approve}` (or `{reject}`) to the pull request; then `orchestrator run resume`"
                    );
                } else {
                    outln!(
                        "next: orchestrator run approve --phase {0}   or   orchestrator run reject --phase {0} --reason \"...\"",
                        p.name
                    );
                }
            }
        }
        RunStatus::Failed => {
            for (p, s) in phases().filter(|(_, s)| s.status == PhaseStatus::Failed) {
                outln!(
                    "phase `{}` failed: {}",
                    p.name,
                    neutralize(s.error.as_deref().unwrap_or("see the transcripts"))
                );
                outln!("next: fix the cause, then `orchestrator run retry --phase {}`", p.name);
            }
        }
        RunStatus::Rejected => {
            for (p, _) in phases().filter(|(_, s)| s.status == PhaseStatus::Rejected) {
                outln!("next: address the review, then `orchestrator run retry --phase {}`", p.name);
            }
        }
        RunStatus::Interrupted => outln!("next: `orchestrator run resume` continues where it stopped"),
        RunStatus::Running => {
            outln!("next: `orchestrator run next` for the next step, or `orchestrator run resume` to go on")
        }
        RunStatus::Completed => outln!("all {} phases done", wf.phases.len()),
    }
}
