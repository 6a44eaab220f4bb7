//! A state file is input like any other: names in it (the run id, phase and agent names) become
//! parts of file paths, and paths in it are read, uploaded and committed. A state that could
//! lead any of them out of their folder is refused (exit 3) before anything is written.

use serde_json::{Value, json};

use crate::harness::{Project, config, tree};

const STATE: &str = ".claude/orchestrator_state.json";

/// A run waiting at the gate of `build`, in a workspace with a folder around it.
fn gated() -> Project {
    let p = Project::nested();
    p.write(
        ".claude/config.yaml",
        &config(
            "",
            &[("a", "echo x > out.txt; echo ARTIFACT: out.txt")],
            "  - name: build\n    agents: [a]\n    requires_consensus: true\n  - name: ship\n    agents: [a]\n",
        ),
    );
    p.run(&["run", "start"]).code(4);
    p
}

fn rename_key(map: &mut Value, from: &str, to: &str) {
    let obj = map.as_object_mut().unwrap();
    let v = obj.remove(from).unwrap();
    obj.insert(to.to_owned(), v);
}

/// A change to a state, with what it is and what the refusal must say about it.
type Tampering = (&'static str, Box<dyn Fn(&mut Value)>, &'static str);

fn tamperings() -> Vec<Tampering> {
    vec![
        (
            "a run id that climbs out of the metrics folder",
            Box::new(|s: &mut Value| s["run_id"] = json!("x/../../../../escaped")),
            "`run_id` is \"x/../../../../escaped\", which cannot be part of a file name",
        ),
        (
            "the run id of the finding",
            Box::new(|s: &mut Value| s["run_id"] = json!("../../outside/X")),
            "`run_id` is \"../../outside/X\", which cannot be part of a file name",
        ),
        (
            "a phase name",
            Box::new(|s: &mut Value| rename_key(&mut s["phases"], "build", "../../../escaped")),
            "a key of `phases` is \"../../../escaped\", which cannot be part of a file name",
        ),
        (
            "an agent name",
            Box::new(|s: &mut Value| rename_key(&mut s["phases"]["build"]["agents"], "a", "../../../../escaped")),
            "a key of `phases.build.agents` is \"../../../../escaped\", which cannot be part of a file name",
        ),
        (
            "a name hiding terminal escapes",
            Box::new(|s: &mut Value| s["run_id"] = json!("r\u{1b}[2Jx")),
            "`run_id` is \"r\\u{1b}[2Jx\", which cannot be part of a file name",
        ),
        (
            "an artifact outside the workspace (it would be uploaded and bundled)",
            Box::new(|s: &mut Value| s["phases"]["build"]["agents"]["a"]["artifacts"] = json!(["/etc/passwd"])),
            "`phases.build.agents.a.artifacts[0]` is \"/etc/passwd\": expected a relative path inside the workspace",
        ),
        (
            "a transcript outside the workspace",
            Box::new(|s: &mut Value| s["phases"]["build"]["agents"]["a"]["transcript"] = json!("../escaped.log")),
            "`phases.build.agents.a.transcript` is \"../escaped.log\": expected a relative path",
        ),
    ]
}

#[test]
fn a_state_with_names_or_paths_that_leave_their_folder_is_refused_by_every_command() {
    let p = gated();
    let good: Value = p.state();
    for (what, tamper, message) in tamperings() {
        let mut state = good.clone();
        tamper(&mut state);
        p.write(STATE, &serde_json::to_string_pretty(&state).unwrap());
        for args in [
            &["run", "approve"][..],
            &["run", "resume"][..],
            &["run", "status"][..],
            &["run", "metrics"][..],
            &["run", "metrics", "--json"][..],
            &["run", "rollback", "--phase", "build"][..],
            &["run", "retry", "--phase", "build"][..],
            &["run", "start", "--or-resume"][..],
            &["run", "approve", "--dry-run"][..],
        ] {
            let before = tree(p.outside());
            let out = p.run(args);
            assert_eq!(out.code, 3, "{what}: {args:?}\n{}{}", out.stdout, out.stderr);
            // The file by its path (which ends so; the folder is the one the command ran in).
            out.stderr_has("error: state file `")
                .stderr_has(&format!("/ws/{STATE}` is not valid: "))
                .stderr_has(message)
                .stderr_has("help: move it aside");
            assert!(
                out.stderr.contains("expected a letter or digit, then letters, digits, `_`, `.` or `-`")
                    || out.stderr.contains("(`/`-separated, no `..`, `.` or empty parts)"),
                "{what}: {}",
                out.stderr
            );
            assert!(!out.stderr.contains('\u{1b}'), "{what}: a terminal escape reached stderr");
            assert_eq!(tree(p.outside()), before, "{what}: {args:?} wrote something");
        }
    }
}

#[test]
fn a_journal_entry_with_a_name_that_leaves_its_folder_is_refused() {
    let p = gated();
    let run_id = p.state()["run_id"].as_str().unwrap().to_owned();
    let entry = json!({"seq": 99, "run_id": run_id, "phase": "build", "agent": "../../../../escaped",
        "state": {"status": "succeeded", "command": "true", "transcript": "t.log"}});
    p.write(&format!("{STATE}.journal"), &format!("{entry}\n"));
    let before = tree(p.outside());
    for args in [&["run", "status"][..], &["run", "resume"][..], &["run", "approve"][..]] {
        p.run(args)
            .code(3)
            .stderr_has(&format!("/ws/{STATE}.journal` is not valid: line 1: the agent name is"))
            .stderr_has("\"../../../../escaped\", which cannot be part of a file name");
    }
    assert_eq!(tree(p.outside()), before);
}

#[test]
fn a_merged_job_state_with_a_name_that_leaves_its_folder_is_refused() {
    let job = gated();
    let mut state = job.state();
    rename_key(&mut state["phases"]["build"]["agents"], "a", "../../../../escaped");
    job.write(STATE, &serde_json::to_string(&state).unwrap());
    let p = Project::nested();
    p.write(".claude/config.yaml", &job.read(".claude/config.yaml"));
    let before = tree(p.outside());
    p.run(&["run", "merge", job.root().to_str().unwrap()])
        .code(3)
        .stderr_has(&format!("state file `{}` is not valid", job.path(STATE).display()))
        .stderr_has("a key of `phases.build.agents` is \"../../../../escaped\"");
    assert_eq!(tree(p.outside()), before);
}
