//! `orchestrator run …`: starting, stepping, resuming and deciding runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};

use super::{AppError, Ctx, awaiting_phase, dry_run, rollback, status};
use crate::cli::{ExecArgs, RunCommand};
use crate::config::Workflow;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::engine::{Engine, EngineError, Mode, RunOptions, context};
use crate::executor::{Cancel, Redactor};
use crate::exit_code;
use crate::gate::{Gate, LocalGate};
use crate::runner_log::neutralize;
use crate::state::{
    self, AgentStatus, Decision, PhaseState, PhaseStatus, RunState, RunStatus, STATE_VERSION, StateStore,
};

pub async fn execute(ctx: &Ctx, cmd: RunCommand) -> Result<i32, AppError> {
    match cmd {
        RunCommand::Start { intake, force, or_resume, phase, exec } => {
            if or_resume && !exec.dry_run {
                // Loaded (the base branch's policy fetched) once, for whichever it is.
                let (unfinished, wf) = unfinished_run(ctx).await?;
                if unfinished {
                    return match phase {
                        Some(name) => {
                            let mode = Mode::Phase(name.clone());
                            existing_loaded(wf, mode, exec, move |wf, state| check_phase_runnable(wf, state, &name))
                                .await
                        }
                        None => existing_loaded(wf, Mode::Continue, exec, |_, _| Ok(())).await,
                    };
                }
                return start_loaded(ctx, wf, intake, force, phase, exec).await;
            }
            start(ctx, intake, force, phase, exec).await
        }
        RunCommand::Next { exec } => existing(ctx, Mode::Step, exec, |_, _| Ok(())).await,
        RunCommand::Resume { exec } => existing(ctx, Mode::Continue, exec, |_, _| Ok(())).await,
        RunCommand::Phase { name, agent, mut exec } => {
            let mode = Mode::Phase(name.clone());
            exec.only_agent = agent.clone();
            existing(ctx, mode, exec, move |wf, state| {
                check_phase_runnable(wf, state, &name)?;
                match &agent {
                    Some(a) => check_agent_of(wf, state, &name, a),
                    None => Ok(()),
                }
            })
            .await
        }
        RunCommand::Status { json } => status::show(ctx, json),
        RunCommand::Metrics { json, prom } => status::metrics(ctx, json, prom),
        RunCommand::Approve { phase, by, no_continue, exec } => {
            let mode = if no_continue { None } else { Some(Mode::Continue) };
            decide(ctx, phase, by, None, mode, exec).await
        }
        RunCommand::Reject { reason, phase, by } => {
            if reason.trim().is_empty() {
                return Err(AppError::Usage("`--reason` must say why the phase is rejected".into()));
            }
            decide(ctx, phase, by, Some(reason), None, ExecArgs::default()).await
        }
        RunCommand::Retry { phase, exec } => {
            existing(ctx, Mode::Continue, exec, move |wf, state| reset_for_retry(wf, state, &phase)).await
        }
        RunCommand::Rollback { phase } => rollback::write(ctx, &phase),
        RunCommand::Merge { dirs } => super::merge::merge(ctx, &dirs),
    }
}

/// A fresh state for a new run of `wf`.
pub fn preview_state(wf: &Workflow, intake: serde_json::Value, intake_path: Option<&Path>) -> RunState {
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
pub fn preflight(wf: &Workflow, state: &RunState) -> Result<(), AppError> {
    let mut errors: BTreeMap<String, Diagnostic> = BTreeMap::new();
    // Each template read once, the shared context built once: linear in phases and agents.
    let shared = context::Shared::new(wf, state);
    let mut sources: BTreeMap<&str, Option<String>> = BTreeMap::new();
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    for phase in &wf.phases {
        for name in &phase.agents {
            let agent = &wf.agents[name];
            let rel = crate::prompt::template_path(agent);
            let source = sources.entry(name.as_str()).or_insert_with(|| {
                match crate::prompt::read_template(&wf.root, &rel, agent.prompt.is_some()) {
                    Ok(s) => s,
                    Err(d) => {
                        errors.entry(d.to_string()).or_insert(d);
                        None
                    }
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
pub fn check_llm_agents(wf: &Workflow, state: &RunState) -> Result<(), AppError> {
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
                    "error: agent `{name}` needs an API key in the environment variable `{var}`, which is not set\nhelp: export {var}=…, or set `api_key_env` under `agents.{name}.llm` (\"\" for servers that need no key)"
                ));
            }
            let rel = crate::prompt::template_path(agent);
            if !wf.root.join(&rel).is_file() {
                problems.push(format!(
                    "error: LLM agent `{name}` has no prompt template\nhelp: write one at `{}`",
                    rel.display()
                ));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(AppError::Setup(problems.join("\n\n"))) }
}

/// The config for a command that runs or decides: in a pull-request context, with the gate's
/// policy taken from the base branch's config at the pull request's base commit (fetched
/// through the API; the checkout may be the pull request's head, which its author controls).
pub async fn load_for_run(ctx: &Ctx) -> Result<Workflow, AppError> {
    use crate::github::context::{Detected, detect};
    let mut wf = ctx.load()?;
    // A bad event payload, token or repository is refused here, before anything is written.
    let Detected::PullRequest(pr) =
        detect(|k| std::env::var(k).ok()).map_err(|e| AppError::Setup(format!("error: {e}")))?
    else {
        return Ok(wf);
    };
    // A fork that the pull request's own config does not allow is refused before asking GitHub
    // anything (that answer needs no policy); otherwise the base branch's policy decides.
    check_trust(&wf)?;
    let full = if wf.config_path.is_absolute() { wf.config_path.clone() } else { wf.root.join(&wf.config_path) };
    // The policy is looked up at the config's own path: a symlink would make the base branch's
    // copy be looked for elsewhere (and be missed).
    if full.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(AppError::Setup(format!(
            "error: `{}` is a symlink; in a pull request the config must be a regular file, because the gate's policy is read from the base branch's copy at the same path",
            wf.config_path.display()
        )));
    }
    // Its folder resolved (the workspace may sit in a symlinked folder), its name as given.
    let real = full.parent().and_then(|d| d.canonicalize().ok()).zip(full.file_name()).map(|(d, n)| d.join(n));
    let in_repo = super::repository_root(&wf.root)
        .and_then(|repo| real.and_then(|f| f.strip_prefix(&repo).ok().map(Path::to_path_buf)));
    let rel = crate::workspace::slash_path(in_repo.as_deref().unwrap_or(&wf.config_path));
    let base = crate::github::base::config(&pr, &rel).await.map_err(|e| {
        AppError::Io(anyhow::Error::new(e).context(format!(
            "cannot read the gate's policy (`{rel}` on the base branch of pull request #{}); the gate stays closed",
            pr.number
        )))
    })?;
    let sha = &base.sha;
    let policy = match &base.config {
        Some(text) => Some(crate::config::parse(&wf.root, Path::new(&rel), text).map_err(|e| {
            AppError::Setup(format!(
                "error: the base branch's `{rel}` (commit {}) is not a valid config, so the gate's policy is unknown\n{e}",
                crate::markup::prefix(sha, 12)
            ))
        })?),
        None => None,
    };
    let changes = crate::config::policy::apply(&mut wf, policy.as_ref(), &rel);
    // Events without the pull request in their payload (a comment) learn where its head lives
    // from GitHub.
    let this = format!("{}/{}", pr.owner, pr.repo);
    if pr.fork.is_none() && !base.head_repo.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&this)) {
        let mut forked = (*pr).clone();
        forked.fork = Some(base.head_repo.clone().unwrap_or_else(|| "a deleted repository".into()));
        check_trust_of(&wf, &forked)?;
    }
    if !changes.is_empty() {
        errln!(
            "note: this pull request changes the gate's policy ({}); the base branch's policy applies, and only people with write access can approve",
            changes.join("; ")
        );
    }
    Ok(wf)
}

/// A fork's pull request in an event that carries this repository's token and secrets
/// (`pull_request_target`, `labeled` on it, …) runs no agents unless the config allows it: the
/// fork's code would run with them. A `pull_request` event from a fork gets neither, so it may.
pub fn check_trust(wf: &Workflow) -> Result<(), AppError> {
    use crate::github::context::{Detected, detect};
    let Ok(Detected::PullRequest(ctx)) = detect(|k| std::env::var(k).ok()) else { return Ok(()) };
    check_trust_of(wf, &ctx)
}

fn check_trust_of(wf: &Workflow, ctx: &crate::github::context::PrContext) -> Result<(), AppError> {
    match &ctx.fork {
        Some(fork) if ctx.event_name != "pull_request" && !wf.consensus.allow_forks => Err(AppError::Setup(format!(
            "error: pull request #{} comes from the fork `{fork}`; this `{}` run holds {}/{}'s token and secrets, so orchestrator runs no agents for it\nhelp: run it from a `pull_request` event (a fork gets no secrets there), or set `consensus.allow_forks: true` in `{}` if you trust every fork's code with them",
            ctx.number,
            ctx.event_name,
            ctx.owner,
            ctx.repo,
            wf.config_path.display()
        ))),
        _ => Ok(()),
    }
}

/// Redact the standard secret variables, every API key variable the config names, and the
/// variables listed under `secrets:`.
pub fn redactor(wf: &Workflow) -> Redactor {
    let mut r = Redactor::from_env();
    let api_keys = wf.agents.values().filter_map(|a| a.llm().and_then(|s| s.api_key_env.as_ref()));
    for var in api_keys.chain(&wf.secrets) {
        if let Ok(v) = std::env::var(var) {
            r.add(&v);
        }
    }
    r
}

pub async fn start(
    ctx: &Ctx,
    intake: Option<PathBuf>,
    force: bool,
    phase: Option<String>,
    exec: ExecArgs,
) -> Result<i32, AppError> {
    let wf = if exec.dry_run { ctx.load()? } else { load_for_run(ctx).await? };
    start_loaded(ctx, wf, intake, force, phase, exec).await
}

/// `start` with the workflow already loaded.
async fn start_loaded(
    ctx: &Ctx,
    wf: Workflow,
    intake: Option<PathBuf>,
    force: bool,
    phase: Option<String>,
    exec: ExecArgs,
) -> Result<i32, AppError> {
    let mode = match phase {
        None => Mode::Continue,
        Some(name) => {
            let p = wf.phase(&name).ok_or_else(|| unknown_phase(&wf, &name))?;
            if !p.needs.is_empty() {
                let first: Vec<String> =
                    wf.phases.iter().filter(|p| p.needs.is_empty()).map(|p| format!("`{}`", p.name)).collect();
                return Err(AppError::Usage(format!(
                    "a run cannot start with phase `{name}`: it needs {}\nhelp: start with a phase that needs none: {}",
                    p.needs.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                    first.join(", ")
                )));
            }
            Mode::Phase(name)
        }
    };
    let (intake_rel, explicit) = match intake {
        Some(p) => (p, true),
        None => (PathBuf::from(crate::intake::DEFAULT_INTAKE), false),
    };
    let intake_value = crate::intake::load(&ctx.root, &intake_rel, explicit)?;
    let mut new_state = preview_state(&wf, intake_value, Some(&intake_rel));
    preflight(&wf, &new_state)?;
    let path = wf.state_path();
    if exec.dry_run {
        dry_run::print(&wf, &new_state, true, &mode, &exec);
        return Ok(exit_code::SUCCESS);
    }
    check_llm_agents(&wf, &new_state)?;
    check_trust(&wf)?;
    if !force {
        check_before_locking(&path)?;
    }
    let lock = state::lock(&path)?;
    match state::read(&path) {
        Ok(previous) => {
            let status = previous.status();
            if !force && matches!(status, RunStatus::Running | RunStatus::Interrupted | RunStatus::AwaitingApproval) {
                return Err(AppError::Usage(format!(
                    "run {} has not finished (it is {})\nhelp: continue it with `orchestrator run resume`, or replace it with `orchestrator run start --force`",
                    previous.run_id,
                    status.as_str()
                )));
            }
            if previous.run_id == new_state.run_id {
                new_state.run_id.push_str("_2");
            }
        }
        Err(state::StateError::NoRun { .. }) => {}
        Err(e) if force => errln!("note: replacing an unreadable state: {}", neutralize(&e.to_string())),
        Err(e) => return Err(e.into()),
    }
    let store = StateStore::create(&path, lock, new_state)?;
    errln!("run {} started", neutralize(&store.state.run_id));
    drive(wf, store, mode, &exec).await
}

/// Commands on the existing run: load it, let `prepare` check or change it, then run `mode`.
async fn existing(
    ctx: &Ctx,
    mode: Mode,
    exec: ExecArgs,
    prepare: impl Fn(&Workflow, &mut RunState) -> Result<(), AppError>,
) -> Result<i32, AppError> {
    let wf = if exec.dry_run { ctx.load()? } else { load_for_run(ctx).await? };
    existing_loaded(wf, mode, exec, prepare).await
}

/// `existing` with the workflow already loaded.
async fn existing_loaded(
    wf: Workflow,
    mode: Mode,
    exec: ExecArgs,
    prepare: impl Fn(&Workflow, &mut RunState) -> Result<(), AppError>,
) -> Result<i32, AppError> {
    let path = wf.state_path();
    if exec.dry_run {
        let mut state = state::read(&path)?;
        reconcile(&wf, &mut state);
        prepare(&wf, &mut state)?;
        preflight(&wf, &state)?;
        dry_run::print(&wf, &state, false, &mode, &exec);
        return Ok(exit_code::SUCCESS);
    }
    check_trust(&wf)?;
    check_before_locking(&path)?;
    // Every check on a copy first: a refusal takes no lock and writes nothing. (A state still
    // to be restored from the gate comment is checked once it is, under the lock.)
    if let Ok(mut copy) = state::read(&path) {
        reconcile(&wf, &mut copy);
        prepare(&wf, &mut copy)?;
        preflight(&wf, &copy)?;
        check_llm_agents(&wf, &copy)?;
    }
    let lock = state::lock(&path)?;
    restore_carried_state(&path).await?;
    let mut store = StateStore::open(&path, lock)?;
    reconcile(&wf, &mut store.state);
    prepare(&wf, &mut store.state)?;
    preflight(&wf, &store.state)?;
    check_llm_agents(&wf, &store.state)?;
    // On a pull request a completed state is a claim like any other: the engine confirms its
    // approvals with GitHub before calling it complete.
    if store.state.status() == RunStatus::Completed && !in_pull_request() {
        outln!("run {} is complete; start a new one with `orchestrator run start`", neutralize(&store.state.run_id));
        return Ok(exit_code::SUCCESS);
    }
    store.save()?;
    drive(wf, store, mode, &exec).await
}

fn in_pull_request() -> bool {
    use crate::github::context::{Detected, detect};
    matches!(detect(|k| std::env::var(k).ok()), Ok(Detected::PullRequest(_)))
}

/// Refuse a state file that cannot be used before the lock file is created or written: a
/// refused input writes nothing. (It is read again under the lock.)
fn check_before_locking(path: &Path) -> Result<(), AppError> {
    match state::read(path) {
        Ok(_) | Err(state::StateError::NoRun { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether there is a run that has not finished: here, or (restored first) carried by the pull
/// request's gate comment.
async fn unfinished_run(ctx: &Ctx) -> Result<(bool, Workflow), AppError> {
    let wf = load_for_run(ctx).await?;
    let path = wf.state_path();
    check_trust(&wf)?;
    check_before_locking(&path)?;
    {
        let _lock = state::lock(&path)?;
        restore_carried_state(&path).await?;
    }
    match state::read(&path) {
        Ok(s) => {
            let unfinished =
                matches!(s.status(), RunStatus::Running | RunStatus::Interrupted | RunStatus::AwaitingApproval);
            if unfinished {
                errln!("run {} has not finished; continuing it (--or-resume)", neutralize(&s.run_id));
            }
            Ok((unfinished, wf))
        }
        Err(state::StateError::NoRun { .. }) => Ok((false, wf)),
        Err(e) => Err(e.into()),
    }
}

/// On a fresh runner (no state file) in a pull-request context, take the run state the gate
/// comment carries, if there is one (see `github::carry`).
async fn restore_carried_state(path: &Path) -> Result<(), AppError> {
    use crate::github::context::{Detected, detect};
    if path.exists() {
        return Ok(());
    }
    let Detected::PullRequest(ctx) =
        detect(|k| std::env::var(k).ok()).map_err(|e| AppError::Setup(format!("error: {e}")))?
    else {
        return Ok(());
    };
    let carried = crate::github::carry::fetch(&ctx).await.map_err(|e| {
        AppError::Setup(format!("error: cannot restore the run state from pull request #{}: {e}", ctx.number))
    })?;
    if let Some(restored) = carried {
        let bytes =
            serde_json::to_vec_pretty(&restored).map_err(|e| anyhow::anyhow!("cannot encode the state: {e}"))?;
        state::write_atomic(path, &bytes).map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?;
        errln!("restored run {} from its gate comment on pull request #{}", neutralize(&restored.run_id), ctx.number);
    }
    Ok(())
}

/// Bring the state's phases in line with the config (it may have changed since the run began).
fn reconcile(wf: &Workflow, state: &mut RunState) {
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

fn unknown_phase(wf: &Workflow, name: &str) -> AppError {
    let help = did_you_mean(name, wf.phases.iter().map(|p| p.name.as_str()))
        .map(|h| format!("\nhelp: {h}"))
        .unwrap_or_default();
    AppError::Usage(format!("no phase `{name}` in `{}`{help}", wf.config_path.display()))
}

fn check_phase_runnable(wf: &Workflow, state: &mut RunState, name: &str) -> Result<(), AppError> {
    let phase = wf.phase(name).ok_or_else(|| unknown_phase(wf, name))?;
    let status = state.phases.get(name).map(|p| p.status).unwrap_or(PhaseStatus::Pending);
    if status.is_done() || status == PhaseStatus::AwaitingApproval {
        // Nothing to run; the engine re-reads the gates and the exit code says where the run is.
        errln!("phase `{name}` has already run ({})", status.as_str());
        return Ok(());
    }
    if matches!(status, PhaseStatus::Rejected | PhaseStatus::Failed) && in_pull_request() {
        // A reviewer may have asked for it to run again (`/retry`): the engine reads that, and
        // the exit code says where the run stands.
        return Ok(());
    }
    if !matches!(status, PhaseStatus::Pending | PhaseStatus::Running) {
        return Err(AppError::Usage(format!(
            "phase `{name}` has already run ({})\nhelp: run it again with `orchestrator run retry --phase {name}`",
            status.as_str()
        )));
    }
    // A need still awaiting approval is checked again once its gate has been re-read.
    let unmet: Vec<String> = phase
        .needs
        .iter()
        .filter(|n| {
            !state.phases.get(*n).is_some_and(|p| p.status.is_done() || p.status == PhaseStatus::AwaitingApproval)
        })
        .map(|n| format!("`{n}` ({})", state.phases.get(n).map(|p| p.status.as_str()).unwrap_or("pending")))
        .collect();
    if !unmet.is_empty() {
        return Err(AppError::Usage(format!("phase `{name}` needs {} first", unmet.join(", "))));
    }
    Ok(())
}

/// `run phase NAME --agent A`: A must be one of the phase's agents, and the phase still open.
fn check_agent_of(wf: &Workflow, state: &RunState, phase: &str, agent: &str) -> Result<(), AppError> {
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

fn reset_for_retry(wf: &Workflow, state: &mut RunState, name: &str) -> Result<(), AppError> {
    wf.phase(name).ok_or_else(|| unknown_phase(wf, name))?;
    let ps = state.phases.entry(name.to_owned()).or_insert_with(PhaseState::pending);
    match ps.status {
        PhaseStatus::Failed | PhaseStatus::Rejected | PhaseStatus::AwaitingApproval | PhaseStatus::Running => {
            let runs = ps.runs;
            *ps = PhaseState::pending();
            ps.runs = runs;
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

/// On a pull request the reviewers decide on GitHub, where the gate re-derives every decision;
/// a decision recorded here would be undone by the next resume, so it is refused.
fn refuse_in_pull_request(wf: &Workflow, approve: bool) -> Result<(), AppError> {
    use crate::github::context::{Detected, detect};
    let Ok(Detected::PullRequest(pr)) = detect(|k| std::env::var(k).ok()) else { return Ok(()) };
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

async fn decide(
    ctx: &Ctx,
    phase: Option<String>,
    by: Option<String>,
    reject_reason: Option<String>,
    then: Option<Mode>,
    exec: ExecArgs,
) -> Result<i32, AppError> {
    let wf = ctx.load()?;
    refuse_in_pull_request(&wf, reject_reason.is_none())?;
    crate::github::context::detect(|k| std::env::var(k).ok()).map_err(|e| AppError::Setup(format!("error: {e}")))?;
    let path = wf.state_path();
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "local user".to_owned());
    let approved = reject_reason.is_none();
    let apply = |state: &mut RunState| -> Result<String, AppError> {
        let name = awaiting_phase(state, phase.as_deref())?;
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
            dry_run::print(&wf, &state, false, mode, &exec);
        }
        return Ok(exit_code::SUCCESS);
    }
    if then.is_some() {
        check_trust(&wf)?;
    }
    check_before_locking(&path)?;
    // Checked on a copy first: a refusal (no such phase, nothing waiting) takes no lock.
    apply(&mut state::read(&path)?)?;
    let lock = state::lock(&path)?;
    let mut store = StateStore::open(&path, lock)?;
    let name = apply(&mut store.state)?;
    store.save()?;
    crate::report::Recorder::new(&wf.root, redactor(&wf)).metrics(&wf, &store.state).map_err(EngineError::from)?;
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
            reconcile(&wf, &mut store.state);
            preflight(&wf, &store.state)?;
            check_llm_agents(&wf, &store.state)?;
            drive(wf, store, mode, &exec).await
        }
        None => Ok(exit_code::SUCCESS),
    }
}

/// Stop the run on Ctrl-C / SIGTERM: gracefully at the first, at once at the second.
async fn watch_signals(tx: watch::Sender<Cancel>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return;
    };
    let mut count = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        count += 1;
        if count == 1 {
            errln!(
                "\nstopping: no new agents start; running agents get SIGTERM (press Ctrl-C again to kill them at once)"
            );
            let _ = tx.send(Cancel::Graceful);
        } else {
            errln!("killing running agents");
            let _ = tx.send(Cancel::Immediate);
        }
    }
}

/// The gate for this run: a pull-request comment in a GitHub pull-request context, else files.
fn gate_for(wf: &Workflow, redactor: Redactor) -> Result<(Arc<dyn Gate>, Option<u64>), AppError> {
    use crate::github::context::{Detected, detect};
    match detect(|k| std::env::var(k).ok()).map_err(|e| AppError::Setup(format!("error: {e}")))? {
        Detected::PullRequest(ctx) => {
            let number = ctx.number;
            let gate = crate::github::gate::GitHubGate::new(*ctx, wf.root.clone(), redactor)
                .map_err(|e| AppError::Setup(format!("error: {e}")))?;
            Ok((Arc::new(gate), Some(number)))
        }
        Detected::Local | Detected::NoPullRequest { .. } => {
            Ok((Arc::new(LocalGate { root: wf.root.clone(), redactor }), None))
        }
    }
}

/// Run the engine with the terminal display and signal handling; print where the run stands.
/// At a GitHub gate with `wait: poll`, keep checking until a decision or the poll timeout.
async fn drive(wf: Workflow, store: StateStore, mode: Mode, exec: &ExecArgs) -> Result<i32, AppError> {
    let (gate, pull_request) = gate_for(&wf, redactor(&wf))?;
    let (events, rx) = mpsc::unbounded_channel();
    let (cancel_tx, cancel_rx) = watch::channel(Cancel::None);
    let signals = tokio::spawn(watch_signals(cancel_tx));
    let redactor = redactor(&wf);
    let display = tokio::spawn(crate::output::display(rx, redactor.clone()));
    let runner = super::actions::Runner::detect();
    if let Some(r) = &runner {
        r.mask(&redactor);
    }
    let since = Utc::now();
    let wf = Arc::new(wf);
    let started = std::time::Instant::now();
    let mut store = store;
    let mut mode = mode;
    let (result, state) = loop {
        let opts = RunOptions {
            mode: mode.clone(),
            max_workers: exec.max_workers.map(|n| n as usize),
            timeout: exec.timeout.map(Duration::from_secs_f64),
            force_parallel: exec.parallel,
            only_agent: exec.only_agent.clone(),
        };
        let engine = Arc::new(Engine::new(
            Arc::clone(&wf),
            store,
            events.clone(),
            cancel_rx.clone(),
            Arc::clone(&gate),
            redactor.clone(),
            opts,
        ));
        let result = Arc::clone(&engine).run().await;
        let Some(back) = Arc::into_inner(engine).and_then(Engine::into_store) else {
            break (Err(AppError::Io(anyhow::anyhow!("the engine still held the run state after finishing"))), None);
        };
        let polling = matches!(&result, Ok(s) if s.status == RunStatus::AwaitingApproval && !s.interrupted)
            && pull_request.is_some()
            && exec.wait.unwrap_or(wf.consensus.wait) == crate::config::WaitMode::Poll
            && started.elapsed() + wf.consensus.poll_interval < wf.consensus.poll_timeout;
        if !polling {
            break (result.map_err(AppError::from), Some(back.state));
        }
        errln!(
            "waiting for a decision on pull request #{}; checking again in {}s",
            pull_request.unwrap_or_default(),
            wf.consensus.poll_interval.as_secs()
        );
        let mut cancel = cancel_rx.clone();
        tokio::select! {
            _ = tokio::time::sleep(wf.consensus.poll_interval) => {}
            _ = cancel.wait_for(|c| *c != Cancel::None) => break (result.map_err(AppError::from), Some(back.state)),
        }
        store = back;
        mode = Mode::Continue;
    };
    drop(events);
    let _ = display.await;
    signals.abort();
    let summary = result?;
    let Some(state) = state else {
        return Err(AppError::Io(anyhow::anyhow!("the engine still held the run state after finishing")));
    };
    status::print_outcome(&wf, &state, &redactor);
    let agent_failed = match (&mode, &exec.only_agent) {
        (Mode::Phase(phase), Some(agent)) => {
            state.phases.get(phase).and_then(|p| p.agents.get(agent)).is_some_and(|s| s.status == AgentStatus::Failed)
        }
        _ => false,
    };
    let code = if summary.interrupted {
        exit_code::INTERRUPTED
    } else {
        match summary.status {
            // One agent of an open phase: its own outcome.
            RunStatus::Running if agent_failed => exit_code::FAILED,
            RunStatus::Completed | RunStatus::Running => exit_code::SUCCESS,
            RunStatus::AwaitingApproval => exit_code::AWAITING_APPROVAL,
            RunStatus::Failed => exit_code::FAILED,
            RunStatus::Rejected => exit_code::REJECTED,
            RunStatus::Interrupted => exit_code::INTERRUPTED,
        }
    };
    if let Some(r) = &runner {
        r.finish(&wf, &state, code, since, &redactor);
    }
    Ok(code)
}
