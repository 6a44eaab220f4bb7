//! `--dry-run` shows the plan, commands, rendered prompts and gate requests, and leaves the tree
//! byte-for-byte unchanged.

use crate::harness::Project;

fn demo() -> Project {
    let p = Project::new();
    p.run(&["init", "--name", "dry"]).code(0);
    p
}

#[test]
fn dry_run_start_shows_the_plan_and_writes_nothing() {
    let p = demo();
    let before = p.tree();
    let out = p.run(&["run", "start", "--dry-run"]);
    out.code(0)
        .stdout_has("Dry run: nothing is executed and nothing is written.")
        .stdout_has("1. planning [pending]: planner")
        .stdout_has("2. development [pending]: builder, documenter in parallel")
        .stdout_has("Would run: planning")
        .stdout_has("command: mkdir -p docs && cp \"$ORCHESTRATOR_PROMPT_FILE\" docs/PLAN.md")
        .stdout_has("│ # Plan: dry")
        .stdout_has("│ greeting: Hello from dry!")
        .stdout_has("would write .claude/consensus/planning/REQUEST.md")
        .stdout_has("│ # Consensus Request: planning");
    assert!(!out.stdout.contains("Would run: planning, development"), "the plan went past the gate:\n{}", out.stdout);
    assert_eq!(p.tree(), before);
}

#[test]
fn dry_run_of_every_run_command_leaves_the_tree_unchanged() {
    let p = demo();
    p.run(&["run", "start"]).code(4);
    let before = p.tree();
    for args in [
        &["run", "start", "--dry-run"][..],
        &["run", "next", "--dry-run"][..],
        &["run", "resume", "--dry-run"][..],
        &["run", "approve", "--dry-run"][..],
        &["run", "retry", "--phase", "planning", "--dry-run"][..],
        &["run", "phase", "planning", "--dry-run"][..],
    ] {
        let out = p.run(args);
        assert!(out.code == 0 || out.code == 2, "{args:?}: {}", out.stderr);
        assert_eq!(p.tree(), before, "{args:?} changed the tree");
    }
    p.run(&["run", "approve", "--dry-run"])
        .code(0)
        .stdout_has("would record that")
        .stdout_has("Would run: development, verification")
        .stdout_has("── development / builder ──");
}
