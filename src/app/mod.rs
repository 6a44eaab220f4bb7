//! The commands: each loads what it needs, calls the engine or reads the state, and returns an
//! exit code. Errors are mapped to exit codes in one place, [`AppError::exit_code`].

mod checks;
mod ci_generate;
mod decide;
mod diff;
mod drive;
mod dry_run;
mod existing;
mod init;
mod invocation;
mod merge;
mod prepare;
mod quickstart_type;
mod report;
mod rollback;
mod runner;
mod start;
mod status;
mod validate;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, ExecArgs, RunCommand};
use crate::config::ConfigError;
use crate::diagnostic::Diagnostic;
use crate::engine::{EngineError, Mode};
use crate::exit_code;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Intake, prompt template and other located input errors (possibly several).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n\n"))]
    Input(Vec<Diagnostic>),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A command that does not fit the run's situation.
    #[error("{0}")]
    Usage(String),
    /// Something the run needs from its environment is missing or unusable (an API key, the
    /// GitHub context, the base branch's policy).
    #[error("{0}")]
    Setup(String),
    /// Anything else (a file that cannot be written, …), with its causes.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<Diagnostic> for AppError {
    fn from(d: Diagnostic) -> Self {
        AppError::Input(vec![d])
    }
}

impl AppError {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            AppError::Config(_) | AppError::Input(_) | AppError::Setup(_) => exit_code::INVALID_INPUT,
            AppError::State(e) | AppError::Engine(EngineError::State(e)) => match e {
                StateError::Busy { .. } => exit_code::BUSY,
                StateError::NoRun { .. } => exit_code::USAGE,
                StateError::Corrupt { .. } | StateError::TooNew { .. } => exit_code::INVALID_INPUT,
                StateError::Io { .. } => exit_code::ERROR,
            },
            AppError::Engine(
                EngineError::Gate(_) | EngineError::Write { .. } | EngineError::Record(_) | EngineError::Internal(_),
            ) => exit_code::ERROR,
            AppError::Usage(_) | AppError::Engine(EngineError::NotReady { .. }) => exit_code::USAGE,
            AppError::Other(_) => exit_code::ERROR,
        }
    }

    /// The message for stderr, the one place that writes `error:`: diagnostics are already
    /// formatted; others get `error: ` and their cause chain.
    pub(crate) fn render(&self) -> String {
        match self {
            AppError::Config(_) | AppError::Input(_) => self.to_string(),
            AppError::Other(e) => {
                let mut s = format!("error: {e}");
                for cause in e.chain().skip(1) {
                    s.push_str(&format!("\n  caused by: {cause}"));
                }
                s
            }
            _ => format!("error: {self}"),
        }
    }
}

/// Where a command works.
pub(crate) struct Ctx {
    /// The workspace root.
    pub(crate) root: PathBuf,
    /// The config path as given (relative to the root unless absolute).
    pub(crate) config: PathBuf,
}

pub(crate) async fn execute(cli: Cli) -> Result<i32, AppError> {
    let root = match &cli.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir().map_err(|e| anyhow::Error::new(e).context("cannot read the current folder"))?,
    };
    if cli.directory.is_some() && !root.is_dir() && !matches!(cli.command, Command::Quickstart(_)) {
        return Err(AppError::Usage(format!("`{}` is not a folder (given with -C)", root.display())));
    }
    crate::hints::set(cli.directory.as_deref(), &cli.config);
    let ctx = Ctx { root, config: cli.config.clone() };
    let result = match cli.command {
        Command::Init(args) => init::init(&ctx, args),
        Command::Quickstart(args) => init::quickstart(&ctx, args, cli.directory.clone()).await,
        Command::Validate => validate::validate(&ctx),
        Command::Run(cmd) => run(&ctx, cmd).await,
        Command::Ci(crate::cli::CiCommand::Generate { jobs, output, force, uses }) => {
            ci_generate::ci_generate(&ctx, jobs, output, force, uses)
        }
        Command::Completions { shell, dir } => {
            crate::shell::completions(shell, dir.as_deref()).map(|()| exit_code::SUCCESS).map_err(AppError::from)
        }
        Command::Man { dir } => crate::shell::man(dir.as_deref()).map(|()| exit_code::SUCCESS).map_err(AppError::from),
    };
    if let (Err(e), Some(runner)) = (&result, runner::Runner::detect()) {
        // The config may not have loaded: the standard secret variables, and `secrets:` if it did.
        let redactor = crate::config::load(&ctx.root, &ctx.config)
            .map(|wf| invocation::redactor(&wf))
            .unwrap_or_else(|_| crate::executor::Redactor::from_env());
        runner.failed(&ctx.root, e, e.exit_code(), &redactor);
    }
    result
}

async fn run(ctx: &Ctx, cmd: RunCommand) -> Result<i32, AppError> {
    use existing::Step;
    match cmd {
        RunCommand::Start { intake, force, or_resume, phase, exec } => {
            let phase = phase.into_name();
            start::execute(ctx, start::StartArgs { intake, force, or_resume, phase, create_only: false }, exec).await
        }
        RunCommand::Next { exec } => existing::execute(ctx, Step { mode: Mode::Step, retry: None }, exec).await,
        RunCommand::Resume { exec } => existing::execute(ctx, Step { mode: Mode::Continue, retry: None }, exec).await,
        RunCommand::Phase { name, agent, mut exec } => {
            let name = name.into_name();
            if let Some(a) = &agent
                && !exec.dry_run
                && checks::agent_has_nothing_to_do(&invocation::Invocation::load(ctx)?.wf, &name, a)
            {
                return Ok(crate::exit_code::SUCCESS);
            }
            exec.only_agent = agent;
            existing::execute(ctx, Step { mode: Mode::Phase(name), retry: None }, exec).await
        }
        RunCommand::Retry { phase, exec } => {
            existing::execute(ctx, Step { mode: Mode::Continue, retry: Some(phase.into_name()) }, exec).await
        }
        RunCommand::Status { json: _, timeline: true } => report::timeline(ctx),
        RunCommand::Status { json, timeline: false } => status::show(ctx, json),
        RunCommand::Report { html, output } => report::write(ctx, html, output),
        RunCommand::Metrics { json, prom } => status::metrics(ctx, json, prom),
        RunCommand::Approve { phase, by, no_continue, exec } => {
            let mode = if no_continue { None } else { Some(Mode::Continue) };
            decide::decide(ctx, phase.into_name(), by, None, mode, exec).await
        }
        RunCommand::Reject { reason, phase, by } => {
            if reason.trim().is_empty() {
                return Err(AppError::Usage("`--reason` must say why the phase is rejected".into()));
            }
            decide::decide(ctx, phase.into_name(), by, Some(reason), None, ExecArgs::default()).await
        }
        RunCommand::Rollback { phase } => rollback::write(ctx, &phase.into_name()),
        RunCommand::Diff { phase } => diff::show(ctx, phase.into_name()),
        RunCommand::Merge { dirs } => merge::merge(ctx, &dirs),
        RunCommand::Prepare { or_start, intake } => prepare::prepare(ctx, or_start, intake).await,
    }
}

/// The repository holding `dir`: the nearest folder above it (or itself) with a `.git`.
pub(super) fn repository_root(dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}
