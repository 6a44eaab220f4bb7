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
    std::thread::sleep(std::time::Duration::from_millis(1100));
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
