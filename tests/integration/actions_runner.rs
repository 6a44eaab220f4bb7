//! On a GitHub Actions runner (`GITHUB_ACTIONS=true`) the binary writes step outputs, the job
//! summary, annotations, log groups and masks; elsewhere it writes none of them.

use std::collections::BTreeMap;

use crate::harness::{Project, Run, config};

/// Run `args` as on a runner; returns the run and the outputs it set.
pub(crate) fn on_runner(p: &Project, args: &[&str], extra: &[(&str, &str)]) -> (Run, BTreeMap<String, String>, String) {
    let out = p.path("runner/output");
    let summary = p.path("runner/summary.md");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, "earlier=kept\n").unwrap();
    std::fs::write(&summary, "").unwrap();
    let mut cmd = p.command(args);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &out)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_WORKSPACE", p.root());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let run = Run::from_output(cmd.output().unwrap());
    let outputs = parse_outputs(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(outputs.get("earlier").map(String::as_str), Some("kept"), "outputs are appended");
    (run, outputs, std::fs::read_to_string(&summary).unwrap())
}

/// `$GITHUB_OUTPUT` as the runner reads it: `k=v` lines and `k<<DELIM` blocks.
pub(crate) fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((k, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            map.insert(k.to_owned(), value.join("\n"));
        } else if let Some((k, v)) = line.split_once('=') {
            map.insert(k.to_owned(), v.to_owned());
        }
    }
    map
}

fn failing_project() -> Project {
    Project::with_config(&config(
        "  retry: {retries: 1, base_delay: 0.01}",
        &[
            (
                "writer",
                "echo '::set-output name=status::hijacked'; echo '::add-mask::nothing'; echo ARTIFACT: out.txt; echo done > out.txt",
            ),
            ("broken", "echo 'compiler says no'; exit 75"),
        ],
        "  - name: build\n    agents: [writer, broken]\n    parallel: true\n    artifacts:\n      - out.txt\n      - \"docs/*.md\"\n",
    ))
}

#[test]
fn a_failed_run_sets_outputs_annotations_groups_and_summary() {
    let p = failing_project();
    let (run, out, summary) = on_runner(&p, &["run", "start"], &[]);
    run.code(1);
    assert_eq!(out["status"], "failed");
    assert_eq!(out["exit-code"], "1");
    assert_eq!(out["phase"], "build");
    assert_eq!(out["awaiting-approval"], "false");
    assert_eq!(out["failed-agents"], "build/broken");
    let run_id = p.state()["run_id"].as_str().unwrap().to_owned();
    assert_eq!(out["run-id"], run_id);
    assert_eq!(out["junit"], p.path("reports/junit.xml").display().to_string());
    assert!(p.path(&out["junit"]).is_file());
    assert!(std::path::Path::new(&out["metrics-json"]).is_file(), "{}", out["metrics-json"]);
    let uploads: Vec<&str> = out["upload-paths"].lines().collect();
    assert!(uploads.contains(&p.path(".claude/orchestrator_state.json").to_str().unwrap()), "{uploads:?}");
    assert!(uploads.contains(&p.path(".claude/logs").to_str().unwrap()), "{uploads:?}");
    assert!(uploads.contains(&p.path("reports").to_str().unwrap()), "{uploads:?}");
    assert!(uploads.iter().all(|u| std::path::Path::new(u).exists()));

    // An annotation for the failed agent, and one pointing at the artifact pattern in the config.
    // The tool's own words: the agent's output stays in its framed log group.
    run.stdout_has(&format!("::error title=Agent failed%3A build/broken::exit code 75 after 2 attempt(s); its output is in the log group `build/broken` and in .claude/logs/agents/{run_id}_build_broken.log\n"));
    run.stdout_has("::error title=Missing artifact%3A build,file=.claude/config.yaml,line=17,col=9::phase `build`: no file matches `docs/*.md`");
    assert!(!run.stdout.contains("no file matches `out.txt`"), "{}", run.stdout);

    // A log group per agent; agent output cannot issue workflow commands.
    run.stdout_has("::group::build/broken: exit code 75 (2 attempts)");
    run.stdout_has("::group::build/writer: succeeded (1 attempt)");
    let writer = run.stdout.split("::group::build/writer").nth(1).unwrap();
    let stop = writer.lines().nth(1).unwrap();
    let token = stop.strip_prefix("::stop-commands::").unwrap_or_else(|| panic!("not framed: {writer}"));
    let hijack = writer.find("::set-output name=status::hijacked").unwrap();
    let resume = writer.find(&format!("::{token}::")).unwrap();
    assert!(hijack < resume);

    assert!(summary.contains(&format!("orchestrator run `{run_id}`: failed")), "{summary}");
    assert!(summary.contains("| build | ❌ failed |"), "{summary}");
    assert!(summary.contains("| build | broken | ❌ exit code 75 | 2 |"), "{summary}");
    assert!(summary.contains("❌ 1 pattern(s) unmatched"), "{summary}");
}

#[test]
fn a_gated_run_reports_the_gate_and_masks_secrets() {
    let p = Project::with_config(&config(
        "",
        &[("planner", "echo key is $OPENAI_API_KEY")],
        "  - name: plan\n    agents: [planner]\n    requires_consensus: true\n  - name: build\n    agents: [planner]\n",
    ));
    let (run, out, summary) = on_runner(&p, &["run", "start"], &[("OPENAI_API_KEY", "sk-test-very-secret")]);
    run.code(4);
    assert!(run.stdout.starts_with("::add-mask::sk-test-very-secret\n"), "{}", run.stdout);
    assert_eq!(run.stdout.matches("sk-test-very-secret").count(), 1, "{}", run.stdout);
    run.stdout_has("key is ***");
    assert_eq!(out["status"], "awaiting-approval");
    assert_eq!(out["awaiting-approval"], "true");
    assert_eq!(out["phase"], "plan");
    assert_eq!(out["exit-code"], "4");
    assert!(summary.contains("`plan`: ⏸️ awaiting approval (`.claude/consensus/plan/REQUEST.md`)"), "{summary}");
    assert!(summary.contains("| build | · pending | — | 1 to run |"), "{summary}");

    // Approving records the decision; the next step's summary shows who decided.
    let (run, out, summary) = on_runner(&p, &["run", "approve", "--by", "alice"], &[]);
    run.code(0);
    assert_eq!(out["status"], "completed");
    assert_eq!(out["phase"], "build");
    assert!(summary.contains("`plan`: approved by **alice**"), "{summary}");
}

#[test]
fn refused_input_is_annotated_at_its_location() {
    let p = Project::with_config(&config("", &[("builder", "true")], "  - name: build\n    agents: [buidler]\n"));
    let before = p.tree();
    let (run, out, summary) = on_runner(&p, &["run", "start"], &[]);
    run.code(3).stderr_has("unknown agent `buidler`");
    run.stdout_has("::error title=orchestrator%3A invalid input,file=.claude/config.yaml,line=10,col=14::unknown agent `buidler` in phase `build`%0Ahelp: did you mean `builder`?");
    assert_eq!(out["status"], "error");
    assert_eq!(out["exit-code"], "3");
    assert_eq!(summary, "");
    let mut after = p.tree();
    after.retain(|k, _| !k.starts_with("runner"));
    let mut before = before;
    before.retain(|k, _| !k.starts_with("runner"));
    assert_eq!(before, after, "a refused config writes nothing in the workspace");
}

#[test]
fn off_a_runner_nothing_is_written_for_it() {
    let p = failing_project();
    let out = p.path("output");
    let run = Run::from_output(p.command(&["run", "start"]).env("GITHUB_OUTPUT", &out).output().unwrap());
    run.code(1);
    assert!(!run.stdout.contains("::"), "{}", run.stdout);
    assert!(!out.exists());
}

#[test]
fn each_phase_can_be_its_own_step() {
    let p = Project::with_config(&config(
        "",
        &[("planner", "echo plan > plan.txt"), ("builder", "cat plan.txt")],
        "  - name: plan\n    agents: [planner]\n    requires_consensus: true\n  - name: build\n    agents: [builder]\n",
    ));
    let before = p.tree();
    p.run(&["run", "start", "--phase", "build"])
        .code(2)
        .stderr_has("a run cannot start with phase `build`: it needs `plan`")
        .stderr_has("help: start with a phase that needs none: `plan`");
    assert_eq!(before, p.tree());
    p.run(&["run", "start", "--phase", "plan"]).code(4);
    // Still waiting: the step says so (exit 4) and runs nothing.
    p.run(&["run", "phase", "build"]).code(4).stdout_has("phase `plan` awaits approval");
    assert_eq!(p.state()["phases"]["build"]["status"], "pending");
    p.run(&["run", "approve", "--no-continue"]).code(0);
    p.run(&["run", "phase", "build"]).code(0);
    assert_eq!(p.state()["phases"]["build"]["status"], "succeeded");
}

#[test]
fn a_forks_pull_request_runs_no_agents_with_the_base_repositorys_secrets() {
    let p = Project::with_config(&config("", &[("planner", "touch ran")], "  - name: plan\n    agents: [planner]\n"));
    p.write(
        "event.json",
        r#"{"action": "labeled", "number": 7, "label": {"name": "orchestrator:approved"},
            "pull_request": {"number": 7, "head": {"ref": "main", "sha": "abc", "repo": {"full_name": "mallory/app"}},
                             "base": {"ref": "main", "repo": {"full_name": "octo/app"}}},
            "repository": {"full_name": "octo/app"}, "sender": {"login": "alice"}}"#,
    );
    let before = p.tree();
    let event = p.path("event.json");
    let run = Run::from_output(
        p.command(&["run", "start"])
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_EVENT_NAME", "pull_request_target")
            .env("GITHUB_REPOSITORY", "octo/app")
            .env("GITHUB_TOKEN", "ghs_not_used_for_anything")
            .env("GITHUB_API_URL", "http://127.0.0.1:9")
            .output()
            .unwrap(),
    );
    run.code(3)
        .stderr_has("pull request #7 comes from the fork `mallory/app`")
        .stderr_has("`consensus.allow_forks: true`");
    assert_eq!(before, p.tree(), "nothing ran, nothing was written");
}

#[test]
fn a_dry_run_says_so_in_the_outputs_and_the_summary() {
    let p = failing_project();
    let (run, out, summary) = on_runner(&p, &["run", "start", "--dry-run"], &[]);
    run.code(0);
    assert_eq!(out["status"], "dry-run");
    assert_eq!(out["exit-code"], "0");
    assert_eq!(out["phase"], "build");
    assert!(summary.starts_with("## 🔎 orchestrator dry run: build\n\nNothing was run"), "{summary}");
    assert!(summary.contains("echo 'compiler says no'"), "the plan shows the commands: {summary}");
    assert!(!p.exists(".claude/orchestrator_state.json"), "a dry run writes nothing in the workspace");
}

#[test]
fn a_repeated_start_step_continues_the_run_it_started() {
    let p = Project::with_config(&config(
        "",
        &[("planner", "echo run >> runs.log")],
        "  - name: plan\n    agents: [planner]\n    requires_consensus: true\n  - name: build\n    agents: [planner]\n",
    ));
    p.run(&["run", "start", "--or-resume", "--phase", "plan"]).code(4);
    let run_id = p.state()["run_id"].clone();
    p.run(&["run", "start", "--or-resume", "--phase", "plan"])
        .code(4)
        .stderr_has("has not finished; continuing it (--or-resume)");
    assert_eq!(p.state()["run_id"], run_id);
    assert_eq!(p.read("runs.log"), "run\n", "the phase did not run twice");
    p.run(&["run", "approve"]).code(0);
    // A finished run is not continued: a new one starts.
    p.run(&["run", "start", "--or-resume", "--phase", "plan"]).code(4);
    assert_ne!(p.state()["run_id"], run_id);
    p.run(&["run", "start", "--or-resume", "--force"]).code(2).stderr_has("cannot be used with");
}
