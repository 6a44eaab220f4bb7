//! Command-line arguments. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "orchestrator", version, about = "Run phase-gated workflows of agents, with approval gates between phases.", after_help = crate::exit_code::TABLE)]
pub struct Cli {
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
pub enum Command {
    /// Write the default workflow (config, prompts, intake) into the workspace
    Init(InitArgs),
    /// Create a project from the default template in DIR and run it to its first approval gate
    Quickstart(QuickstartArgs),
    /// Check the config, intake and prompt templates without running anything
    Validate,
    /// Start, step through, inspect and decide a run
    #[command(subcommand)]
    Run(RunCommand),
    /// GitHub Actions: write a workflow from the config
    #[command(subcommand)]
    Ci(CiCommand),
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Write a GitHub Actions workflow that runs the config's phases: as steps of one job, or
    /// (--jobs) as jobs linked by `needs:` with a parallel phase's agents as a matrix
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
pub struct InitArgs {
    /// Project name written into the intake (default: the workspace folder's name)
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Folder to create the project in (created if missing)
    pub dir: PathBuf,
    /// Project name (default: the folder's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Start over even if the folder's run has not finished (it is replaced)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Start a new run and run it until it completes, fails or reaches an approval gate
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
        /// Run only this phase (one that needs no other), then stop: for workflows that give
        /// each phase its own step
        #[arg(long, value_name = "NAME")]
        phase: Option<String>,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Run the phases that are ready now, then stop
    Next {
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Run one phase (its `needs` must be done); a phase that has already run is not run again
    Phase {
        /// The phase to run
        name: String,
        /// Run only this agent of the phase and leave the phase open (for a matrix of jobs);
        /// a later `run phase NAME`, after `run merge`, finishes the phase
        #[arg(long, value_name = "AGENT")]
        agent: Option<String>,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Continue an interrupted or gated run until it completes, fails or reaches a gate
    Resume {
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Show the run's phases, agents and gates
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
    Report {
        /// Write the HTML report (default: reports/run_<run_id>.html)
        #[arg(long)]
        html: bool,
        /// Where to write it; `-` prints it (default for Markdown)
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Show the run's metrics: a summary, or the JSON / Prometheus files' contents
    Metrics {
        /// Print the metrics JSON (as in .claude/metrics/run_<run_id>.json)
        #[arg(long, conflicts_with = "prom")]
        json: bool,
        /// Print Prometheus text (as in .claude/metrics/metrics.prom)
        #[arg(long)]
        prom: bool,
    },
    /// Approve the phase waiting at its gate, then continue the run
    Approve {
        /// The phase to approve (default: the one awaiting approval)
        #[arg(long)]
        phase: Option<String>,
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
    Reject {
        /// Why the phase is rejected
        #[arg(long)]
        reason: String,
        /// The phase to reject (default: the one awaiting approval)
        #[arg(long)]
        phase: Option<String>,
        /// Who rejects (default: $USER)
        #[arg(long)]
        by: Option<String>,
    },
    /// Run a failed or rejected phase again, then continue the run
    Retry {
        /// The phase to run again
        #[arg(long)]
        phase: String,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Fold in the run state and files of other jobs of this run (folders holding their
    /// downloaded records), for workflows that spread a run over jobs
    Merge {
        /// Folders holding another job's workspace records (its `.claude/` state and files)
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Write ROLLBACK_<phase>.md: what the phase changed and how to undo it by hand
    Rollback {
        /// The phase to describe
        #[arg(long)]
        phase: String,
    },
}

/// Options for commands that run agents.
#[derive(Debug, Args, Clone, Default)]
pub struct ExecArgs {
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
