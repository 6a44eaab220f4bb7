//! Robustness over generated inputs: intakes, state files and GitHub event payloads, corrupted in
//! thousands of deterministic ways, give a value or a clear error — never a panic. (Configs have
//! their own, `config::mutation_tests`.) What a corrupted state still parses into is also shown
//! the ways the tool shows a state: metrics, REQUEST.md, the gate comment's history.

use serde_json::{Value, json};

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

/// Hostile values: wrong types, extremes, markup, control characters, path tricks.
fn hostile(rng: &mut Rng) -> Value {
    let pick = [
        Value::Null,
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(0.5),
        json!(""),
        json!("x"),
        json!("../../etc/passwd"),
        json!("a\nb\r::error::x"),
        json!("é".repeat(9)),
        json!("<!-- orchestrator:gate run=1 phase=p -->"),
        json!("2026-13-45T99:99:99Z"),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({"status": "bogus"}),
        json!(true),
    ];
    pick[rng.below(pick.len())].clone()
}

/// Replace the value at a random place of `v` (descending at random) with a hostile one, or
/// drop a key.
fn mutate(v: &mut Value, rng: &mut Rng, depth: usize) {
    match v {
        Value::Object(map) if !map.is_empty() && depth < 8 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.below(keys.len())];
            match rng.below(5) {
                0 => {
                    map.remove(key);
                }
                1 => {
                    map.insert(key.clone(), hostile(rng));
                }
                _ => mutate(map.get_mut(key).expect("key exists"), rng, depth + 1),
            }
        }
        Value::Array(items) if !items.is_empty() && depth < 8 => {
            let i = rng.below(items.len());
            if rng.below(4) == 0 {
                items[i] = hostile(rng);
            } else {
                mutate(&mut items[i], rng, depth + 1);
            }
        }
        other => *other = hostile(rng),
    }
}

/// A state with something in every part: phases, agents, attempts, a gate, changes.
fn rich_state() -> Value {
    json!({
        "version": 1, "run_id": "20260101_000000",
        "started_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:01:00Z",
        "intake": {"name": "demo", "goals": ["a", "b"]},
        "phases": {
            "planning": {
                "status": "awaiting_approval", "runs": 2,
                "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:30Z", "duration_s": 30.0,
                "agents": {"planner": {
                    "status": "succeeded", "command": "true", "transcript": ".claude/logs/agents/x.log", "artifacts": ["docs/PLAN.md"],
                    "refused_artifacts": [{"path": "../x", "reason": "escapes the workspace"}],
                    "attempts": [{"number": 1, "started_at": "2026-01-01T00:00:00Z", "duration_s": 1.5,
                                  "exit_code": 0, "timed_out": false, "timeout_s": 2.0}]
                }},
                "validation": {"passed": true, "patterns": [{"pattern": "docs/*.md", "files": ["docs/PLAN.md"]}]},
                "changes": {"added": ["docs/PLAN.md"], "modified": [], "removed": [],
                            "lines": {"docs/PLAN.md": {"after": 3}}, "redacted": []},
                "gate": {"requested_at": "2026-01-01T00:00:31Z", "request": "x",
                         "decision": {"approved": false, "by": "alice", "at": "2026-01-01T00:00:40Z",
                                      "reason": "no", "commit": "abc", "last_comment": 7}}
            },
            "development": {"status": "pending"},
            "verification": {"status": "pending"}
        }
    })
}

#[test]
fn no_mutation_of_a_state_file_panics_reading_or_showing_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    let root = dir.path();
    let wf = crate::config::parse(root, std::path::Path::new(".claude/config.yaml"), crate::template::FILES[0].1)
        .expect("the template is valid");
    let base = rich_state();
    let mut rng = Rng(0x5eed_1234_u64);
    let mut parsed = 0;
    for _ in 0..2000 {
        let mut v = base.clone();
        for _ in 0..(1 + rng.below(3)) {
            mutate(&mut v, &mut rng, 0);
        }
        std::fs::write(&path, v.to_string()).expect("write");
        match crate::state::read(&path) {
            Ok(state) => {
                parsed += 1;
                let now = chrono::Utc::now();
                let _ = crate::report::metrics::compute(&wf, &state, now);
                for phase in state.phases.keys() {
                    let _ = crate::gate::request::render(&wf, &state, phase, now);
                }
                let _ = state.status();
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    assert!(parsed > 100, "the mutations should leave many states readable ({parsed})");
}

#[test]
fn no_mutation_of_an_event_payload_panics() {
    let base = json!({
        "action": "labeled", "number": 7,
        "label": {"name": "orchestrator:approved"},
        "pull_request": {"number": 7, "head": {"ref": "feature", "sha": "abc", "repo": {"full_name": "octo/app"}},
                         "base": {"ref": "main", "repo": {"full_name": "octo/app"}}, "user": {"login": "a"}},
        "issue": {"number": 7, "pull_request": {"url": "x"}},
        "comment": {"id": 1, "body": "/approve", "user": {"login": "alice"}},
        "inputs": {"pr_number": "7"},
        "repository": {"full_name": "octo/app"}, "sender": {"login": "alice"}
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("event.json");
    let mut rng = Rng(0xfeed_beef_u64);
    for i in 0..3000 {
        let mut v = base.clone();
        for _ in 0..(1 + rng.below(3)) {
            mutate(&mut v, &mut rng, 0);
        }
        std::fs::write(&path, v.to_string()).expect("write");
        let name = [
            "pull_request",
            "pull_request_target",
            "issue_comment",
            "pull_request_review",
            "workflow_dispatch",
            "push",
        ][i % 6];
        let env = |k: &str| match k {
            "GITHUB_EVENT_PATH" => Some(path.display().to_string()),
            "GITHUB_EVENT_NAME" => Some(name.to_owned()),
            "GITHUB_REPOSITORY" => Some("octo/app".to_owned()),
            "GITHUB_TOKEN" => Some("t0ken".to_owned()),
            _ => None,
        };
        if let Err(e) = crate::github::context::detect(env) {
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn no_mutation_of_an_intake_panics() {
    let base = crate::template::FILES[1].1;
    let tokens = ["", "-1", "~", "[", "{", "\"x\"", "[a, b]", "{a: 1}", "&a x", "*a", "!!binary x", "\t", ": :", "- -"];
    let lines: Vec<&str> = base.lines().collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let rel = std::path::Path::new("intake.yaml");
    let mut rng = Rng(0x1dea_u64);
    for _ in 0..2000 {
        let mut mutated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        for _ in 0..(1 + rng.below(3)) {
            let i = rng.below(mutated.len());
            let token = tokens[rng.below(tokens.len())];
            match rng.below(3) {
                0 => mutated[i] = format!("{}{token}", mutated[i]),
                1 => {
                    mutated.remove(i);
                    if mutated.is_empty() {
                        mutated.push(String::new());
                    }
                }
                _ => {
                    let cut = rng.below(mutated[i].len() + 1);
                    mutated[i] = mutated[i].chars().take(cut).collect();
                }
            }
        }
        std::fs::write(dir.path().join(rel), mutated.join("\n")).expect("write");
        if let Err(d) = crate::intake::load(dir.path(), rel, true) {
            assert!(d.to_string().starts_with("error: "), "{d}");
        }
    }
}

#[test]
fn the_rich_state_parses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    std::fs::write(&path, rich_state().to_string()).expect("write");
    crate::state::read(&path).expect("the unmutated state is valid");
}
