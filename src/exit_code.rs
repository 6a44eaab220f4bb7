//! Exit codes: the one table the README and `--help` document.

/// The run (or the command) finished as asked.
pub(crate) const SUCCESS: i32 = 0;
/// An agent failed or a phase's artifacts were missing: an outcome, not an orchestrator error.
pub(crate) const FAILED: i32 = 1;
/// Bad command-line arguments.
pub(crate) const USAGE: i32 = 2;
/// Bad input: config, intake, prompt template or state file. Nothing was run or written.
pub(crate) const INVALID_INPUT: i32 = 3;
/// The run stopped at an approval gate and waits for a decision.
pub(crate) const AWAITING_APPROVAL: i32 = 4;
/// A reviewer rejected a phase.
pub(crate) const REJECTED: i32 = 5;
/// Another orchestrator process holds the run's lock.
pub(crate) const BUSY: i32 = 6;
/// The orchestrator itself could not do its work (I/O error, internal error).
pub(crate) const ERROR: i32 = 70;
/// Stopped by Ctrl-C or SIGTERM; `run resume` continues.
pub(crate) const INTERRUPTED: i32 = 130;

/// The table, for `--help`.
pub(crate) const TABLE: &str = "\
Exit codes:
  0    success
  1    an agent failed or required artifacts are missing
  2    bad command-line arguments
  3    invalid config, intake, prompt template or state file (nothing was run)
  4    stopped at an approval gate: `run approve` (which continues the run) or `run reject`;
       on a pull request, a reviewer decides there and `run resume` continues
  5    a phase was rejected
  6    another orchestrator run holds the lock on this state
  70   internal or I/O error
  130  interrupted (Ctrl-C / SIGTERM); `run resume` continues";
