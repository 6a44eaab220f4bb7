//! Retry sequences: decided by exit code, by output message and by timeout; never otherwise.

use crate::harness::{Project, config};

fn attempts(p: &Project, phase: &str, agent: &str) -> Vec<serde_json::Value> {
    p.state()["phases"][phase]["agents"][agent]["attempts"].as_array().unwrap().clone()
}

/// A command that fails with `fail` on its first `n` runs, counting runs in `count.txt`.
fn flaky(n: u32, fail: &str) -> String {
    format!("echo run >> count.txt; if [ $(wc -l < count.txt) -le {n} ]; then {fail}; fi; echo ok")
}

const FAST: &str = "  retry: {retries: 3, base_delay: 0.01, backoff: 2.0, jitter: 0.25}";

#[test]
fn retryable_exit_code_is_retried_until_success() {
    let p = Project::with_config(&config(FAST, &[("a", &flaky(2, "exit 75"))], "  - name: build\n    agents: [a]\n"));
    p.run(&["run", "start"]).code(0).stderr_has("attempt 1 failed (exit code 75); retrying in");
    let a = attempts(&p, "build", "a");
    assert_eq!(a.len(), 3);
    assert_eq!(a[0]["exit_code"], 75);
    assert_eq!(a[0]["retry_reason"], "exit code 75 is retryable");
    assert!(a[0]["retry_delay_s"].as_f64().unwrap() > 0.0);
    assert_eq!(a[2]["exit_code"], 0);
    assert!(a[2].get("retry_reason").is_none());
    let transcript = p.read(p.state()["phases"]["build"]["agents"]["a"]["transcript"].as_str().unwrap());
    for n in 1..=3 {
        assert!(transcript.contains(&format!("agent `a`, phase `build`, attempt {n} of 4")), "{transcript}");
    }
}

#[test]
fn output_matching_a_retryable_message_is_retried() {
    let p = Project::with_config(&config(
        FAST,
        &[("a", &flaky(1, "echo 'Error: Rate Limit exceeded' >&2; exit 1"))],
        "  - name: build\n    agents: [a]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let a = attempts(&p, "build", "a");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["retry_reason"], "output matched retryable message \"rate limit\"");
}

#[test]
fn timeout_is_retried() {
    let p = Project::with_config(&config(
        &format!("  timeout_minutes: 0.01\n{FAST}"),
        &[("a", &flaky(1, "sleep 30"))],
        "  - name: build\n    agents: [a]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let a = attempts(&p, "build", "a");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["timed_out"], true);
    assert_eq!(a[0]["retry_reason"], "timed out");
}

#[test]
fn other_failures_are_not_retried() {
    let p =
        Project::with_config(&config(FAST, &[("a", "echo broken >&2; exit 2")], "  - name: build\n    agents: [a]\n"));
    p.run(&["run", "start"]).code(1).stderr_has("build/a: failed: exit code 2").stderr_has("broken");
    assert_eq!(attempts(&p, "build", "a").len(), 1);
    assert_eq!(p.state()["phases"]["build"]["status"], "failed");
}

#[test]
fn retries_stop_when_the_budget_is_spent() {
    let p = Project::with_config(&config(FAST, &[("a", "exit 75")], "  - name: build\n    agents: [a]\n"));
    p.run(&["run", "start"]).code(1).stderr_has("failed: exit code 75, 4 attempts");
    let a = attempts(&p, "build", "a");
    assert_eq!(a.len(), 4);
    assert!(a[3].get("retry_reason").is_none());
}

#[test]
fn failed_phase_can_be_retried_after_the_cause_is_fixed() {
    let p = Project::with_config(&config(
        "  retry: {retries: 0}",
        &[("a", "test -f fixed"), ("b", "echo b >> b.log")],
        "  - name: build\n    agents: [a]\n  - name: ship\n    agents: [b]\n",
    ));
    p.run(&["run", "start"]).code(1).stdout_has("next: fix the cause, then `orchestrator run retry --phase build`");
    assert!(!p.exists("b.log"), "a phase after a failed one ran");
    p.run(&["run", "resume"]).code(1);
    p.write("fixed", "");
    p.run(&["run", "retry", "--phase", "build"]).code(0).stdout_has("completed");
    assert_eq!(p.state()["phases"]["build"]["runs"], 2);
    assert_eq!(p.read("b.log"), "b\n");
}
