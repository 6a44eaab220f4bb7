//! The jobs layout (`ci generate --jobs`), run by `act` end to end with artifacts uploaded and
//! downloaded for real: local stand-ins for `actions/upload-artifact` and
//! `actions/download-artifact` (`tests/act/`) keep them in a folder per workflow run. A
//! parallel phase of three agents runs as a three-job matrix, its own job merges their states
//! and outputs into one run and opens the gate once, and a label continues the run to its end.

use std::path::Path;

use crate::action_act::{Act, ActRun};
use crate::harness::{BIN, Run, git};

/// Three agents in `development`, which is gated too.
fn prepare(work: &Path) {
    let cfg = std::fs::read_to_string(work.join(".claude/config.yaml")).unwrap();
    let cfg = cfg
        .replace(
            "    agents: [builder, documenter]\n    parallel: true\n",
            "    agents: [builder, documenter, checker]\n    parallel: true\n    requires_consensus: true\n",
        )
        .replace(
            "agents:\n",
            "agents:\n  checker:\n    description: Notes what it checked\n    entrypoints:\n      default: >-\n        mkdir -p docs && echo \"checked by $(hostname)\" > docs/CHECKS.md && echo \"ARTIFACT: docs/CHECKS.md\"\n",
        );
    assert!(cfg.contains("checker, ") || cfg.contains("checker]"), "the config changed shape:\n{cfg}");
    jobs_layout(work, &cfg, "jobs layout");
}

/// Write `config` into the act work tree, generate its jobs layout (saying `says`) in place of
/// the repository's own steps workflow.
fn jobs_layout(work: &Path, config: &str, says: &str) {
    std::fs::write(work.join(".claude/config.yaml"), config).unwrap();
    let out = Command::new(BIN).args(["ci", "generate", "--jobs", "--uses", "./"]).current_dir(work).output().unwrap();
    Run::from_output(out).code(0).stdout_has(says);
    std::fs::remove_file(work.join(".github/workflows/orchestrate.yml")).unwrap();
}

use std::process::Command;

/// The jobs of `run` that ran, with their results (a matrix job once per agent).
fn results(run: &ActRun) -> Vec<(String, String)> {
    let mut r: Vec<(String, String)> = run
        .log
        .iter()
        .filter(|v| v.get("jobResult").is_some())
        .map(|v| {
            (v["jobID"].as_str().unwrap_or_default().to_owned(), v["jobResult"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    r.sort();
    r
}

/// The names of the artifacts a workflow run stored.
fn stored(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn gate_comments_of(act: &Act, phase: &str) -> usize {
    act.gh.gate_comments().iter().filter(|b| b.contains(&format!(" phase={phase} -->"))).count()
}

#[test]
fn the_jobs_layout_runs_a_matrix_merges_it_opens_the_gate_once_and_completes() {
    let act = Act::with_workflow(prepare);
    act.gh.permission("alice", "write");
    let runs = act.dir.path().join("artifacts");
    let sync_head = || {
        let head = act.origin_head();
        act.gh.with(|g| g.head_sha = head);
    };

    // 1. The pull request opens: planning runs and waits at its gate; nothing after it runs.
    let opened = act.event("opened", r#""action": "opened", "sender": {"login": "pr-author"},"#);
    let store = runs.join("1");
    let first = act.act_storing("pull_request", &opened, Some(&store));
    first.run.code(0);
    assert_eq!(
        results(&first),
        [("planning".to_owned(), "success".to_owned()), ("start".to_owned(), "success".to_owned())],
        "{}",
        first.run.stdout
    );
    assert_eq!(first.outputs("phase")["exit-code"], "4");
    assert_eq!(stored(&store), ["orchestrator-planning-1", "orchestrator-start-1"]);
    assert!(
        store.join("orchestrator-planning-1/.claude/orchestrator_state.json").is_file(),
        "the workspace is the root"
    );
    assert_eq!(gate_comments_of(&act, "planning"), 1);
    sync_head();

    // 2. Approved: planning goes on, development runs as three jobs, one per agent, and its
    //    own job merges them and opens its gate.
    act.gh.label("alice", "User", "orchestrator:approved");
    let store = runs.join("2");
    let second = act.act_storing("pull_request_target", &act.approval_by("alice"), Some(&store));
    second.run.code(0);
    let jobs = results(&second);
    assert_eq!(
        jobs.iter().filter(|(j, r)| j == "development-agents" && r == "success").count(),
        3,
        "one job per agent: {jobs:?}\n{}",
        second.run.stdout
    );
    assert!(jobs.contains(&("development".into(), "success".into())), "{jobs:?}\n{}", second.run.stdout);
    assert!(!jobs.iter().any(|(j, _)| j == "verification"), "verification waits for the gate: {jobs:?}");
    assert_eq!(
        stored(&store),
        [
            "orchestrator-development-1",
            "orchestrator-development-builder-1",
            "orchestrator-development-checker-1",
            "orchestrator-development-documenter-1",
            "orchestrator-planning-1",
            "orchestrator-start-1",
        ]
    );
    // Each agent ran in its own job, once; the merged state has all three.
    let merged: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.join("orchestrator-development-1/.claude/orchestrator_state.json")).unwrap(),
    )
    .unwrap();
    let dev = &merged["phases"]["development"];
    assert_eq!(dev["status"], "awaiting_approval", "{dev:#}");
    for agent in ["builder", "documenter", "checker"] {
        assert_eq!(dev["agents"][agent]["status"], "succeeded", "{agent}: {dev:#}");
        let alone: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                store.join(format!("orchestrator-development-{agent}-1/.claude/orchestrator_state.json")),
            )
            .unwrap(),
        )
        .unwrap();
        let ran: Vec<&String> = alone["phases"]["development"]["agents"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, a)| a["status"] == "succeeded")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(ran, [agent], "the job of {agent} ran only {agent}");
    }
    assert_eq!(merged["run_id"], first_run_id(&first), "one run throughout");
    // The outputs of all three reached the phase's job: validated there, and on the branch.
    assert!(store.join("orchestrator-development-1/docs/CHECKS.md").is_file());
    git(&act.work(), &["fetch", "-q", "origin", "feature"]);
    let tracked = git(&act.work(), &["ls-tree", "-r", "--name-only", "FETCH_HEAD"]);
    for f in ["src/hello.sh", "docs/USAGE.md", "docs/CHECKS.md"] {
        assert!(tracked.lines().any(|l| l == f), "{f} is not on the branch:\n{tracked}");
    }
    assert_eq!(gate_comments_of(&act, "development"), 1, "the gate opens once, in the phase's own job");
    let comment = act.gh.gate_comments().into_iter().find(|b| b.contains(" phase=development -->")).unwrap();
    for agent in ["builder", "documenter", "checker"] {
        assert!(comment.contains(agent), "the request lacks {agent}:\n{comment}");
    }
    sync_head();

    // 3. Approved again: the agents' jobs find their phase done and run nothing; the phase's
    //    job takes the decision and verification completes the run.
    act.gh.with(|g| g.labels.clear());
    act.gh.label("alice", "User", "orchestrator:approved");
    let store = runs.join("3");
    let third = act.act_storing("pull_request_target", &act.approval_by("alice"), Some(&store));
    third.run.code(0);
    let jobs = results(&third);
    assert!(jobs.contains(&("verification".into(), "success".into())), "{jobs:?}\n{}", third.run.stdout);
    let ver = third.outputs("phase");
    let done: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.join("orchestrator-verification-1/.claude/orchestrator_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(done["phases"]["verification"]["status"], "succeeded", "{ver:#?}");
    assert_eq!(done["phases"]["development"]["status"], "approved");
    assert_eq!(done["phases"]["development"]["runs"], 1, "development ran once");
    for agent in ["builder", "documenter", "checker"] {
        assert_eq!(done["phases"]["development"]["agents"][agent]["attempts"].as_array().unwrap().len(), 1, "{agent}");
    }
    assert_eq!(gate_comments_of(&act, "planning"), 1, "exactly one comment per gate");
    assert_eq!(gate_comments_of(&act, "development"), 1, "exactly one comment per gate");
}

fn first_run_id(run: &ActRun) -> serde_json::Value {
    serde_json::Value::String(run.outputs("phase")["run-id"].clone())
}

/// A workflow whose first phase is parallel and gated: its three agents are the first jobs to
/// run. `tools/tool.sh` reaches later jobs through the branch, `dist/run.sh` only as a workflow
/// artifact; both are executables a later job runs.
const FIRST_PHASE_PARALLEL: &str = r#"orchestrator:
  state_file: .claude/orchestrator_state.json
  max_parallel_agents: 2
  timeout_minutes: 5
consensus:
  approve_label: "orchestrator:approved"
  reject_label: "orchestrator:rejected"
  commit_outputs: true
agents:
  maker:
    entrypoints:
      default: >-
        mkdir -p tools && printf '#!/bin/sh\necho tool says hi\n' > tools/tool.sh &&
        chmod +x tools/tool.sh && echo "ARTIFACT: tools/tool.sh"
  writer:
    entrypoints:
      default: >-
        mkdir -p docs && echo usage > docs/USAGE.md && echo "ARTIFACT: docs/USAGE.md"
  checker:
    entrypoints:
      default: >-
        mkdir -p docs && echo "checked by $(hostname)" > docs/CHECKS.md && echo "ARTIFACT: docs/CHECKS.md"
  packer:
    entrypoints:
      default: >-
        mkdir -p dist && printf '#!/bin/sh\necho "packed: $(./tools/tool.sh)"\n' > dist/run.sh &&
        chmod 755 dist/run.sh && echo "ARTIFACT: dist/run.sh"
  verifier:
    entrypoints:
      default: >-
        out=$(./dist/run.sh) && echo "run.sh says: $out"
phases:
  - name: build
    agents: [maker, writer, checker]
    parallel: true
    requires_consensus: true
    artifacts: ["tools/*.sh", "docs/*.md"]
  - name: package
    agents: [packer]
  - name: verify
    agents: [verifier]
"#;

fn state_in(store: &Path, artifact: &str) -> serde_json::Value {
    let path = store.join(artifact).join(".claude/orchestrator_state.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn a_first_phase_that_is_a_matrix_joins_one_run_opens_its_gate_once_and_completes() {
    let act = Act::with_workflow(|work| jobs_layout(work, FIRST_PHASE_PARALLEL, "(jobs layout, 3 phases)"));
    act.gh.permission("alice", "write");
    let runs = act.dir.path().join("artifacts");

    // 1. The pull request opens: the start job creates the run, the three agents' jobs join it,
    //    the phase's job merges them and opens the gate, once.
    let opened = act.event("opened", r#""action": "opened", "sender": {"login": "pr-author"},"#);
    let store = runs.join("1");
    let first = act.act_storing("pull_request", &opened, Some(&store));
    first.run.code(0);
    let jobs = results(&first);
    let ok = |job: &str| jobs.iter().filter(|(j, r)| j == job && r == "success").count();
    assert_eq!((ok("start"), ok("build-agents"), ok("build")), (1, 3, 1), "{jobs:?}\n{}", first.run.stdout);
    assert!(!jobs.iter().any(|(j, _)| j == "package" || j == "verify"), "the gate holds them: {jobs:?}");
    assert_eq!(
        stored(&store),
        [
            "orchestrator-build-1",
            "orchestrator-build-checker-1",
            "orchestrator-build-maker-1",
            "orchestrator-build-writer-1",
            "orchestrator-start-1",
        ]
    );
    // One run: every job's state is the start job's run, and each agent ran in its own job.
    let run = state_in(&store, "orchestrator-start-1");
    let (run_id, started) = (run["run_id"].clone(), run["started_at"].clone());
    for agent in ["maker", "writer", "checker"] {
        let part = state_in(&store, &format!("orchestrator-build-{agent}-1"));
        assert_eq!((&part["run_id"], &part["started_at"]), (&run_id, &started), "the job of {agent}");
        let ran: Vec<&String> = part["phases"]["build"]["agents"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, a)| a["status"] == "succeeded")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(ran, [agent], "the job of {agent} ran only {agent}");
    }
    let merged = state_in(&store, "orchestrator-build-1");
    assert_eq!(merged["run_id"], run_id);
    let build = &merged["phases"]["build"];
    assert_eq!(build["status"], "awaiting_approval", "{build:#}");
    for agent in ["maker", "writer", "checker"] {
        assert_eq!(build["agents"][agent]["status"], "succeeded", "{agent}: {build:#}");
    }
    assert_eq!(gate_comments_of(&act, "build"), 1, "the gate opens once, in the phase's own job");
    // The maker's script reached the phase's job without its mode (the upload drops it) and
    // went onto the branch executable all the same.
    git(&act.work(), &["fetch", "-q", "origin", "feature"]);
    let tree = git(&act.work(), &["ls-tree", "-r", "FETCH_HEAD"]);
    let tool = tree.lines().find(|l| l.ends_with("\ttools/tool.sh")).unwrap_or_else(|| panic!("{tree}"));
    assert!(tool.starts_with("100755 "), "{tool}");
    for f in ["docs/USAGE.md", "docs/CHECKS.md"] {
        assert!(tree.lines().any(|l| l.ends_with(&format!("\t{f}"))), "{f} is not on the branch:\n{tree}");
    }
    let head = act.origin_head();
    act.gh.with(|g| g.head_sha = head);

    // 2. Approved: the start job restores the run from the gate comment, the agents' jobs find
    //    their phase run and do nothing, and the run goes on to the end. `dist/run.sh` travels
    //    from the package job to the verify job only as an artifact, and runs there.
    act.gh.label("alice", "User", "orchestrator:approved");
    let store = runs.join("2");
    let second = act.act_storing("pull_request_target", &act.approval_by("alice"), Some(&store));
    second.run.code(0);
    let jobs = results(&second);
    for job in ["start", "build", "package", "verify"] {
        assert!(jobs.contains(&(job.into(), "success".into())), "{job}: {jobs:?}\n{}", second.run.stdout);
    }
    let agents_jobs = jobs.iter().filter(|(j, r)| j == "build-agents" && r == "success").count();
    assert_eq!(agents_jobs, 3, "the agents' jobs find their phase run: {jobs:?}");
    assert!(
        !stored(&store).iter().any(|a| a.starts_with("orchestrator-build-") && a != "orchestrator-build-1"),
        "the agents' jobs ran nothing, so uploaded nothing: {:?}",
        stored(&store)
    );
    let done = state_in(&store, "orchestrator-verify-1");
    assert_eq!(done["run_id"], run_id, "one run throughout");
    assert_eq!(done["phases"]["verify"]["status"], "succeeded", "{:#}", done["phases"]);
    assert_eq!(done["phases"]["build"]["status"], "approved");
    assert_eq!(done["phases"]["build"]["runs"], 1, "build ran once");
    for agent in ["maker", "writer", "checker"] {
        assert_eq!(done["phases"]["build"]["agents"][agent]["attempts"].as_array().unwrap().len(), 1, "{agent}");
    }
    let log = store
        .join(format!("orchestrator-verify-1/.claude/logs/agents/{}_verify_verifier.log", run_id.as_str().unwrap()));
    let log = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(log.contains("run.sh says: packed: tool says hi"), "{log}");
    assert_eq!(gate_comments_of(&act, "build"), 1, "exactly one comment per gate");
}

/// Two gated phases on branches of their own after a common one, each opening its gate in a job
/// of its own at the same time, and a phase that needs both. Neither job sees the other's gate,
/// so the newest gate comment carries a run in which the other phase has not run.
const BRANCHES: &str = r#"orchestrator:
  state_file: .claude/orchestrator_state.json
  max_parallel_agents: 2
  timeout_minutes: 5
consensus:
  approve_label: "orchestrator:approved"
  reject_label: "orchestrator:rejected"
agents:
  planner:
    entrypoints:
      default: >-
        echo plan > plan.txt && echo "ARTIFACT: plan.txt"
  l1:
    entrypoints:
      default: >-
        sleep 2 && test -s plan.txt && echo l1 > l1.txt && echo "ARTIFACT: l1.txt"
  r1:
    entrypoints:
      default: >-
        sleep 2 && test -s plan.txt && echo r1 > r1.txt && echo "ARTIFACT: r1.txt"
  joiner:
    entrypoints:
      default: >-
        echo joined > joined.txt && echo "ARTIFACT: joined.txt"
phases:
  - name: plan
    agents: [planner]
  - name: left
    agents: [l1]
    needs: [plan]
    requires_consensus: true
  - name: right
    agents: [r1]
    needs: [plan]
    requires_consensus: true
  - name: join
    agents: [joiner]
    needs: [left, right]
"#;

#[test]
fn gates_on_two_branches_are_carried_together_to_the_next_event() {
    let act = Act::with_workflow(|work| jobs_layout(work, BRANCHES, "(jobs layout, 4 phases)"));
    act.gh.permission("alice", "write");
    let runs = act.dir.path().join("artifacts");

    // 1. Both branches run in jobs of their own and each opens its gate; join waits for both.
    let opened = act.event("opened", r#""action": "opened", "sender": {"login": "pr-author"},"#);
    let store = runs.join("1");
    let first = act.act_storing("pull_request", &opened, Some(&store));
    first.run.code(0);
    let jobs = results(&first);
    for job in ["start", "plan", "left", "right"] {
        assert!(jobs.contains(&(job.into(), "success".into())), "{job}: {jobs:?}\n{}", first.run.stdout);
    }
    assert!(!jobs.iter().any(|(j, _)| j == "join"), "{jobs:?}");
    assert_eq!((gate_comments_of(&act, "left"), gate_comments_of(&act, "right")), (1, 1));
    let run_id = state_in(&store, "orchestrator-start-1")["run_id"].clone();
    // (act runs the jobs of one level of `needs:` together: left and right start together.)
    for (phase, other) in [("left", "right"), ("right", "left")] {
        let part = state_in(&store, &format!("orchestrator-{phase}-1"));
        assert_eq!(part["phases"][phase]["status"], "awaiting_approval");
        assert_eq!(part["phases"][other]["status"], "pending", "{phase}'s job saw {other} run");
    }

    // 2. Approved: the next workflow run knows both gates, whichever comment came last; each
    //    branch takes its decision without running again, and join completes the run.
    act.gh.label("alice", "User", "orchestrator:approved");
    let store = runs.join("2");
    let second = act.act_storing("pull_request_target", &act.approval_by("alice"), Some(&store));
    second.run.code(0);
    let jobs = results(&second);
    for job in ["start", "plan", "left", "right", "join"] {
        assert!(jobs.contains(&(job.into(), "success".into())), "{job}: {jobs:?}\n{}", second.run.stdout);
    }
    let prepared = state_in(&store, "orchestrator-start-1");
    assert_eq!(prepared["run_id"], run_id);
    for phase in ["left", "right"] {
        assert_eq!(prepared["phases"][phase]["status"], "awaiting_approval", "{phase}: {:#}", prepared["phases"]);
    }
    let done = state_in(&store, "orchestrator-join-1");
    assert_eq!(done["run_id"], run_id);
    assert_eq!(done["phases"]["join"]["status"], "succeeded", "{:#}", done["phases"]);
    for phase in ["left", "right"] {
        assert_eq!(done["phases"][phase]["status"], "approved", "{phase}");
        assert_eq!(done["phases"][phase]["runs"], 1, "{phase} ran once");
    }
    assert_eq!((gate_comments_of(&act, "left"), gate_comments_of(&act, "right")), (1, 1));
}
