//! orchestrator: phase-gated workflows of agents, with approval gates between phases.
//!
//! The binary is a thin wrapper around [`run`]. See ARCHITECTURE.md for the module map.

mod app;
pub mod ci;
pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod engine;
pub mod executor;
pub mod exit_code;
pub mod gate;
pub mod github;
pub mod intake;
mod markup;
mod output;
pub mod prompt;
pub mod report;
pub mod runner_log;
pub mod state;
pub mod template;
mod text_file;
pub mod workspace;

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
            eprintln!("error: cannot start the async runtime: {e}");
            return exit_code::ERROR;
        }
    };
    match runtime.block_on(app::execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Errors may quote a file name, a server or a state file an agent could edit.
            let redactor = executor::Redactor::from_env();
            eprintln!("{}", runner_log::neutralize(&redactor.redact_text(&e.render())));
            e.exit_code()
        }
    }
}
