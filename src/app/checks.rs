//! The checks a command runs before it writes anything: each a function of the workflow and a
//! state, run on a copy first and again under the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::Utc;

use super::AppError;
use crate::config::Workflow;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::engine::{context, plan};
use crate::github::context::PrContext;
use crate::runner_log::neutralize;
use crate::state::{PhaseState, PhaseStatus, RunState, STATE_VERSION};

/// A fresh state for a new run of `wf`.
pub(crate) fn preview_state(wf: &Workflow, intake: serde_json::Value, intake_path: Option<&Path>) -> RunState {
    let now = Utc::now();
    RunState {
        version: STATE_VERSION,
        run_id: now.format("%Y%m%d_%H%M%S").to_string(),
        started_at: now,
        updated_at: now,
        finished_at: None,
        interrupted: false,
        intake_path: intake_path.map(|p| p.display().to_string()),
        intake,
        journal_seq: 0,
        hygiene: None,
        phases: wf.phases.iter().map(|p| (p.name.clone(), PhaseState::pending())).collect(),
    }
}

/// Render every agent's prompt for every phase it runs in, so template errors stop the run
/// before anything starts.
pub(crate) fn preflight(wf: &Workflow, state: &RunState) -> Result<(), AppError> {
    let mut errors: BTreeMap<String, Diagnostic> = BTreeMap::new();
    // Each template read once, the shared context built once: linear in phases and agents.
    let shared = context::Shared::new(wf, state);
    let mut sources: BTreeMap<&str, Option<String>> = BTreeMap::new();
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    let listing = crate::prompt::Listing::of(&wf.root);
    for phase in &wf.phases {
        for name in &phase.agents {
            let agent = &wf.agents[name];
            let rel = crate::prompt::template_path(agent);
            let source = sources.entry(name.as_str()).or_insert_with(|| match listing.read(&wf.root, agent) {
                Ok(s) => s,
                Err(d) => {
                    errors.entry(d.to_string()).or_insert(d);
                    None
                }
            });
            let Some(source) = source else { continue };
            if failed.contains(name.as_str()) {
                continue; // one error per template is enough, and explaining one costs O(phases)
            }
            let rendered = crate::prompt::render_with(&rel, source, &shared.for_agent(phase, agent), || {
                context::for_agent(wf, state, phase, agent)
            });
            if let Err(d) = rendered {
                errors.entry(d.to_string()).or_insert(d);
                failed.insert(name.as_str());
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(AppError::Input(errors.into_values().collect())) }
}

/// LLM agents that will run need their prompt template and their API key before anything is
/// sent; phases already done are not checked.
pub(crate) fn llm_agents(wf: &Workflow, state: &RunState) -> Result<(), AppError> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for phase in &wf.phases {
        if state.phases.get(&phase.name).is_some_and(|p| p.status.is_done()) {
            continue;
        }
        for name in &phase.agents {
            let agent = &wf.agents[name];
            let Some(spec) = agent.llm() else { continue };
            if !seen.insert(name.as_str()) {
                continue;
            }
            if let Some(var) = &spec.api_key_env
                && std::env::var(var).map(|v| v.is_empty()).unwrap_or(true)
            {
                problems.push(format!(
                    "agent `{name}` needs an API key in the environment variable `{var}`, which is not set\nhelp: export {var}=…, or set `api_key_env` under `agents.{name}.llm` (\"\" for servers that need no key)"
                ));
            }
            let rel = crate::prompt::template_path(agent);
            if !wf.root.join(&rel).is_file() {
                problems
                    .push(format!("LLM agent `{name}` has no prompt template\nhelp: write one at `{}`", rel.display()));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(AppError::Setup(problems.join("\n\nerror: "))) }
}

/// A fork's pull request in an event that carries this repository's token and secrets
/// (`pull_request_target`, `labeled` on it, …) runs no agents unless the config allows it: the
/// fork's code would run with them. A `pull_request` event from a fork gets neither, so it may.
pub(crate) fn trust(wf: &Workflow, ctx: &PrContext) -> Result<(), AppError> {
    match &ctx.fork {
        Some(fork) if ctx.event_name != "pull_request" && !wf.consensus.allow_forks => Err(AppError::Setup(format!(
            "pull request #{} comes from the fork `{fork}`; this `{}` run holds {}/{}'s token and secrets, so orchestrator runs no agents for it\nhelp: run it from a `pull_request` event (a fork gets no secrets there), or set `consensus.allow_forks: true` in `{}` if you trust every fork's code with them",
            ctx.number,
            ctx.event_name,
            ctx.owner,
            ctx.repo,
            wf.config_path.display()
        ))),
        _ => Ok(()),
    }
}

/// Bring the state's phases in line with the config (it may have changed since the run began).
pub(crate) fn reconcile(wf: &Workflow, state: &mut RunState) {
    for p in &wf.phases {
        state.phases.entry(p.name.clone()).or_insert_with(PhaseState::pending);
    }
    let known: BTreeSet<&str> = wf.phases.iter().map(|p| p.name.as_str()).collect();
    let gone: Vec<String> = state.phases.keys().filter(|n| !known.contains(n.as_str())).cloned().collect();
    for name in gone {
        errln!(
            "note: phase `{}` is no longer in the config; it is dropped from run {}",
            neutralize(&name),
            neutralize(&state.run_id)
        );
        state.phases.remove(&name);
    }
}

pub(crate) fn unknown_phase(wf: &Workflow, name: &str) -> AppError {
    let help = did_you_mean(name, wf.phases.iter().map(|p| p.name.as_str()))
        .map(|h| format!("\nhelp: {h}"))
        .unwrap_or_default();
    AppError::Usage(format!("no phase `{name}` in `{}`{help}", wf.config_path.display()))
}

/// `run phase NAME`: whether the phase can run, by [`plan::readiness`]. A phase that has run
/// is left as it is (the engine re-reads its gate); a need still awaiting approval is checked
/// again once its gate has been re-read. In a pull request a failed or rejected phase may have
/// been asked to run again (`/retry`): the engine reads that.
pub(crate) fn phase_runnable(
    wf: &Workflow,
    state: &RunState,
    name: &str,
    in_pull_request: bool,
) -> Result<(), AppError> {
    let phase = wf.phase(name).ok_or_else(|| unknown_phase(wf, name))?;
    match plan::readiness(state, phase) {
        plan::Readiness::Ready => Ok(()),
        plan::Readiness::Settled(status) => {
            errln!("phase `{name}` has already run ({})", status.as_str());
            Ok(())
        }
        plan::Readiness::Ended(_) if in_pull_request => Ok(()),
        plan::Readiness::Ended(status) => Err(AppError::Usage(format!(
            "phase `{name}` has already run ({})\nhelp: run it again with `orchestrator run retry --phase {name}`",
            status.as_str()
        ))),
        plan::Readiness::Blocked(unmet) => {
            let unmet: Vec<String> = unmet
                .iter()
                .filter(|(_, s)| *s != PhaseStatus::AwaitingApproval)
                .map(|(n, s)| format!("`{n}` ({})", s.as_str()))
                .collect();
            if unmet.is_empty() {
                Ok(())
            } else {
                Err(AppError::Usage(format!("phase `{name}` needs {} first", unmet.join(", "))))
            }
        }
    }
}

/// `run phase NAME --agent A` when the phase has already run (it waits at its gate, or is
/// decided, done or failed): the agent's job has nothing to do, and does nothing — it neither
/// runs the agent again nor reads the gate, which the phase's own job does. A workflow walks
/// the agents' jobs again on every event that continues the run (`ci generate --jobs`).
pub(crate) fn agent_has_nothing_to_do(wf: &Workflow, phase: &str, agent: &str) -> bool {
    let Some(p) = wf.phase(phase) else { return false };
    if !p.agents.iter().any(|a| a == agent) {
        return false;
    }
    let status = match crate::state::read(&wf.state_path()) {
        Ok(s) => s.phases.get(phase).map(|p| p.status).unwrap_or(PhaseStatus::Pending),
        Err(_) => return false,
    };
    if matches!(status, PhaseStatus::Pending | PhaseStatus::Running) {
        return false;
    }
    outln!("phase `{phase}` has already run ({}): nothing for agent `{agent}` to do", status.as_str());
    true
}

/// `run phase NAME --agent A`: A must be one of the phase's agents, and the phase still open.
pub(crate) fn agent_of(wf: &Workflow, state: &RunState, phase: &str, agent: &str) -> Result<(), AppError> {
    let p = wf.phase(phase).ok_or_else(|| unknown_phase(wf, phase))?;
    if !p.agents.iter().any(|a| a == agent) {
        let help = did_you_mean(agent, p.agents.iter().map(String::as_str))
            .map(|h| format!("\nhelp: {h}"))
            .unwrap_or_default();
        return Err(AppError::Usage(format!(
            "phase `{phase}` has no agent `{agent}` (its agents: {}){help}",
            p.agents.join(", ")
        )));
    }
    let status = state.phases.get(phase).map(|p| p.status).unwrap_or(PhaseStatus::Pending);
    if !matches!(status, PhaseStatus::Pending | PhaseStatus::Running) {
        return Err(AppError::Usage(format!(
            "phase `{phase}` has already run ({}); `--agent` runs an agent of an open phase",
            status.as_str()
        )));
    }
    Ok(())
}

pub(crate) fn reset_for_retry(wf: &Workflow, state: &mut RunState, name: &str) -> Result<(), AppError> {
    wf.phase(name).ok_or_else(|| unknown_phase(wf, name))?;
    let ps = state.phases.entry(name.to_owned()).or_insert_with(PhaseState::pending);
    match ps.status {
        PhaseStatus::Failed | PhaseStatus::Rejected | PhaseStatus::AwaitingApproval | PhaseStatus::Running => {
            ps.start_over();
            Ok(())
        }
        PhaseStatus::Pending => Err(AppError::Usage(format!(
            "phase `{name}` has not run yet\nhelp: run it with `orchestrator run next` or `orchestrator run phase {name}`"
        ))),
        s => Err(AppError::Usage(format!(
            "phase `{name}` {}; only a failed, rejected or waiting phase can be retried",
            s.as_str()
        ))),
    }
}

/// The phase awaiting approval: the one named, or the only one.
pub(crate) fn awaiting_phase(state: &RunState, named: Option<&str>) -> Result<String, AppError> {
    use crate::state::PhaseStatus;
    let waiting: Vec<&String> =
        state.phases.iter().filter(|(_, p)| p.status == PhaseStatus::AwaitingApproval).map(|(n, _)| n).collect();
    match named {
        Some(n) => match state.phases.get(n) {
            None => Err(AppError::Usage(format!(
                "no phase `{n}` in run {}{}",
                state.run_id,
                crate::diagnostic::did_you_mean(n, state.phases.keys().map(String::as_str))
                    .map(|h| format!("\nhelp: {h}"))
                    .unwrap_or_default()
            ))),
            Some(p) if p.status != PhaseStatus::AwaitingApproval => {
                Err(AppError::Usage(format!("phase `{n}` is not awaiting approval (it is {})", p.status.as_str())))
            }
            Some(_) => Ok(n.to_owned()),
        },
        None => match waiting.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(AppError::Usage(format!(
                "no phase of run {} is awaiting approval (run status: {})",
                state.run_id,
                state.status().as_str()
            ))),
            many => Err(AppError::Usage(format!(
                "several phases await approval: {}\nhelp: name one with --phase",
                many.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ))),
        },
    }
}
