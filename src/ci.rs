//! `ci generate`: a GitHub Actions workflow written from the config.
//!
//! Two layouts. **Steps** (default): one job, each phase a step of the orchestrator action, in
//! config order; a pull request's opening starts the run, a decision label continues it (each
//! `run phase` step is idempotent, so a later label simply walks the steps again). **Jobs**
//! (`--jobs`): each phase a job linked by `needs:`, a parallel phase's agents a matrix of jobs
//! (`run phase P --agent A`) followed by the phase's own job, which merges them and finishes the
//! phase; every job uploads its records and the next ones download and `run merge` them. A first
//! job (`run prepare`) creates the run, or restores the one the gate comment carries, before any
//! phase's job: every job merges it, so all the jobs of a workflow run belong to one run even
//! when the first phase is a matrix, whose jobs could otherwise each start a run of their own.
//!
//! The YAML is built as a value and serialized, so quoting is serde_yaml's, never hand-made.

use std::collections::BTreeSet;

use serde_yaml::{Mapping, Value};

use crate::config::{Phase, Workflow};

pub(crate) struct Options {
    /// The action reference for `uses:` (`owner/repo@ref`, or `./`).
    pub uses: String,
    /// The workspace relative to the repository root (`.` at the root).
    pub working_directory: String,
    /// The config path as given (relative to the workspace).
    pub config: String,
    pub jobs: bool,
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(s(k), v);
    }
    Value::Mapping(m)
}

fn seq(items: impl IntoIterator<Item = Value>) -> Value {
    Value::Sequence(items.into_iter().collect())
}

/// A job or step id for a phase: its name when that is a valid id (names are letters, digits,
/// `_` and `-`), prefixed when it starts with a digit or `-`.
fn job_id(name: &str) -> String {
    if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.to_owned()
    } else {
        format!("phase_{name}")
    }
}

/// Every label that decides a gate.
fn decision_labels(wf: &Workflow) -> Vec<String> {
    let mut labels = BTreeSet::new();
    for p in wf.phases.iter().filter(|p| p.requires_consensus) {
        let (a, r) = wf.labels(&p.name);
        labels.insert(a);
        labels.insert(r);
    }
    labels.into_iter().collect()
}

fn gated(wf: &Workflow) -> bool {
    wf.phases.iter().any(|p| p.requires_consensus)
}

fn triggers(wf: &Workflow) -> Value {
    use crate::gate::tally::Channel;
    let types = |t: &[&str]| map(vec![("types", seq(t.iter().map(|x| s(x))))]);
    let mut on = vec![("pull_request", types(&["opened", "reopened", "synchronize"]))];
    if gated(wf) {
        let by = &wf.consensus.decide_by;
        if by.contains(&Channel::Labels) {
            on.push(("pull_request_target", types(&["labeled"])));
        }
        if by.contains(&Channel::Comments) {
            on.push(("issue_comment", types(&["created"])));
        }
        if by.contains(&Channel::Reviews) {
            on.push(("pull_request_review", types(&["submitted", "dismissed"])));
        }
    }
    map(on)
}

/// The job condition: same-repository pull requests; a decision label, a comment holding a
/// command on a pull request, or a review that decides; nothing else starts a runner. (A
/// comment's payload does not say where the pull request's head lives: the checkout fetches
/// only this repository's branches, and orchestrator asks GitHub and refuses forks.)
fn job_if(wf: &Workflow) -> String {
    use crate::gate::tally::Channel;
    let same_repo = "github.event.pull_request.head.repo.full_name == github.repository";
    let mut cases = vec![format!("(github.event_name == 'pull_request' && {same_repo})")];
    if gated(wf) {
        let by = &wf.consensus.decide_by;
        if by.contains(&Channel::Labels) {
            let labels = serde_json::to_string(&decision_labels(wf)).unwrap_or_default();
            cases.push(format!(
                "(github.event_name == 'pull_request_target' && {same_repo} && contains(fromJSON('{}'), github.event.label.name))",
                labels.replace('\'', "''")
            ));
        }
        if by.contains(&Channel::Comments) {
            let p = wf.consensus.command_prefix.replace('\'', "''");
            cases.push(format!(
                "(github.event_name == 'issue_comment' && github.event.issue.pull_request && (contains(github.event.comment.body, '{p}approve') || contains(github.event.comment.body, '{p}reject') || contains(github.event.comment.body, '{p}retry')))"
            ));
        }
        if by.contains(&Channel::Reviews) {
            cases.push(format!(
                "(github.event_name == 'pull_request_review' && {same_repo} && github.event.review.state != 'commented')"
            ));
        }
    }
    cases.join(" || ")
}

fn permissions(wf: &Workflow, report: bool) -> Value {
    let mut p = vec![
        ("contents", s(if wf.consensus.commit_outputs { "write" } else { "read" })),
        ("pull-requests", s("write")),
        ("issues", s("write")),
    ];
    if wf.consensus.commit_status {
        p.push(("statuses", s("write")));
    }
    if report {
        p.push(("checks", s("write")));
    }
    map(p)
}

/// Check out the pull request's branch (not the merge commit), so outputs are pushed onto it. A
/// comment's event does not name the branch: GitHub does. Only this repository's branches are
/// fetched, never a fork's.
pub(crate) const SWITCH_TO_BRANCH: &str = r#"ref="$HEAD_REF"
if [ -z "$ref" ]; then
  ref=$(curl -fsSL -H "Authorization: Bearer $GH_TOKEN" -H "Accept: application/vnd.github+json" "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/pulls/$PR" | jq -r .head.ref)
fi
auth=$(printf 'x-access-token:%s' "$GH_TOKEN" | base64 | tr -d '\n')
GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.$GITHUB_SERVER_URL/.extraheader" GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $auth" \
  git fetch --depth=1 origin "refs/heads/$ref" && git checkout -B "$ref" FETCH_HEAD
"#;

/// The checkout keeps no credentials: agents read the checkout's git config, and the token it
/// would leave there is the run's own (the push passes it itself, see `github::outputs`).
fn checkout_steps() -> Vec<Value> {
    vec![
        map(vec![
            ("uses", s(&crate::action_pins::CHECKOUT.reference())),
            ("with", map(vec![("persist-credentials", Value::Bool(false))])),
        ]),
        map(vec![
            ("name", s("Switch to the pull request's branch")),
            (
                "env",
                map(vec![
                    ("HEAD_REF", s("${{ github.head_ref }}")),
                    ("PR", s("${{ github.event.pull_request.number || github.event.issue.number }}")),
                    ("GH_TOKEN", s("${{ github.token }}")),
                ]),
            ),
            ("run", s(SWITCH_TO_BRANCH)),
        ]),
    ]
}

/// One invocation of the action.
fn action_step(opts: &Options, id: &str, name: &str, cond: Option<String>, with: Vec<(&str, Value)>) -> Value {
    let mut with = with;
    if opts.working_directory != "." {
        with.push(("working-directory", s(&opts.working_directory)));
    }
    if opts.config != crate::config::DEFAULT_CONFIG {
        with.push(("config", s(&opts.config)));
    }
    let mut step = vec![("name", s(name)), ("id", s(id))];
    if let Some(c) = cond {
        step.push(("if", s(&c)));
    }
    step.push(("uses", s(&opts.uses)));
    step.push(("with", map(with)));
    map(step)
}

/// Step `id` ran and its phase is done with the run not waiting (exit code 0). The outcome is
/// checked first: a skipped step's outputs are null, and `null == '0'` holds in GitHub's
/// expressions (both sides become the number 0).
fn step_ok(id: &str) -> String {
    format!("(steps.{id}.outcome == 'success' && steps.{id}.outputs.exit-code == '0')")
}

/// The same for job `id`.
fn job_ok(id: &str) -> String {
    format!("needs.{id}.result == 'success' && needs.{id}.outputs.exit-code == '0'")
}

fn artifact(name: &str) -> Value {
    s(&format!("orchestrator-{name}-${{{{ github.run_attempt }}}}"))
}

fn junit_step(opts: &Options) -> Value {
    let base = if opts.working_directory == "." { String::new() } else { format!("{}/", opts.working_directory) };
    map(vec![
        ("name", s("Test report")),
        ("if", s(&format!("${{{{ always() && !env.ACT && hashFiles('{base}reports/junit.xml') != '' }}}}"))),
        ("uses", s(&crate::action_pins::JUNIT_REPORT.reference())),
        (
            "with",
            map(vec![
                ("report_paths", s(&format!("{base}reports/junit.xml"))),
                ("check_name", s("orchestrator (JUnit)")),
            ]),
        ),
    ])
}

const HEADER: &str = "\
# Written by `orchestrator ci generate` from the workflow config; regenerate it when the phases
# change. A pull request's opening starts a run; a reviewer's decision label (added by someone
# with write access) continues it. Pull requests from forks are skipped: their code would run
# with this repository's token. See orchestrator's docs/action.md.
";

/// The workflow, as YAML text.
pub(crate) fn generate(wf: &Workflow, opts: &Options) -> String {
    let jobs = if opts.jobs { jobs_layout(wf, opts) } else { steps_layout(wf, opts) };
    let doc = map(vec![
        ("name", s("orchestrator")),
        ("on", triggers(wf)),
        ("permissions", map(vec![])),
        (
            "concurrency",
            map(vec![
                ("group", s("orchestrator-${{ github.event.pull_request.number || github.event.issue.number }}")),
                ("cancel-in-progress", Value::Bool(false)),
            ]),
        ),
        ("jobs", jobs),
    ]);
    let yaml = serde_yaml::to_string(&doc).unwrap_or_default();
    format!("{HEADER}{}", crate::action_pins::annotate(&yaml))
}

fn timeout_minutes(wf: &Workflow, phases: &[&Phase]) -> u64 {
    let total: f64 = phases
        .iter()
        .map(|p| {
            let per = wf.timeout_for(p).as_secs_f64() / 60.0;
            per * f64::from(wf.settings.retry.retries + 1) * p.agents.len() as f64
        })
        .sum();
    (total.ceil() as u64 + 10).clamp(10, 360)
}

fn steps_layout(wf: &Workflow, opts: &Options) -> Value {
    let mut steps = checkout_steps();
    let mut prev: Option<String> = None;
    for (i, phase) in wf.phases.iter().enumerate() {
        let id = job_id(&phase.name);
        let (cond, command) = match (i, &prev) {
            (0, _) => (Some("github.event_name == 'pull_request'".to_owned()), "run start --or-resume"),
            (1, Some(p)) => (Some(format!("github.event_name != 'pull_request' || {}", step_ok(p))), "run phase"),
            (_, Some(p)) => (Some(step_ok(p)), "run phase"),
            (_, None) => (None, "run phase"),
        };
        steps.push(action_step(
            opts,
            &id,
            &phase.name,
            cond,
            vec![("command", s(command)), ("phase", s(&phase.name)), ("artifact-name", artifact(&phase.name))],
        ));
        prev = Some(id);
    }
    steps.push(junit_step(opts));
    let all: Vec<&Phase> = wf.phases.iter().collect();
    map(vec![(
        "orchestrate",
        map(vec![
            ("if", s(&job_if(wf))),
            ("runs-on", s("ubuntu-latest")),
            ("timeout-minutes", Value::Number(timeout_minutes(wf, &all).into())),
            ("permissions", permissions(wf, true)),
            ("steps", seq(steps)),
        ]),
    )])
}

/// The first steps of a jobs-layout job: the checkout, and what the jobs it needs uploaded.
fn job_start(opts: &Options, needs: &[String]) -> Vec<Value> {
    let mut steps = checkout_steps();
    if !needs.is_empty() {
        steps.extend(merge_steps(opts));
    }
    steps
}

/// The steps that bring in what earlier jobs of this workflow run uploaded.
fn merge_steps(opts: &Options) -> Vec<Value> {
    vec![
        map(vec![
            ("name", s("Download the earlier jobs' records")),
            // Under act, only with a local artifact store to fetch from (see the README).
            ("if", s("${{ !env.ACT || env.ACT_ARTIFACT_STORE }}")),
            ("uses", s(&crate::action_pins::DOWNLOAD_ARTIFACT.reference())),
            (
                "with",
                map(vec![
                    ("pattern", s("orchestrator-*-${{ github.run_attempt }}")),
                    ("path", s("${{ runner.temp }}/orchestrator-parts")),
                ]),
            ),
        ]),
        action_step(
            opts,
            "merge",
            "Merge them into this job's workspace",
            None,
            vec![("command", s("run merge ${{ runner.temp }}/orchestrator-parts")), ("upload", s("false"))],
        ),
    ]
}

/// The id of the job that prepares the run: `start`, unless a phase's jobs take that id.
fn start_job_id(wf: &Workflow) -> String {
    let taken: BTreeSet<String> = wf
        .phases
        .iter()
        .flat_map(|p| {
            let id = job_id(&p.name);
            [format!("{id}-agents"), id]
        })
        .collect();
    let mut id = "start".to_owned();
    while taken.contains(&id) {
        id.push('_');
    }
    id
}

/// The first job: the run, created on a pull request's opening or push (or the unfinished one
/// kept), restored from the gate comment on a later event; uploaded for every other job.
fn start_job(wf: &Workflow, opts: &Options, id: &str, cond: &str) -> Value {
    let mut steps = checkout_steps();
    steps.push(action_step(
        opts,
        "prepare",
        "Prepare the run",
        None,
        vec![
            ("command", s("${{ github.event_name == 'pull_request' && 'run prepare --or-start' || 'run prepare' }}")),
            ("artifact-name", artifact(id)),
        ],
    ));
    // It reads the pull request, its comments and the base branch's config; it writes nothing.
    let permissions = map(vec![("contents", s("read")), ("pull-requests", s("read")), ("issues", s("read"))]);
    let outputs = map(vec![("exit-code", s("${{ steps.prepare.outputs.exit-code }}"))]);
    job(&[], cond, timeout_minutes(wf, &[]), permissions, ("outputs", outputs), steps)
}

fn jobs_layout(wf: &Workflow, opts: &Options) -> Value {
    let mut jobs = Mapping::new();
    // The first phase that needs none (a phase declared first may need one declared later).
    let first = wf.phases.iter().find(|p| p.needs.is_empty()).map(|p| p.name.clone()).unwrap_or_default();
    // A disjunction: parenthesized wherever more follows, or `&&` would bind to its last case.
    let base_if = format!("({})", job_if(wf));
    let start = start_job_id(wf);
    jobs.insert(s(&start), start_job(wf, opts, &start, &base_if));
    for phase in &wf.phases {
        let id = job_id(&phase.name);
        // The first phase's jobs need the one that prepares the run; other root phases wait
        // for the first phase, as in the steps layout.
        let mut needs: Vec<String> = phase.needs.iter().map(|n| job_id(n)).collect();
        if phase.needs.is_empty() {
            needs.push(if phase.name == first { start.clone() } else { job_id(&first) });
        }
        let upstream_ok: Vec<String> = needs.iter().map(|n| job_ok(n)).collect();
        let cond = if upstream_ok.is_empty() {
            base_if.clone()
        } else {
            format!("${{{{ !cancelled() && !failure() && {} && {} }}}}", base_if, upstream_ok.join(" && "))
        };
        let command = s("run phase");
        let matrix = phase.parallel && phase.agents.len() > 1;
        let mut phase_needs = needs.clone();
        if matrix {
            let agents_id = format!("{id}-agents");
            let mut steps = job_start(opts, &needs);
            steps.push(action_step(
                opts,
                "agent",
                &format!("{} / ${{{{ matrix.agent }}}}", phase.name),
                None,
                vec![
                    ("command", s("run phase --agent ${{ matrix.agent }}")),
                    ("phase", s(&phase.name)),
                    ("artifact-name", artifact(&format!("{}-${{{{ matrix.agent }}}}", phase.name))),
                ],
            ));
            let strategy = map(vec![
                ("fail-fast", Value::Bool(false)),
                ("matrix", map(vec![("agent", seq(phase.agents.iter().map(|a| s(a))))])),
            ]);
            let job = job(
                &needs,
                &cond,
                timeout_minutes(wf, &[phase]),
                permissions(wf, false),
                ("strategy", strategy),
                steps,
            );
            jobs.insert(s(&agents_id), job);
            phase_needs.push(agents_id);
        }
        let mut steps = job_start(opts, &phase_needs);
        steps.push(action_step(
            opts,
            "phase",
            &phase.name,
            None,
            vec![("command", command), ("phase", s(&phase.name)), ("artifact-name", artifact(&phase.name))],
        ));
        steps.push(junit_step(opts));
        // The agents' jobs may fail; the phase's own job still runs to record it and fail.
        let cond = if matrix {
            let ok: Vec<String> = needs.iter().map(|n| job_ok(n)).collect();
            let mut parts = vec!["!cancelled()".to_owned(), base_if.clone()];
            parts.extend(ok);
            format!("${{{{ {} }}}}", parts.join(" && "))
        } else {
            cond
        };
        let outputs = map(vec![
            ("exit-code", s("${{ steps.phase.outputs.exit-code }}")),
            ("status", s("${{ steps.phase.outputs.status }}")),
        ]);
        let job =
            job(&phase_needs, &cond, timeout_minutes(wf, &[phase]), permissions(wf, true), ("outputs", outputs), steps);
        jobs.insert(s(&id), job);
    }
    Value::Mapping(jobs)
}

/// A job of the jobs layout: `needs` (when any), its condition, limits, one extra key
/// (`strategy` or `outputs`) and its steps.
fn job(
    needs: &[String],
    cond: &str,
    timeout: u64,
    permissions: Value,
    extra: (&str, Value),
    steps: Vec<Value>,
) -> Value {
    let mut job = vec![];
    if !needs.is_empty() {
        job.push(("needs", seq(needs.iter().map(|n| s(n)))));
    }
    job.extend([
        ("if", s(cond)),
        ("runs-on", s("ubuntu-latest")),
        ("timeout-minutes", Value::Number(timeout.into())),
        ("permissions", permissions),
        extra,
        ("steps", seq(steps)),
    ]);
    map(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workflow of config `source` and its generated jobs layout.
    fn jobs_layout(source: &str) -> (Workflow, serde_yaml::Value) {
        let wf = crate::config::parse(std::path::Path::new("."), std::path::Path::new(".claude/config.yaml"), source)
            .unwrap();
        let opts = Options {
            uses: "./".into(),
            working_directory: ".".into(),
            config: crate::config::DEFAULT_CONFIG.into(),
            jobs: true,
        };
        let doc = serde_yaml::from_str(&generate(&wf, &opts)).unwrap();
        (wf, doc)
    }

    #[test]
    fn a_jobs_condition_needs_its_upstream_whatever_the_event() {
        // `&&` binds tighter than `||`: the events' cases are one operand, in parentheses.
        let source = "agents:\n  a: {entrypoints: {default: \"true\"}}\n  b: {entrypoints: {default: \"true\"}}\nphases:\n  - {name: plan, agents: [a], requires_consensus: true}\n  - {name: dev, agents: [a, b], parallel: true}\n";
        let (wf, doc) = jobs_layout(source);
        let events = job_if(&wf);
        for job in ["dev-agents", "dev"] {
            let cond = doc["jobs"][job]["if"].as_str().unwrap();
            assert!(cond.contains(&format!("&& ({events}) &&")), "{job}: {cond}");
            assert!(
                cond.ends_with("needs.plan.result == 'success' && needs.plan.outputs.exit-code == '0' }}"),
                "{job}: {cond}"
            );
        }
    }

    #[test]
    fn the_start_job_takes_no_phases_id() {
        let wf = |phases: &str| {
            let source = format!(
                "agents:\n  a: {{entrypoints: {{default: \"true\"}}}}\n  b: {{entrypoints: {{default: \"true\"}}}}\nphases:\n{phases}"
            );
            crate::config::parse(std::path::Path::new("."), std::path::Path::new(".claude/config.yaml"), &source)
                .unwrap()
        };
        assert_eq!(start_job_id(&wf("  - {name: build, agents: [a]}\n")), "start");
        assert_eq!(start_job_id(&wf("  - {name: start, agents: [a]}\n")), "start_");
        let taken = "  - {name: x, agents: [a]}\n  - {name: start_, agents: [a]}\n  - {name: start, agents: [a, b], parallel: true}\n";
        assert_eq!(start_job_id(&wf(taken)), "start__");
        // `start-agents` is the matrix id of a parallel phase `start`, never the start job's.
        assert_eq!(start_job_id(&wf("  - {name: start-agents, agents: [a]}\n")), "start");
    }

    #[test]
    fn the_first_root_phase_follows_the_start_job_wherever_it_is_declared() {
        let source = "agents:\n  a: {entrypoints: {default: \"true\"}}\nphases:\n  - {name: second, agents: [a], needs: [first]}\n  - {name: first, agents: [a], needs: []}\n  - {name: other, agents: [a], needs: []}\n";
        let (_, doc) = jobs_layout(source);
        let needs = |job: &str| doc["jobs"][job]["needs"].clone();
        assert_eq!(needs("first"), serde_yaml::Value::from(vec!["start"]));
        assert_eq!(needs("second"), serde_yaml::Value::from(vec!["first"]), "no cycle");
        assert_eq!(needs("other"), serde_yaml::Value::from(vec!["first"]));
    }

    #[test]
    fn ids_are_valid_for_github() {
        assert_eq!(job_id("planning"), "planning");
        assert_eq!(job_id("2nd"), "phase_2nd");
        assert_eq!(job_id("-x"), "phase_-x");
        assert_eq!(job_id("_x"), "_x");
    }
}
