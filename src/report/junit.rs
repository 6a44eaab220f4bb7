//! `reports/junit.xml`, written with junit-report: a testsuite per phase; a testcase per agent
//! (retries inside the case, never as extra cases) and per artifact pattern. What GitHub's JUnit
//! report actions read is set: suite `name`/`time`, case `name`/`classname`/`time`/`file`,
//! `failure` with a short `message` and the retry history as its text.

use junit_report::{Duration, OffsetDateTime, Report, TestCase, TestCaseBuilder, TestSuite};

use crate::config::Workflow;
use crate::executor::Redactor;
use crate::state::{AgentState, AgentStatus, Attempt, PhaseStatus, RunState};
use crate::transcript::Folder;

/// How much of a transcript's end goes into `<system-out>`.
pub(crate) const SYSTEM_OUT_BYTES: u64 = 8 * 1024;

/// Text made safe for XML and for sharing: ANSI escapes removed, characters XML 1.0 forbids
/// dropped, the CDATA terminator broken up, secrets redacted.
pub(crate) fn clean(text: &str, redactor: &Redactor) -> String {
    static ANSI: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let ansi = ANSI.get_or_init(|| {
        regex::Regex::new(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]")
            .expect("valid regex")
    });
    let text = redactor.redact_str(text);
    let text = ansi.replace_all(&text, "");
    let text: String = text
        .chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}'))
        .collect();
    text.replace("]]>", "]] >")
}

fn seconds(s: f64) -> Duration {
    Duration::seconds_f64(if s.is_finite() && s >= 0.0 { s } else { 0.0 })
}

/// The last bytes of a transcript (see [`crate::transcript`]: only a plain file in the
/// transcripts' folder).
fn tail(folder: Option<&Folder>, rel: &str) -> String {
    match folder.and_then(|f| f.tail(rel, SYSTEM_OUT_BYTES)) {
        Some(t) if t.skipped > 0 => format!("[… {} earlier bytes in the transcript]\n{}", t.skipped, t.text),
        Some(t) => t.text,
        None => String::new(),
    }
}

fn history(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| {
            let mut line = format!("attempt {}: {} after {:.2}s", a.number, a.outcome(), a.duration_s);
            if let (Some(reason), Some(delay)) = (&a.retry_reason, a.retry_delay_s) {
                line.push_str(&format!("; retried after {delay:.2}s because {reason}"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn agent_case(phase: &str, name: &str, a: &AgentState, folder: Option<&Folder>, redactor: &Redactor) -> TestCase {
    let time = seconds(a.duration_s.unwrap_or(0.0));
    let attempts = a.attempts.len();
    let mut out = String::new();
    if attempts > 1 {
        out.push_str(&format!("{attempts} attempts:\n{}\n\n", history(&a.attempts)));
    }
    out.push_str(&tail(folder, &a.transcript));
    let mut case = match a.status {
        AgentStatus::Succeeded => TestCaseBuilder::success(name, time),
        AgentStatus::Failed => {
            let last = a.attempts.last();
            let kind = match last {
                Some(t) if t.timed_out => "timeout",
                Some(t) if t.error.is_some() => "error",
                Some(t) if t.exit_code.is_none() => "signal",
                _ => "exit-code",
            };
            let plural = if attempts == 1 { "" } else { "s" };
            let message = format!("{} ({attempts} attempt{plural})", last.map(Attempt::outcome).unwrap_or_default());
            let mut b = TestCaseBuilder::failure(name, time, kind, &clean(&message, redactor));
            b.set_trace(&clean(&history(&a.attempts), redactor));
            b
        }
        AgentStatus::Pending | AgentStatus::Running => {
            TestCaseBuilder::skipped_with_cause(name, "interrupted", "the agent did not finish (the run was stopped)")
        }
    };
    case.set_classname(phase).set_filepath(&a.transcript).set_system_out(&clean(&out, redactor));
    case.build()
}

/// Write the JUnit report for every phase that has run to `out`.
pub(crate) fn write(
    wf: &Workflow,
    state: &RunState,
    redactor: &Redactor,
    out: &mut dyn std::io::Write,
) -> Result<(), junit_report::Error> {
    let mut report = Report::new();
    let config = wf.config_path.display().to_string();
    // Opened once for every transcript read.
    let folder = Folder::for_reading(&wf.root);
    for phase in &wf.phases {
        let Some(ps) = state.phases.get(&phase.name) else { continue };
        if ps.status == PhaseStatus::Pending {
            continue;
        }
        let mut suite = TestSuite::new(&phase.name);
        if let Some(t) = ps.started_at.and_then(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()) {
            suite.set_timestamp(t);
        }
        for name in &phase.agents {
            match ps.agents.get(name) {
                // One that never started (the run was stopped while it waited in line) did not run.
                Some(a) if !(a.status == AgentStatus::Pending && a.attempts.is_empty()) => {
                    suite.add_testcase(agent_case(&phase.name, name, a, folder.as_ref(), redactor))
                }
                _ => {
                    let why = if ps.status == PhaseStatus::Running {
                        "the run stopped before this agent started"
                    } else {
                        "not run: an earlier agent of this sequential phase failed"
                    };
                    let mut case = TestCaseBuilder::skipped_with_cause(name, "not-run", why);
                    case.set_classname(&phase.name);
                    suite.add_testcase(case.build());
                }
            }
        }
        if let Some(v) = &ps.validation {
            for p in &v.patterns {
                let name = format!("artifact {}", p.pattern);
                let mut case = if p.files.is_empty() {
                    let mut b = TestCaseBuilder::failure(
                        &name,
                        Duration::ZERO,
                        "missing-artifact",
                        &format!("no file matches `{}`", p.pattern),
                    );
                    b.set_trace(&format!("phase `{}` requires at least one file matching `{}`", phase.name, p.pattern));
                    b
                } else {
                    let mut b = TestCaseBuilder::success(&name, Duration::ZERO);
                    b.set_system_out(&clean(&p.files.join("\n"), redactor));
                    b
                };
                case.set_classname(&phase.name).set_filepath(&config);
                suite.add_testcase(case.build());
            }
        }
        report.add_testsuite(suite);
    }
    report.write_xml(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_ansi_forbidden_characters_cdata_ends_and_secrets() {
        let mut r = Redactor::default();
        r.add("hunter2-secret");
        let dirty = "\x1b[31mred\x1b[0m \x00bell\x07 ]]> token hunter2-secret \u{FFFE}ok";
        assert_eq!(clean(dirty, &r), "red bell ]] > token *** ok");
    }
}
