//! Local approval gates: REQUEST.md, approve, reject, retry after a rejection.

use crate::harness::{Project, config};

fn gated() -> Project {
    let p = Project::with_config(&config(
        "",
        &[
            ("planner", "mkdir -p docs; echo plan > docs/PLAN.md; echo 'ARTIFACT: docs/PLAN.md'"),
            ("builder", "echo built >> build.log"),
        ],
        "  - name: planning\n    agents: [planner]\n    requires_consensus: true\n    artifacts: [docs/PLAN.md]\n  - name: build\n    agents: [builder]\n",
    ));
    p.write(
        ".claude/config.yaml",
        &(p.read(".claude/config.yaml") + "consensus:\n  checklist: [\"Plan is sound\", \"Scope is right\"]\n"),
    );
    p
}

#[test]
fn gate_stops_the_run_with_its_own_exit_code_and_writes_the_request() {
    let p = gated();
    p.run(&["run", "start"])
        .code(4)
        .stdout_has("phase `planning` awaits approval: review .claude/consensus/planning/REQUEST.md")
        .stdout_has("orchestrator run approve --phase planning");
    assert!(!p.exists("build.log"), "a phase after the gate ran before approval");
    let request = p.read(".claude/consensus/planning/REQUEST.md");
    let run_id = p.state()["run_id"].as_str().unwrap().to_owned();
    for needle in [
        "# Consensus Request: planning",
        &format!("**Run ID:** {run_id}"),
        "| Phase | planning |",
        "| Agents | 1 |",
        "| Artifacts Produced | 1 |",
        "| Validation Status | PASS |",
        "- **planner**: ✅ Success (",
        "  - Artifacts: 1 file(s)",
        "- **Status:** PASS",
        "- **Found:** 1 file(s)",
        "- **Missing:** 0 pattern(s)",
        "### planner\n\n- Added `docs/PLAN.md` (+1 line)",
        "📄 Full validation report: `reports/checkpoint_validation_planning.md`",
        "📊 Runtime metrics: `.claude/metrics/run_",
        "🧹 Cleanliness Score: **100.0/100** (Grade: A)",
        "## Reviewer Checklist",
        "- [ ] Plan is sound\n- [ ] Scope is right\n",
        "orchestrator run approve --phase planning",
        "orchestrator run reject --phase planning --reason",
    ] {
        assert!(request.contains(needle), "REQUEST.md lacks {needle:?}:\n{request}");
    }
    p.run(&["run", "resume"]).code(4);
    assert!(!p.exists("build.log"));
}

#[test]
fn approve_continues_the_run_to_the_end() {
    let p = gated();
    p.run(&["run", "start"]).code(4);
    p.run(&["run", "approve", "--by", "alice"])
        .code(0)
        .stdout_has("phase `planning` approved by alice")
        .stdout_has("completed");
    assert_eq!(p.read("build.log"), "built\n");
    let decision = &p.state()["phases"]["planning"]["gate"]["decision"];
    assert_eq!(decision["approved"], true);
    assert_eq!(decision["by"], "alice");
    p.run(&["run", "approve"]).code(2).stderr_has("no phase of run").stderr_has("is awaiting approval");
}

#[test]
fn reject_stops_the_run_and_retry_runs_the_phase_again() {
    let p = gated();
    p.run(&["run", "start"]).code(4);
    p.run(&["run", "reject", "--reason", "too vague", "--by", "bob"])
        .code(0)
        .stdout_has("phase `planning` rejected by bob: too vague")
        .stdout_has("orchestrator run retry --phase planning");
    p.run(&["run", "resume"]).code(5);
    p.run(&["run", "status"]).code(0).stdout_has("rejected").stdout_has("by bob: too vague");
    assert!(!p.exists("build.log"));
    p.run(&["run", "retry", "--phase", "planning"]).code(4);
    assert_eq!(p.state()["phases"]["planning"]["runs"], 2);
    p.run(&["run", "approve", "--phase", "planning"]).code(0);
    assert_eq!(p.read("build.log"), "built\n");
}

#[test]
fn reject_needs_a_reason_and_a_waiting_phase() {
    let p = gated();
    p.run(&["run", "start"]).code(4);
    p.run(&["run", "reject", "--reason", " "]).code(2).stderr_has("must say why");
    p.run(&["run", "reject", "--reason", "no", "--phase", "build"])
        .code(2)
        .stderr_has("phase `build` is not awaiting approval (it is pending)");
    p.run(&["run", "approve", "--phase", "plannig"]).code(2).stderr_has("did you mean `planning`?");
}

#[test]
fn status_json_carries_the_whole_state_and_the_derived_status() {
    let p = gated();
    p.run(&["run", "start"]).code(4);
    let out = p.run(&["run", "status", "--json"]);
    out.code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["status"], "awaiting_approval");
    assert_eq!(v["phases"]["planning"]["status"], "awaiting_approval");
    assert_eq!(v["phases"]["planning"]["agents"]["planner"]["artifacts"][0], "docs/PLAN.md");
    assert_eq!(v["version"], 1);
}

#[test]
fn rollback_advisory_lists_what_the_phase_changed_and_runs_no_git() {
    let p = gated();
    p.write("existing.txt", "old\n");
    p.run(&["run", "start"]).code(4);
    let tree_before = p.tree();
    p.run(&["run", "rollback", "--phase", "planning"]).code(0).stdout_has("wrote ROLLBACK_planning.md");
    let advisory = p.read("ROLLBACK_planning.md");
    assert!(advisory.contains("# Rollback Advisory: planning"), "{advisory}");
    assert!(advisory.contains("rm -- 'docs/PLAN.md'"), "{advisory}");
    assert!(advisory.contains("No automatic git operations were performed"), "{advisory}");
    assert!(!advisory.contains("existing.txt"), "{advisory}");
    let mut after = p.tree();
    after.remove("ROLLBACK_planning.md");
    assert_eq!(after, tree_before, "rollback changed files besides its advisory");
    p.run(&["run", "rollback", "--phase", "build"]).code(2).stderr_has("has not run");
}
