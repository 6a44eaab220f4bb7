//! A third security review, against the GitHub economy (one timeline, conditional requests and
//! a cache file sealed with the token) and the app refactor (the `Invocation`, `run start
//! --or-resume`, `run phase`). Each test performs one attack through the real binary, against the
//! fake GitHub where it needs one, and asserts what the security model promises; each failed on
//! the code it was written against (c8160c7) unless it says it held.

use crate::fake_github::TOKEN;
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

/// Held: a local state that claims the gate was approved (an agent can write the state file)
/// does not let `run phase` or `run start --or-resume --phase` run the phase after it: the
/// approval is confirmed with GitHub first, and the phase waits at its gate again.
#[test]
fn a_state_claiming_an_approval_github_does_not_have_runs_nothing_after_the_gate() {
    for args in [&["run", "phase", "build"][..], &["run", "start", "--or-resume", "--phase", "build"], &["run", "next"]]
    {
        let pr = setup_with(PLANNER, "");
        pr.run(&["run", "start"]).code(4);
        let mut state = pr.p.state();
        state["phases"]["plan"]["status"] = "approved".into();
        state["phases"]["plan"]["gate"]["decision"] = serde_json::json!({
            "approved": true, "by": "alice", "at": "2026-01-01T00:00:00Z", "commit": "1111111aaaaaaa"});
        pr.p.write(".claude/orchestrator_state.json", &state.to_string());
        let run = pr.run(args);
        assert!(!pr.p.exists("build.log"), "{args:?} ran build past an unconfirmed gate: {run:?}");
        assert_eq!(pr.p.state()["phases"]["plan"]["status"], "awaiting_approval", "{args:?}");
        assert_eq!(run.code, 4, "{args:?}: {run:?}");
        assert_eq!(pr.gh.gate_comments().len(), 1, "{args:?}");
    }
}

/// Held: the labels are replayed from the timeline, in order. A writer's approval that she took
/// back, put on again by someone without write access, approves nothing; a reject a writer put
/// on and took back rejects nothing.
#[test]
fn a_label_put_back_by_someone_who_does_not_count_approves_nothing() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    unlabel(&pr, "alice", APPROVE);
    pr.gh.label("trish", "User", APPROVE);
    pr.gh.label("bob", "User", REJECT);
    unlabel(&pr, "bob", REJECT);
    pr.run(&["run", "resume"]).code(4);
    assert!(!pr.p.exists("build.log"));
    assert!(pr.comment().contains("@trish has `triage` access"), "{}", pr.comment());
    // The writer's label, on again: approved.
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
    assert_eq!(pr.p.state()["phases"]["plan"]["gate"]["decision"]["by"], "alice");
}

/// `login` removes `label` (an `unlabeled` event with them as its actor).
fn unlabel(pr: &crate::github_gate::Pr, login: &str, label: &str) {
    pr.gh.with(|g| {
        g.labels.retain(|l| l != label);
        g.clock += 1;
        let at = chrono::DateTime::from_timestamp(g.clock.max(chrono::Utc::now().timestamp()), 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        g.clock = g.clock.max(chrono::Utc::now().timestamp());
        let id = g.events.len() as u64 + g.comments.len() as u64 + g.reviews.len() as u64 + 10_000_000;
        g.events.push(serde_json::json!({"event": "unlabeled", "id": id, "label": {"name": label},
            "actor": {"login": login, "type": "User"}, "created_at": at}));
    });
}

/// Finding: a label event whose actor is gone (a deleted account: `null`, no login, or GitHub's
/// `ghost` placeholder) was weighed like a person's: the permission of the empty login was asked
/// (`GET …/collaborators//permission`, a path GitHub may route elsewhere) and believed. Here the
/// lookup answers `admin` for it, to show that the gate does not depend on that answer; bots and
/// apps approve nothing either.
#[test]
fn a_label_from_a_missing_actor_a_ghost_or_a_bot_approves_nothing() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    for actor in [
        serde_json::Value::Null,
        serde_json::json!({}),
        serde_json::json!({"login": "ghost", "type": "User"}),
        serde_json::json!({"login": "", "type": "User"}),
        serde_json::json!({"login": "renovate", "type": "Bot"}),
        serde_json::json!({"login": "GitHub-Actions[bot]", "type": "User"}),
    ] {
        pr.gh.with(|g| {
            g.clock = g.clock.max(chrono::Utc::now().timestamp()) + 1;
            let at = chrono::DateTime::from_timestamp(g.clock, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let id = 20_000_000 + g.events.len() as u64;
            g.labels.push(APPROVE.to_owned());
            g.events.push(serde_json::json!({"event": "labeled", "id": id, "label": {"name": APPROVE},
                "actor": actor, "created_at": at}));
        });
        // Even with write access given to whatever login the lookup asks for.
        pr.gh.permission("", "admin");
        pr.gh.permission("ghost", "admin");
        pr.run(&["run", "resume"]).code(4);
        assert!(!pr.p.exists("build.log"), "a label from {actor} approved");
    }
    let lookups = pr.gh.with(|g| g.requests.iter().filter(|(_, p)| p.contains("/collaborators/")).count());
    assert_eq!(lookups, 0, "a deleted account's permission was looked up");
}

/// A writer's approving review, dismissed before the check, approves nothing. Held where the
/// review's own item says `dismissed`; the timeline also lists the dismissal as an event of its
/// own (`review_dismissed`), and a review it names was counted if its item still said
/// `approved` (fixed as defense in depth: the gate no longer depends on which GitHub shows).
#[test]
fn a_dismissed_review_approves_nothing() {
    for item_says_dismissed in [true, false] {
        let pr = setup_with(PLANNER, "  decide_by: [reviews]\n");
        pr.run(&["run", "start"]).code(4);
        let id = pr.gh.review("alice", "APPROVED", "1111111aaaaaaa", "ok");
        pr.gh.with(|g| {
            if item_says_dismissed {
                for r in g.reviews.iter_mut().filter(|r| r["id"] == id) {
                    r["state"] = "DISMISSED".into();
                }
            }
            g.clock += 1;
            let at = chrono::DateTime::from_timestamp(g.clock, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            g.events.push(serde_json::json!({"event": "review_dismissed", "id": id + 1_000_000,
                "actor": {"login": "bob", "type": "User"}, "created_at": at,
                "dismissed_review": {"state": "approved", "review_id": id, "dismissal_message": "no"}}));
        });
        pr.run(&["run", "resume"]).code(4);
        assert!(!pr.p.exists("build.log"), "a dismissed review approved (its item dismissed: {item_says_dismissed})");
    }
}

/// Finding: on a fresh runner the run state is restored from the gate comment under the lock —
/// and then the command's checks ran. A command refused by them (`run start` without
/// `--or-resume` or `--force` while the carried run has not finished, `run retry` of a phase
/// that has not run, `run phase` of a phase that does not exist) had already written the
/// restored state, its folder and the lock file.
#[test]
fn a_command_refused_on_a_fresh_runner_does_not_restore_the_carried_state() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    let fresh = || {
        for f in [".claude/orchestrator_state.json", ".claude/orchestrator_state.json.journal"] {
            let _ = std::fs::remove_file(pr.p.path(f));
        }
    };
    fresh();
    let before = pr.p.tree();
    for (args, says) in [
        (&["run", "start"][..], "has not finished"),
        (&["run", "retry", "--phase", "build"], "has not run yet"),
        (&["run", "phase", "deploy"], "no phase `deploy`"),
    ] {
        let run = pr.run(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        run.stderr_has(says);
        assert_eq!(pr.p.tree(), before, "{args:?} wrote something before refusing: {run:?}");
    }
    // What it refuses, `run resume` continues.
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
    assert_eq!(pr.p.read("build.log"), "built\n");
}

/// Finding: in a privileged event (`pull_request_target`, `labeled`, …) a fork's pull request
/// is refused unless `consensus.allow_forks` is set — by the base branch, whose policy decides.
/// The check ran on the pull request's own config (the checkout of its head), before the base
/// branch's policy was put in, and was not run again after when the event named the fork: the
/// fork's config saying `allow_forks: true` ran its agents with the base repository's token.
#[test]
fn a_forks_own_config_cannot_allow_forks() {
    for (event_name, payload) in [
        (
            "pull_request_target",
            r#"{"action": "opened", "pull_request": {"number": 7, "head": {"ref": "feature", "repo": {"full_name": "mallory/app"}}}, "sender": {"login": "mallory"}}"#,
        ),
        (
            "pull_request_target",
            r#"{"action": "labeled", "pull_request": {"number": 7, "head": {"ref": "feature", "repo": {"full_name": "Mallory/App"}}}, "sender": {"login": "alice"}}"#,
        ),
        (
            "issue_comment",
            r#"{"action": "created", "issue": {"number": 7, "pull_request": {"url": "x"}}, "comment": {"body": "/approve"}, "sender": {"login": "alice"}}"#,
        ),
    ] {
        let pr = setup_with(PLANNER, "");
        pr.gh.with(|g| g.head_repo = Some("mallory/app".into()));
        std::fs::write(&pr.event, payload).unwrap();
        // The fork's checkout: its config allows forks (the base branch's does not).
        let mine = pr.p.read(".claude/config.yaml").replace("consensus:\n", "consensus:\n  allow_forks: true\n");
        pr.p.write(".claude/config.yaml", &mine);
        let before = pr.p.tree();
        for args in [&["run", "start"][..], &["run", "start", "--or-resume"], &["run", "phase", "plan"]] {
            let run = crate::harness::Run::from_output(
                pr.command(args).env("GITHUB_EVENT_NAME", event_name).output().unwrap(),
            );
            assert!(
                !pr.p.exists("docs/PLAN.md"),
                "{event_name} {args:?}: the fork's agent ran with the base repository's token"
            );
            run.code(3).stderr_has("comes from the fork");
            assert_eq!(before, pr.p.tree(), "{event_name} {args:?}: something was written");
        }
        assert!(pr.gh.gate_comments().is_empty());
    }
}

/// Held: a GET that GitHub answers with a redirect away from the API (another host, or the
/// same host outside the API's path) is followed without the token.
#[test]
fn a_redirect_away_from_the_api_gets_no_token() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    let elsewhere = crate::fake_github::FakeGithub::start("x");
    for (gh, location) in [
        (&elsewhere, format!("{}/moved/timeline", elsewhere.server_url)),
        (&pr.gh, format!("{}/moved/timeline", pr.gh.server_url)),
        (&pr.gh, "/moved/timeline".to_owned()),
    ] {
        pr.gh.with(|g| g.redirect = Some(("/repos/octo/app/issues/7/timeline".into(), location.clone())));
        let run = pr.run(&["run", "resume"]);
        assert_ne!(run.code, 0, "{location}: {run:?}");
        let auth = gh.with(|g| g.download_auth.clone());
        assert!(!auth.is_empty(), "{location}: the redirect was not followed");
        assert!(auth.iter().all(|sent| !sent), "{location}: the token went with the redirect");
        assert!(!run.stderr.contains(TOKEN) && !run.stdout.contains(TOKEN));
        gh.with(|g| g.download_auth.clear());
    }
    pr.gh.with(|g| g.redirect = None);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
}

/// Held: the cache file can be neither forged (its seal is keyed by the token) nor usefully put
/// back: an earlier sealed copy, restored after a reject, sends ETags GitHub no longer matches,
/// so the reject is read. A symlink or a hard link at its place is replaced, not written
/// through.
#[test]
fn an_earlier_cache_file_put_back_does_not_hide_a_reject() {
    const CACHE: &str = ".claude/orchestrator_state.json.github-cache";
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    pr.run(&["run", "resume"]).code(4);
    let earlier = std::fs::read(pr.p.path(CACHE)).unwrap();
    pr.gh.label("bob", "User", REJECT);
    std::fs::write(pr.p.path(CACHE), &earlier).unwrap();
    // What the link points to must not be written through.
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "outside").unwrap();
    std::fs::remove_file(pr.p.path(CACHE)).unwrap();
    std::os::unix::fs::symlink(outside.path(), pr.p.path(CACHE)).unwrap();
    pr.run(&["run", "resume"]).code(5);
    assert_eq!(pr.p.state()["phases"]["plan"]["status"], "rejected");
    assert_eq!(std::fs::read_to_string(outside.path()).unwrap(), "outside", "written through the symlink");
    assert!(!std::fs::symlink_metadata(pr.p.path(CACHE)).unwrap().file_type().is_symlink());
    // The earlier file itself, as a hard link: a later write replaces the name only.
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    pr.run(&["run", "resume"]).code(4);
    let kept = pr.p.path("kept-cache");
    std::fs::hard_link(pr.p.path(CACHE), &kept).unwrap();
    let before = std::fs::read(&kept).unwrap();
    pr.gh.label("bob", "User", REJECT);
    pr.run(&["run", "resume"]).code(5);
    assert_eq!(std::fs::read(&kept).unwrap(), before, "written through a hard link");
}

/// Finding (from 289b1f0, outside the two changes reviewed): a push that changes an approved
/// phase's outputs un-confirms the approval — unless its commits carry the run's own author
/// email, `orchestrator@users.noreply.github.com`, which was how the run told its own pushes
/// (`commit_outputs`) from others'. A commit's author email is whatever its author writes
/// (`git -c user.email=… commit`): the pull request's author pushed a new plan under the run's
/// email after the approval, and the approval still covered it; `build` went on from a plan
/// nobody approved. The run now records the commits it pushes in its gate comments' hidden
/// metadata and counts only those as its own.
#[test]
fn a_push_under_the_runs_email_does_not_keep_an_approval_of_outputs_it_changed() {
    let pr = setup_with(PLANNER, "");
    pr.gate_build_too();
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.p.state()["phases"]["build"]["status"], "awaiting_approval");
    // The author pushes a new plan, authored under the run's email (the checkout has it).
    pr.gh.with(|g| {
        g.head_sha = "4444444ddddddd".into();
        g.compare = (vec!["orchestrator@users.noreply.github.com".into()], vec!["docs/PLAN.md".into()]);
    });
    pr.p.write("docs/PLAN.md", "a plan nobody approved\n");
    pr.run(&["run", "resume"]).code(4);
    let state = pr.p.state();
    assert_eq!(state["phases"]["plan"]["status"], "awaiting_approval", "the approval covers a plan nobody approved");
    assert_eq!(state["phases"]["build"]["status"], "pending");
}

/// The run's own pushes (`commit_outputs`), recorded when each gate opens, still keep the
/// approvals of the phases before them, even when the comparison lists an approved phase's
/// file among the changes.
#[test]
fn the_runs_own_recorded_push_keeps_an_approval() {
    use crate::harness::git;
    let pr = setup_with(PLANNER, "  commit_outputs: true\n");
    pr.gate_build_too();
    let ws = pr.p.root();
    let (_remote, origin) = crate::harness::feature_checkout(ws);
    git(ws, &["add", ".claude/config.yaml"]);
    git(ws, &["commit", "--quiet", "-m", "workflow"]);
    git(ws, &["push", "--quiet", "origin", "feature"]);
    std::fs::write(&pr.event, r#"{"pull_request": {"number": 7, "head": {"ref": "feature"}}}"#).unwrap();
    let builder = pr.p.read(".claude/config.yaml").replace(
        "echo built >> build.log",
        "echo built >> build.log; mkdir -p out; echo bin > out/app; echo 'ARTIFACT: out/app'",
    );
    pr.p.write(".claude/config.yaml", &builder);
    pr.gh.base_file(".claude/config.yaml", &builder);
    pr.run(&["run", "start"]).code(4);
    let head = || git(&origin, &["rev-parse", "feature"]).trim().to_owned();
    let plan_commit = head();
    pr.gh.with(|g| g.head_sha = plan_commit.clone());
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.p.state()["phases"]["build"]["status"], "awaiting_approval");
    let build_commit = head();
    assert_ne!(build_commit, plan_commit, "build's outputs were pushed");
    assert!(pr.comment_of("build").contains(&build_commit), "{}", pr.comment_of("build"));
    // GitHub's head is the run's push; the comparison names it, with the plan among the files.
    pr.gh.with(|g| {
        g.head_sha = build_commit.clone();
        g.compare = (vec!["orchestrator@users.noreply.github.com".into()], vec!["docs/PLAN.md".into()]);
        g.compare_shas = vec![build_commit.clone()];
    });
    pr.run(&["run", "resume"]).code(4);
    let state = pr.p.state();
    assert_eq!(state["phases"]["plan"]["status"], "approved", "{state}");
    assert_eq!(state["phases"]["build"]["status"], "awaiting_approval");
    assert_eq!(state["phases"]["build"]["runs"], 1, "build ran again");
    // The same commit id under another author, or another id under the run's author: not its own.
    for (email, sha) in
        [("author@example.com", build_commit.clone()), ("orchestrator@users.noreply.github.com", "5".repeat(40))]
    {
        pr.gh.with(|g| {
            g.head_sha = sha.clone();
            g.compare = (vec![email.into()], vec!["docs/PLAN.md".into()]);
            g.compare_shas = vec![sha.clone()];
        });
        pr.p.write("docs/PLAN.md", &format!("changed by {email}\n"));
        pr.run(&["run", "resume"]).code(4);
        assert_eq!(pr.p.state()["phases"]["plan"]["status"], "awaiting_approval", "{email} {sha}");
        pr.gh.label("bob", "User", APPROVE);
        pr.run(&["run", "resume"]).code(4);
        assert_eq!(pr.p.state()["phases"]["plan"]["status"], "approved");
    }
}

/// Finding: the gate's policy is "the base branch's config at the pull request's base
/// commit" — and a pull request's author chooses its base branch (editing the pull request). A
/// writer authoring it pushes a branch of their own whose config allows the author (or lists
/// them as an approver, or needs one approval where the default branch needs two), retargets the
/// pull request to it, and approves it themselves. Whatever the pull request targets, the policy
/// now comes from the repository's default branch when the base is another branch.
#[test]
fn a_pull_request_retargeted_to_its_authors_branch_does_not_get_that_branchs_policy() {
    for weak in ["  allow_author: true\n", "  approvers: [mallory]\n"] {
        let pr = setup_with(PLANNER, "");
        let mine = pr.p.read(".claude/config.yaml").replace("consensus:\n", &format!("consensus:\n{weak}"));
        pr.p.write(".claude/config.yaml", &mine);
        let files = std::collections::HashMap::from([(".claude/config.yaml".to_owned(), mine.clone())]);
        pr.gh.with(|g| g.retargeted = Some(("pr-author/weak".into(), "7".repeat(40), files)));
        let run = pr.run(&["run", "start"]);
        run.code(4).stderr_has("default branch");
        pr.gh.label(crate::fake_github::AUTHOR, "User", APPROVE);
        pr.gh.label("mallory", "User", APPROVE);
        pr.run(&["run", "resume"]).code(4);
        assert!(
            !pr.p.exists("build.log"),
            "{weak}: the retargeted branch's policy approved the author's own pull request"
        );
        // A reviewer who counts under the default branch's policy approves.
        pr.gh.label("alice", "User", APPROVE);
        pr.run(&["run", "resume"]).code(0);
    }
}

/// Held: a comment command counts only as first posted, in the round: a writer's comment from
/// before the round edited to say `/approve` (as anyone with write access can edit others'
/// comments) and a round's comment edited to add it both approve nothing.
#[test]
fn an_edited_comment_approves_nothing() {
    let pr = setup_with(PLANNER, "");
    let before = pr.gh.comment("alice", "I will look at the plan.");
    pr.run(&["run", "start"]).code(4);
    let during = pr.gh.comment("bob", "Reading it now.");
    pr.gh.with(|g| {
        g.clock += 2;
        let at = chrono::DateTime::from_timestamp(g.clock, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        for c in g.comments.iter_mut().filter(|c| c["id"] == before || c["id"] == during) {
            c["body"] = "/approve".into();
            c["updated_at"] = at.clone().into();
        }
    });
    pr.run(&["run", "resume"]).code(4);
    assert!(!pr.p.exists("build.log"), "an edited comment approved");
    assert!(pr.comment().contains("edited after it was posted"), "{}", pr.comment());
}

/// Held: a list's next page (the `Link` header's URL) that leads outside the API gets no token
/// (octocrab keeps every request of the API's client under the API's base path and sends the
/// token only to its host), and the check fails closed.
#[test]
fn a_next_page_outside_the_api_gets_no_token() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    for i in 0..120 {
        pr.gh.comment("pr-author", &format!("note {i}"));
    }
    let web = pr.gh.server_url.clone();
    pr.gh.with(|g| g.timeline_links_to = Some(format!("{web}/elsewhere")));
    let run = pr.run(&["run", "resume"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(pr.gh.with(|g| g.download_auth.iter().all(|sent| !sent)), "the token went to a page outside the API");
    run.stderr_has("timeline");
    assert!(!pr.p.exists("build.log"));
    pr.gh.with(|g| g.timeline_links_to = None);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
}

/// Finding (a regression of the refactor): `run start --force` replaces a run, even one whose
/// state cannot be read ("note: replacing an unreadable state"); the refactor checked the state
/// file before looking at `--force`, so an unreadable state could only be moved aside by hand.
/// Without `--force` it is still refused, and nothing is written.
#[test]
fn run_start_force_replaces_an_unreadable_state() {
    let p = Project::with_config(&config("", &[("a", "echo a >> a.log")], "  - name: build\n    agents: [a]\n"));
    p.write(".claude/orchestrator_state.json", "not a state");
    let before = p.tree();
    p.run(&["run", "start"]).code(3).stderr_has("is not valid");
    assert_eq!(p.tree(), before, "a refused start wrote something");
    p.run(&["run", "start", "--force"]).code(0).stderr_has("replacing an unreadable state");
    assert_eq!(p.state()["phases"]["build"]["status"], "succeeded");
}
