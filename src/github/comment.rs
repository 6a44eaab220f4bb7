//! The gate comment: the REQUEST.md body with the reviewer checklist as task-list boxes, how to
//! decide with labels, where the decision stands, a collapsible diff of each changed file, links
//! to the workflow run, and two hidden lines: the marker that finds the comment again and the
//! metadata an approval is bound to. It stays under GitHub's 65,536-character limit.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::context::PrContext;
use crate::config::Workflow;
use crate::executor::Redactor;
use crate::gate::request;
use crate::markup::{code, inline};
use crate::state::RunState;

/// GitHub's limit on a comment body.
pub(crate) const MAX_BODY: usize = 65_536;
/// Room kept for everything but the diffs.
const DIFF_BUDGET: usize = 30_000;
const DIFF_LINES_PER_FILE: usize = 150;

/// The hidden line that identifies the comment of one run's phase.
pub(crate) fn marker(run_id: &str, phase: &str) -> String {
    format!("<!-- orchestrator:gate run={run_id} phase={phase} -->")
}

/// What an approval is bound to, kept in the comment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Meta {
    pub run_id: String,
    pub phase: String,
    pub head_sha: String,
    /// sha256 over the phase's artifacts (paths and contents).
    pub digest: String,
    pub opened_at: DateTime<Utc>,
    /// Which time the phase ran when this request opened (the phase state's `runs`): a retried
    /// phase opens a new round, in which earlier decisions do not count.
    #[serde(default)]
    pub round: u32,
    /// When the round was decided: decisions are re-derived later from events up to this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// The ids GitHub had given when the round opened: only later events, comments and reviews
    /// belong to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<crate::gate::tally::Seen>,
    /// Comment commands already answered with a reaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acked: Vec<u64>,
    /// How this round was decided, once it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<RoundRecord>,
    /// Earlier rounds of this gate, newest last (at most ten).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RoundRecord>,
    /// The commits the run pushed to the pull request's branch when this gate opened (its
    /// outputs, `commit_outputs`), every round's, newest last: the only commits that are the
    /// run's own (a commit's author is whatever its author writes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushed: Vec<String>,
}

/// What one round of a gate came to, for the comment's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct RoundRecord {
    pub round: u32,
    /// `approved`, `rejected`, or `superseded` (a new round opened undecided).
    pub outcome: String,
    #[serde(default)]
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub commit: String,
}

const META_PREFIX: &str = "<!-- orchestrator:meta ";
const HIDDEN: &str = "<!-- orchestrator:";

/// The hidden lines that end a comment body: read only there, never from the text above them
/// (which quotes agents' files). Untrusted text cannot hold `<!--` anyway (see `markup`).
pub(crate) fn trailer(body: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = body
        .lines()
        .rev()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with(HIDDEN) && l.ends_with("-->"))
        .collect();
    lines.reverse();
    lines
}

/// Whether `body` is the gate comment that `marker` names.
pub(crate) fn has_marker(body: &str, marker: &str) -> bool {
    trailer(body).contains(&marker)
}

pub(crate) fn parse_meta(body: &str) -> Option<Meta> {
    let line = trailer(body).into_iter().find(|l| l.starts_with(META_PREFIX))?;
    serde_json::from_str(line.strip_prefix(META_PREFIX)?.strip_suffix(" -->")?).ok()
}

/// Each changed file's diff, collapsible (`review`), within the comment's budget.
fn diffs(files: &[crate::review::FileDiff]) -> String {
    use crate::review::{Bounds, markdown};
    let bounds = Bounds { lines_per_file: DIFF_LINES_PER_FILE, total: DIFF_BUDGET };
    markdown::section(files, bounds, markdown::Layout::Collapsible, "see the workflow artifacts")
}

/// How reviewers decide at this gate, as the channels of `decide_by` allow.
fn ways_to_decide(wf: &Workflow, approve: &str, reject: &str, phase: &str) -> String {
    use crate::gate::tally::Channel;
    let p = &wf.consensus.command_prefix;
    let mut ways = Vec::new();
    for ch in &wf.consensus.decide_by {
        ways.push(match ch {
            Channel::Labels => format!("add the label `{approve}` to approve or `{reject}` to reject"),
            Channel::Comments => format!(
                "comment `{p}approve` (or `{p}approve {phase}`) or `{p}reject <reason>` on a line of its own; `{p}retry` runs a rejected or failed phase again"
            ),
            Channel::Reviews => "submit a review: **Approve**, or **Request changes** with the reason".to_owned(),
        });
    }
    let mut s = String::from("To decide, ");
    match ways.len() {
        1 => s.push_str(&ways[0]),
        _ => {
            let last = ways.pop().unwrap_or_default();
            s.push_str(&ways.join("; "));
            s.push_str("; or ");
            s.push_str(&last);
        }
    }
    s.push('.');
    s
}

/// Render the comment for `phase`. `ticked` are the checklist items to show ticked; `status` the
/// lines saying where the decision stands. Everything but the hidden trailer goes through
/// `redactor`: diffs quote files that agents wrote.
#[allow(clippy::too_many_arguments)]
pub(crate) fn render(
    wf: &Workflow,
    state: &RunState,
    phase: &str,
    ctx: &PrContext,
    meta: &Meta,
    ticked: &[&str],
    status: &[String],
    files: &[crate::review::FileDiff],
    redactor: &Redactor,
) -> String {
    let mut request = request::render(wf, state, phase, meta.opened_at);
    if let Some(i) = request.find("## Decision Required") {
        request.truncate(i);
    }
    let ticks: Vec<(String, String)> =
        ticked.iter().map(|item| (request::checklist_line(item, false), request::checklist_line(item, true))).collect();
    let request: String = request
        .lines()
        .map(|l| match ticks.iter().find(|(open, _)| open == l) {
            Some((_, done)) => done.clone(),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let (approve, reject) = wf.labels(phase);
    let c = &wf.consensus;
    let done = ticked.len();
    let ways = ways_to_decide(wf, &approve, &reject, phase);
    let mut decision = format!(
        "\n## Decision (round {})\n\n{ways} \
         Decisions count from people with write access{}{}; {} approval{} needed{}.\n\n**Checklist:** {done}/{} ticked{}.\n\n",
        meta.round.max(1),
        if c.approvers.is_empty() {
            String::new()
        } else {
            format!(" and from {}", c.approvers.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(", "))
        },
        if c.allow_author { "" } else { ", not from the pull request's author" },
        c.min_approvals,
        if c.min_approvals == 1 { "" } else { "s" },
        if c.min_approvals > 1 { ", from different people" } else { "" },
        c.checklist.len(),
        if c.require_checklist { " (every box must be ticked before an approval counts)" } else { "" },
    );
    if !wf.policy_changes.is_empty() {
        let _ = writeln!(
            decision,
            "⚠️ **This pull request changes the gate's policy** in {}: {}. The base branch's policy applies, and only people with write access can approve.\n",
            code(&wf.config_path.display().to_string()),
            wf.policy_changes.iter().map(|c| inline(c)).collect::<Vec<_>>().join("; ")
        );
    }
    for line in status {
        let _ = writeln!(decision, "{line}");
    }
    if !meta.history.is_empty() {
        let _ = writeln!(decision, "\n<details><summary>Earlier rounds</summary>\n");
        for r in &meta.history {
            let by = if r.by.is_empty() {
                String::new()
            } else {
                format!(" by {}", r.by.split(", ").map(|b| format!("@{}", inline(b))).collect::<Vec<_>>().join(", "))
            };
            let commit = if r.commit.is_empty() {
                String::new()
            } else {
                format!(" on {}", code(crate::markup::prefix(&r.commit, 7)))
            };
            let _ = writeln!(
                decision,
                "- Round {}: {}{by} at {}{commit}",
                r.round,
                inline(&r.outcome),
                r.at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        let _ = writeln!(decision, "\n</details>");
    }
    let mut links = String::new();
    if let Some(url) = ctx.run_url() {
        let _ = write!(links, "\n[Workflow run]({url}) · [Artifacts: transcripts, metrics, JUnit]({url}#artifacts)\n");
    }
    // The run state travels with the comment, for a resume on a fresh runner (see `carry`); one
    // too large for it travels in the workflow artifact, and the comment points there.
    let carried = super::carry::block(state, redactor)
        .or_else(|| super::carry::pointer(state, phase, ctx.run_id.as_deref(), ctx.artifact.as_deref(), redactor))
        .unwrap_or_else(|| {
            "<!-- orchestrator:state not carried (too large, and no workflow artifact to point to): restore .claude/orchestrator_state.json from the workflow artifacts -->".into()
        });
    let hidden = format!(
        "\n{}\n{META_PREFIX}{} -->\n{carried}\n",
        marker(&meta.run_id, &meta.phase),
        serde_json::to_string(meta).unwrap_or_default()
    );
    let mut diffs = redactor.redact_str(&diffs(files));
    let mut request = redactor.redact_str(&request);
    let decision = redactor.redact_str(&decision);
    let mut timeline = redactor.redact_str(&timeline(wf, state, phase, meta));
    let fixed = decision.len() + links.len() + hidden.len();
    // The timeline goes first when the body would be too long: before the diffs and the request.
    if request.len() + diffs.len() + fixed + timeline.len() > MAX_BODY {
        timeline = TIMELINE_LEFT_OUT.to_owned();
    }
    let fixed = fixed + timeline.len();
    if request.len() + diffs.len() + fixed > MAX_BODY {
        diffs = "## Changes\n\nToo large to show here; see the workflow artifacts.\n\n".into();
    }
    // The checklist is never cut: only what comes before it.
    let checklist = request.find("## Reviewer Checklist").map(|i| request.split_off(i)).unwrap_or_default();
    if request.len() + checklist.len() + diffs.len() + fixed > MAX_BODY {
        let room = MAX_BODY.saturating_sub(checklist.len() + diffs.len() + fixed + 200);
        let cut = (0..=room.min(request.len())).rev().find(|i| request.is_char_boundary(*i)).unwrap_or(0);
        request.truncate(cut);
        request.push_str("\n\n… (truncated: the full request is in the workflow artifacts)\n\n");
    }
    format!("{request}{checklist}\n{decision}\n{timeline}{diffs}{links}{hidden}")
}

const TIMELINE_LEFT_OUT: &str =
    "_The run's timeline is left out here to keep room; it is in the job summary and the HTML report._\n\n";

/// The run's timeline as a collapsed Mermaid chart, within its own budget (see
/// [`crate::timeline::mermaid`]). The comment's own round is drawn from `meta` (when it opened,
/// how it was decided), so the chart is the same before and after the state records the round,
/// and drawn to the last thing that happened, not to now: a check that finds nothing new does
/// not rewrite the comment.
fn timeline(wf: &Workflow, state: &RunState, phase: &str, meta: &Meta) -> String {
    use crate::state::{Decision, GateState, PhaseStatus};
    use crate::timeline::{Timeline, mermaid};
    let mut state = state.clone();
    if let Some(ps) = state.phases.get_mut(phase) {
        let decision = meta.decision.as_ref().and_then(|d| match d.outcome.as_str() {
            outcome @ ("approved" | "rejected") => Some(Decision {
                approved: outcome == "approved",
                by: d.by.clone(),
                at: d.at,
                reason: None,
                commit: None,
                last_comment: None,
            }),
            _ => None,
        });
        if decision.is_none() {
            ps.status = PhaseStatus::AwaitingApproval;
        }
        ps.gate = Some(GateState { requested_at: meta.opened_at, request: String::new(), decision });
    }
    let chart = mermaid::render(&Timeline::build(wf, &state, state.started_at), &mermaid::Limits::COMMENT);
    if chart.is_empty() {
        return String::new();
    }
    format!("<details><summary>Timeline</summary>\n\n{chart}\n</details>\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn meta() -> Meta {
        Meta {
            run_id: "r".into(),
            phase: "p".into(),
            head_sha: "abc".into(),
            digest: "d".into(),
            opened_at: Utc::now(),
            round: 1,
            decided_at: None,
            seen: None,
            acked: Vec::new(),
            decision: None,
            history: Vec::new(),
            pushed: Vec::new(),
        }
    }

    #[test]
    fn meta_is_read_only_from_the_trailer() {
        let meta = meta();
        let line = format!("{META_PREFIX}{} -->", serde_json::to_string(&meta).unwrap());
        let body = format!("text\n{}\n{line}\n\n", marker("r", "p"));
        assert_eq!(parse_meta(&body), Some(meta.clone()));
        assert!(has_marker(&body, &marker("r", "p")));
        // The same lines above ordinary text (a quoted file, say) count for nothing.
        let quoted = format!("{}\n{line}\nmore text\n", marker("r", "p"));
        assert_eq!(parse_meta(&quoted), None);
        assert!(!has_marker(&quoted, &marker("r", "p")));
    }

    #[test]
    fn ticks_are_read_only_from_the_checklist_section() {
        let items = vec!["One".to_owned(), "Two".to_owned(), "Three".to_owned()];
        let body = format!(
            "- [x] Two\n{}\n- [x] One\n- [ ] Two\n- [X] Three\n- [x] Four\n{}\n- [x] Two\n",
            request::CHECKLIST_START,
            request::CHECKLIST_END
        );
        assert_eq!(request::ticked(&body, &items), ["One", "Three"]);
        assert!(request::ticked("- [x] One\n", &items).is_empty(), "no section, no ticks");
    }

    fn pr() -> PrContext {
        PrContext {
            api_url: "https://api.github.com".into(),
            server_url: "https://github.com".into(),
            owner: "o".into(),
            repo: "r".into(),
            number: 1,
            token: "t".into(),
            run_id: Some("9".into()),
            event_name: "pull_request".into(),
            head_ref: None,
            fork: None,
            artifact: None,
        }
    }

    #[test]
    fn the_timeline_is_drawn_and_never_pushes_out_the_checklist() {
        let (mut wf, mut state, _) = crate::timeline::fixture::wide(500);
        let dir = tempfile::tempdir().unwrap();
        wf.root = dir.path().to_path_buf();
        let meta = Meta { run_id: "r".into(), phase: "swarm".into(), ..meta() };
        let draw = |state: &RunState| {
            let diffs = crate::review::phase_diffs(&wf.root, state, "swarm");
            render(&wf, state, "swarm", &pr(), &meta, &[], &["waiting".into()], &diffs, &Redactor::default())
        };
        let body = draw(&state);
        assert!(body.contains("<summary>Timeline</summary>\n\n```mermaid\ngantt\n"), "{body}");
        assert!(body.contains("drawn as one bar per outcome"), "{body}");
        assert!(body.find("```mermaid").unwrap() > body.find(request::CHECKLIST_END).unwrap());
        // With changes too large for the body, the timeline leaves first; the checklist stays.
        let mut changes = crate::state::ChangeSet::default();
        for i in 0..400 {
            let name = format!("big{i}.txt");
            std::fs::write(dir.path().join(&name), format!("{}\n", "y".repeat(150)).repeat(3)).unwrap();
            changes.added.push(name);
        }
        state.phases.get_mut("swarm").unwrap().changes = Some(changes);
        let body = draw(&state);
        assert!(body.len() <= MAX_BODY, "{} characters", body.len());
        assert!(body.contains(request::CHECKLIST_END), "the checklist is never cut");
        assert!(parse_meta(&body).is_some(), "the hidden lines survive");
    }

    #[test]
    fn the_chart_is_the_same_before_and_after_the_state_records_the_round() {
        use crate::timeline::fixture;
        let (mut wf, mut state, _) = fixture::wide(3);
        let dir = tempfile::tempdir().unwrap();
        wf.root = dir.path().to_path_buf();
        let meta = Meta {
            run_id: "r".into(),
            phase: "swarm".into(),
            opened_at: fixture::at("2026-01-01T12:06:00Z"),
            ..meta()
        };
        let chart = |state: &RunState| {
            let body = render(
                &wf,
                state,
                "swarm",
                &pr(),
                &meta,
                &[],
                &[],
                &crate::review::phase_diffs(&wf.root, state, "swarm"),
                &Redactor::default(),
            );
            body.split("<summary>Timeline</summary>").nth(1).unwrap().split("</details>").next().unwrap().to_owned()
        };
        // The comment is posted before the state records the gate…
        let swarm = state.phases.get_mut("swarm").unwrap();
        swarm.gate = None;
        swarm.status = crate::state::PhaseStatus::Running;
        let posted = chart(&state);
        assert!(posted.contains("gate waiting"), "{posted}");
        // …then the state has it, a moment later, and later checks write the state again.
        let swarm = state.phases.get_mut("swarm").unwrap();
        swarm.status = crate::state::PhaseStatus::AwaitingApproval;
        swarm.gate = Some(crate::state::GateState {
            requested_at: fixture::at("2026-01-01T12:06:01Z"),
            request: "https://github.com/o/r/pull/1#issuecomment-1".into(),
            decision: None,
        });
        state.updated_at = fixture::at("2026-01-01T18:00:00Z");
        assert_eq!(chart(&state), posted);
    }

    #[test]
    fn a_huge_change_keeps_the_comment_under_githubs_limit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let src = "agents:\n  a:\n    entrypoints: {default: \"true\"}\nphases:\n  - name: p\n    agents: [a]\n    requires_consensus: true\n";
        let wf = crate::config::parse(root, Path::new(".claude/config.yaml"), src).unwrap();
        let mut state: RunState = serde_json::from_value(serde_json::json!({
            "version": 1, "run_id": "r1", "started_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "phases": {"p": {"status": "awaiting_approval"}}
        }))
        .unwrap();
        let mut changes = crate::state::ChangeSet::default();
        for i in 0..200 {
            let name = format!("big{i}.txt");
            std::fs::write(root.join(&name), "x".repeat(100) + "\n").unwrap();
            changes.added.push(name);
        }
        state.phases.get_mut("p").unwrap().changes = Some(changes);
        let ctx = pr();
        let meta = Meta { run_id: "r1".into(), ..meta() };
        let files = crate::review::phase_diffs(&wf.root, &state, "p");
        let body = render(&wf, &state, "p", &ctx, &meta, &[], &["waiting".into()], &files, &Redactor::default());
        assert!(body.len() <= MAX_BODY, "{} characters", body.len());
        assert!(body.contains("more changed file(s), not shown"), "the diffs were not cut");
        assert!(
            body.contains(&marker("r1", "p")) && parse_meta(&body).is_some(),
            "the hidden lines must survive truncation"
        );
        assert!(body.contains(request::CHECKLIST_END), "the checklist is never cut");
    }
}
