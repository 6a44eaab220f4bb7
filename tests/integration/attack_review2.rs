//! A second security review, against the round marks (the run's own reactions on its gate
//! comment). Each test performs one attack through the real binary against the fake GitHub and
//! asserts what the security model promises; each failed on the code it was written against
//! (84d53a2) and names the finding it demonstrates.

use crate::github_gate::{PLANNER, setup_with};

const APPROVE: &str = "orchestrator:approved";

/// Finding: the run's own identity is `github-actions[bot]` or whatever `GET /user` answers.
/// A GitHub App's installation token (or a personal token whose `GET /user` fails once) posts
/// as someone else, and `GET /user` refuses it: the run never recognizes its own gate comment
/// or its own 🚀, so every check posts a new request and no approval ever counts.
#[test]
fn a_run_whose_identity_get_user_cannot_tell_still_finds_its_own_gate_comment() {
    let pr = setup_with(PLANNER, "");
    // An App token: comments and reactions are `orchestrator-app[bot]`'s; `GET /user` refuses it.
    pr.gh.with(|g| {
        g.identity = Some("orchestrator-app[bot]".into());
        g.refuse_user = true;
    });
    // Without being told its login, the run says what to set instead of posting again.
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(70).stderr_has("ORCHESTRATOR_BOT_LOGIN=orchestrator-app[bot]");
    assert_eq!(pr.gh.gate_comments().len(), 1, "a new gate comment on every check");
    // Told (the action's `bot-login` input), it finds its comment and marks.
    let told = crate::harness::Run::from_output(
        pr.command(&["run", "resume"]).env("ORCHESTRATOR_BOT_LOGIN", "orchestrator-app[bot]").output().unwrap(),
    );
    told.code(0);
    assert_eq!(pr.gh.gate_comments().len(), 1);
    assert!(pr.p.exists("build.log"), "a writer's approval never counts");
}

/// Finding: a state is "progress, never a decision", and only an approval it claims is
/// confirmed; what it claims of the phases after a gate is not checked against the gate. The
/// author edits the state the gate comment carries (anyone with write access can; its digest
/// is only a checksum) to say that `build`, the phase after the open `plan` gate, succeeded:
/// on a fresh runner `deploy` runs while `plan` still waits for its approval.
#[test]
fn a_carried_state_that_says_the_phase_after_an_open_gate_succeeded_runs_the_one_after_it() {
    let pr = setup_with(PLANNER, "");
    let cfg = pr.p.read(".claude/config.yaml").replacen(
        "phases:\n",
        "  deployer:\n    entrypoints:\n      default: \"echo deployed >> deploy.log\"\nphases:\n",
        1,
    ) + "  - name: deploy\n    agents: [deployer]\n";
    // The consensus block comes last in the setup's config: put the phase before it.
    let cfg = {
        let (head, consensus) = cfg.split_once("consensus:\n").unwrap();
        let (consensus, deploy) = consensus.split_once("  - name: deploy\n").unwrap();
        format!("{head}  - name: deploy\n{deploy}consensus:\n{consensus}")
    };
    pr.p.write(".claude/config.yaml", &cfg);
    pr.gh.base_file(".claude/config.yaml", &cfg);
    pr.run(&["run", "start"]).code(4);
    assert_eq!(pr.p.state()["phases"]["plan"]["status"], "awaiting_approval");
    assert!(!pr.p.exists("deploy.log") && !pr.p.exists("build.log"));
    let mut state = pr.p.state();
    let mut build = state["phases"]["plan"].clone();
    build["status"] = "succeeded".into();
    build["gate"] = serde_json::Value::Null;
    state["phases"]["build"] = build;
    let block = crate::github_gate::state_block(&state);
    // A fresh runner: the run is restored from the gate comment.
    pr.carry_instead(&block);
    let _ = pr.run(&["run", "resume"]);
    assert_eq!(pr.p.state()["phases"]["plan"]["status"], "awaiting_approval");
    assert!(!pr.p.exists("deploy.log"), "deploy ran while plan's gate was still open");
}
