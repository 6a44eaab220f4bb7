//! The serde mirror of `.claude/config.yaml`: exactly what the file says, nothing resolved.
//!
//! Every struct refuses unknown keys so that a misspelling is reported rather than ignored.
//! Only [`super::load`] looks at these types; everything downstream sees [`super::Workflow`].

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub orchestrator: RawSettings,
    #[serde(default)]
    pub consensus: RawConsensus,
    pub agents: BTreeMap<String, RawAgent>,
    pub phases: Vec<RawPhase>,
    /// Environment variables whose values are redacted (and masked on a runner) beside the
    /// standard token variables.
    pub secrets: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub state_file: Option<String>,
    pub max_parallel_agents: Option<u32>,
    pub timeout_minutes: Option<f64>,
    pub kill_grace_seconds: Option<f64>,
    #[serde(default)]
    pub retry: RawRetry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub retries: Option<u32>,
    pub base_delay: Option<f64>,
    pub backoff: Option<f64>,
    pub jitter: Option<f64>,
    pub retryable_exit_codes: Option<Vec<i32>>,
    pub retryable_messages: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsensus {
    pub approve_label: Option<String>,
    pub reject_label: Option<String>,
    pub checklist: Option<Vec<String>>,
    /// GitHub users whose labels count even without write access.
    pub approvers: Option<Vec<String>>,
    pub min_approvals: Option<u32>,
    /// Every checklist box must be ticked before an approval counts.
    pub require_checklist: Option<bool>,
    /// Whether the pull request's author may approve it.
    pub allow_author: Option<bool>,
    /// Set a commit status `orchestrator/<phase>` on the head commit.
    pub commit_status: Option<bool>,
    /// Commit the run's outputs to the pull request's branch before a gate opens.
    pub commit_outputs: Option<bool>,
    /// Run agents for pull requests from forks in privileged events (`pull_request_target`).
    pub allow_forks: Option<bool>,
    /// `event` (end the step, resume on a later event) or `poll`.
    pub wait: Option<String>,
    pub poll_interval_seconds: Option<f64>,
    pub poll_timeout_minutes: Option<f64>,
    /// Which ways of deciding count: `labels`, `comments`, `reviews` (default: all three).
    pub decide_by: Option<Vec<String>>,
    /// What starts a comment command (`/approve`); default `/`.
    pub command_prefix: Option<String>,
    /// Run a gated phase again when a push changes its outputs while its gate waits.
    pub rerun_on_push: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub description: Option<String>,
    pub entrypoints: Option<BTreeMap<String, String>>,
    /// Prompt template, relative to the workspace; default `.claude/prompts/<agent>.md`.
    pub prompt: Option<String>,
    /// A language-model agent (instead of `entrypoints`).
    pub llm: Option<RawLlm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLlm {
    pub provider: String,
    pub model: String,
    pub base_url: Option<String>,
    /// The environment variable holding the API key; `""` for servers that need none.
    pub api_key_env: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub system: Option<String>,
    pub max_turns: Option<u32>,
    /// Offer the model the `run_command` tool.
    #[serde(default)]
    pub allow_commands: bool,
    pub prices: Option<RawPrices>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrices {
    /// US dollars per million input tokens.
    pub input_per_mtok: f64,
    /// US dollars per million output tokens.
    pub output_per_mtok: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhase {
    pub name: String,
    pub description: Option<String>,
    pub agents: Vec<String>,
    #[serde(default)]
    pub parallel: bool,
    pub needs: Option<Vec<String>>,
    #[serde(default)]
    pub requires_consensus: bool,
    #[serde(default)]
    pub artifacts: Vec<String>,
    pub timeout_minutes: Option<f64>,
    /// This phase's own approve label (default: `consensus.approve_label`).
    pub approve_label: Option<String>,
    pub reject_label: Option<String>,
}
