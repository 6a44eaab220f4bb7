//! The validated workflow: names resolved, numbers checked, the phase graph known to be acyclic.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use globset::GlobMatcher;

/// The seed's eight reviewer checklist items, used when the config gives none.
pub(crate) const DEFAULT_CHECKLIST: [&str; 8] = [
    "All agents completed successfully",
    "Required artifacts are present and valid",
    "No security vulnerabilities introduced",
    "Performance is acceptable (check agent runtimes)",
    "Documentation has been updated",
    "Code follows project standards",
    "Tests are passing (if applicable)",
    "No sensitive data exposed",
];

#[derive(Debug)]
pub(crate) struct Workflow {
    /// The workspace: agents run here and artifact paths are confined to it.
    pub root: PathBuf,
    /// The config file as the user named it (for messages).
    pub config_path: PathBuf,
    pub settings: Settings,
    pub consensus: Consensus,
    pub agents: BTreeMap<String, Agent>,
    /// Phases in the order the config declares them.
    pub phases: Vec<Phase>,
    /// In a pull request: how this config's gate policy differs from the base branch's, whose
    /// policy applies instead (see `policy`). Empty when they agree, or outside a pull request.
    pub policy_changes: Vec<String>,
    /// Environment variables (valid names) whose values are secrets, beside the standard ones.
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Relative to the workspace root.
    pub state_file: PathBuf,
    pub max_parallel_agents: usize,
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL when an agent is stopped.
    pub kill_grace: Duration,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    pub retries: u32,
    pub base_delay: f64,
    pub backoff: f64,
    pub jitter: f64,
    pub retryable_exit_codes: Vec<i32>,
    /// Matched case-insensitively against each output line; stored lowercased.
    pub retryable_messages: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 2,
            base_delay: 0.7,
            backoff: 2.0,
            jitter: 0.25,
            retryable_exit_codes: vec![75, 101, 111, 125],
            retryable_messages: vec!["rate limit".into(), "transient network".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Consensus {
    pub approve_label: String,
    pub reject_label: String,
    pub checklist: Vec<String>,
    pub approvers: Vec<String>,
    pub min_approvals: u32,
    pub require_checklist: bool,
    pub allow_author: bool,
    pub commit_status: bool,
    pub commit_outputs: bool,
    /// Whether agents may run for a fork's pull request in an event that carries the base
    /// repository's token and secrets.
    pub allow_forks: bool,
    pub wait: WaitMode,
    pub poll_interval: Duration,
    pub poll_timeout: Duration,
    /// The ways of deciding that count.
    pub decide_by: Vec<crate::gate::tally::Channel>,
    /// What starts a comment command (`/approve`).
    pub command_prefix: String,
    /// Run a gated phase again when a push changes its outputs while its gate waits.
    pub rerun_on_push: bool,
}

/// How a run waits at a GitHub gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum WaitMode {
    /// End the step (exit code 4); a later workflow run, started by the label, resumes.
    Event,
    /// Keep the step alive, checking at an interval.
    Poll,
}

#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub name: String,
    pub description: Option<String>,
    pub kind: AgentKind,
    /// Prompt template path relative to the workspace, if the agent has one.
    pub prompt: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub(crate) enum AgentKind {
    /// A shell command per phase, with `default` as the fallback.
    Subprocess { entrypoints: BTreeMap<String, String> },
    /// A language model called over HTTP.
    Llm(LlmSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// The Anthropic Messages API.
    Anthropic,
    /// OpenAI chat completions, and every server that speaks them (vLLM, Ollama, llama.cpp, OpenRouter).
    OpenAi,
}

impl Provider {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct LlmSpec {
    pub provider: Provider,
    pub model: String,
    /// Without a trailing slash.
    pub base_url: String,
    /// `None` when the server needs no key.
    pub api_key_env: Option<String>,
    pub max_tokens: u32,
    pub temperature: Option<f64>,
    pub system: Option<String>,
    pub max_turns: u32,
    pub allow_commands: bool,
    pub prices: Option<Prices>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prices {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Agent {
    /// What this agent runs in `phase`: its shell command (validated to exist at load time), or
    /// `<provider> <model>` for an LLM agent.
    pub(crate) fn command_for(&self, phase: &str) -> String {
        match &self.kind {
            AgentKind::Subprocess { entrypoints } => {
                entrypoints.get(phase).or_else(|| entrypoints.get("default")).cloned().unwrap_or_default()
            }
            AgentKind::Llm(spec) => format!("{} {}", spec.provider.as_str(), spec.model),
        }
    }

    pub(crate) fn llm(&self) -> Option<&LlmSpec> {
        match &self.kind {
            AgentKind::Llm(spec) => Some(spec),
            AgentKind::Subprocess { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Phase {
    pub name: String,
    pub description: Option<String>,
    pub agents: Vec<String>,
    pub parallel: bool,
    pub needs: Vec<String>,
    pub requires_consensus: bool,
    pub artifacts: Vec<ArtifactPattern>,
    pub timeout: Option<Duration>,
    pub approve_label: Option<String>,
    pub reject_label: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ArtifactPattern {
    pub pattern: String,
    pub matcher: GlobMatcher,
}

impl Workflow {
    pub(crate) fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.root.join(&self.settings.state_file)
    }

    /// The approve and reject labels of `phase`.
    pub(crate) fn labels(&self, phase: &str) -> (String, String) {
        let p = self.phase(phase);
        (
            p.and_then(|p| p.approve_label.clone()).unwrap_or_else(|| self.consensus.approve_label.clone()),
            p.and_then(|p| p.reject_label.clone()).unwrap_or_else(|| self.consensus.reject_label.clone()),
        )
    }

    /// The attempt timeout for an agent in `phase`.
    pub(crate) fn timeout_for(&self, phase: &Phase) -> Duration {
        phase.timeout.unwrap_or(self.settings.timeout)
    }
}
