//! The records of a run with known outcomes — one agent succeeds, one is retried, one times out,
//! one fails, one artifact pattern matches nothing — checked file by file, and by the tools that
//! consume them (promtool, junitparser).

use std::io::Read;
use std::process::Command;

use crate::harness::{Project, config, wait_for};

fn known_outcomes() -> Project {
    let p = Project::with_config(&config(
        "  max_parallel_agents: 4\n  retry: {retries: 1, base_delay: 0.01, backoff: 2.0, jitter: 0.0}",
        &[
            ("ok", "mkdir -p out; echo hi > out/ok.txt; echo junk > leftover.orig; echo 'ARTIFACT: out/ok.txt'"),
            ("flaky", "echo run >> flaky.count; if [ $(wc -l < flaky.count) -le 1 ]; then exit 75; fi"),
            ("slow", "sleep 30"),
            ("broken", "printf '\\033[31mbroken build\\033[0m\\n'; exit 3"),
        ],
        "  - name: build\n    parallel: true\n    agents: [ok, flaky, slow, broken]\n    timeout_minutes: 0.01\n    artifacts: [\"out/*.txt\", \"missing/*.md\"]\n  - name: ship\n    agents: [ok]\n",
    ));
    p.write(".env", "PASSWORD=hunter2\n");
    p.run(&["run", "start"]).code(1);
    p
}

fn json(p: &Project, rel: &str) -> serde_json::Value {
    serde_json::from_str(&p.read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn metrics_json_has_the_seed_shape_and_every_attempt() {
    let p = known_outcomes();
    let run_id = p.state()["run_id"].as_str().unwrap().to_owned();
    let m = json(&p, &format!(".claude/metrics/run_{run_id}.json"));
    assert_eq!(m["run_id"], run_id.as_str());
    assert!(m["start_ts"].as_str().unwrap().ends_with('Z'));
    assert!(m["duration_s"].as_f64().unwrap() > 0.0);
    assert_eq!(m["status"], "failed");
    assert_eq!(m["total_retries"], 2);
    assert_eq!(m["total_attempts"], 6);
    assert_eq!(m["cleanliness_score"], 67.0);
    let b = &m["phases"]["build"];
    assert_eq!(b["phase_name"], "build");
    assert_eq!(b["status"], "failed");
    assert_eq!(b["validation_status"], "fail");
    assert_eq!(b["artifacts_count"], 1);
    assert_eq!(b["agent_exit_codes"], serde_json::json!({"ok": 0, "flaky": 0, "slow": null, "broken": 3}));
    assert_eq!(b["agent_retries"], serde_json::json!({"ok": 0, "flaky": 1, "slow": 1, "broken": 0}));
    assert_eq!(
        b["agent_outcomes"],
        serde_json::json!({"ok": "succeeded", "flaky": "succeeded", "slow": "failed", "broken": "failed"})
    );
    assert!(b["agent_runtimes"]["slow"].as_f64().unwrap() > 1.0);
    assert_eq!(b["attempts"]["flaky"][0]["exit_code"], 75);
    assert_eq!(b["attempts"]["flaky"][0]["retry_reason"], "exit code 75 is retryable");
    assert_eq!(b["attempts"]["slow"][0]["timed_out"], true);
    assert_eq!(b["attempts"]["slow"][1]["timed_out"], true);
    assert_eq!(b["attempts"]["slow"][0]["retry_reason"], "timed out");
    assert!(b["attempts"]["ok"][0]["start_ts"].is_string());
    assert!(b["agent_usage"]["ok"].is_object(), "room for token usage");
    assert_eq!(m["phases"]["ship"]["status"], "pending");

    // The command prints the same numbers, from the state.
    let out = p.run(&["run", "metrics", "--json"]);
    let again: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(again["phases"]["build"]["agent_retries"], b["agent_retries"]);
    let status: serde_json::Value = serde_json::from_str(&p.run(&["run", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["metrics"]["total_retries"], 2);
    p.run(&["run", "metrics"]).code(0).stdout_has("run ").stdout_has("failed").stdout_has("2 retries");
}

#[test]
fn prometheus_file_passes_promtool_and_has_the_dashboard_series() {
    let p = known_outcomes();
    let run_id = p.state()["run_id"].as_str().unwrap().to_owned();
    let prom = p.read(".claude/metrics/metrics.prom");
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(p.path(".claude/metrics/metrics.prom")).unwrap())
        .output()
        .expect("promtool is installed by .ci/run (Debian package prometheus)");
    assert!(
        check.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        check.stdout.is_empty() && check.stderr.is_empty(),
        "promtool lint: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    for line in [
        format!("orchestrator_agent_retries_total{{run_id=\"{run_id}\",phase=\"build\",agent=\"flaky\"}} 1"),
        format!("orchestrator_agent_timeouts_total{{run_id=\"{run_id}\",phase=\"build\",agent=\"slow\"}} 2"),
        format!(
            "orchestrator_agent_outcome{{run_id=\"{run_id}\",phase=\"build\",agent=\"broken\",outcome=\"failed\"}} 1"
        ),
        format!("orchestrator_run_status{{run_id=\"{run_id}\",status=\"failed\"}} 1"),
        format!("orchestrator_total_retries{{run_id=\"{run_id}\"}} 2"),
        format!("orchestrator_cleanliness_score{{run_id=\"{run_id}\"}} 67"),
        "# TYPE orchestrator_agent_retries_total counter".to_owned(),
        "# TYPE orchestrator_phase_duration_seconds gauge".to_owned(),
    ] {
        assert!(prom.contains(&line), "metrics.prom lacks {line:?}:\n{prom}");
    }
    assert!(
        prom.contains("orchestrator_agent_runtime_seconds{") && prom.contains("orchestrator_run_duration_seconds{")
    );
    assert_eq!(p.run(&["run", "metrics", "--prom"]).stdout.lines().count(), prom.lines().count());
}

#[test]
fn junit_parses_with_junitparser_with_the_right_counts_and_messages() {
    let p = known_outcomes();
    let xml = p.read("reports/junit.xml");
    assert!(!xml.contains('\u{1b}'), "ANSI escapes reached the JUnit file");
    assert!(xml.contains("broken build"), "{xml}");
    let script = r#"
import json, sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    cases = []
    for case in suite:
        results = [{"kind": type(r).__name__, "type": r.type, "message": r.message, "text": r.text} for r in case.result]
        cases.append({"name": case.name, "classname": case.classname, "time": case.time, "results": results, "out": case.system_out})
    out.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures, "time": suite.time, "cases": cases})
print(json.dumps(out))
"#;
    let parsed =
        Command::new("python3").args(["-c", script]).arg(p.path("reports/junit.xml")).output().expect("python3");
    assert!(
        parsed.status.success(),
        "junitparser (pip install junitparser, done by .ci/run): {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let suites: serde_json::Value = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(suites.as_array().unwrap().len(), 1, "only the phase that ran has a suite: {suites}");
    let build = &suites[0];
    assert_eq!(build["name"], "build");
    assert_eq!(build["tests"], 6);
    assert_eq!(build["failures"], 3);
    assert!(build["time"].as_f64().unwrap() > 0.0);
    let case = |name: &str| {
        build["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name}"))
            .clone()
    };
    assert_eq!(case("ok")["results"], serde_json::json!([]));
    assert_eq!(case("ok")["classname"], "build");
    let flaky = case("flaky");
    assert_eq!(flaky["results"], serde_json::json!([]), "a retried success is one passing case");
    assert!(flaky["out"].as_str().unwrap().contains("2 attempts:\nattempt 1: exit code 75"), "{flaky}");
    let broken = &case("broken")["results"][0];
    assert_eq!(broken["kind"], "Failure");
    assert_eq!(broken["type"], "exit-code");
    assert_eq!(broken["message"], "exit code 3 (1 attempt)");
    let slow = &case("slow")["results"][0];
    assert_eq!(slow["type"], "timeout");
    assert!(
        slow["message"].as_str().unwrap().starts_with("timed out (limit ")
            && slow["message"].as_str().unwrap().ends_with("(2 attempts)")
    );
    assert!(slow["text"].as_str().unwrap().contains("retried after 0.01s because timed out"), "{slow}");
    assert_eq!(case("artifact out/*.txt")["results"], serde_json::json!([]));
    let missing = &case("artifact missing/*.md")["results"][0];
    assert_eq!(missing["type"], "missing-artifact");
    assert_eq!(missing["message"], "no file matches `missing/*.md`");
}

#[test]
fn validation_report_hygiene_and_bundle_describe_the_phase() {
    let p = known_outcomes();
    let report = p.read("reports/checkpoint_validation_build.md");
    for needle in [
        "# Checkpoint Validation: build",
        "**Status:** FAIL",
        "| `out/*.txt` | 1 | ✅ found |",
        "| `missing/*.md` | 0 | ❌ missing |",
        "- `out/ok.txt`",
        "## Missing Patterns\n\n- `missing/*.md`",
    ] {
        assert!(report.contains(needle), "validation report lacks {needle:?}:\n{report}");
    }

    let h = json(&p, "reports/hygiene_summary.json");
    // 100 − 3 (stray leftover.orig) − 5 × 2 (undeclared leftover.orig, flaky.count) − 20 (.env)
    assert_eq!(h["cleanliness_score"], 67.0);
    assert_eq!(h["grade"], "D");
    let findings: Vec<(String, String, f64)> = h["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap().to_owned(),
                f["cost"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(findings.contains(&("stray-file".into(), "leftover.orig".into(), 3.0)), "{findings:?}");
    assert!(findings.contains(&("undeclared-change".into(), "leftover.orig".into(), 5.0)), "{findings:?}");
    assert!(findings.contains(&("possible-secret".into(), ".env".into(), 20.0)), "{findings:?}");
    assert!(findings.contains(&("undeclared-change".into(), "flaky.count".into(), 5.0)), "{findings:?}");
    assert_eq!(findings.len(), 4, "{findings:?}");

    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(p.path(".claude/artifacts/build_bundle.zip")).unwrap()).unwrap();
    let mut content = String::new();
    zip.by_name("out/ok.txt").unwrap().read_to_string(&mut content).unwrap();
    assert_eq!(content, "hi\n");
    let mut meta = String::new();
    zip.by_name("metadata.json").unwrap().read_to_string(&mut meta).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["phase"], "build");
    assert_eq!(meta["run_id"], p.state()["run_id"]);
    assert_eq!(
        meta["files"],
        serde_json::json!([{"path": "out/ok.txt", "size": 3, "sha256": "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4"}])
    );
    assert_eq!(meta["agents"].as_array().unwrap().len(), 4);
}

#[test]
fn a_killed_run_still_has_its_metrics() {
    let p = Project::with_config(&config(
        "  max_parallel_agents: 2",
        &[("quick", "sleep 1.5; echo done"), ("hang", "echo $$ > hang.pid; sleep 300")],
        "  - name: build\n    parallel: true\n    agents: [quick, hang]\n",
    ));
    let mut child = p.spawn(&["run", "start"]);
    wait_for("the quick agent's result in the metrics file", || {
        std::fs::read_dir(p.path(".claude/metrics"))
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"quick\": \"succeeded\"")))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let out = p.run(&["run", "metrics", "--json"]);
    let m: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(m["phases"]["build"]["agent_outcomes"]["quick"], "succeeded");
    assert_eq!(m["phases"]["build"]["status"], "running");
    let hang: i32 = p.read("hang.pid").trim().parse().unwrap();
    // The agent's whole group (its shell and the `sleep`), as a resume would.
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(hang), nix::sys::signal::Signal::SIGKILL);
}
