//! LLM agents against local servers speaking each API's wire format: the requests carry what the
//! APIs require, tool loops write files, transient failures are retried and others are not, and
//! every exchange is recorded without the key.

use std::time::Duration;

use serde_json::json;

use crate::fake_api::{FakeApi, Reply, anthropic_error, anthropic_text, anthropic_tools, openai_text, openai_tools};
use crate::harness::{Project, Run};

const KEY: &str = "sk-test-0123456789abcdef";

fn project(api: &FakeApi, provider: &str, extra: &str) -> Project {
    let base = if provider == "openai" { format!("{}/v1", api.url) } else { api.url.clone() };
    let p = Project::with_config(&format!(
        "orchestrator:\n  kill_grace_seconds: 0.5\n  retry: {{retries: 2, base_delay: 0.01, backoff: 1.0, jitter: 0.0}}\n{extra}agents:\n  writer:\n    llm:\n      provider: {provider}\n      model: test-model\n      base_url: \"{base}\"\n      api_key_env: TEST_LLM_KEY\n      max_tokens: 1000\n      prices: {{input_per_mtok: 3.0, output_per_mtok: 15.0}}\nphases:\n  - name: draft\n    agents: [writer]\n"
    ));
    p.write(".claude/intake.yaml", "name: demo\n");
    p.write(".claude/prompts/writer.md", "Write the docs for {{ project.name }}.\n");
    p
}

fn run(p: &Project, args: &[&str]) -> Run {
    let out = p.command(args).env("TEST_LLM_KEY", KEY).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn attempts(p: &Project) -> Vec<serde_json::Value> {
    p.state()["phases"]["draft"]["agents"]["writer"]["attempts"].as_array().unwrap().clone()
}

#[test]
fn anthropic_request_carries_what_the_messages_api_requires_and_is_recorded() {
    let api = FakeApi::start(vec![anthropic_text("All written.", "end_turn")]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(0);
    let seen = api.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body["model"], "test-model");
    assert_eq!(r.body["max_tokens"], 1000);
    assert!(r.body["system"].as_str().unwrap().contains("write_file"));
    assert_eq!(r.body["messages"], json!([{"role": "user", "content": "Write the docs for demo.\n"}]));
    let tools: Vec<&str> = r.body["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["write_file", "read_file", "list_files"]);
    assert_eq!(r.body["tools"][0]["input_schema"]["required"], json!(["path", "content"]));

    let dir = ".claude/agent_outputs/writer/draft";
    assert_eq!(p.read(&format!("{dir}/prompt.md")), "Write the docs for demo.\n");
    assert_eq!(p.read(&format!("{dir}/response.md")), "All written.");
    let request = p.read(&format!("{dir}/attempt-1/request-1.json"));
    assert!(request.contains("\"model\": \"test-model\"") && !request.contains(KEY), "{request}");
    assert!(p.read(&format!("{dir}/attempt-1/response-1.json")).contains("\"stop_reason\":\"end_turn\""));
    let transcript = p.read(p.state()["phases"]["draft"]["agents"]["writer"]["transcript"].as_str().unwrap());
    assert!(
        transcript.contains("→ turn 1: POST") && transcript.contains("All written.") && !transcript.contains(KEY),
        "{transcript}"
    );

    let usage = &attempts(&p)[0]["usage"];
    assert_eq!(usage["input_tokens"], 100);
    assert_eq!(usage["output_tokens"], 20);
    let cost = usage["cost_usd"].as_f64().unwrap();
    assert!((cost - (100.0 * 3.0 + 20.0 * 15.0) / 1e6).abs() < 1e-12, "{cost}");
    let m: serde_json::Value = serde_json::from_str(&run(&p, &["run", "metrics", "--json"]).stdout).unwrap();
    assert_eq!(m["usage"]["input_tokens"], 100);
    assert!(p.read(".claude/metrics/metrics.prom").contains("orchestrator_llm_tokens_total{"));
}

#[test]
fn openai_compatible_request_uses_bearer_auth_and_chat_messages() {
    let api = FakeApi::start(vec![openai_text("Done.")]);
    let p = project(&api, "openai", "");
    run(&p, &["run", "start"]).code(0);
    let r = &api.seen()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(r.body["messages"][0]["role"], "system");
    assert_eq!(r.body["messages"][1], json!({"role": "user", "content": "Write the docs for demo.\n"}));
    assert_eq!(r.body["tools"][0]["type"], "function");
    assert_eq!(r.body["tools"][0]["function"]["name"], "write_file");
    assert_eq!(attempts(&p)[0]["usage"]["input_tokens"], 40);
}

#[test]
fn tool_use_loop_writes_two_files_that_become_artifacts() {
    let api = FakeApi::start(vec![
        anthropic_tools(&[
            ("toolu_1", "write_file", json!({"path": "docs/GUIDE.md", "content": "# Guide\n"})),
            ("toolu_2", "write_file", json!({"path": "src/hello.txt", "content": "hello\n"})),
        ]),
        anthropic_text("Wrote the guide and the greeting.", "end_turn"),
    ]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(0);
    assert_eq!(p.read("docs/GUIDE.md"), "# Guide\n");
    assert_eq!(p.read("src/hello.txt"), "hello\n");
    assert_eq!(
        p.state()["phases"]["draft"]["agents"]["writer"]["artifacts"],
        json!(["docs/GUIDE.md", "src/hello.txt"])
    );
    let second = &api.seen()[1].body;
    assert_eq!(second["messages"][1]["role"], "assistant");
    assert_eq!(second["messages"][1]["content"][1]["type"], "tool_use");
    let results = &second["messages"][2]["content"];
    assert_eq!(results[0]["type"], "tool_result");
    assert_eq!(results[0]["tool_use_id"], "toolu_1");
    assert_eq!(results[0]["is_error"], false);
    assert_eq!(results[1]["content"], "wrote 6 bytes to src/hello.txt");
    assert_eq!(attempts(&p)[0]["usage"]["input_tokens"], 150, "usage adds up over the turns");
}

#[test]
fn openai_tool_loop_sends_tool_messages_back() {
    let api = FakeApi::start(vec![
        openai_tools(&[("call_1", "write_file", json!({"path": "out.md", "content": "x"}))]),
        openai_text("ok"),
    ]);
    let p = project(&api, "openai", "");
    run(&p, &["run", "start"]).code(0);
    assert_eq!(p.read("out.md"), "x");
    let second = &api.seen()[1].body;
    assert_eq!(second["messages"][2]["role"], "assistant");
    assert_eq!(second["messages"][2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        second["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "wrote 1 bytes to out.md"})
    );
}

#[test]
fn rate_limit_is_retried_honouring_retry_after() {
    let api = FakeApi::start(vec![
        anthropic_error(429, "rate_limit_error", "slow down").header("retry-after", "0.2"),
        anthropic_text("Now it works.", "end_turn"),
    ]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(0).stderr_has("attempt 1 failed (HTTP 429 from");
    assert_eq!(api.seen().len(), 2);
    let a = attempts(&p);
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["retry_reason"], "HTTP 429 is transient");
    assert!(a[0]["error"].as_str().unwrap().contains("rate_limit_error: slow down"));
    assert!(a[0]["retry_delay_s"].as_f64().unwrap() >= 0.2, "retry-after was not honoured: {}", a[0]);
}

#[test]
fn server_errors_and_overload_are_retried_until_the_budget_is_spent() {
    let api = FakeApi::start(vec![
        anthropic_error(500, "api_error", "internal"),
        anthropic_error(529, "overloaded_error", "overloaded"),
        anthropic_error(500, "api_error", "internal"),
    ]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(1).stderr_has("HTTP 500").stderr_has("3 attempts");
    assert_eq!(api.seen().len(), 3);
    let a = attempts(&p);
    assert_eq!(a[1]["retry_reason"], "HTTP 529 is transient");
    assert!(a[2].get("retry_reason").is_none());
}

#[test]
fn bad_key_and_bad_request_are_not_retried_and_their_message_is_shown() {
    let api = FakeApi::start(vec![anthropic_error(401, "authentication_error", "invalid x-api-key")]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(1).stderr_has("HTTP 401").stderr_has("authentication_error: invalid x-api-key");
    assert_eq!(api.seen().len(), 1);
    assert_eq!(attempts(&p).len(), 1);
}

#[test]
fn a_slow_server_times_out() {
    let api = FakeApi::start(vec![anthropic_text("late", "end_turn").after(Duration::from_secs(10))]);
    let p = project(&api, "anthropic", "");
    let cfg = p
        .read(".claude/config.yaml")
        .replace("  retry: {retries: 2,", "  timeout_minutes: 0.01\n  retry: {retries: 0,");
    p.write(".claude/config.yaml", &cfg);
    run(&p, &["run", "start"]).code(1).stderr_has("timed out (limit 0.6s) after ");
    assert_eq!(attempts(&p)[0]["timed_out"], true);
}

#[test]
fn malformed_json_is_reported_and_not_retried() {
    let api = FakeApi::start(vec![Reply::raw(200, "<html>this is not json</html>")]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(1).stderr_has("malformed response from");
    assert_eq!(api.seen().len(), 1);
}

#[test]
fn a_response_cut_off_by_max_tokens_is_reported() {
    let api = FakeApi::start(vec![anthropic_text("The beginning of a long", "max_tokens")]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(1).stderr_has("the response was cut off by max_tokens (1000)");
}

#[test]
fn path_escaping_writes_are_refused_reported_and_told_to_the_model() {
    let outside = format!("escape-{}.txt", std::process::id());
    let api = FakeApi::start(vec![
        anthropic_tools(&[
            ("t1", "write_file", json!({"path": format!("../{outside}"), "content": "pwned"})),
            ("t2", "write_file", json!({"path": "/etc/orchestrator-test", "content": "pwned"})),
            ("t3", "write_file", json!({"path": "ok.txt", "content": "fine"})),
        ]),
        anthropic_text("Done.", "end_turn"),
    ]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(0).stderr_has(&format!("refused artifact `../{outside}`: escapes the workspace"));
    assert!(!p.root().parent().unwrap().join(&outside).exists(), "a file was written outside the workspace");
    assert!(!std::path::Path::new("/etc/orchestrator-test").exists());
    let agent = &p.state()["phases"]["draft"]["agents"]["writer"];
    assert_eq!(agent["artifacts"], json!(["ok.txt"]));
    assert_eq!(agent["refused_artifacts"].as_array().unwrap().len(), 2);
    let results = &api.seen()[1].body["messages"][2]["content"];
    assert_eq!(results[0]["is_error"], true);
    assert!(results[0]["content"].as_str().unwrap().starts_with("refused:"));
}

#[test]
fn missing_key_is_refused_before_anything_is_sent() {
    let api = FakeApi::start(vec![anthropic_text("never", "end_turn")]);
    let p = project(&api, "anthropic", "");
    let before = p.tree();
    let out = p.command(&["run", "start"]).env_remove("TEST_LLM_KEY").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("agent `writer` needs an API key in the environment variable `TEST_LLM_KEY`"), "{stderr}");
    assert!(api.seen().is_empty());
    assert_eq!(p.tree(), before);
}

#[test]
fn fenced_blocks_tagged_with_a_path_are_the_fallback_for_plain_answers() {
    let api = FakeApi::start(vec![anthropic_text("Here it is:\n```md path=docs/NOTES.md\n# Notes\n```\n", "end_turn")]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(0);
    assert_eq!(p.read("docs/NOTES.md"), "# Notes\n");
    assert_eq!(p.state()["phases"]["draft"]["agents"]["writer"]["artifacts"], json!(["docs/NOTES.md"]));
}

#[test]
fn dry_run_shows_provider_model_and_prompt_and_sends_nothing() {
    let api = FakeApi::start(vec![]);
    let p = project(&api, "anthropic", "");
    let before = p.tree();
    let out = p.command(&["run", "start", "--dry-run"]).env_remove("TEST_LLM_KEY").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains(&format!("llm: anthropic model `test-model` at {} (key from $TEST_LLM_KEY (NOT SET", api.url)),
        "{stdout}"
    );
    assert!(stdout.contains("│ Write the docs for demo."), "{stdout}");
    assert!(api.seen().is_empty());
    assert_eq!(p.tree(), before);
}

#[test]
fn a_cli_coding_agents_json_output_gives_usage_and_cost() {
    let result = r#"{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.042,"usage":{"input_tokens":1200,"output_tokens":300}}"#;
    let p = Project::with_config(&crate::harness::config(
        "",
        &[("coder", &format!("echo '{result}'"))],
        "  - name: code\n    agents: [coder]\n",
    ));
    p.run(&["run", "start"]).code(0);
    let usage = &p.state()["phases"]["code"]["agents"]["coder"]["attempts"][0]["usage"];
    assert_eq!(usage, &json!({"input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.042}));
}

#[test]
fn bad_llm_config_is_refused_with_its_location() {
    let p = Project::with_config(
        "agents:\n  writer:\n    llm: {provider: antropic, model: m}\n  other:\n    llm: {provider: openai, model: m, base_url: \"ftp://x\", temperature: 3}\nphases:\n  - name: draft\n    agents: [writer, other]\n",
    );
    p.run(&["validate"])
        .code(3)
        .stderr_has("unknown provider `antropic` for agent `writer`")
        .stderr_has(".claude/config.yaml:3:")
        .stderr_has("did you mean `anthropic`?")
        .stderr_has("`base_url` of agent `other` must be an http(s) URL")
        .stderr_has("`temperature` of agent `other` must be between 0 and 2");
}

#[test]
fn connection_errors_are_retried() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api = FakeApi { url: format!("http://127.0.0.1:{port}"), ..FakeApi::start(vec![]) };
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(1).stderr_has("3 attempts");
    let a = attempts(&p);
    assert_eq!(a.len(), 3);
    assert_eq!(a[0]["retry_reason"], "the connection failed");
    assert!(
        a[0]["error"].as_str().unwrap().contains(&format!("request to http://127.0.0.1:{port}/v1/messages failed")),
        "{}",
        a[0]
    );
}

#[test]
fn run_command_is_offered_only_when_allowed_and_runs_in_the_workspace() {
    let call = || {
        anthropic_tools(&[("t1", "run_command", json!({"command": "echo ran > ran.txt; echo hello from the tool"}))])
    };
    let api = FakeApi::start(vec![call(), anthropic_text("ok", "end_turn")]);
    let p = project(&api, "anthropic", "");
    run(&p, &["run", "start"]).code(0);
    assert!(!p.exists("ran.txt"), "run_command ran without allow_commands");
    let result = &api.seen()[1].body["messages"][2]["content"][0];
    assert_eq!(result["is_error"], true);
    assert_eq!(result["content"], "unknown tool `run_command`");

    let api = FakeApi::start(vec![call(), anthropic_text("ok", "end_turn")]);
    let p = project(&api, "anthropic", "");
    p.write(
        ".claude/config.yaml",
        &p.read(".claude/config.yaml")
            .replace("      max_tokens: 1000\n", "      max_tokens: 1000\n      allow_commands: true\n"),
    );
    run(&p, &["run", "start"]).code(0);
    assert_eq!(p.read("ran.txt"), "ran\n");
    let seen = api.seen();
    let tools: Vec<&str> =
        seen[0].body["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(tools.contains(&"run_command"));
    let result = &seen[1].body["messages"][2]["content"][0];
    assert_eq!(result["is_error"], false);
    assert_eq!(result["content"], "exit code 0\nhello from the tool\n");
}

/// What an agent writes into a git config to run a command on the next `git status`.
const PLANTED: &str = "[core]\n\tfsmonitor = \"touch PWNED\"\n";

/// `git status` runs whatever `core.fsmonitor` says: it must not find the agent's command.
#[track_caller]
pub(crate) fn assert_git_untouched(p: &Project, config_before: &str) {
    assert_eq!(p.read(".git/config"), config_before, ".git/config changed");
    crate::harness::git(p.root(), &["status", "--short"]);
    assert!(!p.exists("PWNED"), "git ran a command an agent planted");
}

#[test]
fn writes_into_git_folders_through_symlinks_are_refused_and_told_to_the_model() {
    let calls = [
        ("t1", "gitlink/config"),
        ("t2", "chain/config"),
        ("t3", ".git/hooks/pre-commit"),
        ("t4", "config-link"),
        ("t5", "sub/.git/config"),
        ("t6", "lib/.git/hooks/post-checkout"),
        ("t7", "ok.txt"),
    ];
    let writes: Vec<_> =
        calls.iter().map(|(id, path)| (*id, "write_file", json!({"path": path, "content": PLANTED}))).collect();
    let api = FakeApi::start(vec![
        anthropic_tools(&writes),
        anthropic_tools(&[
            ("r1", "read_file", json!({"path": "gitlink/config"})),
            ("r2", "list_files", json!({"path": "gitlink"})),
        ]),
        anthropic_text("Done.", "end_turn"),
    ]);
    let p = project(&api, "anthropic", "");
    // What a checked-out pull request can hold: symlinks into the repository's git folder, a
    // chain of them into a nested repository's, a symlink file pointing at `.git/config`.
    crate::harness::git(p.root(), &["init", "-q"]);
    std::fs::create_dir(p.path("sub")).unwrap();
    crate::harness::git(&p.path("sub"), &["init", "-q"]);
    std::os::unix::fs::symlink(".git", p.path("gitlink")).unwrap();
    std::os::unix::fs::symlink("sub", p.path("lib")).unwrap();
    std::os::unix::fs::symlink("hop", p.path("chain")).unwrap();
    std::os::unix::fs::symlink("sub/.git", p.path("hop")).unwrap();
    std::os::unix::fs::symlink(".git/config", p.path("config-link")).unwrap();
    let (config, sub_config) = (p.read(".git/config"), p.read("sub/.git/config"));

    run(&p, &["run", "start"]).code(0).stderr_has("refused artifact `gitlink/config`");
    assert_git_untouched(&p, &config);
    assert_eq!(p.read("sub/.git/config"), sub_config);
    assert!(!p.exists(".git/hooks/pre-commit") && !p.exists("sub/.git/hooks/post-checkout"));
    assert_eq!(p.read("ok.txt"), PLANTED, "a plain file of the workspace is written");

    let agent = &p.state()["phases"]["draft"]["agents"]["writer"];
    assert_eq!(agent["artifacts"], json!(["ok.txt"]));
    assert_eq!(agent["refused_artifacts"].as_array().unwrap().len(), 6, "{}", agent["refused_artifacts"]);
    let results = &api.seen()[1].body["messages"][2]["content"];
    let text = |i: usize| results[i]["content"].as_str().unwrap().to_owned();
    for (i, (_, path)) in calls.iter().enumerate().take(6) {
        assert_eq!(results[i]["is_error"], true, "{path}");
        assert!(text(i).starts_with(&format!("refused: `{path}` ")), "{}", text(i));
        assert!(text(i).contains("git folder") && text(i).ends_with("; nothing was written"), "{}", text(i));
    }
    assert!(text(0).contains("resolves into the git folder `.git` through a symlink"), "{}", text(0));
    assert!(text(1).contains("resolves into the git folder `sub/.git` through a symlink"), "{}", text(1));
    assert!(text(2).contains("is inside a git folder (`.git`)"), "{}", text(2));
    assert!(text(3).contains("resolves into the git folder `.git` through a symlink"), "{}", text(3));
    // Reading through the link is refused too: `.git/config` can hold the checkout's token.
    let reads = &api.seen()[2].body["messages"][4]["content"];
    for i in 0..2 {
        assert_eq!(reads[i]["is_error"], true);
        assert!(reads[i]["content"].as_str().unwrap().contains("git folder"), "{}", reads[i]);
    }
}

#[test]
fn an_llm_agent_cannot_forge_the_run_state_or_change_its_config() {
    let targets = [
        "run/state.json",
        "run/state.json.journal",
        "run/state.json.lock",
        "./run/../run/state.json",
        ".claude/config.yaml",
        "claude-link/config.yaml",
        ".claude/consensus/draft/REQUEST.md",
        ".claude/carried/draft.json",
        ".claude/prompts/writer.md",
    ];
    let forged = r#"{"version":1,"run_id":"forged"}"#;
    let ids: Vec<String> = (0..targets.len()).map(|i| format!("w{i}")).collect();
    let writes: Vec<_> = targets
        .iter()
        .zip(&ids)
        .map(|(path, id)| (id.as_str(), "write_file", json!({"path": path, "content": forged})))
        .collect();
    let api = FakeApi::start(vec![anthropic_tools(&writes), anthropic_text("Done.", "end_turn")]);
    // The state file where the config puts it.
    let p = project(&api, "anthropic", "  state_file: run/state.json\n");
    std::os::unix::fs::symlink(".claude", p.path("claude-link")).unwrap();
    let config = p.read(".claude/config.yaml");
    run(&p, &["run", "start"]).code(0);
    assert_eq!(p.read(".claude/config.yaml"), config);
    let state: serde_json::Value = serde_json::from_str(&p.read("run/state.json")).unwrap();
    assert_ne!(state["run_id"], "forged");
    assert_eq!(state["phases"]["draft"]["status"], "succeeded");
    assert!(!p.read("run/state.json.journal").contains("forged"));
    assert!(!p.exists(".claude/consensus/draft/REQUEST.md") && !p.exists(".claude/carried/draft.json"));
    let results = &api.seen()[1].body["messages"][2]["content"];
    let text = |i: usize| results[i]["content"].as_str().unwrap().to_owned();
    for (i, path) in targets.iter().enumerate() {
        assert_eq!(results[i]["is_error"], true, "{path}: {}", text(i));
        assert!(text(i).starts_with(&format!("refused: `{path}` is ")), "{}", text(i));
    }
    assert!(
        text(0).contains("the run's state file; agents may not change the run's state (`run/state.json`)"),
        "{}",
        text(0)
    );
    assert!(
        text(4).contains(
            "the orchestrator's config; agents may not change the config they run under (`.claude/config.yaml`)"
        ),
        "{}",
        text(4)
    );
    assert!(text(6).contains("inside `.claude/consensus/`"), "{}", text(6));
    assert!(text(8).contains("an agent's prompt template"), "{}", text(8));
    assert_eq!(p.read(".claude/prompts/writer.md"), "Write the docs for {{ project.name }}.\n");
    assert_eq!(
        state["phases"]["draft"]["agents"]["writer"]["refused_artifacts"].as_array().unwrap().len(),
        targets.len()
    );
}

/// An LLM agent is as untrusted as a shell one on a runner: its text cannot issue workflow
/// commands or leak its key in an encoding, its commands get none of the runner's files, and a
/// file it names after its key is not listed for upload.
#[test]
fn an_llm_agent_on_a_runner_leaks_nothing_and_commands_nothing() {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("key={KEY}"));
    let api = FakeApi::start(vec![
        anthropic_tools(&[
            ("t1", "write_file", json!({"path": format!("notes-{KEY}.md"), "content": "x\n"})),
            (
                "t2",
                "run_command",
                json!({"command": "echo ${GITHUB_OUTPUT-unset} > seen.txt; echo hijacked=1 >> \"$GITHUB_OUTPUT\""}),
            ),
        ]),
        anthropic_text(&format!("Done.\n::error::pwn\n##[warning]pwn\nencoded: {encoded}\n"), "end_turn"),
    ]);
    let p = project(&api, "anthropic", "");
    p.write(
        ".claude/config.yaml",
        &p.read(".claude/config.yaml")
            .replace("      max_tokens: 1000\n", "      max_tokens: 1000\n      allow_commands: true\n"),
    );
    let (out, outputs, summary) = crate::actions_runner::on_runner(&p, &["run", "start"], &[("TEST_LLM_KEY", KEY)]);
    out.code(0).stderr_has("its name holds a secret");
    assert_eq!(p.read("seen.txt"), "unset\n");
    assert!(!outputs.contains_key("hijacked"), "{outputs:?}");
    assert!(!outputs["upload-paths"].contains("notes-"), "{}", outputs["upload-paths"]);
    for commands in crate::runner_sim::processed_every_way(&out.stdout, &out.stderr) {
        for c in commands {
            assert!(!format!("{c:?}").contains("pwn"), "{c:?}\n{}", out.stdout);
        }
    }
    let response = p.read(".claude/agent_outputs/writer/draft/response.md");
    assert!(response.contains("***") && !response.contains(&encoded[4..20]), "{response}");
    let transcript = p.read(p.state()["phases"]["draft"]["agents"]["writer"]["transcript"].as_str().unwrap());
    assert!(!transcript.contains(&encoded[4..20]), "{transcript}");
    for text in [&out.stdout, &out.stderr, &summary] {
        assert!(
            !text.contains(&encoded[4..20]) && !text.replace("::add-mask::sk-test-0123456789abcdef", "").contains(KEY)
        );
    }
}

/// Give `p` an OpenAI-compatible LLM agent `writer` (with its prompt) after `before` (the config
/// up to and including `agents:`), in one phase `draft` whose list is `agents`.
fn writer_beside(p: &Project, api: &FakeApi, before: &str, agents: &str) {
    p.write(
        ".claude/config.yaml",
        &format!(
            "{before}  writer:\n    llm:\n      provider: openai\n      model: test-model\n      base_url: \"{}/v1\"\n      api_key_env: TEST_LLM_KEY\nphases:\n  - name: draft\n{agents}",
            api.url
        ),
    );
    p.write(".claude/intake.yaml", "name: demo\n");
    p.write(".claude/prompts/writer.md", "Write the docs for {{ project.name }}.\n");
}

/// An LLM agent's records folder is checked as its attempt starts: an agent that ran while it
/// waited in line and made the folder a link out of the workspace gets nothing written there.
#[test]
fn an_llm_agents_records_never_follow_a_link_made_while_it_waited_in_line() {
    let api = FakeApi::start(vec![openai_text("Done.")]);
    let p = Project::nested();
    let elsewhere = p.outside().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let swap =
        format!("sleep 0.3; rm -rf .claude/agent_outputs; ln -s '{}' .claude/agent_outputs", elsewhere.display());
    writer_beside(
        &p,
        &api,
        &format!(
            "orchestrator:\n  max_parallel_agents: 1\nagents:\n  swap:\n    entrypoints: {{default: \"{swap}\"}}\n"
        ),
        "    parallel: true\n    agents: [swap, writer]\n",
    );
    run(&p, &["run", "start"]).code(1);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "records written through the link");
    assert!(api.seen().is_empty());
    // That agent's attempt fails, saying why; the agent before it keeps its result.
    let agents = &p.state()["phases"]["draft"]["agents"];
    assert_eq!(agents["swap"]["status"], "succeeded");
    assert_eq!(agents["writer"]["status"], "failed");
    let error = agents["writer"]["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("cannot keep its records") && error.contains("outside the workspace"), "{error}");
}

/// A link a pull request committed where an LLM agent's exchange is recorded is never written
/// through: a link at a record's name is replaced, and a folder that leads out of the workspace
/// gets nothing (the transcript says so).
#[test]
fn an_llm_agents_records_are_never_written_through_a_committed_link() {
    let api = FakeApi::start(vec![openai_text("Done.")]);
    let p = Project::nested();
    let victim = p.outside().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let elsewhere = p.outside().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::create_dir_all(p.path(".claude/agent_outputs/writer/draft")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, p.path(".claude/agent_outputs/writer/draft/attempt-1")).unwrap();
    std::os::unix::fs::symlink(&victim, p.path(".claude/agent_outputs/writer/draft/response.md")).unwrap();
    writer_beside(&p, &api, "agents:\n", "    agents: [writer]\n");
    run(&p, &["run", "start"]).code(0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    let response = p.path(".claude/agent_outputs/writer/draft/response.md");
    assert!(!response.symlink_metadata().unwrap().file_type().is_symlink(), "the link is replaced");
    assert_eq!(p.read(".claude/agent_outputs/writer/draft/response.md"), "Done.");
    let transcript = p.read(p.state()["phases"]["draft"]["agents"]["writer"]["transcript"].as_str().unwrap());
    assert!(
        transcript.contains("=== record not written: cannot write `.claude/agent_outputs/writer/draft/attempt-1/request-1.json`: its folder resolves outside the workspace"),
        "{transcript}"
    );
}
