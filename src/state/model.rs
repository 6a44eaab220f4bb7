//! The run state: what has run, with every attempt, and where each phase's gate stands.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The state file format this build writes; it refuses to touch files with a higher version.
pub(crate) const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct RunState {
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
pub(crate) enum PhaseStatus {
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
    pub(crate) fn is_done(self) -> bool {
        matches!(self, PhaseStatus::Succeeded | PhaseStatus::Approved)
    }

    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) struct PhaseState {
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
    /// Earlier runs of the phase, oldest first (at most [`EARLIER_RUNS_KEPT`]): kept when it
    /// starts over, so the timeline and the report still show their attempts and gate waits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<EarlierRun>,
}

/// How many earlier runs of a phase the state keeps.
pub(crate) const EARLIER_RUNS_KEPT: usize = 5;

/// What an earlier run of a phase did: its attempts and its gate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct EarlierRun {
    /// Which run of the phase it was (the phase state's `runs` then).
    pub run: u32,
    pub status: PhaseStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Each agent's attempts.
    #[serde(default)]
    pub agents: BTreeMap<String, Vec<Attempt>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateState>,
}

impl PhaseState {
    /// How far the phase has got, to pick the further of two copies of one run (another job's
    /// upload, another gate comment's): its runs, then its status.
    pub(crate) fn progress(&self) -> (u32, u8) {
        let r = match self.status {
            PhaseStatus::Pending => 0,
            PhaseStatus::Running => 1,
            PhaseStatus::Failed => 2,
            PhaseStatus::AwaitingApproval => 3,
            PhaseStatus::Succeeded | PhaseStatus::Approved | PhaseStatus::Rejected => 4,
        };
        (self.runs, r)
    }

    pub(crate) fn pending() -> Self {
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
            earlier: Vec::new(),
        }
    }

    /// Keep what this run of the phase did (if it started or reached its gate) in `earlier`.
    pub(crate) fn archive(&mut self) {
        if self.started_at.is_none() && self.gate.is_none() {
            return;
        }
        self.earlier.push(EarlierRun {
            run: self.runs,
            status: self.status,
            started_at: self.started_at,
            finished_at: self.finished_at,
            agents: self.agents.iter().map(|(n, a)| (n.clone(), a.attempts.clone())).collect(),
            gate: self.gate.clone(),
        });
        if self.earlier.len() > EARLIER_RUNS_KEPT {
            self.earlier.remove(0);
        }
    }

    /// Pending again (a retry, a rerun, needs no longer met), keeping how often it ran and what
    /// its earlier runs did.
    pub(crate) fn start_over(&mut self) {
        self.archive();
        let (runs, earlier) = (self.runs, std::mem::take(&mut self.earlier));
        *self = PhaseState::pending();
        self.runs = runs;
        self.earlier = earlier;
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AgentStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl AgentStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Pending => "pending",
            AgentStatus::Running => "running",
            AgentStatus::Succeeded => "succeeded",
            AgentStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct AgentState {
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
    /// When the group's leader started, on which boot: a resume kills the group only if it is
    /// still the one recorded (see `executor::groups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid_leader: Option<GroupStamp>,
    /// When the running attempt started, while one runs (recorded with its process group): a
    /// timeline read after a crash shows the attempt that was running then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// What the agent changed in the workspace, when it ran in a job of its own
    /// (`run phase --agent`); the phase's changes include it once the phase ends elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeSet>,
}

/// What identifies a process beyond its id: when it started (Linux: clock ticks after boot;
/// macOS: seconds, from `ps`) and the boot it started in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct GroupStamp {
    pub started: u64,
    pub boot_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct RefusedArtifact {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Attempt {
    pub number: u32,
    pub started_at: DateTime<Utc>,
    pub duration_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
    /// The time limit the attempt ran under, when it timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
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
pub(crate) struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct HygieneSummary {
    pub score: f64,
    pub grade: String,
    /// The phase after which it was measured.
    pub phase: String,
}

impl Attempt {
    pub(crate) fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && self.error.is_none()
    }

    /// A short description of the outcome: "exit code 2", "timed out (limit 3s)", …
    pub(crate) fn outcome(&self) -> String {
        if self.timed_out {
            // The limit; the time it took to stop (grace included) is `duration_s`.
            match self.timeout_s {
                Some(limit) => format!("timed out (limit {})", seconds(limit)),
                None => "timed out".to_owned(),
            }
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
pub(crate) struct Validation {
    pub passed: bool,
    pub patterns: Vec<PatternResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct PatternResult {
    pub pattern: String,
    pub files: Vec<String>,
}

/// Files the phase added, modified or removed in the workspace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct ChangeSet {
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
pub(crate) struct LineCount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
}

impl ChangeSet {
    /// Add the changes of `other` to paths this set does not mention yet.
    pub(crate) fn absorb(&mut self, other: &ChangeSet) {
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
    pub(crate) fn describe_lines(&self, path: &str) -> String {
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
pub(crate) struct GateState {
    pub requested_at: DateTime<Utc>,
    /// Where the request lives: a file path, or a comment URL.
    pub request: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Decision {
    pub approved: bool,
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The head commit the decision was made on (GitHub gates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The newest pull-request comment when it was decided (GitHub gates): a `/retry` must
    /// come after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_comment: Option<u64>,
}

/// The run's status, derived from its phases.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunStatus {
    Running,
    Interrupted,
    AwaitingApproval,
    Failed,
    Rejected,
    Completed,
}

impl RunStatus {
    pub(crate) fn as_str(self) -> &'static str {
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
    pub(crate) fn for_test(run_id: &str, phases: BTreeMap<String, PhaseState>) -> RunState {
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

    pub(crate) fn status(&self) -> RunStatus {
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

/// What a name in a state may be: it becomes part of file names (transcripts, metrics, reports,
/// gate requests), so nothing that can climb out of a folder or hide in a terminal.
pub(crate) const NAME_RULE: &str = "a letter or digit, then letters, digits, `_`, `.` or `-`, at most 128 characters";

/// Whether `name` is a run id, phase or agent name a state may hold: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
/// Every name the config allows and every run id this build makes is one.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether `path` is relative and stays inside the folder it is relative to, as written: no
/// `..`, no root, no `.`, no empty parts, no NUL.
pub(crate) fn is_inside_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\0')
        && !path.starts_with('/')
        && path.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

/// A value for a message: quoted, escaped, and cut short.
fn shown(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        Some((at, _)) => format!("{:?}…", &value[..at]),
        None => format!("{value:?}"),
    }
}

/// A name or path in a state that cannot be used as one: which field, its value, and what is
/// allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unsafe(String);

impl From<String> for Unsafe {
    fn from(s: String) -> Self {
        Unsafe(s)
    }
}

pub(super) fn check_name(field: impl FnOnce() -> String, value: &str) -> Result<(), String> {
    if is_valid_name(value) {
        Ok(())
    } else {
        Err(format!("{} is {}, which cannot be part of a file name: expected {NAME_RULE}", field(), shown(value)))
    }
}

fn check_path(field: impl FnOnce() -> String, value: &str) -> Result<(), String> {
    if is_inside_path(value) {
        Ok(())
    } else {
        Err(format!(
            "{} is {}: expected a relative path inside the workspace (`/`-separated, no `..`, `.` or empty parts)",
            field(),
            shown(value)
        ))
    }
}

fn check_changes(at: &str, c: &ChangeSet) -> Result<(), String> {
    for (list, paths) in [("added", &c.added), ("modified", &c.modified), ("removed", &c.removed)] {
        for (i, p) in paths.iter().enumerate() {
            check_path(|| format!("`{at}.{list}[{i}]`"), p)?;
        }
    }
    for p in c.lines.keys() {
        check_path(|| format!("a key of `{at}.lines`"), p)?;
    }
    Ok(())
}

impl AgentState {
    /// Every path of the agent's record (`at` names it in messages) is inside the workspace.
    pub(super) fn check_paths(&self, at: &str) -> Result<(), String> {
        check_path(|| format!("`{at}.transcript`"), &self.transcript)?;
        for (i, a) in self.artifacts.iter().enumerate() {
            check_path(|| format!("`{at}.artifacts[{i}]`"), a)?;
        }
        if let Some(c) = &self.changes {
            check_changes(&format!("{at}.changes"), c)?;
        }
        Ok(())
    }
}

impl RunState {
    /// Every name in the state that becomes part of a file path (the run id, phase and agent
    /// names) and every path it records (transcripts, artifacts, validated and changed files) is
    /// safe to use as one: checked where a state comes in (the state file, its journal, a gate
    /// comment, another job's upload) so nothing downstream writes or reads outside the
    /// workspace. `Err`: which field, its value, and what is allowed.
    pub(crate) fn check_names(&self) -> Result<(), Unsafe> {
        check_name(|| "`run_id`".into(), &self.run_id)?;
        if let Some(h) = &self.hygiene {
            check_name(|| "`hygiene.phase`".into(), &h.phase)?;
        }
        for (name, p) in &self.phases {
            check_name(|| "a key of `phases`".into(), name)?;
            for (agent, a) in &p.agents {
                check_name(|| format!("a key of `phases.{name}.agents`"), agent)?;
                a.check_paths(&format!("phases.{name}.agents.{agent}"))?;
            }
            for (i, e) in p.earlier.iter().enumerate() {
                for agent in e.agents.keys() {
                    check_name(|| format!("a key of `phases.{name}.earlier[{i}].agents`"), agent)?;
                }
            }
            for (i, pat) in p.validation.iter().flat_map(|v| v.patterns.iter()).enumerate() {
                for (j, f) in pat.files.iter().enumerate() {
                    check_path(|| format!("`phases.{name}.validation.patterns[{i}].files[{j}]`"), f)?;
                }
            }
            if let Some(c) = &p.changes {
                check_changes(&format!("phases.{name}.changes"), c)?;
            }
        }
        Ok(())
    }
}

/// A duration in seconds as people write it: `3s`, `2.2s`, `90s`.
pub(crate) fn seconds(s: f64) -> String {
    let rounded = (s * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 { format!("{rounded:.0}s") } else { format!("{rounded:.1}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_that_could_leave_a_folder_are_refused() {
        for ok in ["20260101_120000", "20260101_120000_2", "build", "a-b_c.d", "A1", &"x".repeat(128)] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "-x", "_x", "a\0", "a\nb", "é", &"x".repeat(129)]
        {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        for ok in ["a.txt", "docs/PLAN.md", ".claude/logs/agents/r_p_a.log", "a b/c\\d", "..x/y.."] {
            assert!(is_inside_path(ok), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", "./a", "a\0b"] {
            assert!(!is_inside_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn starting_over_keeps_the_run_count_and_at_most_five_earlier_runs() {
        let mut p = PhaseState::pending();
        p.start_over();
        assert!(p.earlier.is_empty(), "a phase that never ran leaves nothing");
        for run in 1..=7 {
            p.runs = run;
            p.status = PhaseStatus::Rejected;
            p.started_at = Some(Utc::now());
            p.start_over();
        }
        assert_eq!((p.status, p.runs, p.started_at), (PhaseStatus::Pending, 7, None));
        assert_eq!(p.earlier.iter().map(|e| e.run).collect::<Vec<_>>(), [3, 4, 5, 6, 7]);
        assert!(p.earlier.iter().all(|e| e.status == PhaseStatus::Rejected));
    }

    #[test]
    fn the_message_names_the_field_its_value_and_the_rule() {
        let mut s = RunState::for_test("r1", [("build".to_owned(), PhaseState::pending())].into());
        assert_eq!(s.check_names(), Ok(()));
        s.run_id = "../../outside/X".into();
        let e = s.check_names().unwrap_err().to_string();
        assert!(
            e.starts_with("`run_id` is \"../../outside/X\", which cannot be part of a file name: expected a letter"),
            "{e}"
        );
        s.run_id = "r1".into();
        s.phases.get_mut("build").unwrap().validation = Some(Validation {
            passed: true,
            patterns: vec![PatternResult { pattern: "*".into(), files: vec!["/etc/shadow".into()] }],
        });
        let e = s.check_names().unwrap_err().to_string();
        assert!(
            e.starts_with(
                "`phases.build.validation.patterns[0].files[0]` is \"/etc/shadow\": expected a relative path"
            ),
            "{e}"
        );
        s.phases.insert("\u{1b}[31m".repeat(40), PhaseState::pending());
        let e = s.check_names().unwrap_err().to_string();
        assert!(e.starts_with("a key of `phases` is \"\\u{1b}[31m") && e.contains("…, which"), "{e}");
    }
}
