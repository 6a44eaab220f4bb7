//! What can run next, given the workflow and the run state. [`readiness`] is the one answer to
//! "can this phase run now?": the engine, `run phase` and the dry run all ask it.

use std::collections::HashSet;

use crate::config::{Phase, Workflow};
use crate::state::{PhaseStatus, RunState};

/// Where a phase stands with respect to running now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Pending (or running when a previous process stopped mid-phase) with every need done.
    Ready,
    /// It has run and has an outcome that lets the run go on (succeeded or approved), or it
    /// waits at its gate: nothing to run.
    Settled(PhaseStatus),
    /// It ended without success (failed or rejected): it runs again only when retried.
    Ended(PhaseStatus),
    /// Pending, but some needs are not done: each with its status.
    Blocked(Vec<(String, PhaseStatus)>),
}

impl Readiness {
    /// Blocked only by needs that wait at their gate or were rejected: a reviewer decides, so
    /// the run waits rather than fails.
    pub(crate) fn gated(&self) -> bool {
        matches!(self, Readiness::Blocked(unmet)
            if unmet.iter().all(|(_, s)| matches!(s, PhaseStatus::AwaitingApproval | PhaseStatus::Rejected)))
    }

    /// The unmet needs as `` `name` (status) ``, comma-separated.
    pub(crate) fn unmet(&self) -> String {
        match self {
            Readiness::Blocked(unmet) => {
                unmet.iter().map(|(n, s)| format!("`{n}` ({})", s.as_str())).collect::<Vec<_>>().join(", ")
            }
            _ => String::new(),
        }
    }
}

/// Whether `phase` can run now in `state`.
pub(crate) fn readiness(state: &RunState, phase: &Phase) -> Readiness {
    readiness_by(phase, |n| state.phases.get(n).map(|p| p.status).unwrap_or(PhaseStatus::Pending))
}

fn readiness_by(phase: &Phase, status_of: impl Fn(&str) -> PhaseStatus) -> Readiness {
    let status = status_of(&phase.name);
    match status {
        PhaseStatus::Pending | PhaseStatus::Running => {
            let unmet: Vec<(String, PhaseStatus)> = phase
                .needs
                .iter()
                .filter_map(|n| {
                    let s = status_of(n);
                    (!s.is_done()).then(|| (n.clone(), s))
                })
                .collect();
            if unmet.is_empty() { Readiness::Ready } else { Readiness::Blocked(unmet) }
        }
        PhaseStatus::Failed | PhaseStatus::Rejected => Readiness::Ended(status),
        PhaseStatus::Succeeded | PhaseStatus::Approved | PhaseStatus::AwaitingApproval => Readiness::Settled(status),
    }
}

/// The phases a `run resume` would run if every agent succeeded, in dependency order: as far as
/// the first gates (a gated phase runs, and waits for its reviewers).
pub(crate) fn until_gates<'w>(wf: &'w Workflow, state: &RunState) -> Vec<&'w Phase> {
    let mut assumed: std::collections::HashMap<&str, PhaseStatus> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for p in topological(wf) {
        let status_of = |n: &str| {
            assumed
                .get(n)
                .copied()
                .unwrap_or_else(|| state.phases.get(n).map(|s| s.status).unwrap_or(PhaseStatus::Pending))
        };
        if readiness_by(p, status_of) == Readiness::Ready {
            let outcome = if p.requires_consensus { PhaseStatus::AwaitingApproval } else { PhaseStatus::Succeeded };
            assumed.insert(&p.name, outcome);
            out.push(p);
        }
    }
    out
}

/// Phases that are [`Readiness::Ready`], excluding those in `running`.
pub(crate) fn ready<'w>(wf: &'w Workflow, state: &RunState, running: &HashSet<String>) -> Vec<&'w Phase> {
    wf.phases
        .iter()
        .filter(|p| !running.contains(&p.name))
        .filter(|p| readiness(state, p) == Readiness::Ready)
        .collect()
}

/// Phases in an order that respects `needs` (declared order where there is a choice).
pub(crate) fn topological(wf: &Workflow) -> Vec<&Phase> {
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
pub(crate) fn dependents(wf: &Workflow, name: &str) -> Vec<String> {
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
