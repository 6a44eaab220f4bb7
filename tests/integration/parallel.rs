//! Ordering and parallelism: sequential phases in order, parallel phases bounded by
//! `max_parallel_agents`, independent phases together, and stepping with `run next`/`run phase`.

use crate::harness::{Project, config};

/// The largest number of agents seen running at once, from the `seen N` lines in `log`.
fn max_overlap(log: &str) -> usize {
    log.lines()
        .filter_map(|l| l.strip_prefix("seen ").or_else(|| l.strip_prefix("left ")))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// How many agents began (one `seen` line each).
fn began(log: &str) -> usize {
    log.lines().filter(|l| l.starts_with("seen ")).count()
}

/// An agent that marks itself running, notes how many are, and waits (no clock involved) until
/// `together` run at once or no more can start (all `total` have begun); it gives up after about
/// 30 s so that a broken limit fails the assertion instead of hanging the test. It notes how many
/// run again as it leaves, still running itself: the one that saw company notes it even if the
/// other noted itself alone (the first can leave before the second looks).
fn meeting(name: &str, together: usize, total: usize) -> String {
    format!(
        "mkdir -p running finished; touch running/{name}; echo seen $(ls running | wc -l) >> log; i=0; \
         while [ $(ls running | wc -l) -lt {together} ] && [ $(( $(ls running | wc -l) + $(ls finished | wc -l) )) -lt {total} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         echo left $(ls running | wc -l) >> log; touch finished/{name}; rm running/{name}"
    )
}

fn worker(name: &str) -> (String, String) {
    (name.to_owned(), meeting(name, 2, 6))
}

#[test]
fn parallel_phase_runs_at_most_max_parallel_agents_at_once() {
    let agents: Vec<(String, String)> = (1..=6).map(|i| worker(&format!("w{i}"))).collect();
    let refs: Vec<(&str, &str)> = agents.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let p = Project::with_config(&config(
        "  max_parallel_agents: 2",
        &refs,
        "  - name: build\n    parallel: true\n    agents: [w1, w2, w3, w4, w5, w6]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let log = p.read("log");
    assert_eq!(began(&log), 6);
    assert_eq!(max_overlap(&log), 2, "{log}");

    // The command-line override wins.
    for dir in ["running", "finished"] {
        std::fs::remove_dir_all(p.path(dir)).unwrap();
    }
    std::fs::remove_file(p.path("log")).unwrap();
    let three: Vec<(String, String)> =
        (1..=6).map(|i| format!("w{i}")).map(|n| (n.clone(), meeting(&n, 3, 6))).collect();
    let refs: Vec<(&str, &str)> = three.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    p.write(
        ".claude/config.yaml",
        &config(
            "  max_parallel_agents: 2",
            &refs,
            "  - name: build\n    parallel: true\n    agents: [w1, w2, w3, w4, w5, w6]\n",
        ),
    );
    p.run(&["run", "start", "--force", "--max-workers", "3"]).code(0);
    let log = p.read("log");
    assert_eq!(max_overlap(&log), 3, "{log}");
}

#[test]
fn sequential_phase_runs_agents_in_order_and_stops_at_the_first_failure() {
    let p = Project::with_config(&config(
        "  retry: {retries: 0}",
        &[("one", "echo one >> log"), ("two", "echo two >> log; exit 4"), ("three", "echo three >> log")],
        "  - name: build\n    agents: [one, two, three]\n",
    ));
    p.run(&["run", "start"]).code(1);
    assert_eq!(p.read("log"), "one\ntwo\n");
}

#[test]
fn phases_follow_declared_order_or_needs() {
    let p = Project::with_config(&config(
        "",
        &[("a", "echo $ORCHESTRATOR_PHASE >> log")],
        "  - name: first\n    agents: [a]\n  - name: second\n    agents: [a]\n  - name: third\n    agents: [a]\n    needs: [first]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let log = p.read("log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "first");
    assert!(lines.contains(&"second") && lines.contains(&"third"));
}

#[test]
fn independent_phases_run_together() {
    let p = Project::with_config(&config(
        "  max_parallel_agents: 2",
        &[("a", meeting("$ORCHESTRATOR_PHASE", 2, 2).as_str())],
        "  - name: left\n    agents: [a]\n    needs: []\n  - name: right\n    agents: [a]\n    needs: []\n",
    ));
    p.run(&["run", "start"]).code(0);
    assert_eq!(max_overlap(&p.read("log")), 2);
}

#[test]
fn stepping_needs_a_run_and_run_phase_does_not_run_a_phase_twice() {
    let p = Project::with_config(&config(
        "",
        &[("a", "echo $ORCHESTRATOR_PHASE >> log")],
        "  - name: first\n    agents: [a]\n  - name: second\n    agents: [a]\n",
    ));
    // A dry run starts nothing, so there is still no run to step through.
    p.run(&["run", "start", "--dry-run"]).code(0);
    p.run(&["run", "next"]).code(2).stderr_has("no run has been started here");
    p.run(&["run", "start"]).code(0);
    assert_eq!(p.read("log"), "first\nsecond\n");
    // A repeated step (a re-run job, a duplicate event) runs nothing again.
    p.run(&["run", "phase", "second"]).code(0).stderr_has("phase `second` has already run (succeeded)");
    assert_eq!(p.read("log"), "first\nsecond\n");
    p.run(&["run", "phase", "secnd"]).code(2).stderr_has("did you mean `second`?");
}

#[test]
fn run_next_runs_only_what_is_ready() {
    let p = Project::with_config(&config(
        "",
        &[("a", "echo $ORCHESTRATOR_PHASE >> log")],
        "  - name: first\n    agents: [a]\n    requires_consensus: true\n  - name: second\n    agents: [a]\n  - name: third\n    agents: [a]\n",
    ));
    p.run(&["run", "start"]).code(4);
    p.run(&["run", "approve", "--no-continue"]).code(0);
    p.run(&["run", "phase", "third"]).code(2).stderr_has("phase `third` needs `second` (pending) first");
    p.run(&["run", "next"]).code(0).stdout_has("next: `orchestrator run next`");
    assert_eq!(p.read("log"), "first\nsecond\n");
    p.run(&["run", "phase", "third"]).code(0).stdout_has("completed");
    assert_eq!(p.read("log"), "first\nsecond\nthird\n");
}

#[test]
fn parallel_flag_runs_a_sequential_phase_concurrently() {
    // Sequentially each agent finds itself alone; it does not wait for company.
    let alone: Vec<(String, String)> =
        (1..=2).map(|i| format!("w{i}")).map(|n| (n.clone(), meeting(&n, 1, 2))).collect();
    let refs: Vec<(&str, &str)> = alone.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let p = Project::with_config(&config("", &refs, "  - name: build\n    agents: [w1, w2]\n"));
    p.run(&["run", "start"]).code(0);
    assert_eq!(max_overlap(&p.read("log")), 1);
    assert_eq!(began(&p.read("log")), 2);
    // With --parallel both run, and each waits until the other is there.
    let met: Vec<(String, String)> = (1..=2).map(|i| format!("w{i}")).map(|n| (n.clone(), meeting(&n, 2, 2))).collect();
    let refs: Vec<(&str, &str)> = met.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    p.write(".claude/config.yaml", &config("", &refs, "  - name: build\n    agents: [w1, w2]\n"));
    for dir in ["running", "finished"] {
        std::fs::remove_dir_all(p.path(dir)).unwrap();
    }
    std::fs::remove_file(p.path("log")).unwrap();
    p.run(&["run", "start", "--parallel"]).code(0);
    assert_eq!(max_overlap(&p.read("log")), 2);
}

/// Shell agents take their slots through the launcher (a slot handed straight from an exiting
/// agent to the next in line); an LLM agent holds one from the engine, and its own commands run
/// within it. Both kinds share `max_parallel_agents`, and every agent runs once.
#[test]
fn llm_and_shell_agents_share_the_slots() {
    use crate::fake_api::{FakeApi, anthropic_text, anthropic_tools};
    let api = FakeApi::start(vec![
        anthropic_tools(&[("t1", "run_command", serde_json::json!({"command": meeting("writer", 2, 5)}))]),
        anthropic_text("done", "end_turn"),
    ]);
    let mut cfg = config(
        "  max_parallel_agents: 2",
        &[
            ("w1", &meeting("w1", 2, 5)),
            ("w2", &meeting("w2", 2, 5)),
            ("w3", &meeting("w3", 2, 5)),
            ("w4", &meeting("w4", 2, 5)),
        ],
        "  - name: build\n    parallel: true\n    agents: [w1, writer, w2, w3, w4]\n",
    );
    cfg = cfg.replace(
        "agents:\n",
        &format!(
            "agents:\n  writer:\n    llm:\n      provider: anthropic\n      model: test-model\n      base_url: \"{}\"\n      api_key_env: TEST_LLM_KEY\n      max_tokens: 1000\n      allow_commands: true\n",
            api.url
        ),
    );
    let p = Project::with_config(&cfg);
    p.write(".claude/prompts/writer.md", "Meet the others.\n");
    let out = p.command(&["run", "start"]).env("TEST_LLM_KEY", "sk-test-0123456789abcdef").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let log = p.read("log");
    assert_eq!(began(&log), 5, "{log}");
    assert_eq!(max_overlap(&log), 2, "{log}");
    assert_eq!(api.seen().len(), 2, "the LLM agent ran once");
    let state = p.state();
    for a in ["w1", "w2", "w3", "w4", "writer"] {
        assert_eq!(state["phases"]["build"]["agents"][a]["attempts"].as_array().unwrap().len(), 1, "{a}");
    }
}

/// An agent's time, in the state, the metrics and JUnit, is its own: from its first attempt's
/// start, not from when it joined the line for a slot.
#[test]
fn an_agents_time_leaves_out_its_wait_for_a_slot() {
    let agents = [("a", "sleep 0.4"), ("b", "sleep 0.4"), ("c", "sleep 0.4"), ("d", "sleep 0.4")];
    let p = Project::with_config(&config(
        "  max_parallel_agents: 1",
        &agents,
        "  - name: build\n    parallel: true\n    agents: [a, b, c, d]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let state = p.state();
    let run_id = state["run_id"].as_str().unwrap().to_owned();
    let metrics: serde_json::Value =
        serde_json::from_str(&p.read(&format!(".claude/metrics/run_{run_id}.json"))).unwrap();
    let junit = p.read("reports/junit.xml");
    for (name, _) in agents {
        let agent = &state["phases"]["build"]["agents"][name];
        let own = agent["attempts"][0]["duration_s"].as_f64().unwrap();
        let total = agent["duration_s"].as_f64().unwrap();
        // The last agent waited three agents' time (1.2 s) for the one slot: none of it counts.
        assert!(total >= own && total < own + 0.3, "{name}: {total} s for an attempt of {own} s");
        let runtime = metrics["phases"]["build"]["agent_runtimes"][name].as_f64().unwrap();
        assert_eq!(runtime, total, "{name}");
        let case = junit.split("<testcase ").find(|c| c.starts_with(&format!("name=\"{name}\""))).expect("a case");
        let tag = &case[..case.find('>').unwrap()];
        let time: f64 = tag.split("time=\"").nth(1).and_then(|t| t.split('"').next()).unwrap().parse().unwrap();
        assert!(time >= own && time < own + 0.3, "{name}: JUnit says {time} s: {tag}");
    }
}

/// Each agent notes its start and end in `log`.
const NOTED: &str = "echo start $ORCHESTRATOR_AGENT >> log; sleep 0.1; echo end $ORCHESTRATOR_AGENT >> log";

/// Phase `big` (parallel, `big` agents running `big_command`) beside phase `small` (s0, s1, s2
/// in order, each noting its start and end), `workers` at a time: for each small agent, how
/// many big agents started between the previous small agent's end (or the run's start) and its
/// own start.
fn big_starts_before_each_small(big: usize, big_command: &str, workers: usize) -> Vec<usize> {
    let big: Vec<String> = (0..big).map(|i| format!("b{i}")).collect();
    let small = ["s0", "s1", "s2"];
    let agents: Vec<(&str, &str)> =
        big.iter().map(|a| (a.as_str(), big_command)).chain(small.map(|a| (a, NOTED))).collect();
    let p = Project::with_config(&config(
        &format!("  max_parallel_agents: {workers}"),
        &agents,
        &format!(
            "  - name: big\n    parallel: true\n    agents: [{}]\n  - name: small\n    needs: []\n    agents: [s0, s1, s2]\n",
            big.join(", ")
        ),
    ));
    p.run(&["run", "start"]).code(0);
    let log = p.read("log");
    let lines: Vec<&str> = log.lines().collect();
    let at = |line: &str| lines.iter().position(|l| *l == line).unwrap_or_else(|| panic!("no `{line}` in\n{log}"));
    (0..small.len())
        .map(|k| {
            let ended = if k == 0 { 0 } else { at(&format!("end s{}", k - 1)) };
            lines[ended..at(&format!("start s{k}"))].iter().filter(|l| l.starts_with("start b")).count()
        })
        .collect()
}

/// A phase that runs beside a large parallel one takes turns with it for the slots: its next
/// agent is not put behind all the agents the large phase keeps prepared in line.
#[test]
fn a_phase_beside_a_large_parallel_phase_takes_turns_for_the_slots() {
    let passed = big_starts_before_each_small(40, NOTED, 2);
    // Before, about as many as the big phase keeps in line (14) went first.
    assert!(passed.iter().all(|&n| n <= 4), "big agents started before each small one: {passed:?}");
}

/// A retry goes first in line: it does not wait behind the agents prepared after it.
#[test]
fn a_retry_goes_before_the_agents_waiting_in_line() {
    let flaky = "echo start $ORCHESTRATOR_AGENT >> log; if [ ! -e failed ]; then touch failed; exit 75; fi";
    let slow = "echo start $ORCHESTRATOR_AGENT >> log; sleep 0.5";
    let p = Project::with_config(&config(
        "  max_parallel_agents: 1\n  retry: {retries: 2, base_delay: 0.05, jitter: 0}",
        &[("a0", flaky), ("a1", slow), ("a2", slow), ("a3", slow)],
        "  - name: build\n    parallel: true\n    agents: [a0, a1, a2, a3]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let log = p.read("log");
    let order: Vec<&str> = log.lines().map(|l| l.trim_start_matches("start ")).collect();
    assert_eq!(order, ["a0", "a1", "a0", "a2", "a3"], "{log}");
    // Its time is its own two attempts and the delay between them, not the agents' after it.
    let a0 = &p.state()["phases"]["build"]["agents"]["a0"];
    assert!(a0["duration_s"].as_f64().unwrap() < 1.0, "{a0}");
}

/// The turns hold when a slot comes back through the runtime rather than a launcher thread: here
/// each agent of the big phase leaves a process behind, which is stopped before its slot goes on.
#[test]
fn phases_take_turns_also_for_slots_freed_after_leftover_processes() {
    let leaves_one = "echo start $ORCHESTRATOR_AGENT >> log; sleep 5 >/dev/null 2>&1 & sleep 0.05; echo end $ORCHESTRATOR_AGENT >> log";
    let passed = big_starts_before_each_small(12, leaves_one, 1);
    // Before, s0 waited for eight of them (all the big phase kept in line).
    assert!(passed.iter().all(|&n| n <= 3), "big agents started before each small one: {passed:?}");
}
