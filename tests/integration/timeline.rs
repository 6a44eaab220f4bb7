//! The run's timeline where people look: `run status --timeline` in a terminal and a pipe,
//! `run report` (Markdown with a Mermaid chart, or one HTML file) checked in a real browser
//! (Chromium) and by Mermaid itself, the job summary on a runner, and after a crash.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::actions_runner::on_runner;
use crate::harness::{BIN, Project, Run, config, pid_in, wait_for};

/// Agents that succeed, retry once, fail, and print markup, Mermaid and workflow commands.
const HOSTILE_OUTPUT: &str = "echo '<script>alert(1)</script><img src=x onerror=alert(2)>'; echo '::error::pwned'; echo '%%{init: {\"theme\":\"dark\"}}%%'; echo 'click x call y'";

fn project() -> Project {
    let flaky = "if [ -f flaked ]; then echo fine; else touch flaked; echo 'rate limit'; exit 75; fi";
    Project::with_config(&config(
        "  retry: {retries: 1, base_delay: 0.01}",
        &[("planner", HOSTILE_OUTPUT), ("builder", flaky), ("tester", "echo testing; exit 3"), ("docs", "echo docs")],
        "  - name: planning\n    agents: [planner]\n    requires_consensus: true\n  - name: development\n    agents: [builder, tester, docs]\n    parallel: true\n",
    ))
}

/// A run that stopped at the planning gate, was approved, and failed in development.
fn finished() -> Project {
    let p = project();
    p.run(&["run", "start"]).code(4);
    p.run(&["run", "approve", "--by", "<b>mallory</b>"]).code(1);
    p
}

#[test]
fn status_timeline_in_a_pipe_is_plain_and_fits_the_width() {
    let p = finished();
    let run = Run::from_output(
        p.command(&["run", "status", "--timeline"]).env("COLUMNS", "72").env_remove("NO_COLOR").output().unwrap(),
    );
    run.code(0);
    let out = &run.stdout;
    assert!(!out.contains('\u{1b}'), "no colours in a pipe:\n{out}");
    for l in out.lines() {
        assert!(l.chars().count() <= 72, "wider than COLUMNS: {l:?}");
    }
    for needle in ["planning", "development", "  planner", "  builder", "  tester", "  docs", "  gate"] {
        assert!(out.lines().any(|l| l.starts_with(needle)), "no row {needle:?}:\n{out}");
    }
    // The notes, at a width where no duration (which depends on the machine) cuts them short.
    let wide = Run::from_output(
        p.command(&["run", "status", "--timeline"]).env("COLUMNS", "200").env_remove("NO_COLOR").output().unwrap(),
    );
    wide.code(0);
    let out = &wide.stdout;
    let row = |name: &str| out.lines().find(|l| l.starts_with(&format!("  {name} "))).unwrap().to_owned();
    assert!(row("builder").contains('▒') && row("builder").contains('█'), "a retry, then a success");
    assert!(row("builder").contains("2 attempts"), "{}", row("builder"));
    assert!(row("tester").contains('▓') && row("tester").contains("exit 3"), "{}", row("tester"));
    assert!(row("gate").contains("approved"), "{}", row("gate"));
}

/// The binary under a pseudo-terminal `cols` wide (util-linux `script`): what a person sees.
fn in_terminal(p: &Project, cols: u16, no_color: bool) -> String {
    let cmd = format!(
        "stty cols {cols} rows 50; exec {} -C {} run status --timeline",
        shell_quote(BIN),
        shell_quote(&p.root().display().to_string())
    );
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", &cmd, "/dev/null"]).env_remove("CI").env("TERM", "xterm-256color").env_remove("COLUMNS");
    if no_color {
        c.env("NO_COLOR", "1");
    } else {
        c.env_remove("NO_COLOR");
    }
    let out = c.output().expect("util-linux `script` runs the binary under a terminal");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn status_timeline_in_a_terminal_is_coloured_and_scaled_to_it_unless_no_color() {
    let p = finished();
    let coloured = in_terminal(&p, 90, false);
    assert!(coloured.contains("\u{1b}[32m") && coloured.contains("\u{1b}[31m"), "green and red:\n{coloured}");
    let plain = console::strip_ansi_codes(&coloured).into_owned();
    assert!(plain.lines().all(|l| console::measure_text_width(l) <= 90), "{plain}");
    assert!(plain.lines().any(|l| console::measure_text_width(l) > 80), "uses the width it has:\n{plain}");
    let narrow = console::strip_ansi_codes(&in_terminal(&p, 50, false)).into_owned();
    assert!(narrow.lines().all(|l| console::measure_text_width(l) <= 50), "{narrow}");
    let no_color = in_terminal(&p, 90, true);
    assert!(!no_color.contains('\u{1b}'), "NO_COLOR:\n{no_color}");
    assert_eq!(no_color, plain, "the same picture without colours");
}

#[test]
fn report_html_is_one_file_and_agent_text_in_it_is_inert() {
    let p = finished();
    let before = p.tree();
    let run = p.run(&["run", "report", "--html"]);
    run.code(0);
    let run_id = p.state()["run_id"].as_str().unwrap().to_owned();
    let rel = format!("reports/run_{run_id}.html");
    run.stdout_has(&format!("wrote {rel}"));
    let after = p.tree();
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(added, [&rel], "only the report is written");
    let html = p.read(&rel);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"));
    assert!(!html.contains("<script") && !html.contains("<img"), "no markup from the agents");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the output is shown, escaped");
    assert!(html.contains("&lt;b&gt;mallory&lt;/b&gt;"), "the reviewer's name is shown, escaped");
    assert!(html.contains("rate limit"), "the retried agent's transcript tail");
    for resource in ["<link", "<iframe", "<object", "<embed", "<a ", "<base", "url(", "@import"] {
        assert!(!html.contains(resource), "{resource} would fetch something");
    }
    // `-o -` prints it; `-o FILE` writes there.
    p.run(&["run", "report", "--html", "-o", "-"]).code(0).stdout_has("<!DOCTYPE html>");
    p.run(&["run", "report", "--html", "--output", "out/r.html"]).code(0);
    assert!(p.read("out/r.html").contains("<section id=\"timeline\">"));
}

#[test]
fn report_markdown_has_the_mermaid_timeline_of_the_job_summary() {
    let p = finished();
    let run = p.run(&["run", "report"]);
    run.code(0).stdout_has("### Timeline\n\n```mermaid\ngantt\n").stdout_has("section development");
    assert!(run.stdout.contains("builder 1 exit 75 retried"), "{}", run.stdout);
    assert!(run.stdout.contains("tester 1 exit 3 failed") || run.stdout.contains("tester 1 failed"), "{}", run.stdout);
    assert!(run.stdout.contains("gate approved after"), "{}", run.stdout);
}

#[test]
fn report_errors_name_what_and_change_nothing() {
    let p = project();
    let before = p.tree();
    p.run(&["run", "report", "--html"]).code(2).stderr_has("no run");
    p.run(&["run", "status", "--timeline"]).code(2);
    assert_eq!(p.tree(), before, "nothing written without a run");
    let p = finished();
    std::fs::create_dir_all(p.path("adir")).unwrap();
    let before = p.tree();
    p.run(&["run", "report", "--html", "-o", "adir"]).code(2).stderr_has("`").stderr_has("is a folder");
    p.run(&["run", "status", "--timeline", "--json"]).code(2).stderr_has("--json");
    assert_eq!(p.tree(), before);
    // The default report's folder made a link out of the workspace by an agent: not followed.
    let outside = tempfile::tempdir().unwrap();
    std::fs::remove_dir_all(p.path("reports")).unwrap();
    std::os::unix::fs::symlink(outside.path(), p.path("reports")).unwrap();
    let run = p.run(&["run", "report", "--html"]);
    assert_ne!(run.code, 0, "{run:?}");
    run.stderr_has("reports/run_");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside");
}

#[test]
fn on_a_runner_the_summary_draws_the_timeline_and_the_report_is_uploaded() {
    let p = project();
    let (run, outputs, summary) = on_runner(&p, &["run", "start"], &[]);
    run.code(4);
    assert!(summary.contains("```mermaid\ngantt\n"), "{summary}");
    assert!(summary.contains("gate waiting"), "{summary}");
    let report = &outputs["report-html"];
    assert!(Path::new(report).is_file(), "{report}");
    assert!(
        outputs["upload-paths"].lines().any(|l| report.starts_with(l)),
        "the report is in what is uploaded: {}",
        outputs["upload-paths"]
    );
    assert!(!summary.contains("<script") && !summary.contains("%%{init"), "{summary}");
}

#[test]
fn after_a_crash_the_running_attempt_is_shown_running() {
    let p = Project::with_config(&config(
        "",
        &[("quick", "true"), ("slow", "[ -f again ] && exit 0; touch again; sleep 300 & echo $! > slow.pid; wait")],
        "  - name: build\n    agents: [quick, slow]\n    parallel: true\n",
    ));
    let mut child = p.spawn(&["run", "start"]);
    let _ = pid_in(&p, "slow.pid");
    wait_for("the slow agent's process group to be recorded", || {
        p.read_opt(".claude/orchestrator_state.json.journal").is_some_and(|j| j.contains("attempt_started_at"))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let out = p.run(&["run", "status", "--timeline"]);
    out.code(0);
    let slow = out.stdout.lines().find(|l| l.starts_with("  slow ")).unwrap_or_default().to_owned();
    assert!(slow.contains('░') && slow.contains("running at last record"), "{}", out.stdout);
    p.run(&["run", "report", "--html"]).code(0);
    let run_id = p.state()["run_id"].as_str().unwrap().to_owned();
    let html = p.read(&format!("reports/run_{run_id}.html"));
    assert!(html.contains("<rect class=\"bar running\""), "the running attempt is drawn");
    // The resume kills what the dead run left and finishes.
    p.run(&["run", "resume"]).code(0);
}

fn browser_modules() -> PathBuf {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/browser/node_modules");
    assert!(
        modules.join("playwright-core").is_dir()
            && modules.join("mermaid/dist/mermaid.min.js").is_file()
            && Path::new("/usr/bin/chromium").exists(),
        "playwright-core, mermaid (npm, in .ci/browser) and Chromium (Debian package chromium) are missing: run .ci/run"
    );
    modules
}

/// `tests/browser/check.mjs MODE FILE` in headless Chromium; what it saw.
fn browser(mode: &str, file: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/check.mjs");
    let out = Command::new("node")
        .arg(script)
        .args([mode, &file.display().to_string()])
        .env("BROWSER_MODULES", browser_modules())
        .output()
        .expect("node runs the browser check");
    assert!(
        out.status.success(),
        "browser check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the check prints JSON")
}

#[test]
fn the_html_report_renders_in_chromium_without_errors() {
    let p = finished();
    p.run(&["run", "report", "--html", "-o", "report.html"]).code(0);
    let seen = browser("report", &p.path("report.html"));
    assert_eq!(seen["errors"], serde_json::json!([]), "console errors: {seen}");
    assert_eq!(seen["requests"], serde_json::json!([]), "the page fetched something: {seen}");
    assert_eq!(seen["scripts"], 0);
    let bars = seen["bars"].as_array().unwrap();
    // planner 1, builder 2 (a retry), tester 2 (exit 3 is not retryable: 1), docs 1.
    assert_eq!(bars.len(), 5, "{seen}");
    for b in bars.iter().chain(seen["gates"].as_array().unwrap()).chain(seen["tracks"].as_array().unwrap()) {
        assert!(b["w"].as_f64().unwrap() > 0.0 && b["h"].as_f64().unwrap() > 0.0, "an invisible bar: {b}");
    }
    assert_eq!(seen["gates"].as_array().unwrap().len(), 1);
    assert_eq!(seen["agents"], 4);
    assert_eq!(seen["gateRows"], 1);
    let text = seen["text"].as_str().unwrap();
    assert!(text.contains("<script>alert(1)</script>"), "the agent's output is shown as text");
    assert!(text.contains("<b>mallory</b>"), "the reviewer's name is shown as text");
}

#[test]
fn the_mermaid_charts_render_with_mermaid_in_chromium() {
    let p = finished();
    p.run(&["run", "report", "-o", "summary.md"]).code(0);
    let seen = browser("mermaid", &p.path("summary.md"));
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    let charts = seen["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 1, "{seen}");
    let chart = &charts[0];
    assert_eq!(chart["ok"], true, "{chart}");
    // 5 attempts and a gate.
    assert_eq!(chart["tasks"], 6, "{chart}");
    assert_eq!(chart["sized"], 6, "{chart}");
    assert_eq!(chart["links"], 0, "no click or call binding");
    assert_eq!(chart["sections"], serde_json::json!(["planning", "development"]), "{chart}");

    // The gate comment's and the summary's limits hold at 500 agents, and Mermaid draws the
    // grouped chart.
    let mut agents = Vec::new();
    let mut names = Vec::new();
    for i in 0..500 {
        agents.push((format!("a{i}"), if i % 10 == 3 { "exit 1" } else { "true" }));
        names.push(format!("a{i}"));
    }
    let agents: Vec<(&str, &str)> = agents.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let wide = Project::with_config(&config(
        "  max_parallel_agents: 16",
        &agents,
        &format!("  - name: swarm\n    agents: [{}]\n    parallel: true\n", names.join(", ")),
    ));
    wide.run(&["run", "start"]).code(1);
    wide.run(&["run", "report", "-o", "wide.md"]).code(0);
    let md = wide.read("wide.md");
    assert!(md.contains("`swarm`: 500 attempts, drawn as one bar per outcome"), "{md}");
    let seen = browser("mermaid", &wide.path("wide.md"));
    let chart = &seen["charts"][0];
    assert_eq!(chart["ok"], true, "{seen}");
    assert_eq!(chart["tasks"], 2, "succeeded and failed: {chart}");
}

#[test]
fn a_rejected_then_retried_gate_keeps_both_rounds_and_the_first_attempts() {
    let p = Project::with_config(&config(
        "",
        &[("planner", "echo plan")],
        "  - name: planning\n    agents: [planner]\n    requires_consensus: true\n",
    ));
    p.run(&["run", "start"]).code(4);
    p.run(&["run", "reject", "--reason", "<i>not yet</i>", "--by", "carol"]).code(0);
    p.run(&["run", "retry", "--phase", "planning"]).code(4);
    p.run(&["run", "approve", "--by", "dave"]).code(0);
    let out = p.run(&["run", "status", "--timeline"]);
    out.code(0);
    let row = |name: &str| out.stdout.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    assert!(row("  gate 1 ").contains("rejected after") && row("  gate 1 ").contains("by carol"), "{}", out.stdout);
    assert!(row("  gate 2 ").contains("approved after") && row("  gate 2 ").contains("by dave"), "{}", out.stdout);
    assert!(row("  planner ").contains("2 attempts"), "both runs' attempts: {}", out.stdout);
    p.run(&["run", "report", "--html", "-o", "r.html"]).code(0);
    let html = p.read("r.html");
    let gates = html.split("<section id=\"gates\">").nth(1).unwrap();
    assert_eq!(gates.matches("<tr><td>planning</td>").count(), 2, "{gates}");
    assert!(gates.contains("&lt;i&gt;not yet&lt;/i&gt;"), "{gates}");
    let md = p.run(&["run", "report"]).stdout;
    assert!(md.contains("gate round 1 rejected after") && md.contains("gate round 2 approved after"), "{md}");
    assert!(md.contains("planner run 1 1 succeeded"), "{md}");
}
