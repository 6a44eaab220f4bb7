//! Shell integration generated from the clap definitions: completion scripts
//! (`orchestrator completions SHELL`) and man pages (`orchestrator man`), printed or written
//! into a folder for packaging (release archives and the install script ship them).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The program name the scripts complete and the pages document.
const NAME: &str = "orchestrator";

/// The completion script for `shell`.
pub(crate) fn completion_script(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, NAME, &mut out);
    out
}

/// The file name a shell looks the script up by (`orchestrator.bash`, `_orchestrator`, …).
pub(crate) fn completion_file_name(shell: Shell) -> String {
    use clap_complete::Generator;
    shell.file_name(NAME)
}

/// Print the script, or write it into `dir` (created if missing) and print its path.
pub(crate) fn completions(shell: Shell, dir: Option<&Path>) -> anyhow::Result<()> {
    let script = completion_script(shell);
    match dir {
        None => write_stdout(&script),
        Some(dir) => {
            let path = dir.join(completion_file_name(shell));
            write_file(&path, &script)?;
            outln!("wrote {}", path.display());
            Ok(())
        }
    }
}

/// The man pages: `orchestrator.1`, then one per subcommand (`orchestrator-run-start.1`, …),
/// as `(file name, roff text)`.
pub(crate) fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut pages = Vec::new();
    collect_pages(&cmd, NAME, &mut pages)?;
    Ok(pages)
}

fn collect_pages(cmd: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    // Each page is titled by the whole command (`orchestrator-run-start`), as git's are.
    let page_cmd = cmd.clone().name(name.to_owned()).bin_name(name.replace('-', " "));
    let mut text = Vec::new();
    clap_mangen::Man::new(page_cmd).render(&mut text).context("rendering a man page")?;
    pages.push((format!("{name}.1"), text));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        collect_pages(sub, &format!("{name}-{}", sub.get_name()), pages)?;
    }
    Ok(())
}

/// Print `orchestrator.1`, or write every page into `dir` (created if missing).
pub(crate) fn man(dir: Option<&Path>) -> anyhow::Result<()> {
    let pages = man_pages()?;
    match dir {
        None => write_stdout(&pages[0].1),
        Some(dir) => {
            for (file, text) in &pages {
                write_file(&dir.join(file), text)?;
            }
            outln!("wrote {} man pages into {}", pages.len(), dir.display());
            Ok(())
        }
    }
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) ends the output, not with an error.
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

fn write_file(path: &PathBuf, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create the folder `{}`", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_program() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish] {
            let script = String::from_utf8(completion_script(shell)).unwrap();
            assert!(script.contains(NAME), "{shell}: {script}");
            // Subcommands two levels down are completed too.
            assert!(script.contains("approve"), "{shell}");
        }
        assert_eq!(completion_file_name(Shell::Bash), "orchestrator.bash");
        assert_eq!(completion_file_name(Shell::Zsh), "_orchestrator");
    }

    #[test]
    fn man_pages_cover_every_subcommand() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for n in ["orchestrator.1", "orchestrator-run.1", "orchestrator-run-approve.1", "orchestrator-ci-generate.1"] {
            assert!(names.contains(&n), "{names:?}");
        }
        let top = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(top.starts_with(".ie \\n(.g .ds Aq") || top.contains(".TH orchestrator 1"), "{top}");
        let approve =
            String::from_utf8(pages.iter().find(|(n, _)| n == "orchestrator-run-approve.1").unwrap().1.clone())
                .unwrap();
        assert!(approve.contains(".TH orchestrator-run-approve"), "{approve}");
        assert!(approve.contains("\\-\\-phase") || approve.contains("phase"), "{approve}");
    }
}
