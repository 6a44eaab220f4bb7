//! The README's first command: a project from the embedded template, run to its first gate,
//! then approved to the end.

use crate::harness::Project;

#[test]
fn quickstart_runs_to_the_gate_and_approve_runs_to_the_end() {
    let p = Project::new();
    p.run(&["quickstart", "demo"])
        .code(4)
        .stdout_has("created   .claude/config.yaml")
        .stdout_has("The demo stopped at its first approval gate")
        .stdout_has("orchestrator -C demo run approve");
    let plan = p.read("demo/docs/PLAN.md");
    assert!(plan.starts_with("# Plan: demo\n"), "{plan}");
    assert!(p.read("demo/.claude/consensus/planning/REQUEST.md").contains("- [ ] No sensitive data exposed"));
    assert!(!p.exists("demo/src/hello.sh"));

    p.run(&["-C", "demo", "run", "approve"])
        .code(0)
        .stdout_has("run ")
        .stdout_has("completed")
        .stdout_has("all 3 phases done");
    assert_eq!(p.read("demo/src/greeting.txt"), "Hello from demo!\n");
    let state: serde_json::Value = serde_json::from_str(&p.read("demo/.claude/orchestrator_state.json")).unwrap();
    let run_id = state["run_id"].as_str().unwrap();
    let transcript = p.read(&format!("demo/.claude/logs/agents/{run_id}_verification_verifier.log"));
    assert!(
        transcript.contains("=== orchestrator: agent `verifier`, phase `verification`, attempt 1 of 3 ==="),
        "{transcript}"
    );
    assert!(transcript.contains("hello.sh says: Hello from demo!"), "{transcript}");
    assert!(transcript.contains("=== attempt 1: exit code 0 after"), "{transcript}");
}

#[test]
fn init_backs_up_an_existing_config_before_replacing_it() {
    let p = Project::new();
    p.write(".claude/config.yaml", "# mine\n");
    p.write(".claude/intake.yaml", "name: keep-me\n");
    let out = p.run(&["init"]);
    out.code(0)
        .stdout_has("replaced  .claude/config.yaml (previous config saved as backups/config_")
        .stdout_has("kept      .claude/intake.yaml");
    let backups: Vec<_> = std::fs::read_dir(p.path("backups")).unwrap().collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(backups[0].as_ref().unwrap().path()).unwrap(), "# mine\n");
    assert_eq!(p.read(".claude/intake.yaml"), "name: keep-me\n");
    p.run(&["validate"]).code(0).stdout_has(".claude/config.yaml: ok (3 phases, 4 agents)");
}

/// What the tool writes gets the mode a plain write would give it: 0644 under umask 022 (a
/// teammate reads the config, node_exporter the metrics), 0600 under umask 077.
#[test]
fn files_are_written_with_the_users_umask() {
    use std::os::unix::fs::PermissionsExt;
    for (umask, mode) in [("022", 0o644), ("077", 0o600)] {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" quickstart demo >/dev/null 2>&1"))
            .arg(crate::harness::BIN)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(4));
        for rel in [
            ".claude/config.yaml",
            ".claude/consensus/planning/REQUEST.md",
            ".claude/metrics/metrics.prom",
            "reports/junit.xml",
            "reports/hygiene_summary.json",
            ".claude/artifacts/planning_bundle.zip",
        ] {
            let meta = std::fs::metadata(dir.path().join("demo").join(rel)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{rel} under umask {umask}");
        }
    }
}

/// Every `next:` line names a command that works pasted as it is, from where the user is.
#[test]
fn hints_carry_the_folder_and_config_they_were_given() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        crate::harness::Run::from_output(
            std::process::Command::new(crate::harness::BIN).args(args).current_dir(dir.path()).output().unwrap(),
        )
    };
    let out = run(&["quickstart", "demo"]);
    out.code(4).stdout_has("next: orchestrator -C demo run approve --phase planning");
    // Pasted as printed, from the same folder, it works.
    run(&["-C", "demo", "run", "approve", "--phase", "planning"]).code(0);
    std::fs::rename(dir.path().join("demo/.claude/config.yaml"), dir.path().join("demo/flow.yaml")).unwrap();
    let out = run(&["-C", "demo", "--config", "flow.yaml", "run", "start", "--force"]);
    out.code(4).stdout_has("next: orchestrator -C demo --config flow.yaml run approve --phase planning");
}

#[test]
fn quickstart_again_keeps_a_run_that_waits_at_its_gate() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        crate::harness::Run::from_output(
            std::process::Command::new(crate::harness::BIN).args(args).current_dir(dir.path()).output().unwrap(),
        )
    };
    run(&["quickstart", "demo"]).code(4);
    let before = crate::harness::tree(&dir.path().join("demo"));
    run(&["quickstart", "demo"])
        .code(2)
        .stderr_has("has a run that has not finished")
        .stderr_has("orchestrator -C demo run resume");
    assert_eq!(before, crate::harness::tree(&dir.path().join("demo")), "the waiting run was touched");
    run(&["quickstart", "demo", "--force"]).code(4);
}
