//! What can run next, given the workflow and the run state.

use std::collections::HashSet;

use crate::config::{Phase, Workflow};
use crate::state::{PhaseStatus, RunState};

/// Phases whose `needs` are all done and which have not run to an outcome yet (pending, or
/// running when a previous process stopped mid-phase), excluding those in `running`.
pub fn ready<'w>(wf: &'w Workflow, state: &RunState, running: &HashSet<String>) -> Vec<&'w Phase> {
    wf.phases
        .iter()
        .filter(|p| !running.contains(&p.name))
        .filter(|p| {
            matches!(state.phases.get(&p.name).map(|s| s.status), Some(PhaseStatus::Pending | PhaseStatus::Running))
        })
        .filter(|p| needs_met(state, p))
        .collect()
}

pub fn needs_met(state: &RunState, phase: &Phase) -> bool {
    phase.needs.iter().all(|n| state.phases.get(n).is_some_and(|s| s.status.is_done()))
}

/// Phases in an order that respects `needs` (declared order where there is a choice).
pub fn topological(wf: &Workflow) -> Vec<&Phase> {
    let mut done: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    while out.len() < wf.phases.len() {
        let before = out.len();
        for p in &wf.phases {
            if !done.contains(p.name.as_str()) && p.needs.iter().all(|n| done.contains(n.as_str())) {
                done.insert(&p.name);
                out.push(p);
            }
        }
        if out.len() == before {
            break; // unreachable for a validated workflow (no cycles)
        }
    }
    out
}

/// Every phase that needs `name`, directly or through others, in declared order.
pub fn dependents(wf: &Workflow, name: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut grew = true;
    while grew {
        grew = false;
        for p in &wf.phases {
            if !found.contains(&p.name) && p.needs.iter().any(|n| n == name || found.contains(n)) {
                found.push(p.name.clone());
                grew = true;
            }
        }
    }
    found
}
