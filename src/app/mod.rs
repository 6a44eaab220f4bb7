//! The commands: each loads what it needs, calls the engine or reads the state, and returns an
//! exit code. Errors are mapped to exit codes in one place, [`AppError::exit_code`].

mod actions;
mod dry_run;
mod merge;
mod rollback;
mod run;
mod status;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, InitArgs, QuickstartArgs};
use crate::config::{ConfigError, Workflow};
use crate::diagnostic::Diagnostic;
use crate::engine::EngineError;
use crate::exit_code;
use crate::state::{RunState, StateError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
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
    /// Something the run needs from its environment is missing (an API key, a template); the
    /// message is complete, `error:` included.
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

impl From<Diagnostic> for AppError {
    fn from(d: Diagnostic) -> Self {
        AppError::Input(vec![d])
    }
}

impl AppError {
    pub fn exit_code(&self) -> i32 {
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
            AppError::Io(_) => exit_code::ERROR,
        }
    }

    /// The message for stderr: diagnostics are already formatted; others get `error: ` and the
    /// cause chain.
    pub fn render(&self) -> String {
        match self {
            AppError::Config(_) | AppError::Input(_) | AppError::Setup(_) => self.to_string(),
            AppError::Io(e) => {
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
pub struct Ctx {
    /// The workspace root.
    pub root: PathBuf,
    /// The config path as given (relative to the root unless absolute).
    pub config: PathBuf,
}

impl Ctx {
    pub fn load(&self) -> Result<Workflow, AppError> {
        Ok(crate::config::load(&self.root, &self.config)?)
    }
}

pub async fn execute(cli: Cli) -> Result<i32, AppError> {
    let root = match &cli.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir().map_err(|e| anyhow::anyhow!("cannot read the current folder: {e}"))?,
    };
    if cli.directory.is_some() && !root.is_dir() && !matches!(cli.command, Command::Quickstart(_)) {
        return Err(AppError::Usage(format!("`{}` is not a folder (given with -C)", root.display())));
    }
    crate::hints::set(cli.directory.as_deref(), &cli.config);
    let ctx = Ctx { root, config: cli.config.clone() };
    let result = match cli.command {
        Command::Init(args) => init(&ctx, args),
        Command::Quickstart(args) => quickstart(&ctx, args, cli.directory.clone()).await,
        Command::Validate => validate(&ctx),
        Command::Run(cmd) => run::execute(&ctx, cmd).await,
        Command::Ci(crate::cli::CiCommand::Generate { jobs, output, force, uses }) => {
            ci_generate(&ctx, jobs, output, force, uses)
        }
    };
    if let (Err(e), Some(runner)) = (&result, actions::Runner::detect()) {
        // The config may not have loaded: the standard secret variables, and `secrets:` if it did.
        let redactor =
            ctx.load().map(|wf| run::redactor(&wf)).unwrap_or_else(|_| crate::executor::Redactor::from_env());
        runner.failed(&ctx.root, e, e.exit_code(), &redactor);
    }
    result
}

fn folder_name(root: &Path) -> String {
    root.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".to_owned())
}

fn write_template(root: &Path, name: &str) -> Result<(), AppError> {
    use crate::template::Written;
    let done = crate::template::write(root, name)
        .map_err(|e| anyhow::anyhow!("cannot write the template into `{}`: {e}", root.display()))?;
    for w in done {
        match w {
            Written::Created(p) => outln!("created   {p}"),
            Written::Replaced { path, backup } => outln!("replaced  {path} (previous config saved as {backup})"),
            Written::Unchanged(p) => outln!("unchanged {p}"),
            Written::Kept(p) => outln!("kept      {p} (exists; not overwritten)"),
        }
    }
    Ok(())
}

fn init(ctx: &Ctx, args: InitArgs) -> Result<i32, AppError> {
    let name = args.name.unwrap_or_else(|| folder_name(&ctx.root));
    write_template(&ctx.root, &name)?;
    outln!("\nnext: orchestrator validate, then orchestrator run start");
    Ok(exit_code::SUCCESS)
}

async fn quickstart(ctx: &Ctx, args: QuickstartArgs, cli_directory: Option<PathBuf>) -> Result<i32, AppError> {
    let dir = if args.dir.is_absolute() { args.dir.clone() } else { ctx.root.join(&args.dir) };
    // A run of this folder that has not finished is not thrown away unasked.
    let state_path = dir.join(crate::config::DEFAULT_STATE_FILE);
    if !args.force
        && let Ok(previous) = crate::state::read(&state_path)
        && matches!(
            previous.status(),
            crate::state::RunStatus::Running
                | crate::state::RunStatus::Interrupted
                | crate::state::RunStatus::AwaitingApproval
        )
    {
        let shown = match &cli_directory {
            Some(outer) if !args.dir.is_absolute() => outer.join(&args.dir),
            _ => args.dir.clone(),
        };
        crate::hints::set(Some(&shown), Path::new(crate::config::DEFAULT_CONFIG));
        return Err(AppError::Usage(format!(
            "the demo in `{}` has a run that has not finished (run {}, {})\nhelp: continue it with `orchestrator run resume` (or `orchestrator run approve` at its gate); to start over, run the quickstart again with `--force`",
            shown.display(),
            previous.run_id,
            previous.status().as_str()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", dir.display()))?;
    let name = args.name.unwrap_or_else(|| folder_name(&dir));
    write_template(&dir, &name)?;
    let sub = Ctx { root: dir, config: PathBuf::from(crate::config::DEFAULT_CONFIG) };
    // From here on, printed commands work on the demo, from where the user is.
    let shown = match &cli_directory {
        Some(_) if args.dir.is_absolute() => args.dir.clone(),
        Some(outer) => outer.join(&args.dir),
        None => args.dir.clone(),
    };
    crate::hints::set(Some(&shown), &sub.config);
    outln!();
    let code = run::start(&sub, None, true, None, Default::default()).await?;
    if code == exit_code::AWAITING_APPROVAL {
        outln!(
            "\nThe demo stopped at its first approval gate. Review {}/.claude/consensus/planning/REQUEST.md, then:",
            shown.display()
        );
        outln!("  orchestrator run approve                 # continue to the end");
        outln!("  orchestrator run reject --reason \"...\"   # send it back");
        outln!("  orchestrator run status                  # where the run stands");
    }
    Ok(code)
}

/// The repository holding `dir`: the nearest folder above it (or itself) with a `.git`.
pub(super) fn repository_root(dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}

fn ci_generate(
    ctx: &Ctx,
    jobs: bool,
    output: Option<PathBuf>,
    force: bool,
    uses: Option<String>,
) -> Result<i32, AppError> {
    let wf = ctx.load()?;
    let repo = repository_root(&ctx.root);
    let uses = match uses {
        Some(u) if u.trim().is_empty() || u.contains(char::is_whitespace) => {
            return Err(AppError::Usage(format!(
                "`--uses` must be an action reference like owner/orchestrator@v1, got `{u}`"
            )));
        }
        Some(u) => u,
        None => {
            let own = repo.as_ref().is_some_and(|r| {
                std::fs::read_to_string(r.join("action.yml"))
                    .is_ok_and(|t| t.lines().any(|l| l.trim() == "name: orchestrator"))
            });
            if !own {
                return Err(AppError::Usage(
                    "which orchestrator action should the workflow use?\nhelp: pass `--uses OWNER/orchestrator@REF` (the repository and release of the orchestrator action)".into(),
                ));
            }
            "./".to_owned()
        }
    };
    let working_directory = match &repo {
        Some(r) => {
            let root = ctx.root.canonicalize().unwrap_or_else(|_| ctx.root.clone());
            match root.strip_prefix(r) {
                Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
                Ok(rel) => crate::workspace::slash_path(rel),
                Err(_) => ".".to_owned(),
            }
        }
        None => ".".to_owned(),
    };
    let opts = crate::ci::Options { uses, working_directory, config: ctx.config.display().to_string(), jobs };
    let yaml = crate::ci::generate(&wf, &opts);
    if output.as_deref() == Some(Path::new("-")) {
        out!("{yaml}");
        return Ok(exit_code::SUCCESS);
    }
    let path = match output {
        Some(p) if p.is_absolute() => p,
        Some(p) => ctx.root.join(p),
        None => repo.unwrap_or_else(|| ctx.root.clone()).join(".github/workflows/orchestrator.yml"),
    };
    if path.exists() && !force {
        return Err(AppError::Usage(format!(
            "`{}` exists; not replacing it\nhelp: pass --force to replace it, or --output PATH",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", parent.display()))?;
    }
    crate::state::replace_file(&path, yaml.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?;
    outln!(
        "wrote {} ({} layout, {} phase{})",
        path.display(),
        if jobs { "jobs" } else { "steps" },
        wf.phases.len(),
        if wf.phases.len() == 1 { "" } else { "s" }
    );
    Ok(exit_code::SUCCESS)
}

fn validate(ctx: &Ctx) -> Result<i32, AppError> {
    let wf = ctx.load()?;
    let intake = crate::intake::load(&ctx.root, Path::new(crate::intake::DEFAULT_INTAKE), false)?;
    let state = run::preview_state(&wf, intake, None);
    run::preflight(&wf, &state)?;
    outln!(
        "{}: ok ({} phase{}, {} agent{})",
        ctx.config.display(),
        wf.phases.len(),
        if wf.phases.len() == 1 { "" } else { "s" },
        wf.agents.len(),
        if wf.agents.len() == 1 { "" } else { "s" }
    );
    Ok(exit_code::SUCCESS)
}

/// The phase awaiting approval: the one named, or the only one.
fn awaiting_phase(state: &RunState, named: Option<&str>) -> Result<String, AppError> {
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
