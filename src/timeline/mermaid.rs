//! The timeline as a Mermaid Gantt chart in Markdown, which GitHub draws in job summaries and
//! comments: a section per phase, a bar per agent attempt (retries, timeouts and failures in the
//! label and the bar's style), and a bar for each gate's wait.
//!
//! Mermaid reads its own syntax inside labels (`:` ends a label, `#` and `%%` start comments,
//! `;` ends a statement, `%%{…}%%` is a directive, a line starting with `click` or `call` binds a
//! link or a script), so labels keep only a safe set of characters and never start with one of
//! its keywords. Agent-derived text (outcome messages, reasons, reviewers) never enters a label:
//! labels are built from names, numbers and the tool's own words.
//!
//! Size: past `bars_per_phase` attempts, a phase's attempts are drawn as one bar per outcome,
//! and the text under the chart says so; a chart still over `max_chars` draws every phase that
//! way, then leaves out the earliest phases, saying which.

use std::fmt::Write as _;

use super::{GateOutcome, Outcome, PhaseLane, Timeline, duration};

/// How much a chart may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Attempts a phase may draw one by one; past this, one bar per outcome.
    pub bars_per_phase: usize,
    /// The whole section (chart and notes), in bytes.
    pub max_chars: usize,
}

impl Limits {
    /// In the gate comment, which has a checklist and diffs to keep room for.
    pub(crate) const COMMENT: Limits = Limits { bars_per_phase: 30, max_chars: 12_000 };
    /// In the job summary: under Mermaid's `maxTextSize` (50,000 characters by default, as
    /// GitHub draws it), past which Mermaid draws an error instead of the chart.
    pub(crate) const SUMMARY: Limits = Limits { bars_per_phase: 60, max_chars: 48_000 };
}

/// Words Mermaid's Gantt lexer reads at the start of a line (case-insensitively).
const KEYWORDS: [&str; 19] = [
    "gantt",
    "dateformat",
    "inclusiveenddates",
    "topaxis",
    "axisformat",
    "tickinterval",
    "includes",
    "excludes",
    "todaymarker",
    "weekday",
    "weekend",
    "title",
    "acctitle",
    "accdescr",
    "section",
    "click",
    "call",
    "href",
    "displaymode",
];

/// `s` as a Mermaid label: letters, digits, space, `_ . - /` only (anything else becomes a
/// space), on one line, at most 60 characters, never starting with a keyword or a symbol.
pub(crate) fn label(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/') { c } else { ' ' })
        .collect();
    let mut out = mapped.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > 60 {
        out.truncate(60);
        out = out.trim_end().to_owned();
    }
    let lower = out.to_ascii_lowercase();
    if out.is_empty()
        || !out.starts_with(|c: char| c.is_ascii_alphanumeric())
        || KEYWORDS.iter().any(|k| lower.starts_with(k))
    {
        out = format!("n {out}").trim_end().to_owned();
    }
    out
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

fn tags(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "",
        Outcome::Retried => "active, ",
        Outcome::Failed | Outcome::TimedOut => "crit, ",
        Outcome::Interrupted => "done, ",
        Outcome::Running => "active, ",
    }
}

/// A bar's words: `builder 2 timed out 5m 00s`, `builder 1 exit 75 retried 2s`.
fn attempt_words(agent: &str, attempt: u32, outcome: Outcome, exit: Option<i32>, secs: f64) -> String {
    let exit = match (outcome, exit) {
        (Outcome::Retried | Outcome::Failed, Some(c)) => format!(" exit {c}"),
        _ => String::new(),
    };
    let word = match outcome {
        Outcome::Running => "running at the last record".to_owned(),
        o => format!("{} {}", o.word(), duration(secs)),
    };
    format!("{agent} {attempt}{exit} {word}")
}

/// One phase's section; `grouped` draws one bar per outcome.
fn section(t: &Timeline, p: &PhaseLane, grouped: bool, next_id: &mut usize) -> String {
    let mut s = format!("    section {}\n", label(&p.name));
    let mut task = |s: &mut String, words: String, tags: &str, start, end| {
        *next_id += 1;
        let _ = writeln!(s, "    {} :{tags}t{}, {}, {}", label(&words), next_id, ms(start), ms(end));
    };
    if grouped {
        for g in p.groups() {
            let words = format!(
                "{} attempt{} {} {}",
                g.attempts,
                if g.attempts == 1 { "" } else { "s" },
                g.outcome.word(),
                duration(super::secs(g.start, g.end))
            );
            task(&mut s, words, tags(g.outcome), g.start.max(t.start), g.end.max(g.start));
        }
    } else {
        for b in p.bars() {
            let who = if b.run != p.runs { format!("{} run {}", b.agent, b.run) } else { b.agent.clone() };
            task(
                &mut s,
                attempt_words(&who, b.attempt, b.outcome, b.exit_code, b.seconds()),
                tags(b.outcome),
                b.start.max(t.start),
                b.end.max(b.start),
            );
        }
    }
    for g in &p.gates {
        let tags = match g.outcome {
            GateOutcome::Waiting => "active, ",
            GateOutcome::Approved | GateOutcome::Superseded => "done, ",
            GateOutcome::Rejected => "crit, done, ",
        };
        let round = if p.gates.len() > 1 { format!(" round {}", g.round) } else { String::new() };
        let words = match g.outcome {
            GateOutcome::Waiting => format!("gate{round} waiting {}", duration(g.seconds())),
            o => format!("gate{round} {} after {}", o.word(), duration(g.seconds())),
        };
        task(&mut s, words, tags, g.start, g.end);
    }
    s
}

/// The timeline as Markdown: a ```` ```mermaid ```` block and the notes under it, within
/// `limits`. Empty when nothing has run.
pub(crate) fn render(t: &Timeline, limits: &Limits) -> String {
    let drawn: Vec<&PhaseLane> = t.phases.iter().filter(|p| p.attempts() > 0 || !p.gates.is_empty()).collect();
    if drawn.is_empty() {
        return String::new();
    }
    let span = t.seconds();
    let axis = if span >= 86_400.0 {
        "%m-%d %H:%M"
    } else if span >= 3_600.0 {
        "%H:%M"
    } else {
        "%H:%M:%S"
    };
    let head = format!(
        "```mermaid\ngantt\n    title {}\n    dateFormat x\n    axisFormat {axis}\n    todayMarker off\n",
        label(&format!("run {} {}", t.run_id, t.status.as_str()))
    );
    let foot = "```\n";
    let mut notes = String::new();
    // First one bar per attempt where a phase has few enough, then every phase grouped, then
    // only the latest phases that fit.
    let mut id = 0;
    let mut sections: Vec<(String, bool)> = drawn
        .iter()
        .map(|p| {
            let grouped = p.attempts() > limits.bars_per_phase;
            (section(t, p, grouped, &mut id), grouped)
        })
        .collect();
    let size = |sections: &[(String, bool)]| sections.iter().map(|(s, _)| s.len()).sum::<usize>();
    let note_room = 600;
    let budget = limits.max_chars.saturating_sub(head.len() + foot.len() + note_room);
    // Grouped to fit, not (only) for having many attempts: the notes say which.
    let squeezed = size(&sections) > budget;
    if squeezed {
        id = 0;
        sections = drawn.iter().map(|p| (section(t, p, true, &mut id), true)).collect();
    }
    // The latest phases that fit (at least one), counted from the end: linear in phases.
    let mut skipped = sections.len();
    let mut total = 0;
    for (i, (s, _)) in sections.iter().enumerate().rev() {
        if total + s.len() > budget && skipped < sections.len() {
            break;
        }
        total += s.len();
        skipped = i;
    }
    sections.drain(..skipped);
    let grouped: Vec<&PhaseLane> =
        drawn.iter().skip(skipped).zip(&sections).filter(|(_, (_, g))| *g).map(|(p, _)| *p).collect();
    if grouped.len() > 3 && squeezed {
        let _ = writeln!(notes, "- {} phases are drawn as one bar per outcome each, to fit.", grouped.len());
    } else if grouped.len() > 3 {
        let _ = writeln!(
            notes,
            "- {} phases have more than {} attempts each: each is drawn as one bar per outcome.",
            grouped.len(),
            limits.bars_per_phase
        );
    } else {
        for p in grouped {
            let why = if p.attempts() > limits.bars_per_phase {
                format!("more than {} to draw one by one", limits.bars_per_phase)
            } else {
                "to fit".to_owned()
            };
            let _ = writeln!(
                notes,
                "- {}: {} attempts, drawn as one bar per outcome ({why}).",
                crate::markup::code(&p.name),
                p.attempts()
            );
        }
    }
    if skipped > 0 {
        let _ = writeln!(
            notes,
            "- The first {skipped} phase{} ({}) not drawn: the chart would be too large.",
            if skipped == 1 { " is" } else { "s are" },
            drawn[..skipped].iter().take(5).map(|p| crate::markup::code(&p.name)).collect::<Vec<_>>().join(", ")
                + if skipped > 5 { ", …" } else { "" }
        );
    }
    let mut out = head;
    for (s, _) in &sections {
        out.push_str(s);
    }
    out.push_str(foot);
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes);
    }
    if out.len() > limits.max_chars {
        // One phase alone is over the limit (a limit smaller than any chart): say so instead.
        let msg = "The timeline is too large to draw here; `orchestrator run report --html` draws it.\n";
        return if msg.len() <= limits.max_chars { msg.to_owned() } else { String::new() };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Timeline, fixture};
    use super::*;

    #[test]
    fn the_fixed_run_as_a_gantt_chart() {
        let (wf, state, as_of) = fixture::run();
        let t = Timeline::build(&wf, &state, as_of);
        insta::assert_snapshot!(render(&t, &Limits::SUMMARY));
    }

    #[test]
    fn labels_keep_a_safe_charset_and_never_start_with_a_keyword() {
        assert_eq!(label("builder 2 timed out 5m 00s"), "builder 2 timed out 5m 00s");
        assert_eq!(label(fixture::HOSTILE), "x - x ok script alert 1 /script img src x onerror alert 1 in");
        for bad in
            ["click x", "CALL y", "section z", "%%{init}%%", "title t", "", "#", "::error::x", "accTitle: y", " href x"]
        {
            let l = label(bad);
            let lower = l.to_ascii_lowercase();
            assert!(!KEYWORDS.iter().any(|k| lower.starts_with(k)), "{bad:?} -> {l:?}");
            assert!(l.starts_with(|c: char| c.is_ascii_alphanumeric()), "{bad:?} -> {l:?}");
            assert!(!l.contains([':', '#', ';', '%', '{', '}', '(', ')', '"', '`', '<', '>', '\n']), "{l:?}");
        }
        assert_eq!(label("click"), "n click");
        assert!(label(&"a".repeat(500)).len() <= 60);
    }

    #[test]
    fn hostile_text_in_the_state_never_reaches_the_chart() {
        let (wf, state, as_of) = fixture::run();
        let out = render(&Timeline::build(&wf, &state, as_of), &Limits::SUMMARY);
        let chart = out.split("```").nth(1).unwrap();
        for line in chart.lines().skip(1).filter(|l| !l.trim_start().starts_with("axisFormat")) {
            let l = line.trim_start();
            assert!(!l.contains(['#', ';', '%', '{', '}', '<', '>', '`', '"', '@']), "{line}");
            let lower = l.to_ascii_lowercase();
            assert!(!lower.starts_with("click") && !lower.starts_with("call"), "{line}");
            // A label, then the tool's own data after the one colon.
            if !["gantt", "title", "dateFormat", "axisFormat", "todayMarker", "section"]
                .iter()
                .any(|k| l.starts_with(k))
            {
                assert_eq!(l.matches(':').count(), 1, "{line}");
            }
        }
        assert!(!out.contains("::error::") && !out.contains("<script") && !out.contains('\u{1b}'));
    }

    #[test]
    fn five_hundred_agents_are_grouped_by_outcome_and_the_notes_say_so() {
        let (wf, state, as_of) = fixture::wide(500);
        let t = Timeline::build(&wf, &state, as_of);
        let out = render(&t, &Limits::COMMENT);
        assert!(out.len() <= Limits::COMMENT.max_chars, "{}", out.len());
        let bars = out.lines().filter(|l| l.contains(" :")).count();
        assert_eq!(bars, 4, "succeeded, retried, failed, and the gate:\n{out}");
        let attempts = t.attempts();
        assert!(out.contains(&format!("`swarm`: {attempts} attempts, drawn as one bar per outcome")), "{out}");
        insta::assert_snapshot!(out);
    }

    #[test]
    fn many_phases_keep_the_latest_within_the_budget_and_say_so() {
        let (wf, state, as_of) = fixture::run();
        let t = Timeline::build(&wf, &state, as_of);
        let full = render(&t, &Limits::SUMMARY);
        let tight = Limits { bars_per_phase: 30, max_chars: full.len() - 200 };
        let out = render(&t, &tight);
        assert!(out.len() <= tight.max_chars, "{out}");
        assert!(out.contains("section review"), "the latest phase stays:\n{out}");
        assert!(out.contains("not drawn"), "{out}");
        let small = render(&t, &Limits { bars_per_phase: 30, max_chars: 300 });
        assert!(small.len() <= 300 && small.contains("run report --html"), "{small}");
        assert_eq!(render(&t, &Limits { bars_per_phase: 30, max_chars: 50 }), "");
    }
}
