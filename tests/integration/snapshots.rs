//! What a reviewer reads, exactly: REQUEST.md, the pull-request comment, the JUnit report and
//! the job summary, snapshotted (insta) with the parts that change from run to run (run ids,
//! times, durations, digests, temporary paths) replaced by placeholders. A change to any of
//! them shows up in review as a snapshot diff.

use crate::github_gate::setup_with;
use crate::harness::{Project, config};

/// The volatile parts of a run's texts, as insta filters.
fn filters(root: &std::path::Path) -> Vec<(String, &'static str)> {
    let mut f = vec![
        (regex_escape(&root.display().to_string()), "[root]"),
        (r"\d{8}_\d{6}(_\d+)?".to_owned(), "[run-id]"),
        (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}| UTC)?".to_owned(), "[time]"),
        // The timeline's Mermaid chart: times as milliseconds since the epoch.
        (r"\b1\d{12}\b".to_owned(), "[epoch-ms]"),
        (r"\b[0-9a-f]{64}\b".to_owned(), "[sha256]"),
        (r"\b[0-9a-f]{40}\b".to_owned(), "[sha1]"),
        (r#"time="[0-9.]+""#.to_owned(), r#"time="[secs]""#),
        (r"\b\d+(\.\d+)?\s?(ms|s)\b".to_owned(), "[duration]"),
        (r"\b\d+m ?\d+s\b".to_owned(), "[duration]"),
        // The state the comment carries is compressed: its bytes follow the times inside.
        (r"<!-- orchestrator:state .* -->".to_owned(), "<!-- orchestrator:state [carried state] -->"),
        (r#""opened_at":"[^"]*""#.to_owned(), r#""opened_at":"[time]""#),
    ];
    if let Ok(real) = root.canonicalize() {
        f.insert(0, (regex_escape(&real.display().to_string()), "[root]"));
    }
    f
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' { c.to_string() } else { format!("\\{c}") }
        })
        .collect()
}

macro_rules! snapshot {
    ($root:expr, $name:expr, $text:expr) => {{
        let filters = filters($root);
        let refs: Vec<(&str, &str)> = filters.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        insta::with_settings!({ filters => refs, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $text);
        });
    }};
}

/// A gated `plan` phase with an artifact and a checklist, then `build`.
fn gated_project() -> Project {
    let mut cfg = config(
        "",
        &[
            (
                "planner",
                "mkdir -p docs; printf 'Plan\\n\\n- step one\\n- step two\\n' > docs/PLAN.md; echo 'ARTIFACT: docs/PLAN.md'",
            ),
            ("builder", "echo built"),
        ],
        "  - name: plan\n    agents: [planner]\n    requires_consensus: true\n    artifacts: [docs/PLAN.md]\n  - name: build\n    agents: [builder]\n",
    );
    cfg.push_str("consensus:\n  checklist: [\"Plan is sound\", \"Scope is right\"]\n");
    Project::with_config(&cfg)
}

#[test]
fn request_md() {
    let p = gated_project();
    p.run(&["run", "start"]).code(4);
    snapshot!(p.root(), "request_md", p.read(".claude/consensus/plan/REQUEST.md"));
}

#[test]
fn pull_request_comment() {
    let pr =
        setup_with("mkdir -p docs; printf 'Plan\\n\\n- step one\\n' > docs/PLAN.md; echo 'ARTIFACT: docs/PLAN.md'", "");
    let run = pr.run(&["run", "start"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    snapshot!(pr.p.root(), "pull_request_comment", pr.comment());
}

#[test]
fn junit_report() {
    let p = Project::with_config(&config(
        "  retry: {retries: 1}",
        &[("ok", "echo fine"), ("flaky", "echo 'ERROR: it broke <badly> & loudly'; exit 3")],
        "  - name: build\n    parallel: true\n    agents: [ok, flaky]\n",
    ));
    p.run(&["run", "start"]).code(1);
    snapshot!(p.root(), "junit_report", p.read("reports/junit.xml"));
}

#[test]
fn job_summary() {
    let p = gated_project();
    let (run, _, summary) = crate::actions_runner::on_runner(&p, &["run", "start"], &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    snapshot!(p.root(), "job_summary", summary);
}
