//! Integration tests: the real binary, real processes, real files.

mod fake_api;
mod fake_github;
mod harness;
mod runner_sim;

mod act_jobs;
mod action_act;
mod action_install;
mod action_run;
mod actions_runner;
mod approvals;
mod artifacts;
mod attack_review;
mod attack_review2;
mod ci_generate;
mod ci_jobs;
mod config_errors;
mod dry_run;
mod gate_attacks;
mod gates;
mod github_economy;
mod github_gate;
mod llm;
mod parallel;
mod processes;
mod quickstart;
mod records;
mod redaction;
mod resume;
mod retries;
mod robustness;
mod snapshots;
mod tampered_state;
mod timeline;
mod workflow_commands;
mod workflows;
