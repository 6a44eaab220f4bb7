//! Shell integration: completion scripts that load in the shells, man pages that render, and
//! help that ends with examples.

use std::process::Command;

use crate::harness::{BIN, Run};

fn orchestrator(args: &[&str]) -> Run {
    Run::from_output(Command::new(BIN).args(args).env("NO_COLOR", "1").output().unwrap())
}

#[test]
fn bash_completions_load_and_complete_commands_options_and_values() {
    let script = orchestrator(&["completions", "bash"]);
    script.code(0).stdout_has("_orchestrator()");
    let complete = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let cword = words.len() - 1;
        let prev = if cword > 0 { words[cword - 1] } else { "" };
        let sh = format!(
            "source <({BIN} completions bash) || exit 9\ncomplete -p orchestrator >/dev/null || exit 8\nCOMP_WORDS=({}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT={}\n_orchestrator orchestrator '{}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            line.len(),
            words[cword],
        );
        let out = Command::new("bash").args(["--norc", "--noprofile", "-c", &sh]).output().unwrap();
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    };
    assert_eq!(complete("orchestrator ru"), ["run"]);
    let run = complete("orchestrator run ");
    for sub in ["start", "approve", "reject", "retry", "diff", "status"] {
        assert!(run.iter().any(|w| w == sub), "{sub} not in {run:?}");
    }
    assert!(complete("orchestrator run start --dr").contains(&"--dry-run".to_owned()));
    assert_eq!(complete("orchestrator completions fi"), ["fish"]);
}

#[test]
fn every_shell_gets_a_script_the_shell_accepts_where_it_is_installed() {
    for (shell, file, checker) in [
        ("bash", "orchestrator.bash", Some(["bash", "-n"])),
        ("zsh", "_orchestrator", Some(["zsh", "-n"])),
        ("fish", "orchestrator.fish", Some(["fish", "--no-execute"])),
        ("powershell", "_orchestrator.ps1", None),
        ("elvish", "orchestrator.elv", None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let run = orchestrator(&["completions", shell, "--dir", dir.path().to_str().unwrap()]);
        run.code(0).stdout_has(&format!("wrote {}", dir.path().join(file).display()));
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_eq!(orchestrator(&["completions", shell]).stdout, text, "{shell}: printed and written differ");
        assert!(text.contains("orchestrator") && text.contains("approve"), "{shell}");
        // Syntax-checked by the shell itself where it is installed here.
        if let Some([prog, flag]) = checker
            && Command::new(prog).arg("-c").arg("true").output().is_ok_and(|o| o.status.success())
        {
            let out = Command::new(prog).arg(flag).arg(dir.path().join(file)).output().unwrap();
            assert!(out.status.success(), "{prog} {flag}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error_listing_the_shells() {
    let run = orchestrator(&["completions", "tcsh"]);
    run.code(2).stderr_has("invalid value 'tcsh'").stderr_has("bash, elvish, fish, powershell, zsh");
    orchestrator(&["completions"]).code(2).stderr_has("<SHELL>");
}

#[test]
fn the_man_page_renders_and_covers_every_command() {
    let page = orchestrator(&["man"]);
    page.code(0).stdout_has(".TH orchestrator 1");
    let dir = tempfile::tempdir().unwrap();
    orchestrator(&["man", "--dir", dir.path().to_str().unwrap()]).code(0).stdout_has("man pages into");
    let mut pages: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    pages.sort();
    for p in ["orchestrator.1", "orchestrator-quickstart.1", "orchestrator-run-diff.1", "orchestrator-completions.1"] {
        assert!(pages.contains(&p.to_owned()), "{pages:?}");
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("orchestrator.1")).unwrap(), page.stdout);
    // Rendered as a reader sees it: groff when installed, else the page's structure.
    let approve = dir.path().join("orchestrator-run-approve.1");
    match Command::new("groff").args(["-man", "-Tutf8", "-P", "-cbou"]).arg(&approve).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            for needle in ["NAME", "SYNOPSIS", "orchestrator-run-approve", "--phase", "--no-continue", "Examples:"] {
                assert!(text.contains(needle), "{needle} missing from the rendered page:\n{text}");
            }
            let warnings = String::from_utf8_lossy(&out.stderr);
            assert!(warnings.trim().is_empty(), "groff: {warnings}");
        }
        _ => {
            let roff = std::fs::read_to_string(&approve).unwrap();
            for needle in [".TH orchestrator-run-approve", ".SH NAME", ".SH SYNOPSIS", "\\-\\-no\\-continue"] {
                assert!(roff.contains(needle), "{needle}: {roff}");
            }
        }
    }
}

#[test]
fn help_ends_with_examples_for_every_command() {
    for args in [
        &["init", "--help"][..],
        &["quickstart", "--help"],
        &["run", "retry", "--help"],
        &["run", "phase", "-h"],
        &["ci", "generate", "--help"],
        &["completions", "--help"],
    ] {
        let run = orchestrator(args);
        run.code(0);
        let tail: Vec<&str> = run.stdout.trim_end().lines().rev().take(4).collect();
        assert!(run.stdout.contains("\nExamples:\n"), "{args:?}: {}", run.stdout);
        assert!(tail.iter().any(|l| l.trim_start().starts_with("orchestrator ")), "{args:?}: {tail:?}");
    }
}

#[test]
fn the_phase_is_accepted_either_way_by_every_command_that_takes_one() {
    // Parsed for real by the binary: `--dry-run` runs nothing, and an unknown phase is named.
    let p = crate::harness::Project::new();
    p.run(&["init"]).code(0);
    p.run(&["run", "start"]).code(4);
    for args in [
        &["run", "retry", "nope"][..],
        &["run", "retry", "--phase", "nope"],
        &["run", "rollback", "nope"],
        &["run", "rollback", "--phase", "nope"],
        &["run", "diff", "nope"],
        &["run", "diff", "--phase", "nope"],
    ] {
        let run = p.run(args);
        assert_ne!(run.code, 0, "{args:?}");
        assert!(run.stderr.contains("nope"), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("unexpected argument"), "{args:?}: {}", run.stderr);
    }
    p.run(&["run", "retry", "a", "--phase", "b"]).code(2).stderr_has("cannot be used with");
}
