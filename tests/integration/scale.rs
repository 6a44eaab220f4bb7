//! Large phases: memory that follows the number of agents with a small constant, a journal that
//! grows by a bounded record per agent while the snapshot stays put, and a killed large phase
//! that resumes with nothing lost. Nothing here is timed: each test counts what a user can see
//! (files, their sizes, what agents read about their parent).

use crate::harness::{Project, alive, config, pid_in, wait_for};

/// A parallel phase of `n` agents named `a0`…; `command(i)` is agent `i`'s command.
fn wide_phase(n: usize, workers: usize, command: impl Fn(usize) -> String) -> Project {
    let agents: Vec<(String, String)> = (0..n).map(|i| (format!("a{i}"), command(i))).collect();
    let refs: Vec<(&str, &str)> = agents.iter().map(|(a, c)| (a.as_str(), c.as_str())).collect();
    let names: Vec<&str> = refs.iter().map(|(a, _)| *a).collect();
    Project::with_config(&config(
        &format!("  max_parallel_agents: {workers}\n  retry: {{retries: 0}}"),
        &refs,
        &format!("  - name: wide\n    parallel: true\n    agents: [{}]\n", names.join(", ")),
    ))
}

/// The orchestrator's peak resident memory in KiB as its agents saw it (`VmHWM` of their parent),
/// read by the last agent of a phase of `n`.
#[cfg(target_os = "linux")]
fn peak_kib_with(n: usize) -> u64 {
    let p =
        wide_phase(
            n,
            2,
            |i| {
                if i + 1 == n { "grep VmHWM /proc/$PPID/status > hwm".to_owned() } else { "true".to_owned() }
            },
        );
    p.run(&["run", "start"]).code(0);
    let hwm = p.read("hwm");
    hwm.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or_else(|| panic!("VmHWM line: {hwm}"))
}

/// Every agent's task once held its own copy of the phase (all its agent names), all spawned at
/// the start: 1,000 agents took ~90 MiB where 100 took ~25. Now the tasks in flight follow the
/// workers and share the phase, and the 900 agents more cost a few MiB (~1 KiB of state each).
#[cfg(target_os = "linux")]
#[test]
fn memory_grows_with_agents_by_a_small_constant() {
    let small = peak_kib_with(100);
    let large = peak_kib_with(1000);
    let per_agent = large.saturating_sub(small) as f64 / 900.0;
    assert!(
        per_agent < 16.0,
        "peak RSS {small} KiB with 100 agents, {large} KiB with 1,000: {per_agent:.1} KiB per agent more"
    );
}

/// Each agent of a sequential phase records the snapshot's checksum and the size of the journal
/// (the earlier agents' records) as it starts. The snapshot is written at phase boundaries only, and each agent adds a record of
/// its own size to the journal (running, then finished): never the whole phase or state again.
#[test]
fn agents_append_bounded_journal_records_and_never_rewrite_the_snapshot() {
    let n = 40;
    // The journal without this agent's own "running" record, which may or may not be written
    // yet when the agent looks.
    let probe = "echo \"$(cksum < .claude/orchestrator_state.json) \
                 $(grep -v \"\\\"agent\\\":\\\"$ORCHESTRATOR_AGENT\\\"\" .claude/orchestrator_state.json.journal | wc -c)\" >> seen";
    let agents: Vec<(String, String)> = (0..n).map(|i| (format!("a{i}"), probe.to_owned())).collect();
    let refs: Vec<(&str, &str)> = agents.iter().map(|(a, c)| (a.as_str(), c.as_str())).collect();
    let names: Vec<&str> = refs.iter().map(|(a, _)| *a).collect();
    let p = Project::with_config(&config(
        "",
        &refs,
        &format!("  - name: long\n    agents: [{}]\n  - name: after\n    agents: [a0]\n", names.join(", ")),
    ));
    p.run(&["run", "start"]).code(0);
    let seen = p.read("seen");
    let rows: Vec<(String, u64)> = seen
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (format!("{} {}", w[0], w[1]), w[2].parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), n + 1, "{seen}");
    let long = &rows[..n];
    assert!(long.iter().all(|(sum, _)| *sum == long[0].0), "the snapshot changed while the phase ran:\n{seen}");
    // The next phase starts from a snapshot that folded the journal in.
    assert_ne!(rows[n].0, long[0].0, "{seen}");
    assert_eq!(rows[n].1, 0, "the journal was not folded into the snapshot at the phase's end:\n{seen}");

    let steps: Vec<u64> = long.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let first = steps[0];
    assert!(first > 0 && first < 2048, "one agent's records take {first} bytes:\n{seen}");
    for (i, step) in steps.iter().enumerate() {
        // Names, process ids, durations and (on a loaded machine) an agent's pid or timing notes
        // differ in length by some bytes; a record per earlier agent would add hundreds per agent,
        // growing with i.
        assert!(step.abs_diff(first) <= 512, "agent a{} added {step} bytes, the first {first}:\n{seen}", i + 1);
    }
    let state = p.state();
    assert_eq!(state["phases"]["long"]["agents"].as_object().unwrap().len(), n);
    assert!(p.read(".claude/orchestrator_state.json.journal").len() < 1024);
}

/// A wide phase is started a few agents at a time: killed in the middle, with agents done,
/// one running and most never started, a resume runs each unfinished agent once and no
/// finished one again.
#[test]
fn a_wide_phase_killed_midway_resumes_every_agent_exactly_once() {
    let n = 60;
    let p = wide_phase(n, 2, |i| {
        if i == 20 {
            // Holds a worker until the run is resumed.
            "echo a20 >> ran; if [ -f resumed ]; then exit 0; fi; sleep 300 & echo $! > blocker.pid; wait".to_owned()
        } else if i == 30 {
            "echo a30 >> ran; touch reached; if [ -f resumed ]; then exit 0; fi; sleep 300".to_owned()
        } else {
            format!("echo a{i} >> ran")
        }
    });
    let mut child = p.spawn(&["run", "start"]);
    let blocker = pid_in(&p, "blocker.pid");
    wait_for("agent a30 to start", || p.exists("reached"));
    child.kill().unwrap(); // SIGKILL: no cleanup at all
    child.wait().unwrap();
    let before: Vec<String> = p.read("ran").lines().map(str::to_owned).collect();
    assert!(before.len() < n, "the phase should be unfinished: {before:?}");

    p.write("resumed", "");
    p.run(&["run", "resume"]).code(0).stdout_has("completed");
    assert!(!alive(blocker), "resume must kill what the dead run left behind");
    let ran = p.read("ran");
    for i in 0..n {
        let times = ran.lines().filter(|l| *l == format!("a{i}")).count();
        let expected = if i == 20 || i == 30 { 2 } else { 1 };
        assert_eq!(times, expected, "agent a{i} ran {times} times:\n{ran}");
    }
    let state = p.state();
    assert_eq!(state["phases"]["wide"]["status"], "succeeded");
    assert_eq!(state["phases"]["wide"]["agents"].as_object().unwrap().len(), n);
}

#[cfg(target_os = "linux")]
#[test]
fn many_agents_at_a_time_under_a_low_limit_on_open_files_all_run() {
    // 64 descriptors for the whole process, 4 agents at a time printing on both streams: no agent
    // fails for want of one, and every transcript holds both lines.
    let agents: Vec<(String, String)> =
        (0..30).map(|i| (format!("a{i}"), format!("echo out {i}; echo err {i} >&2; sleep 0.05"))).collect();
    let refs: Vec<(&str, &str)> = agents.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
    let names: Vec<&str> = refs.iter().map(|(n, _)| *n).collect();
    let p = Project::with_config(&config(
        "  max_parallel_agents: 4\n  retry: {retries: 0}",
        &refs,
        &format!("  - name: build\n    parallel: true\n    agents: [{}]\n", names.join(", ")),
    ));
    let out = p
        .command_via("/bin/sh", &["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", crate::harness::BIN, "run", "start"])
        .output()
        .unwrap();
    let run = crate::harness::Run::from_output(out);
    run.code(0);
    let state = p.state();
    for i in 0..30 {
        let agent = &state["phases"]["build"]["agents"][format!("a{i}")];
        assert_eq!(agent["status"], "succeeded", "a{i}: {agent:#}");
        let transcript = p.read(agent["transcript"].as_str().unwrap());
        assert!(
            transcript.contains(&format!("out {i}\n")) && transcript.contains(&format!("err {i}\n")),
            "{transcript}"
        );
    }
}

#[test]
fn many_phases_at_once_under_a_low_limit_on_open_files_all_run() {
    // 200 independent phases start together, 128 descriptors for the whole process: the places
    // each phase has among the agents prepared ahead (each holding its transcript open) are
    // bounded by the limit, so none fails for want of a descriptor.
    let mut phases = String::new();
    for i in 0..200 {
        phases.push_str(&format!("  - {{name: p{i}, needs: [], agents: [a]}}\n"));
    }
    let p = Project::with_config(&config("  max_parallel_agents: 2", &[("a", "echo ran")], &phases));
    let out = p
        .command_via("/bin/sh", &["-c", "ulimit -n 128 && exec \"$0\" \"$@\"", crate::harness::BIN, "run", "start"])
        .output()
        .unwrap();
    crate::harness::Run::from_output(out).code(0).stdout_has("all 200 phases done");
    let state = p.state();
    for i in 0..200 {
        assert_eq!(state["phases"][format!("p{i}")]["agents"]["a"]["status"], "succeeded", "p{i}");
    }
}
