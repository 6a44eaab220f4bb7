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

/// A job of the jobs layout on a runner: `GITHUB_ACTIONS` set, outputs written to a file.
fn on_runner(p: &Project, outputs: &std::path::Path, args: &[&str]) -> crate::harness::Run {
    let mut cmd = p.command(args);
    cmd.env("GITHUB_ACTIONS", "true").env("GITHUB_OUTPUT", outputs);
    crate::harness::Run::from_output(cmd.output().unwrap())
}

/// What upload-artifact and download-artifact leave of a job's workspace: the files, each a
/// plain 0644 file (the zip keeps no modes).
fn uploaded(from: &std::path::Path, to: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    crate::action_act::copy(from, to);
    for (rel, _) in crate::harness::tree(to) {
        std::fs::set_permissions(to.join(rel), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

fn mode(p: &Project, rel: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p.path(rel)).unwrap().permissions().mode() & 0o7777
}

fn tool_cfg() -> String {
    config(
        "",
        &[
            ("maker", "printf '#!/bin/sh\\necho made-it\\n' > tool.sh && chmod 755 tool.sh && echo ARTIFACT: tool.sh"),
            ("user", "./tool.sh > used.txt && echo ARTIFACT: used.txt"),
        ],
        "  - name: make\n    agents: [maker]\n  - name: use\n    agents: [user]\n",
    )
}

#[test]
fn an_executable_output_stays_executable_through_an_upload_that_drops_modes() {
    let first = Project::with_config(&tool_cfg());
    let outputs = tempfile::NamedTempFile::new().unwrap();
    on_runner(&first, outputs.path(), &["run", "start", "--phase", "make"]).code(0);
    // The job records its executables and uploads the record with the rest.
    let manifest: serde_json::Value = serde_json::from_str(&first.read(".claude/file_modes.json")).unwrap();
    assert_eq!(manifest, serde_json::json!({"version": 1, "modes": {"tool.sh": "755"}}));
    let written = std::fs::read_to_string(outputs.path()).unwrap();
    assert!(written.contains("/.claude/file_modes.json\n"), "not uploaded:\n{written}");

    // The next job: the download has lost the bit; the merge gives it back, and its agent runs it.
    let downloads = tempfile::tempdir().unwrap();
    uploaded(first.root(), &downloads.path().join("orchestrator-make-1"));
    let next = Project::with_config(&tool_cfg());
    next.run(&["run", "merge", downloads.path().to_str().unwrap()]).code(0).stdout_has("1 phase (make)");
    assert_eq!(mode(&next, "tool.sh") & 0o111, 0o111, "{:o}", mode(&next, "tool.sh"));
    next.run(&["run", "phase", "use"]).code(0);
    assert_eq!(next.read("used.txt"), "made-it\n");

    // Without the record (an older part, or one whose record is unreadable) the bit is lost:
    // the later job cannot run the script. The merge says why and goes on.
    std::fs::write(downloads.path().join("orchestrator-make-1/.claude/file_modes.json"), "{not json").unwrap();
    let bare = Project::with_config(&tool_cfg());
    bare.run(&["run", "merge", downloads.path().to_str().unwrap()])
        .code(0)
        .stderr_has("warning: ignoring `.claude/file_modes.json`: it is not valid JSON");
    assert_eq!(mode(&bare, "tool.sh") & 0o111, 0);
    bare.run(&["run", "phase", "use"]).code(1);
}

#[test]
fn a_hostile_mode_record_changes_only_execute_bits_of_files_the_part_carries() {
    let first = Project::with_config(&tool_cfg());
    let outputs = tempfile::NamedTempFile::new().unwrap();
    on_runner(&first, outputs.path(), &["run", "start", "--phase", "make"]).code(0);
    let downloads = tempfile::tempdir().unwrap();
    let part = downloads.path().join("orchestrator-make-1");
    uploaded(first.root(), &part);
    // An agent of that job rewrote the record: files outside the workspace, files the part does
    // not carry, the orchestrator's own files, setuid bits, nonsense.
    let run_id = first.state()["run_id"].as_str().unwrap().to_owned();
    let hostile = serde_json::json!({"version": 1, "modes": {
        "tool.sh": "4755",
        "../outside.sh": "755",
        "/etc/passwd": "777",
        "checked-in.sh": "755",
        ".claude/config.yaml": "755",
        format!(".claude/logs/agents/{run_id}_make_maker.log"): "6711",
        "x\n::error::injected": "755",
    }});
    std::fs::write(part.join(".claude/file_modes.json"), hostile.to_string()).unwrap();
    let next = Project::nested();
    next.write(".claude/config.yaml", &tool_cfg());
    next.write("checked-in.sh", "#!/bin/sh\n");
    std::fs::write(next.outside().join("outside.sh"), "#!/bin/sh\n").unwrap();
    let out = next.run(&["run", "merge", downloads.path().to_str().unwrap()]);
    out.code(0)
        .stderr_has("ignoring the entry `tool.sh` of `.claude/file_modes.json`: its mode 4755 has setuid")
        .stderr_has("ignoring the entry `../outside.sh`")
        .stderr_has("ignoring the entry `/etc/passwd`")
        .stderr_has("its mode 6711 has setuid");
    assert!(!out.stderr.lines().any(|l| l.starts_with("::")), "{}", out.stderr);
    // The setuid entry was ignored whole: the script is not executable, and nothing is setuid.
    assert_eq!(mode(&next, "tool.sh"), 0o644);
    let log = format!(".claude/logs/agents/{run_id}_make_maker.log");
    assert_eq!(mode(&next, &log) & 0o7111, 0, "{:o}", mode(&next, &log));
    // Files the part does not carry are not touched, inside the workspace or outside it.
    assert_eq!(mode(&next, "checked-in.sh") & 0o111, 0);
    assert_eq!(mode(&next, ".claude/config.yaml") & 0o111, 0);
    let outside = std::fs::metadata(next.outside().join("outside.sh")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&outside.permissions()) & 0o111, 0);
}

#[test]
fn run_prepare_makes_one_run_for_every_job_and_runs_nothing() {
    let cfg = cfg();
    let start = Project::with_config(&cfg);
    // Without --or-start there must be a run already: refused, nothing written.
    let before = start.tree();
    start.run(&["run", "prepare"]).code(2).stderr_has("no run has been started here");
    start.run(&["run", "prepare", "--intake", ".claude/intake.yaml"]).code(2).stderr_has("--or-start");
    assert_eq!(start.tree(), before);

    let outputs = tempfile::NamedTempFile::new().unwrap();
    on_runner(&start, outputs.path(), &["run", "prepare", "--or-start"]).code(0).stdout_has("nothing was run");
    let state = start.state();
    let run_id = state["run_id"].as_str().unwrap().to_owned();
    assert!(state["phases"].as_object().unwrap().values().all(|p| p["status"] == "pending"), "{state:#}");
    let written = std::fs::read_to_string(outputs.path()).unwrap();
    assert!(written.contains("/.claude/orchestrator_state.json\n"), "the state is uploaded:\n{written}");
    assert!(written.contains("exit-code<<") || written.contains("exit-code=0"), "{written}");
    // Again (a re-run job, a duplicate event): the same run, not a second one.
    start.run(&["run", "prepare", "--or-start"]).code(0);
    start.run(&["run", "prepare"]).code(0).stdout_has(&format!("run {run_id} is ready"));
    assert_eq!(start.state()["run_id"], run_id.as_str());
    assert_eq!(start.state()["started_at"], state["started_at"]);

    // A job of the first phase, from the prepared run: its part merges into that run.
    let start_dir = start.root().to_str().unwrap().to_owned();
    let downloads = tempfile::tempdir().unwrap();
    crate::action_act::copy(start.root(), &downloads.path().join("orchestrator-start-1"));
    let job = Project::with_config(&cfg);
    job.run(&["run", "merge", &start_dir]).code(0);
    job.run(&["run", "phase", "plan", "--agent", "planner"]).code(0);
    assert_eq!(job.state()["run_id"], run_id.as_str());
    crate::action_act::copy(job.root(), &downloads.path().join("orchestrator-plan-planner-1"));
    // A job that started a run of its own instead is refused by the merge.
    let stray = Project::with_config(&cfg);
    stray.run(&["run", "start", "--phase", "plan"]).code(0);
    crate::action_act::copy(stray.root(), &downloads.path().join("orchestrator-plan-stray-1"));
    let end = Project::with_config(&cfg);
    end.run(&["run", "merge", downloads.path().to_str().unwrap()]).code(2).stderr_has("holds run");
    std::fs::remove_dir_all(downloads.path().join("orchestrator-plan-stray-1")).unwrap();
    end.run(&["run", "merge", downloads.path().to_str().unwrap()])
        .code(0)
        .stdout_has(&format!("merged into run {run_id}"));
    end.run(&["run", "phase", "plan"]).code(0);
    assert_eq!(end.state()["phases"]["plan"]["status"], "succeeded");

    // A finished run is not kept: --or-start starts the next one.
    end.run(&["run", "start", "--or-resume", "--max-workers", "1"]).code(0);
    assert_eq!(end.state()["phases"]["dev"]["status"], "succeeded");
    end.run(&["run", "prepare", "--or-start"]).code(0).stderr_has("started");
    assert_ne!(end.state()["run_id"], run_id.as_str());
}

#[test]
fn preparing_a_run_needs_no_agents_key() {
    // The first phase has a language-model agent whose key only its own job would have.
    let cfg = cfg().replace(
        "agents:\n",
        "agents:\n  writer:\n    llm: {provider: anthropic, model: m, base_url: \"http://127.0.0.1:9\", api_key_env: NO_SUCH_KEY_HERE}\n",
    ).replace("agents: [planner]", "agents: [planner, writer]");
    let p = Project::with_config(&cfg);
    p.run(&["run", "prepare", "--or-start"]).code(0).stdout_has("nothing was run");
    let before = p.tree();
    p.run(&["run", "phase", "plan"]).code(3).stderr_has("NO_SUCH_KEY_HERE");
    assert_eq!(p.tree(), before, "refused before anything ran");
}
