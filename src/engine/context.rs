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
pub fn for_agent(wf: &Workflow, state: &RunState, phase: &Phase, agent: &Agent) -> Value {
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
    json!({
        "project": state.intake,
        "intake": state.intake,
        "run_id": state.run_id,
        "run": {"id": state.run_id, "started_at": state.started_at.to_rfc3339()},
        "phase": {
            "name": phase.name,
            "description": phase.description.clone().unwrap_or_default(),
            "artifacts": phase.artifacts.iter().map(|a| a.pattern.clone()).collect::<Vec<_>>(),
            "needs": phase.needs,
        },
        "agent": {"name": agent.name, "description": agent.description.clone().unwrap_or_default()},
        "phases": phases,
        "artifacts": all_artifacts,
    })
}
