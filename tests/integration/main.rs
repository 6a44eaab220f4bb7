//! Integration tests: the real binary, real processes, real files.

mod harness;

mod artifacts;
mod config_errors;
mod dry_run;
mod gates;
mod parallel;
mod processes;
mod quickstart;
mod records;
mod resume;
mod retries;
