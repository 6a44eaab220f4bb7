//! The workflow configuration: `raw` mirrors the YAML, `load` validates it into the `model`.

mod check_llm;
mod load;
mod model;
#[cfg(test)]
mod mutation_tests;
pub mod policy;
mod raw;
pub mod span;

pub use load::{ConfigError, DEFAULT_CONFIG, DEFAULT_STATE_FILE, is_safe_name, load, parse, serde_diagnostic};
pub use model::{
    Agent, AgentKind, ArtifactPattern, Consensus, DEFAULT_CHECKLIST, LlmSpec, Phase, Prices, Provider, RetryPolicy,
    Settings, WaitMode, Workflow,
};
pub use span::SpanIndex;
