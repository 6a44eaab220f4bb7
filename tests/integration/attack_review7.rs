//! Adversarial review of the launcher (`src/executor/launcher.rs`): threads that start shell
//! agents, wait for them and hand their slot straight to the next agent in line. An agent runs
//! as the same user as the tool and may fork, ignore signals or leave children behind; the
//! environment the tool starts in may be hostile too.

use crate::harness::{Project, config};

/// An agent that notes how many agents' processes it finds running besides itself (`seen N`,
/// itself included), then leaves a child behind and exits at once: `child` is the shell that
/// starts it (with its output and its handling of SIGTERM).
fn forking_agent(child: &str) -> String {
    format!(
        "mkdir -p pids; n=1; for f in pids/*; do [ -f \"$f\" ] || continue; \
         s=$(sed -n 's/^State:[[:space:]]*\\(.\\).*/\\1/p' /proc/$(cat \"$f\")/status 2>/dev/null); \
         [ -n \"$s\" ] && [ \"$s\" != Z ] && n=$((n+1)); done; echo seen $n >> log; \
         {child} & echo $! > pids/$ORCHESTRATOR_AGENT; exit 0"
    )
}

fn phase_of(agents: &[(String, String)]) -> String {
    let names: Vec<&str> = agents.iter().map(|(n, _)| n.as_str()).collect();
    format!("  - name: build\n    parallel: true\n    agents: [{}]\n", names.join(", "))
}

/// Finding: the launcher thread handed the slot to the next agent as soon as the agent's shell
/// exited, while what it left in its group still ran (until its task killed the group: after
/// the grace period for a child that ignores SIGTERM, after the leak grace for one that holds
/// the output). With `max_parallel_agents: 1` two agents' processes ran at once; before the
/// launcher the slot was held until the agent's group was gone. Variants: a child that closed
/// its output and ignores SIGTERM, one that keeps the output open, one that does both.
#[test]
fn an_agent_that_leaves_children_behind_keeps_its_slot_until_they_are_gone() {
    for child in ["(trap '' TERM; sleep 5) >/dev/null 2>&1", "sleep 5", "(trap '' TERM; sleep 5)"] {
        let agents: Vec<(String, String)> = (1..=4).map(|i| (format!("a{i}"), forking_agent(child))).collect();
        let refs: Vec<(&str, &str)> = agents.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let p = Project::with_config(&config("  max_parallel_agents: 1", &refs, &phase_of(&agents)));
        p.run(&["run", "start"]).code(0);
        let log = p.read("log");
        assert_eq!(log.lines().count(), 4, "{log}");
        assert!(log.lines().all(|l| l == "seen 1"), "more than one agent ran at once ({child}):\n{log}");
    }
}

/// Finding: started with SIGCHLD ignored (a disposition a parent passes on through `exec`), the
/// kernel reaps the agents itself, so the launcher's wait found no child and every agent that
/// exited 0 was recorded with an unknown outcome (the run failed). The tool now takes SIGCHLD
/// back before its first agent starts. Parallel and sequential, several agents each.
#[test]
fn an_inherited_ignored_sigchld_does_not_lose_the_agents_exit_status() {
    let agents = [("a", "echo a; exit 0"), ("b", "echo b; exit 0"), ("c", "exit 3")];
    let p = Project::with_config(&config(
        "  max_parallel_agents: 2\n  retry: {retries: 0}",
        &agents,
        "  - name: fan\n    parallel: true\n    agents: [a, b]\n  - name: after\n    agents: [a, c]\n",
    ));
    // A parent that ignores SIGCHLD and execs the tool (bash passes the disposition on).
    let mut bash =
        p.command_via("bash", &["-c", "trap '' CHLD; exec \"$@\"", "sh", crate::harness::BIN, "run", "start"]);
    let out = crate::harness::Run::from_output(bash.output().unwrap());
    out.code(1);
    let state = p.state();
    let outcome = |phase: &str, agent: &str| state["phases"][phase]["agents"][agent]["attempts"][0].clone();
    for (phase, agent, code) in [("fan", "a", 0), ("fan", "b", 0), ("after", "a", 0), ("after", "c", 3)] {
        assert_eq!(outcome(phase, agent)["exit_code"], code, "{phase}/{agent}: {}", out.stderr);
    }
}

/// Held: agents that fork and exit at once, close their output early, kill their own group,
/// `exec` something else, leave a `setsid` daemon or die by SIGKILL leave no zombie behind in
/// the tool: an agent of a later phase finds no exited child of its parent left unreaped.
#[test]
fn misbehaving_agents_leave_no_zombie_children_in_the_tool() {
    let agents = [
        ("fork", "sleep 2 & exit 0"),
        ("closed", "exec 1>&- 2>&-; sleep 0.1"),
        ("own_group", "trap '' TERM; kill -TERM 0; exit 0"),
        ("execs", "exec sleep 0.05"),
        ("daemon", "(setsid sleep 3 &); exit 0"),
        ("killed", "sh -c 'kill -KILL $$'; exit 0"),
        ("many", "for i in 1 2 3 4 5; do sleep 0.01 & done; exit 0"),
        ("orphan", "(sleep 0.2 &); exit 0"),
        (
            "check",
            "z=0; for f in /proc/[0-9]*/status; do pp=$(sed -n 's/^PPid:[[:space:]]*//p' $f 2>/dev/null); \
             st=$(sed -n 's/^State:[[:space:]]*\\(.\\).*/\\1/p' $f 2>/dev/null); \
             [ \"$pp\" = \"$PPID\" ] && [ \"$st\" = Z ] && z=$((z+1)); done; echo zombies $z > zombies.txt",
        ),
    ];
    let p = Project::with_config(&config(
        "  max_parallel_agents: 2",
        &agents,
        "  - name: misbehave\n    parallel: true\n    agents: [fork, closed, own_group, execs, daemon, killed, many, orphan]\n  - name: after\n    agents: [check]\n",
    ));
    p.run(&["run", "start"]).code(0);
    assert_eq!(p.read("zombies.txt"), "zombies 0\n");
}

/// Finding: a launcher thread whose shell agent exited handed its slot to the next shell agent
/// in its line, past an LLM agent that had waited longer on the run's slots (the engine's
/// semaphore, first come first served): in a parallel phase mixing both, the LLM agent ran only
/// once no shell agent was left waiting. Both kinds now wait in one line.
#[test]
fn an_llm_agent_waiting_for_a_slot_is_not_passed_by_shell_agents_that_came_later() {
    use crate::fake_api::{FakeApi, anthropic_text, anthropic_tools};
    let api = FakeApi::start(vec![
        anthropic_tools(&[("t1", "run_command", serde_json::json!({"command": "echo llm >> log"}))]),
        anthropic_text("done", "end_turn"),
    ]);
    let shells: Vec<String> = (1..=10).map(|i| format!("s{i}")).collect();
    let mut yaml = format!(
        "orchestrator:\n  max_parallel_agents: 2\n  kill_grace_seconds: 0.5\nagents:\n  writer:\n    llm:\n      provider: anthropic\n      model: test-model\n      base_url: \"{}\"\n      api_key_env: TEST_LLM_KEY\n      max_tokens: 1000\n      allow_commands: true\n",
        api.url
    );
    for s in &shells {
        yaml.push_str(&format!("  {s}:\n    entrypoints:\n      default: \"echo {s} >> log; sleep 0.3\"\n"));
    }
    let mut order = vec!["s1", "s2", "writer"];
    order.extend(shells[2..].iter().map(String::as_str));
    yaml.push_str(&format!("phases:\n  - name: mixed\n    parallel: true\n    agents: [{}]\n", order.join(", ")));
    let p = Project::with_config(&yaml);
    p.write(".claude/intake.yaml", "name: demo\n");
    p.write(".claude/prompts/writer.md", "Work.\n");
    let out = p.command(&["run", "start"]).env("TEST_LLM_KEY", "sk-test-0123456789abcdef").output().unwrap();
    crate::harness::Run::from_output(out).code(0);
    let log = p.read("log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 11, "{log}");
    let at = lines.iter().position(|l| *l == "llm").unwrap();
    assert!(at <= 3, "the LLM agent, third in line, started {}th:\n{log}", at + 1);
}
