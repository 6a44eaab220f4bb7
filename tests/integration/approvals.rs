//! Approvals the way reviewers give them on GitHub: labels, `/approve` comment commands and
//! pull-request reviews, through every round of a gate (reject, retry, approve), against the
//! stateful fake GitHub and the real binary.

use crate::github_gate::{PLANNER, setup_with};

const APPROVE: &str = "orchestrator:approved";
const REJECT: &str = "orchestrator:rejected";

#[test]
fn a_retried_phase_can_be_approved_after_a_reject() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", REJECT);
    pr.run(&["run", "resume"]).code(5);
    // The same artifacts come out again; the old reject belongs to the old round.
    pr.run(&["run", "retry", "--phase", "plan"]).code(4);
    pr.gh.label("bob", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
    assert!(pr.p.exists("build.log"));
    let body = pr.comment();
    assert!(body.contains("## Decision (round 2)"), "{body}");
    assert!(body.contains("Round 1: rejected by @alice"), "the history keeps the earlier round:\n{body}");
    assert!(body.contains("✅ **Approved** by @bob"), "{body}");
}

#[test]
fn a_readers_approve_command_is_refused_and_a_writers_applies() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    let body = pr.comment();
    assert!(body.contains("comment `/approve`"), "the comment says how:\n{body}");
    let reader = pr.gh.comment("mallory", "I like it\n/approve");
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.gh.reactions_on(reader), ["eyes", "confused"]);
    assert!(
        pr.comment().contains("The command in @mallory's comment is refused: @mallory has `read` access"),
        "{}",
        pr.comment()
    );
    // Read once: the next check does not react again.
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.gh.reactions_on(reader).len(), 2);
    let writer = pr.gh.comment("alice", "/approve plan");
    pr.run(&["run", "resume"]).code(0);
    assert_eq!(pr.gh.reactions_on(writer), ["eyes", "+1"]);
    assert!(pr.p.exists("build.log"));
    assert_eq!(pr.p.state()["phases"]["plan"]["gate"]["decision"]["by"], "alice");
}

#[test]
fn commands_for_another_phase_edited_commands_and_quoted_ones_do_not_count() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    pr.gh.comment("alice", "/approve build");
    pr.gh.comment("bob", "you could say /approve here");
    let edited = pr.gh.comment("carol", "/approve");
    pr.gh.with(|g| {
        let c = g.comments.iter_mut().find(|c| c["id"] == edited).unwrap();
        c["updated_at"] = "2099-01-01T00:00:00Z".into();
    });
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.gh.reactions_on(edited), ["eyes", "confused"]);
    assert!(pr.comment().contains("edited after it was posted"), "{}", pr.comment());
}

#[test]
fn reviews_decide_on_the_current_head_only() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    pr.gh.review("alice", "APPROVED", "0000000old", "");
    pr.gh.review("bob", "COMMENTED", "1111111aaaaaaa", "hmm");
    pr.run(&["run", "resume"]).code(4);
    assert!(pr.comment().contains("The review from @alice is on an older commit"), "{}", pr.comment());
    pr.gh.review("carol", "CHANGES_REQUESTED", "1111111aaaaaaa", "The plan misses the migration.");
    pr.run(&["run", "resume"]).code(5);
    let decision = &pr.p.state()["phases"]["plan"]["gate"]["decision"];
    assert_eq!(decision["by"], "carol");
    assert_eq!(decision["reason"], "The plan misses the migration.");
    assert!(pr.comment().contains("Rejected** by @carol"), "{}", pr.comment());
}

#[test]
fn a_retry_comment_runs_a_rejected_phase_again_and_an_approve_review_completes_it() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    pr.gh.review("carol", "CHANGES_REQUESTED", "1111111aaaaaaa", "Again, please.");
    pr.run(&["run", "resume"]).code(5);
    // Someone without write access cannot make it run again.
    let reader = pr.gh.comment("mallory", "/retry");
    pr.run(&["run", "resume"]).code(5);
    assert_eq!(pr.gh.reactions_on(reader), ["eyes", "confused"]);
    let retry = pr.gh.comment("alice", "/retry");
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.gh.reactions_on(retry), ["eyes", "+1"]);
    assert_eq!(pr.p.state()["phases"]["plan"]["runs"], 2);
    pr.gh.review("bob", "APPROVED", "1111111aaaaaaa", "");
    pr.run(&["run", "resume"]).code(0);
    assert!(pr.p.exists("build.log"));
    let own: Vec<String> = pr.gh.gate_comments();
    assert_eq!(own.len(), 1, "one comment per gate, through every round");
}

#[test]
fn decide_by_limits_the_ways_to_decide() {
    let pr = setup_with(PLANNER, "  decide_by: [labels]\n");
    pr.run(&["run", "start"]).code(4);
    assert!(!pr.comment().contains("/approve"), "{}", pr.comment());
    pr.gh.comment("alice", "/approve");
    pr.gh.review("bob", "APPROVED", "1111111aaaaaaa", "");
    pr.run(&["run", "resume"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
}

#[test]
fn min_approvals_counts_people_across_channels() {
    let pr = setup_with(PLANNER, "  min_approvals: 2\n");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.gh.comment("alice", "/approve");
    pr.run(&["run", "resume"]).code(4);
    assert!(pr.comment().contains("1 of 2 so far: @alice"), "{}", pr.comment());
    pr.gh.review("bob", "APPROVED", "1111111aaaaaaa", "");
    pr.run(&["run", "resume"]).code(0);
}

#[test]
fn a_push_that_changes_the_outputs_dismisses_the_wait_and_reruns_the_phase() {
    let planner = "mkdir -p docs; cat input.txt > docs/PLAN.md; echo 'ARTIFACT: docs/PLAN.md'";
    let pr = setup_with(planner, "  rerun_on_push: true\n  commit_status: true\n");
    pr.p.write("input.txt", "first\n");
    pr.run(&["run", "start"]).code(4);
    pr.gh.comment("mallory", "/approve"); // does not count, but is read
    // The author pushes: the head moves and the phase's output changes.
    pr.gh.with(|g| g.head_sha = "2222222bbbbbbb".into());
    pr.p.write("docs/PLAN.md", "pushed by the author\n");
    pr.p.write("input.txt", "second\n");
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.p.read("docs/PLAN.md"), "second\n", "the phase ran again for the new head");
    assert_eq!(pr.p.state()["phases"]["plan"]["runs"], 2);
    let statuses = pr.gh.with(|g| g.statuses.clone());
    assert!(
        statuses.iter().any(|s| s["sha"] == "2222222bbbbbbb" && s["state"] == "pending"),
        "the new head's status goes back to pending: {statuses:?}"
    );
    let body = pr.comment();
    assert_eq!(body.matches("Round 1:").count(), 1, "round 1 once in the history: {body}");
    assert!(body.contains("dismissed by a push"), "{body}");
    assert!(body.contains("## Decision (round 2)"), "{body}");
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
}

#[test]
fn a_push_by_someone_else_after_an_approval_dismisses_it() {
    let pr = setup_with(PLANNER, "");
    // `build` is gated too: the run is still going when the author pushes.
    pr.gate_build_too();
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.p.state()["phases"]["build"]["status"], "awaiting_approval");
    // The run's own push (its outputs) changes nothing.
    pr.gh.with(|g| {
        g.head_sha = "3333333ccccccc".into();
        g.compare = (vec!["orchestrator@users.noreply.github.com".into()], vec!["docs/PLAN.md".into()]);
    });
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.p.state()["phases"]["plan"]["status"], "approved");
    // The author pushes a new plan (the checkout has it): the approval does not cover it.
    pr.gh.with(|g| {
        g.head_sha = "4444444ddddddd".into();
        g.compare = (vec!["author@example.com".into()], vec!["docs/PLAN.md".into()]);
    });
    pr.p.write("docs/PLAN.md", "a plan nobody approved\n");
    pr.run(&["run", "resume"]).code(4);
    let state = pr.p.state();
    assert_eq!(state["phases"]["plan"]["status"], "awaiting_approval", "{state}");
    assert_eq!(state["phases"]["build"]["status"], "pending", "build ran on a plan nobody approved");
    assert!(pr.comment_of("plan").contains("Waiting for approval"), "{}", pr.comment_of("plan"));
    // A new approval continues.
    pr.gh.label("bob", "User", APPROVE);
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.p.state()["phases"]["plan"]["status"], "approved");
    assert_eq!(pr.p.state()["phases"]["build"]["status"], "awaiting_approval");
}
