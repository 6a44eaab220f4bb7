//! A run spread over jobs, as `ci generate --jobs` lays it out: each job starts from a fresh
//! checkout, merges what earlier jobs uploaded, and runs its part; a parallel phase's agents run
//! one per job (`run phase P --agent A`) and a last job finishes the phase.

use crate::harness::{Project, config};

fn cfg() -> String {
    config(
        "",
        &[
            ("planner", "echo plan > plan.txt; echo ARTIFACT: plan.txt"),
            ("a", "test -s plan.txt && echo a >> runs.log && echo A > a.txt && echo ARTIFACT: a.txt"),
            ("b", "test -s plan.txt && echo B > b.txt && echo ARTIFACT: b.txt"),
            ("broken", "exit 3"),
        ],
        "  - name: plan\n    agents: [planner]\n  - name: dev\n    agents: [a, b]\n    parallel: true\n    artifacts: [a.txt, b.txt]\n",
    )
}

/// A fresh checkout: the config only.
fn job() -> Project {
    Project::with_config(&cfg())
}

#[test]
fn a_parallel_phase_runs_as_one_job_per_agent_then_merges() {
    let first = job();
    first.run(&["run", "start", "--phase", "plan"]).code(0);
    let first_dir = first.root().to_str().unwrap().to_owned();

    let ja = job();
    ja.run(&["run", "merge", &first_dir]).code(0).stdout_has("1 phase (plan)");
    assert_eq!(ja.read("plan.txt"), "plan\n", "the earlier job's output came along");
    ja.run(&["run", "phase", "dev", "--agent", "a"]).code(0);
    assert_eq!(ja.state()["phases"]["dev"]["status"], "running", "the phase stays open");
    assert!(!ja.exists("b.txt"));

    let jb = job();
    jb.run(&["run", "merge", &first_dir]).code(0);
    jb.run(&["run", "phase", "dev", "--agent", "b"]).code(0);

    // The last job downloads every artifact of the run into one folder each.
    let downloads = tempfile::tempdir().unwrap();
    for (name, from) in [("orchestrator-plan-1", &first), ("orchestrator-dev-a-1", &ja), ("orchestrator-dev-b-1", &jb)]
    {
        crate::action_act::copy(from.root(), &downloads.path().join(name));
    }
    let end = job();
    end.run(&["run", "merge", downloads.path().to_str().unwrap()])
        .code(0)
        .stdout_has("2 phases (dev, plan), 1 agent result (dev/b)");
    end.run(&["run", "phase", "dev"]).code(0);
    let state = end.state();
    assert_eq!(state["phases"]["dev"]["status"], "succeeded");
    assert_eq!(state["phases"]["dev"]["agents"]["a"]["status"], "succeeded");
    assert_eq!(state["phases"]["dev"]["agents"]["b"]["status"], "succeeded");
    // What each agent changed in its own job is the phase's change set (for REQUEST.md, the
    // gate comment's diffs and hygiene), though this job saw the files arrive by merge.
    assert_eq!(state["phases"]["dev"]["changes"]["added"], serde_json::json!(["a.txt", "b.txt", "runs.log"]));
    // runs.log, which agent a wrote without reporting it, costs cleanliness points here too.
    assert_eq!(state["hygiene"]["phase"], "dev");
    assert!(state["hygiene"]["score"].as_f64().unwrap() < 100.0, "{}", state["hygiene"]);
    assert_eq!(ja.read("runs.log"), "a\n");
    assert!(!end.exists("runs.log"), "agent a ran once, in its own job");
    let run_id = state["run_id"].as_str().unwrap();
    assert!(end.exists(&format!(".claude/logs/agents/{run_id}_dev_b.log")), "transcripts travel too");
    let junit = end.read("reports/junit.xml");
    assert!(junit.contains("name=\"a\"") && junit.contains("name=\"b\""), "{junit}");
}

#[test]
fn an_agent_job_of_a_phase_that_has_run_does_nothing() {
    // The event that continues a run walks the agents' jobs again: each finds its phase done
    // (or waiting at its gate) and runs nothing, reads no gate and changes no file.
    let p = job();
    p.run(&["run", "start"]).code(0);
    assert_eq!(p.state()["phases"]["dev"]["status"], "succeeded");
    let before = p.tree();
    for agent in ["a", "b"] {
        p.run(&["run", "phase", "dev", "--agent", agent])
            .code(0)
            .stdout_has(&format!("phase `dev` has already run (succeeded): nothing for agent `{agent}` to do"));
    }
    assert_eq!(p.tree(), before, "an agent ran again or the state changed");
    assert_eq!(p.read("runs.log"), "a\n");
    // Refusals stay refusals.
    p.run(&["run", "phase", "dev", "--agent", "nope"]).code(2).stderr_has("phase `dev` has no agent `nope`");
    p.run(&["run", "phase", "nosuch", "--agent", "a"]).code(2);
}

#[test]
fn an_agent_job_fails_with_its_agent_and_bad_merges_are_refused() {
    let p = Project::with_config(&cfg().replace("agents: [a, b]", "agents: [a, broken]"));
    p.run(&["run", "start", "--phase", "plan"]).code(0);
    p.run(&["run", "phase", "dev", "--agent", "nope"]).code(2).stderr_has("phase `dev` has no agent `nope`");
    p.run(&["run", "phase", "dev", "--agent", "broken"]).code(1);
    assert_eq!(p.state()["phases"]["dev"]["agents"]["broken"]["status"], "failed");

    let other = job();
    other.run(&["run", "start"]).code(0);
    let before = p.tree();
    p.run(&["run", "merge", other.root().to_str().unwrap()]).code(2).stderr_has("holds run");
    let empty = tempfile::tempdir().unwrap();
    p.run(&["run", "merge", empty.path().to_str().unwrap()]).code(2).stderr_has("holds no run state");
    assert_eq!(before, p.tree(), "a refused merge writes nothing");
}

#[test]
fn a_merge_copies_nothing_into_git_folders_or_onto_the_orchestrators_files() {
    let first = job();
    first.run(&["run", "start", "--phase", "plan"]).code(0);
    // The job's upload, tampered with: its agent "reported" files that would land in the
    // receiving checkout's `.git` (through the `gitlink -> .git` symlink checked in there) or on
    // its config, and files reached through symlinks in the job folder itself.
    first.write("gitlink/config", "[core]\n\tfsmonitor = \"touch PWNED\"\n");
    first.write("sub/.git/config", "[core]\n\tfsmonitor = \"touch PWNED\"\n");
    first.write(".claude/config.yaml", &cfg().replace("echo plan > plan.txt", "touch PWNED"));
    crate::harness::git(first.root(), &["init", "-q"]);
    std::os::unix::fs::symlink(".git/config", first.path("token-link")).unwrap();
    std::os::unix::fs::symlink(".git", first.path("through")).unwrap();
    std::os::unix::fs::symlink("/etc", first.path("etc")).unwrap();
    let state_path = first.path(".claude/orchestrator_state.json");
    let mut state = first.state();
    state["phases"]["plan"]["agents"]["planner"]["artifacts"] = serde_json::json!([
        "plan.txt",
        "gitlink/config",
        "sub/.git/config",
        ".claude/config.yaml",
        "token-link",
        "through/config",
        "etc/hostname"
    ]);
    std::fs::write(&state_path, serde_json::to_string(&state).unwrap()).unwrap();

    let p = job();
    crate::harness::git(p.root(), &["init", "-q"]);
    std::fs::create_dir_all(p.path("sub")).unwrap();
    crate::harness::git(&p.path("sub"), &["init", "-q"]);
    std::os::unix::fs::symlink(".git", p.path("gitlink")).unwrap();
    let (git_config, config) = (p.read(".git/config"), p.read(".claude/config.yaml"));
    let out = p.run(&["run", "merge", first.root().to_str().unwrap()]);
    out.code(0)
        .stdout_has("2 files")
        .stderr_has("not copying `gitlink/config`")
        .stderr_has("resolves into the git folder `.git` through a symlink")
        .stderr_has("not copying `sub/.git/config`")
        .stderr_has("not copying `.claude/config.yaml`")
        .stderr_has("is the orchestrator's config")
        .stderr_has("not copying `token-link`")
        .stderr_has("the job folder's copy resolves into the git folder `.git` through a symlink")
        .stderr_has("not copying `through/config`")
        .stderr_has("not copying `etc/hostname`");
    assert_eq!(p.read("plan.txt"), "plan\n");
    assert_eq!(p.read(".claude/config.yaml"), config);
    assert!(!p.exists("token-link") && !p.exists("through") && !p.exists("etc"));
    crate::llm::assert_git_untouched(&p, &git_config);
}
