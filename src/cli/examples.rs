//! The examples each command's `--help` ends with. Every line starting with `orchestrator` is
//! parsed by a test (`every_example_parses_as_its_own_command`), so an example cannot rot.

pub(super) const INIT: &str = "\
Examples:
  # The default workflow in the current folder, then check it
  orchestrator init
  orchestrator validate
  # In another folder, with a project name for the intake
  orchestrator -C ~/src/shop init --name shop-api";

pub(super) const QUICKSTART: &str = "\
Examples:
  # The demo (shell agents, no keys) in ./demo, run to its first gate
  orchestrator quickstart demo
  # Language-model agents (Anthropic or an OpenAI-compatible server), with a GitHub workflow
  orchestrator quickstart agents --type llm --ci
  # A CLI coding agent doing the work, a reviewer gate; list the types with `--type`
  orchestrator quickstart coder --type claude-code";

pub(super) const VALIDATE: &str = "\
Examples:
  orchestrator validate
  orchestrator -C demo validate
  orchestrator --config ci/workflow.yaml validate";

pub(super) const RUN: &str = "\
Examples:
  orchestrator run start
  orchestrator run status
  orchestrator run approve";

pub(super) const START: &str = "\
Examples:
  # Run until the workflow completes, fails or reaches a gate
  orchestrator run start
  # See the plan, prompts, commands and gate comments; run nothing
  orchestrator run start --dry-run
  # In a workflow step: one phase, continuing a run a re-run job already started
  orchestrator run start --or-resume --phase planning";

pub(super) const NEXT: &str = "\
Examples:
  orchestrator run next
  orchestrator run next --dry-run
  orchestrator run next --max-workers 1";

pub(super) const PHASE: &str = "\
Examples:
  orchestrator run phase development
  # One agent of a parallel phase (a matrix job); `run merge` then `run phase` finish it
  orchestrator run phase development --agent builder
  orchestrator run phase --phase verification --dry-run";

pub(super) const RESUME: &str = "\
Examples:
  orchestrator run resume
  # At a GitHub gate, keep checking for a decision instead of ending the step
  orchestrator run resume --wait poll
  orchestrator run resume --timeout 600";

pub(super) const STATUS: &str = "\
Examples:
  orchestrator run status
  # A row per phase, agent and gate, over time
  orchestrator run status --timeline
  orchestrator run status --json";

pub(super) const REPORT: &str = "\
Examples:
  # Markdown with a Mermaid timeline, printed
  orchestrator run report
  # One self-contained HTML file (reports/run_<run_id>.html)
  orchestrator run report --html
  orchestrator run report --html -o run.html";

pub(super) const METRICS: &str = "\
Examples:
  orchestrator run metrics
  orchestrator run metrics --json
  orchestrator run metrics --prom";

pub(super) const APPROVE: &str = "\
Examples:
  # Approve the phase at its gate and continue the run
  orchestrator run approve
  orchestrator run approve planning --by alice
  # Record the approval only
  orchestrator run approve --phase planning --no-continue";

pub(super) const REJECT: &str = "\
Examples:
  orchestrator run reject --reason \"the plan misses the database migration\"
  orchestrator run reject planning --reason \"too broad\" --by bob
  # Then run it again
  orchestrator run retry planning";

pub(super) const RETRY: &str = "\
Examples:
  orchestrator run retry development
  orchestrator run retry --phase development --max-workers 1
  orchestrator run retry planning --dry-run";

pub(super) const MERGE: &str = "\
Examples:
  # After downloading the matrix jobs' records into parts/, then finish the phase
  orchestrator run merge parts/development-builder parts/development-reviewer
  orchestrator run phase development
  orchestrator -C app run merge ../records/job-1 ../records/job-2";

pub(super) const PREPARE: &str = "\
Examples:
  # The first job of a workflow spread over jobs: the run, new or unfinished, and nothing run
  orchestrator run prepare --or-start
  # A later job: the run the pull request's gate comment carries, restored here
  orchestrator run prepare
  orchestrator run prepare --or-start --intake .claude/intake.yaml";

pub(super) const ROLLBACK: &str = "\
Examples:
  orchestrator run rollback development
  orchestrator run rollback --phase planning";

pub(super) const DIFF: &str = "\
Examples:
  # What the phase at the gate changed, in colour on a terminal
  orchestrator run diff
  orchestrator run diff planning
  orchestrator --no-color run diff --phase development > development.diff";

pub(super) const CI: &str = "\
Examples:
  orchestrator ci generate
  orchestrator ci generate --jobs --uses octo/orchestrator@v0";

pub(super) const CI_GENERATE: &str = "\
Examples:
  # Phases as steps of one job, in .github/workflows/orchestrator.yml
  orchestrator ci generate --uses octo/orchestrator@v0
  # Phases as jobs, a parallel phase's agents as a matrix
  orchestrator ci generate --jobs --uses octo/orchestrator@v0
  orchestrator ci generate --uses octo/orchestrator@v0 -o -";

pub(super) const COMPLETIONS: &str = "\
Examples:
  # bash: load them now, or install them for every new shell
  source <(orchestrator completions bash)
  orchestrator completions bash --dir ~/.local/share/bash-completion/completions
  # zsh: a folder on $fpath
  orchestrator completions zsh --dir ~/.zfunc";

pub(super) const MAN: &str = "\
Examples:
  orchestrator man | man -l -
  orchestrator man --dir ~/.local/share/man/man1";

/// Every example, with the command path it documents (for the test).
#[cfg(test)]
pub(super) const ALL: &[(&str, &str)] = &[
    ("init", INIT),
    ("quickstart", QUICKSTART),
    ("validate", VALIDATE),
    ("run", RUN),
    ("run start", START),
    ("run next", NEXT),
    ("run phase", PHASE),
    ("run resume", RESUME),
    ("run status", STATUS),
    ("run report", REPORT),
    ("run metrics", METRICS),
    ("run approve", APPROVE),
    ("run reject", REJECT),
    ("run retry", RETRY),
    ("run merge", MERGE),
    ("run prepare", PREPARE),
    ("run rollback", ROLLBACK),
    ("run diff", DIFF),
    ("ci", CI),
    ("ci generate", CI_GENERATE),
    ("completions", COMPLETIONS),
    ("man", MAN),
];

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::ALL;
    use crate::cli::Cli;

    /// Words as a POSIX shell splits them (quotes, backslashes); what follows a pipe or a
    /// redirection is not the command's.
    fn words(line: &str) -> Vec<String> {
        let line = line.strip_prefix("source <(").and_then(|l| l.strip_suffix(')')).unwrap_or(line);
        let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '"' | '\'') => (quote, any) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (None | Some('"'), '\\') => cur.extend(chars.next()),
                (None, c) if c.is_whitespace() => {
                    if any || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                (_, c) => cur.push(c),
            }
        }
        assert!(quote.is_none(), "unclosed quote in `{line}`");
        if any || !cur.is_empty() {
            out.push(cur);
        }
        let end = out.iter().position(|w| ["|", ">", "<", "&&", ";"].contains(&w.as_str())).unwrap_or(out.len());
        out.truncate(end);
        out
    }

    /// The subcommand path clap matched (`run approve`).
    fn path(m: &clap::ArgMatches) -> String {
        let mut parts = Vec::new();
        let mut cur = m;
        while let Some((name, sub)) = cur.subcommand() {
            parts.push(name.to_owned());
            cur = sub;
        }
        parts.join(" ")
    }

    #[test]
    fn every_example_parses_as_its_own_command() {
        for (command, text) in ALL {
            assert!(text.starts_with("Examples:\n"), "{command}");
            let mut own = 0;
            let mut lines = 0;
            for line in text.lines().skip(1).map(str::trim).filter(|l| !l.starts_with('#')) {
                let w = words(line);
                assert_eq!(w.first().map(String::as_str), Some("orchestrator"), "{command}: `{line}`");
                let m = Cli::command()
                    .try_get_matches_from(&w)
                    .unwrap_or_else(|e| panic!("{command}: `{line}` does not parse:\n{e}"));
                lines += 1;
                if path(&m) == *command || (command.split(' ').count() == 1 && path(&m).starts_with(command)) {
                    own += 1;
                }
            }
            assert!(own >= 2 && lines <= 4, "{command}: {own} examples of itself, {lines} in all");
        }
    }

    #[test]
    fn every_subcommands_help_ends_with_its_examples() {
        fn visit(cmd: &mut clap::Command, prefix: &str, seen: &mut Vec<String>) {
            for sub in cmd.get_subcommands_mut().filter(|s| s.get_name() != "help") {
                let name = format!("{prefix}{}", sub.get_name()).trim().to_owned();
                let (_, expected) = ALL
                    .iter()
                    .find(|(c, _)| *c == name)
                    .unwrap_or_else(|| panic!("`{name}` has no examples in cli/examples.rs"));
                for help in [sub.render_help().to_string(), sub.render_long_help().to_string()] {
                    assert!(
                        help.trim_end().ends_with(expected.trim_end()),
                        "`{name} --help` does not end with its examples:\n{help}"
                    );
                }
                seen.push(name.clone());
                visit(sub, &format!("{name} "), seen);
            }
        }
        let mut seen = Vec::new();
        visit(&mut Cli::command(), "", &mut seen);
        assert_eq!(seen.len(), ALL.len(), "{seen:?}");
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(words(r#"a "b c" 'd e' f\ g | h"#), ["a", "b c", "d e", "f g"]);
        assert_eq!(words(r#"x "" y"#), ["x", "", "y"]);
        assert_eq!(words("source <(orchestrator completions bash)"), ["orchestrator", "completions", "bash"]);
    }
}
