//! The serde mirror of `.claude/config.yaml`: exactly what the file says, nothing resolved.
//!
//! Every struct refuses unknown keys so that a misspelling is reported rather than ignored.
//! Only [`super::load`] looks at these types; everything downstream sees [`super::Workflow`].

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub orchestrator: RawSettings,
    #[serde(default)]
    pub consensus: RawConsensus,
    pub agents: BTreeMap<String, RawAgent>,
    pub phases: Vec<RawPhase>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub state_file: Option<String>,
    pub max_parallel_agents: Option<u32>,
    pub timeout_minutes: Option<f64>,
    pub kill_grace_seconds: Option<f64>,
    #[serde(default)]
    pub retry: RawRetry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub retries: Option<u32>,
    pub base_delay: Option<f64>,
    pub backoff: Option<f64>,
    pub jitter: Option<f64>,
    pub retryable_exit_codes: Option<Vec<i32>>,
    pub retryable_messages: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsensus {
    pub approve_label: Option<String>,
    pub reject_label: Option<String>,
    pub checklist: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub description: Option<String>,
    pub entrypoints: Option<BTreeMap<String, String>>,
    /// Prompt template, relative to the workspace; default `.claude/prompts/<agent>.md`.
    pub prompt: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
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
}
