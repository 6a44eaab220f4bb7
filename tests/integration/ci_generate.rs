//! `ci generate`: the workflow written from the config passes actionlint and GitHub's schema,
//! and lays the phases out as the config says.

use std::process::Command;

use serde_yaml::Value;

use crate::harness::Project;
use crate::workflows::tool;

fn repo_project(config: Option<&str>) -> Project {
    let p = Project::new();
    assert!(Command::new("git").args(["init", "-q"]).current_dir(p.root()).status().unwrap().success());
    p.run(&["init"]).code(0);
    if let Some(c) = config {
        p.write(".claude/config.yaml", c);
    }
    p
}

fn lint(p: &Project, rel: &str) {
    tool("actionlint", &["-no-color", rel], p.root()).code(0);
    tool("check-jsonschema", &["--builtin-schema", "vendor.github-workflows", rel], p.root()).code(0);
}

fn yaml(p: &Project, rel: &str) -> Value {
    serde_yaml::from_str(&p.read(rel)).unwrap()
}

fn steps(job: &Value) -> Vec<&Value> {
    job["steps"].as_sequence().unwrap().iter().collect()
}

#[test]
fn steps_layout_for_the_default_template() {
    let p = repo_project(None);
    p.run(&["ci", "generate", "--uses", "octo/orchestrator@v1"]).code(0).stdout_has("(steps layout, 3 phases)");
    let rel = ".github/workflows/orchestrator.yml";
    lint(&p, rel);
    let wf = yaml(&p, rel);
    assert!(wf["on"]["pull_request_target"]["types"].as_sequence().unwrap().contains(&Value::from("labeled")));
    assert_eq!(wf["permissions"], Value::Mapping(Default::default()), "nothing at the top level");
    let job = &wf["jobs"]["orchestrate"];
    assert_eq!(job["permissions"]["contents"], "write", "the template commits outputs");
    assert!(job["if"].as_str().unwrap().contains("head.repo.full_name == github.repository"), "forks are skipped");
    let phases: Vec<&Value> = steps(job).into_iter().filter(|s| s["uses"] == "octo/orchestrator@v1").collect();
    let names: Vec<&str> = phases.iter().map(|s| s["with"]["phase"].as_str().unwrap()).collect();
    assert_eq!(names, ["planning", "development", "verification"]);
    assert_eq!(phases[0]["with"]["command"], "run start --or-resume");
    assert_eq!(phases[0]["if"], "github.event_name == 'pull_request'");
    assert_eq!(phases[1]["with"]["command"], "run phase");
    // A skipped step's outputs are null, and null == '0' holds: the outcome is checked first.
    assert_eq!(
        phases[1]["if"],
        "github.event_name != 'pull_request' || (steps.planning.outcome == 'success' && steps.planning.outputs.exit-code == '0')"
    );
    assert_eq!(
        phases[2]["if"],
        "(steps.development.outcome == 'success' && steps.development.outputs.exit-code == '0')"
    );

    // An existing workflow is kept unless --force.
    let before = p.read(rel);
    p.run(&["ci", "generate", "--uses", "octo/orchestrator@v2"]).code(2).stderr_has("exists; not replacing it");
    assert_eq!(p.read(rel), before);
    p.run(&["ci", "generate", "--uses", "octo/orchestrator@v2", "--force"]).code(0);
    assert!(p.read(rel).contains("uses: octo/orchestrator@v2"));
}

#[test]
fn jobs_layout_with_a_matrix_for_a_parallel_phase() {
    let cfg = "agents:\n  planner: {entrypoints: {default: \"true\"}}\n  a: {entrypoints: {default: \"true\"}}\n  b: {entrypoints: {default: \"true\"}}\nphases:\n  - {name: planning, agents: [planner], requires_consensus: true}\n  - {name: development, agents: [a, b], parallel: true}\n  - {name: verification, agents: [b]}\n";
    let p = repo_project(Some(cfg));
    p.run(&["ci", "generate", "--jobs", "--uses", "octo/orchestrator@v1", "-o", "ci.yml"]).code(0);
    p.write(".github/workflows/ci.yml", &p.read("ci.yml"));
    lint(&p, ".github/workflows/ci.yml");
    let wf = yaml(&p, "ci.yml");
    let jobs = wf["jobs"].as_mapping().unwrap();
    let ids: Vec<&str> = jobs.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(ids, ["start", "planning", "development-agents", "development", "verification"]);
    assert_eq!(wf["jobs"]["planning"]["needs"], Value::from(vec!["start"]), "the run is prepared first");
    assert_eq!(
        steps(&wf["jobs"]["planning"]).into_iter().find(|s| s["id"] == "phase").unwrap()["with"]["command"],
        "run phase"
    );
    let matrix = &wf["jobs"]["development-agents"];
    assert_eq!(matrix["strategy"]["matrix"]["agent"], Value::from(vec!["a", "b"]));
    assert_eq!(matrix["needs"], Value::from(vec!["planning"]));
    let agent_step = steps(matrix).into_iter().find(|s| s["id"] == "agent").unwrap();
    assert_eq!(agent_step["with"]["command"], "run phase --agent ${{ matrix.agent }}");
    let dev = &wf["jobs"]["development"];
    assert_eq!(dev["needs"], Value::from(vec!["planning", "development-agents"]));
    let merge = steps(dev).into_iter().find(|s| s["id"] == "merge").unwrap();
    assert_eq!(merge["with"]["command"], "run merge ${{ runner.temp }}/orchestrator-parts");
    assert_eq!(wf["jobs"]["verification"]["needs"], Value::from(vec!["development"]));
    assert!(
        wf["jobs"]["verification"]["if"]
            .as_str()
            .unwrap()
            .contains("needs.development.result == 'success' && needs.development.outputs.exit-code == '0'")
    );
    assert_eq!(wf["jobs"]["planning"]["outputs"]["exit-code"], "${{ steps.phase.outputs.exit-code }}");
}

#[test]
fn a_workspace_in_a_subfolder_and_the_action_reference() {
    let p = Project::new();
    assert!(Command::new("git").args(["init", "-q"]).current_dir(p.root()).status().unwrap().success());
    std::fs::create_dir_all(p.path("agents")).unwrap();
    p.run(&["-C", "agents", "init"]).code(0);
    p.run(&["-C", "agents", "ci", "generate"])
        .code(2)
        .stderr_has("which orchestrator action should the workflow use?")
        .stderr_has("--uses OWNER/orchestrator@REF");
    assert!(!p.exists(".github"));
    p.run(&["-C", "agents", "ci", "generate", "--uses", "o/r@v1"]).code(0);
    let text = p.read(".github/workflows/orchestrator.yml");
    assert!(text.contains("working-directory: agents"), "{text}");
    assert!(text.contains("hashFiles('agents/reports/junit.xml')"), "{text}");
    p.run(&["-C", "agents", "ci", "generate", "--uses", "o/r @v1", "-o", "-"]).code(2).stderr_has("`--uses` must be");
}

/// Every job of the jobs layout finds the one run: a first job prepares it (creates it on a
/// pull request's opening or push, restores it from the gate comment on a later event) and
/// every phase's jobs need it, however the phases are shaped.
#[test]
fn jobs_layout_whose_first_phase_is_a_matrix_starts_with_the_run() {
    // A parallel first phase; a second phase that needs none; a phase named like the start
    // job; a parallel phase after a gate.
    let cfg = "agents:\n  a: {entrypoints: {default: \"true\"}}\n  b: {entrypoints: {default: \"true\"}}\n  c: {entrypoints: {default: \"true\"}}\nphases:\n  - {name: build, agents: [a, b, c], parallel: true, requires_consensus: true}\n  - {name: start, agents: [a], needs: []}\n  - {name: ship, agents: [a, b], parallel: true, needs: [build, start]}\n";
    let p = repo_project(Some(cfg));
    p.run(&["ci", "generate", "--jobs", "--uses", "octo/orchestrator@v1", "-o", "ci.yml"])
        .code(0)
        .stdout_has("(jobs layout, 3 phases)");
    p.write(".github/workflows/ci.yml", &p.read("ci.yml"));
    lint(&p, ".github/workflows/ci.yml");
    let wf = yaml(&p, "ci.yml");
    let ids: Vec<&str> = wf["jobs"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(ids, ["start_", "build-agents", "build", "start", "ship-agents", "ship"]);
    let prepare = &wf["jobs"]["start_"];
    assert!(prepare.get("needs").is_none());
    assert_eq!(prepare["permissions"]["pull-requests"], "read", "it writes nothing on GitHub");
    let step = steps(prepare).into_iter().find(|s| s["id"] == "prepare").unwrap();
    assert_eq!(
        step["with"]["command"],
        "${{ github.event_name == 'pull_request' && 'run prepare --or-start' || 'run prepare' }}"
    );
    assert_eq!(step["with"]["artifact-name"], "orchestrator-start_-${{ github.run_attempt }}");
    assert!(!steps(prepare).iter().any(|s| s["id"] == "merge"), "nothing to merge before it");
    // The matrix of the first phase joins that run: it needs the start job, merges its upload
    // and runs one agent each.
    let matrix = &wf["jobs"]["build-agents"];
    assert_eq!(matrix["needs"], Value::from(vec!["start_"]));
    assert!(
        matrix["if"]
            .as_str()
            .unwrap()
            .ends_with("needs.start_.result == 'success' && needs.start_.outputs.exit-code == '0' }}")
    );
    let names: Vec<&str> = steps(matrix).iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(names, ["merge", "agent"]);
    assert_eq!(wf["jobs"]["build"]["needs"], Value::from(vec!["start_", "build-agents"]));
    // No job starts a run but the first.
    for (id, job) in wf["jobs"].as_mapping().unwrap() {
        for s in steps(job) {
            let command = s["with"]["command"].as_str().unwrap_or_default();
            assert!(!command.contains("run start"), "{id:?} starts a run: {command}");
        }
    }
    // The other root phase waits for the first, as in the steps layout; the parallel phase
    // after the gate needs both.
    assert_eq!(wf["jobs"]["start"]["needs"], Value::from(vec!["build"]));
    assert_eq!(wf["jobs"]["ship-agents"]["needs"], Value::from(vec!["build", "start"]));
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("ci_generate_jobs_first_phase_parallel", p.read("ci.yml"));
    });
}
