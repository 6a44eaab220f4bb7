//! Refused input writes nothing, whatever refuses it: every exit-3 path of `run start`,
//! `run start --or-resume` and `run resume` in a GitHub Actions run leaves the folder as it was
//! (no state, no journal, no lock file).

use crate::harness::{Project, Run, config};

fn project() -> Project {
    Project::with_config(&config("", &[("planner", "echo plan > plan.txt")], "  - name: plan\n    agents: [planner]\n"))
}

/// `args` on a runner with the event `payload` (written outside the workspace) and `env`.
fn on_runner(p: &Project, args: &[&str], event_name: &str, payload: Option<&str>, env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    if let Some(payload) = payload {
        std::fs::write(&event, payload).unwrap();
    }
    let mut cmd = p.command(args);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_EVENT_NAME", event_name)
        .env("GITHUB_REPOSITORY", "octo/app")
        .env("GITHUB_TOKEN", "ghs_unused")
        .env("GITHUB_API_URL", "http://127.0.0.1:9");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().unwrap())
}

/// An event name, its payload (`None`: no file), extra variables, and what the error says.
type Case<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn every_refused_github_context_writes_nothing() {
    let cases: &[Case] = &[
        ("pull_request", Some("{not json"), &[], "is not valid JSON"),
        ("pull_request", None, &[], "cannot read the GitHub event payload"),
        ("pull_request", Some(r#"{"pull_request": {"number": "7"}}"#), &[], "`pull_request.number`"),
        ("pull_request", Some(r#"{"pull_request": {"number": 7.0}}"#), &[], "`pull_request.number`"),
        ("pull_request", Some(r#"{"pull_request": {"number": -1}}"#), &[], "`pull_request.number`"),
        ("pull_request", Some(r#"{"action": "opened"}"#), &[], "`pull_request`"),
        ("pull_request", Some("null"), &[], "a JSON object"),
        ("pull_request", Some("[]"), &[], "a JSON object"),
        ("pull_request_target", Some(r#"{"pull_request": "7"}"#), &[], "`pull_request`"),
        (
            "pull_request",
            Some(r#"{"pull_request": {"number": 7}}"#),
            &[("GITHUB_TOKEN", "")],
            "`GITHUB_TOKEN` is not set",
        ),
        ("pull_request", Some(r#"{"pull_request": {"number": 7}}"#), &[("GITHUB_REPOSITORY", "octo")], "owner/name"),
        ("workflow_dispatch", Some(r#"{"inputs": {"pr_number": "seven"}}"#), &[], "`pr_number` input"),
    ];
    for args in [&["run", "start"][..], &["run", "start", "--or-resume"][..]] {
        for (event, payload, env, needle) in cases {
            let p = project();
            let before = p.tree();
            let run = on_runner(&p, args, event, *payload, env);
            assert_eq!(run.code, 3, "{args:?} {payload:?}: {run:?}");
            assert!(run.stderr.contains(needle), "{args:?} {payload:?}: stderr lacks {needle:?}:\n{}", run.stderr);
            assert_eq!(before, p.tree(), "{args:?} {payload:?}: refused, yet something was written");
        }
    }
    // With a run on disk, a refused `run resume` does not touch it, nor its lock.
    let p = project();
    p.run(&["run", "start"]).code(0);
    let before = p.tree();
    let run = on_runner(&p, &["run", "resume"], "pull_request", Some(r#"{"pull_request": {"number": "x"}}"#), &[]);
    run.code(3);
    assert_eq!(before, p.tree());
}

#[test]
fn a_config_with_a_byte_order_mark_is_read() {
    let p = project();
    let cfg = p.read(".claude/config.yaml");
    p.write(".claude/config.yaml", &format!("\u{feff}{cfg}"));
    p.run(&["validate"]).code(0).stdout_has("ok (1 phase");
}

#[test]
fn a_config_intake_or_state_that_is_not_a_regular_file_is_refused_without_blocking() {
    for rel in [".claude/config.yaml", ".claude/intake.yaml", ".claude/orchestrator_state.json"] {
        let p = project();
        let _ = std::fs::remove_file(p.path(rel));
        nix::unistd::mkfifo(&p.path(rel), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let args: &[&str] = if rel.ends_with(".json") { &["run", "status"] } else { &["run", "start"] };
        let out = crate::harness::run_with_deadline(p.command(args), std::time::Duration::from_secs(20))
            .unwrap_or_else(|| panic!("`{rel}` as a FIFO blocked the command"));
        out.code(3).stderr_has("not a regular file");
    }
}

#[test]
fn a_state_file_of_random_bytes_is_a_bad_state() {
    let p = project();
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::create_dir_all(p.path(".claude")).unwrap();
    std::fs::write(p.path(".claude/orchestrator_state.json"), &bytes).unwrap();
    for args in [&["run", "status"][..], &["run", "resume"][..], &["run", "metrics"][..]] {
        let before = p.tree();
        p.run(args).code(3).stderr_has("orchestrator_state.json");
        assert_eq!(before, p.tree());
    }
}

#[test]
fn a_failed_runs_duration_is_fixed_and_agrees_with_its_metrics_file() {
    let p = Project::with_config(&config(
        "  retry: {retries: 0}",
        &[("planner", "exit 2")],
        "  - name: plan\n    agents: [planner]\n",
    ));
    p.run(&["run", "start"]).code(1);
    let state = p.state();
    assert!(state["finished_at"].is_string(), "a failed run has ended: {state}");
    let file: serde_json::Value =
        serde_json::from_str(&p.read(&format!(".claude/metrics/run_{}.json", state["run_id"].as_str().unwrap())))
            .unwrap();
    let shown: serde_json::Value = serde_json::from_str(&p.run(&["run", "metrics", "--json"]).code(0).stdout).unwrap();
    assert_eq!(shown["duration_s"], file["duration_s"], "`run metrics` and the metrics file disagree");
    // A retry makes it a running run again; its end moves.
    p.write(
        ".claude/config.yaml",
        &config("  retry: {retries: 0}", &[("planner", "true")], "  - name: plan\n    agents: [planner]\n"),
    );
    p.run(&["run", "retry", "--phase", "plan"]).code(0);
    assert!(p.state()["finished_at"].is_string());
}

/// `cmd` with stdout (or stderr) a pipe whose reading end is already closed.
fn with_closed(mut cmd: std::process::Command, stdout: bool) -> Run {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let writer = std::process::Stdio::from(writer);
    if stdout {
        cmd.stdout(writer).stderr(std::process::Stdio::piped());
    } else {
        cmd.stderr(writer).stdout(std::process::Stdio::piped());
    }
    let out = cmd.output().unwrap();
    Run::from_output(out)
}

#[test]
fn a_closed_pipe_ends_the_output_quietly_and_never_strands_a_run() {
    // Much to print: several phases and agents.
    let phases: String = (0..30).map(|i| format!("  - name: p{i}\n    agents: [planner]\n")).collect();
    let p = Project::with_config(&config("", &[("planner", "echo hi")], &phases));
    p.run(&["run", "start"]).code(0);
    for args in
        [&["run", "status"][..], &["run", "status", "--json"], &["run", "metrics"], &["run", "metrics", "--json"]]
    {
        let run = with_closed(p.command(args), true);
        assert!(!run.stderr.contains("panicked") && run.code != 101, "{args:?}: {run:?}");
    }
    // A run whose stderr is closed still runs to its end, and says so in its state.
    let q = project();
    let run = with_closed(q.command(&["run", "start"]), false);
    assert_ne!(run.code, 101, "{run:?}");
    run.code(0);
    assert_eq!(q.state()["phases"]["plan"]["status"], "succeeded");
}

#[test]
fn a_glob_of_thousands_of_nested_alternatives_is_refused_not_a_crash() {
    let n = 3000;
    let pattern = format!("{}b{}", "{a,".repeat(n), "}".repeat(n));
    let p = Project::with_config(&format!(
        "agents:\n  a: {{entrypoints: {{default: \"true\"}}}}\nphases:\n  - name: p\n    agents: [a]\n    artifacts: [\"{pattern}\"]\n"
    ));
    p.run(&["validate"]).code(3).stderr_has("is too complex").stderr_has(".claude/config.yaml:6:");
}

#[test]
fn deleting_the_lock_file_during_a_run_does_not_let_a_second_run_in() {
    let p = Project::with_config(&config(
        "",
        &[("planner", "echo started >> runs.log; while [ ! -e release ]; do sleep 0.05; done")],
        "  - name: plan\n    agents: [planner]\n",
    ));
    let mut first = p
        .command(&["run", "start"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_for("the first run's agent", || p.exists("runs.log"));
    std::fs::remove_file(p.path(".claude/orchestrator_state.json.lock")).unwrap();
    for args in [&["run", "start", "--force"][..], &["run", "resume"][..]] {
        p.run(args).code(6).stderr_has("holds the lock");
    }
    p.write("release", "");
    assert!(first.wait().unwrap().success());
    assert_eq!(p.read("runs.log"), "started\n", "the agent ran twice");
}

#[test]
fn commands_on_generated_corrupt_states_exit_cleanly() {
    let p = project();
    p.run(&["run", "start"]).code(0);
    let good = p.state();
    let hostile = [
        serde_json::Value::Null,
        serde_json::json!(-1),
        serde_json::json!(u64::MAX),
        serde_json::json!("../../x"),
        serde_json::json!("a\n::error::x"),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!("2026-13-45T99:99:99Z"),
    ];
    let mut seed = 0x2545_f491_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    for _ in 0..40 {
        let mut v = good.clone();
        // Walk to a random value and replace it.
        let mut at = &mut v;
        for _ in 0..(next() % 5) {
            let key = match at {
                serde_json::Value::Object(m) if !m.is_empty() => {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    keys[next() % keys.len()].clone()
                }
                _ => break,
            };
            at = &mut at[key.as_str()];
        }
        *at = hostile[next() % hostile.len()].clone();
        p.write(".claude/orchestrator_state.json", &v.to_string());
        let _ = std::fs::remove_file(p.path(".claude/orchestrator_state.json.journal"));
        for args in [&["run", "status"][..], &["run", "metrics", "--json"], &["run", "resume"]] {
            let run = p.run(args);
            assert!(
                [0, 1, 2, 3, 4, 5].contains(&run.code) && !run.stderr.contains("panicked"),
                "{args:?} on {v}: {run:?}"
            );
        }
    }
}

#[test]
fn a_resume_refused_for_its_input_touches_neither_the_state_nor_the_lock() {
    let p = Project::with_config(&config(
        "",
        &[("planner", "echo plan > plan.txt")],
        "  - name: plan\n    agents: [planner]\n    requires_consensus: true\n  - name: build\n    agents: [planner]\n",
    ));
    p.run(&["run", "start"]).code(4);
    // A prompt template that no longer renders, then a phase name that does not exist.
    p.write(".claude/prompts/planner.md", "{{ nothing.here }}\n");
    let before = p.tree();
    p.run(&["run", "resume"]).code(3).stderr_has("nothing");
    assert_eq!(before, p.tree(), "the lock file or the state changed");
    std::fs::remove_file(p.path(".claude/prompts/planner.md")).unwrap();
    let before = p.tree();
    p.run(&["run", "retry", "--phase", "nope"]).code(2);
    assert_eq!(before, p.tree());
}

#[test]
fn a_refused_decision_takes_no_lock() {
    let p = project();
    p.run(&["run", "start"]).code(0);
    let before = p.tree();
    p.run(&["run", "approve"]).code(2).stderr_has("no phase of run");
    p.run(&["run", "reject", "--reason", "x", "--phase", "nope"]).code(2);
    assert_eq!(before, p.tree());
}
