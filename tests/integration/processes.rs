//! Agents are supervised as process groups: timeouts and Ctrl-C leave no survivors, output is
//! streamed with bounded memory, and secrets never reach the transcript.

use crate::harness::{Project, alive, config, pid_in, wait_for};

/// An agent three levels deep: the agent's shell, a child shell that ignores SIGTERM, and a
/// grandchild `sleep`; each writes its pid.
const TREE: &str = r#"sh -c 'trap "" TERM; sleep 300 & echo $! > level3.pid; echo $$ > level2.pid; wait' & echo $$ > level1.pid; wait"#;

#[test]
fn timeout_kills_the_whole_process_tree() {
    let p = Project::with_config(&config(
        "  timeout_minutes: 0.01\n  retry: {retries: 0}",
        &[("tree", TREE)],
        "  - name: build\n    agents: [tree]\n",
    ));
    let out = p.run(&["run", "start"]);
    out.code(1).stderr_has("build/tree: failed: timed out (limit 0.6s) after");
    for file in ["level1.pid", "level2.pid", "level3.pid"] {
        let pid = pid_in(&p, file);
        assert!(!alive(pid), "{file}: pid {pid} survived the timeout");
    }
    let state = p.state();
    let attempt = &state["phases"]["build"]["agents"]["tree"]["attempts"][0];
    assert_eq!(attempt["timed_out"], true);
    let transcript = p.read(state["phases"]["build"]["agents"]["tree"]["transcript"].as_str().unwrap());
    assert!(transcript.contains("=== attempt 1: timed out (limit 0.6s) after"), "{transcript}");
}

#[test]
fn agent_exiting_while_children_hold_its_output_is_reported_and_its_group_killed() {
    let p = Project::with_config(&config(
        "",
        &[("leaky", "sleep 300 & echo $! > bg.pid; echo done")],
        "  - name: build\n    agents: [leaky]\n",
    ));
    p.run(&["run", "start"]).code(0).stderr_has("exited while its children still held its output open");
    let pid = pid_in(&p, "bg.pid");
    wait_for("the background child to be killed", || !alive(pid));
    assert_eq!(p.state()["phases"]["build"]["agents"]["leaky"]["attempts"][0]["leaked_output"], true);
}

/// Every line of `transcript` equal to `line`.
fn count_lines(transcript: &str, line: &str) -> usize {
    transcript.lines().filter(|l| *l == line).count()
}

#[test]
fn output_an_agent_leaves_in_its_pipes_at_exit_all_reaches_the_transcript() {
    // Quick agents have their output read at their exit: what fits in the pipes, what filled them
    // (and so was streamed before the exit), and what a process they left behind writes after.
    let p = Project::with_config(&config(
        "",
        &[
            ("burst", "yes o | head -n 20000; yes e | head -n 20000 >&2; printf 'no newline at the end'"),
            ("flood", "yes f | head -n 400000"),
            ("after", "(yes t | head -n 300000) & echo leader done"),
            ("late", "(sleep 0.1; echo late) & echo leader done"),
        ],
        "  - name: build\n    parallel: true\n    agents: [burst, flood, after, late]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let state = p.state();
    let transcript = |agent: &str| p.read(state["phases"]["build"]["agents"][agent]["transcript"].as_str().unwrap());
    let burst = transcript("burst");
    assert_eq!(count_lines(&burst, "o"), 20000);
    assert_eq!(count_lines(&burst, "e"), 20000);
    assert_eq!(count_lines(&burst, "no newline at the end"), 1, "{}", &burst[burst.len().saturating_sub(300)..]);
    assert_eq!(count_lines(&transcript("flood"), "f"), 400000);
    let after = transcript("after");
    assert_eq!(count_lines(&after, "leader done"), 1);
    assert_eq!(count_lines(&after, "t"), 300000);
    let late = transcript("late");
    assert_eq!(count_lines(&late, "leader done"), 1);
    assert_eq!(count_lines(&late, "late"), 1, "{late}");
}

#[test]
fn stdout_and_stderr_reach_the_transcript_in_the_order_they_were_written() {
    // Read as it comes: an error message stays where it was printed among the normal output,
    // in a quick agent as in a slow one.
    let script = |gap: f64| {
        format!("echo out-1; sleep {gap}; echo err-1 >&2; sleep {gap}; echo out-2; sleep {gap}; echo err-2 >&2")
    };
    let p = Project::with_config(&config(
        "",
        &[("quick", &script(0.03)), ("slow", &format!("{}; sleep 1; echo out-3", script(0.2)))],
        "  - name: build\n    parallel: true\n    agents: [quick, slow]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let state = p.state();
    for (agent, expected) in [
        ("quick", vec!["out-1", "err-1", "out-2", "err-2"]),
        ("slow", vec!["out-1", "err-1", "out-2", "err-2", "out-3"]),
    ] {
        let transcript = p.read(state["phases"]["build"]["agents"][agent]["transcript"].as_str().unwrap());
        let lines: Vec<&str> = transcript.lines().filter(|l| l.starts_with("out-") || l.starts_with("err-")).collect();
        assert_eq!(lines, expected, "{agent}: {transcript}");
    }
}

#[test]
fn background_children_that_closed_their_output_are_killed_too() {
    let p = Project::with_config(&config(
        "",
        &[("daemonish", "sleep 300 >/dev/null 2>&1 & echo $! > bg.pid")],
        "  - name: build\n    agents: [daemonish]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let pid = pid_in(&p, "bg.pid");
    wait_for("the background child to be killed", || !alive(pid));
}

#[test]
fn ctrl_c_stops_agents_and_leaves_a_resumable_state() {
    let p = Project::with_config(&config(
        "",
        &[("slow", "if [ -f second ]; then echo resumed; exit 0; fi; touch second; echo $$ > slow.pid; sleep 300")],
        "  - name: build\n    agents: [slow]\n  - name: after\n    agents: [slow]\n",
    ));
    let child = p.spawn(&["run", "start"]);
    let pid = pid_in(&p, "slow.pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!alive(pid), "the agent survived Ctrl-C");
    let state = p.state();
    assert_eq!(state["interrupted"], true);
    assert_eq!(state["phases"]["build"]["status"], "running");
    p.run(&["run", "status"]).code(0).stdout_has("interrupted");
    p.run(&["run", "resume"]).code(0).stdout_has("completed");
}

#[test]
fn secrets_from_the_environment_never_reach_the_transcript() {
    let p = Project::with_config(&config(
        "",
        &[(
            "leak",
            "echo \"token is $ANTHROPIC_API_KEY\"; echo \"ARTIFACT: $ANTHROPIC_API_KEY\"; echo \"gh=${GITHUB_TOKEN:-unset}\"; exit 3",
        )],
        "  - name: build\n    agents: [leak]\n",
    ));
    let out = p
        .command(&["run", "start"])
        .env("ANTHROPIC_API_KEY", "sk-ant-supersecretvalue123")
        .env("GITHUB_TOKEN", "ghs_supersecretvalue456")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("supersecret"), "{stderr}");
    assert!(stderr.contains("token is ***"), "{stderr}");
    assert!(stderr.contains("gh=unset"), "agents do not get the run's GitHub token: {stderr}");
    let state = p.read(".claude/orchestrator_state.json");
    assert!(!state.contains("supersecret"), "{state}");
    let transcript = p.read(p.state()["phases"]["build"]["agents"]["leak"]["transcript"].as_str().unwrap());
    assert!(transcript.contains("token is ***") && !transcript.contains("supersecret"), "{transcript}");
}

#[test]
fn agents_get_their_run_phase_name_workspace_and_prompt_file() {
    let p = Project::with_config(&config(
        "",
        &[(
            "env",
            "printf '%s|%s|%s|%s|%s\\n' \"$ORCHESTRATOR_RUN_ID\" \"$ORCHESTRATOR_PHASE\" \"$ORCHESTRATOR_AGENT\" \"$ORCHESTRATOR_WORKSPACE\" \"$ORCHESTRATOR_ATTEMPT\" > env.txt; cat \"$ORCHESTRATOR_PROMPT_FILE\" > prompt.txt",
        )],
        "  - name: build\n    agents: [env]\n",
    ));
    p.write(".claude/intake.yaml", "name: widget\n");
    p.write(".claude/prompts/env.md", "Build {{ project.name }} in {{ phase.name }} as {{ agent.name }}\n");
    p.run(&["run", "start"]).code(0);
    let run_id = p.state()["run_id"].as_str().unwrap().to_owned();
    let root = p.root().canonicalize().unwrap();
    assert_eq!(p.read("env.txt"), format!("{run_id}|build|env|{}|1\n", root.display()));
    assert_eq!(p.read("prompt.txt"), "Build widget in build as env\n");
}

/// Peak resident memory of `pid` so far, in KiB (Linux).
#[cfg(target_os = "linux")]
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Run an agent printing `bytes` bytes and return the orchestrator's peak memory in KiB.
#[cfg(target_os = "linux")]
fn peak_while_printing(bytes: u64) -> u64 {
    let p = Project::with_config(&config(
        "",
        &[("loud", &format!("yes 'a line of agent output, repeated' | head -c {bytes}"))],
        "  - name: build\n    agents: [loud]\n",
    ));
    let mut child = p.spawn(&["run", "start"]);
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(k) = peak_kib(child.id()) {
            peak = peak.max(k);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(child.wait().unwrap().success());
    let transcript = p.state()["phases"]["build"]["agents"]["loud"]["transcript"].as_str().unwrap().to_owned();
    let size = std::fs::metadata(p.path(&transcript)).unwrap().len();
    assert!(size >= bytes, "the transcript holds {size} bytes, fewer than the {bytes} printed");
    peak
}

#[cfg(target_os = "linux")]
#[test]
fn memory_stays_flat_while_an_agent_prints_200_mb() {
    let small = peak_while_printing(1_000_000);
    let large = peak_while_printing(200_000_000);
    assert!(large < small + 16 * 1024, "peak memory grew from {small} KiB to {large} KiB with 200 MB of output");
}

#[test]
fn second_ctrl_c_kills_agents_that_ignore_sigterm_at_once() {
    let p = Project::with_config(
        &config(
            "",
            // It notes each SIGTERM and goes on: the test knows when the first Ctrl-C was handled.
            &[(
                "stubborn",
                "trap 'echo term >> term.log' TERM; echo $$ > stubborn.pid; while true; do sleep 0.05; done",
            )],
            "  - name: build\n    agents: [stubborn]\n",
        )
        .replace("kill_grace_seconds: 0.5", "kill_grace_seconds: 3600"),
    );
    let mut child = p.spawn(&["run", "start"]);
    let pid = pid_in(&p, "stubborn.pid");
    let me = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(me, nix::sys::signal::Signal::SIGINT).unwrap();
    // The first Ctrl-C is handled (the agent got its SIGTERM) before the second is sent, so
    // the two cannot merge into one.
    crate::harness::wait_for("term.log", || p.read_opt("term.log").is_some_and(|s| s.contains("term")));
    assert!(alive(pid), "the first Ctrl-C should leave a SIGTERM-ignoring agent its grace period");
    assert!(child.try_wait().unwrap().is_none());
    nix::sys::signal::kill(me, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(!alive(pid), "the second Ctrl-C must kill the agent");
    assert_eq!(p.state()["interrupted"], true);
}

/// Processes that leave the agent's process group: `setsid`, a shell's job control, and a
/// `setsid` child that keeps the agent's output open. None survives its attempt.
#[test]
fn processes_that_leave_the_agents_group_do_not_survive_it() {
    let cases = [
        // Times out while its setsid'd sleep runs on.
        ("setsid", "setsid sleep 300 & echo $! > escaped.pid; sleep 300", true),
        // Job control: the background job gets a group of its own.
        ("jobs", "set -m; sleep 300 & echo $! > escaped.pid; sleep 300", true),
        // Succeeds at once, leaving a setsid'd child that holds its stdout.
        ("holder", "setsid sh -c 'echo $$ > escaped.pid; exec sleep 300' & sleep 0.2", false),
    ];
    for (name, command, times_out) in cases {
        let p = Project::with_config(&config(
            "  timeout_minutes: 0.01\n  retry: {retries: 0}",
            &[("agent", command)],
            "  - name: build\n    agents: [agent]\n",
        ));
        let run = p.run(&["run", "start"]);
        if times_out {
            run.code(1).stderr_has("timed out");
        }
        wait_for(&format!("{name}: its pid file"), || p.exists("escaped.pid"));
        let pid = pid_in(&p, "escaped.pid");
        wait_for(&format!("{name}: pid {pid} to be gone"), || !alive(pid));
    }
}

/// An agent that removes, moves or replaces the transcripts' folder while others wait in line
/// (their transcripts already opened) loses none of theirs: each is opened again where it
/// belongs as its agent starts.
#[test]
fn transcripts_of_agents_waiting_in_line_survive_an_agent_removing_or_moving_their_folder() {
    for (how, command) in [
        ("removed", "sleep 0.3; rm -rf .claude/logs/agents"),
        ("moved out", "sleep 0.3; mv .claude/logs/agents ../moved-away"),
        ("replaced", "sleep 0.3; mv .claude/logs/agents .claude/logs/old; mkdir .claude/logs/agents"),
    ] {
        let others: Vec<String> = (1..=6).map(|i| format!("a{i}")).collect();
        let mut agents = vec![("a0", command)];
        agents.extend(others.iter().map(|a| (a.as_str(), "echo hello from $ORCHESTRATOR_AGENT")));
        let p = Project::nested();
        p.write(
            ".claude/config.yaml",
            &config(
                "  max_parallel_agents: 1",
                &agents,
                &format!("  - name: build\n    parallel: true\n    agents: [a0, {}]\n", others.join(", ")),
            ),
        );
        p.run(&["run", "start"]).code(0);
        let state = p.state();
        for a in &others {
            let rel = state["phases"]["build"]["agents"][a]["transcript"].as_str().unwrap().to_owned();
            let transcript = p.read_opt(&rel).unwrap_or_else(|| panic!("{how}: {a}'s transcript is gone"));
            assert!(transcript.contains(&format!("hello from {a}")), "{how}: {a}: {transcript}");
        }
        // Nothing of theirs was written into the folder after it was moved out of the workspace
        // (the files it took along were empty: their agents had not started).
        let moved = p.outside().join("moved-away");
        let written: Vec<String> = std::fs::read_dir(&moved)
            .map(|d| d.filter_map(Result::ok).filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect())
            .unwrap_or_default();
        assert!(!written.iter().any(|t| t.contains("hello from")), "{how}: written out of the workspace: {written:?}");
    }
}

/// An agent that puts a link where a waiting agent's transcript is gets nothing written through
/// it: that agent's attempt fails, saying why, and the others run on.
#[test]
fn a_transcript_replaced_by_a_link_while_its_agent_waits_fails_that_agent_only() {
    let p = Project::nested();
    let victim = p.outside().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let swap =
        format!("sleep 0.3; f=$(ls .claude/logs/agents/*_a2.log); rm \"$f\"; ln -s '{}' \"$f\"", victim.display());
    p.write(
        ".claude/config.yaml",
        &config(
            "  max_parallel_agents: 1",
            &[("a0", swap.as_str()), ("a1", "echo one"), ("a2", "echo two"), ("a3", "echo three")],
            "  - name: build\n    parallel: true\n    agents: [a0, a1, a2, a3]\n",
        ),
    );
    p.run(&["run", "start"]).code(1);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let state = p.state();
    let agents = &state["phases"]["build"]["agents"];
    assert_eq!(agents["a2"]["status"], "failed", "{state}");
    let error = agents["a2"]["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("could not write the transcript") && error.contains("symlink"), "{error}");
    for a in ["a0", "a1", "a3"] {
        assert_eq!(agents[a]["status"], "succeeded", "{a}: {state}");
    }
}

/// Ctrl-C while agents wait in line: those that never started are not recorded, and JUnit says
/// they did not run (only the two that were running were interrupted).
#[test]
fn agents_that_never_started_are_not_run_after_ctrl_c() {
    let names: Vec<String> = (0..30).map(|i| format!("a{i}")).collect();
    let agents: Vec<(&str, &str)> =
        names.iter().map(|a| (a.as_str(), "touch started.$ORCHESTRATOR_AGENT; sleep 300")).collect();
    let p = Project::with_config(&config(
        "  max_parallel_agents: 2",
        &agents,
        &format!("  - name: build\n    parallel: true\n    agents: [{}]\n", names.join(", ")),
    ));
    let child = p.spawn(&["run", "start"]);
    wait_for("two agents to start", || p.exists("started.a0") && p.exists("started.a1"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let state = p.state();
    let recorded = state["phases"]["build"]["agents"].as_object().unwrap();
    assert_eq!(recorded.keys().collect::<Vec<_>>(), ["a0", "a1"], "{state}");
    let junit = p.read("reports/junit.xml");
    assert_eq!(junit.matches("type=\"interrupted\"").count(), 2, "{junit}");
    assert_eq!(junit.matches("type=\"not-run\"").count(), 28, "{junit}");
}
