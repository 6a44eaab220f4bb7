//! What a GitHub Actions runner (`GITHUB_ACTIONS=true`) reads besides the terminal output, as
//! text: `app::runner` writes it. Step outputs go to `$GITHUB_OUTPUT`, a Markdown summary to
//! `$GITHUB_STEP_SUMMARY`, and workflow commands to stdout: `::add-mask::` for every secret the
//! run knows, a log group per agent with its transcript's tail, and `::error` annotations for
//! failed agents, missing artifacts and refused input (with file, line and column for config).
//!
//! Everything here is derived from the run state after the engine is done, so what the runner
//! shows is what the records say. Agent output is printed between `::stop-commands::` markers
//! with a fresh random token (and neutralized too); every other text that an agent could have
//! influenced is neutralized (see [`crate::runner_log`]) and redacted, so an agent can issue no
//! workflow command and no secret reaches the log, the outputs or the summary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::Workflow;
use crate::diagnostic::Diagnostic;
use crate::executor::Redactor;
use crate::runner_log::{command, escape_data, frame, neutralize};
use crate::state::{AgentStatus, PhaseStatus, RunState, RunStatus};

/// How much of a transcript's end goes into its log group.
const GROUP_TAIL_BYTES: u64 = 64 * 1024;

/// Where annotation paths are made relative (`GITHUB_WORKSPACE`), if known.
pub(crate) struct Renderer {
    pub(crate) workspace: Option<PathBuf>,
}

/// What the runner shows about a finished command: log text (groups and annotations, for
/// stdout), step outputs and the job summary; all redacted.
pub(crate) struct Finished {
    pub(crate) log: String,
    pub(crate) outputs: Vec<(&'static str, String)>,
    pub(crate) summary: String,
}

/// `::add-mask::` for each secret value, to print before anything else.
pub(crate) fn masks(redactor: &Redactor) -> String {
    let mut text = String::new();
    for v in redactor.values() {
        for line in v.lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(text, "::add-mask::{}", escape_data(line));
        }
    }
    text
}

/// The job summary of a dry run and its step outputs.
pub(crate) fn dry_run(phases: &[&str], plan: &str, redactor: &Redactor) -> (Vec<(&'static str, String)>, String) {
    let outputs = vec![
        ("status", "dry-run".into()),
        ("exit-code", "0".into()),
        ("phase", phases.first().map(|s| s.to_string()).unwrap_or_default()),
        ("awaiting-approval", "false".into()),
    ];
    let plan = redactor.redact_str(plan);
    let fence =
        "`".repeat(plan.lines().map(|l| l.chars().take_while(|c| *c == '`').count()).max().unwrap_or(0).max(2) + 1);
    let summary = format!(
        "## 🔎 orchestrator dry run: {}\n\nNothing was run, written or posted. The plan:\n\n{fence}text\n{plan}\n{fence}\n\n",
        if phases.is_empty() { "nothing to run".to_owned() } else { phases.join(", ") }
    );
    (outputs, summary)
}

/// `$GITHUB_OUTPUT` lines for `outputs`, redacted. A multi-line value goes between delimiters
/// that are random and absent from it (`\r` ends a line there too).
pub(crate) fn outputs_text(outputs: &[(&str, String)], redactor: &Redactor) -> String {
    let mut text = String::new();
    for (name, value) in outputs {
        let value = redactor.redact_str(value);
        if value.contains(['\n', '\r']) {
            let Some(delim) = (0..16)
                .map(|_| format!("ORCHESTRATOR_EOF_{}", crate::runner_log::random_token()))
                .find(|d| !value.contains(d.as_str()))
            else {
                continue;
            };
            let _ = write!(text, "{name}<<{delim}\n{value}\n{delim}\n");
        } else {
            let _ = writeln!(text, "{name}={value}");
        }
    }
    text
}

impl Renderer {
    /// Everything the runner shows about a run that ended with exit `code`: log groups for the
    /// agents that ran since `since`, annotations, step outputs and the job summary.
    pub(crate) fn finish(
        &self,
        wf: &Workflow,
        state: &RunState,
        code: i32,
        since: DateTime<Utc>,
        redactor: &Redactor,
    ) -> Finished {
        let mut log = redactor.redact_str(&self.groups(wf, state, since));
        log.push_str(&redactor.redact_str(&self.annotations(wf, state)));
        Finished {
            log,
            outputs: run_outputs(wf, state, code, redactor),
            summary: redactor.redact_str(&summary(wf, state)),
        }
    }

    /// A refused command (bad config, busy state, …): annotations for its located errors (or
    /// one with the whole message) and the outputs, so later steps can tell what happened.
    pub(crate) fn failed(
        &self,
        root: &Path,
        diags: &[&Diagnostic],
        message: &str,
        code: i32,
        redactor: &Redactor,
    ) -> (String, Vec<(&'static str, String)>) {
        let mut text = String::new();
        for d in diags {
            let mut props = vec![("title", "orchestrator: invalid input".to_owned())];
            props.push(("file", self.repo_path(&root.join(&d.file))));
            if let Some(pos) = d.pos {
                props.push(("line", pos.line.to_string()));
                props.push(("col", pos.col.to_string()));
            }
            let msg = match &d.help {
                Some(h) => format!("{}\nhelp: {h}", d.message),
                None => d.message.clone(),
            };
            text.push_str(&command("error", &props, &msg));
        }
        if diags.is_empty() {
            text.push_str(&command("error", &[("title", "orchestrator".to_owned())], message));
        }
        (redactor.redact_str(&text), vec![("status", "error".into()), ("exit-code", code.to_string())])
    }

    /// A path as annotations want it: relative to `GITHUB_WORKSPACE` when it lies inside.
    fn repo_path(&self, path: &Path) -> String {
        let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(ws) = &self.workspace
            && let Ok(ws) = ws.canonicalize()
            && let Ok(rel) = abs.strip_prefix(&ws)
        {
            return rel.display().to_string();
        }
        path.display().to_string()
    }

    /// One collapsed group per agent that ran since `since`, holding its transcript's tail.
    fn groups(&self, wf: &Workflow, state: &RunState, since: DateTime<Utc>) -> String {
        let mut text = String::new();
        let folder = crate::transcript::Folder::for_reading(&wf.root);
        for phase in &wf.phases {
            let Some(ps) = state.phases.get(&phase.name) else { continue };
            for (name, agent) in &ps.agents {
                let Some(last) = agent.attempts.last() else { continue };
                if last.started_at < since {
                    continue;
                }
                let outcome =
                    if agent.status == AgentStatus::Succeeded { "succeeded".to_owned() } else { last.outcome() };
                let tries = agent.attempts.len();
                let title =
                    format!("{}/{name}: {outcome} ({tries} attempt{})", phase.name, if tries == 1 { "" } else { "s" });
                let _ = writeln!(text, "::group::{}", escape_data(&neutralize(&title)));
                let tail = folder
                    .as_ref()
                    .and_then(|f| f.tail(&agent.transcript, GROUP_TAIL_BYTES))
                    .map(|t| t.text)
                    .unwrap_or_default();
                text.push_str(&frame(&tail));
                text.push_str("::endgroup::\n");
            }
        }
        text
    }

    /// `::error` for each failed agent and each artifact pattern that matched nothing.
    fn annotations(&self, wf: &Workflow, state: &RunState) -> String {
        let mut text = String::new();
        // The config's positions, read only for a missing artifact (an index of a large config
        // costs more than the rest of this together).
        let spans = std::cell::OnceCell::new();
        let spans = || {
            spans.get_or_init(|| {
                let source = std::fs::read_to_string(wf.root.join(&wf.config_path)).unwrap_or_default();
                crate::config::span::SpanIndex::build(&source)
            })
        };
        let config_file = self.repo_path(&wf.root.join(&wf.config_path));
        for (pi, phase) in wf.phases.iter().enumerate() {
            let Some(ps) = state.phases.get(&phase.name) else { continue };
            for (name, agent) in &ps.agents {
                if agent.status != AgentStatus::Failed {
                    continue;
                }
                // The tool's own words only: the agent's output is in its log group, framed.
                let outcome = agent.attempts.last().map(|a| a.outcome()).unwrap_or_else(|| "did not run".into());
                let msg = format!(
                    "{outcome} after {} attempt(s); its output is in the log group `{}/{name}` and in {}",
                    agent.attempts.len(),
                    phase.name,
                    agent.transcript,
                );
                let title = format!("Agent failed: {}/{name}", phase.name);
                text.push_str(&command("error", &[("title", title)], &msg));
            }
            if ps.status == PhaseStatus::Failed
                && let Some(v) = &ps.validation
            {
                for (ai, p) in v.patterns.iter().enumerate().filter(|(_, p)| p.files.is_empty()) {
                    let mut props = vec![("title", format!("Missing artifact: {}", phase.name))];
                    props.push(("file", config_file.clone()));
                    if let Some(pos) = spans().value(&format!("phases[{pi}].artifacts[{ai}]")) {
                        props.push(("line", pos.line.to_string()));
                        props.push(("col", pos.col.to_string()));
                    }
                    let msg = format!("phase `{}`: no file matches `{}`", phase.name, p.pattern);
                    text.push_str(&command("error", &props, &msg));
                }
            }
        }
        text
    }
}

/// The step outputs for a finished command.
fn run_outputs(wf: &Workflow, state: &RunState, code: i32, redactor: &Redactor) -> Vec<(&'static str, String)> {
    let status = state.status();
    let awaiting: Vec<&str> = wf
        .phases
        .iter()
        .filter(|p| state.phases.get(&p.name).is_some_and(|s| s.status == PhaseStatus::AwaitingApproval))
        .map(|p| p.name.as_str())
        .collect();
    let phase = awaiting.first().map(|s| s.to_string()).unwrap_or_else(|| current_phase(wf, state));
    let mut failed = Vec::new();
    for p in &wf.phases {
        if let Some(ps) = state.phases.get(&p.name) {
            failed.extend(
                ps.agents
                    .iter()
                    .filter(|(_, a)| a.status == AgentStatus::Failed)
                    .map(|(n, _)| format!("{}/{n}", p.name)),
            );
        }
    }
    let abs = |rel: &str| wf.root.join(rel).display().to_string();
    vec![
        ("status", status_word(status).to_owned()),
        ("exit-code", code.to_string()),
        ("run-id", state.run_id.clone()),
        ("phase", phase),
        ("awaiting-approval", (!awaiting.is_empty()).to_string()),
        ("failed-agents", failed.join(",")),
        ("junit", abs(crate::report::JUNIT_PATH)),
        ("metrics-json", abs(&crate::report::metrics_path(&state.run_id))),
        ("metrics-prom", abs(crate::report::PROMETHEUS_PATH)),
        ("report-html", abs(&crate::timeline::html::default_path(&state.run_id))),
        ("upload-paths", upload_paths(wf, state, redactor).join("\n")),
    ]
}

/// The phase the run is at: the last one (in config order) that has started.
fn current_phase(wf: &Workflow, state: &RunState) -> String {
    wf.phases
        .iter()
        .rev()
        .find(|p| state.phases.get(&p.name).is_some_and(|s| s.status != PhaseStatus::Pending))
        .map(|p| p.name.clone())
        .unwrap_or_default()
}

/// A status as one word for outputs and `if:` expressions.
pub(crate) fn status_word(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "running",
        RunStatus::Interrupted => "interrupted",
        RunStatus::AwaitingApproval => "awaiting-approval",
        RunStatus::Failed => "failed",
        RunStatus::Rejected => "rejected",
        RunStatus::Completed => "completed",
    }
}

/// The records worth keeping as workflow artifacts (absolute paths of those that exist): the run
/// state and its journal, transcripts, LLM exchanges, metrics, reports, gate requests, bundles,
/// and the files the agents reported (so a later job of the same run can `run merge` them).
/// A path that cannot be listed safely, or whose name holds a secret, is left out with a warning.
pub(crate) fn upload_paths(wf: &Workflow, state: &RunState, redactor: &Redactor) -> Vec<String> {
    let state_file = wf.state_path();
    let mut journal = state_file.clone().into_os_string();
    journal.push(".journal");
    let mut paths = vec![state_file, PathBuf::from(journal)];
    for rel in [
        ".claude/logs",
        ".claude/agent_outputs",
        ".claude/metrics",
        ".claude/consensus",
        ".claude/artifacts",
        crate::github::carry::CARRIED_DIR,
        crate::file_modes::MANIFEST,
        "reports",
    ] {
        paths.push(wf.root.join(rel));
    }
    let mut outputs: Vec<&String> =
        state.phases.values().flat_map(|p| p.agents.values()).flat_map(|a| &a.artifacts).collect();
    outputs.sort();
    outputs.dedup();
    paths.extend(outputs.into_iter().map(|rel| wf.root.join(rel)));
    paths
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .filter(|p| {
            let why = if !listable(p) {
                "its name has a line break or a glob character"
            } else if !redactor.find(p.as_bytes()).is_empty() {
                "its name holds a secret"
            } else {
                return true;
            };
            errln!("warning: not listing `{}` for upload: {why}", neutralize(&redactor.redact_str(p)));
            false
        })
        .collect()
}

/// Whether `path` can be an entry of a newline-separated list of glob patterns (what
/// upload-artifact reads) as itself: a file named `x\n/home/runner/.ssh/id_rsa` or `**` would
/// otherwise add other files to the upload.
fn listable(path: &str) -> bool {
    !path.chars().any(|c| c.is_control() || matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '!' | '#' | '\\'))
}

/// The job summary: the phase table, the timeline (drawn to the last thing that happened),
/// agent outcomes and where the gate stands.
pub(crate) fn summary(wf: &Workflow, state: &RunState) -> String {
    summary_at(wf, state, state.started_at)
}

/// The job summary with a gate that still waits drawn up to `as_of` (`run report`: now).
pub(crate) fn summary_at(wf: &Workflow, state: &RunState, as_of: DateTime<Utc>) -> String {
    let status = state.status();
    let icon = match status {
        RunStatus::Completed => "✅",
        RunStatus::AwaitingApproval => "⏸️",
        RunStatus::Failed | RunStatus::Rejected => "❌",
        RunStatus::Interrupted => "⏹️",
        RunStatus::Running => "▶️",
    };
    let mut s = format!("## {icon} orchestrator run `{}`: {}\n\n", state.run_id, status.as_str());
    s.push_str("| phase | status | duration | agents | artifacts |\n|---|---|---|---|---|\n");
    for phase in &wf.phases {
        let Some(ps) = state.phases.get(&phase.name) else { continue };
        let ok = ps.agents.values().filter(|a| a.status == AgentStatus::Succeeded).count();
        let agents = if ps.agents.is_empty() {
            format!("{} to run", phase.agents.len())
        } else {
            format!("{ok}/{} succeeded", phase.agents.len())
        };
        let artifacts = match &ps.validation {
            None if phase.artifacts.is_empty() => "—".to_owned(),
            None => format!("{} pattern(s) to check", phase.artifacts.len()),
            Some(v) => {
                let files: usize = v.patterns.iter().map(|p| p.files.len()).sum();
                let missing = v.patterns.iter().filter(|p| p.files.is_empty()).count();
                if missing == 0 {
                    format!("✅ {files} file(s)")
                } else {
                    format!("❌ {missing} pattern(s) unmatched")
                }
            }
        };
        let duration = ps.duration_s.map(|d| format!("{d:.1}s")).unwrap_or_else(|| "—".into());
        let _ = writeln!(
            s,
            "| {} | {} {} | {duration} | {agents} | {artifacts} |",
            cell(&phase.name),
            phase_icon(ps.status),
            ps.status.as_str()
        );
    }
    let timeline = crate::timeline::Timeline::build(wf, state, as_of);
    let chart = crate::timeline::mermaid::render(&timeline, &crate::timeline::mermaid::Limits::SUMMARY);
    if !chart.is_empty() {
        let _ = write!(s, "\n### Timeline\n\n{chart}");
    }
    let ran: Vec<_> = wf
        .phases
        .iter()
        .filter_map(|p| state.phases.get(&p.name).map(|ps| (p, ps)))
        .flat_map(|(p, ps)| ps.agents.iter().map(move |(n, a)| (p, n, a)))
        .collect();
    if !ran.is_empty() {
        s.push_str(
            "\n### Agents\n\n| phase | agent | outcome | attempts | time | transcript |\n|---|---|---|---|---|---|\n",
        );
        for (p, name, a) in ran {
            let outcome = match (a.status, a.attempts.last()) {
                (AgentStatus::Succeeded, _) => "✅ succeeded".to_owned(),
                (AgentStatus::Failed, Some(last)) => format!("❌ {}", last.outcome()),
                (st, _) => st.as_str().to_owned(),
            };
            let time = a.duration_s.map(|d| format!("{d:.1}s")).unwrap_or_else(|| "—".into());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {time} | {} |",
                cell(&p.name),
                cell(name),
                cell(&crate::markup::inline(&outcome)),
                a.attempts.len(),
                cell(&crate::markup::code(&a.transcript))
            );
        }
    }
    let gates: Vec<_> = wf
        .phases
        .iter()
        .filter(|p| p.requires_consensus)
        .filter_map(|p| state.phases.get(&p.name).and_then(|ps| ps.gate.as_ref().map(|g| (p, ps, g))))
        .collect();
    if !gates.is_empty() {
        s.push_str("\n### Approval gates\n\n");
        for (p, ps, g) in gates {
            // Text from the state: a link only when it is a plain web address.
            let request = if plain_url(&g.request) {
                format!("[the request]({})", g.request)
            } else {
                crate::markup::code(&g.request)
            };
            match &g.decision {
                Some(d) => {
                    let verb = if d.approved { "approved" } else { "rejected" };
                    let on = d
                        .commit
                        .as_deref()
                        .map(|c| format!(" on {}", crate::markup::code(crate::markup::prefix(c, 12))))
                        .unwrap_or_default();
                    let why =
                        d.reason.as_deref().map(|r| format!(": {}", crate::markup::inline(r))).unwrap_or_default();
                    let by = crate::markup::inline(&d.by);
                    let _ = writeln!(s, "- `{}`: {verb} by **{by}**{on} ({request}){why}", p.name);
                }
                None if ps.status == PhaseStatus::AwaitingApproval => {
                    let (approve, reject) = wf.labels(&p.name);
                    let how = if g.request.starts_with("http") {
                        format!("a reviewer adds the label `{approve}` or `{reject}` to the pull request")
                    } else {
                        format!(
                            "`orchestrator run approve --phase {0}` or `orchestrator run reject --phase {0}`",
                            p.name
                        )
                    };
                    let _ = writeln!(s, "- `{}`: ⏸️ awaiting approval ({request}); to decide, {how}", p.name);
                }
                None => {}
            }
        }
    }
    s.push('\n');
    s
}

/// Whether `s` is a web address that cannot break out of a Markdown link: `http(s)://`, then
/// only characters a URL needs (no space, parenthesis, bracket, quote or markup).
fn plain_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~:/?#=&%+".contains(c))
}

fn phase_icon(s: PhaseStatus) -> &'static str {
    match s {
        PhaseStatus::Succeeded | PhaseStatus::Approved => "✅",
        PhaseStatus::Failed | PhaseStatus::Rejected => "❌",
        PhaseStatus::AwaitingApproval => "⏸️",
        PhaseStatus::Running => "▶️",
        PhaseStatus::Pending => "·",
    }
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_are_listed_for_upload() {
        assert!(listable("/ws/docs/PLAN.md"));
        assert!(listable("/ws/a b/c-d_e.txt"));
        for bad in [
            "/ws/x\n/etc/passwd",
            "/ws/x\r/y",
            "/ws/**",
            "/ws/a?b",
            "/ws/[x]",
            "/ws/{a,b}",
            "/ws/!x",
            "/ws/#x",
            "/ws/a\\b",
        ] {
            assert!(!listable(bad), "{bad:?}");
        }
    }
}
