//! Review 4: the timeline (#16) attacked by a pull request's author and by a misbehaving agent,
//! who control agent output, files and file names in the workspace, exit codes, timing, the run
//! state (a forged state goes through `RunState::check_names`) and reviewers' words.
//!
//! Each test is an attack; what it asserts is what a user would notice if it worked (a secret
//! in a report, a hung run, a link in the job summary, a file written outside the workspace).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::actions_runner::parse_outputs;
use crate::harness::{Project, Run, config, run_with_deadline};

/// The agent's own transcript, as the engine names it.
const TRANSCRIPT: &str = "t=.claude/logs/agents/${ORCHESTRATOR_RUN_ID}_${ORCHESTRATOR_PHASE}_${ORCHESTRATOR_AGENT}.log";

/// A hang detector, not a timing assertion: far above what a working run needs.
const HANG: Duration = Duration::from_secs(120);

fn edit_state(p: &Project, edit: impl FnOnce(&mut Value)) {
    let mut s = p.state();
    edit(&mut s);
    p.write(".claude/orchestrator_state.json", &serde_json::to_string_pretty(&s).unwrap());
}

/// `args` with the variables a GitHub runner sets (outputs, job summary, workspace); the run,
/// its outputs and its summary. `None` if it hung.
fn on_runner_within(p: &Project, args: &[&str]) -> Option<(Run, std::collections::BTreeMap<String, String>, String)> {
    let out = p.path("runner/output");
    let summary = p.path("runner/summary.md");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, "").unwrap();
    std::fs::write(&summary, "").unwrap();
    let mut cmd = p.command(args);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &out)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_WORKSPACE", p.root());
    let run = run_with_deadline(cmd, HANG)?;
    let outputs = parse_outputs(&std::fs::read_to_string(&out).unwrap());
    Some((run, outputs, std::fs::read_to_string(&summary).unwrap()))
}

fn run_id(p: &Project) -> String {
    p.state()["run_id"].as_str().unwrap().to_owned()
}

#[test]
fn an_agent_that_turns_its_transcript_into_a_fifo_does_not_hang_the_run() {
    // Opening a FIFO for reading waits for a writer: JUnit, the log groups and the HTML report
    // all read the transcript back after the agent has gone.
    let agent = format!("{TRANSCRIPT}; echo started; rm -f \"$t\"; mkfifo \"$t\"");
    let p = Project::with_config(&config("", &[("a", &agent)], "  - name: build\n    agents: [a]\n"));
    let (run, outputs, _) = on_runner_within(&p, &["run", "start"]).expect("the run hung on the FIFO transcript");
    run.code(0);
    assert!(p.read("reports/junit.xml").contains("testcase"), "JUnit is written");
    assert!(Path::new(&outputs["report-html"]).is_file(), "{outputs:?}");
    let mut cmd = p.command(&["run", "report", "--html", "-o", "-"]);
    cmd.env_remove("GITHUB_ACTIONS");
    let report = run_with_deadline(cmd, HANG).expect("run report hung on the FIFO transcript");
    report.code(0).stdout_has("The transcript is not readable here");
}

#[test]
fn a_transcript_replaced_by_a_link_out_of_the_workspace_is_not_read_back() {
    // An agent swaps its transcript for a link to a file it could not otherwise publish (the
    // engine writes on through its open handle): the log group, JUnit and the HTML report
    // would copy the file's end into the run's log and uploaded records.
    let p = Project::nested();
    let secret = p.outside().join("id_secret");
    std::fs::write(&secret, "OUTSIDE-SECRET-CONTENT\n").unwrap();
    let agent = format!("{TRANSCRIPT}; echo started; rm -f \"$t\"; ln -s '{}' \"$t\"", secret.display());
    p.write(".claude/config.yaml", &config("", &[("a", &agent)], "  - name: build\n    agents: [a]\n"));
    let (run, outputs, summary) = on_runner_within(&p, &["run", "start"]).expect("no hang");
    run.code(0);
    assert!(!run.stdout.contains("OUTSIDE-SECRET"), "the log group followed the link:\n{}", run.stdout);
    assert!(!p.read("reports/junit.xml").contains("OUTSIDE-SECRET"), "JUnit followed the link");
    assert!(!std::fs::read_to_string(&outputs["report-html"]).unwrap().contains("OUTSIDE-SECRET"));
    assert!(!summary.contains("OUTSIDE-SECRET"));
    // A link inside the workspace, to a file the agent did not write, is not followed either.
    p.write("notes/private.txt", "INSIDE-PRIVATE-CONTENT\n");
    let t = format!(".claude/logs/agents/{}_build_a.log", run_id(&p));
    std::fs::remove_file(p.path(&t)).unwrap();
    std::os::unix::fs::symlink(p.path("notes/private.txt"), p.path(&t)).unwrap();
    p.run(&["run", "report", "--html", "-o", "r.html"]).code(0);
    assert!(!p.read("r.html").contains("INSIDE-PRIVATE"));
}

/// A run waiting at the planning gate, with a development phase after it.
fn gated() -> Project {
    let p = Project::with_config(&config(
        "",
        &[("planner", "echo planned"), ("dev", "echo developed")],
        "  - name: planning\n    agents: [planner]\n    requires_consensus: true\n  - name: development\n    agents: [dev]\n",
    ));
    p.run(&["run", "start"]).code(4);
    p
}

#[test]
fn a_state_that_names_another_workspace_file_as_a_transcript_does_not_publish_it() {
    // The state is input (another job's upload, a state file in the checkout): its transcript
    // paths pass `check_names` when they are relative and inside the workspace, like `.env`.
    let p = gated();
    p.write(".env", "API_SECRET=dotenv-secret-value\n");
    p.write("config/credentials.json", "{\"key\": \"json-credential-value\"}\n");
    edit_state(&p, |s| {
        s["phases"]["planning"]["agents"]["planner"]["transcript"] = json!(".env");
    });
    p.run(&["run", "report", "--html", "-o", "r.html"]).code(0);
    let html = p.read("r.html");
    assert!(!html.contains("dotenv-secret-value"), "the HTML report shows `.env`");
    assert!(html.contains("The transcript is not readable here"), "and says why it shows nothing");
    // Approved on a runner: the development phase rewrites JUnit (every phase's agents) and the
    // HTML report that is uploaded.
    let (run, outputs, _) = on_runner_within(&p, &["run", "approve", "--by", "alice"]).expect("no hang");
    run.code(0);
    assert!(!run.stdout.contains("dotenv-secret-value"), "{}", run.stdout);
    assert!(!p.read("reports/junit.xml").contains("dotenv-secret-value"), "JUnit shows `.env`");
    assert!(!std::fs::read_to_string(&outputs["report-html"]).unwrap().contains("dotenv-secret-value"));
    // Another file, another agent.
    edit_state(&p, |s| {
        s["phases"]["development"]["agents"]["dev"]["transcript"] = json!("config/credentials.json");
    });
    p.run(&["run", "report", "--html", "-o", "r2.html"]).code(0);
    assert!(!p.read("r2.html").contains("json-credential-value"));
}

#[test]
fn text_from_the_state_in_the_job_summary_forms_no_link_image_or_markup() {
    // `run report` prints the job summary: a forged state's request, reviewer, reason, commit,
    // outcome and transcript path must reach its Markdown as text.
    let p = gated();
    let evil = "![px](https://evil.example/p.png) [approve here](https://evil.example/a) <img src=x onerror=alert(1)> <!-- **bold** @org/team";
    edit_state(&p, |s| {
        let planning = &mut s["phases"]["planning"];
        planning["status"] = json!("rejected");
        planning["gate"] = json!({
            "requested_at": "2026-01-01T12:00:00Z",
            "request": "https://github.com/o/r/pull/1) [phish](https://evil.example/b",
            "decision": {"approved": false, "by": evil, "at": "2026-01-01T12:05:00Z", "reason": evil,
                         "commit": "`<b>x</b>`[c](https://evil.example/c)"}
        });
        let planner = &mut planning["agents"]["planner"];
        planner["status"] = json!("failed");
        planner["transcript"] = json!("logs/x` [t](javascript:alert(1)) `y.log");
        let attempt = &mut planner["attempts"][0];
        attempt["exit_code"] = Value::Null;
        attempt["error"] = json!(evil);
    });
    let run = p.run(&["run", "report"]);
    run.code(0);
    let md = &outside_code_spans(&run.stdout);
    for formed in ["](https://evil", "](javascript", "![", "<img", "<!--", "**bold**", "@org/team", "<b>"] {
        assert!(!md.contains(formed), "{formed:?} in the summary:\n{md}");
    }
    assert!(md.contains("approve here"), "the text is still shown:\n{md}");
    // The same summary on a runner.
    let (run, _, summary) = on_runner_within(&p, &["run", "resume"]).expect("no hang");
    assert!(summary.contains("### Approval gates"), "{run:?}\n{summary}");
    let summary = outside_code_spans(&summary);
    for formed in ["](https://evil", "](javascript", "![", "<img", "<!--"] {
        assert!(!summary.contains(formed), "{formed:?} in the job summary:\n{summary}");
    }
}

/// `md` without its code spans (text in them is shown as it is, inert) and fenced blocks.
fn outside_code_spans(md: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in md.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(open) = rest.find('`') {
            out.push_str(&rest[..open]);
            let run = rest[open..].chars().take_while(|&c| c == '`').count();
            let after = &rest[open + run..];
            // The closing run: exactly as many backticks.
            let mut close = None;
            let mut i = 0;
            while let Some(j) = after[i..].find('`') {
                let at = i + j;
                let n = after[at..].chars().take_while(|&c| c == '`').count();
                if n == run {
                    close = Some(at);
                    break;
                }
                i = at + n;
            }
            match close {
                Some(at) => rest = &after[at + run..],
                None => {
                    out.push_str(&rest[open..open + run]);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

#[test]
fn report_output_inside_the_workspace_never_goes_through_a_link_or_over_the_tools_files() {
    let p = Project::nested();
    p.write(".claude/config.yaml", &config("", &[("a", "echo a")], "  - name: build\n    agents: [a]\n"));
    p.run(&["run", "start"]).code(0);
    // An agent made `out` a link out of the workspace; the user asks for `-o out/r.html`.
    let elsewhere = p.outside().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, p.path("out")).unwrap();
    let state = p.read(".claude/orchestrator_state.json");
    let before = p.tree();
    for args in [
        &["run", "report", "--html", "-o", "out/r.html"][..],
        &["run", "report", "-o", "out/r.md"],
        &["run", "report", "--html", "-o", ".claude/orchestrator_state.json"],
        &["run", "report", "-o", ".claude/config.yaml"],
    ] {
        p.run(args).code(2).stderr_has("cannot write the report").stderr_has("help: ");
    }
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "written outside the workspace");
    assert_eq!(p.tree(), before, "a refused report changes nothing");
    assert_eq!(p.read(".claude/orchestrator_state.json"), state, "the state was overwritten");
    assert!(p.read(".claude/config.yaml").starts_with("orchestrator:"), "the config was overwritten");
    // An absolute path is the user's own choice, and a plain relative one works as before.
    let abs = elsewhere.join("r.html");
    p.run(&["run", "report", "--html", "-o", abs.to_str().unwrap()]).code(0);
    assert!(std::fs::read_to_string(&abs).unwrap().starts_with("<!DOCTYPE html>"));
    p.run(&["run", "report", "-o", "docs/summary.md"]).code(0).stdout_has("wrote docs/summary.md");
    assert!(p.read("docs/summary.md").contains("```mermaid"));
}

/// Text that would be markup, a Mermaid directive, a terminal escape or a workflow command.
const HOSTILE: &str = "x\n::error::pwned\n%%{init: {\"theme\":\"dark\"}}%%\nclick t1 href \"https://evil.example\"\n```\n</style><script>alert(1)</script>\u{1b}]52;c;SGVsbG8=\u{7}\u{1b}[2J\u{202e}";

/// A forged state's earlier runs: hostile words where the state holds text, times from year 1
/// to year 9999, durations that are negative or huge, and an approval in an earlier round.
fn forge_earlier(s: &mut Value) {
    let planning = &mut s["phases"]["planning"];
    planning["runs"] = json!(3);
    let attempt = |started: &str, duration: f64| {
        json!({"number": 1, "started_at": started, "duration_s": duration, "exit_code": 75, "timed_out": false,
               "error": HOSTILE, "retry_reason": HOSTILE, "retry_delay_s": -1e300})
    };
    planning["earlier"] = json!([
        {"run": 1, "status": "approved", "started_at": "0001-01-01T00:00:00Z", "finished_at": "9999-12-31T23:59:59Z",
         "agents": {"planner": [attempt("0001-01-01T00:00:00Z", 1e300), attempt("9999-12-31T23:59:59Z", -5.0)]},
         "gate": {"requested_at": "2026-01-01T12:00:00Z", "request": HOSTILE,
                  "decision": {"approved": true, "by": HOSTILE, "at": "2026-01-01T12:01:00Z", "reason": HOSTILE,
                               "commit": HOSTILE}}},
        {"run": 2, "status": "rejected", "agents": {"ghost": []},
         "gate": {"requested_at": "9999-12-31T23:59:59Z", "request": "r",
                  "decision": {"approved": false, "by": "mallory", "at": "0001-01-01T00:00:00Z"}}}
    ]);
}

#[test]
fn a_forged_states_earlier_runs_decide_nothing_and_draw_only_inert_text() {
    let p = gated();
    edit_state(&p, forge_earlier);
    // An approval in an earlier round does not pass the current gate.
    p.run(&["run", "resume"]).code(4).stdout_has("awaiting approval");
    assert_eq!(p.state()["phases"]["planning"]["status"], "awaiting_approval");
    assert!(p.state()["phases"].get("development").is_none_or(|d| d["status"] == "pending"), "development ran");
    // The Markdown report: one chart, its fence closed, no directive, binding or hostile word.
    let md = p.run(&["run", "report"]);
    md.code(0);
    let chart = md.stdout.split("```mermaid\n").nth(1).expect("a chart").split("\n```\n").next().unwrap();
    assert_eq!(md.stdout.matches("```mermaid").count(), 1);
    for line in chart.lines() {
        let l = line.trim_start().to_ascii_lowercase();
        assert!(!l.starts_with("click") && !l.starts_with("call") && !l.starts_with("%%"), "{line}");
        assert!(!line.contains(['%', '#', ';', '<', '>', '`', '"', '{', '}']) || l.starts_with("axisformat"), "{line}");
    }
    assert!(!md.stdout.contains("pwned") && !md.stdout.contains("<script") && !md.stdout.contains('\u{1b}'));
    assert!(!md.stdout.lines().any(|l| l.starts_with("::")), "a workflow command:\n{}", md.stdout);
    // The HTML report: escaped, no element from the data, no escape sequence.
    p.run(&["run", "report", "--html", "-o", "r.html"]).code(0);
    let html = p.read("r.html");
    assert!(!html.contains("<script") && !html.contains('\u{1b}') && !html.contains('\u{202e}'));
    assert_eq!(html.matches("</style>").count(), 1, "the data closed the stylesheet");
    assert!(html.contains("&lt;/style&gt;&lt;script&gt;"), "shown as text");
    // The terminal: no escape sequence, no reordering, no line that is a workflow command.
    let out = p.run(&["run", "status", "--timeline"]);
    out.code(0);
    assert!(!out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}') && !out.stdout.contains('\u{202e}'));
    assert!(!out.stdout.lines().any(|l| l.trim_start().starts_with("::")), "{}", out.stdout);
}

#[test]
fn an_earlier_run_naming_an_agent_outside_its_folder_is_refused_by_the_timeline_commands() {
    let p = gated();
    edit_state(&p, |s| {
        s["phases"]["planning"]["earlier"] = json!([{"run": 1, "status": "failed", "agents": {"../../x": []}}]);
    });
    let before = p.tree();
    for args in [&["run", "report"][..], &["run", "report", "--html"], &["run", "status", "--timeline"]] {
        p.run(args).code(3).stderr_has("earlier[0].agents");
    }
    assert_eq!(p.tree(), before, "a refused state writes nothing");
}

#[test]
fn folders_a_pull_request_made_links_out_of_the_workspace_get_no_records() {
    // A pull request can commit symlinks: `reports`, `.claude/logs` and `.claude/artifacts` as
    // links to folders elsewhere on the runner. The tool writes its records (transcripts,
    // JUnit, validation, hygiene, bundles, metrics, the HTML report) there only by following
    // them: it refuses instead, and says which.
    for folder in ["reports", ".claude/logs", ".claude/artifacts", ".claude/metrics", ".claude/agent_outputs"] {
        let p = Project::nested();
        p.write(
            ".claude/config.yaml",
            &config("", &[("a", "echo made > out.txt; echo ARTIFACT: out.txt")], "  - name: build\n    agents: [a]\n"),
        );
        // A prompt template: the rendered prompt is kept in `.claude/agent_outputs/a/build/`.
        p.write(".claude/prompts/a.md", "Build it.\n");
        let elsewhere = p.outside().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::create_dir_all(p.path(folder).parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, p.path(folder)).unwrap();
        let (run, _, _) = on_runner_within(&p, &["run", "start"]).expect("no hang");
        let written: Vec<_> = std::fs::read_dir(&elsewhere).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(written.is_empty(), "{folder}: written through the link: {written:?}\n{run:?}");
        assert_ne!(run.code, 0, "{folder}: {run:?}");
        assert!(run.stderr.contains(folder), "{folder}: the refusal names it:\n{}", run.stderr);
    }
    // The local gate's request: `.claude/consensus` a link out of the workspace.
    let p = Project::nested();
    p.write(
        ".claude/config.yaml",
        &config("", &[("a", "echo a")], "  - name: build\n    agents: [a]\n    requires_consensus: true\n"),
    );
    let elsewhere = p.outside().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, p.path(".claude/consensus")).unwrap();
    let run = p.run(&["run", "start"]);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "REQUEST.md written through the link: {run:?}");
    assert_ne!(run.code, 0, "{run:?}");
    run.stderr_has(".claude/consensus/build/REQUEST.md");
    // A record's own name a link to another file of the workspace: the link is replaced, the
    // file is left as it was.
    let p = Project::with_config(&config("", &[("a", "echo a")], "  - name: build\n    agents: [a]\n"));
    p.write(".claude/prompts/a.md", "Build it.\n");
    p.write("src/lib.rs", "fn main() {}\n");
    std::fs::create_dir_all(p.path("reports")).unwrap();
    std::os::unix::fs::symlink("../src/lib.rs", p.path("reports/junit.xml")).unwrap();
    std::fs::create_dir_all(p.path(".claude/agent_outputs/a/build")).unwrap();
    std::os::unix::fs::symlink("../../../../src/lib.rs", p.path(".claude/agent_outputs/a/build/prompt.md")).unwrap();
    p.run(&["run", "start"]).code(0);
    assert_eq!(p.read("src/lib.rs"), "fn main() {}\n");
    assert!(p.read("reports/junit.xml").contains("<testsuites"));
    assert!(p.read(".claude/agent_outputs/a/build/prompt.md").starts_with("Build "));
}

#[test]
fn numbers_at_their_limit_in_a_forged_state_panic_nothing() {
    // A state's counters are input too: the run count and an attempt number at u32::MAX, an
    // agent recorded running.
    let p = gated();
    edit_state(&p, |s| {
        let planning = &mut s["phases"]["planning"];
        planning["runs"] = json!(u32::MAX);
        planning["status"] = json!("failed");
        planning["gate"] = Value::Null;
        let planner = &mut planning["agents"]["planner"];
        planner["status"] = json!("running");
        planner["attempts"][0]["number"] = json!(u32::MAX);
    });
    for args in [&["run", "status", "--timeline"][..], &["run", "report"], &["run", "report", "--html", "-o", "-"]] {
        let run = p.run(args);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        run.code(0);
    }
    let run = p.run(&["run", "retry", "--phase", "planning"]);
    assert!(!run.stderr.contains("panicked") && !run.stderr.contains("internal error"), "{}", run.stderr);
    run.code(4);
}

/// `tests/browser/check.mjs mermaid FILE` in headless Chromium: the charts Mermaid drew.
fn mermaid_charts(file: &Path) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = root.join(".ci/browser/node_modules");
    assert!(
        modules.join("mermaid/dist/mermaid.min.js").is_file(),
        "mermaid (npm, in .ci/browser) is missing: run .ci/run"
    );
    let out = std::process::Command::new("node")
        .arg(root.join("tests/browser/check.mjs"))
        .args(["mermaid", &file.display().to_string()])
        .env("BROWSER_MODULES", modules)
        .output()
        .expect("node runs the browser check");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["charts"].clone()
}

#[test]
fn a_summary_chart_near_its_budget_is_still_drawn_by_mermaid() {
    // Mermaid refuses a diagram over its `maxTextSize` (50,000 characters by default, as GitHub
    // draws it) and draws an error instead: 38 phases of 20 agents, each drawn one by one,
    // made a 57,000-character chart, within the summary's budget but not Mermaid's.
    let (phases, agents) = (38, 20);
    let names: Vec<String> = (0..agents).map(|a| format!("agent_number_{a:03}")).collect();
    let mut yaml = String::new();
    for ph in 0..phases {
        yaml.push_str(&format!("  - name: phase_number_{ph:03}\n    agents: [{}]\n", names.join(", ")));
    }
    let commands: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "true")).collect();
    let p = Project::with_config(&config("", &commands, &yaml));
    let mut state_phases = serde_json::Map::new();
    for ph in 0..phases {
        let mut states = serde_json::Map::new();
        for (a, name) in names.iter().enumerate() {
            states.insert(
                name.clone(),
                json!({"status": "succeeded", "command": "true",
                "transcript": format!(".claude/logs/agents/r_{ph}_{a}.log"), "artifacts": [],
                "attempts": [{"number": 1, "started_at": format!("2026-01-01T12:{ph:02}:{a:02}Z"), "duration_s": 1.5,
                              "exit_code": 0, "timed_out": false}]}),
            );
        }
        state_phases.insert(
            format!("phase_number_{ph:03}"),
            json!({"status": "succeeded", "runs": 1,
            "started_at": format!("2026-01-01T12:{ph:02}:00Z"), "finished_at": format!("2026-01-01T12:{ph:02}:59Z"),
            "agents": states}),
        );
    }
    let state = json!({"version": 1, "run_id": "20260101_120000", "started_at": "2026-01-01T12:00:00Z",
        "updated_at": "2026-01-01T13:00:00Z", "finished_at": "2026-01-01T13:00:00Z", "interrupted": false,
        "intake_path": ".claude/intake.yaml", "intake": {}, "journal_seq": 0, "phases": state_phases});
    p.write(".claude/orchestrator_state.json", &state.to_string());
    p.run(&["run", "report", "-o", "summary.md"]).code(0);
    let md = p.read("summary.md");
    let chart = md.split("```mermaid\n").nth(1).unwrap().split("```").next().unwrap();
    assert!(chart.len() < 50_000, "{} characters: over Mermaid's limit", chart.len());
    // Grouped to fit, the notes do not claim the phases had more attempts than they had.
    assert!(!md.contains("more than 60 attempts"), "{}", &md[..md.len().min(4000)]);
    let charts = mermaid_charts(&p.path("summary.md"));
    assert!(charts[0]["tasks"].as_u64().unwrap() > 0, "Mermaid drew no bar: {charts}");
}
