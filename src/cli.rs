//! Command-line arguments. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod examples;
mod phase;

pub(crate) use phase::{PhaseArg, PhaseChoice};

#[derive(Debug, Parser)]
#[command(name = "orchestrator", version, about = "Run phase-gated workflows of agents, with approval gates between phases.", after_help = crate::exit_code::TABLE)]
pub(crate) struct Cli {
    /// Run as if started in DIR (the workspace)
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// The workflow config, relative to the workspace
    #[arg(long, global = true, value_name = "PATH", default_value = crate::config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Never use colours (NO_COLOR is respected too)
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write the default workflow (config, prompts, intake) into the workspace
    #[command(after_help = examples::INIT)]
    Init(InitArgs),
    /// Create a project from the default template in DIR and run it to its first approval gate
    #[command(after_help = examples::QUICKSTART)]
    Quickstart(QuickstartArgs),
    /// Check the config, intake and prompt templates without running anything
    #[command(after_help = examples::VALIDATE)]
    Validate,
    /// Start, step through, inspect and decide a run
    #[command(subcommand, after_help = examples::RUN)]
    Run(RunCommand),
    /// GitHub Actions: write a workflow from the config
    #[command(subcommand, after_help = examples::CI)]
    Ci(CiCommand),
    /// Print the completion script for a shell (or write it into a folder)
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        /// Write `orchestrator.bash`, `_orchestrator`, … into DIR instead of printing
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the man page (or write the pages of every command into a folder)
    #[command(after_help = examples::MAN)]
    Man {
        /// Write orchestrator.1 and a page per subcommand into DIR instead of printing
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CiCommand {
    /// Write a GitHub Actions workflow that runs the config's phases: as steps of one job, or
    /// (--jobs) as jobs linked by `needs:` with a parallel phase's agents as a matrix
    #[command(after_help = examples::CI_GENERATE)]
    Generate {
        /// Phases as jobs, a parallel phase's agents as a matrix, the run state carried between
        /// jobs as workflow artifacts
        #[arg(long)]
        jobs: bool,
        /// Where to write it (default: .github/workflows/orchestrator.yml in the repository);
        /// `-` prints it
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Replace an existing file
        #[arg(long)]
        force: bool,
        /// The orchestrator action to use, `owner/repo@ref` (default: `./` in orchestrator's own
        /// repository; required elsewhere)
        #[arg(long, value_name = "REF")]
        uses: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Project name written into the intake (default: the workspace folder's name)
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct QuickstartArgs {
    /// Folder to create the project in (created if missing)
    #[arg(required_unless_present = "kind")]
    pub dir: Option<PathBuf>,
    /// Project name (default: the folder's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Start over even if the folder's run has not finished (it is replaced)
    #[arg(long)]
    pub force: bool,
    /// The starter: demo (default), llm, llm-openai, claude-code; `--type` alone lists them
    #[arg(long = "type", value_name = "TYPE", num_args = 0..=1, default_missing_value = "")]
    pub kind: Option<String>,
    /// Also write the GitHub Actions workflow (as `ci generate` does)
    #[arg(long)]
    pub ci: bool,
    /// With --ci: the orchestrator action to use, `owner/repo@ref`
    #[arg(long, value_name = "REF", requires = "ci")]
    pub uses: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunCommand {
    /// Start a new run and run it until it completes, fails or reaches an approval gate
    #[command(after_help = examples::START, mut_arg("phase_name", |a| a.help("Run only this phase (one that needs no other), then stop: for workflows that give each phase its own step")))]
    Start {
        /// The intake describing what the run is about
        #[arg(long, value_name = "PATH")]
        intake: Option<PathBuf>,
        /// Replace a run that has not finished
        #[arg(long)]
        force: bool,
        /// If a run has not finished (here, or carried by the pull request's gate comment on a
        /// fresh runner), continue it instead of starting another: a repeated workflow step
        /// (a re-run job, a duplicate event) starts no second run
        #[arg(long, conflicts_with = "force")]
        or_resume: bool,
        #[command(flatten)]
        phase: PhaseChoice,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Run the phases that are ready now, then stop
    #[command(after_help = examples::NEXT)]
    Next {
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Run one phase (its `needs` must be done); a phase that has already run is not run again
    #[command(after_help = examples::PHASE, mut_arg("phase_name", |a| a.help("The phase to run")))]
    Phase {
        #[command(flatten)]
        name: PhaseArg,
        /// Run only this agent of the phase and leave the phase open (for a matrix of jobs);
        /// a later `run phase NAME`, after `run merge`, finishes the phase
        #[arg(long, value_name = "AGENT")]
        agent: Option<String>,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Continue an interrupted or gated run until it completes, fails or reaches a gate
    #[command(after_help = examples::RESUME)]
    Resume {
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Show the run's phases, agents and gates
    #[command(after_help = examples::STATUS)]
    Status {
        /// Print the run state as JSON
        #[arg(long)]
        json: bool,
        /// Draw the run's timeline: a row per phase, agent and gate, bars scaled to the terminal
        #[arg(long, conflicts_with = "json")]
        timeline: bool,
    },
    /// Write the run's report: Markdown with a Mermaid timeline (as in the job summary), or with
    /// --html one self-contained HTML file (timeline, agents with their transcripts' tails, gates,
    /// metrics) that needs no network
    #[command(after_help = examples::REPORT)]
    Report {
        /// Write the HTML report (default: reports/run_<run_id>.html)
        #[arg(long)]
        html: bool,
        /// Where to write it; `-` prints it (default for Markdown)
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Show the run's metrics: a summary, or the JSON / Prometheus files' contents
    #[command(after_help = examples::METRICS)]
    Metrics {
        /// Print the metrics JSON (as in .claude/metrics/run_<run_id>.json)
        #[arg(long, conflicts_with = "prom")]
        json: bool,
        /// Print Prometheus text (as in .claude/metrics/metrics.prom)
        #[arg(long)]
        prom: bool,
    },
    /// Approve the phase waiting at its gate, then continue the run
    #[command(after_help = examples::APPROVE, mut_arg("phase_name", |a| a.help("The phase to approve (default: the one awaiting approval)")))]
    Approve {
        #[command(flatten)]
        phase: PhaseChoice,
        /// Who approves (default: $USER)
        #[arg(long)]
        by: Option<String>,
        /// Record the approval only; do not continue the run
        #[arg(long)]
        no_continue: bool,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Reject the phase waiting at its gate
    #[command(after_help = examples::REJECT, mut_arg("phase_name", |a| a.help("The phase to reject (default: the one awaiting approval)")))]
    Reject {
        /// Why the phase is rejected
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        phase: PhaseChoice,
        /// Who rejects (default: $USER)
        #[arg(long)]
        by: Option<String>,
    },
    /// Run a failed or rejected phase again, then continue the run
    #[command(after_help = examples::RETRY, mut_arg("phase_name", |a| a.help("The phase to run again")))]
    Retry {
        #[command(flatten)]
        phase: PhaseArg,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Fold in the run state and files of other jobs of this run (folders holding their
    /// downloaded records), for workflows that spread a run over jobs
    #[command(after_help = examples::MERGE)]
    Merge {
        /// Folders holding another job's workspace records (its `.claude/` state and files)
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Bring the run into this workspace and run nothing: the run here, or on a fresh runner the
    /// one the pull request's gate comment carries; with --or-start, a new run when there is no
    /// unfinished one (the first job of `ci generate --jobs`, which every other job merges)
    #[command(after_help = examples::PREPARE)]
    Prepare {
        /// Start a new run when there is no unfinished one, as `run start --or-resume` would,
        /// without running a phase
        #[arg(long)]
        or_start: bool,
        /// With --or-start: the intake describing what a new run is about
        #[arg(long, value_name = "PATH", requires = "or_start")]
        intake: Option<PathBuf>,
    },
    /// Write ROLLBACK_<phase>.md: what the phase changed and how to undo it by hand
    #[command(after_help = examples::ROLLBACK, mut_arg("phase_name", |a| a.help("The phase to describe")))]
    Rollback {
        #[command(flatten)]
        phase: PhaseArg,
    },
    /// Show what a phase changed, file by file, as the gate's request shows it (in colour on
    /// a terminal)
    #[command(after_help = examples::DIFF, mut_arg("phase_name", |a| a.help("The phase (default: the one awaiting approval, else the last that ran)")))]
    Diff {
        #[command(flatten)]
        phase: PhaseChoice,
    },
}

/// Options for commands that run agents.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ExecArgs {
    /// Show the plan, commands and rendered prompts; run and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Run the agents of every phase concurrently, even phases without `parallel: true`
    #[arg(long)]
    pub parallel: bool,
    /// At most N agents at once (overrides `max_parallel_agents`)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_workers: Option<u32>,
    /// Time limit per agent attempt, in seconds (overrides `timeout_minutes`)
    #[arg(long, value_name = "SEC", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// How to wait at a GitHub gate: end the step (`event`) or keep checking (`poll`); overrides
    /// `consensus.wait`
    #[arg(long, value_name = "MODE")]
    pub wait: Option<crate::config::WaitMode>,
    /// Run only this agent of a single phase (set by `run phase --agent`).
    #[arg(skip)]
    pub only_agent: Option<String>,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 31_536_000.0 => Ok(v),
        _ => Err(format!("expected a positive number of seconds, got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
