//! The artifacts protocol: reported paths are confined to the workspace; phases check the
//! artifacts they must produce.

use crate::harness::{Project, config};

#[test]
fn path_escaping_artifacts_are_refused_and_reported() {
    let p = Project::with_config(&config(
        "",
        &[(
            "sneaky",
            "echo ok > inside.txt; ln -s /etc etc-link; echo 'ARTIFACT: inside.txt'; echo 'ARTIFACT: ../outside.txt'; echo 'ARTIFACTS: /etc/passwd, etc-link/passwd, missing.txt'",
        )],
        "  - name: build\n    agents: [sneaky]\n",
    ));
    let out = p.run(&["run", "start"]);
    out.code(0)
        .stderr_has("refused artifact `../outside.txt`: escapes the workspace")
        .stderr_has("refused artifact `/etc/passwd`: escapes the workspace")
        .stderr_has("refused artifact `etc-link/passwd`: resolves outside the workspace through a symlink")
        .stderr_has("refused artifact `missing.txt`: does not exist");
    let agent = &p.state()["phases"]["build"]["agents"]["sneaky"];
    assert_eq!(agent["artifacts"], serde_json::json!(["inside.txt"]));
    assert_eq!(agent["refused_artifacts"].as_array().unwrap().len(), 4);
    let transcript = p.read(agent["transcript"].as_str().unwrap());
    assert!(transcript.contains("=== refused artifact `../outside.txt`: escapes the workspace ==="), "{transcript}");
}

#[test]
fn missing_required_artifact_fails_the_phase() {
    let p = Project::with_config(&config(
        "",
        &[("writer", "mkdir -p src; echo x > src/a.rs")],
        "  - name: build\n    agents: [writer]\n    artifacts: [\"src/*.rs\", \"docs/*.md\"]\n",
    ));
    p.run(&["run", "start"]).code(1).stdout_has("phase `build` failed: no file matches artifact pattern `docs/*.md`");
    let validation = &p.state()["phases"]["build"]["validation"];
    assert_eq!(validation["passed"], false);
    assert_eq!(validation["patterns"][0]["files"], serde_json::json!(["src/a.rs"]));
    assert_eq!(validation["patterns"][1]["files"], serde_json::json!([]));
}

#[test]
fn artifacts_in_git_folders_or_the_orchestrators_files_are_refused_and_reported() {
    let p = Project::with_config(&config(
        "",
        &[(
            "sneaky",
            "ln -s .git gitlink; ln -s .git/config cfg; echo ok > fine.txt; echo 'ARTIFACTS: gitlink/config, cfg, .git/HEAD, .claude/config.yaml, fine.txt'",
        )],
        "  - name: build\n    agents: [sneaky]\n",
    ));
    crate::harness::git(p.root(), &["init", "-q"]);
    p.run(&["run", "start"])
        .code(0)
        .stderr_has("refused artifact `gitlink/config`: resolves into the git folder `.git` through a symlink")
        .stderr_has("refused artifact `cfg`: resolves into the git folder `.git` through a symlink")
        .stderr_has("refused artifact `.git/HEAD`: is inside a git folder (`.git`)")
        .stderr_has("refused artifact `.claude/config.yaml`: is the orchestrator's config");
    let agent = &p.state()["phases"]["build"]["agents"]["sneaky"];
    // Artifacts are uploaded, bundled and committed: `.git/config` can hold the checkout's token.
    assert_eq!(agent["artifacts"], serde_json::json!(["fine.txt"]));
    assert_eq!(agent["refused_artifacts"].as_array().unwrap().len(), 4);
    let transcript = p.read(agent["transcript"].as_str().unwrap());
    assert!(transcript.contains("=== refused artifact `gitlink/config`: resolves into the git folder"), "{transcript}");
}
