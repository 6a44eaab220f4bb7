//! What a gate check costs on GitHub: a `run resume` that finds the gate still waiting asks
//! three things (the pull request, its timeline, the round's marks on the gate comment), and
//! when nothing changed GitHub answers each with a 304 (conditional requests cost no rate
//! limit). The answers are remembered in a file sealed with the token, which nothing else can
//! forge.

use crate::fake_github::TOKEN;
use crate::github_gate::{PLANNER, Pr, setup_with};

const CACHE: &str = ".claude/orchestrator_state.json.github-cache";

/// The requests `f` makes, and how many of them were answered 304.
fn requests_of(pr: &Pr, f: impl FnOnce()) -> (Vec<String>, usize) {
    let (before, not_modified) = pr.gh.with(|g| (g.requests.len(), g.not_modified));
    f();
    pr.gh.with(|g| {
        let made = g.requests[before..].iter().map(|(m, p)| format!("{m} {p}")).collect();
        (made, g.not_modified - not_modified)
    })
}

fn comment_id(pr: &Pr) -> u64 {
    pr.gh.with(|g| {
        g.comments.iter().find(|c| c["body"].as_str().unwrap().contains("<!-- orchestrator:gate ")).unwrap()["id"]
            .as_u64()
            .unwrap()
    })
}

#[test]
fn a_check_that_finds_the_gate_waiting_makes_three_requests_answered_304_when_nothing_changed() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    let id = comment_id(&pr);
    let three = [
        "GET /repos/octo/app/pulls/7".to_owned(),
        "GET /repos/octo/app/issues/7/timeline".to_owned(),
        format!("GET /repos/octo/app/issues/comments/{id}/reactions"),
    ];
    // The first check after the gate opened: the comment and its 🚀 are new to the cache.
    let (made, _) = requests_of(&pr, || {
        pr.run(&["run", "resume"]).code(4);
    });
    assert_eq!(made, three, "the first check");
    // Nothing changed since: three conditional requests, each answered 304.
    for check in 2..=3 {
        let (made, not_modified) = requests_of(&pr, || {
            pr.run(&["run", "resume"]).code(4).stdout_has("awaiting approval");
        });
        assert_eq!(made, three, "check {check}");
        assert_eq!(not_modified, 3, "check {check}: every answer should be a 304");
    }
    assert_eq!(pr.gh.gate_comments().len(), 1);
    let cache = std::fs::read_to_string(pr.p.path(CACHE)).expect("the cache file beside the state");
    assert!(!cache.contains(TOKEN), "the token is in the cache file");
}

#[test]
fn an_answer_costs_a_permission_lookup_and_writes_the_comment_once() {
    let pr = setup_with(PLANNER, "  min_approvals: 2\n");
    pr.run(&["run", "start"]).code(4);
    pr.run(&["run", "resume"]).code(4);
    // A reader's label: the check weighs it (her permission) and says so in the comment, once.
    pr.gh.label("mallory", "User", "orchestrator:approved");
    let (made, _) = requests_of(&pr, || {
        pr.run(&["run", "resume"]).code(4);
    });
    assert!(made.contains(&"GET /repos/octo/app/collaborators/mallory/permission".to_owned()), "{made:#?}");
    assert_eq!(made.iter().filter(|r| r.starts_with("PATCH ")).count(), 1, "{made:#?}");
    assert!(pr.comment().contains("@mallory has `read` access"), "{}", pr.comment());
    // The next check re-derives who counts (a permission may have changed), and writes nothing.
    let (made, not_modified) = requests_of(&pr, || {
        pr.run(&["run", "resume"]).code(4);
    });
    assert_eq!(made.len(), 4, "{made:#?}");
    assert!(made.iter().all(|r| r.starts_with("GET ")), "{made:#?}");
    // The timeline changed with the comment's last edit; the rest did not.
    assert_eq!(not_modified, 3);
    // A writer's approval: one of two, so the label is freed for the next reviewer.
    pr.gh.label("alice", "User", "orchestrator:approved");
    let (made, _) = requests_of(&pr, || {
        pr.run(&["run", "resume"]).code(4);
    });
    assert!(made.contains(&"DELETE /repos/octo/app/issues/7/labels/orchestrator%3Aapproved".to_owned()), "{made:#?}");
    assert!(pr.comment().contains("1 of 2 so far: @alice"), "{}", pr.comment());
    assert!(pr.gh.with(|g| g.labels.is_empty()));
    // Approved by a second writer: the run goes on.
    pr.gh.label("carol", "User", "orchestrator:approved");
    pr.run(&["run", "resume"]).code(0);
    assert_eq!(pr.p.state()["phases"]["plan"]["gate"]["decision"]["by"], "alice, carol");
}

/// What an agent could do with the workspace's cache file: change what GitHub "answered" (an
/// approval by a writer) behind a real ETag, so that GitHub's 304 would vouch for it.
#[test]
fn a_cache_file_changed_by_someone_else_is_not_used() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    pr.run(&["run", "resume"]).code(4);
    let sealed_before = std::fs::read_to_string(pr.p.path(CACHE)).unwrap();
    pr.run(&["run", "resume"]).code(4);
    let sealed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pr.p.path(CACHE)).unwrap()).unwrap();
    let mut data: serde_json::Value = serde_json::from_str(sealed["data"].as_str().unwrap()).unwrap();
    // alice (write access) adds the approve label, a second after the round opened.
    let timeline = data["entries"]
        .as_object_mut()
        .unwrap()
        .iter_mut()
        .find(|(url, _)| url.contains("/issues/7/timeline"))
        .map(|(_, e)| e)
        .expect("the timeline is cached");
    let opened = pr.gh.with(|g| g.clock) + 1;
    let at = chrono::DateTime::from_timestamp(opened, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    timeline["body"].as_array_mut().unwrap().push(serde_json::json!({
        "event": "labeled", "id": 999_999, "label": {"name": "orchestrator:approved"},
        "actor": {"login": "alice", "type": "User"}, "created_at": at}));
    data["user_known"] = serde_json::json!(true);
    data["user"] = serde_json::json!("alice");
    let forged_data = data.to_string();
    let old_mac = serde_json::from_str::<serde_json::Value>(&sealed_before).unwrap()["mac"].clone();
    for mac in [sealed["mac"].clone(), old_mac, serde_json::json!("0".repeat(64))] {
        let forged = serde_json::json!({"version": 1, "mac": mac, "data": forged_data});
        pr.p.write(CACHE, &forged.to_string());
        let (made, not_modified) = requests_of(&pr, || {
            pr.run(&["run", "resume"]).code(4);
        });
        assert!(!pr.p.exists("build.log"), "a forged cache approved the phase");
        assert_eq!(not_modified, 0, "a forged cache's ETags were sent: {made:#?}");
        assert!(made.contains(&"GET /user".to_owned()), "the forged identity was believed: {made:#?}");
    }
    assert_eq!(pr.p.state()["phases"]["plan"]["status"], "awaiting_approval");
    // The real label still approves.
    pr.gh.label("alice", "User", "orchestrator:approved");
    pr.run(&["run", "resume"]).code(0);
}

#[test]
fn a_broken_cache_file_costs_requests_not_the_run() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    for junk in ["", "not json", "{\"version\":1}", "[1,2,3]", "{\"version\":1,\"mac\":\"é\",\"data\":\"x\"}"] {
        pr.p.write(CACHE, junk);
        pr.run(&["run", "resume"]).code(4);
    }
    // A folder where the file should be: nothing is cached, nothing fails.
    std::fs::remove_file(pr.p.path(CACHE)).unwrap();
    std::fs::create_dir(pr.p.path(CACHE)).unwrap();
    pr.run(&["run", "resume"]).code(4);
    pr.gh.label("alice", "User", "orchestrator:approved");
    pr.run(&["run", "resume"]).code(0);
}
