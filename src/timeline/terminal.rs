//! The timeline in a terminal (`run status --timeline`): a row per phase, agent and gate, with
//! Unicode bars scaled to the width given, coloured or plain. Every outcome has its own glyph as
//! well as its colour, so the plain form (NO_COLOR, pipes) says as much.
//!
//! Names come from the config; the only untrusted text here (a reviewer's name) is shown with
//! control characters escaped, then neutralized (see [`crate::runner_log`]).

use std::fmt::Write as _;

use console::Style;

use super::{AgentRow, Bar, GateOutcome, Outcome, PhaseLane, Timeline, duration};

/// Agents a phase shows one per row; past this, one row per outcome.
pub(crate) const ROWS_PER_PHASE: usize = 40;

fn glyph(o: Outcome) -> char {
    match o {
        Outcome::Succeeded => '█',
        Outcome::Retried => '▒',
        Outcome::Failed | Outcome::TimedOut => '▓',
        Outcome::Interrupted | Outcome::Running => '░',
    }
}

fn outcome_style(o: Outcome) -> Style {
    match o {
        Outcome::Succeeded => Style::new().green(),
        Outcome::Retried => Style::new().yellow(),
        Outcome::Failed | Outcome::TimedOut => Style::new().red(),
        Outcome::Interrupted => Style::new().dim(),
        Outcome::Running => Style::new().cyan(),
    }
}

fn gate_style(o: GateOutcome) -> Style {
    match o {
        GateOutcome::Waiting => Style::new().yellow(),
        GateOutcome::Approved => Style::new().green(),
        GateOutcome::Rejected => Style::new().red(),
        GateOutcome::Superseded => Style::new().dim(),
    }
}

/// Untrusted text on one line: control characters shown as escapes, no workflow command.
fn safe(s: &str) -> String {
    let escaped: String =
        s.chars().flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] }).collect();
    crate::runner_log::neutralize(&escaped).into_owned()
}

/// A row of `width` cells: `(cell, char, style)` painted in order (later wins).
struct Track {
    cells: Vec<Option<(char, Style)>>,
}

impl Track {
    fn new(width: usize) -> Track {
        Track { cells: vec![None; width] }
    }

    /// Paint from `a` to `b` (positions 0..=1): at least one cell.
    fn paint(&mut self, a: f64, b: f64, c: char, st: &Style) {
        let w = self.cells.len();
        if w == 0 {
            return;
        }
        let start = ((a * w as f64).floor() as usize).min(w - 1);
        let end = ((b * w as f64).ceil() as usize).clamp(start + 1, w);
        for cell in &mut self.cells[start..end] {
            *cell = Some((c, st.clone()));
        }
    }

    fn draw(&self, colour: bool) -> String {
        let mut out = String::new();
        for cell in &self.cells {
            match cell {
                None => out.push(' '),
                Some((c, st)) => {
                    let _ = write!(out, "{}", st.clone().force_styling(colour).apply_to(c));
                }
            }
        }
        out
    }
}

struct Layout {
    label: usize,
    bar: usize,
    note: usize,
    colour: bool,
}

impl Layout {
    fn row(&self, out: &mut String, label: &str, track: &Track, note: &str, note_style: Option<&Style>) {
        let label = console::truncate_str(label, self.label, "…");
        let note = console::truncate_str(note, self.note, "…");
        let note = match note_style {
            Some(st) => st.clone().force_styling(self.colour).apply_to(note).to_string(),
            None => note.into_owned(),
        };
        let pad = self.label.saturating_sub(console::measure_text_width(&label));
        let line = format!("{label}{} {} {note}", " ".repeat(pad), track.draw(self.colour));
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn agent_note(a: &AgentRow) -> String {
    let Some(last) = a.bars.last() else { return a.status.as_str().to_owned() };
    let mut note = match (last.outcome, last.exit_code) {
        (Outcome::Failed, Some(c)) => format!("failed, exit {c}"),
        (Outcome::Running, _) => "running at last record".to_owned(),
        (o, _) => o.word().to_owned(),
    };
    if last.outcome != Outcome::Running {
        let _ = write!(note, " {}", duration(a.bars.iter().map(Bar::seconds).sum()));
    }
    if a.bars.len() > 1 {
        let _ = write!(note, ", {} attempts", a.bars.len());
    }
    note
}

/// The timeline in `width` columns; `colour` adds ANSI colours.
pub(crate) fn render(t: &Timeline, width: usize, colour: bool) -> String {
    let width = width.clamp(40, 400);
    let longest = t
        .phases
        .iter()
        .flat_map(|p| std::iter::once(p.name.len()).chain(p.agents.iter().map(|a| a.name.len() + 2)))
        .max()
        .unwrap_or(8);
    // Rows of a phase drawn by outcome: `  interrupted ×500`.
    let longest = if t.phases.iter().any(|p| p.agents.len() > ROWS_PER_PHASE) { longest.max(18) } else { longest };
    let label = longest.clamp(8, 24).min(width / 4);
    let note = (width / 3).clamp(12, 36);
    let bar = width.saturating_sub(label + note + 2).max(10);
    let l = Layout { label, bar, note, colour };
    let fit = |line: String| console::truncate_str(&line, width, "…").into_owned();
    let mut out = fit(format!("run {}: {}", safe(&t.run_id), t.status.as_str()));
    out.push('\n');
    out.push_str(&fit(format!(
        "{} → {} UTC ({})",
        t.start.format("%Y-%m-%d %H:%M:%S"),
        t.end.format(if t.end.date_naive() == t.start.date_naive() { "%H:%M:%S" } else { "%Y-%m-%d %H:%M:%S" }),
        duration(t.seconds())
    )));
    out.push('\n');
    // The legend, wrapped to the width.
    let keys = [
        (glyph(Outcome::Succeeded), outcome_style(Outcome::Succeeded), "succeeded"),
        (glyph(Outcome::Retried), outcome_style(Outcome::Retried), "retried"),
        (glyph(Outcome::Failed), outcome_style(Outcome::Failed), "failed or timed out"),
        (glyph(Outcome::Running), outcome_style(Outcome::Running), "running or interrupted"),
        ('┄', Style::new().yellow(), "gate wait"),
    ];
    let mut used = 0;
    for (c, st, words) in keys {
        let w = words.chars().count() + 2;
        if used > 0 && used + 2 + w > width {
            out.push('\n');
            used = 0;
        } else if used > 0 {
            out.push_str("  ");
            used += 2;
        }
        let _ = write!(out, "{} {words}", st.force_styling(colour).apply_to(c));
        used += w;
    }
    out.push_str("\n\n");
    if t.phases.iter().all(|p| p.attempts() == 0 && p.gates.is_empty()) {
        out.push_str("nothing has run yet\n");
        return out;
    }
    let dim = Style::new().dim();
    for p in t.phases.iter().filter(|p| p.attempts() > 0 || !p.gates.is_empty() || p.start.is_some()) {
        phase_rows(t, p, &l, &dim, &mut out);
    }
    // The time axis under the bars.
    let (a, b) = (t.start.format("%H:%M:%S").to_string(), t.end.format("%H:%M:%S").to_string());
    let gap = l.bar.saturating_sub(a.len() + b.len()).max(1);
    let _ = writeln!(out, "{} {a}{}{b}", " ".repeat(l.label), " ".repeat(gap));
    out
}

fn phase_rows(t: &Timeline, p: &PhaseLane, l: &Layout, dim: &Style, out: &mut String) {
    let mut track = Track::new(l.bar);
    if let Some((a, b)) = p.span() {
        track.paint(t.position(a), t.position(b), '─', dim);
    }
    let span = p.span().map(|(a, b)| super::secs(a, b)).unwrap_or(0.0);
    let note = format!("{} {}", p.status.as_str(), duration(span));
    l.row(out, &p.name, &track, &note, None);
    if p.agents.len() > ROWS_PER_PHASE {
        let line = format!(
            "  {} agents, {} attempts: one row per outcome (more than {ROWS_PER_PHASE})",
            p.agents.len(),
            p.attempts()
        );
        let _ = writeln!(out, "{}", console::truncate_str(&line, l.label + l.bar + l.note + 2, "…"));
        for g in p.groups() {
            let st = outcome_style(g.outcome);
            let mut track = Track::new(l.bar);
            for b in p.bars().filter(|b| b.outcome == g.outcome) {
                track.paint(t.position(b.start), t.position(b.end), glyph(g.outcome), &st);
            }
            let label = format!("  {} ×{}", g.outcome.word(), g.attempts);
            l.row(out, &label, &track, &format!("{} attempts", g.attempts), None);
        }
    } else {
        for a in &p.agents {
            let mut track = Track::new(l.bar);
            for b in &a.bars {
                track.paint(t.position(b.start), t.position(b.end), glyph(b.outcome), &outcome_style(b.outcome));
            }
            let st = a.outcome().map(outcome_style);
            l.row(out, &format!("  {}", a.name), &track, &agent_note(a), st.as_ref());
        }
    }
    for g in &p.gates {
        let st = gate_style(g.outcome);
        let mut track = Track::new(l.bar);
        track.paint(t.position(g.start), t.position(g.end), '┄', &st);
        let mut note = match g.outcome {
            GateOutcome::Waiting => format!("waiting {}", duration(g.seconds())),
            o => format!("{} after {}", o.word(), duration(g.seconds())),
        };
        if let Some(by) = &g.by {
            let _ = write!(note, " by {}", safe(by));
        }
        let label = if p.gates.len() > 1 { format!("  gate {}", g.round) } else { "  gate".to_owned() };
        l.row(out, &label, &track, &note, Some(&st));
    }
}

/// The width to draw in: the terminal's, else `COLUMNS`, else 100.
pub(crate) fn width() -> usize {
    if let Some((_, cols)) = console::Term::stdout().size_checked() {
        return cols as usize;
    }
    std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).filter(|c| *c > 0).unwrap_or(100)
}

/// Whether to colour: stdout is a terminal and colours are on (not `NO_COLOR`, not `--no-color`).
pub(crate) fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && console::colors_enabled()
}

#[cfg(test)]
mod tests {
    use super::super::{Timeline, fixture};
    use super::*;

    #[test]
    fn the_fixed_run_in_80_columns_plain() {
        let (wf, state, as_of) = fixture::run();
        let out = render(&Timeline::build(&wf, &state, as_of), 80, false);
        assert!(out.lines().all(|l| console::measure_text_width(l) <= 80), "{out}");
        assert!(!out.contains('\u{1b}'), "no escape sequences when plain");
        insta::assert_snapshot!(out);
    }

    #[test]
    fn colours_only_when_asked_and_the_width_is_kept() {
        let (wf, state, as_of) = fixture::run();
        let t = Timeline::build(&wf, &state, as_of);
        let coloured = render(&t, 120, true);
        assert!(coloured.contains("\u{1b}[32m"), "green for success");
        assert!(coloured.contains("\u{1b}[31m"), "red for failure");
        assert_eq!(console::strip_ansi_codes(&coloured), render(&t, 120, false));
        for w in [40, 60, 100, 200] {
            let out = render(&t, w, false);
            assert!(out.lines().all(|l| console::measure_text_width(l) <= w), "{w}:\n{out}");
        }
        // The hostile reviewer's name: escaped, on its line, no escape sequence of its own.
        let plain = render(&t, 200, false);
        assert!(!plain.contains('\u{1b}') && plain.contains("by x\\n"), "{plain}");
        assert_eq!(safe(fixture::HOSTILE).matches('\n').count(), 0);
        assert!(safe(fixture::HOSTILE).contains("\\u{1b}[31m"));
        assert!(!plain.lines().any(|l| l.starts_with("::")), "{plain}");
    }

    #[test]
    fn five_hundred_agents_get_a_row_per_outcome() {
        let (wf, state, as_of) = fixture::wide(500);
        let out = render(&Timeline::build(&wf, &state, as_of), 100, false);
        assert!(out.lines().count() < 20, "{out}");
        assert!(out.contains("500 agents, 572 attempts: one row per outcome"), "{out}");
        insta::assert_snapshot!(out);
    }
}
