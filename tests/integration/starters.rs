//! `quickstart --type TYPE`: each starter writes a project that validates and dry-runs; the
//! `llm` one runs for real against a local server speaking Anthropic's API, the `claude-code`
//! one with a stand-in `claude` program on PATH.

use std::path::Path;

use crate::fake_api::{FakeApi, anthropic_text, anthropic_tools};
use crate::harness::{Project, Run};
use crate::workflows::tool;

const TYPES: [&str; 4] = ["demo", "llm", "llm-openai", "claude-code"];

/// The binary in `p` with no API keys and no `claude` on PATH.
fn run(p: &Project, args: &[&str]) -> Run {
    let mut cmd = p.command(args);
    cmd.env_remove("ANTHROPIC_API_KEY").env_remove("OPENAI_API_KEY").env("PATH", "/usr/bin:/bin");
    Run::from_output(cmd.output().unwrap())
}

#[test]
fn type_without_a_value_lists_the_starters_and_an_unknown_one_is_refused() {
    let p = Project::new();
    let list = run(&p, &["quickstart", "--type"]);
    list.code(0);
    for t in TYPES {
        assert!(list.stdout.contains(&format!("\n  {t} ")), "{t}: {}", list.stdout);
    }
    let bad = run(&p, &["quickstart", "x", "--type", "kubernetes"]);
    bad.code(2).stderr_has("no starter `kubernetes`").stderr_has("  claude-code  ");
    run(&p, &["quickstart", "--type", "llm"]).code(2).stderr_has("which folder should the `llm` starter go in?");
    assert!(p.tree().is_empty(), "{:?}", p.tree().keys());
}

#[test]
fn every_starter_validates_and_dry_runs() {
    for t in TYPES {
        let p = Project::new();
        let q = run(&p, &["quickstart", "app", "--type", t]);
        let dir = p.root().join("app");
        if t == "demo" {
            q.code(4).stdout_has("The demo stopped at its first approval gate");
        } else {
            q.code(0)
                .stdout_has(&format!("The `{t}` starter is in app. Before its first run,"))
                .stdout_has("orchestrator -C app run start --dry-run");
            for f in
                ["README.md", ".gitignore", "src/.gitkeep", ".claude/prompts/planner.md", ".claude/prompts/coder.md"]
            {
                assert!(dir.join(f).exists(), "{t}: {f}");
            }
            assert!(!dir.join(".claude/orchestrator_state.json").exists(), "{t}: nothing ran");
        }
        run(&p, &["-C", "app", "validate"]).code(0).stdout_has(": ok (3 phases");
        let dry = run(&p, &["-C", "app", "run", "start", "--dry-run", "--force"]);
        dry.code(0).stdout_has("Dry run: nothing is executed and nothing is written.").stdout_has("1. planning");
        // A project name from the folder, in the intake the prompts read.
        assert!(std::fs::read_to_string(dir.join(".claude/intake.yaml")).unwrap().contains("name: app\n"), "{t}");
    }
}

#[test]
fn with_ci_each_starter_gets_a_workflow_that_passes_actionlint() {
    for t in ["llm", "claude-code"] {
        let p = Project::new();
        run(&p, &["quickstart", "app", "--type", t, "--ci", "--uses", "octo/orchestrator@v0"])
            .code(0)
            .stdout_has("wrote ");
        let wf = p.root().join("app/.github/workflows/orchestrator.yml");
        let text = std::fs::read_to_string(&wf).unwrap();
        assert!(
            text.contains("uses: octo/orchestrator@v0") && text.contains("phase: review") == (t == "llm"),
            "{text}"
        );
        tool("actionlint", &["-no-color", ".github/workflows/orchestrator.yml"], &p.root().join("app")).code(0);
    }
    // Without --uses outside orchestrator's own repository: refused before anything is written.
    let p = Project::new();
    run(&p, &["quickstart", "app", "--type", "llm", "--ci"]).code(2).stderr_has("pass `--uses OWNER/orchestrator@REF`");
    assert!(p.tree().is_empty(), "{:?}", p.tree().keys());
}

#[test]
fn the_llm_starter_runs_for_real_against_a_server_speaking_anthropics_api() {
    let api = FakeApi::start(vec![
        anthropic_tools(&[(
            "t1",
            "write_file",
            serde_json::json!({"path": "docs/PLAN.md", "content": "# Plan\n\n1. src/wc.py\n"}),
        )]),
        anthropic_text("The plan is written.", "end_turn"),
        anthropic_tools(&[(
            "t2",
            "write_file",
            serde_json::json!({"path": "src/wc.py", "content": "import sys\nprint(sum(len(open(f).read().split()) for f in sys.argv[1:]))\n"}),
        )]),
        anthropic_text("Done.", "end_turn"),
        anthropic_tools(&[(
            "t3",
            "write_file",
            serde_json::json!({"path": "docs/REVIEW.md", "content": "# Review\n\nOK.\n"}),
        )]),
        anthropic_text("Reviewed.", "end_turn"),
    ]);
    let p = Project::new();
    run(&p, &["quickstart", "app", "--type", "llm"]).code(0);
    let config = p.path("app/.claude/config.yaml");
    let text = std::fs::read_to_string(&config).unwrap().replace("https://api.anthropic.com", &api.url);
    std::fs::write(&config, text).unwrap();
    let with_key = |args: &[&str]| {
        let mut cmd = p.command(args);
        cmd.env("ANTHROPIC_API_KEY", "sk-ant-test-0123456789");
        Run::from_output(cmd.output().unwrap())
    };
    with_key(&["-C", "app", "run", "start"]).code(4);
    assert_eq!(p.read("app/docs/PLAN.md"), "# Plan\n\n1. src/wc.py\n");
    let request = p.read("app/.claude/consensus/planning/REQUEST.md");
    assert!(request.contains("### `docs/PLAN.md` (new file") && request.contains("```diff\n+# Plan\n"), "{request}");
    with_key(&["-C", "app", "run", "approve"]).code(4);
    assert!(p.read("app/src/wc.py").starts_with("import sys"));
    assert_eq!(p.read("app/docs/REVIEW.md"), "# Review\n\nOK.\n");
    with_key(&["-C", "app", "run", "approve"]).code(0).stdout_has("completed");
    let seen = api.seen();
    assert_eq!(seen.len(), 6);
    assert!(seen.iter().all(|r| r.path == "/v1/messages" && r.header("x-api-key") == Some("sk-ant-test-0123456789")));
    assert!(seen[0].body["messages"][0]["content"].as_str().unwrap().contains("You are the planner of app"));
}

#[test]
fn the_claude_code_starter_runs_to_its_gate_when_claude_is_installed() {
    let p = Project::new();
    // A stand-in for the CLI: writes what the prompt asks for and prints a result as Claude Code does.
    let bin = p.root().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let claude = bin.join("claude");
    std::fs::write(
        &claude,
        "#!/bin/sh\ncase \"$2\" in\n  *'Plan the work'*) mkdir -p docs && printf '# Plan\\n' > docs/PLAN.md ;;\n  *) printf 'print(1)\\n' > src/main.py ;;\nesac\necho '{\"type\":\"result\",\"total_cost_usd\":0.01,\"usage\":{\"input_tokens\":10,\"output_tokens\":5}}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = p.command(&["quickstart", "app", "--type", "claude-code"]);
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    let q = Run::from_output(cmd.output().unwrap());
    q.code(4).stdout_has("The project stopped at its first approval gate");
    assert_eq!(p.read("app/docs/PLAN.md"), "# Plan\n");
    let mut cmd = p.command(&["-C", "app", "run", "approve"]);
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    Run::from_output(cmd.output().unwrap()).code(4);
    assert_eq!(p.read("app/src/main.py"), "print(1)\n");
    let mut cmd = p.command(&["-C", "app", "run", "approve"]);
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    Run::from_output(cmd.output().unwrap()).code(0).stdout_has("completed");
    let state: serde_json::Value = serde_json::from_str(&p.read("app/.claude/orchestrator_state.json")).unwrap();
    assert_eq!(state["phases"]["checks"]["status"], "succeeded");
    let log = state["phases"]["checks"]["agents"]["checks"]["transcript"].as_str().unwrap();
    assert!(p.read(&format!("app/{log}")).contains("checks passed"));
    assert!(Path::new(&p.path("app/scripts/check.sh")).is_file());
}
