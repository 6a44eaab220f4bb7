//! `action/run.sh`: the action's inputs become one orchestrator command line, without any shell
//! evaluation of what the inputs say. A stand-in binary prints the arguments it got.

use std::path::Path;
use std::process::Command;

use crate::harness::Run;
use crate::workflows::repo;

fn run_sh(dir: &Path, inputs: &[(&str, &str)], exit: i32) -> Run {
    let fake = dir.join("fake-orchestrator");
    if !fake.exists() {
        std::fs::write(&fake, "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done; echo\nexit \"$FAKE_EXIT\"\n")
            .unwrap();
        Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    }
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("action/run.sh"))
        .current_dir(dir)
        .env("ORCHESTRATOR_BIN", &fake)
        .env("FAKE_EXIT", exit.to_string());
    for k in ["INPUT_COMMAND", "INPUT_PHASE", "INPUT_CONFIG", "INPUT_WORKING_DIRECTORY", "INPUT_WAIT", "INPUT_DRY_RUN"]
    {
        cmd.env_remove(k);
    }
    for (k, v) in inputs {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().unwrap())
}

/// The arguments the stand-in got.
fn args(run: &Run) -> &str {
    run.stdout.lines().find(|l| l.starts_with('[')).unwrap_or_else(|| panic!("no arguments line: {}", run.stdout))
}

#[test]
fn inputs_become_arguments_with_quotes_and_nothing_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sh(
        dir.path(),
        &[("INPUT_COMMAND", r#"run reject --reason "not good, see #3" $(touch pwned) `id`"#), ("INPUT_PHASE", "plan")],
        0,
    );
    run.code(0);
    assert_eq!(
        args(&run),
        "[--config][.claude/config.yaml][run][reject][--reason][not good, see #3][$(touch][pwned)][`id`][--phase][plan]"
    );
    assert!(!dir.path().join("pwned").exists());

    let run = run_sh(
        dir.path(),
        &[("INPUT_COMMAND", "run phase"), ("INPUT_PHASE", "build"), ("INPUT_CONFIG", "ci/c.yaml")],
        0,
    );
    assert_eq!(args(&run), "[--config][ci/c.yaml][run][phase][build]");
    let run = run_sh(
        dir.path(),
        &[("INPUT_COMMAND", "run start"), ("INPUT_PHASE", "plan"), ("INPUT_DRY_RUN", "true"), ("INPUT_WAIT", "poll")],
        0,
    );
    assert_eq!(args(&run), "[--config][.claude/config.yaml][run][start][--phase][plan][--dry-run][--wait][poll]");
    let run = run_sh(dir.path(), &[("INPUT_COMMAND", "run diff"), ("INPUT_PHASE", "plan")], 0);
    assert_eq!(args(&run), "[--config][.claude/config.yaml][run][diff][--phase][plan]");
}

#[test]
fn a_gate_is_a_successful_step_and_failures_keep_their_code() {
    let dir = tempfile::tempdir().unwrap();
    run_sh(dir.path(), &[("INPUT_COMMAND", "run resume")], 4)
        .code(0)
        .stdout_has("the run waits at an approval gate (awaiting-approval=true)");
    run_sh(dir.path(), &[("INPUT_COMMAND", "run resume")], 1).code(1);
    run_sh(dir.path(), &[("INPUT_COMMAND", "run resume")], 5).code(5);
}

#[test]
fn bad_inputs_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (inputs, message) in [
        (vec![("INPUT_COMMAND", "  ")], "the 'command' input is empty"),
        (vec![("INPUT_COMMAND", "run reject --reason \"open")], "unmatched quote"),
        (vec![("INPUT_COMMAND", "validate"), ("INPUT_PHASE", "x")], "the 'phase' input applies to"),
        (vec![("INPUT_COMMAND", "run status"), ("INPUT_DRY_RUN", "true")], "applies to commands that run agents"),
        (vec![("INPUT_COMMAND", "run start"), ("INPUT_DRY_RUN", "yes")], "must be true or false"),
        (vec![("INPUT_COMMAND", "run start"), ("INPUT_WAIT", "forever")], "must be event, poll or empty"),
        (vec![("INPUT_COMMAND", "run start"), ("INPUT_WORKING_DIRECTORY", "nope")], "does not exist"),
    ] {
        let run = run_sh(dir.path(), &inputs, 0);
        run.code(2).stdout_has("::error title=orchestrator action::").stdout_has(message);
        assert!(!run.stdout.contains("[--config]"), "nothing ran: {}", run.stdout);
    }
}
