//! The approval request (REQUEST.md): what the phase did and what the reviewer should check.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::config::Workflow;
use crate::markup::{code, inline};
use crate::state::{AgentStatus, RunState};

/// The hidden lines around the reviewer checklist: ticks are read only between them (and
/// nothing rendered from untrusted text can hold `<!--`).
pub(crate) const CHECKLIST_START: &str = "<!-- orchestrator:checklist -->";
pub(crate) const CHECKLIST_END: &str = "<!-- orchestrator:checklist-end -->";

/// The line of checklist `item`, ticked or not.
pub(crate) fn checklist_line(item: &str, ticked: bool) -> String {
    format!("- [{}] {}", if ticked { "x" } else { " " }, inline(item.trim()))
}

/// The checklist items ticked in `body`: only lines of the checklist section that are exactly
/// an item of `items`, ticked.
pub(crate) fn ticked<'a>(body: &str, items: &'a [String]) -> Vec<&'a str> {
    let Some(start) = body.find(CHECKLIST_START) else { return Vec::new() };
    let section = &body[start + CHECKLIST_START.len()..];
    let section = &section[..section.find(CHECKLIST_END).unwrap_or(0)];
    items
        .iter()
        .filter(|item| {
            let want = checklist_line(item, true);
            section.lines().any(|l| l.trim_end() == want || l.trim_end() == want.replacen("[x]", "[X]", 1))
        })
        .map(String::as_str)
        .collect()
}

/// Render the request for `phase` of the run in `state`.
pub(crate) fn render(wf: &Workflow, state: &RunState, phase: &str, now: DateTime<Utc>) -> String {
    let ps = state.phases.get(phase);
    let agents = wf.phase(phase).map(|p| p.agents.clone()).unwrap_or_default();
    let artifacts: usize = ps.map(|p| p.agents.values().map(|a| a.artifacts.len()).sum()).unwrap_or(0);
    let validation = ps.and_then(|p| p.validation.as_ref());
    let status = match validation {
        Some(v) if v.passed => "PASS",
        Some(_) => "FAIL",
        None => "N/A",
    };
    let mut s = String::new();
    let _ = writeln!(s, "# Consensus Request: {phase}\n");
    let _ = writeln!(s, "**Requested:** {}\n", now.format("%Y-%m-%dT%H:%M:%SZ"));
    let _ = writeln!(s, "**Run ID:** {}\n", state.run_id);
    let _ = writeln!(s, "## Phase Summary\n");
    let _ = writeln!(s, "Phase **{phase}** has completed and requires approval before proceeding.\n");
    let _ = writeln!(s, "| Metric | Value |\n|--------|-------|");
    let _ = writeln!(
        s,
        "| Phase | {phase} |\n| Agents | {} |\n| Artifacts Produced | {artifacts} |\n| Validation Status | {status} |\n",
        agents.len()
    );

    let _ = writeln!(s, "## Agent Outcomes\n");
    for name in &agents {
        match ps.and_then(|p| p.agents.get(name)) {
            Some(a) => {
                let (mark, word) = match a.status {
                    AgentStatus::Succeeded => ("✅", "Success"),
                    AgentStatus::Failed => ("❌", "Failed"),
                    _ => ("⏳", "Not finished"),
                };
                let retries = a.attempts.len().saturating_sub(1);
                let retry_note = if retries > 0 {
                    format!(", {retries} retr{}", if retries == 1 { "y" } else { "ies" })
                } else {
                    String::new()
                };
                let _ = writeln!(s, "- **{name}**: {mark} {word} ({:.1}s{retry_note})", a.duration_s.unwrap_or(0.0));
                let _ = writeln!(s, "  - Artifacts: {} file(s)", a.artifacts.len());
                for r in &a.refused_artifacts {
                    let _ = writeln!(s, "  - ⚠️ Refused artifact {}: {}", code(&r.path), inline(&r.reason));
                }
                let _ = writeln!(s, "  - Transcript: {}", code(&a.transcript));
            }
            None => {
                let _ = writeln!(s, "- **{name}**: ⏳ Not run");
            }
        }
    }

    let _ = writeln!(s, "\n## Artifact Validation\n");
    match validation {
        Some(v) => {
            let found: usize = v.patterns.iter().map(|p| p.files.len()).sum();
            let missing: Vec<&str> =
                v.patterns.iter().filter(|p| p.files.is_empty()).map(|p| p.pattern.as_str()).collect();
            let _ = writeln!(
                s,
                "- **Status:** {status}\n- **Found:** {found} file(s)\n- **Missing:** {} pattern(s)",
                missing.len()
            );
            for p in &v.patterns {
                let mark = if p.files.is_empty() { "❌" } else { "✅" };
                let _ = writeln!(s, "  - {mark} {}: {} file(s)", code(&p.pattern), p.files.len());
            }
        }
        None => {
            let _ = writeln!(s, "- **Status:** N/A (the phase declares no artifacts)");
        }
    }

    if validation.is_some() {
        let _ = writeln!(s, "\n📄 Full validation report: `{}`", crate::report::validation::path(phase));
    }

    if let Some(c) = ps.and_then(|p| p.changes.as_ref())
        && !(c.added.is_empty() && c.modified.is_empty() && c.removed.is_empty())
    {
        let _ = writeln!(s, "\n## Files Changed\n");
        // A file belongs to the agents that reported it; in a one-agent phase, to that agent.
        let owners = |path: &str| -> Vec<String> {
            let reported: Vec<String> = ps
                .map(|p| {
                    p.agents
                        .iter()
                        .filter(|(_, a)| a.artifacts.iter().any(|f| f == path))
                        .map(|(n, _)| n.clone())
                        .collect()
                })
                .unwrap_or_default();
            if reported.is_empty() && agents.len() == 1 { agents.clone() } else { reported }
        };
        let mut sections: Vec<(String, Vec<String>)> = agents.iter().map(|a| (a.clone(), Vec::new())).collect();
        let mut unowned = Vec::new();
        for (label, files) in [("Added", &c.added), ("Modified", &c.modified), ("Removed", &c.removed)] {
            for f in files {
                let lines = c.describe_lines(f);
                let f_code = code(f);
                let entry = if lines.is_empty() {
                    format!("- {label} {f_code}")
                } else {
                    format!("- {label} {f_code} ({lines})")
                };
                let who = owners(f);
                if who.is_empty() {
                    unowned.push(entry.clone());
                }
                for w in who {
                    if let Some((_, list)) = sections.iter_mut().find(|(n, _)| *n == w) {
                        list.push(entry.clone());
                    }
                }
            }
        }
        if !c.redacted.is_empty() {
            let _ = writeln!(
                s,
                "⚠️ Secrets were redacted (replaced by `***`) in: {}\n",
                c.redacted.iter().map(|f| code(f)).collect::<Vec<_>>().join(", ")
            );
        }
        for (agent, list) in sections.iter().filter(|(_, l)| !l.is_empty()) {
            let _ = writeln!(s, "### {agent}\n\n{}\n", list.join("\n"));
        }
        if !unowned.is_empty() {
            let _ = writeln!(s, "### Not reported by an agent\n\n{}\n", unowned.join("\n"));
        }
    }

    let _ = writeln!(s, "\n## Metrics\n\n📊 Runtime metrics: `{}`", crate::report::metrics_path(&state.run_id));
    if let Some(h) = &state.hygiene {
        let _ = writeln!(
            s,
            "\n## Repository Health\n\n🧹 Cleanliness Score: **{:.1}/100** (Grade: {})\n",
            h.score, h.grade
        );
        let _ = writeln!(s, "📄 Full report: `{}`", crate::report::HYGIENE_PATH);
    }

    let _ = writeln!(s, "\n## Reviewer Checklist\n\nBefore approving, verify:\n\n{CHECKLIST_START}");
    for item in &wf.consensus.checklist {
        let _ = writeln!(s, "{}", checklist_line(item, false));
    }
    let _ = writeln!(s, "{CHECKLIST_END}");
    let _ = writeln!(s, "\n## Decision Required\n");
    let _ = writeln!(
        s,
        "**Approve** to proceed to the next phase:\n```bash\norchestrator run approve --phase {phase}\n```\n"
    );
    let _ = writeln!(
        s,
        "**Reject** to mark for revision:\n```bash\norchestrator run reject --phase {phase} --reason \"Reason for rejection\"\n```"
    );
    // Sections end with a blank line and the next starts with one; keep a single blank line.
    while s.contains("\n\n\n") {
        s = s.replace("\n\n\n", "\n\n");
    }
    s
}
