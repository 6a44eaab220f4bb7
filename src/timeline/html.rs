//! `run report --html`: one self-contained HTML file about a run, readable offline: the timeline
//! (SVG bars, a tooltip per attempt), the metrics, each agent's outcome and attempts with the
//! tail of its transcript, and the gates' history. No script at all, no external resource: a
//! Content-Security-Policy allows nothing but the one stylesheet (by its hash), so even text that
//! escaped escaping could neither run nor fetch anything.
//!
//! Every text from the state or a transcript is redacted, then HTML-escaped, with control and
//! invisible characters shown as `\u{…}`; nothing from the data goes into an attribute but
//! numbers and the tool's own class names.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::Digest as _;
use std::fmt::Write as _;

use super::{AgentRow, GateOutcome, Outcome, Timeline, duration};
use crate::config::Workflow;
use crate::executor::Redactor;
use crate::state::RunState;

/// How much of a transcript's end the report shows, per agent.
pub(crate) const TAIL_BYTES: u64 = 4096;
const TAIL_LINES: usize = 40;
/// Width of the bars' coordinate space; bars scale with the page.
const SCALE: f64 = 1000.0;

const STYLE: &str = "
:root{color-scheme:light dark;--ok:#2da44e;--retried:#d4a72c;--failed:#cf222e;--timedout:#bc4c00;--interrupted:#8c959f;--running:#0969da;--gate:#8250df;--line:#d0d7de}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em}
h1{font-size:1.5em;margin-bottom:.2em}h2{border-bottom:1px solid var(--line);padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid var(--line);padding:.25em .6em;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{white-space:pre-wrap;word-break:break-all;border:1px solid var(--line);padding:.5em;max-height:30em;overflow:auto}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;color:#fff;background:var(--interrupted)}
.badge.completed,.badge.approved,.badge.succeeded{background:var(--ok)}.badge.failed,.badge.rejected{background:var(--failed)}
.badge.awaiting_approval,.badge.waiting{background:var(--gate)}.badge.running{background:var(--running)}
.row{display:grid;grid-template-columns:minmax(8em,16em) 1fr minmax(10em,18em);gap:.6em;align-items:center;min-height:16px}
.row .label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.row.phase .label{font-weight:600}.row .label.agent{padding-left:1.2em}
.row .note{font-size:12px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
svg.track{display:block;width:100%;height:14px;background:repeating-linear-gradient(90deg,transparent 0 10%,rgba(127,127,127,.08) 10% 10.1%)}
rect.span{fill:var(--line)}rect.ok{fill:var(--ok)}rect.retried{fill:var(--retried)}rect.failed{fill:var(--failed)}
rect.timedout{fill:var(--timedout)}rect.interrupted{fill:var(--interrupted)}rect.running{fill:var(--running)}
rect.gate{fill:var(--gate);opacity:.55}rect.gate.rejected{fill:var(--failed)}rect.gate.approved{fill:var(--ok)}
.axis{display:grid;grid-template-columns:minmax(8em,16em) 1fr minmax(10em,18em);gap:.6em;font-size:12px}.axis span.end{text-align:right}
.legend span{margin-right:1.2em}.legend svg{width:1.2em;height:.8em;vertical-align:middle}
details{margin:.3em 0}summary{cursor:pointer}
";

/// `s`, redacted, as HTML text: markup escaped, control and invisible characters as `\u{…}`
/// (line breaks and tabs kept when `multiline`).
fn text(redactor: &Redactor, s: &str, multiline: bool) -> String {
    let s = redactor.redact_str(s);
    let s = crate::runner_log::strip_ansi(&s);
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if let Some(entity) = crate::markup::html_entity(c) {
            out.push_str(entity);
            continue;
        }
        match c {
            '\n' | '\t' if multiline => out.push(c),
            c if c.is_control() || crate::markup::invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The Content-Security-Policy: nothing but this stylesheet.
pub(crate) fn csp() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'"
    )
}

/// The last lines of a transcript (see [`crate::transcript`]: only a regular file in the
/// transcripts' folder, reached without symlinks; never another file a state names).
fn tail(folder: Option<&crate::transcript::Folder>, rel: &str) -> Option<String> {
    let t = folder?.tail(rel, TAIL_BYTES)?;
    let lines: Vec<&str> = t.text.lines().collect();
    Some(lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n"))
}

fn rect(out: &mut String, t: &Timeline, a: DateTime<Utc>, b: DateTime<Utc>, class: &str, title: &str) {
    // At least two thousandths wide, so an instant still shows; kept inside the track.
    let w = ((t.position(b) - t.position(a)) * SCALE).max(2.0);
    let x = (t.position(a) * SCALE).min(SCALE - w).max(0.0);
    let _ = write!(
        out,
        "<rect class=\"{class}\" x=\"{x:.1}\" y=\"1\" width=\"{w:.1}\" height=\"12\"><title>{title}</title></rect>"
    );
}

fn track(inner: &str) -> String {
    format!(
        "<svg class=\"track\" viewBox=\"0 0 {SCALE} 14\" preserveAspectRatio=\"none\" role=\"img\" aria-hidden=\"false\">{inner}</svg>"
    )
}

fn timeline_rows(t: &Timeline, r: &Redactor) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<div class=\"axis\"><span></span><span class=\"range\"><span>{}</span> → <span>{}</span> ({})</span><span></span></div>",
        when(t.start),
        when(t.end),
        duration(t.seconds())
    );
    for p in &t.phases {
        let mut bars = String::new();
        if let Some((a, b)) = p.span() {
            let x = t.position(a) * SCALE;
            let w = (t.position(b) * SCALE - x).max(2.0);
            let _ = write!(bars, "<rect class=\"span\" x=\"{x:.1}\" y=\"6\" width=\"{w:.1}\" height=\"2\"></rect>");
        }
        let span = p.span().map(|(a, b)| super::secs(a, b)).unwrap_or(0.0);
        let _ = writeln!(
            s,
            "<div class=\"row phase\"><span class=\"label\">{}</span>{}<span class=\"note\">{} · {}</span></div>",
            text(r, &p.name, false),
            track(&bars),
            p.status.as_str(),
            duration(span)
        );
        for a in &p.agents {
            let mut bars = String::new();
            for b in &a.bars {
                let title = format!(
                    "{} run {} attempt {}: {} · {} · from {}",
                    text(r, &a.name, false),
                    b.run,
                    b.attempt,
                    text(r, &b.detail, false),
                    duration(b.seconds()),
                    when(b.start)
                );
                rect(&mut bars, t, b.start, b.end, &format!("bar {}", b.outcome.class()), &title);
            }
            let _ = writeln!(
                s,
                "<div class=\"row agent\"><span class=\"label agent\">{}</span>{}<span class=\"note\">{}</span></div>",
                text(r, &a.name, false),
                track(&bars),
                agent_note(a)
            );
        }
        for g in &p.gates {
            let mut bars = String::new();
            let word = g.outcome.word();
            let title = format!("gate round {} {word} · {} · from {}", g.round, duration(g.seconds()), when(g.start));
            rect(&mut bars, t, g.start, g.end, &format!("gate {word}"), &title);
            let label = if p.gates.len() > 1 { format!("gate {}", g.round) } else { "gate".to_owned() };
            let _ = writeln!(
                s,
                "<div class=\"row gate\"><span class=\"label agent\">{label}</span>{}<span class=\"note\">{word} · {}</span></div>",
                track(&bars),
                duration(g.seconds())
            );
        }
    }
    s
}

fn agent_note(a: &AgentRow) -> String {
    match a.bars.last() {
        None => a.status.as_str().to_owned(),
        Some(b) if b.outcome == Outcome::Running => "running at the last record".to_owned(),
        Some(b) => {
            let total: f64 = a.bars.iter().map(super::Bar::seconds).sum();
            let tries = if a.bars.len() > 1 { format!(" · {} attempts", a.bars.len()) } else { String::new() };
            format!("{} · {}{tries}", b.outcome.word(), duration(total))
        }
    }
}

fn legend() -> String {
    let mut s = String::from("<p class=\"legend\">");
    for o in Outcome::ALL {
        let _ = write!(
            s,
            "<span><svg viewBox=\"0 0 10 10\"><rect class=\"{}\" x=\"0\" y=\"0\" width=\"10\" height=\"10\"></rect></svg> {}</span>",
            o.class(),
            o.word()
        );
    }
    s.push_str("<span><svg viewBox=\"0 0 10 10\"><rect class=\"gate\" x=\"0\" y=\"0\" width=\"10\" height=\"10\"></rect></svg> gate wait</span></p>\n");
    s
}

fn metrics(wf: &Workflow, state: &RunState, as_of: DateTime<Utc>, r: &Redactor) -> String {
    let m = crate::report::metrics::compute(wf, state, as_of);
    let mut s = String::from("<table class=\"metrics\"><tr><th>run duration</th><th>attempts</th><th>retries</th>");
    let usage = &m.usage;
    let has_usage = usage.input_tokens.is_some() || usage.output_tokens.is_some() || usage.cost_usd.is_some();
    if has_usage {
        s.push_str("<th>input tokens</th><th>output tokens</th><th>cost (USD)</th>");
    }
    if m.cleanliness_score.is_some() {
        s.push_str("<th>cleanliness</th>");
    }
    let _ = write!(
        s,
        "</tr><tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
        duration(m.duration_s),
        m.total_attempts,
        m.total_retries
    );
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "—".into());
    if has_usage {
        let _ = write!(
            s,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            opt(usage.input_tokens),
            opt(usage.output_tokens),
            usage.cost_usd.map(|c| format!("{c:.4}")).unwrap_or_else(|| "—".into())
        );
    }
    if let Some(score) = m.cleanliness_score {
        let _ = write!(
            s,
            "<td class=\"n\">{score:.1} ({})</td>",
            text(r, m.cleanliness_grade.as_deref().unwrap_or(""), false)
        );
    }
    s.push_str("</tr></table>\n<table class=\"phases\"><tr><th>phase</th><th>status</th><th>duration</th><th>agents succeeded</th><th>attempts</th><th>retries</th><th>artifacts</th><th>validation</th><th>gate wait</th></tr>\n");
    for phase in &wf.phases {
        let Some(p) = m.phases.get(&phase.name) else { continue };
        let ok = p.agent_outcomes.values().filter(|o| **o == crate::state::AgentStatus::Succeeded).count();
        let attempts: usize = p.attempts.values().map(Vec::len).sum();
        let retries: u64 = p.agent_retries.values().sum();
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td><span class=\"badge {}\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{ok}/{}</td><td class=\"n\">{attempts}</td><td class=\"n\">{retries}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            text(r, &p.phase_name, false),
            status_class(p.status),
            p.status.as_str(),
            duration(p.duration_s),
            phase.agents.len(),
            p.artifacts_count,
            p.validation_status,
            p.gate_wait_s.map(duration).unwrap_or_else(|| "—".into())
        );
    }
    s.push_str("</table>\n");
    s
}

fn status_class(s: crate::state::PhaseStatus) -> &'static str {
    use crate::state::PhaseStatus::*;
    match s {
        Pending => "pending",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        AwaitingApproval => "awaiting_approval",
        Approved => "approved",
        Rejected => "rejected",
    }
}

fn agents(t: &Timeline, wf: &Workflow, r: &Redactor) -> String {
    // Opened once for every transcript read.
    let folder = crate::transcript::Folder::for_reading(&wf.root);
    let mut s = String::new();
    for p in t.phases.iter().filter(|p| !p.agents.is_empty()) {
        let _ = writeln!(s, "<h3 id=\"phase-{0}\">{0}</h3>", text(r, &p.name, false));
        if let Some(e) = &p.error {
            let _ = writeln!(s, "<p>The phase failed: {}</p>", text(r, e, false));
        }
        for a in &p.agents {
            let outcome = a.outcome().map(|o| o.class()).unwrap_or("interrupted");
            let _ = writeln!(
                s,
                "<details class=\"agent\"><summary><strong>{}</strong> <span class=\"badge {}\">{}</span> · {} · transcript <code>{}</code></summary>",
                text(r, &a.name, false),
                if outcome == "ok" { "succeeded" } else { outcome },
                a.outcome().map(|o| o.word()).unwrap_or(a.status.as_str()),
                agent_note(a),
                text(r, &a.transcript, false)
            );
            s.push_str("<table><tr><th>attempt</th><th>started</th><th>time</th><th>outcome</th><th>retried because</th></tr>\n");
            for b in &a.bars {
                let _ = writeln!(
                    s,
                    "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                    if b.run != p.runs { format!("{} (run {})", b.attempt, b.run) } else { b.attempt.to_string() },
                    when(b.start),
                    duration(b.seconds()),
                    text(r, &b.detail, false),
                    b.retry_reason.as_deref().map(|x| text(r, x, false)).unwrap_or_default()
                );
            }
            s.push_str("</table>\n");
            match (!a.transcript.is_empty()).then(|| tail(folder.as_ref(), &a.transcript)).flatten() {
                Some(tail) if !tail.is_empty() => {
                    let _ = writeln!(s, "<pre class=\"tail\">{}</pre>", text(r, &tail, true));
                }
                Some(_) => s.push_str("<p>The transcript is empty.</p>\n"),
                None => s.push_str(
                    "<p>The transcript is not readable here (missing, or not a plain file in the transcripts' folder).</p>\n",
                ),
            }
            s.push_str("</details>\n");
        }
    }
    s
}

fn gates(t: &Timeline, r: &Redactor) -> String {
    let gated: Vec<_> = t.phases.iter().flat_map(|p| p.gates.iter().map(move |g| (p, g))).collect();
    if gated.is_empty() {
        return "<p>No phase has reached an approval gate.</p>\n".into();
    }
    let mut s = String::from(
        "<table class=\"gates\"><tr><th>phase</th><th>round</th><th>requested</th><th>request</th><th>waited</th><th>decision</th><th>by</th><th>on commit</th><th>reason</th></tr>\n",
    );
    for (p, g) in gated {
        let decided = match g.outcome {
            GateOutcome::Waiting => "waiting".to_owned(),
            o => format!("{} at {}", o.word(), when(g.end)),
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"n\">{}</td><td><span class=\"badge {}\">{}</span></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            text(r, &p.name, false),
            g.round.max(1),
            when(g.start),
            text(r, &g.request, false),
            duration(g.seconds()),
            g.outcome.word(),
            decided,
            g.by.as_deref().map(|b| text(r, b, false)).unwrap_or_default(),
            g.commit.as_deref().map(|c| text(r, crate::markup::prefix(c, 12), false)).unwrap_or_default(),
            g.reason.as_deref().map(|x| text(r, x, false)).unwrap_or_default()
        );
    }
    s.push_str("</table>\n");
    s
}

/// The report of `state` as one HTML document, drawn at `as_of` (a gate that waits, waits until
/// then).
pub(crate) fn render(wf: &Workflow, state: &RunState, as_of: DateTime<Utc>, redactor: &Redactor) -> String {
    let t = Timeline::build(wf, state, as_of);
    let r = redactor;
    let run = text(r, &t.run_id, false);
    let status = t.status.as_str();
    let status_cls = format!("{:?}", t.status).to_ascii_lowercase().replace("awaitingapproval", "awaiting_approval");
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"orchestrator {}\">\n<title>orchestrator run {run}: {status}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        csp(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        s,
        "<header><h1>orchestrator run <code>{run}</code> <span class=\"badge {status_cls}\">{status}</span></h1>\n<p>Started {}; {} {} ({}). {} attempts in {} phases{}. Drawn from the run state at {}.</p></header>",
        when(state.started_at),
        if state.finished_at.is_some() { "finished" } else { "last recorded" },
        when(state.finished_at.unwrap_or(t.last_record)),
        duration(t.seconds()),
        t.attempts(),
        t.phases.len(),
        if state.phases.values().any(|p| !p.earlier.is_empty()) {
            " (earlier runs of a phase included; the metrics count the latest runs)"
        } else {
            ""
        },
        when(as_of)
    );
    let _ = writeln!(s, "<section id=\"timeline\"><h2>Timeline</h2>\n{}{}</section>", legend(), timeline_rows(&t, r));
    let _ = writeln!(s, "<section id=\"metrics\"><h2>Metrics</h2>\n{}</section>", metrics(wf, state, as_of, r));
    let _ = writeln!(s, "<section id=\"agents\"><h2>Agents</h2>\n{}</section>", agents(&t, wf, r));
    let _ = writeln!(s, "<section id=\"gates\"><h2>Approval gates</h2>\n{}</section>", gates(&t, r));
    s.push_str("</body>\n</html>\n");
    // Every piece was redacted before it was escaped; a last pass catches any a secret spans.
    redactor.redact_str(&s)
}

/// Where `run report --html` writes by default, relative to the workspace.
pub(crate) fn default_path(run_id: &str) -> String {
    format!("reports/run_{run_id}.html")
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn report() -> String {
        let (mut wf, state, as_of) = fixture::run();
        let dir = tempfile::tempdir().unwrap();
        wf.root = dir.path().to_path_buf();
        let log = dir.path().join(".claude/logs/agents");
        std::fs::create_dir_all(&log).unwrap();
        std::fs::write(log.join("20260101_120000_review_critic.log"), format!("line one\n{}\n", fixture::HOSTILE))
            .unwrap();
        std::fs::write(log.join("20260101_120000_development_builder.log"), "x".repeat(10_000) + "\nlast words\n")
            .unwrap();
        // A transcript replaced by a link to a file outside the workspace is not read.
        let secret = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret.path(), "TOP-SECRET-CONTENT").unwrap();
        std::os::unix::fs::symlink(secret.path(), log.join("20260101_120000_development_tester.log")).unwrap();
        let mut redactor = Redactor::default();
        redactor.add("hunter2-secret-value");
        let mut state = state;
        state.phases.get_mut("review").unwrap().error = Some("leaked hunter2-secret-value here".into());
        render(&wf, &state, as_of, &redactor)
    }

    #[test]
    fn agent_text_is_escaped_and_nothing_can_run() {
        let html = report();
        assert!(!html.contains("<script"), "no script element at all");
        assert!(!html.contains("<img"), "no markup from the data");
        // Every tag is one the report writes: none comes from the data.
        let allowed = [
            "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "code",
            "span", "section", "div", "svg", "rect", "table", "tr", "th", "td", "details", "summary", "strong", "pre",
        ];
        for tag in html.split('<').skip(1) {
            let name: String =
                tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '!').collect();
            let name = name.trim_start_matches('!');
            assert!(
                allowed.iter().any(|a| a.trim_start_matches('!') == name),
                "unexpected tag <{}",
                &tag[..tag.len().min(40)]
            );
        }
        // No tag has an event handler (the escaped `onerror=` is text, outside any tag).
        for tag in html.split('<').skip(1).map(|t| t.split('>').next().unwrap_or("")) {
            assert!(!tag.contains(" on"), "an event handler in <{tag}>");
        }
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "shown, escaped");
        assert!(!html.contains('\u{1b}'), "no escape sequence");
        assert!(!html.contains("hunter2-secret-value"), "secrets are redacted");
        assert!(!html.contains("TOP-SECRET-CONTENT"), "a symlinked transcript is not followed");
        assert!(html.contains("last words") && !html.contains(&"x".repeat(5000)), "only the tail");
        assert!(html.contains(&format!("content=\"{}\"", csp())));
        assert!(!html.contains("http://") || !html.contains("src=\"http"), "nothing is fetched");
        // Attributes hold only the tool's own values: no quote from the data closes one.
        for attr in html.split(" class=\"").skip(1) {
            let value = attr.split('"').next().unwrap();
            assert!(value.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '_' || c == '-'), "{value}");
        }
    }

    #[test]
    fn the_stylesheet_matches_its_hash() {
        let html = report();
        let style = html.split("<style>").nth(1).unwrap().split("</style>").next().unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style.as_bytes()));
        assert!(csp().contains(&hash));
    }

    #[test]
    fn every_attempt_and_gate_is_drawn() {
        let html = report();
        assert_eq!(html.matches("<rect class=\"bar ").count(), 5, "planner, builder twice, tester, critic");
        assert_eq!(html.matches("<rect class=\"gate ").count(), 2);
        assert!(html.contains("<h3 id=\"phase-development\">development</h3>"));
    }
}
