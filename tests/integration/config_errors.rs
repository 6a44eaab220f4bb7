//! Every bad config is refused before anything runs: exit 3, file:line:col, what was expected,
//! the nearest valid name for a misspelling, and nothing written.

use crate::harness::Project;

const GOOD_AGENTS: &str =
    "agents:\n  builder:\n    entrypoints: {default: \"true\"}\n  planner:\n    entrypoints: {default: \"true\"}\n";

/// (what, config, expected message fragment, expected location, expected help fragment)
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "yaml syntax",
        "agents:\n  builder:\n    entrypoints: {default: \"true\"\nphases: []\n",
        "error: ",
        ".claude/config.yaml:4:",
        "",
    ),
    (
        "wrong type",
        "orchestrator:\n  max_parallel_agents: two\nagents: {}\nphases: []\n",
        "`orchestrator.max_parallel_agents`: invalid type: string \"two\", expected u32",
        ".claude/config.yaml:2:24",
        "",
    ),
    (
        "negative integer",
        "orchestrator:\n  retry:\n    retries: -1\nagents: {}\nphases: []\n",
        "invalid type: integer `-1`, expected u32",
        ".claude/config.yaml:3:14",
        "",
    ),
    (
        "misspelt top-level key",
        "agents: {}\nphases: []\nconsensos: {}\n",
        "unknown key `consensos`",
        ".claude/config.yaml:3:1",
        "did you mean `consensus`?",
    ),
    (
        "misspelt nested key",
        "orchestrator:\n  retry:\n    retires: 3\nagents: {}\nphases: []\n",
        "unknown key `retires` in `orchestrator.retry`",
        ".claude/config.yaml:3:5",
        "did you mean `retries`?",
    ),
    (
        "misspelt phase key",
        "agents:\n  builder:\n    entrypoints: {default: \"true\"}\nphases:\n  - name: build\n    agents: [builder]\n    paralel: true\n",
        "unknown key `paralel` in `phases[0]`",
        ".claude/config.yaml:7:5",
        "did you mean `parallel`?",
    ),
    ("missing field", "phases: []\n", "missing field `agents`", ".claude/config.yaml:1:1", ""),
    (
        "unknown agent",
        "AGENTS\nphases:\n  - name: build\n    agents: [buidler]\n",
        "unknown agent `buidler` in phase `build`",
        ".claude/config.yaml:8:14",
        "did you mean `builder`?",
    ),
    (
        "unknown phase in needs",
        "AGENTS\nphases:\n  - name: build\n    agents: [builder]\n  - name: test\n    agents: [builder]\n    needs: [biuld]\n",
        "phase `test` needs unknown phase `biuld`",
        ".claude/config.yaml:11:13",
        "did you mean `build`?",
    ),
    (
        "cycle in needs",
        "AGENTS\nphases:\n  - name: a\n    agents: [builder]\n    needs: [c]\n  - name: b\n    agents: [builder]\n    needs: [a]\n  - name: c\n    agents: [builder]\n    needs: [b]\n",
        "phases depend on each other in a cycle: a → c → b → a",
        ".claude/config.yaml:",
        "remove one of these `needs` entries",
    ),
    (
        "bad glob",
        "AGENTS\nphases:\n  - name: build\n    agents: [builder]\n    artifacts: [\"src/[abc\"]\n",
        "invalid glob `src/[abc` in phase `build`",
        ".claude/config.yaml:9:17",
        "",
    ),
    (
        "zero parallelism",
        "orchestrator:\n  max_parallel_agents: 0\nAGENTS\nphases:\n  - name: build\n    agents: [builder]\n",
        "`orchestrator.max_parallel_agents` must be at least 1",
        ".claude/config.yaml:2:24",
        "",
    ),
    (
        "negative timeout",
        "AGENTS\nphases:\n  - name: build\n    agents: [builder]\n    timeout_minutes: -5\n",
        "`phases[0].timeout_minutes` must be a positive number of minutes up to 525600, got -5",
        ".claude/config.yaml:9:22",
        "",
    ),
    (
        "jitter out of range",
        "orchestrator:\n  retry:\n    jitter: 1.5\nAGENTS\nphases:\n  - name: build\n    agents: [builder]\n",
        "`orchestrator.retry.jitter` must be between 0 and 1, got 1.5",
        ".claude/config.yaml:3:13",
        "",
    ),
    (
        "backoff below one",
        "orchestrator:\n  retry:\n    backoff: 0.5\nAGENTS\nphases:\n  - name: build\n    agents: [builder]\n",
        "`orchestrator.retry.backoff` must be between 1 and 100, got 0.5",
        ".claude/config.yaml:3:14",
        "",
    ),
    (
        "phase name unsafe for file names",
        "AGENTS\nphases:\n  - name: ../evil\n    agents: [builder]\n",
        "phase name `../evil` cannot be used",
        ".claude/config.yaml:7:11",
        "names start with a letter or digit",
    ),
    (
        "agent name unsafe for file names",
        "agents:\n  \"my agent\":\n    entrypoints: {default: \"true\"}\nphases:\n  - name: build\n    agents: [\"my agent\"]\n",
        "agent name `my agent` cannot be used in file names",
        ".claude/config.yaml:2:3",
        "",
    ),
    (
        "duplicate phase",
        "AGENTS\nphases:\n  - name: build\n    agents: [builder]\n  - name: build\n    agents: [planner]\n",
        "phase `build` is defined twice",
        ".claude/config.yaml:9:11",
        "",
    ),
    (
        "duplicate top-level key",
        "AGENTS\nphases:\n  - name: build\n    agents: [builder]\nphases: []\n",
        "`phases` is given twice",
        ".claude/config.yaml:9:1",
        "it was first given at line 6",
    ),
    (
        "duplicate agent",
        "agents:\n  builder:\n    entrypoints: {default: \"true\"}\n  builder:\n    entrypoints: {default: \"false\"}\nphases:\n  - name: build\n    agents: [builder]\n",
        "`agents.builder` is given twice",
        ".claude/config.yaml:4:3",
        "it was first given at line 2",
    ),
    (
        "duplicate nested key",
        "orchestrator:\n  timeout_minutes: 5\n  max_parallel_agents: 2\n  timeout_minutes: 9\nAGENTS\nphases: []\n",
        "`orchestrator.timeout_minutes` is given twice",
        ".claude/config.yaml:4:3",
        "it was first given at line 2",
    ),
    (
        "artifact glob nested too deep",
        "AGENTS\nphases:\n  - name: build\n    agents: [builder]\n    artifacts: [\"{a,{b,{c,{d,{e,{f,{g,{h,{i,j}}}}}}}}}\"]\n",
        "artifact pattern in phase `build` is too complex",
        ".claude/config.yaml:9:17",
        "nested at most 8 deep",
    ),
    (
        "agent without entrypoints",
        "agents:\n  builder: {}\nphases:\n  - name: build\n    agents: [builder]\n",
        "agent `builder` has no `entrypoints`",
        ".claude/config.yaml:2:3",
        "default: <command>",
    ),
    (
        "entrypoint for an unknown phase",
        "agents:\n  builder:\n    entrypoints: {biuld: make}\nphases:\n  - name: build\n    agents: [builder]\n",
        "entrypoint `biuld` of agent `builder` is not a phase",
        ".claude/config.yaml:3:19",
        "did you mean `build`?",
    ),
    (
        "no entrypoint for the phase",
        "agents:\n  builder:\n    entrypoints: {test: make}\nphases:\n  - name: build\n    agents: [builder]\n  - name: test\n    agents: [builder]\n",
        "agent `builder` has no entrypoint for phase `build` and no `default`",
        ".claude/config.yaml:6:14",
        "",
    ),
    (
        "phase without agents",
        "AGENTS\nphases:\n  - name: build\n    agents: []\n",
        "phase `build` has no agents",
        ".claude/config.yaml:8:13",
        "",
    ),
    ("no phases", "AGENTS\nphases: []\n", "`phases` is empty", ".claude/config.yaml:6:9", ""),
    (
        "state file outside the workspace",
        "orchestrator:\n  state_file: ../state.json\nAGENTS\nphases:\n  - name: build\n    agents: [builder]\n",
        "`orchestrator.state_file` must be a relative path inside the workspace",
        ".claude/config.yaml:2:15",
        "",
    ),
    (
        "secret that is not a variable name",
        "secrets: [GOOD_ONE, \"my-key\"]\nAGENTS\nphases:\n  - name: build\n    agents: [builder]\n",
        "`my-key` in `secrets` is not an environment variable name",
        ".claude/config.yaml:1:21",
        "not their values",
    ),
    (
        "misspelt secrets key",
        "secret: [DEPLOY_KEY]\nAGENTS\nphases:\n  - name: build\n    agents: [builder]\n",
        "unknown key `secret`",
        ".claude/config.yaml:1:1",
        "did you mean `secrets`?",
    ),
    (
        "artifact pattern escaping the workspace",
        "AGENTS\nphases:\n  - name: build\n    agents: [builder]\n    artifacts: [\"../x/*\"]\n",
        "artifact pattern `../x/*` must be relative and stay inside the workspace",
        ".claude/config.yaml:9:17",
        "",
    ),
];

#[test]
fn every_bad_config_is_refused_with_its_location_and_nothing_is_written() {
    assert!(CASES.len() >= 15);
    for (what, yaml, message, location, help) in CASES {
        let yaml = yaml.replace("AGENTS\n", GOOD_AGENTS);
        let p = Project::with_config(&yaml);
        let before = p.tree();
        for args in [&["validate"][..], &["run", "start"][..]] {
            let out = p.run(args);
            assert_eq!(out.code, 3, "{what}: {args:?} exit code\n{}", out.stderr);
            assert!(out.stderr.contains(message), "{what}: message {message:?} missing from\n{}", out.stderr);
            assert!(out.stderr.contains(location), "{what}: location {location:?} missing from\n{}", out.stderr);
            assert!(out.stderr.contains(help), "{what}: help {help:?} missing from\n{}", out.stderr);
            assert!(!out.stderr.contains("panicked"), "{what}: panic\n{}", out.stderr);
        }
        assert_eq!(p.tree(), before, "{what}: the refused config changed files");
    }
}

#[test]
fn error_shows_the_source_line_with_a_caret() {
    let p = Project::with_config(&format!("{GOOD_AGENTS}phases:\n  - name: build\n    agents: [buidler]\n"));
    let out = p.run(&["validate"]);
    out.code(3);
    assert!(
        out.stderr.contains(
            "error: unknown agent `buidler` in phase `build`\n  --> .claude/config.yaml:8:14\n  |\n8 |     agents: [buidler]\n  |              ^^^^^^^\nhelp: did you mean `builder`?"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn several_problems_are_reported_together() {
    let p = Project::with_config(&format!(
        "{GOOD_AGENTS}phases:\n  - name: build\n    agents: [buidler]\n  - name: test\n    agents: [planer]\n"
    ));
    p.run(&["validate"]).code(3).stderr_has("unknown agent `buidler`").stderr_has("unknown agent `planer`");
}

#[test]
fn missing_config_says_how_to_create_one() {
    let p = Project::new();
    p.run(&["run", "start"]).code(3).stderr_has("cannot read config").stderr_has("orchestrator init");
    assert!(p.tree().is_empty());
}

#[test]
fn undefined_template_variable_names_template_line_and_variable() {
    let p = Project::with_config(&format!("{GOOD_AGENTS}phases:\n  - name: build\n    agents: [builder]\n"));
    p.write(".claude/intake.yaml", "name: demo\n");
    p.write(".claude/prompts/builder.md", "# Build\n\nFor {{ project.nmae }}\n");
    let before = p.tree();
    p.run(&["run", "start"])
        .code(3)
        .stderr_has("error: undefined variable `project.nmae` in prompt template")
        .stderr_has(".claude/prompts/builder.md:3:8")
        .stderr_has("did you mean `name`?");
    assert_eq!(p.tree(), before);
}

#[test]
fn bad_intake_is_refused_with_its_location() {
    let p = Project::with_config(&format!("{GOOD_AGENTS}phases:\n  - name: build\n    agents: [builder]\n"));
    p.write("intake.yaml", "name: demo\ngoals: [a, b\n");
    let before = p.tree();
    p.run(&["run", "start", "--intake", "intake.yaml"]).code(3).stderr_has("intake.yaml:");
    p.run(&["run", "start", "--intake", "missing.yaml"]).code(3).stderr_has("cannot read intake");
    assert_eq!(p.tree(), before);
}

#[test]
fn bad_cli_arguments_exit_2() {
    let p = Project::new();
    p.run(&["run", "next", "--max-workers", "0"]).code(2);
    p.run(&["run", "next", "--timeout", "soon"]).code(2).stderr_has("expected a positive number of seconds");
    p.run(&["frobnicate"]).code(2);
}

#[test]
fn help_documents_exit_codes() {
    let p = Project::new();
    p.run(&["--help"]).code(0).stdout_has("Exit codes:").stdout_has("4    stopped at an approval gate");
}
