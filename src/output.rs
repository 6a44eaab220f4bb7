//! The terminal display: a consumer of engine events. In a terminal, a live spinner per running
//! agent with its elapsed time; elsewhere (CI, pipes), one plain line per event. Progress goes to
//! stderr; results go to stdout.
//!
//! Every text an agent could have influenced (its output, outcome messages, artifact paths, names
//! read from the state) is shown through [`neutralize`], so that it can issue no workflow command
//! on a GitHub runner, whatever the environment says: the log of a step run in a container is
//! read for commands too.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;

use crate::engine::Event;
use crate::executor::Redactor;
use crate::runner_log::neutralize;
use crate::state::PhaseStatus;

/// Whether colours may be used on stderr.
pub(crate) fn configure_colors(no_color_flag: bool) {
    let off = no_color_flag || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if off {
        console::set_colors_enabled(false);
        console::set_colors_enabled_stderr(false);
    }
}

/// Whether to draw live progress: stderr is a terminal and this is not CI.
fn live() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
}

/// Consume events until the engine drops its sender.
pub(crate) async fn display(mut rx: mpsc::UnboundedReceiver<Event>, redactor: Redactor) {
    let mut screen = Screen::new(live(), redactor);
    while let Some(ev) = rx.recv().await {
        screen.show(&ev);
        // Everything already queued goes out in one write.
        while let Ok(ev) = rx.try_recv() {
            screen.show(&ev);
        }
        screen.flush();
    }
    screen.clear();
}

struct Screen {
    redactor: Redactor,
    multi: Option<MultiProgress>,
    bars: HashMap<(String, String), ProgressBar>,
    /// Plain lines not yet written.
    pending: String,
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

impl Screen {
    fn new(live: bool, redactor: Redactor) -> Screen {
        let multi = live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Screen { redactor, multi, bars: HashMap::new(), pending: String::new() }
    }

    /// Write the pending plain lines (whole lines only, so nothing interleaves).
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let _ = std::io::stderr().lock().write_all(self.pending.as_bytes());
            self.pending.clear();
        }
    }

    /// Text an agent could have influenced, redacted, then neutralized.
    fn safe(&self, text: &str) -> String {
        neutralize(&self.redactor.redact_text(text)).into_owned()
    }

    fn line(&mut self, text: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                self.pending.push_str(&text);
                self.pending.push('\n');
            }
        }
    }

    fn clear(&mut self) {
        self.flush();
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
        }
    }

    fn show(&mut self, ev: &Event) {
        match ev {
            Event::PhaseStarted { phase, agents, parallel } => {
                let how = if *parallel && *agents > 1 { ", in parallel" } else { "" };
                self.line(format!(
                    "{} phase {} ({agents} agent{}{how})",
                    style("▶").cyan(),
                    style(phase).bold(),
                    if *agents == 1 { "" } else { "s" }
                ));
            }
            Event::AttemptStarted { phase, agent, attempt, max_attempts } => {
                let label = format!("{phase}/{agent}");
                match &self.multi {
                    Some(m) => {
                        let key = (phase.clone(), agent.clone());
                        let bar = self.bars.entry(key).or_insert_with(|| {
                            let bar = m.add(ProgressBar::new_spinner());
                            bar.set_style(
                                ProgressStyle::with_template("  {spinner:.cyan} {msg} {elapsed:.dim}")
                                    .expect("valid template"),
                            );
                            bar.enable_steady_tick(Duration::from_millis(100));
                            bar
                        });
                        let extra = if *attempt > 1 {
                            format!(" (attempt {attempt} of {max_attempts})")
                        } else {
                            String::new()
                        };
                        bar.set_message(format!("{label}{extra}"));
                    }
                    None if *attempt > 1 => {
                        self.line(format!("  {label}: attempt {attempt} of {max_attempts} started"))
                    }
                    None => self.line(format!("  {label}: started")),
                }
            }
            Event::Retrying { phase, agent, attempt, outcome, reason, delay } => {
                self.line(format!(
                    "  {} {phase}/{agent}: attempt {attempt} failed ({}); retrying in {} because {}",
                    style("↻").yellow(),
                    self.safe(outcome),
                    secs(*delay),
                    self.safe(reason)
                ));
            }
            Event::AgentFinished {
                phase,
                agent,
                succeeded,
                outcome,
                attempts,
                duration,
                artifacts,
                refused,
                leaked_output,
                tail,
                transcript,
            } => {
                if let Some(bar) = self.bars.remove(&(phase.clone(), agent.clone())) {
                    bar.finish_and_clear();
                }
                let tries = if *attempts > 1 { format!(", {attempts} attempts") } else { String::new() };
                if *succeeded {
                    let arts = if *artifacts > 0 {
                        format!(", {artifacts} artifact{}", if *artifacts == 1 { "" } else { "s" })
                    } else {
                        String::new()
                    };
                    self.line(format!(
                        "  {} {phase}/{agent}: succeeded in {}{arts}{tries}",
                        style("✔").green(),
                        secs(*duration)
                    ));
                } else {
                    self.line(format!(
                        "  {} {phase}/{agent}: failed: {}{tries} (transcript: {})",
                        style("✖").red(),
                        self.safe(outcome),
                        self.safe(transcript)
                    ));
                    let lines: Vec<&str> = tail.lines().collect();
                    for l in &lines[lines.len().saturating_sub(10)..] {
                        self.line(format!("      {}", style(self.safe(l)).dim()));
                    }
                }
                if *leaked_output {
                    self.line(format!("  {} {phase}/{agent}: exited while its children still held its output open; their process group was killed", style("!").yellow()));
                }
                for r in refused {
                    self.line(format!(
                        "  {} {phase}/{agent}: refused artifact `{}`: {}",
                        style("!").yellow(),
                        self.safe(&r.path),
                        self.safe(&r.reason)
                    ));
                }
            }
            Event::PhaseFinished { phase, status, error, duration } => {
                let (mark, word) = match status {
                    PhaseStatus::Succeeded => (style("■").green(), "succeeded".to_owned()),
                    PhaseStatus::AwaitingApproval => (style("⏸").yellow(), "succeeded; awaiting approval".to_owned()),
                    _ => (style("■").red(), format!("failed: {}", self.safe(error.as_deref().unwrap_or("see above")))),
                };
                self.line(format!("{mark} phase {} {word} ({})", style(phase).bold(), secs(*duration)));
            }
            Event::GateOpened { phase, request } => {
                self.line(format!("  approval request for `{phase}`: {}", self.safe(request)));
            }
            Event::GateUnconfirmed { phase } => {
                self.line(format!(
                    "  phase `{phase}`: the run state says it passed its gate, but the gate does not confirm it; waiting for a decision again"
                ));
            }
            Event::RerunOnPush { phase } => {
                self.line(format!(
                    "  phase `{phase}`: a push changed its outputs while its gate waited; running it again"
                ));
            }
            Event::RetryRequested { phase } => {
                self.line(format!("  phase `{phase}`: a reviewer asked to run it again"));
            }
            Event::GateDecided { phase, approved, by } => {
                let word = if *approved { "approved" } else { "rejected" };
                self.line(format!("  phase `{phase}` {word} by {}", self.safe(by)));
            }
            Event::Note { message } => self.line(format!("note: {message}")),
        }
    }
}
