//! The workflow configuration: `raw` mirrors the YAML, `load` validates it into the `model`.

mod check_llm;
mod load;
mod model;
#[cfg(test)]
mod mutation_tests;
pub(crate) mod policy;
mod raw;
pub(crate) mod span;

pub(crate) use load::{ConfigError, DEFAULT_CONFIG, DEFAULT_STATE_FILE, load, parse, serde_diagnostic};
pub(crate) use model::{
    Agent, AgentKind, ArtifactPattern, Consensus, DEFAULT_CHECKLIST, LlmSpec, Phase, Provider, RetryPolicy, WaitMode,
    Workflow,
};
