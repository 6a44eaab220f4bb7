//! A third security review, against the GitHub economy (one timeline, conditional requests and
//! a cache file sealed with the token) and the app refactor (the `Invocation`, `run start
//! --or-resume`, `run phase`). Each test performs one attack through the real binary, against the
//! fake GitHub where it needs one, and asserts what the security model promises; each failed on
//! the code it was written against (c8160c7) unless it says it held.

use crate::github_gate::{PLANNER, setup_with};

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
