//! The run state: what has run, with every attempt, and where each phase's gate stands.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The state file format this build writes; it refuses to touch files with a higher version.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    pub version: u32,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Set while the run was stopped by a signal, cleared when it resumes.
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intake_path: Option<String>,
    /// The intake as loaded at `run start`: the template context for the whole run.
    #[serde(default)]
    pub intake: serde_json::Value,
    /// The last journal entry folded into this snapshot (see `store`).
    #[serde(default)]
    pub journal_seq: u64,
    /// The latest cleanliness score of the workspace (see `report::hygiene`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hygiene: Option<HygieneSummary>,
    /// Phases by name; the config gives their order.
    pub phases: BTreeMap<String, PhaseState>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    AwaitingApproval,
    Approved,
    Rejected,
}

impl PhaseStatus {
    /// Whether phases that need this one may start.
    pub fn is_done(self) -> bool {
        matches!(self, PhaseStatus::Succeeded | PhaseStatus::Approved)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Pending => "pending",
            PhaseStatus::Running => "running",
            PhaseStatus::Succeeded => "succeeded",
            PhaseStatus::Failed => "failed",
            PhaseStatus::AwaitingApproval => "awaiting approval",
            PhaseStatus::Approved => "approved",
            PhaseStatus::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseState {
    pub status: PhaseStatus,
    /// How many times the phase has been started (a `run retry` starts it again).
    #[serde(default)]
    pub runs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub agents: BTreeMap<String, AgentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateState>,
    /// Why the phase failed, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PhaseState {
    pub fn pending() -> Self {
        PhaseState {
            status: PhaseStatus::Pending,
            runs: 0,
            started_at: None,
            finished_at: None,
            duration_s: None,
            agents: BTreeMap::new(),
            validation: None,
            changes: None,
            gate: None,
            error: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Pending => "pending",
            AgentStatus::Running => "running",
            AgentStatus::Succeeded => "succeeded",
            AgentStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentState {
    pub status: AgentStatus,
    pub command: String,
    /// Transcript path relative to the workspace.
    pub transcript: String,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Artifacts the agent reported, relative to the workspace.
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// Reported paths that were refused, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_artifacts: Vec<RefusedArtifact>,
    /// The process group of the running attempt, so a resume can clean up after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// What the agent changed in the workspace, when it ran in a job of its own
    /// (`run phase --agent`); the phase's changes include it once the phase ends elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeSet>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefusedArtifact {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub number: u32,
    pub started_at: DateTime<Utc>,
    pub duration_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
    /// Set when the agent could not be started or its output could not be recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why another attempt followed, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_s: Option<f64>,
    /// Children still held the output open after the agent exited; their group was killed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leaked_output: bool,
    /// Tokens and cost, for agents that report them (LLM agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HygieneSummary {
    pub score: f64,
    pub grade: String,
    /// The phase after which it was measured.
    pub phase: String,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && self.error.is_none()
    }

    /// A short description of the outcome: "exit code 2", "timed out after 3.0s", …
    pub fn outcome(&self) -> String {
        if self.timed_out {
            format!("timed out after {:.1}s", self.duration_s)
        } else if let Some(e) = &self.error {
            e.clone()
        } else if let Some(code) = self.exit_code {
            format!("exit code {code}")
        } else if let Some(sig) = self.signal {
            format!("killed by signal {sig}")
        } else {
            "unknown outcome".into()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Validation {
    pub passed: bool,
    pub patterns: Vec<PatternResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PatternResult {
    pub pattern: String,
    pub files: Vec<String>,
}

/// Files the phase added, modified or removed in the workspace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChangeSet {
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    /// Line counts before and after, for the changed files that are text and small enough to count.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lines: BTreeMap<String, LineCount>,
    /// Changed files that held a secret's value, redacted in place before anything was posted,
    /// committed or uploaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct LineCount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
}

impl ChangeSet {
    /// Add the changes of `other` to paths this set does not mention yet.
    pub fn absorb(&mut self, other: &ChangeSet) {
        let known: std::collections::BTreeSet<String> =
            self.added.iter().chain(&self.modified).chain(&self.removed).cloned().collect();
        for (mine, theirs) in [
            (&mut self.added, &other.added),
            (&mut self.modified, &other.modified),
            (&mut self.removed, &other.removed),
        ] {
            mine.extend(theirs.iter().filter(|p| !known.contains(*p)).cloned());
            mine.sort();
        }
        for (path, count) in &other.lines {
            if !known.contains(path) {
                self.lines.insert(path.clone(), *count);
            }
        }
    }

    /// "+12 lines", "120 → 135 lines", "−40 lines", or "" when unknown.
    pub fn describe_lines(&self, path: &str) -> String {
        let unit = |n: u64| if n == 1 { "line" } else { "lines" };
        match self.lines.get(path) {
            Some(LineCount { before: None, after: Some(a) }) => format!("+{a} {}", unit(*a)),
            Some(LineCount { before: Some(b), after: None }) => format!("−{b} {}", unit(*b)),
            Some(LineCount { before: Some(b), after: Some(a) }) => format!("{b} → {a} {}", unit(*a)),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateState {
    pub requested_at: DateTime<Utc>,
    /// Where the request lives: a file path, or a comment URL.
    pub request: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    pub approved: bool,
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The head commit the decision was made on (GitHub gates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The run's status, derived from its phases.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Interrupted,
    AwaitingApproval,
    Failed,
    Rejected,
    Completed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
            RunStatus::AwaitingApproval => "awaiting approval",
            RunStatus::Failed => "failed",
            RunStatus::Rejected => "rejected",
            RunStatus::Completed => "completed",
        }
    }
}

impl RunState {
    /// A run with `phases`, all else empty (for tests).
    #[cfg(test)]
    pub fn for_test(run_id: &str, phases: BTreeMap<String, PhaseState>) -> RunState {
        let now = chrono::Utc::now();
        RunState {
            version: STATE_VERSION,
            run_id: run_id.into(),
            started_at: now,
            updated_at: now,
            finished_at: None,
            interrupted: false,
            intake_path: None,
            intake: serde_json::Value::Null,
            journal_seq: 0,
            hygiene: None,
            phases,
        }
    }

    pub fn status(&self) -> RunStatus {
        let statuses = || self.phases.values().map(|p| p.status);
        if statuses().any(|s| s == PhaseStatus::Rejected) {
            RunStatus::Rejected
        } else if statuses().any(|s| s == PhaseStatus::Failed) {
            RunStatus::Failed
        } else if self.interrupted {
            RunStatus::Interrupted
        } else if statuses().any(|s| s == PhaseStatus::AwaitingApproval) {
            RunStatus::AwaitingApproval
        } else if statuses().all(PhaseStatus::is_done) {
            RunStatus::Completed
        } else {
            RunStatus::Running
        }
    }
}
