//! A fixed run for the timeline's tests and snapshots: three phases, a retry, a timeout, an
//! approved and a rejected gate, and hostile text wherever a state holds agent-derived text.

use chrono::{DateTime, Utc};

use crate::config::Workflow;
use crate::state::RunState;

/// Text an agent or a reviewer could have written: markup, Mermaid directives, a workflow
/// command, line breaks and a terminal escape.
pub(crate) const HOSTILE: &str = "x\n- [x] ok <script>alert(1)</script> <img src=x onerror=alert(1)> %%{init: {}}%% ; click call(x) #1 : ::error::pwned \u{1b}[31mred `code` @team";

pub(crate) fn workflow() -> Workflow {
    let src = "agents:
  planner: {entrypoints: {default: \"true\"}}
  builder: {entrypoints: {default: \"true\"}}
  tester: {entrypoints: {default: \"true\"}}
  critic: {entrypoints: {default: \"true\"}}
phases:
  - {name: planning, agents: [planner], requires_consensus: true}
  - {name: development, agents: [builder, tester], parallel: true}
  - {name: review, agents: [critic], requires_consensus: true}
";
    crate::config::parse(&std::env::temp_dir(), std::path::Path::new(".claude/config.yaml"), src)
        .expect("fixture config")
}

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("fixture time")
}

/// The workflow, its state and the "now" to draw it at.
pub(crate) fn run() -> (Workflow, RunState, DateTime<Utc>) {
    let state: RunState = serde_json::from_value(serde_json::json!({
        "version": 1,
        "run_id": "20260101_120000",
        "started_at": "2026-01-01T12:00:00Z",
        "updated_at": "2026-01-01T13:10:00Z",
        "finished_at": "2026-01-01T13:10:00Z",
        "phases": {
            "planning": {
                "status": "approved", "runs": 1,
                "started_at": "2026-01-01T12:00:00Z", "finished_at": "2026-01-01T12:00:05Z", "duration_s": 5.0,
                "agents": {"planner": {
                    "status": "succeeded", "command": "true",
                    "transcript": ".claude/logs/agents/20260101_120000_planning_planner.log",
                    "attempts": [{"number": 1, "started_at": "2026-01-01T12:00:00Z", "duration_s": 4.5, "exit_code": 0}],
                    "duration_s": 4.5
                }},
                "gate": {"requested_at": "2026-01-01T12:00:05Z", "request": ".claude/consensus/planning/REQUEST.md",
                         "decision": {"approved": true, "by": "alice", "at": "2026-01-01T13:00:05Z"}}
            },
            "development": {
                "status": "succeeded", "runs": 1,
                "started_at": "2026-01-01T13:00:05Z", "finished_at": "2026-01-01T13:08:00Z", "duration_s": 475.0,
                "agents": {
                    "builder": {
                        "status": "succeeded", "command": "make",
                        "transcript": ".claude/logs/agents/20260101_120000_development_builder.log",
                        "attempts": [
                            {"number": 1, "started_at": "2026-01-01T13:00:05Z", "duration_s": 2.0, "exit_code": 75,
                             "retry_reason": HOSTILE, "retry_delay_s": 1.0},
                            {"number": 2, "started_at": "2026-01-01T13:00:08Z", "duration_s": 300.0,
                             "timed_out": true, "timeout_s": 300.0, "signal": 9}
                        ]
                    },
                    "tester": {
                        "status": "succeeded", "command": "make test",
                        "transcript": ".claude/logs/agents/20260101_120000_development_tester.log",
                        "attempts": [{"number": 1, "started_at": "2026-01-01T13:00:05Z", "duration_s": 470.0, "exit_code": 0}]
                    }
                }
            },
            "review": {
                "status": "rejected", "runs": 1,
                "started_at": "2026-01-01T13:08:00Z", "finished_at": "2026-01-01T13:09:00Z", "duration_s": 60.0,
                "agents": {"critic": {
                    "status": "failed", "command": "review",
                    "transcript": ".claude/logs/agents/20260101_120000_review_critic.log",
                    "attempts": [{"number": 1, "started_at": "2026-01-01T13:08:00Z", "duration_s": 60.0, "error": HOSTILE}]
                }},
                "error": HOSTILE,
                "gate": {"requested_at": "2026-01-01T13:09:00Z", "request": "https://github.com/o/r/pull/1#issuecomment-9",
                         "decision": {"approved": false, "by": HOSTILE, "at": "2026-01-01T13:10:00Z",
                                      "reason": HOSTILE, "commit": "0123456789abcdef0123456789abcdef01234567"}}
            }
        }
    }))
    .expect("fixture state");
    (workflow(), state, at("2026-01-01T13:10:00Z"))
}

/// A run whose one phase has `agents` agents, every tenth failing and every seventh retried
/// first: for the limits at scale.
pub(crate) fn wide(agents: usize) -> (Workflow, RunState, DateTime<Utc>) {
    let mut src = String::from("agents:\n");
    for i in 0..agents {
        src.push_str(&format!("  a{i}: {{entrypoints: {{default: \"true\"}}}}\n"));
    }
    src.push_str("phases:\n  - name: swarm\n    parallel: true\n    agents: [");
    src.push_str(&(0..agents).map(|i| format!("a{i}")).collect::<Vec<_>>().join(", "));
    src.push_str("]\n    requires_consensus: true\n");
    let wf = crate::config::parse(&std::env::temp_dir(), std::path::Path::new(".claude/config.yaml"), &src)
        .expect("wide config");
    let start = at("2026-01-01T12:00:00Z");
    let mut agent_states = serde_json::Map::new();
    for i in 0..agents {
        let t0 = start + chrono::Duration::seconds((i % 50) as i64 * 6);
        let mut attempts = Vec::new();
        if i % 7 == 0 {
            attempts.push(serde_json::json!({"number": 1, "started_at": t0, "duration_s": 2.0, "exit_code": 75,
                                             "retry_reason": "exit code 75", "retry_delay_s": 1.0}));
        }
        let code = if i % 10 == 3 { 1 } else { 0 };
        let t1 = t0 + chrono::Duration::seconds(if attempts.is_empty() { 0 } else { 3 });
        attempts.push(
            serde_json::json!({"number": attempts.len() + 1, "started_at": t1, "duration_s": 30.0, "exit_code": code}),
        );
        agent_states.insert(
            format!("a{i}"),
            serde_json::json!({"status": if code == 0 { "succeeded" } else { "failed" }, "command": "true",
                               "transcript": format!(".claude/logs/agents/r_swarm_a{i}.log"), "attempts": attempts}),
        );
    }
    let state: RunState = serde_json::from_value(serde_json::json!({
        "version": 1, "run_id": "r", "started_at": start, "updated_at": "2026-01-01T12:06:00Z",
        "phases": {"swarm": {"status": "awaiting_approval", "runs": 1, "started_at": start,
                             "finished_at": "2026-01-01T12:06:00Z", "agents": agent_states,
                             "gate": {"requested_at": "2026-01-01T12:06:00Z", "request": "REQUEST.md"}}}
    }))
    .expect("wide state");
    (wf, state, at("2026-01-01T12:16:00Z"))
}
