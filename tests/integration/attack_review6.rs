//! Adversarial review of the carried-state fold (`src/github/carry.rs`), the file-mode record
//! and `run merge` (`src/file_modes.rs`), the jobs layout's start job, and the transcripts'
//! folder handle. An agent runs as the same user as the tool, in a git checkout it can
//! configure; a pull request's author and other commenters may write anything on the PR.

use crate::fake_github::TOKEN;
use crate::github_gate::{PLANNER, setup_with};
use crate::harness::git;

/// A script that appends its environment to `log` (and prints the file it is given, as a
/// textconv or filter must), for an agent to leave where git will run it.
fn leak_script(dir: &std::path::Path, log: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("leak.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nenv >> '{}'\nif [ -f \"$1\" ]; then cat \"$1\"; fi\nexit 0\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Finding: the tool runs git in the workspace after the agents (the gate comment's diffs,
/// `commit_outputs`' add, commit and push) with its own environment, which holds the run's
/// GitHub token that agents are never given (`RUN_TOKEN_VARS`). The agent configured that
/// checkout: hooks, `core.fsmonitor`, a `textconv` driver named by `.gitattributes`: each is a
/// program git starts, with the tool's environment. Neither may see the token, and no hook
/// the agent left may run under the tool's commit or push.
#[test]
fn git_run_by_the_tool_after_the_agents_never_hands_them_the_token() {
    let outside = tempfile::tempdir().unwrap();
    let log = outside.path().join("leaked.env");
    let script = leak_script(outside.path(), &log);
    let s = script.display();
    // A filter is still run by `git add` (it is how the file is read): only without the token.
    let filter_log = outside.path().join("filter.env");
    let filter = outside.path().join("filter");
    std::fs::create_dir(&filter).unwrap();
    let f = leak_script(&filter, &filter_log);
    let f = f.display();
    let planner = format!(
        "{PLANNER}; mkdir -p .git/hooks; for h in pre-commit prepare-commit-msg commit-msg post-commit pre-push reference-transaction; do cp '{s}' .git/hooks/$h; done; git config core.fsmonitor '{s}'; git config diff.leak.textconv '{s}'; git config filter.leak.clean '{f}'; printf '* diff=leak\\n*.md filter=leak\\n' > .gitattributes"
    );
    let pr = setup_with(&planner, "  commit_outputs: true\n");
    let ws = pr.p.root();
    let (_remote, origin) = crate::harness::feature_checkout(ws);
    // The plan exists on the branch: the agent's version is a change, shown as a diff.
    pr.p.write("docs/PLAN.md", "old plan\n");
    git(ws, &["add", ".claude/config.yaml", "docs/PLAN.md"]);
    git(ws, &["commit", "--quiet", "-m", "workflow"]);
    git(ws, &["push", "--quiet", "origin", "feature"]);
    std::fs::write(&pr.event, r#"{"pull_request": {"number": 7, "head": {"ref": "feature"}}}"#).unwrap();
    pr.run(&["run", "start"]).code(4);
    let pushed = git(&origin, &["log", "--format=%s", "feature"]);
    assert!(pushed.contains("orchestrator: outputs of phase `plan`"), "the outputs were not pushed: {pushed}");
    let leaked = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!leaked.contains(TOKEN), "a program the agent configured saw the run's token:\n{leaked}");
    assert!(!leaked.contains("GITHUB_TOKEN="), "{leaked}");
    let filtered = std::fs::read_to_string(&filter_log).unwrap_or_default();
    assert!(!filtered.is_empty(), "the filter never ran: the test tests nothing");
    assert!(!filtered.contains(TOKEN) && !filtered.contains("GITHUB_TOKEN="), "the filter saw the token");
    // Not one program the agent configured ran under the tool's git at all: a hook could add
    // files to the run's own commit (which counts as the run's push), a filter rewrite them.
    assert!(leaked.is_empty(), "the agent's git programs ran under the tool:\n{leaked}");
}

/// Finding (fixed): the generated workflow checked the branch out with `actions/checkout`'s default
/// `persist-credentials: true`, which leaves the job's token in the checkout's git config
/// (`http.https://github.com/.extraheader`, or a credentials file it includes) for the
/// `commit_outputs` push. Every agent then reads it (`git config --get-regexp extraheader`):
/// it withholds `GITHUB_TOKEN` from agents for nothing. With the token an agent posts as
/// `github-actions[bot]`, the identity whose comments the run trusts: a gate comment carrying a
/// state that the fresh runner restores and folds (see the next test: the same copy posted by
/// the run's identity is folded in), or metadata naming its own push as the run's
/// (`Meta::pushed`), so that an approval survives a change to the approved outputs. No
/// checkout of a job that runs agents may persist the token.
#[test]
fn no_checkout_leaves_the_token_where_agents_can_read_it() {
    for jobs in [false, true] {
        let p = crate::harness::Project::new();
        assert!(
            std::process::Command::new("git").args(["init", "-q"]).current_dir(p.root()).status().unwrap().success()
        );
        p.run(&["init"]).code(0);
        let mut args = vec!["ci", "generate", "--uses", "octo/orchestrator@v1"];
        if jobs {
            args.push("--jobs");
        }
        p.run(&args).code(0);
        let wf: serde_yaml::Value = serde_yaml::from_str(&p.read(".github/workflows/orchestrator.yml")).unwrap();
        let mut checkouts = 0;
        for (id, job) in wf["jobs"].as_mapping().unwrap() {
            for step in job["steps"].as_sequence().unwrap() {
                if step["uses"].as_str().is_some_and(|u| u.starts_with("actions/checkout@")) {
                    checkouts += 1;
                    assert_eq!(
                        step["with"]["persist-credentials"],
                        serde_yaml::Value::Bool(false),
                        "job {id:?} (jobs layout: {jobs}) leaves the token in .git/config: {step:?}"
                    );
                }
            }
        }
        assert!(checkouts > 0, "no checkout found: the test checks nothing");
    }
}

/// Held: a copy of the run's gate comment posted by anyone else — a commenter, a writer,
/// another app's bot, an account named like the run's — carrying a state of the same run (id
/// and start, which anyone can read from the comment) that says the gated phase ran further and
/// was approved and the next one succeeded, is neither restored nor folded into the run's own
/// state on a fresh runner. (Posted by `github-actions[bot]` itself, the same copy is folded:
/// the run count is progress, never re-derived. Hence the finding above.)
#[test]
fn a_copy_of_the_gate_comment_by_anyone_else_adds_no_progress() {
    let pr = setup_with(PLANNER, "");
    pr.run(&["run", "start"]).code(4);
    let ours = pr.comment();
    let mut forged = pr.p.state();
    forged["phases"]["plan"]["status"] = "approved".into();
    // Further than the run's own copy, so a fold would take it.
    forged["phases"]["plan"]["runs"] = 7.into();
    let mut build = forged["phases"]["plan"].clone();
    build["status"] = "succeeded".into();
    build["gate"] = serde_json::Value::Null;
    forged["phases"]["build"] = build;
    let block = crate::github_gate::state_block(&forged);
    let line = ours.lines().find(|l| l.starts_with("<!-- orchestrator:state ")).unwrap();
    let copy = ours.replace(line, &block);
    for login in ["mallory", "alice", "evil-app[bot]", "github-actions"] {
        pr.gh.comment(login, &copy);
    }
    for f in [".claude/orchestrator_state.json", ".claude/orchestrator_state.json.journal"] {
        let _ = std::fs::remove_file(pr.p.path(f));
    }
    pr.run(&["run", "resume"]).code(4).stderr_has("restored run");
    let state = pr.p.state();
    assert_eq!(state["phases"]["plan"]["status"], "awaiting_approval", "{state}");
    assert_eq!(state["phases"]["plan"]["runs"], 1, "a forged copy was folded in: {state}");
    assert_ne!(state["phases"]["build"]["status"], "succeeded", "{state}");
    assert!(!pr.p.exists("build.log"));
}

/// Held: the transcripts' folder is opened once per run; an agent that moves it (or `.claude`,
/// or `.claude/logs`) away and leaves a symlink out of the workspace, a FIFO or a hard link in
/// its place gets no later transcript written outside the workspace, and nothing hangs.
#[test]
fn a_transcripts_folder_swapped_mid_run_is_never_written_through() {
    use crate::harness::{Project, config, run_with_deadline};
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().display().to_string();
    for swap in [
        format!("mv .claude/logs/agents .claude/logs/gone && ln -s '{out}' .claude/logs/agents"),
        format!("mv .claude/logs .claude/logs-gone && ln -s '{out}' .claude/logs"),
        format!(
            "mkdir -p '{out}/.claude/logs/agents' && cp -r .claude/logs '{out}/.claude/' ; mv .claude/logs .claude/logs-gone && ln -s '{out}/.claude/logs' .claude/logs"
        ),
        "mv .claude/logs/agents .claude/logs/gone && mkfifo .claude/logs/agents".to_owned(),
        format!(
            "for a in second third; do ln -s '{out}/$a.log' .claude/logs/agents/$ORCHESTRATOR_RUN_ID\\_work_$a.log; done"
        ),
        format!(
            "touch '{out}/target'; for a in second third; do ln '{out}/target' .claude/logs/agents/$ORCHESTRATOR_RUN_ID\\_work_$a.log 2>/dev/null || true; done"
        ),
    ] {
        let p = Project::with_config(&config(
            "",
            &[("first", &swap), ("second", "echo SECOND-SPOKE"), ("third", "echo THIRD-SPOKE")],
            "  - name: work\n    agents: [first, second, third]\n  - name: more\n    agents: [second]\n",
        ));
        let run = run_with_deadline(p.command(&["run", "start"]), std::time::Duration::from_secs(60))
            .unwrap_or_else(|| panic!("hung after `{swap}`"));
        // Refusing to go on is fine (an agent can always break its own run); a panic is not.
        assert!(run.code != 101 && run.code >= 0, "{swap}: {}\n{}", run.code, run.stderr);
        assert!(!run.stderr.contains("panicked"), "{swap}: {}", run.stderr);
        for (rel, _) in crate::harness::tree(outside.path()) {
            let text = std::fs::read_to_string(outside.path().join(&rel)).unwrap_or_default();
            assert!(!text.contains("SPOKE"), "`{swap}`: a transcript was written outside, in {rel}: {text}");
        }
    }
}

/// Finding: the files the tool writes into the workspace at a job's end through
/// `Confinement::create` — the file-mode record (`.claude/file_modes.json`), the HTML report —
/// were opened for writing without `O_NONBLOCK`: an agent that leaves a FIFO there hangs the
/// job (an open for writing waits for a reader) until the workflow's timeout.
#[test]
fn a_fifo_where_the_tool_writes_its_records_does_not_hang_the_job() {
    use crate::harness::{Project, config, run_with_deadline};
    for (target, warning) in [
        (".claude/file_modes.json", "warning: the outputs' file modes were not recorded"),
        ("reports/run_$ORCHESTRATOR_RUN_ID.html", "warning: the HTML report was not written"),
        // Records written by replacing the file: a FIFO is simply replaced.
        ("reports/junit.xml", ""),
        (".claude/metrics/run_$ORCHESTRATOR_RUN_ID.json", ""),
        (".claude/metrics/metrics.prom", ""),
    ] {
        let p = Project::with_config(&config(
            "",
            &[(
                "maker",
                &format!("mkdir -p reports .claude/metrics && rm -f \"{target}\" && mkfifo \"{target}\" && echo done"),
            )],
            "  - name: make\n    agents: [maker]\n",
        ));
        let outputs = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = p.command(&["run", "start"]);
        cmd.env("GITHUB_ACTIONS", "true").env("GITHUB_OUTPUT", outputs.path());
        let run = run_with_deadline(cmd, std::time::Duration::from_secs(60))
            .unwrap_or_else(|| panic!("the job hung on a FIFO at {target}"));
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        // Said, not silently skipped; the run itself is done.
        run.stderr_has(warning);
        assert_eq!(p.state()["phases"]["make"]["status"], "succeeded", "{target}: {}", run.stderr);
    }
}

/// The outputs' push authenticates itself (the checkout keeps no credentials), with exactly one
/// `Authorization` header, also when a checkout of the user's own workflow persisted one.
#[test]
fn the_outputs_push_sends_the_runs_token_once() {
    use base64::Engine as _;
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<String>>::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut auth = Vec::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if line.to_ascii_lowercase().starts_with("authorization:") {
                    auth.push(line.trim_end().to_owned());
                }
                line.clear();
            }
            log.lock().unwrap().push(auth);
            let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let pr = setup_with(PLANNER, "  commit_outputs: true\n");
    let ws = pr.p.root();
    git(ws, &["init", "--quiet", "-b", "feature"]);
    git(ws, &["remote", "add", "origin", &format!("{server}/octo/app.git")]);
    // What `actions/checkout` leaves with its default `persist-credentials: true`.
    git(ws, &["config", &format!("http.{server}/.extraheader"), "AUTHORIZATION: basic UEVSU0lTVEVE"]);
    git(ws, &["add", ".claude/config.yaml"]);
    git(ws, &["commit", "--quiet", "-m", "workflow"]);
    std::fs::write(&pr.event, r#"{"pull_request": {"number": 7, "head": {"ref": "feature"}}}"#).unwrap();
    let out = pr.command(&["run", "start"]).env("GITHUB_SERVER_URL", &server).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(TOKEN), "{stderr}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the push never reached the server: {stderr}");
    for auth in &seen {
        assert_eq!(auth, &[format!("AUTHORIZATION: basic {basic}")], "{seen:?}");
    }
}

/// Finding (fixed): the push itself ran in the agents' checkout, so the git config they write
/// applied to the request that carries the run's token: a rewrite of the GitHub server's URL to
/// a transport that runs a program (`url.…insteadOf` to `ext::`, allowed by
/// `protocol.ext.allow`), a credential helper, a proxy of theirs. Each program saw the token in
/// git's environment. The push now goes from a repository of the tool's own, with no config but
/// the tool's: nothing the agent configured runs, and the server gets the run's header once.
#[test]
fn the_outputs_push_ignores_what_the_agents_configured_in_the_checkout() {
    use base64::Engine as _;
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<String>>::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut auth = Vec::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if line.to_ascii_lowercase().starts_with("authorization:") {
                    auth.push(line.trim_end().to_owned());
                }
                line.clear();
            }
            log.lock().unwrap().push(auth);
            let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let outside = tempfile::tempdir().unwrap();
    let leaked_to = outside.path().join("leaked.env");
    let script = leak_script(outside.path(), &leaked_to);
    let s = script.display();
    let pr = setup_with(PLANNER, "  commit_outputs: true\n");
    let ws = pr.p.root();
    git(ws, &["init", "--quiet", "-b", "feature"]);
    git(ws, &["remote", "add", "origin", &format!("{server}/octo/app.git")]);
    git(ws, &["add", ".claude/config.yaml"]);
    git(ws, &["commit", "--quiet", "-m", "workflow"]);
    // What an agent can write into the checkout's config (after the checkout, before the push).
    for (key, value) in [
        (format!("url.ext::{s} %S .insteadOf"), format!("{server}/")),
        ("protocol.ext.allow".to_owned(), "always".to_owned()),
        ("credential.helper".to_owned(), s.to_string()),
        (format!("http.{server}/.proxy"), "http://127.0.0.1:9".to_owned()),
        ("core.askPass".to_owned(), s.to_string()),
    ] {
        git(ws, &["config", &key, &value]);
    }
    std::fs::write(&pr.event, r#"{"pull_request": {"number": 7, "head": {"ref": "feature"}}}"#).unwrap();
    let out = pr.command(&["run", "start"]).env("GITHUB_SERVER_URL", &server).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let leaked = std::fs::read_to_string(&leaked_to).unwrap_or_default();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    assert!(
        !leaked.contains(TOKEN) && !leaked.contains(&basic),
        "a program the agent configured saw the token:\n{leaked}"
    );
    assert!(leaked.is_empty(), "a program the agent configured ran under the push:\n{leaked}");
    // The push went to the server itself (not through the agent's proxy), with the run's header.
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the push never reached the server: {stderr}");
    for auth in &seen {
        assert_eq!(auth, &[format!("AUTHORIZATION: basic {basic}")], "{seen:?}");
    }
}
