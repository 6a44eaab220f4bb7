//! orchestrator: phase-gated workflows of agents, with approval gates between phases.
//!
//! The binary is a thin wrapper around [`run`]. See ARCHITECTURE.md for the module map.

// Terminal output that never panics: a closed pipe (`| head -1`) or a closed stderr ends the
// output quietly, not the command, and never in the middle of writing a run's state.
// Commands named in what is printed get this invocation's `-C`/`--config` (see `hints`).
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout());
    }};
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "{}", $crate::hints::localize(&format!($($t)*)));
    }};
}
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), "{}", $crate::hints::localize(&format!($($t)*)));
    }};
}
macro_rules! errln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr());
    }};
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{}", $crate::hints::localize(&format!($($t)*)));
    }};
}

mod action_pins;
mod actions;
mod app;
pub(crate) mod ci;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod diagnostic;
pub(crate) mod engine;
pub(crate) mod executor;
pub(crate) mod exit_code;
mod file_modes;
pub(crate) mod gate;
mod git_cmd;
pub(crate) mod github;
mod hints;
pub(crate) mod intake;
#[cfg(test)]
mod invariants_tests;
mod markup;
#[cfg(test)]
mod mutation_tests;
mod output;
pub(crate) mod prompt;
pub(crate) mod report;
mod review;
pub(crate) mod runner_log;
mod shell;
mod starter;
pub(crate) mod state;
pub(crate) mod template;
mod text_file;
pub(crate) mod timeline;
mod transcript;
pub(crate) mod workspace;

use std::ffi::OsString;

use clap::Parser;

/// Parse `args` (including the program name), run the command, and return the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit_code::USAGE } else { exit_code::SUCCESS };
        }
    };
    output::configure_colors(cli.no_color);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let e = app::AppError::Other(anyhow::Error::new(e).context("cannot start the async runtime"));
            errln!("{}", e.render());
            return e.exit_code();
        }
    };
    match runtime.block_on(app::execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Errors may quote a file name, a server or a state file an agent could edit.
            let redactor = executor::Redactor::from_env();
            errln!("{}", runner_log::neutralize(&redactor.redact_text(&e.render())));
            e.exit_code()
        }
    }
}
