//! Approval gates on GitHub against a local, stateful fake of the REST API: one comment edited
//! in place, labels that count only from authorized people, stale approvals, several approvals,
//! the checklist, crashes, transient failures and pagination.

use crate::fake_github::{AUTHOR, FakeGithub, TOKEN};
use crate::harness::git;
use crate::harness::{Project, Run, config};

const APPROVE: &str = "orchestrator:approved";
const REJECT: &str = "orchestrator:rejected";

pub(crate) struct Pr {
    pub p: Project,
    pub gh: FakeGithub,
    _event_dir: tempfile::TempDir,
    pub event: std::path::PathBuf,
}

pub(crate) const PLANNER: &str = "mkdir -p docs; echo plan > docs/PLAN.md; echo 'ARTIFACT: docs/PLAN.md'";

fn setup(consensus: &str) -> Pr {
    setup_with(PLANNER, consensus)
}

/// A pull request whose `plan` phase (gated, artifact `docs/PLAN.md`) runs `planner`, then
/// `build`; the base branch has the same config.
pub(crate) fn setup_with(planner: &str, consensus: &str) -> Pr {
    let gh = FakeGithub::start("1111111aaaaaaa");
    for (login, role) in [
        ("alice", "write"),
        ("bob", "maintain"),
        ("carol", "admin"),
        ("mallory", "read"),
        ("trish", "triage"),
        (AUTHOR, "write"),
    ] {
        gh.permission(login, role);
    }
    let mut cfg = config(
        "",
        &[("planner", planner), ("builder", "echo built >> build.log")],
        "  - name: plan\n    agents: [planner]\n    requires_consensus: true\n    artifacts: [docs/PLAN.md]\n  - name: build\n    agents: [builder]\n",
    );
    cfg.push_str(&format!("consensus:\n  checklist: [\"Plan is sound\", \"Scope is right\"]\n{consensus}"));
    let p = Project::with_config(&cfg);
    gh.base_file(".claude/config.yaml", &cfg);
    let event_dir = tempfile::tempdir().unwrap();
    let event = event_dir.path().join("event.json");
    std::fs::write(&event, r#"{"action": "opened", "pull_request": {"number": 7}, "sender": {"login": "pr-author"}}"#)
        .unwrap();
    Pr { p, gh, _event_dir: event_dir, event }
}

impl Pr {
    /// The binary as a pull_request workflow run would start it.
    pub(crate) fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.p.command(args);
        cmd.env("GITHUB_EVENT_PATH", &self.event)
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_REPOSITORY", "octo/app")
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_API_URL", &self.gh.api_url)
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("GITHUB_RUN_ID", "42");
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    pub(crate) fn comment(&self) -> String {
        let comments = self.gh.gate_comments();
        assert_eq!(comments.len(), 1, "expected exactly one gate comment, got {}", comments.len());
        comments[0].clone()
    }
}

#[test]
fn approval_by_a_writer_continues_the_run_and_the_comment_records_it() {
    let pr = setup("  commit_status: true\n");
    pr.run(&["run", "start"])
        .code(4)
        .stdout_has("https://github.example/octo/app/pull/7#issuecomment-")
        .stdout_has("adds the label `orchestrator:approved`");
    let body = pr.comment();
    for needle in [
        "# Consensus Request: plan",
        "- [ ] Plan is sound\n- [ ] Scope is right",
        "⏳ **Waiting for approval.**",
        "add the label `orchestrator:approved` to approve or `orchestrator:rejected` to reject",
        "<details><summary><code>docs/PLAN.md</code> (new file, +1 line)</summary>",
        "```diff\n+plan\n```",
        "[Workflow run](https://github.example/octo/app/actions/runs/42)",
        "<!-- orchestrator:gate run=",
        "<!-- orchestrator:meta {",
    ] {
        assert!(body.contains(needle), "comment lacks {needle:?}:\n{body}");
    }
    assert!(!body.contains(TOKEN));
    assert!(!pr.p.exists("build.log"));

    pr.run(&["run", "resume"]).code(4); // nothing decided yet: still one comment
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0).stdout_has("completed");
    assert_eq!(pr.p.read("build.log"), "built\n");
    let body = pr.comment();
    assert!(body.contains("✅ **Approved** by @alice") && body.contains("on commit `1111111`"), "{body}");
    assert!(pr.gh.with(|g| g.labels.is_empty()), "the consumed label was not removed");
    let decision = &pr.p.state()["phases"]["plan"]["gate"]["decision"];
    assert_eq!(decision["by"], "alice");
    assert_eq!(decision["commit"], "1111111aaaaaaa");
    let statuses: Vec<String> = pr.gh.with(|g| {
        g.statuses
            .iter()
            .map(|s| format!("{}:{}", s["context"].as_str().unwrap(), s["state"].as_str().unwrap()))
            .collect()
    });
    assert_eq!(statuses, ["orchestrator/plan:pending", "orchestrator/plan:success"]);
}

#[test]
fn reject_from_a_maintainer_wins_with_the_reason_from_their_comment() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.gh.comment("bob", "The plan misses the migration step.");
    pr.gh.label("bob", "User", REJECT);
    pr.run(&["run", "resume"]).code(5);
    let decision = &pr.p.state()["phases"]["plan"]["gate"]["decision"];
    assert_eq!(decision["approved"], false);
    assert_eq!(decision["by"], "bob");
    assert_eq!(decision["reason"], "The plan misses the migration step.");
    assert!(pr.comment().contains("❌ **Rejected** by @bob"), "{}", pr.comment());
    assert!(!pr.p.exists("build.log"));
}

#[test]
fn labels_from_readers_triagers_the_author_and_bots_are_ignored_and_named() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("mallory", "User", APPROVE);
    pr.gh.label("trish", "User", APPROVE);
    pr.gh.label(AUTHOR, "User", APPROVE);
    pr.gh.label("dependabot[bot]", "Bot", APPROVE);
    pr.run(&["run", "resume"]).code(4);
    let body = pr.comment();
    if std::env::var_os("SHOW_GATE_COMMENT").is_some() {
        eprintln!("{body}");
    }
    for needle in [
        "@mallory has `read` access, not write",
        "@trish has `triage` access, not write",
        "@pr-author is the pull request's author",
        "@dependabot[bot] is a bot",
        "⏳ **Waiting for approval** (0 of 1 so far)",
    ] {
        assert!(body.contains(needle), "comment lacks {needle:?}:\n{body}");
    }
    assert!(!pr.p.exists("build.log"));
}

#[test]
fn an_approval_goes_stale_after_a_push_that_changes_the_artifacts() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.gh.with(|g| g.head_sha = "2222222bbbbbbb".into());
    pr.p.write("docs/PLAN.md", "a different plan\n");
    pr.run(&["run", "resume"]).code(4);
    assert!(
        pr.comment().contains("The approval from @alice is stale: commit 2222222 changed the phase's artifacts"),
        "{}",
        pr.comment()
    );
    assert!(!pr.p.exists("build.log"));
}

#[test]
fn two_approvals_need_two_different_people() {
    let pr = setup("  min_approvals: 2\n");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(4);
    assert!(pr.comment().contains("(1 of 2 so far: @alice)"), "{}", pr.comment());
    assert!(pr.gh.with(|g| g.labels.is_empty()), "the label should be freed for the next reviewer");
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(4);
    pr.gh.label("carol", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
    assert_eq!(pr.p.state()["phases"]["plan"]["gate"]["decision"]["by"], "alice, carol");
}

#[test]
fn an_incomplete_checklist_holds_the_approval_until_every_box_is_ticked() {
    let pr = setup("  require_checklist: true\n");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(4);
    assert!(pr.comment().contains("waits for every checklist box to be ticked"), "{}", pr.comment());
    // The reviewer ticks the boxes in the comment; a later check keeps the ticks.
    pr.tick_all();
    pr.run(&["run", "resume"]).code(0);
    let body = pr.comment();
    assert!(body.contains("- [x] Plan is sound") && body.contains("**Checklist:** 2/2 ticked"), "{body}");
}

#[test]
fn a_crash_between_posting_and_saving_does_not_post_a_second_comment() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    // As if the process died after posting the comment but before recording the gate.
    let path = ".claude/orchestrator_state.json";
    let mut state = pr.p.state();
    state["phases"]["plan"].as_object_mut().unwrap().remove("gate");
    pr.p.write(path, &state.to_string());
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.gh.gate_comments().len(), 1);
    assert!(pr.p.state()["phases"]["plan"]["gate"]["request"].as_str().unwrap().starts_with("https://github.example/"));
}

#[test]
fn transient_502s_and_429s_are_retried() {
    let pr = setup("");
    pr.gh.with(|g| {
        g.failures.push_back((502, None));
        g.failures.push_back((429, Some("0".into())));
        g.failures.push_back((502, None));
    });
    pr.run(&["run", "start"]).code(4);
    assert_eq!(pr.gh.gate_comments().len(), 1);
}

#[test]
fn more_than_a_hundred_comments_are_paginated() {
    let pr = setup("");
    for i in 0..150 {
        pr.gh.comment("someone", &format!("comment {i}"));
    }
    pr.run(&["run", "start"]).code(4);
    pr.run(&["run", "resume"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
    assert_eq!(pr.gh.gate_comments().len(), 1);
    let paged =
        pr.gh.with(|g| g.requests.iter().filter(|(m, p)| m == "GET" && p.ends_with("/issues/7/timeline")).count());
    assert!(paged >= 4, "comments were not read page by page");
}

#[test]
fn wait_poll_keeps_the_step_alive_until_a_label_decides() {
    let pr = setup("  wait: poll\n  poll_interval_seconds: 1\n  poll_timeout_minutes: 5\n");
    let child = pr
        .command(&["run", "start"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The gate is open once its comment carries the run's 🚀 (the round's mark).
    crate::harness::wait_for("the gate to open", || {
        pr.gh.gate_comments().len() == 1
            && pr.gh.with(|g| g.reaction_list.iter().any(|(_, r)| r["content"] == "rocket"))
    });
    pr.gh.label("carol", "User", APPROVE);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("waiting for a decision on pull request #7; checking again in 1s"), "{stderr}");
    assert_eq!(pr.p.read("build.log"), "built\n");
}

#[test]
fn dry_run_on_a_pull_request_prints_the_api_calls_and_the_comment_and_sends_nothing() {
    let pr = setup("");
    let before = pr.p.tree();
    let out = pr.run(&["run", "start", "--dry-run"]);
    out.code(0)
        .stdout_has("on pull request #7 of octo/app")
        .stdout_has("POST /repos/octo/app/issues/7/comments, or PATCH /repos/octo/app/issues/comments/<id>")
        .stdout_has("add the label `orchestrator:approved` to approve")
        .stdout_has("GET /repos/octo/app/issues/7/timeline?per_page=100")
        .stdout_has("labels: the timeline's label events")
        .stdout_has("comments: the timeline's comments (`/approve`")
        .stdout_has("POST /repos/octo/app/issues/comments/<id>/reactions")
        .stdout_has("reviews: the timeline's reviews")
        .stdout_has("│ <!-- orchestrator:gate run=");
    assert!(pr.gh.with(|g| g.requests.is_empty()), "the dry run called GitHub");
    assert_eq!(pr.p.tree(), before);
}

#[test]
fn a_resume_on_a_fresh_runner_takes_the_state_from_the_gate_comment() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    let run_id = pr.p.state()["run_id"].clone();
    // A new workflow run on a fresh machine: the outputs are on the branch, the state is not.
    for f in [".claude/orchestrator_state.json", ".claude/orchestrator_state.json.journal"] {
        std::fs::remove_file(pr.p.path(f)).unwrap();
    }
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"])
        .code(0)
        .stderr_has("restored run")
        .stderr_has("from its gate comment on pull request #7");
    assert_eq!(pr.p.state()["run_id"], run_id);
    assert_eq!(pr.p.read("build.log"), "built\n");
}

#[test]
fn a_state_in_a_comment_by_a_person_is_not_trusted() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    let forged = pr.comment().replace("⏳", "⌛");
    pr.gh.comment("mallory", &forged);
    pr.gh.with(|g| g.comments.retain(|c| c["user"]["type"] != "Bot"));
    std::fs::remove_file(pr.p.path(".claude/orchestrator_state.json")).unwrap();
    pr.run(&["run", "resume"]).code(2).stderr_has("no run has been started here");
}

#[test]
fn labels_from_the_runs_own_identity_do_not_count() {
    let pr = setup("");
    pr.gh.with(|g| g.identity = Some("release-bot-user".into()));
    pr.gh.permission("release-bot-user", "admin");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("release-bot-user", "User", APPROVE);
    pr.run(&["run", "resume"]).code(4);
    assert!(pr.comment().contains("@release-bot-user is this run's own identity"), "{}", pr.comment());
}

/// Prism in proxy mode between the tool and the fake: every request the gate makes is checked
/// against GitHub's official OpenAPI description (installed by `.ci/run`).
#[test]
fn the_requests_match_githubs_openapi_description() {
    let node = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/node/node_modules");
    let prism = node.join(".bin/prism");
    let spec = node.join("@octokit/openapi/generated/api.github.com.json");
    assert!(
        prism.exists() && spec.exists(),
        "Prism and @octokit/openapi are missing: run .ci/run (npm install --prefix .ci/node)"
    );
    let pr = setup("  commit_status: true\n");
    // A free port may be taken by another test's server before Prism binds it (a connection
    // would then reach that server): wait for Prism to say it listens, or try another port.
    let (port, log, mut proxy) = (0..5)
        .find_map(|_| {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let log = tempfile::NamedTempFile::new().unwrap();
            let mut proxy = std::process::Command::new(&prism)
                .args(["proxy", spec.to_str().unwrap(), &pr.gh.api_url, "--port", &port.to_string()])
                .args(["--host", "127.0.0.1"])
                .stdout(log.reopen().unwrap())
                .stderr(log.reopen().unwrap())
                .spawn()
                .expect("start prism");
            let listening = format!("Prism is listening on http://127.0.0.1:{port}");
            let mut exited = false;
            crate::harness::wait_for("Prism to listen", || {
                exited = proxy.try_wait().unwrap().is_some();
                exited || std::fs::read_to_string(log.path()).is_ok_and(|l| l.contains(&listening))
            });
            if exited { None } else { Some((port, log, proxy)) }
        })
        .expect("Prism could not listen on any of 5 ports");
    let via_prism = Pr {
        gh: FakeGithub {
            api_url: format!("http://127.0.0.1:{port}"),
            server_url: pr.gh.server_url.clone(),
            state: std::sync::Arc::clone(&pr.gh.state),
        },
        ..pr
    };
    via_prism.gh.with(|g| g.no_conditional = true);
    // Every way of deciding, and a second round: comments, reactions (added, listed and
    // removed), reviews, labels, permissions, the base branch's config.
    via_prism.run(&["run", "start"]).code(4);
    via_prism.gh.comment("alice", "/reject the plan misses a step");
    via_prism.run(&["run", "resume"]).code(5);
    via_prism.gh.comment("alice", "/retry");
    via_prism.run(&["run", "resume"]).code(4);
    via_prism.gh.review("bob", "COMMENTED", "1111111aaaaaaa", "reading");
    via_prism.gh.label("alice", "User", APPROVE);
    via_prism.run(&["run", "resume"]).code(0);
    let _ = proxy.kill();
    let _ = proxy.wait();
    let log = std::fs::read_to_string(log.path()).unwrap();
    // Prism cannot match a `{path}` parameter that holds slashes, which the contents API takes
    // literally (`/contents/.claude/config.yaml`; GitHub answers 404 to `%2F` for some tokens):
    // that route is checked by hand here instead.
    let mut last_request = "";
    let mut violations: Vec<String> = Vec::new();
    for line in log.lines() {
        if let Some(i) = line.find("[HTTP SERVER] ") {
            last_request = line[i + "[HTTP SERVER] ".len()..].split(' ').nth(1).unwrap_or_default();
        }
        if line.contains("Violation: request") {
            let contents = last_request.strip_prefix("/repos/octo/app/contents/").is_some_and(|p| {
                line.contains("Selected route not found") && p.contains('/') && !p.split('/').any(str::is_empty)
            });
            if !contents {
                violations.push(format!("{last_request}: {line}"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "requests that do not match GitHub's OpenAPI description:\n{}",
        violations.join("\n")
    );
    let checked = log.lines().filter(|l| l.contains("Request received")).count();
    assert!(checked >= 10, "Prism saw only {checked} requests:\n{log}");
}

#[test]
fn listed_approvers_count_without_write_access_and_a_phase_can_have_its_own_labels() {
    let pr = setup("  approvers: [mallory]\n");
    let cfg = pr
        .p
        .read(".claude/config.yaml")
        .replace("    requires_consensus: true\n", "    requires_consensus: true\n    approve_label: \"plan:ok\"\n");
    pr.p.write(".claude/config.yaml", &cfg);
    pr.gh.base_file(".claude/config.yaml", &cfg);
    pr.run(&["run", "start"]).code(4);
    assert!(
        pr.comment().contains("add the label `plan:ok` to approve") && pr.comment().contains("and from @mallory"),
        "{}",
        pr.comment()
    );
    pr.gh.label("alice", "User", APPROVE); // the default label does not answer this phase
    pr.run(&["run", "resume"]).code(4);
    pr.gh.label("mallory", "User", "plan:ok");
    pr.run(&["run", "resume"]).code(0);
    assert_eq!(pr.p.state()["phases"]["plan"]["gate"]["decision"]["by"], "mallory");
}

#[test]
fn the_gate_fails_closed_when_github_keeps_failing() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    pr.gh.label("alice", "User", APPROVE);
    pr.gh.with(|g| g.failures.extend(std::iter::repeat_n((502, Some("0".to_owned())), 50)));
    pr.run(&["run", "resume"]).code(70).stderr_has("HTTP 502");
    assert_eq!(pr.p.state()["phases"]["plan"]["status"], "awaiting_approval");
    assert!(!pr.p.exists("build.log"));
}

#[test]
fn polling_asks_conditionally_so_unchanged_answers_are_not_modified() {
    let pr = setup("  wait: poll\n  poll_interval_seconds: 1\n  poll_timeout_minutes: 5\n");
    let child = pr
        .command(&["run", "start"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::harness::wait_for("two unchanged answers", || pr.gh.with(|g| g.not_modified) >= 2);
    pr.gh.label("carol", "User", APPROVE);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn committed_outputs_and_the_carried_state_let_a_fresh_runner_continue() {
    let pr = setup("  commit_outputs: true\n");
    std::fs::write(&pr.event, r#"{"pull_request": {"number": 7, "head": {"ref": "feature"}}}"#).unwrap();
    // The first runner: a checkout of the pull request's branch.
    let ws = pr.p.root();
    let (_remote, origin) = crate::harness::feature_checkout(ws);
    git(ws, &["add", ".claude/config.yaml"]);
    git(ws, &["commit", "--quiet", "-m", "workflow"]);
    git(ws, &["push", "--quiet", "origin", "feature"]);

    pr.run(&["run", "start"]).code(4);
    assert_eq!(git(&origin, &["show", "feature:docs/PLAN.md"]), "plan\n");
    assert!(git(&origin, &["log", "-1", "--format=%s", "feature"]).contains("outputs of phase `plan`"));
    let pushed = git(&origin, &["rev-parse", "feature"]);
    assert!(
        pr.comment().contains(&format!("\"head_sha\":\"{}\"", pushed.trim())),
        "the approval must bind to the pushed commit"
    );
    let tracked = git(&origin, &["ls-tree", "-r", "--name-only", "feature"]);
    assert_eq!(
        tracked.lines().collect::<Vec<_>>(),
        [".claude/config.yaml", "docs/PLAN.md"],
        "only outputs are committed"
    );

    // A later workflow run, on a fresh runner: a new clone, no state.
    let fresh = tempfile::tempdir().unwrap();
    git(fresh.path(), &["clone", "--quiet", "-b", "feature", origin.to_str().unwrap(), "ws"]);
    let fresh_ws = fresh.path().join("ws");
    assert!(!fresh_ws.join(".claude/orchestrator_state.json").exists());
    pr.gh.label("alice", "User", APPROVE);
    let out = pr.command(&["run", "resume"]).current_dir(&fresh_ws).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("restored run"), "{stderr}");
    assert_eq!(std::fs::read_to_string(fresh_ws.join("build.log")).unwrap(), "built\n");
}

#[test]
fn a_deleted_or_defaced_request_is_posted_again_and_the_gate_keeps_waiting() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    // Someone deletes the request.
    pr.gh.with(|g| g.comments.clear());
    pr.run(&["run", "resume"]).code(4);
    assert_eq!(pr.gh.gate_comments().len(), 1, "the request was not posted again");
    // Someone edits away its hidden metadata.
    pr.gh.with(|g| {
        for c in g.comments.iter_mut() {
            let body: String = c["body"]
                .as_str()
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("<!-- orchestrator:meta"))
                .collect::<Vec<_>>()
                .join("\n");
            c["body"] = serde_json::json!(body);
        }
    });
    pr.run(&["run", "resume"]).code(4);
    assert!(pr.comment().contains("<!-- orchestrator:meta {"), "the metadata was not restored");
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0);
    assert_eq!(pr.gh.gate_comments().len(), 1);
}

#[test]
fn an_unchanged_request_is_not_rewritten_on_every_resume() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    pr.run(&["run", "resume"]).code(4);
    let patches_before = pr.gh.with(|g| g.requests.iter().filter(|(m, _)| m == "PATCH").count());
    pr.run(&["run", "resume"]).code(4);
    let patches_after = pr.gh.with(|g| g.requests.iter().filter(|(m, _)| m == "PATCH").count());
    assert_eq!(patches_after, patches_before, "a resume with nothing new rewrote the comment");
}

/// The zip `actions/upload-artifact` would make of `files` (relative to the workspace, which is
/// the uploaded paths' common folder).
fn artifact_zip(p: &Project, files: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for f in files {
        w.start_file(*f, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(&std::fs::read(p.path(f)).unwrap()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn a_state_too_large_for_the_comment_travels_in_the_workflow_artifact() {
    let pr = setup("");
    // The intake is part of the state: 60,000 characters that do not compress make it too large.
    let noise: String = std::iter::repeat_with(fastrand::alphanumeric).take(60_000).collect();
    pr.p.write(".claude/intake.yaml", &format!("name: big\nnotes: {noise}\n"));
    let run = Run::from_output(
        pr.command(&["run", "start"]).env("ORCHESTRATOR_ARTIFACT_NAME", "records plan-1").output().unwrap(),
    );
    run.code(4);
    let comment = pr.comment();
    assert!(!comment.contains("<!-- orchestrator:state "), "not inline");
    let pointer = comment.lines().find(|l| l.starts_with("<!-- orchestrator:state-ref ")).expect("a pointer");
    assert!(pointer.ends_with(" run=42 path=.claude/carried/plan.json artifact=records%20plan-1 -->"), "{pointer}");
    assert!(comment.len() < 65_536);
    let run_id = pr.p.state()["run_id"].clone();

    // The step's upload, as GitHub would keep it.
    let zip = artifact_zip(&pr.p, &[".claude/carried/plan.json", "reports/junit.xml"]);
    pr.gh.with(|g| {
        g.artifacts
            .push(serde_json::json!({"id": 9, "name": "records plan-1", "expired": false, "workflow_run": {"id": 42}}));
        g.files.insert("/blob/9.zip".into(), zip);
    });
    // A fresh runner: none of the run's files.
    for f in [".claude/orchestrator_state.json", ".claude/orchestrator_state.json.journal", ".claude/carried/plan.json"]
    {
        std::fs::remove_file(pr.p.path(f)).unwrap();
    }
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"]).code(0).stderr_has("restored run");
    assert_eq!(pr.p.state()["run_id"], run_id);
    assert_eq!(pr.p.read("build.log"), "built\n");
    assert!(
        pr.gh.with(|g| g.requests.iter().any(|(m, p)| m == "GET" && p == "/repos/octo/app/actions/runs/42/artifacts"))
    );
    assert_eq!(pr.gh.with(|g| g.download_auth.clone()), vec![false], "the token never goes to the storage host");
}

#[test]
fn a_forged_artifact_is_refused() {
    let pr = setup("");
    let noise: String = std::iter::repeat_with(fastrand::alphanumeric).take(60_000).collect();
    pr.p.write(".claude/intake.yaml", &format!("name: big\nnotes: {noise}\n"));
    Run::from_output(pr.command(&["run", "start"]).env("ORCHESTRATOR_ARTIFACT_NAME", "records").output().unwrap())
        .code(4);
    // Someone uploads a different state under that name (a later run of the PR's own workflow).
    let text = pr.p.read(".claude/carried/plan.json").replace("\"name\":\"big\"", "\"name\":\"evil\"");
    pr.p.write(".claude/carried/plan.json", &text);
    let zip = artifact_zip(&pr.p, &[".claude/carried/plan.json"]);
    pr.gh.with(|g| {
        g.artifacts.push(serde_json::json!({"id": 3, "name": "records", "expired": false, "workflow_run": {"id": 42}}));
        g.files.insert("/blob/3.zip".into(), zip);
    });
    for f in [".claude/orchestrator_state.json", ".claude/orchestrator_state.json.journal"] {
        std::fs::remove_file(pr.p.path(f)).unwrap();
    }
    pr.run(&["run", "resume"]).code(3).stderr_has("does not match the digest in the gate comment");
    assert!(!pr.p.exists(".claude/orchestrator_state.json"));
}

#[test]
fn server_errors_are_retried_quickly_whatever_the_rate_limit_reset_says() {
    let pr = setup("");
    // GitHub sends x-ratelimit-reset on every answer; here it is a minute away.
    let reset = (chrono::Utc::now().timestamp() + 60).to_string();
    pr.gh.with(|g| {
        g.always_headers = vec![("x-ratelimit-remaining".into(), "4990".into()), ("x-ratelimit-reset".into(), reset)];
        g.failures.extend([(502, None), (502, None), (503, None)]);
    });
    let run = crate::harness::run_with_deadline(pr.command(&["run", "start"]), std::time::Duration::from_secs(40))
        .expect("three 5xx answers must not wait for the rate-limit reset");
    run.code(4);
}

#[test]
fn a_server_that_never_answers_fails_the_step_instead_of_hanging_it() {
    let pr = setup("");
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for s in silent.incoming() {
            open.push(s);
        }
    });
    let before = pr.p.tree();
    let mut cmd = pr.command(&["run", "start"]);
    cmd.env("GITHUB_API_URL", format!("http://127.0.0.1:{port}")).env("ORCHESTRATOR_GITHUB_TIMEOUT", "0.5");
    let run = crate::harness::run_with_deadline(cmd, std::time::Duration::from_secs(60))
        .expect("the step hangs on a silent server");
    run.code(70).stderr_has("no answer within 0.5s");
    assert_eq!(before, pr.p.tree(), "nothing written when the policy cannot be read");
}

#[test]
fn a_signal_while_github_is_slow_stops_the_run_at_once_with_its_state_saved() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    pr.gh.with(|g| g.stall = Some(("/issues/7/timeline".into(), std::time::Duration::from_secs(25))));
    let child = pr
        .command(&["run", "resume"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::harness::wait_for("the resume to wait on GitHub", || {
        pr.gh.with(|g| g.requests.iter().any(|(m, _)| m == "STALLED"))
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    // A runner sends SIGKILL 10 s after the first signal; the fake stalls for 25 s.
    let out =
        rx.recv_timeout(std::time::Duration::from_secs(10)).expect("SIGTERM was not honoured while GitHub was slow");
    let run = Run::from_output(out.unwrap());
    run.code(130);
    assert_eq!(pr.p.state()["phases"]["plan"]["status"], "awaiting_approval", "the state is saved and intact");
    pr.gh.with(|g| g.stall = None);
}

/// The hidden block the run's own identity posts, carrying `state` (see `github::carry`).
pub(crate) fn state_block(state: &serde_json::Value) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    use std::io::Write as _;
    let json = serde_json::to_vec(state).unwrap();
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&json).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(enc.finish().unwrap());
    let digest: String = sha2::Sha256::digest(&json).iter().map(|b| format!("{b:02x}")).collect();
    format!("<!-- orchestrator:state {digest} {encoded} -->")
}

#[test]
fn a_carried_state_whose_names_leave_their_folder_is_not_restored() {
    let pr = setup("");
    pr.run(&["run", "start"]).code(4);
    // What the gate comment carries, with a run id that climbs out of `.claude/metrics` (the
    // digest matches: say an earlier step of the run's own workflow was led to post it).
    let escaped = format!("escaped-{}", std::process::id());
    let mut state = pr.p.state();
    state["run_id"] = serde_json::json!(format!("x/../../../../{escaped}"));
    let block = state_block(&state);
    pr.carry_instead(&block);
    pr.gh.label("alice", "User", APPROVE);
    pr.run(&["run", "resume"])
        .code(3)
        .stderr_has("cannot restore the run state from pull request #7: the carried state is not valid: `run_id` is \"x/../../../../escaped-")
        .stderr_has("which cannot be part of a file name");
    assert!(!pr.p.exists(".claude/orchestrator_state.json"), "the carried state was written");
    assert!(!pr.p.root().parent().unwrap().join(format!("{escaped}.json")).exists());
    assert!(!pr.p.exists("build.log"), "nothing ran");
}

impl Pr {
    /// Replace the carried state in the gate comments with `block` (as someone with write
    /// access could), and remove the local state: the next command is a fresh runner's.
    pub(crate) fn carry_instead(&self, block: &str) {
        self.gh.with(|g| {
            for c in g.comments.iter_mut() {
                let body = c["body"].as_str().unwrap_or_default().to_owned();
                if let Some(line) = body.lines().find(|l| l.starts_with("<!-- orchestrator:state ")) {
                    c["body"] = serde_json::json!(body.replace(line, block));
                }
            }
        });
        for f in [".claude/orchestrator_state.json", ".claude/orchestrator_state.json.journal"] {
            let _ = std::fs::remove_file(self.p.path(f));
        }
    }

    /// Gate `build` too (here and on the base branch): two gates, one after the other.
    pub(crate) fn gate_build_too(&self) {
        let cfg = self
            .p
            .read(".claude/config.yaml")
            .replace("    agents: [builder]\n", "    agents: [builder]\n    requires_consensus: true\n");
        self.p.write(".claude/config.yaml", &cfg);
        self.gh.base_file(".claude/config.yaml", &cfg);
    }

    /// The gate comment of `phase`.
    pub(crate) fn comment_of(&self, phase: &str) -> String {
        let mine: Vec<String> =
            self.gh.gate_comments().into_iter().filter(|b| b.contains(&format!(" phase={phase} -->"))).collect();
        assert_eq!(mine.len(), 1, "expected one gate comment for {phase}");
        mine[0].clone()
    }

    /// A reviewer ticks both checklist boxes in the gate comments.
    pub(crate) fn tick_all(&self) {
        self.gh.with(|g| {
            for c in g.comments.iter_mut() {
                let body = c["body"]
                    .as_str()
                    .unwrap_or_default()
                    .replace("- [ ] Plan is sound", "- [x] Plan is sound")
                    .replace("- [ ] Scope is right", "- [x] Scope is right");
                c["body"] = serde_json::json!(body);
            }
        });
    }
}
