//! The phase a command works on, spelt either way: `run retry build` and `run retry --phase
//! build`, `run phase build` and `run phase --phase build` mean the same, whichever command.

use clap::Args;

/// A phase the command needs: `NAME` or `--phase NAME`.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
#[group(id = "phase_arg", required = true, multiple = false)]
pub(crate) struct PhaseArg {
    /// The phase
    #[arg(id = "phase_name", value_name = "PHASE")]
    name: Option<String>,
    /// The same as PHASE, as an option
    #[arg(long = "phase", id = "phase", value_name = "PHASE")]
    flag: Option<String>,
}

impl PhaseArg {
    pub(crate) fn into_name(self) -> String {
        // The group requires one of them; clap never leaves both empty.
        self.name.or(self.flag).unwrap_or_default()
    }
}

/// A phase the command may be given: `NAME`, `--phase NAME` or neither (the command's default).
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
#[group(id = "phase_choice", required = false, multiple = false)]
pub(crate) struct PhaseChoice {
    /// The phase
    #[arg(id = "phase_name", value_name = "PHASE")]
    name: Option<String>,
    /// The same as PHASE, as an option
    #[arg(long = "phase", id = "phase", value_name = "PHASE")]
    flag: Option<String>,
}

impl PhaseChoice {
    pub(crate) fn into_name(self) -> Option<String> {
        self.name.or(self.flag)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command, RunCommand};

    fn run(args: &[&str]) -> Result<RunCommand, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("orchestrator").chain(args.iter().copied()))?;
        match cli.command {
            Command::Run(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn both_spellings_name_the_same_phase_on_every_command() {
        for cmd in [
            &["run", "phase"][..],
            &["run", "retry"],
            &["run", "rollback"],
            &["run", "approve"],
            &["run", "start"],
            &["run", "diff"],
        ] {
            let positional = run(&[cmd, &["build"]].concat()).unwrap();
            let flag = run(&[cmd, &["--phase", "build"]].concat()).unwrap();
            let equals = run(&[cmd, &["--phase=build"]].concat()).unwrap();
            assert_eq!(format!("{positional:?}"), format!("{:?}", run(&[cmd, &["build"]].concat()).unwrap()));
            assert_eq!(phase_of(positional), Some("build".to_owned()), "{cmd:?}");
            assert_eq!(phase_of(flag), Some("build".to_owned()), "{cmd:?}");
            assert_eq!(phase_of(equals), Some("build".to_owned()), "{cmd:?}");
        }
        let reject = run(&["run", "reject", "planning", "--reason", "no"]).unwrap();
        assert_eq!(phase_of(reject), Some("planning".to_owned()));
    }

    #[test]
    fn a_phase_given_twice_or_missing_where_needed_is_a_usage_error() {
        for args in [
            &["run", "retry", "a", "--phase", "b"][..],
            &["run", "phase", "a", "--phase", "a"],
            &["run", "approve", "a", "--phase", "b"],
        ] {
            let e = run(args).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{args:?}: {e}");
        }
        for args in [&["run", "retry"][..], &["run", "phase"], &["run", "rollback"]] {
            let e = run(args).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument, "{args:?}: {e}");
        }
        // Optional where the command has a default.
        assert_eq!(phase_of(run(&["run", "approve"]).unwrap()), None);
    }

    fn phase_of(cmd: RunCommand) -> Option<String> {
        match cmd {
            RunCommand::Phase { name, .. } => Some(name.into_name()),
            RunCommand::Retry { phase, .. } | RunCommand::Rollback { phase } => Some(phase.into_name()),
            RunCommand::Approve { phase, .. }
            | RunCommand::Reject { phase, .. }
            | RunCommand::Start { phase, .. }
            | RunCommand::Diff { phase, .. } => phase.into_name(),
            other => panic!("{other:?}"),
        }
    }
}
