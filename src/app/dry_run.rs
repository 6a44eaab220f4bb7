//! `--dry-run`: the plan, each agent's command and rendered prompt, and the gates the run would
//! open. Nothing is executed and nothing is written.

use std::collections::HashSet;
use std::fmt::Write;

use crate::cli::ExecArgs;
use crate::config::{Phase, Workflow};
use crate::engine::{Mode, context, plan};
use crate::gate::{LocalGate, request};
use crate::state::RunState;

use super::invocation::Invocation;

pub(crate) fn print(inv: &Invocation, state: &RunState, new_run: bool, mode: &Mode, exec: &ExecArgs) {
    let (wf, redactor) = (&inv.wf, &inv.redactor);
    // The plan shows rendered prompts, which quote the state (artifacts, agents' files).
    let text = redactor.redact_str(&render(inv, state, new_run, mode, exec));
    out!("{}", crate::runner_log::neutralize(&text));
    if let Some(runner) = super::runner::Runner::detect() {
        let phases: Vec<&str> = to_run(wf, state, mode).iter().map(|p| p.name.as_str()).collect();
        runner.dry_run(&phases, &text, redactor);
    }
}

fn to_run<'w>(wf: &'w Workflow, state: &RunState, mode: &Mode) -> Vec<&'w Phase> {
    match mode {
        Mode::Phase(name) => wf.phase(name).into_iter().collect(),
        Mode::Step => plan::ready(wf, state, &HashSet::new()),
        // Everything not done yet, in dependency order, as far as the first gate allows.
        Mode::Continue => plan::until_gates(wf, state),
    }
}

pub(crate) fn render(inv: &Invocation, state: &RunState, new_run: bool, mode: &Mode, exec: &ExecArgs) -> String {
    let wf = &inv.wf;
    let mut s = String::from("Dry run: nothing is executed and nothing is written.\n\n");
    let workers = exec.max_workers.map(|n| n as usize).unwrap_or(wf.settings.max_parallel_agents);
    if new_run {
        let _ = writeln!(s, "New run (its id is assigned when it starts).");
    } else {
        let _ = writeln!(s, "Run {} ({}).", state.run_id, state.status().as_str());
    }
    let _ = writeln!(s, "Plan: {} phase(s), at most {workers} agent(s) at once.\n", wf.phases.len());
    for (i, p) in plan::topological(wf).iter().enumerate() {
        let status = state.phases.get(&p.name).map(|s| s.status.as_str()).unwrap_or("pending");
        let how = if (p.parallel || exec.parallel) && p.agents.len() > 1 { " in parallel" } else { "" };
        let _ = writeln!(s, "  {}. {} [{status}]: {}{how}", i + 1, p.name, p.agents.join(", "));
        if !p.needs.is_empty() {
            let _ = writeln!(s, "     needs: {}", p.needs.join(", "));
        }
        if !p.artifacts.is_empty() {
            let _ = writeln!(
                s,
                "     artifacts: {}",
                p.artifacts.iter().map(|a| a.pattern.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        if p.requires_consensus {
            let _ = writeln!(s, "     gate: approval required before the phases that need it");
        }
    }
    let phases = to_run(wf, state, mode);
    if phases.is_empty() {
        let _ = writeln!(s, "\nNothing would run now.");
        return s;
    }
    let _ = writeln!(s, "\nWould run: {}", phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "));
    let r = &wf.settings.retry;
    for p in &phases {
        let timeout = exec.timeout.unwrap_or_else(|| wf.timeout_for(p).as_secs_f64());
        for name in &p.agents {
            let agent = &wf.agents[name];
            let _ = writeln!(s, "\n── {} / {name} ──", p.name);
            match agent.llm() {
                Some(spec) => {
                    let key = match &spec.api_key_env {
                        Some(var) if std::env::var(var).is_ok_and(|v| !v.is_empty()) => {
                            format!("key from ${var} (set)")
                        }
                        Some(var) => format!("key from ${var} (NOT SET: the run would refuse to start)"),
                        None => "no key".to_owned(),
                    };
                    let _ = writeln!(
                        s,
                        "llm: {} model `{}` at {} ({key})",
                        spec.provider.as_str(),
                        spec.model,
                        spec.base_url
                    );
                    let tools = if spec.allow_commands {
                        "write_file, read_file, list_files, run_command"
                    } else {
                        "write_file, read_file, list_files"
                    };
                    let _ =
                        writeln!(s, "max_tokens: {}; max_turns: {}; tools: {tools}", spec.max_tokens, spec.max_turns);
                }
                None => {
                    let _ = writeln!(s, "command: {}", agent.command_for(&p.name));
                }
            }
            let _ = writeln!(
                s,
                "timeout: {timeout:.0}s per attempt; up to {} retries (exit codes {:?}, messages {:?}, timeouts)",
                r.retries, r.retryable_exit_codes, r.retryable_messages
            );
            let _ = writeln!(s, "transcript: .claude/logs/agents/<run_id>_{}_{name}.log", p.name);
            let rel = crate::prompt::template_path(agent);
            match crate::prompt::read_template(&wf.root, &rel, agent.prompt.is_some()) {
                Ok(Some(src)) => match crate::prompt::render(&rel, &src, &context::for_agent(wf, state, p, agent)) {
                    Ok(text) => {
                        let _ = writeln!(s, "prompt ({}), given as $ORCHESTRATOR_PROMPT_FILE:", rel.display());
                        for line in text.lines() {
                            let _ = writeln!(s, "  │ {line}");
                        }
                    }
                    Err(d) => {
                        let _ = writeln!(s, "prompt: {d}");
                    }
                },
                Ok(None) => {
                    let _ = writeln!(s, "prompt: none ({} does not exist)", rel.display());
                }
                Err(d) => {
                    let _ = writeln!(s, "prompt: {d}");
                }
            }
        }
        if p.requires_consensus {
            let _ = writeln!(s, "\n── gate: {} ──", p.name);
            s.push_str(&gate_preview(inv, state, &p.name));
        }
    }
    s
}

/// What the gate of `phase` would do: on a pull request, the API calls and the exact comment;
/// elsewhere, the REQUEST.md it would write. Nothing is sent or written.
fn gate_preview(inv: &Invocation, state: &RunState, phase: &str) -> String {
    use crate::github::comment;
    use crate::github::context::Detected;
    let wf = &inv.wf;
    let mut s = String::new();
    let body = match inv.github() {
        Ok(Detected::PullRequest(ctx)) => {
            let ctx: &crate::github::context::PrContext = ctx;
            let issue = format!("{}/issues/{}", ctx.repo_path(), ctx.number);
            let (approve, _) = wf.labels(phase);
            let _ = writeln!(
                s,
                "on pull request #{} of {}/{} ({}), it would call:",
                ctx.number, ctx.owner, ctx.repo, ctx.api_url
            );
            for call in [
                format!("GET {}/pulls/{}  (head commit)", ctx.repo_path(), ctx.number),
                format!(
                    "GET {issue}/timeline?per_page=100  (comments, label events and reviews; an earlier gate comment is found by its marker)"
                ),
                format!(
                    "POST {issue}/comments, or PATCH {}/issues/comments/<id>  (the comment below)",
                    ctx.repo_path()
                ),
                format!(
                    "GET {}/contents/{}?ref=<base commit>  (the gate's policy, from the base branch)",
                    ctx.repo_path(),
                    wf.config_path.display()
                ),
            ] {
                let _ = writeln!(s, "  {call}");
            }
            use crate::gate::tally::Channel;
            let _ = writeln!(
                s,
                "then, on every resume: GET {}/pulls/{}, GET {issue}/timeline and GET {}/issues/comments/<id>/reactions (the round's marks), each conditional (304 when nothing changed); for each way of deciding (`consensus.decide_by`):",
                ctx.repo_path(),
                ctx.number,
                ctx.repo_path()
            );
            for ch in &wf.consensus.decide_by {
                let call = match ch {
                    Channel::Labels => format!(
                        "labels: the timeline's label events (who added `{approve}` or the reject label, when); DELETE {issue}/labels/<label> once decided"
                    ),
                    Channel::Comments => format!(
                        "comments: the timeline's comments (`{p}approve`, `{p}reject <reason>`, `{p}retry` on a line of their own); POST {}/issues/comments/<id>/reactions (👀, then 👍 or 😕)",
                        ctx.repo_path(),
                        p = wf.consensus.command_prefix
                    ),
                    Channel::Reviews => {
                        "reviews: the timeline's reviews (Approve or Request changes on the head commit)".to_owned()
                    }
                };
                let _ = writeln!(s, "  {call}");
            }
            let _ = writeln!(
                s,
                "  and for each person who decided: GET {}/collaborators/<login>/permission",
                ctx.repo_path()
            );
            if wf.consensus.commit_status {
                let _ = writeln!(
                    s,
                    "  POST {}/statuses/<head>  (orchestrator/{phase}: pending, then success or failure)",
                    ctx.repo_path()
                );
            }
            let meta = comment::Meta {
                run_id: state.run_id.clone(),
                phase: phase.to_owned(),
                head_sha: "<head commit>".into(),
                digest: "<artifact digest>".into(),
                opened_at: chrono::Utc::now(),
                round: state.phases.get(phase).map(|p| p.runs).unwrap_or(0),
                ..Default::default()
            };
            let _ = writeln!(s, "and the comment would read:");
            comment::render(
                wf,
                state,
                phase,
                ctx,
                &meta,
                &[],
                &["⏳ **Waiting for approval.**".to_owned()],
                &crate::review::phase_diffs(&wf.root, state, phase),
                &inv.redactor,
            )
        }
        Ok(_) => {
            let _ = writeln!(
                s,
                "would write {} and stop until `orchestrator run approve`; its body would read:",
                LocalGate::request_path(phase)
            );
            request::render(wf, state, phase, chrono::Utc::now())
        }
        Err(e) => {
            let _ = writeln!(s, "cannot read the GitHub context: {e}");
            return s;
        }
    };
    for line in body.lines() {
        let _ = writeln!(s, "  │ {line}");
    }
    s
}
