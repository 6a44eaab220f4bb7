//! On a GitHub runner, agents are adversarial: nothing they print, name or write may issue a
//! workflow command, set a step output or environment variable, or silence the tool's own
//! annotations. Checked by running the binary as on a runner and replaying its output through a
//! model of the runner's command processing (`runner_sim`).

use crate::actions_runner::on_runner;
use crate::harness::{Project, config};
use crate::runner_sim::{processed, processed_every_way};

const SECRET: &str = "sk-test-secret-value-123";

/// A failing agent that tries every trick on both streams, and a succeeding one whose refused
/// `ARTIFACT:` paths carry commands.
fn hostile_project() -> Project {
    let evil = [
        r"printf '  ::add-mask::x\n::set-output name=a::pwn\n::error::pwn\n##[error]pwn\n::stop-commands::X\n::X::\n'",
        r"printf 'ARTIFACT: x\r::error::pwn\n'",
        r"printf 'ARTIFACT: ../x\n::warning::pwn\n'",
        r"printf '\342\200\213::error::pwn-zwsp\n#\342\200\213#[error]pwn-zwsp\n:\342\200\215:error::pwn-zwj\n'",
        r"printf '\033[0m::error::pwn-ansi\n::NOTICE::pwn\nx\302\205::error::pwn-nel\n'",
        r"printf '::stop-commands::X\n::error::pwn-stderr\nx\r::add-mask::pwn\n  ::warning file=a::pwn\n##[add-mask]pwn\n' >&2",
        "exit 1",
    ]
    .join("; ");
    let well = r"printf 'ARTIFACT: x\r::error::pwn\nARTIFACT: ../y\n::warning::pwn\nARTIFACT: ##[error]pwn\n'; touch ok.txt; echo ARTIFACT: ok.txt";
    Project::with_config(&config(
        "  retry: {retries: 0}",
        &[("evil", &evil), ("well", well)],
        "  - name: build\n    agents: [evil, well]\n    parallel: true\n    artifacts: [\"missing/*.md\"]\n",
    ))
}

#[test]
fn agent_output_and_artifact_paths_issue_no_workflow_command() {
    let p = hostile_project();
    let (run, outputs, summary) = on_runner(&p, &["run", "start"], &[("OPENAI_API_KEY", SECRET)]);
    run.code(1);
    let shown = format!("--- stdout ---\n{}\n--- stderr ---\n{}", run.stdout, run.stderr);
    for commands in processed_every_way(&run.stdout, &run.stderr) {
        for c in &commands {
            let text = format!("{} {} {}", c.name, c.props, c.data).to_lowercase();
            assert!(!text.contains("pwn"), "{c:?} carries agent text\n{shown}");
            match c.name.as_str() {
                "add-mask" => assert_eq!(c.data, SECRET, "{shown}"),
                "group" | "endgroup" => {}
                "error" => assert!(
                    c.props.starts_with("title=Agent failed%3A build/evil")
                        || c.props.starts_with("title=Missing artifact%3A build"),
                    "{c:?}\n{shown}"
                ),
                "stop-commands" => {
                    assert!(c.data.starts_with("orchestrator-") && c.data.len() == 45, "{c:?}\n{shown}")
                }
                name if name.starts_with("orchestrator-") => {}
                _ => panic!("the runner would process {c:?}\n{shown}"),
            }
        }
    }
    // The tool's own commands all get through: no agent text stopped command processing.
    for linguistic in [false, true] {
        let own = processed(&run.stdout, linguistic);
        let names: Vec<&str> = own.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"add-mask"), "masks come first: {names:?}");
        assert_eq!(names.iter().filter(|n| **n == "group").count(), 2, "{names:?}");
        assert_eq!(names.iter().filter(|n| **n == "endgroup").count(), 2, "{names:?}");
        assert_eq!(names.iter().filter(|n| **n == "error").count(), 2, "{names:?}\n{shown}");
        assert_eq!(names.iter().filter(|n| **n == "stop-commands").count(), 2, "a frame per group: {names:?}");
    }
    // What the agents printed is still shown, visibly escaped.
    run.stderr_has("refused artifact `x\\r::error::pwn`")
        .stderr_has("refused artifact `##\\[error]pwn`")
        .stderr_has("      \\::NOTICE::pwn")
        .stderr_has("      x\\u{85}::error::pwn-nel")
        .stderr_has("      #\\u{200b}#[error]pwn-zwsp");
    assert_eq!(outputs["status"], "failed");
    assert_eq!(outputs["failed-agents"], "build/evil");
    let raw_outputs = std::fs::read_to_string(p.path("runner/output")).unwrap();
    assert!(!raw_outputs.contains("pwn"), "{raw_outputs}");
    assert!(!summary.contains("pwn"), "{summary}");
}

#[test]
fn agents_cannot_write_the_runners_files_or_use_its_tokens() {
    let vars = [
        "GITHUB_OUTPUT",
        "GITHUB_ENV",
        "GITHUB_PATH",
        "GITHUB_STATE",
        "GITHUB_STEP_SUMMARY",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_RUNTIME_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_CACHE_URL",
        "ACTIONS_RESULTS_URL",
    ];
    let writer = format!(
        "for v in {}; do eval \"echo $v=\\${{$v-unset}}\"; done > seen.txt; \
         echo status=pwned >> \"$GITHUB_OUTPUT\"; echo 'x<<EOF' >> \"$GITHUB_OUTPUT\"; \
         echo FOO=pwn >> \"$GITHUB_ENV\"; echo /pwn >> \"$GITHUB_PATH\"; echo s=pwn >> \"$GITHUB_STATE\"; \
         echo '# pwn' >> \"$GITHUB_STEP_SUMMARY\"; true",
        vars.join(" ")
    );
    let p = Project::with_config(&config("", &[("writer", &writer)], "  - name: build\n    agents: [writer]\n"));
    for f in ["env", "path", "state"] {
        p.write(&format!("runner/{f}"), "");
    }
    let (env, path, state) = (p.path("runner/env"), p.path("runner/path"), p.path("runner/state"));
    let extra = [
        ("GITHUB_ENV", env.to_str().unwrap()),
        ("GITHUB_PATH", path.to_str().unwrap()),
        ("GITHUB_STATE", state.to_str().unwrap()),
        ("ACTIONS_RUNTIME_TOKEN", "runtime-token-abc"),
        ("ACTIONS_RUNTIME_URL", "https://pipelines.example/"),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "oidc-token-abc"),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://oidc.example/"),
        ("ACTIONS_CACHE_URL", "https://cache.example/"),
        ("ACTIONS_RESULTS_URL", "https://results.example/"),
    ];
    let (run, outputs, summary) = on_runner(&p, &["run", "start"], &extra);
    run.code(0);
    let seen = p.read("seen.txt");
    for v in vars {
        assert!(seen.contains(&format!("{v}=unset\n")), "the agent saw {v}:\n{seen}");
    }
    for f in ["runner/env", "runner/path", "runner/state"] {
        assert_eq!(p.read(f), "", "{f} was written");
    }
    assert!(!summary.contains("pwn"), "{summary}");
    assert_eq!(outputs["status"], "completed");
    let tool_outputs = [
        "earlier",
        "status",
        "exit-code",
        "run-id",
        "phase",
        "awaiting-approval",
        "failed-agents",
        "junit",
        "metrics-json",
        "metrics-prom",
        "report-html",
        "upload-paths",
    ];
    for key in outputs.keys() {
        assert!(tool_outputs.contains(&key.as_str()), "an output the tool did not set: {key}\n{outputs:?}");
    }
    assert!(!std::fs::read_to_string(p.path("runner/output")).unwrap().contains("pwn"));
}

#[test]
fn artifact_names_cannot_add_files_to_the_upload() {
    // A name with a line break would add a line (any path) to upload-artifact's list, and a
    // glob character would match other files.
    let agent = r#"mkdir -p "$(printf 'd\r')/etc" && touch "$(printf 'd\r')/etc/passwd" '[x]' 'a*b' ok.txt; printf 'ARTIFACT: d\r/etc/passwd\nARTIFACT: [x]\nARTIFACT: a*b\nARTIFACT: ok.txt\n'"#;
    let p = Project::with_config(&config("", &[("maker", agent)], "  - name: build\n    agents: [maker]\n"));
    let (run, outputs, _) = on_runner(&p, &["run", "start"], &[]);
    run.code(0).stderr_has("not listing");
    let uploads: Vec<&str> = outputs["upload-paths"].lines().collect();
    assert!(uploads.contains(&p.path("ok.txt").to_str().unwrap()), "{uploads:?}");
    for u in &uploads {
        assert!(!u.contains("passwd") && !u.contains('[') && !u.contains('*') && !u.contains('\r'), "{uploads:?}");
    }
}

#[test]
fn a_state_file_edited_by_an_agent_issues_no_command_when_shown() {
    let p = Project::with_config(&config(
        "  retry: {retries: 0}",
        &[("broken", "exit 3")],
        "  - name: build\n    agents: [broken]\n",
    ));
    p.run(&["run", "start"]).code(1);
    // Agents run in the workspace, where the state file is.
    let mut state = p.state();
    // A run id that cannot be a file name is refused (exit 3), and the refusal commands nothing.
    let mut bad = state.clone();
    bad["run_id"] = "r\n::add-mask::pwn".into();
    p.write(".claude/orchestrator_state.json", &serde_json::to_string_pretty(&bad).unwrap());
    let (run, ..) = on_runner(&p, &["run", "status"], &[]);
    run.code(3);
    for commands in processed_every_way(&run.stdout, &run.stderr) {
        // Only the tool's own error annotation, which quotes the run id escaped on one line.
        assert!(
            commands
                .iter()
                .all(|c| format!("{c:?}").starts_with("Processed { name: \"error\", props: \"title=orchestrator\"")),
            "{commands:?}"
        );
    }
    state["phases"]["build"]["error"] = "x\r::error::pwn\n##[warning]pwn".into();
    let agent = &mut state["phases"]["build"]["agents"]["broken"];
    agent["transcript"] = "\u{200B}::error::pwn".into();
    agent["attempts"][0]["error"] = "::stop-commands::pwn".into();
    p.write(".claude/orchestrator_state.json", &serde_json::to_string_pretty(&state).unwrap());
    for args in [
        &["run", "status"][..],
        &["run", "status", "--json"],
        &["run", "metrics"],
        &["run", "metrics", "--json"],
        &["run", "metrics", "--prom"],
    ] {
        let (run, ..) = on_runner(&p, args, &[]);
        run.code(0);
        for commands in processed_every_way(&run.stdout, &run.stderr) {
            assert!(commands.is_empty(), "{args:?}: {commands:?}\n{}{}", run.stdout, run.stderr);
        }
        if args.contains(&"--json") {
            serde_json::from_str::<serde_json::Value>(&run.stdout).expect("still JSON");
        }
    }
}
