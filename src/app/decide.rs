//! `run approve` and `run reject`: a decision recorded at a local gate.

use chrono::Utc;

use super::invocation::Invocation;
use super::{AppError, Ctx, checks, drive, dry_run};
use crate::cli::ExecArgs;
use crate::engine::{EngineError, Mode};
use crate::exit_code;
use crate::gate::LocalGate;
use crate::runner_log::neutralize;
use crate::state::{self, Decision, PhaseStatus, RunState, StateStore};

/// On a pull request the reviewers decide on GitHub, where the gate re-derives every decision;
/// a decision recorded here would be undone by the next resume, so it is refused.
fn refuse_in_pull_request(inv: &Invocation, approve: bool) -> Result<(), AppError> {
    let Some(pr) = inv.pull_request() else { return Ok(()) };
    let wf = &inv.wf;
    let label = if approve { &wf.consensus.approve_label } else { &wf.consensus.reject_label };
    Err(AppError::Usage(format!(
        "pull request #{} is decided on GitHub, by its reviewers: `run {}` records nothing here\nhelp: a reviewer with write access adds the label `{label}` to pull request #{} ({}/{}/{}/pull/{}); the next `orchestrator run resume` reads it",
        pr.number,
        if approve { "approve" } else { "reject" },
        pr.number,
        pr.server_url,
        pr.owner,
        pr.repo,
        pr.number
    )))
}

pub(crate) async fn decide(
    ctx: &Ctx,
    phase: Option<String>,
    by: Option<String>,
    reject_reason: Option<String>,
    then: Option<Mode>,
    exec: ExecArgs,
) -> Result<i32, AppError> {
    let inv = Invocation::load(ctx)?;
    refuse_in_pull_request(&inv, reject_reason.is_none())?;
    if let Err(e) = inv.github() {
        return Err(AppError::Setup(e.to_string()));
    }
    let wf = &inv.wf;
    let path = wf.state_path();
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "local user".to_owned());
    let approved = reject_reason.is_none();
    let apply = |state: &mut RunState| -> Result<String, AppError> {
        let name = checks::awaiting_phase(state, phase.as_deref())?;
        let ps = state.phases.get_mut(&name).expect("awaiting phase exists");
        ps.status = if approved { PhaseStatus::Approved } else { PhaseStatus::Rejected };
        let decision = Decision {
            approved,
            by: by.clone(),
            at: Utc::now(),
            reason: reject_reason.clone(),
            commit: None,
            last_comment: None,
        };
        match ps.gate.as_mut() {
            Some(g) => g.decision = Some(decision),
            None => {
                ps.gate = Some(state::GateState {
                    requested_at: Utc::now(),
                    request: LocalGate::request_path(&name),
                    decision: Some(decision),
                })
            }
        }
        Ok(name)
    };
    if exec.dry_run {
        let mut state = state::read(&path)?;
        let name = apply(&mut state)?;
        outln!(
            "Dry run: would record that {} {} phase `{}`.\n",
            neutralize(&by),
            if approved { "approves" } else { "rejects" },
            neutralize(&name)
        );
        if let Some(mode) = &then {
            dry_run::print(&inv, &state, false, mode, &exec);
        }
        return Ok(exit_code::SUCCESS);
    }
    inv.check_state_file()?;
    // Checked on a copy first: a refusal (no such phase, nothing waiting) takes no lock.
    apply(&mut state::read(&path)?)?;
    let lock = state::lock(&path)?;
    let mut store = StateStore::open(&path, lock)?;
    let name = apply(&mut store.state)?;
    store.save()?;
    crate::report::Recorder::new(&wf.root, inv.redactor.clone())
        .metrics(wf, &store.state)
        .map_err(EngineError::from)?;
    if approved {
        outln!("phase `{}` approved by {}", neutralize(&name), neutralize(&by));
    } else {
        let name = neutralize(&name);
        outln!("phase `{name}` rejected by {}: {}", neutralize(&by), neutralize(&reject_reason.unwrap_or_default()));
        outln!("next: address the reason, then `orchestrator run retry --phase {name}`");
        return Ok(exit_code::SUCCESS);
    }
    match then {
        Some(mode) => {
            checks::reconcile(wf, &mut store.state);
            checks::preflight(wf, &store.state)?;
            checks::llm_agents(wf, &store.state)?;
            drive::drive(inv, store, mode, &exec).await
        }
        None => Ok(exit_code::SUCCESS),
    }
}
