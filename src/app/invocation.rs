//! [`Invocation`]: what one command works with, built once, checked once, in one order.
//!
//! Every command starts here: the workspace, the validated [`Workflow`], the GitHub context
//! (the event payload parsed once), and the redactor. A command that runs or decides builds it
//! with [`Invocation::for_run`], which in a pull request also refuses untrusted forks and puts
//! the base branch's gate policy into the workflow. Nothing is written while it is built.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::{AppError, Ctx, checks};
use crate::config::Workflow;
use crate::executor::Redactor;
use crate::gate::{Gate, LocalGate};
use crate::github::context::{ContextError, Detected, PrContext, detect};
use crate::runner_log::neutralize;
use crate::state;

pub(crate) struct Invocation {
    pub(crate) wf: Workflow,
    /// The GitHub event, parsed once; an unreadable payload is an error for commands that run
    /// or decide, and only shown by the others.
    github: Result<Detected, ContextError>,
    pub(crate) redactor: Redactor,
    /// The run state the pull request's gate comment carries, read once (see [`Invocation::carried`]).
    carried: tokio::sync::OnceCell<Option<state::RunState>>,
}

impl Invocation {
    /// The config and the GitHub context, for commands that only read (status, metrics, the dry
    /// run, merge, rollback).
    pub(crate) fn load(ctx: &Ctx) -> Result<Invocation, AppError> {
        let wf = crate::config::load(&ctx.root, &ctx.config)?;
        Ok(Invocation::with(wf))
    }

    fn with(wf: Workflow) -> Invocation {
        let github = detect(|k| std::env::var(k).ok());
        let redactor = redactor(&wf);
        Invocation { wf, github, redactor, carried: tokio::sync::OnceCell::new() }
    }

    /// For a command that runs agents or decides: the GitHub context must be readable; in a
    /// pull request, a fork the config does not trust is refused and the gate's policy comes
    /// from the base branch's config at the pull request's base commit (fetched through the
    /// API; the checkout may be the pull request's head, which its author controls).
    pub(crate) async fn for_run(ctx: &Ctx) -> Result<Invocation, AppError> {
        let mut inv = Invocation::load(ctx)?;
        let pr = match &inv.github {
            Ok(Detected::PullRequest(pr)) => pr.clone(),
            Ok(_) => return Ok(inv),
            Err(e) => return Err(AppError::Setup(e.to_string())),
        };
        // A fork that the pull request's own config does not allow is refused before asking
        // GitHub anything (that answer needs no policy); otherwise the base branch's policy
        // decides.
        checks::trust(&inv.wf, &pr)?;
        let rel = inv.config_in_repository()?;
        let base = crate::github::base::config(&pr, &rel, &inv.wf.state_path()).await.map_err(|e| {
            AppError::Other(anyhow::Error::new(e).context(format!(
                "cannot read the gate's policy (`{rel}` on the base branch of pull request #{}); the gate stays closed",
                pr.number
            )))
        })?;
        let policy = match &base.config {
            Some(text) => Some(crate::config::parse(&inv.wf.root, Path::new(&rel), text).map_err(|e| {
                let at = match &base.retargeted {
                    Some((_, default)) => format!("the default branch `{}`", neutralize(default)),
                    None => format!("commit {}", crate::markup::prefix(&base.sha, 12)),
                };
                AppError::Setup(format!(
                    "the base branch's `{rel}` ({at}) is not a valid config, so the gate's policy is unknown\n{e}"
                ))
            })?),
            None => None,
        };
        if let Some((target, default)) = &base.retargeted {
            errln!(
                "note: pull request #{} targets `{}`, not the default branch `{}`: the gate's policy is the default branch's `{rel}`",
                pr.number,
                neutralize(target),
                neutralize(default)
            );
        }
        let changes = crate::config::policy::apply(&mut inv.wf, policy.as_ref(), &rel);
        // Events without the pull request in their payload (a comment) learn where its head
        // lives from GitHub.
        let this = format!("{}/{}", pr.owner, pr.repo);
        let mut pr = pr;
        if pr.fork.is_none() && !base.head_repo.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&this)) {
            pr.fork = Some(base.head_repo.clone().unwrap_or_else(|| "a deleted repository".into()));
            inv.github = Ok(Detected::PullRequest(pr.clone()));
        }
        // Again under the base branch's policy: a fork's own config cannot allow forks.
        checks::trust(&inv.wf, &pr)?;
        if !changes.is_empty() {
            errln!(
                "note: this pull request changes the gate's policy ({}); the base branch's policy applies, and only people with write access can approve",
                changes.join("; ")
            );
        }
        Ok(inv)
    }

    /// The config's path in the repository, as the base branch would hold it. A symlink is
    /// refused: the base branch's copy would be looked for elsewhere (and be missed).
    fn config_in_repository(&self) -> Result<String, AppError> {
        let wf = &self.wf;
        let full = if wf.config_path.is_absolute() { wf.config_path.clone() } else { wf.root.join(&wf.config_path) };
        if full.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(AppError::Setup(format!(
                "`{}` is a symlink; in a pull request the config must be a regular file, because the gate's policy is read from the base branch's copy at the same path",
                wf.config_path.display()
            )));
        }
        // Its folder resolved (the workspace may sit in a symlinked folder), its name as given.
        let real = full.parent().and_then(|d| d.canonicalize().ok()).zip(full.file_name()).map(|(d, n)| d.join(n));
        let in_repo = super::repository_root(&wf.root)
            .and_then(|repo| real.and_then(|f| f.strip_prefix(&repo).ok().map(Path::to_path_buf)));
        Ok(crate::workspace::slash_path(in_repo.as_deref().unwrap_or(&wf.config_path)))
    }

    /// The GitHub context, or why it cannot be read.
    pub(crate) fn github(&self) -> Result<&Detected, &ContextError> {
        self.github.as_ref()
    }

    /// The pull request this command works on, if any.
    pub(crate) fn pull_request(&self) -> Option<&PrContext> {
        match &self.github {
            Ok(Detected::PullRequest(pr)) => Some(pr),
            _ => None,
        }
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.wf.state_path()
    }

    /// Refuse a state file that cannot be used before the lock file is created or written: a
    /// refused input writes nothing. (It is read again under the lock.)
    pub(crate) fn check_state_file(&self) -> Result<(), AppError> {
        match state::read(&self.state_path()) {
            Ok(_) | Err(state::StateError::NoRun { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The run state the pull request's gate comment carries (`None` outside a pull request,
    /// or when it carries none): read once, so that a command can refuse before it takes the
    /// lock and restore the same state under it.
    pub(crate) async fn carried(&self) -> Result<Option<&state::RunState>, AppError> {
        let Some(pr) = self.pull_request() else { return Ok(None) };
        let carried = self
            .carried
            .get_or_try_init(|| async {
                crate::github::carry::fetch(pr).await.map_err(|e| {
                    AppError::Setup(format!("cannot restore the run state from pull request #{}: {e}", pr.number))
                })
            })
            .await?;
        Ok(carried.as_ref())
    }

    /// The run a command goes on with, to check before the lock: the state here, or on a fresh
    /// runner the one the pull request's gate comment carries (restored under the lock). None
    /// at all is refused, before anything is written.
    pub(crate) async fn state_to_check(&self) -> Result<state::RunState, AppError> {
        match state::read(&self.state_path()) {
            Err(e @ state::StateError::NoRun { .. }) => self.carried().await?.cloned().ok_or_else(|| e.into()),
            found => Ok(found?),
        }
    }

    /// Take the run's lock; on a fresh runner in a pull request, first restore the run state
    /// the gate comment carries (see `github::carry`), under the lock.
    pub(crate) async fn lock(&self) -> Result<state::StateLock, AppError> {
        let path = self.state_path();
        let lock = state::lock(&path)?;
        let Some(pr) = self.pull_request() else { return Ok(lock) };
        if path.exists() {
            return Ok(lock);
        }
        if let Some(restored) = self.carried().await? {
            let bytes = serde_json::to_vec_pretty(&restored).context("cannot encode the restored run state")?;
            state::write_atomic(&path, &bytes).with_context(|| format!("cannot write `{}`", path.display()))?;
            errln!(
                "restored run {} from its gate comment on pull request #{}",
                neutralize(&restored.run_id),
                pr.number
            );
        }
        Ok(lock)
    }

    /// The gate for this run: a pull-request comment in a pull-request context, else files.
    pub(crate) fn gate(&self) -> Result<Arc<dyn Gate>, AppError> {
        match self.pull_request() {
            Some(pr) => {
                let gate =
                    crate::github::gate::GitHubGate::new(pr.clone(), self.wf.root.clone(), self.redactor.clone())
                        .map_err(|e| AppError::Setup(e.to_string()))?;
                Ok(Arc::new(gate))
            }
            None => Ok(Arc::new(LocalGate { root: self.wf.root.clone(), redactor: self.redactor.clone() })),
        }
    }
}

/// Redact the standard secret variables, every API key variable the config names, and the
/// variables listed under `secrets:`.
pub(crate) fn redactor(wf: &Workflow) -> Redactor {
    let mut r = Redactor::from_env();
    let api_keys = wf.agents.values().filter_map(|a| a.llm().and_then(|s| s.api_key_env.as_ref()));
    for var in api_keys.chain(&wf.secrets) {
        if let Ok(v) = std::env::var(var) {
            r.add(&v);
        }
    }
    r
}
