//! Killing the orchestrator at any moment loses no completed agent; a second run on the same
//! state is refused; a corrupt state is refused without being touched.

use crate::harness::{Project, alive, config, pid_in, wait_for};

#[test]
fn kill_9_mid_phase_then_resume_finishes_without_rerunning_completed_agents() {
    let p = Project::with_config(&config(
        "  max_parallel_agents: 2",
        &[
            ("fast", "echo fast >> fast.log"),
            (
                "slow",
                "echo slow >> slow.log; if [ -f second ]; then exit 0; fi; touch second; sleep 300 & echo $! > slow.pid; wait",
            ),
            ("last", "echo last >> last.log"),
        ],
        "  - name: build\n    agents: [fast, slow]\n    parallel: true\n  - name: ship\n    agents: [last]\n",
    ));
    let mut child = p.spawn(&["run", "start"]);
    let orphan = pid_in(&p, "slow.pid");
    wait_for("the fast agent to be recorded", || {
        p.read_opt(".claude/orchestrator_state.json.journal")
            .is_some_and(|j| j.contains("\"agent\":\"fast\"") && j.contains("succeeded"))
    });
    child.kill().unwrap(); // SIGKILL: no cleanup at all
    child.wait().unwrap();
    assert!(alive(orphan), "the slow agent's process should outlive a SIGKILLed orchestrator");

    p.run(&["run", "resume"]).code(0).stdout_has("completed");
    assert!(!alive(orphan), "resume must kill what the dead run left behind");
    assert_eq!(p.read("fast.log"), "fast\n", "a completed agent ran again");
    assert_eq!(p.read("slow.log"), "slow\nslow\n");
    assert_eq!(p.read("last.log"), "last\n");
    let state = p.state();
    assert_eq!(state["phases"]["build"]["status"], "succeeded");
    assert_eq!(state["phases"]["ship"]["status"], "succeeded");
}

#[test]
fn a_second_concurrent_run_is_refused_with_a_clear_message() {
    let p = Project::with_config(&config(
        "",
        &[("wait", "echo $$ > wait.pid; while [ ! -f release ]; do sleep 0.05; done")],
        "  - name: build\n    agents: [wait]\n",
    ));
    let first = p.spawn(&["run", "start"]);
    pid_in(&p, "wait.pid");
    let state_before = p.read(".claude/orchestrator_state.json");
    for args in [&["run", "resume"][..], &["run", "start", "--force"][..], &["run", "next"][..]] {
        p.run(args)
            .code(6)
            .stderr_has(&format!("another orchestrator run (pid {}) holds the lock", first.id()))
            .stderr_has("orchestrator_state.json");
    }
    assert_eq!(p.read(".claude/orchestrator_state.json"), state_before);
    p.run(&["run", "status"]).code(0).stdout_has("running");
    p.write("release", "");
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn starting_over_an_unfinished_run_needs_force() {
    let p = Project::with_config(&config(
        "",
        &[("a", "true")],
        "  - name: build\n    agents: [a]\n    requires_consensus: true\n  - name: ship\n    agents: [a]\n",
    ));
    p.run(&["run", "start"]).code(4);
    let first = p.state()["run_id"].clone();
    p.run(&["run", "start"]).code(2).stderr_has("has not finished").stderr_has("run start --force");
    // Within the same second too: a new run never takes the old one's id.
    p.run(&["run", "start", "--force"]).code(4);
    assert_ne!(p.state()["run_id"], first);
}

#[test]
fn corrupt_state_is_refused_and_left_untouched() {
    let p = Project::with_config(&config("", &[("a", "true")], "  - name: build\n    agents: [a]\n"));
    p.write(".claude/orchestrator_state.json", "{\"version\": 1, \"run_id\": ");
    for args in [&["run", "resume"][..], &["run", "status"][..], &["run", "approve"][..]] {
        p.run(args).code(3).stderr_has("state file").stderr_has("is not valid").stderr_has("move it aside");
    }
    assert_eq!(p.read(".claude/orchestrator_state.json"), "{\"version\": 1, \"run_id\": ");
    p.write(".claude/orchestrator_state.json", "{\"version\": 7}");
    p.run(&["run", "resume"]).code(3).stderr_has("format version 7, newer than this build understands");
}

#[test]
fn commands_on_a_missing_run_say_how_to_start_one() {
    let p = Project::with_config(&config("", &[("a", "true")], "  - name: build\n    agents: [a]\n"));
    p.run(&["run", "resume"]).code(2).stderr_has("no run has been started here").stderr_has("orchestrator run start");
}

/// A finished run edited to look as if its process died while agent `a` of `build` ran in the
/// process group `pgid` (with `leader` recorded beside it).
fn died_while_running(pgid: i64, leader: serde_json::Value) -> Project {
    let p = Project::with_config(&config("", &[("a", "echo a >> a.log")], "  - name: build\n    agents: [a]\n"));
    p.run(&["run", "start"]).code(0);
    let mut state = p.state();
    state.as_object_mut().unwrap().remove("finished_at");
    state["phases"]["build"]["status"] = serde_json::json!("running");
    let agent = &mut state["phases"]["build"]["agents"]["a"];
    agent["status"] = serde_json::json!("running");
    agent["pgid"] = serde_json::json!(pgid);
    if !leader.is_null() {
        agent["pgid_leader"] = leader;
    }
    p.write(".claude/orchestrator_state.json", &serde_json::to_string_pretty(&state).unwrap());
    p
}

/// `sleep 300` in a process group of its own, as an unrelated program would be.
fn unrelated_group() -> std::process::Child {
    use std::os::unix::process::CommandExt;
    std::process::Command::new("sleep").arg("300").process_group(0).spawn().unwrap()
}

#[cfg(target_os = "linux")]
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().to_owned()
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks after boot.
#[cfg(target_os = "linux")]
fn start_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')').unwrap().1.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn resume_leaves_alone_a_recorded_group_that_is_not_the_runs() {
    let mut other = unrelated_group();
    let pgid = other.id() as i64;
    let mut cases = vec![
        (serde_json::Value::Null, "no start time was recorded with it"),
        (serde_json::json!({"started": 1, "boot_id": "an earlier boot"}), "the machine has restarted since"),
    ];
    #[cfg(target_os = "linux")]
    cases
        .push((serde_json::json!({"started": start_ticks(other.id()) + 1, "boot_id": boot_id()}), "the id was reused"));
    for (leader, why) in cases {
        let p = died_while_running(pgid, leader);
        let out = p.run(&["run", "resume"]);
        assert!(alive(pgid as i32), "resume killed an unrelated process ({why})");
        out.code(0)
            .stdout_has("completed")
            .stderr_has(&format!("note: process group {pgid} recorded for `build/a` was left alone: "))
            .stderr_has(why);
        assert_eq!(p.read("a.log"), "a\na\n", "the agent ran again");
        assert!(p.state()["phases"]["build"]["agents"]["a"].get("pgid").is_none());
    }
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn resume_never_signals_group_0_1_a_negative_id_or_its_own() {
    // In the test's own process group, which is also the orchestrator's (the harness does not
    // give it one of its own): `kill(0)`, `kill(-1)` or the own group would take it down too.
    let mut sentinel = std::process::Command::new("sleep").arg("300").spawn().unwrap();
    let own = nix::unistd::getpgrp().as_raw() as i64;
    for pgid in [0, 1, -1, -(sentinel.id() as i64), own] {
        let p = died_while_running(pgid, serde_json::json!({"started": 0, "boot_id": "x"}));
        let out = p.run(&["run", "resume"]);
        assert!(alive(sentinel.id() as i32), "resume with a recorded group {pgid} killed the test's own group");
        out.code(0)
            .stdout_has("completed")
            .stderr_has(&format!("note: process group {pgid} recorded for `build/a` was left alone: "));
    }
    sentinel.kill().unwrap();
    sentinel.wait().unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn resume_kills_a_recorded_group_only_with_its_leaders_start_time() {
    // The leader still runs, with the recorded start time: killed.
    let mut ours = unrelated_group();
    let pgid = ours.id() as i64;
    let p = died_while_running(pgid, serde_json::json!({"started": start_ticks(ours.id()), "boot_id": boot_id()}));
    p.run(&["run", "resume"]).code(0).stdout_has("completed");
    ours.wait().unwrap();

    // The leader is gone; its child is left in the group. Killed only if it started no earlier
    // than the recorded leader.
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let mut leader = std::process::Command::new("sh")
        .args(["-c", &format!("sleep 300 & echo $! > {}", pid_file.display())])
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = leader.id() as i64;
    leader.wait().unwrap();
    let child: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let later = start_ticks(child) + 1;
    let p = died_while_running(pgid, serde_json::json!({"started": later, "boot_id": boot_id()}));
    p.run(&["run", "resume"]).code(0).stderr_has("some of its processes started before the recorded agent did");
    assert!(alive(child as i32));
    let p = died_while_running(pgid, serde_json::json!({"started": start_ticks(child), "boot_id": boot_id()}));
    p.run(&["run", "resume"]).code(0).stdout_has("completed");
    wait_for("the group's last process to be killed", || !alive(child as i32));
}

#[test]
fn a_phase_end_is_saved_before_the_next_phase_starts() {
    // The second phase's agent reads the state as it is on disk, then kills the orchestrator
    // (its parent) once: the first phase must be on disk as succeeded, and a resume must not
    // run it again.
    let p = Project::with_config(&config(
        "",
        &[
            ("first", "echo ran >> first.log"),
            (
                "second",
                "cp .claude/orchestrator_state.json seen.json; if [ ! -f once ]; then touch once; kill -9 $PPID; sleep 5; fi",
            ),
        ],
        "  - name: build\n    agents: [first]\n  - name: ship\n    agents: [second]\n",
    ));
    let out = p.run(&["run", "start"]);
    assert_ne!(out.code, 0, "the orchestrator was killed by its agent: {}", out.stderr);
    let seen: serde_json::Value = serde_json::from_str(&p.read("seen.json")).unwrap();
    assert_eq!(seen["phases"]["build"]["status"], "succeeded", "{seen:#}");
    assert_eq!(seen["phases"]["ship"]["status"], "running", "{seen:#}");
    p.run(&["run", "resume"]).code(0).stdout_has("completed");
    assert_eq!(p.read("first.log"), "ran\n", "the saved phase ran again");
    let state = p.state();
    assert_eq!(state["phases"]["build"]["status"], "succeeded");
    assert_eq!(state["phases"]["ship"]["status"], "succeeded");
    assert!(state["finished_at"].is_string(), "{state:#}");
}

#[test]
fn a_phase_printed_as_ended_is_on_disk_as_ended() {
    // Killed the moment the phase's end is printed: the state on disk says so too, and a resume
    // does not run the agent a sequential phase skipped after its first failure.
    use std::io::BufRead;
    let p = Project::with_config(&config(
        "",
        &[("a", "echo a >> a.log; exit 1"), ("b", "echo b >> b.log")],
        "  - name: build\n    agents: [a, b]\n",
    ));
    let mut child = p.spawn(&["run", "start"]);
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let ended = line.contains("phase build failed");
        seen.push(line);
        if ended {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    child.wait().unwrap();
    assert!(seen.iter().any(|l| l.contains("phase build failed")), "{seen:#?}");
    assert_eq!(p.state()["phases"]["build"]["status"], "failed", "{:#}", p.state());
    p.run(&["run", "resume"]);
    assert!(!p.root().join("b.log").exists(), "a resume ran the agent the failed phase skipped");
    assert_eq!(p.read("a.log"), "a\n");
}

#[test]
fn a_resumed_sequential_phase_with_a_failed_agent_runs_nothing_after_it() {
    // The process was killed after the failed agent's end was journaled, before the phase's end
    // was saved: the phase is `running` on disk, its agent `failed`. The agents after the failed
    // one never run; the phase fails.
    let p = Project::with_config(&config(
        "  retry: {retries: 0}",
        &[("a", "echo a >> a.log"), ("b", "echo b >> b.log; exit 1"), ("c", "echo c >> c.log")],
        "  - name: build\n    agents: [a, b, c]\n  - name: after\n    needs: [build]\n    agents: [c]\n",
    ));
    p.run(&["run", "start"]).code(1);
    assert!(!p.root().join("c.log").exists());
    let mut state = p.state();
    let build = &mut state["phases"]["build"];
    assert_eq!(build["agents"]["b"]["status"], "failed");
    build["status"] = "running".into();
    build["finished_at"] = serde_json::Value::Null;
    build["error"] = serde_json::Value::Null;
    p.write(".claude/orchestrator_state.json", &serde_json::to_string_pretty(&state).unwrap());
    p.run(&["run", "resume"]).code(1).stderr_has("phase build failed");
    assert!(!p.root().join("c.log").exists(), "a resume ran an agent after the failed one");
    assert_eq!(p.read("a.log"), "a\n");
    assert_eq!(p.read("b.log"), "b\n");
    let state = p.state();
    assert_eq!(state["phases"]["build"]["status"], "failed");
    assert!(state["phases"]["after"].is_null() || state["phases"]["after"]["status"] == "pending", "{state:#}");
}
