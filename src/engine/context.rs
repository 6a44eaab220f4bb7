//! The values prompt templates see.

use serde_json::{Value, json};

use crate::config::{Agent, Phase, Workflow};
use crate::state::RunState;

/// Template context for `agent` in `phase`:
///
/// - `project` (and `intake`): the intake mapping
/// - `run_id`, `run.id`, `run.started_at`
/// - `phase.name`, `phase.description`, `phase.artifacts` (patterns), `phase.needs`
/// - `agent.name`, `agent.description`
/// - `phases.<name>.status`, `.artifacts`, `.agents.<agent>.{status, artifacts}`
/// - `artifacts`: every artifact reported by phases that are done, in phase order
pub(crate) fn for_agent(wf: &Workflow, state: &RunState, phase: &Phase, agent: &Agent) -> Value {
    let (phases, all_artifacts) = phases_of(wf, state);
    json!({
        "project": state.intake,
        "intake": state.intake,
        "run_id": state.run_id,
        "run": {"id": state.run_id, "started_at": state.started_at.to_rfc3339()},
        "phase": phase_of(phase),
        "agent": agent_of(agent),
        "phases": phases,
        "artifacts": all_artifacts,
    })
}

fn phase_of(phase: &Phase) -> Value {
    json!({
        "name": phase.name,
        "description": phase.description.clone().unwrap_or_default(),
        "artifacts": phase.artifacts.iter().map(|a| a.pattern.clone()).collect::<Vec<_>>(),
        "needs": phase.needs,
    })
}

fn agent_of(agent: &Agent) -> Value {
    json!({"name": agent.name, "description": agent.description.clone().unwrap_or_default()})
}

/// The parts of the context that every agent of a run sees alike, converted for the template
/// engine once: checking every prompt of a workflow of thousands of phases stays linear.
pub(crate) struct Shared {
    project: minijinja::Value,
    run_id: minijinja::Value,
    run: minijinja::Value,
    phases: minijinja::Value,
    artifacts: minijinja::Value,
}

impl Shared {
    pub(crate) fn new(wf: &Workflow, state: &RunState) -> Shared {
        let (phases, artifacts) = phases_of(wf, state);
        Shared {
            project: minijinja::Value::from_serialize(&state.intake),
            run_id: minijinja::Value::from(state.run_id.clone()),
            run: minijinja::Value::from_serialize(
                json!({"id": state.run_id, "started_at": state.started_at.to_rfc3339()}),
            ),
            phases: minijinja::Value::from_serialize(&phases),
            artifacts: minijinja::Value::from_serialize(&artifacts),
        }
    }

    /// The context of `agent` in `phase` (the same values as [`for_agent`]); the shared parts
    /// are shared, not copied.
    pub(crate) fn for_agent(&self, phase: &Phase, agent: &Agent) -> minijinja::Value {
        minijinja::context! {
            project => self.project.clone(),
            intake => self.project.clone(),
            run_id => self.run_id.clone(),
            run => self.run.clone(),
            phase => minijinja::Value::from_serialize(phase_of(phase)),
            agent => minijinja::Value::from_serialize(agent_of(agent)),
            phases => self.phases.clone(),
            artifacts => self.artifacts.clone(),
        }
    }
}

/// `phases.<name>` for every phase, and every artifact of the phases that are done.
fn phases_of(wf: &Workflow, state: &RunState) -> (serde_json::Map<String, Value>, Vec<String>) {
    let mut phases = serde_json::Map::new();
    let mut all_artifacts = Vec::new();
    for p in &wf.phases {
        let ps = state.phases.get(&p.name);
        let mut agents = serde_json::Map::new();
        let mut artifacts = Vec::new();
        if let Some(ps) = ps {
            for (name, a) in &ps.agents {
                agents.insert(name.clone(), json!({"status": a.status, "artifacts": a.artifacts}));
                artifacts.extend(a.artifacts.iter().cloned());
            }
            if ps.status.is_done() {
                all_artifacts.extend(artifacts.iter().cloned());
            }
        }
        let status = ps.map(|s| s.status.as_str()).unwrap_or("pending");
        phases.insert(p.name.clone(), json!({"status": status, "artifacts": artifacts, "agents": agents}));
    }
    (phases, all_artifacts)
}
