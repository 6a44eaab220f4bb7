//! A third security review, against the GitHub economy (one timeline, conditional requests and
//! a cache file sealed with the token) and the app refactor (the `Invocation`, `run start
//! --or-resume`, `run phase`). Each test performs one attack through the real binary, against the
//! fake GitHub where it needs one, and asserts what the security model promises; each failed on
//! the code it was written against (c8160c7) unless it says it held.

use crate::github_gate::{PLANNER, setup_with};
use crate::harness::{Project, config};

const APPROVE: &str = "orchestrator:approved";
const REJECT: &str = "orchestrator:rejected";

/// Finding: a list is read page by page, each page conditionally; a 304 answers with the page's
/// remembered body *and its remembered `Link`*. GitHub's ETag is a digest of the body, so a last
/// page that was exactly full (100 items) is still "not modified" when a 101st item starts the
/// next page — and the remembered answer says there is no next page. Anyone who can comment can
/// bring the timeline to a multiple of 100 items: from then on nothing said on the pull request
/// (an approval, a reject, a removed label) is seen, until an item on the full page changes.
#[test]
fn an_item_after_a_full_page_of_the_timeline_is_seen() {
    for verdict in [APPROVE, REJECT] {
        let pr = setup_with(PLANNER, "");
        pr.run(&["run", "start"]).code(4);
        // The gate comment is the timeline's first item: 99 more make a full page.
        for i in 0..99 {
            pr.gh.comment("pr-author", &format!("note {i}"));
        }
        let items = pr.gh.with(|g| g.comments.len() + g.events.len() + g.reviews.len());
        assert_eq!(items, 100);
        // A check reads (and remembers) the full page.
        pr.run(&["run", "resume"]).code(4);
        pr.gh.label("alice", "User", verdict);
        let run = pr.run(&["run", "resume"]);
        if verdict == APPROVE {
            run.code(0);
            assert_eq!(pr.p.read("build.log"), "built\n", "alice's approval was not seen");
        } else {
            run.code(5);
            assert_eq!(pr.p.state()["phases"]["plan"]["status"], "rejected", "alice's reject was not seen");
        }
    }
}

/// Finding: "a refused input writes nothing: every check runs before the lock file, state or
/// any output is created". A command that goes on with a run (`run resume`, `next`, `phase`,
/// `retry`, and `run start --or-resume --phase P` for a P that needs another phase) with no run
/// to go on with took the lock — creating the lock file and the state's folder — before it
/// found there was none, and refused after.
#[test]
fn a_command_refused_for_want_of_a_run_writes_nothing() {
    let phases = "  - name: plan\n    agents: [a]\n  - name: build\n    agents: [a]\n    needs: [plan]\n";
    for state_file in ["", "  state_file: run/state.json\n"] {
        let p = Project::with_config(&config(state_file, &[("a", "echo a >> a.log")], phases));
        let before = p.tree();
        for args in [
            &["run", "resume"][..],
            &["run", "next"],
            &["run", "phase", "plan"],
            &["run", "phase", "build"],
            &["run", "retry", "--phase", "plan"],
            &["run", "start", "--or-resume", "--phase", "build"],
        ] {
            let run = p.run(args);
            assert_eq!(run.code, 2, "{args:?}: {run:?}");
            assert_eq!(p.tree(), before, "{args:?} wrote something before refusing: {run:?}");
        }
    }
}

/// The same in a pull request whose gate comment carries no run: nothing to restore, nothing
/// written.
#[test]
fn a_command_refused_in_a_pull_request_without_a_carried_run_writes_nothing() {
    let pr = setup_with(PLANNER, "");
    let before = pr.p.tree();
    for args in
        [&["run", "resume"][..], &["run", "phase", "build"], &["run", "start", "--or-resume", "--phase", "build"]]
    {
        let run = pr.run(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert_eq!(pr.p.tree(), before, "{args:?} wrote something before refusing: {run:?}");
    }
    assert!(pr.gh.gate_comments().is_empty());
}
